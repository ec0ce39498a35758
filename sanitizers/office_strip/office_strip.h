// office.strip_active: Office documents (OOXML and OpenDocument) rebuilt
// without anything that runs, fetches or embeds.
//
// Promises: the output is a new package built from an allow-list of parts
// (rebuild.h): no VBA or Basic macros, no ActiveX or form controls, no OLE
// objects or embedded documents, no external relationships (templates,
// linked objects, remote pictures, data connections), no custom UI, no DDE
// or other active fields, no Excel 4.0 macro sheets, no event handlers, no
// hyperlinks to outside targets (their text stays). Text, tables, styles,
// pictures (PNG, JPEG, GIF, BMP, TIFF, EMF, WMF whose bytes match their
// type), charts (OOXML), comments, headers and footers stay. A macro-enabled
// file comes out in the macro-free form with its extension (x.docm ->
// x.docx). XML is parsed with libxml2 with DTDs refused outright.
// xlsb, add-ins (xlam, ppam), XPS and OpenDocument databases are removed
// with a reason; damaged packages, packages over the limits and packages
// built to be ambiguous are blocked.
#pragma once

#include <memory>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

std::unique_ptr<Sanitizer> make_office_strip_active(const toml::table& options);

}  // namespace mukaika
