#include "archive_flatten/zip_layout.h"

#include <algorithm>
#include <vector>

namespace mukaika::zip {

namespace {

constexpr std::uint32_t kLocalHeader = 0x04034b50;
constexpr std::uint32_t kCentralHeader = 0x02014b50;
constexpr std::uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr std::uint32_t kZip64End = 0x06064b50;
constexpr std::uint32_t kZip64Locator = 0x07064b50;
constexpr std::size_t kEocdSize = 22;
constexpr std::size_t kCentralSize = 46;
constexpr std::size_t kLocalSize = 30;

// Bounds-checked little-endian reads: `ok` turns false instead of reading
// past the end, so a truncated structure is "malformed", never a crash.
struct Reader {
  std::string_view b;
  bool ok = true;
  std::uint64_t le(std::uint64_t at, int n) {
    if (at > b.size() || b.size() - at < static_cast<std::uint64_t>(n)) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<std::uint64_t>(i)]);
    return v;
  }
  std::uint32_t u32(std::uint64_t at) { return static_cast<std::uint32_t>(le(at, 4)); }
  std::uint16_t u16(std::uint64_t at) { return static_cast<std::uint16_t>(le(at, 2)); }
  std::uint64_t u64(std::uint64_t at) { return le(at, 8); }
};

struct Range {
  std::uint64_t begin, end;
  std::uint64_t index;
};

LayoutCheck malformed(std::string detail) {
  LayoutCheck c;
  c.status = LayoutCheck::Status::Malformed;
  c.detail = std::move(detail);
  return c;
}

}  // namespace

LayoutCheck check_entry_layout(std::string_view bytes) {
  Reader r{bytes};
  if (bytes.size() < kEocdSize) return {};
  // The end record sits in the last 64 KiB + 22 bytes (its comment is at
  // most 65535 bytes); search backwards like unzip and libarchive do.
  std::uint64_t eocd = 0;
  bool found = false;
  const std::uint64_t lowest = bytes.size() > kEocdSize + 65535 ? bytes.size() - kEocdSize - 65535 : 0;
  for (std::uint64_t at = bytes.size() - kEocdSize + 1; at-- > lowest;) {
    if (r.u32(at) == kEndOfCentralDirectory) {
      eocd = at;
      found = true;
      break;
    }
  }
  if (!found) return {};

  std::uint64_t entries = r.u16(eocd + 10);
  std::uint64_t cd_size = r.u32(eocd + 12);
  std::uint64_t cd_offset = r.u32(eocd + 16);
  std::uint64_t end_of_cd = eocd;  // where the central directory should end
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: the locator right before the end record points at the real one.
    if (eocd >= 20 && r.u32(eocd - 20) == kZip64Locator) {
      std::uint64_t z64 = r.u64(eocd - 20 + 8);
      if (!r.ok || r.u32(z64) != kZip64End) return malformed("zip64 end of central directory not found");
      entries = r.u64(z64 + 32);
      cd_size = r.u64(z64 + 40);
      cd_offset = r.u64(z64 + 48);
      end_of_cd = z64;
    }
  }
  if (!r.ok) return malformed("truncated end of central directory");
  // Data prepended to the zip (self-extractors) shifts every offset by the
  // same amount; readers correct for it, and so do we.
  if (cd_size > end_of_cd || cd_offset > end_of_cd - cd_size)
    return malformed("central directory offset or size outside the file");
  const std::uint64_t shift = end_of_cd - cd_size - cd_offset;

  std::vector<Range> ranges;
  ranges.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(entries, cd_size / kCentralSize + 1)));
  std::uint64_t at = cd_offset + shift;
  const std::uint64_t cd_end = at + cd_size;
  std::uint64_t index = 0;
  while (at + kCentralSize <= cd_end && r.u32(at) == kCentralHeader) {
    std::uint64_t csize = r.u32(at + 20);
    std::uint64_t usize = r.u32(at + 24);
    std::uint64_t name_len = r.u16(at + 28);
    std::uint64_t extra_len = r.u16(at + 30);
    std::uint64_t comment_len = r.u16(at + 32);
    std::uint64_t local = r.u32(at + 42);
    // Zip64 extra field: the 64-bit values, in this order, for exactly those
    // fields that hold 0xFFFFFFFF.
    std::uint64_t extra = at + kCentralSize + name_len;
    std::uint64_t extra_end = extra + extra_len;
    while (extra + 4 <= extra_end) {
      std::uint16_t id = r.u16(extra);
      std::uint16_t len = r.u16(extra + 2);
      if (id == 0x0001) {
        std::uint64_t p = extra + 4;
        std::uint64_t limit = p + len;
        if (usize == 0xFFFFFFFF && p + 8 <= limit) usize = r.u64(p), p += 8;
        if (csize == 0xFFFFFFFF && p + 8 <= limit) csize = r.u64(p), p += 8;
        if (local == 0xFFFFFFFF && p + 8 <= limit) local = r.u64(p), p += 8;
        break;
      }
      extra += 4 + static_cast<std::uint64_t>(len);
    }
    if (!r.ok) return malformed("truncated central directory entry " + std::to_string(index));
    std::uint64_t begin = local + shift;
    std::uint64_t local_name = r.u16(begin + 26);
    std::uint64_t local_extra = r.u16(begin + 28);
    if (!r.ok || r.u32(begin) != kLocalHeader)
      return malformed("entry " + std::to_string(index) + ": no local header at offset " + std::to_string(begin));
    std::uint64_t data = begin + kLocalSize + local_name + local_extra;
    if (data > bytes.size() || csize > bytes.size() - data)
      return malformed("entry " + std::to_string(index) + ": data runs past the end of the file");
    ranges.push_back({begin, data + csize, index});
    at += kCentralSize + name_len + extra_len + comment_len;
    ++index;
  }
  LayoutCheck c;
  c.entries = index;
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      c.status = LayoutCheck::Status::Overlap;
      c.detail = "entries " + std::to_string(ranges[i - 1].index) + " and " + std::to_string(ranges[i].index) +
                 " share bytes at offset " + std::to_string(ranges[i].begin);
      return c;
    }
  }
  c.status = LayoutCheck::Status::Ok;
  return c;
}

}  // namespace mukaika::zip
