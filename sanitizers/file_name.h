// Safe file names for attachments, archive members and downloads.
//
// Promises: the result is valid UTF-8 with no path separators, no control
// characters (C0, C1, DEL, CR/LF), no bidi or zero-width characters (U+202E
// and friends make "cod.exe" read as "exe.doc"), none of the characters
// Windows forbids, no leading dots, no trailing dots or spaces, no Windows
// device names, and at most `max_chars` characters — the extension is kept
// when shortening. An empty result becomes `fallback`. Names are never used
// as paths on the gateway's own disk without this.
#pragma once

#include <string>
#include <string_view>

namespace mukaika {

std::string safe_file_name(std::string_view name, std::size_t max_chars = 120,
                           std::string_view fallback = "attachment");

// Replaces the extension (everything after the last dot) of a safe name:
// replace_extension("x.docm", "docx") == "x.docx"; appends when there is none.
std::string replace_extension(std::string_view name, std::string_view new_ext);

}  // namespace mukaika
