// text.normalize: plain-text items (bodies and txt/csv attachments).
//
// Promises: the output is UTF-8 text decoded from the declared charset (or a
// sniffed one); bytes that are not really text (NUL bytes, many undecodable
// sequences, binary control characters) are removed with that reason, never
// passed. A file whose extension is not a text extension gets ".txt"
// appended, so a text file named ".html" or ".js" cannot open as one.
// CSV/TSV attachments get a UTF-8 BOM (option csv_bom, default true) so that
// Japanese Excel reads them correctly.
#pragma once

#include <memory>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

std::unique_ptr<Sanitizer> make_text_normalize(const toml::table& options);

}  // namespace mukaika
