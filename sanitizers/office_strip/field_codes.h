// Word field codes ({ PAGE }, { DDEAUTO ... }) as Word and RTF write them.
//
// An allow-list: a field is kept only when its type is one that formats
// something already in the document (page numbers, dates, document
// properties, cross-references, tables of contents, form fields, formulas).
// Everything else - DDE, DDEAUTO, INCLUDETEXT, INCLUDEPICTURE, LINK, IMPORT,
// EMBED, HYPERLINK, MACROBUTTON, DATABASE, QUOTE, PRINT, and any type we do
// not know - is removed and its last displayed result is kept as plain text.
// Shared by office.strip_active (OOXML) and rtf.strip.
#pragma once

#include <string>
#include <string_view>

namespace mukaika::office_strip {

// The field type: the first word of the instruction, upper-cased ("" when
// there is none). " page \* MERGEFORMAT" -> "PAGE"; "=SUM(A1)" -> "=".
std::string field_type(std::string_view instruction);

// True when a field with this instruction may stay.
bool field_allowed(std::string_view instruction);

// True when the field is a DDE field (reported separately: it is the classic
// attack, not a formatting field).
bool field_is_dde(std::string_view instruction);

}  // namespace mukaika::office_strip
