// Turning text in the charsets Japanese mail really uses into UTF-8.
//
// Promises: never throws on bad input and never reads past `bytes`; bytes
// that cannot be decoded become U+FFFD and are counted, so a caller can
// decide whether the input "really is text". ISO-2022-JP is decoded as
// Microsoft mailers write it (CP50220/50221/50222: NEC row 13 such as ①,
// ㈱, ㍻, NEC-selected IBM extensions such as 髙, half-width katakana),
// which glibc's ISO-2022-JP converter rejects; Shift_JIS labels are read as
// CP932; EUC-JP as eucJP-ms. Other labels go to iconv.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mukaika::charset {

struct Decoded {
  std::string utf8;       // always valid UTF-8
  std::string charset;    // canonical name actually used, e.g. "iso-2022-jp"
  std::size_t invalid = 0;  // input sequences replaced by U+FFFD
  bool sniffed = false;   // true when we guessed: no/unknown label, or a label the bytes contradict
};

// Canonical name for a charset label ("Shift_JIS", "x-sjis", "MS932" ->
// "cp932"; "ISO-2022-JP", "CP50221" -> "iso-2022-jp"; "EUC-JP" -> "euc-jp";
// "utf8" -> "utf-8"; "us-ascii" -> "us-ascii"), or the lower-cased label when
// iconv knows it, or "" when nothing knows it.
std::string canonical(std::string_view label);

// Best guess for unlabelled bytes: "utf-8" (BOM or valid UTF-8, including
// pure ASCII), "utf-16le"/"utf-16be" (BOM), "iso-2022-jp" (escape
// sequences), else "cp932" or "euc-jp" by which decodes more plausibly.
std::string sniff(std::string_view bytes);

// Decode `bytes` labelled `label` (empty or unknown: sniff). A label of
// us-ascii or utf-8 on bytes that are not valid in it is sniffed again,
// because mislabelled Japanese mail is common. A UTF-8 BOM is dropped.
Decoded to_utf8(std::string_view bytes, std::string_view label);

// True when `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace mukaika::charset
