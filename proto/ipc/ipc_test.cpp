// The worker framing and payload codec: round trips, and every way a peer can
// send something wrong (too long, unknown type, cut short, trailing bytes).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "ipc/codec.h"
#include "ipc/frame.h"

namespace mukaika::ipc {
namespace {

struct SocketPair {
  int a = -1, b = -1;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    close_a();
    close_b();
  }
  void close_a() {
    if (a >= 0) ::close(a);
    a = -1;
  }
  void close_b() {
    if (b >= 0) ::close(b);
    b = -1;
  }
  void raw(int fd, std::string_view bytes) { ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size())); }
};

TEST(IpcCodec, RoundTrip) {
  Writer w;
  w.u8(7);
  w.u32(0xdeadbeef);
  w.u64(0x0123456789abcdefull);
  w.str(std::string("a\0b\xff", 4));
  w.str("");
  std::string bytes = w.take();
  Reader r(bytes);
  EXPECT_EQ(r.u8(), 7);
  EXPECT_EQ(r.u32(), 0xdeadbeefu);
  EXPECT_EQ(r.u64(), 0x0123456789abcdefull);
  EXPECT_EQ(r.str(100), std::string("a\0b\xff", 4));
  EXPECT_EQ(r.str(0), "");
  EXPECT_NO_THROW(r.finish());
}

TEST(IpcCodec, LittleEndianOnTheWire) {
  Writer w;
  w.u32(0x01020304);
  EXPECT_EQ(w.take(), std::string("\x04\x03\x02\x01", 4));
}

TEST(IpcCodec, ShortPayloadIsAnError) {
  std::string bytes("\x01\x02", 2);
  Reader r(bytes);
  EXPECT_THROW(r.u32(), ProtocolError);
}

TEST(IpcCodec, StringOverItsLimitIsAnError) {
  Writer w;
  w.str("0123456789");
  std::string bytes = w.take();
  Reader r(bytes);
  EXPECT_THROW(r.str(9), ProtocolError);
}

TEST(IpcCodec, StringLengthPastTheEndIsAnError) {
  Writer w;
  w.u64(1ull << 40);  // claims a terabyte, has nothing
  std::string bytes = w.take();
  Reader r(bytes);
  EXPECT_THROW(r.str(UINT64_MAX), ProtocolError);
}

TEST(IpcCodec, TrailingBytesAreAnError) {
  Writer w;
  w.u8(1);
  w.u8(2);
  std::string bytes = w.take();
  Reader r(bytes);
  r.u8();
  EXPECT_THROW(r.finish(), ProtocolError);
}

TEST(IpcFrame, BlockingRoundTrip) {
  SocketPair s;
  write_frame(s.a, FrameType::Request, "hello");
  write_frame(s.a, FrameType::Reply, "");
  auto f1 = read_frame(s.b, 100);
  ASSERT_TRUE(f1);
  EXPECT_EQ(f1->type, FrameType::Request);
  EXPECT_EQ(f1->payload, "hello");
  auto f2 = read_frame(s.b, 100);
  ASSERT_TRUE(f2);
  EXPECT_EQ(f2->type, FrameType::Reply);
  EXPECT_EQ(f2->payload, "");
  s.close_a();
  EXPECT_FALSE(read_frame(s.b, 100));  // closed between frames: a clean end
}

TEST(IpcFrame, OversizedFrameIsRefusedBeforeAllocating) {
  SocketPair s;
  s.raw(s.a, encode_header(FrameType::Reply, 0xfffffff0u));
  EXPECT_THROW(read_frame(s.b, 1 << 20), ProtocolError);
}

TEST(IpcFrame, UnknownTypeIsRefused) {
  SocketPair s;
  std::string header = encode_header(FrameType::Reply, 0);
  header[4] = 99;
  s.raw(s.a, header);
  EXPECT_THROW(read_frame(s.b, 100), ProtocolError);
}

TEST(IpcFrame, StreamClosedInsideAFrameIsAnError) {
  SocketPair s;
  s.raw(s.a, encode_header(FrameType::Reply, 10) + "abc");
  s.close_a();
  EXPECT_THROW(read_frame(s.b, 100), ProtocolError);
}

