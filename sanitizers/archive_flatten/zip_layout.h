// A minimal reading of a zip's central directory, only to find entries whose
// data overlap. libarchive reads a zip through its central directory when it
// can seek (it always can from memory), so entries that share bytes (David
// Fifield's "better zip bomb": thousands of entries pointing into one
// compressed kernel) would each be inflated in full. No honest zip writer
// produces overlapping entries, so any overlap is treated as a bomb.
//
// Promises: never reads outside `bytes`; never inflates anything; linear in
// the size of the central directory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mukaika::zip {

struct LayoutCheck {
  enum class Status {
    NoCentralDirectory,  // no end-of-central-directory record: nothing to check
    Ok,
    Overlap,             // two entries' local header + data ranges intersect
    Malformed,           // the central directory points outside the file or is cut short
  };
  Status status = Status::NoCentralDirectory;
  std::uint64_t entries = 0;  // central directory entries seen
  std::string detail;         // for Overlap/Malformed: which entries, which offsets
};

LayoutCheck check_entry_layout(std::string_view bytes);

}  // namespace mukaika::zip
