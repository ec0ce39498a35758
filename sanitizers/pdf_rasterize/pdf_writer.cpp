// The streaming PDF writer; see pdf_writer.h.
//
// The text layer follows what Tesseract and OCRmyPDF write, because every
// viewer handles it: a Type0 font with Identity-H encoding over a CIDFontType2
// whose embedded TrueType has no visible glyph, text render mode 3
// (invisible), each word stretched (Tz) over its box. Unlike Tesseract, CIDs
// are not UTF-16 code units: each distinct character gets the next free CID
// and the ToUnicode map (written at the end) maps it back, so characters
// outside the BMP (𠮷, common in Japanese names) copy as one character.
#include "pdf_rasterize/pdf_writer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <libdeflate.h>

namespace mukaika {
namespace {

// Fixed object numbers; pages follow.
constexpr int kCatalog = 1;
constexpr int kPages = 2;
constexpr int kFont = 3;
constexpr int kCidFont = 4;
constexpr int kFontDescriptor = 5;
constexpr int kFontFile = 6;
constexpr int kCidToGid = 7;
constexpr int kToUnicode = 8;
constexpr int kFirstFree = 9;

constexpr std::uint16_t kReplacementCid = 1;  // U+FFFD, always present
constexpr double kGlyphWidth = 0.5;           // of the font size, matches /DW 500
constexpr double kDescent = 0.2;              // of the font size, matches /Descent -200

// A number as PDF wants it: no exponent, at most 4 decimals, no "-0".
std::string num(double v) {
  if (!std::isfinite(v)) v = 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  std::string s(buf);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0" || s.empty()) s = "0";
  return s;
}

void put16(std::string& s, unsigned v) {
  s += static_cast<char>((v >> 8) & 0xFF);
  s += static_cast<char>(v & 0xFF);
}
void put32(std::string& s, std::uint32_t v) {
  put16(s, v >> 16);
  put16(s, v & 0xFFFF);
}

void hex4(std::string& out, unsigned v) {
  static const char* digits = "0123456789ABCDEF";
  for (int shift = 12; shift >= 0; shift -= 4) out += digits[(v >> shift) & 0xF];
}

// UTF-16BE hex of one code point (surrogate pair outside the BMP).
std::string utf16_hex(char32_t c) {
  std::string out;
  if (c >= 0x10000) {
    const char32_t v = c - 0x10000;
    hex4(out, 0xD800 + (v >> 10));
    hex4(out, 0xDC00 + (v & 0x3FF));
  } else {
    hex4(out, c);
  }
  return out;
}

// Characters that must not reach the text layer: controls, non-characters,
// lone surrogates, code points beyond Unicode.
bool keep_char(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return false;
  if (c >= 0xD800 && c <= 0xDFFF) return false;
  if (c == 0xFFFE || c == 0xFFFF || c > 0x10FFFF) return false;
  return true;
}

std::uint32_t table_checksum(std::string_view t) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < t.size(); i += 4) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k)
      v = (v << 8) | (i + k < t.size() ? static_cast<unsigned char>(t[i + k]) : 0u);
    sum += v;
  }
  return sum;
}

}  // namespace

