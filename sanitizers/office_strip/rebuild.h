// The two package rebuilders behind office.strip_active: OOXML (docx, xlsx,
// pptx and their macro/template forms) and OpenDocument (odt, ods, odp, odg
// and their templates). Both read the zip, keep only what an allow-list says
// a document needs, scrub the XML they keep, and write a new zip.
#pragma once

#include <string>
#include <string_view>

#include "office_strip/findings.h"
#include "office_strip/zip_package.h"
#include "sanitizer.h"

namespace mukaika::office_strip {

struct RebuildResult {
  enum class Status {
    Rebuilt,      // bytes hold the new document
    Unsupported,  // a format we do not rebuild (xlsb, add-ins, XPS, ODF database): remove with `reason`
    Blocked,      // damaged, over a limit, or built to deceive: block with `reason`
  };
  Status status = Status::Blocked;
  Reason reason;
  std::string bytes;
  std::string mime_type;        // of the output, e.g. application/vnd.openxmlformats-officedocument.wordprocessingml.document
  std::string extension;        // of the output, e.g. "docx"
  std::string input_extension;  // what the input really was, e.g. "docm"
  Findings findings;
};

RebuildResult rebuild_ooxml(std::string_view bytes, const ZipLimits& limits);
RebuildResult rebuild_opendocument(std::string_view bytes, const ZipLimits& limits);

// Shared by both rebuilders.
RebuildResult blocked(Reason reason);
RebuildResult unsupported(Reason reason);
// The block for a zip that could not be read within the limits.
RebuildResult zip_failure(const ZipReadResult& zip);
// XML text with &, <, >, " and ' escaped (for attribute values and text).
std::string xml_escape(std::string_view s);
// True when the bytes start the way `mime` (an image type) says they should.
bool image_bytes_match(std::string_view mime, std::string_view bytes);

}  // namespace mukaika::office_strip
