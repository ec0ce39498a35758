// html.to_text: HTML (a mail body or a file) becomes readable plain text.
//
// Promises: the output is UTF-8 plain text with nothing active left:
// scripts, styles, comments, forms' hidden values and head content are
// dropped; paragraphs, line breaks, lists, headings and tables (one row a
// line) keep their shape; a link's target (http, https, mailto only) is
// written next to its text; entities are decoded. Parsing is libxml2's HTML
// parser with the network off; input of any brokenness gives some text or a
// clear block, never a crash.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

struct HtmlToTextOptions {
  bool links = true;               // write "text (https://...)"
  std::size_t max_bytes = 10 << 20;  // output is cut (with a marker) beyond this
};

// `html` must be UTF-8 (decode it first with charset::to_utf8).
std::string html_to_text(std::string_view html, const HtmlToTextOptions& options);

// Finds <meta charset=...> or <meta http-equiv=Content-Type content="...;charset=...">
// in the first few KiB; "" when absent.
std::string html_meta_charset(std::string_view html);

std::unique_ptr<Sanitizer> make_html_to_text(const toml::table& options);

}  // namespace mukaika