std::string glyphless_truetype_font() {
  // Tables in tag order. Two glyphs (.notdef and the glyph every CID maps
  // to), both without contours, 500 units wide on a 1000-unit em. No OS/2
  // table: PDF viewers take metrics from the font descriptor.
  struct Table {
    const char* tag;
    std::string data;
  };
  std::string cmap;
  put16(cmap, 0), put16(cmap, 1);            // version, one subtable
  put16(cmap, 3), put16(cmap, 1), put32(cmap, 12);  // Windows Unicode BMP
  put16(cmap, 4), put16(cmap, 24), put16(cmap, 0);  // format 4, length, language
  put16(cmap, 2), put16(cmap, 2), put16(cmap, 0), put16(cmap, 0);  // one segment
  put16(cmap, 0xFFFF), put16(cmap, 0), put16(cmap, 0xFFFF), put16(cmap, 1), put16(cmap, 0);

  std::string head;
  put32(head, 0x00010000), put32(head, 0x00010000), put32(head, 0);  // version, revision, checksum adj.
  put32(head, 0x5F0F3CF5), put16(head, 0x000B), put16(head, 1000);   // magic, flags, units per em
  for (int i = 0; i < 4; ++i) put32(head, 0);                        // created, modified
  put16(head, 0), put16(head, 0x10000 - 200), put16(head, 500), put16(head, 800);  // bbox
  put16(head, 0), put16(head, 8), put16(head, 2), put16(head, 0), put16(head, 0);

  std::string hhea;
  put32(hhea, 0x00010000), put16(hhea, 800), put16(hhea, 0x10000 - 200), put16(hhea, 0), put16(hhea, 500);
  put16(hhea, 0), put16(hhea, 0), put16(hhea, 0), put16(hhea, 1), put16(hhea, 0), put16(hhea, 0);
  for (int i = 0; i < 4; ++i) put16(hhea, 0);
  put16(hhea, 0), put16(hhea, 2);  // metric data format, number of hMetrics

  std::string hmtx;
  put16(hmtx, 500), put16(hmtx, 0), put16(hmtx, 500), put16(hmtx, 0);
  std::string loca;
  put16(loca, 0), put16(loca, 0), put16(loca, 0);  // numGlyphs + 1 offsets, all 0: empty glyphs
  std::string glyf(4, '\0');  // both glyphs are empty; a few bytes keep readers happy

  std::string maxp;
  put32(maxp, 0x00010000), put16(maxp, 2);
  for (int i = 0; i < 13; ++i) put16(maxp, i == 4 ? 2 : 0);  // maxZones = 2

  std::string name;
  const std::u16string family = u"MukaikaGlyphless";
  std::string family_be;
  for (char16_t c : family) put16(family_be, c);
  const unsigned ids[] = {1, 2, 4, 6};
  const std::string subfamily_be = [] {
    std::string s;
    for (char16_t c : std::u16string(u"Regular")) put16(s, c);
    return s;
  }();
  put16(name, 0), put16(name, 4), put16(name, 6 + 4 * 12);
  std::string strings;
  for (unsigned id : ids) {
    const std::string& s = id == 2 ? subfamily_be : family_be;
    put16(name, 3), put16(name, 1), put16(name, 0x409), put16(name, id);
    put16(name, static_cast<unsigned>(s.size())), put16(name, static_cast<unsigned>(strings.size()));
    strings += s;
  }
  name += strings;

  std::string post;
  put32(post, 0x00030000);
  for (int i = 0; i < 7; ++i) put32(post, i == 2 ? 1 : 0);  // isFixedPitch = 1

  std::array<Table, 9> tables{{{"cmap", cmap}, {"glyf", glyf}, {"head", head}, {"hhea", hhea}, {"hmtx", hmtx},
                               {"loca", loca}, {"maxp", maxp}, {"name", name}, {"post", post}}};
  std::string font;
  const unsigned n = static_cast<unsigned>(tables.size());
  put32(font, 0x00010000), put16(font, n), put16(font, 128), put16(font, 3), put16(font, n * 16 - 128);
  std::uint32_t offset = 12 + 16 * n;
  std::size_t head_offset = 0;
  for (const auto& t : tables) {
    font.append(t.tag, 4);
    put32(font, table_checksum(t.data)), put32(font, offset), put32(font, static_cast<std::uint32_t>(t.data.size()));
    if (std::string_view(t.tag) == "head") head_offset = offset;
    offset += static_cast<std::uint32_t>((t.data.size() + 3) & ~std::size_t{3});
  }
  for (const auto& t : tables) {
    font += t.data;
    font.append((4 - t.data.size() % 4) % 4, '\0');
  }
  const std::uint32_t adjust = 0xB1B0AFBAu - table_checksum(font);
  for (int i = 0; i < 4; ++i) font[head_offset + 8 + i] = static_cast<char>((adjust >> (24 - 8 * i)) & 0xFF);
  return font;
}

