// PDFs made at test and benchmark time, so that no large binary sample has
// to live in the repository. Test-only code (linked into the unit tests and
// the benchmark tool, never into the gateway).
#pragma once

#include <string>
#include <vector>

namespace mukaika::pdf_samples {

// A Japanese font that fontconfig knows ("IPAGothic", "Noto Sans CJK JP"),
// or "" when none is installed.
std::string japanese_font_family();

// A PDF drawn with cairo: one page per entry of `lines`, each line drawn in
// `family` at 14 pt. The text is real text (embedded CID font with
// ToUnicode), as office software writes it.
std::string text_pdf(const std::vector<std::vector<std::string>>& lines, const std::string& family,
                     double width_pt = 595.0, double height_pt = 842.0);

// The benchmark document: `pages` A4 pages, two of every three dense text
// (Latin and, when a Japanese font exists, Japanese; a table of line art)
// and every third a photograph (a generated, JPEG-compressed landscape,
// colour or grayscale) with a caption.
std::string bench_pdf(int pages);

// A hand-written PDF with every kind of active content a rasterizer must drop:
// document JavaScript (Names tree and OpenAction), a Launch action, page
// additional actions (AA), a URI link annotation, an AcroForm field with a
// JavaScript action, an embedded file and metadata. `pages` pages, each
// showing "Page N" in Helvetica.
std::string active_content_pdf(int pages);

// A hand-written PDF of one page whose MediaBox is `width_pt` x `height_pt`,
// optionally with /Rotate and UserUnit, drawing one filled rectangle.
std::string sized_pdf(double width_pt, double height_pt, int rotate = 0, double user_unit = 1.0);

// A hand-written PDF of one page showing `text` (UTF-16, BMP only) in a
// non-embedded Japanese CID font (Adobe-Japan1, UniJIS-UCS2-H or -V), as
// older Japanese office software writes it; Poppler substitutes a system
// font. `vertical` writes top to bottom (縦書き).
std::string cid_japanese_pdf(const std::u16string& text, bool vertical);

// Builds a syntactically valid PDF from object bodies: objects[i] becomes
// object i+1; object 1 must be the catalog. Computes the xref table.
std::string assemble_pdf(const std::vector<std::string>& objects);

}  // namespace mukaika::pdf_samples
