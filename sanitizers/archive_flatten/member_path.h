// Names of archive members, from the bytes in the archive to a safe relative
// path inside the output zip. They are never used as paths on the gateway's
// own disk.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <string_view>

namespace mukaika::archive_names {

// Raw name bytes to UTF-8: kept when they already are valid UTF-8 (the zip
// UTF-8 flag, 7z, pax, Joliet, and tools that write UTF-8 without saying
// so), else decoded as `fallback_charset` (CP932: what Japanese Windows
// zippers and LHA write); undecodable bytes become U+FFFD.
std::string decode(std::string_view raw, std::string_view fallback_charset);

struct MemberPath {
  std::string folder;  // "docs/2024" (no leading or trailing slash), may be empty
  std::string base;    // "a.txt"
  bool changed = false;  // something was dropped or replaced on the way

  std::string full() const { return folder.empty() ? base : folder + "/" + base; }
};

// Splits on '/' and '\' (DOS zippers write both), drops empty, "." and ".."
// components and a leading drive ("C:"), makes each component a safe file
// name (no control, bidi or forbidden characters, no device names), caps the
// folder depth and the total length. An empty base becomes `fallback`.
MemberPath safe_path(std::string_view utf8_name, std::size_t max_name_chars, std::string_view fallback);

// Output paths, unique the way Windows sees them (ASCII case folded): a
// second "Report.txt" next to "report.txt" becomes "Report (2).txt".
class UniquePaths {
 public:
  // Returns `path` or a renamed variant; `path.changed` is set when renamed.
  MemberPath claim(MemberPath path);

 private:
  std::set<std::string> taken_;
};

}  // namespace mukaika::archive_names