std::string PageImage::encoding() const {
  if (filter == Filter::Dct) return color == Color::Rgb ? "rgb-jpeg" : "gray-jpeg";
  const std::string depth = bits == 4 ? "4" : "";
  const std::string base = bits == 1 ? "bilevel"
                                     : (color == Color::Rgb ? "rgb" : color == Color::Indexed ? "indexed" : "gray") + depth;
  return overlays.empty() ? base : base + "+jpeg";
}

void StringSink::write(std::string_view bytes) {
  if (out_.size() + bytes.size() > limit_) throw Full();
  out_.append(bytes);
}

struct PdfWriter::Compressor {
  libdeflate_compressor* c = libdeflate_alloc_compressor(6);
  ~Compressor() { libdeflate_free_compressor(c); }
};

PdfWriter::PdfWriter(PdfSink& sink) : sink_(sink), compressor_(std::make_unique<Compressor>()) {
  if (!compressor_->c) throw std::bad_alloc();
  offsets_.assign(kFirstFree - 1, 0);
  unicode_of_cid_ = {0, 0xFFFD};  // CID 0 is .notdef
  cids_[0xFFFD] = kReplacementCid;
  // The binary comment marks the file as binary for transfer programs.
  write("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
}

PdfWriter::~PdfWriter() = default;

int PdfWriter::new_object() {
  offsets_.push_back(0);
  return static_cast<int>(offsets_.size());
}

void PdfWriter::write(std::string_view s) {
  sink_.write(s);
  offset_ += s.size();
}

void PdfWriter::begin_object(int number) {
  offsets_[static_cast<std::size_t>(number - 1)] = offset_;
  write(std::to_string(number) + " 0 obj\n");
}

std::string PdfWriter::deflate(std::string_view data) {
  std::string out(libdeflate_zlib_compress_bound(compressor_->c, data.size()), '\0');
  const std::size_t n = libdeflate_zlib_compress(compressor_->c, data.data(), data.size(), out.data(), out.size());
  if (n == 0) throw std::runtime_error("deflate failed");
  out.resize(n);
  return out;
}

void PdfWriter::write_stream_object(int number, const std::string& dict_entries, std::string_view data) {
  begin_object(number);
  write("<< " + dict_entries + " /Length " + std::to_string(data.size()) + " >>\nstream\n");
  write(data);
  write("\nendstream\nendobj\n");
}

std::uint16_t PdfWriter::cid_for(char32_t c) {
  auto it = cids_.find(c);
  if (it != cids_.end()) return it->second;
  if (unicode_of_cid_.size() >= 0xFFFF) return kReplacementCid;  // CID space full
  const auto cid = static_cast<std::uint16_t>(unicode_of_cid_.size());
  unicode_of_cid_.push_back(c);
  cids_.emplace(c, cid);
  return cid;
}

std::string PdfWriter::text_layer(const RasterPage& page) {
  std::string ops;
  for (const TextWord& w : page.words) {
    std::string hex;
    int glyphs = 0;
    for (char32_t c : w.text) {
      if (!keep_char(c)) continue;
      hex4(hex, cid_for(c));
      ++glyphs;
    }
    if (glyphs == 0 || !(w.width > 0) || !(w.height > 0)) continue;
    if (w.space_after) hex4(hex, cid_for(U' '));
    const int rot = ((w.rotation % 4) + 4) % 4;
    const bool vertical = rot == 1 || rot == 3;
    const double size = vertical ? w.width : w.height;
    const double length = vertical ? w.height : w.width;
    if (size < 0.1 || length < 0.1) continue;
    // PDF space: origin bottom-left. (a b c d) is the run direction and the
    // glyphs' up direction; the origin is where the baseline starts.
    const double top = page.height_pt - w.y, bottom = page.height_pt - (w.y + w.height);
    double a = 1, b = 0, c = 0, d = 1, ex = w.x, ey = bottom;
    switch (rot) {
      case 1: a = 0, b = -1, c = 1, d = 0, ex = w.x, ey = top; break;
      case 2: a = -1, b = 0, c = 0, d = -1, ex = w.x + w.width, ey = top; break;
      case 3: a = 0, b = 1, c = -1, d = 0, ex = w.x + w.width, ey = bottom; break;
      default: break;
    }
    // The baseline sits at the descent above the box's lower edge (in the
    // glyphs' up direction), so the font's box covers the word's box.
    ex += kDescent * size * c;
    ey += kDescent * size * d;
    const double stretch = std::clamp(100.0 * length / (glyphs * kGlyphWidth * size), 0.1, 100000.0);
    ops += "/F0 " + num(size) + " Tf " + num(stretch) + " Tz " + num(a) + " " + num(b) + " " + num(c) + " " + num(d) +
           " " + num(ex) + " " + num(ey) + " Tm <" + hex + "> Tj\n";
  }
  return ops;
}

std::uint64_t PdfWriter::add_page(const RasterPage& page) {
  const std::uint64_t start = offset_;
  const PageImage& im = page.image;
  if (im.width <= 0 || im.height <= 0 || im.data.empty()) throw std::invalid_argument("PdfWriter: empty page image");

  std::string color_space = im.color == PageImage::Color::Rgb ? "/DeviceRGB" : "/DeviceGray";
  if (im.color == PageImage::Color::Indexed) {
    if (im.palette.empty() || im.palette.size() % 3 != 0 || im.palette.size() > 256 * 3)
      throw std::invalid_argument("PdfWriter: bad palette");
    std::string hex;
    for (unsigned char c : im.palette) {
      static const char* digits = "0123456789ABCDEF";
      hex += digits[c >> 4];
      hex += digits[c & 0xF];
    }
    color_space = "[/Indexed /DeviceRGB " + std::to_string(im.palette.size() / 3 - 1) + " <" + hex + ">]";
  }
  const int image = new_object();
  write_stream_object(image,
                      "/Type /XObject /Subtype /Image /Width " + std::to_string(im.width) + " /Height " +
                          std::to_string(im.height) + " /ColorSpace " + color_space +
                          " /BitsPerComponent " + std::to_string(im.bits) + " /Filter " +
                          (im.filter == PageImage::Filter::Dct ? "/DCTDecode" : "/FlateDecode"),
                      im.data);

  const std::string w = num(page.width_pt), h = num(page.height_pt);
  std::string content = "q " + w + " 0 0 " + h + " 0 0 cm /Im0 Do Q\n";
  std::string xobjects = "/Im0 " + std::to_string(image) + " 0 R";
  const double sx = page.width_pt / im.width, sy = page.height_pt / im.height;
  for (std::size_t i = 0; i < im.overlays.size(); ++i) {
    const PageOverlay& o = im.overlays[i];
    if (o.width <= 0 || o.height <= 0 || o.x < 0 || o.y < 0 || o.x + o.width > im.width ||
        o.y + o.height > im.height || o.data.empty())
      throw std::invalid_argument("PdfWriter: overlay outside the page");
    const int object = new_object();
    write_stream_object(object,
                        "/Type /XObject /Subtype /Image /Width " + std::to_string(o.width) + " /Height " +
                            std::to_string(o.height) + " /ColorSpace " +
                            (o.color == PageOverlay::Color::Rgb ? "/DeviceRGB" : "/DeviceGray") +
                            " /BitsPerComponent 8 /Filter /DCTDecode",
                        o.data);
    const std::string name = "/Im" + std::to_string(i + 1);
    xobjects += " " + name + " " + std::to_string(object) + " 0 R";
    content += "q " + num(o.width * sx) + " 0 0 " + num(o.height * sy) + " " + num(o.x * sx) + " " +
               num(page.height_pt - (o.y + o.height) * sy) + " cm " + name + " Do Q\n";
  }
  const std::string text = text_layer(page);
  if (!text.empty()) {
    content += "BT 3 Tr\n" + text + "ET\n";
    font_used_ = true;
  }
  const int contents = new_object();
  write_stream_object(contents, "/Filter /FlateDecode", deflate(content));

  const int page_object = new_object();
  begin_object(page_object);
  write("<< /Type /Page /Parent " + std::to_string(kPages) + " 0 R /MediaBox [0 0 " + w + " " + h +
        "] /Resources << /XObject << " + xobjects + " >>" +
        (text.empty() ? "" : " /Font << /F0 " + std::to_string(kFont) + " 0 R >>") + " >> /Contents " +
        std::to_string(contents) + " 0 R >>\nendobj\n");
  page_objects_.push_back(page_object);
  return offset_ - start;
}

void PdfWriter::finish() {
  if (page_objects_.empty()) throw std::logic_error("PdfWriter: a PDF needs at least one page");
  begin_object(kPages);
  std::string kids;
  for (int p : page_objects_) kids += std::to_string(p) + " 0 R ";
  write("<< /Type /Pages /Kids [ " + kids + "] /Count " + std::to_string(page_objects_.size()) + " >>\nendobj\n");

  if (font_used_) {
    const char* font_name = "/MukaikaGlyphless";
    begin_object(kFont);
    write(std::string("<< /Type /Font /Subtype /Type0 /BaseFont ") + font_name +
          " /Encoding /Identity-H /DescendantFonts [" + std::to_string(kCidFont) + " 0 R] /ToUnicode " +
          std::to_string(kToUnicode) + " 0 R >>\nendobj\n");
    begin_object(kCidFont);
    write(std::string("<< /Type /Font /Subtype /CIDFontType2 /BaseFont ") + font_name +
          " /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor " +
          std::to_string(kFontDescriptor) + " 0 R /DW 500 /CIDToGIDMap " + std::to_string(kCidToGid) +
          " 0 R >>\nendobj\n");
    begin_object(kFontDescriptor);
    write(std::string("<< /Type /FontDescriptor /FontName ") + font_name +
          " /Flags 5 /FontBBox [0 -200 500 800] /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 800 /StemV 80"
          " /FontFile2 " + std::to_string(kFontFile) + " 0 R >>\nendobj\n");
    const std::string ttf = glyphless_truetype_font();
    write_stream_object(kFontFile, "/Length1 " + std::to_string(ttf.size()) + " /Filter /FlateDecode", deflate(ttf));
    std::string map;
    map.reserve(unicode_of_cid_.size() * 2);
    for (std::size_t cid = 0; cid < unicode_of_cid_.size(); ++cid) put16(map, cid == 0 ? 0 : 1);
    write_stream_object(kCidToGid, "/Filter /FlateDecode", deflate(map));

    std::string cmap =
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n";
    // At most 100 entries per bfchar block (PDF reference, 5.9.2).
    for (std::size_t first = 1; first < unicode_of_cid_.size(); first += 100) {
      const std::size_t last = std::min(unicode_of_cid_.size(), first + 100);
      cmap += std::to_string(last - first) + " beginbfchar\n";
      for (std::size_t cid = first; cid < last; ++cid) {
        cmap += "<";
        hex4(cmap, static_cast<unsigned>(cid));
        cmap += "> <" + utf16_hex(unicode_of_cid_[cid]) + ">\n";
      }
      cmap += "endbfchar\n";
    }
    cmap += "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";
    write_stream_object(kToUnicode, "/Filter /FlateDecode", deflate(cmap));
  } else {
    // Reserved numbers stay valid objects, so the xref needs no free list.
    for (int n : {kFont, kCidFont, kFontDescriptor, kFontFile, kCidToGid, kToUnicode}) {
      begin_object(n);
      write("null\nendobj\n");
    }
  }

  begin_object(kCatalog);
  write("<< /Type /Catalog /Pages " + std::to_string(kPages) + " 0 R >>\nendobj\n");

  const std::uint64_t xref = offset_;
  std::string table = "xref\n0 " + std::to_string(offsets_.size() + 1) + "\n0000000000 65535 f \n";
  for (std::uint64_t off : offsets_) {
    char line[24];
    std::snprintf(line, sizeof line, "%010llu 00000 n \n", static_cast<unsigned long long>(off));
    table += line;
  }
  table += "trailer\n<< /Size " + std::to_string(offsets_.size() + 1) + " /Root " + std::to_string(kCatalog) +
           " 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  write(table);
}

}  // namespace mukaika
