// A small binary encoding for frame payloads: fixed-width little-endian
// integers and length-prefixed byte strings, in an order both sides agree on.
//
// Chosen over JSON because payloads carry arbitrary bytes (the item itself,
// names and reasons that may not be valid UTF-8), and a decoder that only
// ever copies bounded byte ranges is easy to get right on the trusted side.
// Every Reader call checks bounds; a short or overlong payload is a
// ProtocolError, never a read past the buffer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ipc/frame.h"

namespace mukaika::ipc {

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void str(std::string_view s);  // u64 length + bytes

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  std::uint8_t u8();
  std::uint32_t u32();
  std::uint64_t u64();
  // A string no longer than `max` bytes (and never longer than what is left).
  std::string str(std::uint64_t max);
  // Throws unless every byte was consumed: trailing data means the two sides
  // disagree about the layout.
  void finish() const;

 private:
  std::string_view take(std::size_t n);
  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace mukaika::ipc
