#include "ipc/codec.h"

namespace mukaika::ipc {

void Writer::u32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Writer::u64(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Writer::str(std::string_view s) {
  u64(s.size());
  out_.append(s);
}

std::string_view Reader::take(std::size_t n) {
  if (n > in_.size() - pos_)
    throw ProtocolError("payload too short: wanted " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                        ", " + std::to_string(in_.size() - pos_) + " left");
  std::string_view s = in_.substr(pos_, n);
  pos_ += n;
  return s;
}

std::uint8_t Reader::u8() { return static_cast<std::uint8_t>(take(1)[0]); }

std::uint32_t Reader::u32() {
  std::string_view b = take(4);
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

std::uint64_t Reader::u64() {
  std::string_view b = take(8);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  return v;
}

std::string Reader::str(std::uint64_t max) {
  std::uint64_t n = u64();
  if (n > max) throw ProtocolError("string of " + std::to_string(n) + " bytes exceeds its limit of " + std::to_string(max));
  if (n > in_.size() - pos_)
    throw ProtocolError("string of " + std::to_string(n) + " bytes runs past the end of the payload");
  return std::string(take(static_cast<std::size_t>(n)));
}

void Reader::finish() const {
  if (pos_ != in_.size())
    throw ProtocolError(std::to_string(in_.size() - pos_) + " unexpected trailing bytes in payload");
}

}  // namespace mukaika::ipc
