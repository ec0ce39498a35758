// rtf.strip: RTF documents rewritten without embedded objects and active
// fields.
//
// Promises: the output is RTF again (so the text keeps its fonts, paragraphs
// and tables), written anew from our own parse - never bytes copied from the
// input - so what Word reads is exactly what we checked. Left out: \object
// groups (OLE objects, packages, the Equation Editor; their \result picture
// stays), \objdata anywhere, shapes' property groups (\shpinst, \sp: their
// \shprslt stays), fields that are not on the allow-list (field_codes.h:
// DDE, INCLUDETEXT, INCLUDEPICTURE, HYPERLINK, MACROBUTTON, ...: their
// \fldrslt text stays), attached templates, data stores, theme data, font
// embedding, encapsulated HTML, form-field macros, binary data (\bin)
// anywhere but in a picture, pictures that are not PNG, JPEG, EMF, WMF or a
// DIB whose bytes match, and every ignorable destination (\*\x) we do not
// know. \bin is read as Word reads it (no length or a negative one is 0, one
// delimiter space), and pictures are written back in hex, so no \bin leaves.
// Input that does not start with "{\rt" is refused; nesting deeper than the
// limit is blocked.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "office_strip/findings.h"
#include "sanitizer.h"

namespace mukaika {

struct RtfStripOptions {
  int max_depth = 200;  // group nesting
};

struct RtfStripResult {
  enum class Status { Ok, NotRtf, TooDeep };
  Status status = Status::NotRtf;
  std::string rtf;
  office_strip::Findings findings;
};

RtfStripResult strip_rtf(std::string_view input, const RtfStripOptions& options);

std::unique_ptr<Sanitizer> make_rtf_strip(const toml::table& options);

}  // namespace mukaika
