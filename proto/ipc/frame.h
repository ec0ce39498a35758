// The framing between the supervisor and its sandboxed workers.
//
//   frame  = header payload
//   header = u32 payload length, u32 frame type   (both little-endian)
//
// A frame longer than the reader's limit, an unknown type or a stream that
// ends inside a frame is a ProtocolError: the supervisor treats the worker as
// broken (fail closed) and never allocates more than the limit for it.
//
// Two readers: FrameReader for the supervisor's non-blocking event loop (a
// worker that sends half a frame and stops must not stall the others), and
// read_frame() for the worker, which has nothing else to do but wait.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mukaika::ipc {

class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class FrameType : std::uint32_t {
  Hello = 1,    // worker -> supervisor, once, after the sandbox is in force
  Request = 2,  // supervisor -> worker: one item
  Reply = 3,    // worker -> supervisor: the item's result
};

constexpr std::size_t kHeaderBytes = 8;

struct Frame {
  FrameType type = FrameType::Hello;
  std::string payload;
};

// The 8 header bytes for a frame of `type` with `payload_size` bytes.
std::string encode_header(FrameType type, std::size_t payload_size);

// Incremental, for non-blocking sockets.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_payload) : max_payload_(max_payload) {}

  enum class Status { NeedMore, Complete, Closed };

  // Reads what is available on `fd` (non-blocking) without ever reading past
  // the current frame. Complete: take() the frame. Closed: the peer closed
  // the stream between frames. Throws ProtocolError for an oversized or
  // unknown frame, a stream closed inside a frame, or a read error.
  Status read_from(int fd);
  Frame take();

  // Bytes of the current frame received so far (0 between frames).
  std::size_t buffered() const { return header_fill_ + payload_fill_; }

 private:
  std::size_t max_payload_;
  char header_[kHeaderBytes] = {};
  std::size_t header_fill_ = 0;
  std::size_t payload_fill_ = 0;
  bool complete_ = false;
  Frame frame_;
};

// Blocking. Returns nullopt when the peer closed the stream between frames;
// throws ProtocolError for everything FrameReader refuses.
std::optional<Frame> read_frame(int fd, std::size_t max_payload);

// Blocking; writes header and payload with one sendmsg() where possible.
// Uses MSG_NOSIGNAL: a dead peer is an error (EPIPE), never a SIGPIPE.
// Throws ProtocolError on failure.
void write_frame(int fd, FrameType type, std::string_view payload);

// Sends as much of header+payload (starting at `offset` into their
// concatenation) as the non-blocking socket takes; returns the new offset.
// Throws ProtocolError on failure (EAGAIN is not a failure).
std::size_t send_some(int fd, std::string_view header, std::string_view payload, std::size_t offset);

}  // namespace mukaika::ipc