TEST(IpcFrame, StreamClosedInsideAHeaderIsAnError) {
  SocketPair s;
  s.raw(s.a, encode_header(FrameType::Reply, 10).substr(0, 3));
  s.close_a();
  EXPECT_THROW(read_frame(s.b, 100), ProtocolError);
}

TEST(IpcFrame, WritingToAClosedPeerThrowsInsteadOfSigpipe) {
  SocketPair s;
  s.close_b();
  EXPECT_THROW(write_frame(s.a, FrameType::Request, "x"), ProtocolError);
}

TEST(IpcFrameReader, AssemblesAFrameArrivingByteByByte) {
  SocketPair s;
  std::string wire = encode_header(FrameType::Hello, 5) + "12345";
  FrameReader reader(100);
  EXPECT_EQ(reader.read_from(s.b), FrameReader::Status::NeedMore);
  for (std::size_t i = 0; i + 1 < wire.size(); ++i) {
    s.raw(s.a, wire.substr(i, 1));
    EXPECT_EQ(reader.read_from(s.b), FrameReader::Status::NeedMore) << "after byte " << i;
    EXPECT_EQ(reader.buffered(), i + 1);
  }
  s.raw(s.a, wire.substr(wire.size() - 1));
  ASSERT_EQ(reader.read_from(s.b), FrameReader::Status::Complete);
  Frame f = reader.take();
  EXPECT_EQ(f.type, FrameType::Hello);
  EXPECT_EQ(f.payload, "12345");
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(IpcFrameReader, NeverReadsIntoTheNextFrame) {
  SocketPair s;
  s.raw(s.a, encode_header(FrameType::Reply, 1) + "A" + encode_header(FrameType::Reply, 1) + "B");
  FrameReader reader(100);
  ASSERT_EQ(reader.read_from(s.b), FrameReader::Status::Complete);
  EXPECT_EQ(reader.take().payload, "A");
  ASSERT_EQ(reader.read_from(s.b), FrameReader::Status::Complete);
  EXPECT_EQ(reader.take().payload, "B");
  EXPECT_EQ(reader.read_from(s.b), FrameReader::Status::NeedMore);
}

TEST(IpcFrameReader, ClosedBetweenFramesAndInsideOne) {
  {
    SocketPair s;
    s.close_a();
    FrameReader reader(100);
    EXPECT_EQ(reader.read_from(s.b), FrameReader::Status::Closed);
  }
  {
    SocketPair s;
    s.raw(s.a, encode_header(FrameType::Reply, 4) + "ab");
    s.close_a();
    FrameReader reader(100);
    EXPECT_THROW(reader.read_from(s.b), ProtocolError);
  }
}

TEST(IpcFrameReader, RefusesOversizedAndUnknownFrames) {
  {
    SocketPair s;
    s.raw(s.a, encode_header(FrameType::Reply, 101));
    FrameReader reader(100);
    EXPECT_THROW(reader.read_from(s.b), ProtocolError);
  }
  {
    SocketPair s;
    std::string header = encode_header(FrameType::Reply, 1);
    header[5] = 1;  // type 0x103
    s.raw(s.a, header);
    FrameReader reader(100);
    EXPECT_THROW(reader.read_from(s.b), ProtocolError);
  }
}

TEST(IpcFrameReader, LargeFrameThroughNonBlockingSendsAndReads) {
  SocketPair s;
  ASSERT_EQ(::fcntl(s.a, F_SETFL, O_NONBLOCK), 0);
  std::string payload(8 << 20, 'x');
  for (std::size_t i = 0; i < payload.size(); i += 4093) payload[i] = static_cast<char>(i & 0x7f);
  std::string header = encode_header(FrameType::Request, payload.size());
  FrameReader reader(payload.size());
  std::size_t sent = 0;
  FrameReader::Status st = FrameReader::Status::NeedMore;
  int rounds = 0;
  while (st != FrameReader::Status::Complete) {
    sent = send_some(s.a, header, payload, sent);
    st = reader.read_from(s.b);
    ASSERT_LT(++rounds, 100000);
  }
  EXPECT_EQ(sent, header.size() + payload.size());
  EXPECT_GT(rounds, 1);  // the socket buffer really was smaller than the frame
  Frame f = reader.take();
  EXPECT_EQ(f.type, FrameType::Request);
  EXPECT_TRUE(f.payload == payload);
}

}  // namespace
}  // namespace mukaika::ipc
