#include "ole/compound_file.h"

#include "text/utf8.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace mukaika::ole {

namespace {

constexpr std::uint32_t kEndOfChain = 0xFFFFFFFE;
constexpr std::uint32_t kFreeSect = 0xFFFFFFFF;
constexpr std::uint32_t kMaxRegSect = 0xFFFFFFFA;
constexpr std::size_t kMaxDirectoryEntries = 100000;

std::uint16_t u16(std::string_view b, std::size_t off) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[off]) | static_cast<unsigned char>(b[off + 1]) << 8);
}
std::uint32_t u32(std::string_view b, std::size_t off) {
  return static_cast<std::uint32_t>(u16(b, off)) | static_cast<std::uint32_t>(u16(b, off + 2)) << 16;
}

class Reader {
 public:
  Reader(std::string_view bytes, std::size_t sector_size) : b_(bytes), ss_(sector_size) {}

  // Offset of sector `n`, or npos when it lies outside the file.
  std::size_t sector_offset(std::uint32_t n) const {
    std::size_t off = (static_cast<std::size_t>(n) + 1) * ss_;
    return n > kMaxRegSect || off + ss_ > b_.size() ? std::string_view::npos : off;
  }
  std::uint32_t sectors_in_file() const { return static_cast<std::uint32_t>(b_.size() / ss_); }

  bool load_fat() {
    // The first 109 FAT sector numbers are in the header, the rest in the
    // DIFAT chain.
    std::uint32_t fat_sectors = u32(b_, 0x2C);
    if (fat_sectors > sectors_in_file()) return false;
    std::vector<std::uint32_t> fat_list;
    for (std::size_t i = 0; i < 109 && fat_list.size() < fat_sectors; ++i) fat_list.push_back(u32(b_, 0x4C + i * 4));
    std::uint32_t difat = u32(b_, 0x44);
    std::unordered_set<std::uint32_t> seen;
    while (fat_list.size() < fat_sectors && difat != kEndOfChain && difat != kFreeSect) {
      if (!seen.insert(difat).second) return false;
      std::size_t off = sector_offset(difat);
      if (off == std::string_view::npos) return false;
      for (std::size_t i = 0; i + 1 < ss_ / 4 && fat_list.size() < fat_sectors; ++i) fat_list.push_back(u32(b_, off + i * 4));
      difat = u32(b_, off + ss_ - 4);
    }
    if (fat_list.size() < fat_sectors) return false;
    fat_.reserve(fat_list.size() * (ss_ / 4));
    for (std::uint32_t s : fat_list) {
      std::size_t off = sector_offset(s);
      if (off == std::string_view::npos) return false;
      for (std::size_t i = 0; i < ss_ / 4; ++i) fat_.push_back(u32(b_, off + i * 4));
    }
    return true;
  }

  // The bytes of the chain starting at `start`, or nullopt on a broken or
  // looping chain.
  std::optional<std::string> chain(std::uint32_t start) const {
    std::string out;
    std::unordered_set<std::uint32_t> seen;
    std::uint32_t s = start;
    while (s != kEndOfChain) {
      if (s >= fat_.size() || !seen.insert(s).second) return std::nullopt;
      std::size_t off = sector_offset(s);
      if (off == std::string_view::npos) return std::nullopt;
      out.append(b_.substr(off, ss_));
      if (out.size() / 128 > kMaxDirectoryEntries) return std::nullopt;
      s = fat_[s];
    }
    return out;
  }

 private:
  std::string_view b_;
  std::size_t ss_;
  std::vector<std::uint32_t> fat_;
};

std::string utf16_name(std::string_view raw, std::size_t bytes) {
  std::string out;
  for (std::size_t i = 0; i + 1 < bytes && i + 1 < raw.size(); i += 2) {
    std::uint16_t c = u16(raw, i);
    if (c == 0) break;
    if (c < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      utf8::append(out, c);  // lone surrogate halves become U+FFFD
    }
  }
  return out;
}

}  // namespace

std::optional<std::vector<DirectoryEntry>> read_directory(std::string_view bytes) {
  static constexpr unsigned char kSignature[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
  if (bytes.size() < 512 || std::memcmp(bytes.data(), kSignature, 8) != 0) return std::nullopt;
  std::uint16_t shift = u16(bytes, 0x1E);
  if (shift != 9 && shift != 12) return std::nullopt;
  Reader reader(bytes, std::size_t{1} << shift);
  if (!reader.load_fat()) return std::nullopt;
  auto dir = reader.chain(u32(bytes, 0x30));
  if (!dir) return std::nullopt;
  std::vector<DirectoryEntry> entries;
  for (std::size_t off = 0; off + 128 <= dir->size(); off += 128) {
    std::string_view e(dir->data() + off, 128);
    DirectoryEntry d;
    std::uint16_t name_len = std::min<std::uint16_t>(u16(e, 0x40), 64);
    d.name = utf16_name(e, name_len);
    switch (static_cast<unsigned char>(e[0x42])) {
      case 0: d.type = DirectoryEntry::Type::Empty; break;
      case 1: d.type = DirectoryEntry::Type::Storage; break;
      case 2: d.type = DirectoryEntry::Type::Stream; break;
      case 5: d.type = DirectoryEntry::Type::Root; break;
      default: d.type = DirectoryEntry::Type::Other;
    }
    d.size = static_cast<std::uint64_t>(u32(e, 0x78)) | static_cast<std::uint64_t>(u32(e, 0x7C)) << 32;
    if (d.type != DirectoryEntry::Type::Empty) entries.push_back(std::move(d));
  }
  if (entries.empty() || entries.front().type != DirectoryEntry::Type::Root) return std::nullopt;
  return entries;
}

bool has_entry(const std::vector<DirectoryEntry>& entries, std::string_view name) {
  return std::any_of(entries.begin(), entries.end(), [&](const DirectoryEntry& e) { return e.name == name; });
}

}  // namespace mukaika::ole
