// ASCII case folding for protocol tokens, MIME types, charset names, file
// extensions and mail addresses: only A-Z change, whatever the process's
// locale (std::tolower follows it) and whatever the other bytes are
// (UTF-8 stays as it is).
#pragma once

#include <string>
#include <string_view>

namespace mukaika {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace mukaika
