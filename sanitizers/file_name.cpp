#include "file_name.h"

#include "text/utf8.h"

#include <array>
#include <vector>

namespace mukaika {

namespace {

std::vector<char32_t> decode(std::string_view s) {
  std::vector<char32_t> out;
  std::size_t i = 0;
  while (i < s.size()) out.push_back(utf8::next(s, i));
  return out;
}

std::string encode(const std::vector<char32_t>& cps) {
  std::string out;
  for (char32_t cp : cps) utf8::append(out, cp);
  return out;
}

// Characters Windows refuses in names, and both path separators (including
// the full-width and look-alike ones some viewers fold to '/').
bool forbidden(char32_t c) {
  switch (c) {
    case '/': case '\\': case ':': case '*': case '?': case '"': case '<': case '>': case '|':
    case 0x2215: case 0x2044: case 0xFF0F: case 0xFF3C: case 0x29F8: case 0x29F9:
      return true;
    default:
      return false;
  }
}

bool is_device_name(const std::vector<char32_t>& name) {
  // CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without an extension.
  std::string stem;
  for (char32_t c : name) {
    if (c == '.') break;
    if (c > 0x7F) return false;
    stem += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  }
  while (!stem.empty() && stem.back() == ' ') stem.pop_back();
  static constexpr std::array kDevices{"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"};
  for (const char* d : kDevices)
    if (stem == d) return true;
  if (stem.size() == 4 && (stem.rfind("COM", 0) == 0 || stem.rfind("LPT", 0) == 0) && stem[3] >= '0' &&
      stem[3] <= '9')
    return true;
  return false;
}

}  // namespace

std::string safe_file_name(std::string_view name, std::size_t max_chars, std::string_view fallback) {
  std::vector<char32_t> in = decode(name);
  // Keep only the last path component: "../../etc/passwd" -> "passwd".
  std::vector<char32_t> cps;
  for (char32_t c : in) {
    if (c == '/' || c == '\\') {
      cps.clear();
      continue;
    }
    if (utf8::is_invisible(c)) continue;
    if (utf8::is_control(c) || c == 0x2028 || c == 0x2029) {
      cps.push_back('_');
      continue;
    }
    if (forbidden(c)) {
      cps.push_back('_');
      continue;
    }
    cps.push_back(c == 0x3000 ? U' ' : c);  // ideographic space behaves like a space at the ends
  }
  auto trim = [&] {
    while (!cps.empty() && (cps.front() == '.' || cps.front() == ' ')) cps.erase(cps.begin());
    while (!cps.empty() && (cps.back() == '.' || cps.back() == ' ')) cps.pop_back();
  };
  trim();
  if (!cps.empty() && is_device_name(cps)) cps.insert(cps.begin(), '_');

  if (max_chars > 0 && cps.size() > max_chars) {
    // Keep the extension: it decides how the recipient's PC opens the file.
    std::size_t dot = cps.size();
    for (std::size_t i = cps.size(); i-- > 0;) {
      if (cps[i] == '.') {
        dot = i;
        break;
      }
    }
    std::size_t ext_len = cps.size() - dot;
    if (dot == cps.size() || ext_len > 16 || ext_len >= max_chars) ext_len = 0;
    std::vector<char32_t> ext(cps.end() - static_cast<std::ptrdiff_t>(ext_len), cps.end());
    cps.resize(max_chars - ext_len);
    trim();
    cps.insert(cps.end(), ext.begin(), ext.end());
  }
  if (cps.empty()) return std::string(fallback);
  return encode(cps);
}

std::string replace_extension(std::string_view name, std::string_view new_ext) {
  auto dot = name.rfind('.');
  std::string stem(dot == std::string_view::npos || dot == 0 ? name : name.substr(0, dot));
  return stem + "." + std::string(new_ext);
}

}  // namespace mukaika
