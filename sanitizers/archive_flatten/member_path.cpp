#include "archive_flatten/member_path.h"

#include <vector>

#include "file_name.h"
#include "mime/charset.h"

namespace mukaika::archive_names {

namespace {

// Windows Explorer cannot open paths longer than MAX_PATH (260); leave room
// for the folder the recipient extracts into.
constexpr std::size_t kMaxPathChars = 180;
constexpr std::size_t kMaxFolderDepth = 16;

std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string fold_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

bool is_drive(std::string_view c) {
  return c.size() == 2 && c[1] == ':' && ((c[0] >= 'A' && c[0] <= 'Z') || (c[0] >= 'a' && c[0] <= 'z'));
}

}  // namespace

std::string decode(std::string_view raw, std::string_view fallback_charset) {
  if (charset::is_valid_utf8(raw)) return std::string(raw);
  return charset::to_utf8(raw, fallback_charset).utf8;
}

MemberPath safe_path(std::string_view name, std::size_t max_name_chars, std::string_view fallback) {
  MemberPath out;
  std::vector<std::string> parts;
  std::size_t start = 0;
  bool first = true;
  while (start <= name.size()) {
    std::size_t end = name.find_first_of("/\\", start);
    std::string_view part = name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? name.size() + 1 : end + 1;
    const bool leading = first;
    first = false;
    if (part.empty() || part == ".") {
      // "a//b", "./a" and a leading "/" are harmless spellings, but a leading
      // "/" is an absolute path: say that it was changed.
      if (leading && start <= name.size() && part.empty()) out.changed = true;
      continue;
    }
    if (part == ".." || (leading && is_drive(part))) {
      out.changed = true;
      continue;
    }
    std::string safe = safe_file_name(part, max_name_chars, "_");
    if (safe != part) out.changed = true;
    parts.push_back(std::move(safe));
  }
  if (parts.empty()) {
    out.base = std::string(fallback);
    out.changed = true;
    return out;
  }
  out.base = std::move(parts.back());
  parts.pop_back();
  // Too deep or too long for the recipient's Explorer: keep the innermost
  // folders, which say most about the file.
  std::size_t total = utf8_chars(out.base);
  for (const auto& p : parts) total += utf8_chars(p) + 1;
  std::size_t drop = 0;
  while (drop < parts.size() && (parts.size() - drop > kMaxFolderDepth || total > kMaxPathChars)) {
    total -= utf8_chars(parts[drop]) + 1;
    ++drop;
  }
  if (drop > 0) out.changed = true;
  for (std::size_t i = drop; i < parts.size(); ++i) out.folder += (out.folder.empty() ? "" : "/") + parts[i];
  return out;
}

MemberPath UniquePaths::claim(MemberPath path) {
  if (taken_.insert(fold_ascii(path.full())).second) return path;
  std::string stem = path.base, ext;
  if (auto dot = path.base.rfind('.'); dot != std::string::npos && dot > 0) {
    stem = path.base.substr(0, dot);
    ext = path.base.substr(dot);
  }
  for (int n = 2;; ++n) {
    MemberPath candidate = path;
    candidate.base = stem + " (" + std::to_string(n) + ")" + ext;
    candidate.changed = true;
    if (taken_.insert(fold_ascii(candidate.full())).second) return candidate;
  }
}

}  // namespace mukaika::archive_names
