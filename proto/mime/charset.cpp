// STUB: replaced by the real implementation.
#include "mime/charset.h"
namespace mukaika::charset {
std::string canonical(std::string_view label) { return std::string(label); }
std::string sniff(std::string_view) { return "utf-8"; }
Decoded to_utf8(std::string_view bytes, std::string_view) { return {std::string(bytes), "utf-8", 0, false}; }
bool is_valid_utf8(std::string_view) { return true; }
}  // namespace mukaika::charset
