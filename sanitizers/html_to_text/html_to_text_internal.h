// Internals of html.to_text that its unit test needs: rendering a tree that
// was built by hand. libxml2's parser stops nesting at 256 levels, so only a
// hand-built tree can show that the tree walk itself is not recursive.
#pragma once

#include <string>

#include <libxml/tree.h>

#include "html_to_text/html_to_text.h"

namespace mukaika::html_to_text_detail {

// Text of `doc` as html_to_text() would give it (cut at options.max_bytes).
std::string render_document(const xmlDoc& doc, const HtmlToTextOptions& options);

}  // namespace mukaika::html_to_text_detail
