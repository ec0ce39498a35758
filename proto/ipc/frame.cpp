#include "ipc/frame.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mukaika::ipc {

namespace {

std::uint32_t le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

bool known_type(std::uint32_t t) {
  return t == static_cast<std::uint32_t>(FrameType::Hello) || t == static_cast<std::uint32_t>(FrameType::Request) ||
         t == static_cast<std::uint32_t>(FrameType::Reply);
}

[[noreturn]] void io_error(const char* what, int err) {
  throw ProtocolError(std::string(what) + ": " + std::strerror(err));
}

}  // namespace

std::string encode_header(FrameType type, std::size_t payload_size) {
  if (payload_size > UINT32_MAX) throw ProtocolError("frame payload of " + std::to_string(payload_size) + " bytes is too large");
  std::string h(kHeaderBytes, '\0');
  auto put = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) h[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put(0, static_cast<std::uint32_t>(payload_size));
  put(4, static_cast<std::uint32_t>(type));
  return h;
}

FrameReader::Status FrameReader::read_from(int fd) {
  if (complete_) return Status::Complete;
  for (;;) {
    char* dst;
    std::size_t want;
    if (header_fill_ < kHeaderBytes) {
      dst = header_ + header_fill_;
      want = kHeaderBytes - header_fill_;
    } else {
      dst = frame_.payload.data() + payload_fill_;
      want = frame_.payload.size() - payload_fill_;
    }
    ssize_t n = want == 0 ? 0 : ::recv(fd, dst, want, MSG_DONTWAIT);
    if (want != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::NeedMore;
        io_error("cannot read from worker socket", errno);
      }
      if (n == 0) {
        if (buffered() == 0) return Status::Closed;
        throw ProtocolError("stream closed inside a frame after " + std::to_string(buffered()) + " bytes");
      }
    }
    if (header_fill_ < kHeaderBytes) {
      header_fill_ += static_cast<std::size_t>(n);
      if (header_fill_ < kHeaderBytes) continue;
      std::uint32_t length = le32(header_);
      std::uint32_t type = le32(header_ + 4);
      if (!known_type(type)) throw ProtocolError("unknown frame type " + std::to_string(type));
      if (length > max_payload_)
        throw ProtocolError("frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                            std::to_string(max_payload_));
      frame_.type = static_cast<FrameType>(type);
      frame_.payload.assign(length, '\0');
    } else {
      payload_fill_ += static_cast<std::size_t>(n);
    }
    if (header_fill_ == kHeaderBytes && payload_fill_ == frame_.payload.size()) {
      complete_ = true;
      return Status::Complete;
    }
  }
}

Frame FrameReader::take() {
  if (!complete_) throw ProtocolError("no complete frame to take");
  Frame out = std::move(frame_);
  frame_ = Frame{};
  header_fill_ = 0;
  payload_fill_ = 0;
  complete_ = false;
  return out;
}

namespace {

// Reads exactly `n` bytes; false when the stream ends before the first byte.
bool read_exact(int fd, char* dst, std::size_t n, bool eof_ok) {
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, dst + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      io_error("cannot read frame", errno);
    }
    if (r == 0) {
      if (got == 0 && eof_ok) return false;
      throw ProtocolError("stream closed inside a frame");
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

std::optional<Frame> read_frame(int fd, std::size_t max_payload) {
  char header[kHeaderBytes];
  if (!read_exact(fd, header, kHeaderBytes, true)) return std::nullopt;
  std::uint32_t length = le32(header);
  std::uint32_t type = le32(header + 4);
  if (!known_type(type)) throw ProtocolError("unknown frame type " + std::to_string(type));
  if (length > max_payload)
    throw ProtocolError("frame of " + std::to_string(length) + " bytes exceeds the limit of " + std::to_string(max_payload));
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.payload.assign(length, '\0');
  if (length > 0) read_exact(fd, f.payload.data(), length, false);
  return f;
}

namespace {

// One sendmsg() of what is left of header+payload from `offset` on.
ssize_t send_once(int fd, std::string_view header, std::string_view payload, std::size_t offset, int flags) {
  iovec iov[2];
  int count = 0;
  if (offset < header.size()) {
    iov[count++] = {const_cast<char*>(header.data() + offset), header.size() - offset};
    if (!payload.empty()) iov[count++] = {const_cast<char*>(payload.data()), payload.size()};
  } else {
    std::size_t at = offset - header.size();
    iov[count++] = {const_cast<char*>(payload.data() + at), payload.size() - at};
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(count);
  return ::sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
}

}  // namespace

std::size_t send_some(int fd, std::string_view header, std::string_view payload, std::size_t offset) {
  const std::size_t total = header.size() + payload.size();
  while (offset < total) {
    ssize_t n = send_once(fd, header, payload, offset, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return offset;
      io_error("cannot write frame", errno);
    }
    offset += static_cast<std::size_t>(n);
  }
  return offset;
}

void write_frame(int fd, FrameType type, std::string_view payload) {
  const std::string header = encode_header(type, payload.size());
  const std::size_t total = header.size() + payload.size();
  std::size_t offset = 0;
  while (offset < total) {
    ssize_t n = send_once(fd, header, payload, offset, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("cannot write frame", errno);
    }
    offset += static_cast<std::size_t>(n);
  }
}

}  // namespace mukaika::ipc
