// ASCII case folding for protocol tokens, MIME types, charset names, file
// extensions and mail addresses: only A-Z change, whatever the process's
// locale (std::tolower follows it) and whatever the other bytes are
// (UTF-8 stays as it is).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mukaika {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace mukaika
