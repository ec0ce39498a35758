// A small PNG of a PDF's first page, for the drop box's inbox.
//
// Promises: renders only the first page (Poppler with cairo) so that its
// longer side is at most `max_side_px`; returns nullopt for anything it
// cannot open or render (encrypted, broken, no pages). Meant to run in a
// sandboxed worker on the sanitized PDF, one call at a time in that process:
// it does not take part in pdf.rasterize's per-process font lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mukaika {

std::optional<std::string> pdf_first_page_png(std::string_view pdf, int max_side_px);

}  // namespace mukaika
