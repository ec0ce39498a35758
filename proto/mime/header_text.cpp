// STUB: replaced by the real implementation.
#include "mime/header_text.h"
namespace mukaika::mime {
std::string decode_header_text(std::string_view raw, std::string_view) { return std::string(raw); }
std::string transcode_to_utf8(std::string_view raw, std::string_view) { return std::string(raw); }
HeaderValue parse_header_params(std::string_view raw, std::string_view) { return {std::string(raw), {}}; }
}  // namespace mukaika::mime
