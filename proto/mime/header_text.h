// Header text as Japanese mail writes it: RFC 2047 encoded words (often
// ISO-2022-JP with Microsoft's extensions, often split mid-character across
// words), raw 8-bit bytes (CP932 or UTF-8), RFC 2231 parameters with
// continuations, and RFC 2047 words inside quoted file names (not allowed by
// the RFCs, written by most Japanese mailers anyway).
//
// Promises: never throws on bad input; output is always valid UTF-8.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace mukaika::mime {

// Unfolded, decoded header text (Subject, display names) as UTF-8.
// Adjacent encoded words in the same charset are joined before decoding,
// so a character split across two words survives. Raw 8-bit bytes are read
// as UTF-8 when valid, else as `fallback_charset`.
std::string decode_header_text(std::string_view raw, std::string_view fallback_charset = "cp932");

// The same header with every encoded word rewritten as UTF-8 encoded words
// and raw 8-bit text converted to UTF-8, structure (commas, angle brackets,
// quotes) untouched — so GMime can parse addresses from it without having to
// understand ISO-2022-JP itself.
std::string transcode_to_utf8(std::string_view raw, std::string_view fallback_charset = "cp932");

// A structured header such as Content-Type or Content-Disposition.
struct HeaderValue {
  std::string value;  // "text/plain", "attachment": lower case, trimmed
  std::map<std::string, std::string> params;  // lower-case names; values decoded to UTF-8
};

// Parses `value; a=b; c="d"; e*=charset'lang'%xx; f*0*=..; f*1=..`.
// Continuations are joined in order before decoding; RFC 2047 words in a
// (quoted or not) value are decoded too.
HeaderValue parse_header_params(std::string_view raw, std::string_view fallback_charset = "cp932");

}  // namespace mukaika::mime
