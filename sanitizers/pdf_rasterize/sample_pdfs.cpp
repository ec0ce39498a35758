// Test-only PDF generators; see sample_pdfs.h.
#include "pdf_rasterize/sample_pdfs.h"

#include "c_handle.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <cairo-pdf.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include "image_reencode/pixels.h"

namespace mukaika::pdf_samples {
namespace {

using SurfacePtr = Handle<cairo_surface_t, cairo_surface_destroy>;
using CairoPtr = Handle<cairo_t, cairo_destroy>;

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// A PDF surface writing into a string; the string is complete once the
// surface is finished.
struct PdfCanvas {
  std::string out;
  SurfacePtr surface;
  CairoPtr cr;
  PdfCanvas(double w, double h)
      : surface(cairo_pdf_surface_create_for_stream(append_to_string, &out, w, h)), cr(cairo_create(surface.get())) {
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) throw std::runtime_error("cairo pdf surface");
  }
  std::string finish() {
    cr.reset();
    cairo_surface_finish(surface.get());
    surface.reset();
    return std::move(out);
  }
};

const char* const kWords[] = {"municipal", "gateway", "sanitize", "document", "invoice", "budget", "resident",
                              "schedule", "meeting", "report", "network", "separation", "zone", "policy",
                              "the", "of", "and", "to", "for", "with", "on", "annual", "review", "office",
                              "attachment", "procedure", "approval", "department", "registry", "notice"};
const char* const kJapanese[] = {"令和六年度の予算案について、下記のとおり報告いたします。",
                                 "住民基本台帳ネットワークの運用手順を改訂しました。",
                                 "会議の日程は来週火曜日の午後二時からを予定しています。",
                                 "添付の請求書をご確認のうえ、期日までにお支払いください。",
                                 "情報セキュリティ監査の結果、重大な指摘事項はありませんでした。",
                                 "庁内ネットワークの三層分離に関する説明資料です。"};

void draw_text_page(cairo_t* cr, int page, std::mt19937& rng, const std::string& ja_family) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  if (page % 4 == 1) {
    // A coloured heading bar: some text pages are not grayscale.
    cairo_set_source_rgb(cr, 0.1, 0.3, 0.6);
    cairo_rectangle(cr, 40, 40, 515, 28);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
  } else {
    cairo_set_source_rgb(cr, 0, 0, 0);
  }
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, 16);
  cairo_move_to(cr, 48, 60);
  const std::string title = "Section " + std::to_string(page + 1) + ": municipal gateway report";
  cairo_show_text(cr, title.c_str());

  cairo_set_source_rgb(cr, 0, 0, 0);
  std::uniform_int_distribution<int> word(0, static_cast<int>(std::size(kWords)) - 1);
  double y = 92;
  for (int line = 0; line < 44; ++line, y += 14) {
    if (!ja_family.empty() && line % 5 == 2) {
      cairo_select_font_face(cr, ja_family.c_str(), CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
      cairo_set_font_size(cr, 10.5);
      cairo_move_to(cr, 48, y);
      cairo_show_text(cr, kJapanese[(page + line) % std::size(kJapanese)]);
      continue;
    }
    cairo_select_font_face(cr, "DejaVu Serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 10);
    std::string text;
    while (text.size() < 92) text += std::string(kWords[word(rng)]) + " ";
    cairo_move_to(cr, 48, y);
    cairo_show_text(cr, text.c_str());
  }
  // A table: line art.
  cairo_set_line_width(cr, 0.6);
  for (int r = 0; r <= 6; ++r) {
    cairo_move_to(cr, 48, 720 + r * 14);
    cairo_line_to(cr, 547, 720 + r * 14);
  }
  for (int c = 0; c <= 5; ++c) {
    cairo_move_to(cr, 48 + c * 99.8, 720);
    cairo_line_to(cr, 48 + c * 99.8, 804);
  }
  cairo_stroke(cr);
  cairo_set_font_size(cr, 8);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 5; ++c) {
      cairo_move_to(cr, 52 + c * 99.8, 731 + r * 14);
      const std::string cell = std::to_string((page * 31 + r * 7 + c * 13) % 1000) + ",000";
      cairo_show_text(cr, cell.c_str());
    }
}

// A procedural landscape: sky gradient, ridges, value-noise texture. It has
// the statistics of a photograph (smooth gradients plus fine detail), so
// lossless compression does badly on it, as on real photos.
Pixmap landscape(int w, int h, int seed, bool gray) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  const int grid = 64;
  std::vector<float> noise(static_cast<std::size_t>(grid * grid));
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : noise) v = u(rng);
  auto value_noise = [&](float x, float y) {
    int xi = static_cast<int>(std::floor(x)), yi = static_cast<int>(std::floor(y));
    float fx = x - static_cast<float>(xi), fy = y - static_cast<float>(yi);
    auto at = [&](int a, int b) { return noise[static_cast<std::size_t>(((b & (grid - 1)) * grid) + (a & (grid - 1)))]; };
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    float top = at(xi, yi) * (1 - fx) + at(xi + 1, yi) * fx;
    float bottom = at(xi, yi + 1) * (1 - fx) + at(xi + 1, yi + 1) * fx;
    return top * (1 - fy) + bottom * fy;
  };
  std::normal_distribution<float> grain(0.f, 4.f);
  Pixmap p(w, h, gray ? PixelFormat::Gray : PixelFormat::Rgb);
  const float phase = static_cast<float>(seed % 17);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      float fx = static_cast<float>(x) / static_cast<float>(w), fy = static_cast<float>(y) / static_cast<float>(h);
      float ridge = 0.45f + 0.08f * std::sin(fx * 9 + phase) + 0.05f * std::sin(fx * 23 + phase * 2);
      float n = 0, amp = 1, freq = 4, norm = 0;
      for (int o = 0; o < 5; ++o, amp *= 0.5f, freq *= 2) {
        n += amp * value_noise(fx * freq + phase, fy * freq);
        norm += amp;
      }
      n /= norm;
      float r, g, b;
      if (fy < ridge) {  // sky with clouds
        float c = std::max(0.f, n - 0.55f) * 2.2f;
        r = 0.45f + 0.3f * fy + c;
        g = 0.62f + 0.2f * fy + c;
        b = 0.92f + c * 0.3f;
      } else {  // hills with foliage texture
        float d = (fy - ridge) / (1 - ridge);
        r = 0.18f + 0.35f * n + 0.1f * d;
        g = 0.35f + 0.4f * n - 0.1f * d;
        b = 0.12f + 0.2f * n;
      }
      auto clamp = [&](float v) {
        int i = static_cast<int>(v * 255.f + grain(rng));
        return static_cast<unsigned char>(i < 0 ? 0 : i > 255 ? 255 : i);
      };
      unsigned char* px = p.row(y) + static_cast<std::size_t>(x) * p.channels();
      if (gray) {
        px[0] = clamp(0.3f * r + 0.59f * g + 0.11f * b);
      } else {
        px[0] = clamp(r);
        px[1] = clamp(g);
        px[2] = clamp(b);
      }
    }
  }
  return p;
}

void draw_photo_page(cairo_t* cr, int page) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  const bool gray = page % 2 == 0;
  Pixmap photo = landscape(1500, 1100, page, gray);
  std::string jpeg = encode_jpeg(photo, 88);
  // cairo wants the pixels too (it draws them when it cannot use the JPEG).
  SurfacePtr image(cairo_image_surface_create(CAIRO_FORMAT_RGB24, photo.width(), photo.height()));
  cairo_surface_flush(image.get());
  unsigned char* data = cairo_image_surface_get_data(image.get());
  const int stride = cairo_image_surface_get_stride(image.get());
  for (int y = 0; y < photo.height(); ++y) {
    auto* out = reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
    const unsigned char* in = photo.row(y);
    for (int x = 0; x < photo.width(); ++x) {
      unsigned r, g, b;
      if (gray) {
        r = g = b = in[x];
      } else {
        r = in[3 * x], g = in[3 * x + 1], b = in[3 * x + 2];
      }
      out[x] = (r << 16) | (g << 8) | b;
    }
  }
  cairo_surface_mark_dirty(image.get());
  // cairo embeds the JPEG bytes as they are (DCTDecode), as PDF producers
  // do. The surface owns them from here (cairo calls the destroy function).
  auto owned = std::make_unique<std::string>(std::move(jpeg));
  const auto* bytes = reinterpret_cast<const unsigned char*>(owned->data());
  const auto size = owned->size();
  if (cairo_surface_set_mime_data(image.get(), CAIRO_MIME_TYPE_JPEG, bytes, size,
                                  [](void* p) { std::unique_ptr<std::string>(static_cast<std::string*>(p)); },
                                  owned.get()) == CAIRO_STATUS_SUCCESS)
    owned.release();
  cairo_save(cr);
  cairo_translate(cr, 40, 60);
  cairo_scale(cr, 515.0 / photo.width(), 515.0 / photo.width());
  cairo_set_source_surface(cr, image.get(), 0, 0);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_ITALIC, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 11);
  cairo_move_to(cr, 48, 460);
  const std::string caption = "Figure " + std::to_string(page + 1) + ": survey photograph of the river basin";
  cairo_show_text(cr, caption.c_str());
}

}  // namespace

std::string japanese_font_family() {
  static const std::string family = [] {
    struct PatternDeleter {
      void operator()(FcPattern* p) const { FcPatternDestroy(p); }
    };
    struct ObjectSetDeleter {
      void operator()(FcObjectSet* o) const { FcObjectSetDestroy(o); }
    };
    struct FontSetDeleter {
      void operator()(FcFontSet* f) const { FcFontSetDestroy(f); }
    };
    std::unique_ptr<FcPattern, PatternDeleter> pattern(FcNameParse(reinterpret_cast<const FcChar8*>(":lang=ja")));
    std::unique_ptr<FcObjectSet, ObjectSetDeleter> os(FcObjectSetBuild(FC_FAMILY, nullptr));
    std::unique_ptr<FcFontSet, FontSetDeleter> set(FcFontList(nullptr, pattern.get(), os.get()));
    std::string found;
    for (int i = 0; set && i < set->nfont && found.empty(); ++i) {
      FcChar8* fam = nullptr;
      if (FcPatternGetString(set->fonts[i], FC_FAMILY, 0, &fam) == FcResultMatch) {
        std::string f(reinterpret_cast<const char*>(fam));
        if (f.find("Gothic") != std::string::npos || f.find("Noto Sans CJK") != std::string::npos) found = f;
      }
    }
    return found;
  }();
  return family;
}

std::string text_pdf(const std::vector<std::vector<std::string>>& pages, const std::string& family, double width_pt,
                     double height_pt) {
  PdfCanvas canvas(width_pt, height_pt);
  cairo_t* cr = canvas.cr.get();
  for (const auto& lines : pages) {
    cairo_select_font_face(cr, family.c_str(), CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 14);
    cairo_set_source_rgb(cr, 0, 0, 0);
    double y = 60;
    for (const auto& line : lines) {
      cairo_move_to(cr, 50, y);
      cairo_show_text(cr, line.c_str());
      y += 24;
    }
    cairo_show_page(cr);
  }
  return canvas.finish();
}

std::string bench_pdf(int pages) {
  PdfCanvas canvas(595, 842);
  std::mt19937 rng(42);
  const std::string ja = japanese_font_family();
  for (int page = 0; page < pages; ++page) {
    if (page % 3 == 2)
      draw_photo_page(canvas.cr.get(), page);
    else
      draw_text_page(canvas.cr.get(), page, rng, ja);
    cairo_show_page(canvas.cr.get());
  }
  return canvas.finish();
}

std::string assemble_pdf(const std::vector<std::string>& objects) {
  std::string out = "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objects[i] + "\nendobj\n";
  }
  const std::size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objects.size() + 1) + "\n0000000000 65535 f \n";
  for (std::size_t off : offsets) {
    char line[24];
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(objects.size() + 1) + " /Root 1 0 R /Info 3 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return out;
}

std::string active_content_pdf(int pages) {
  // Objects: 1 catalog, 2 pages, 3 info, 4 JavaScript action, 5 Launch
  // action, 6 names, 7 font, 8 embedded file, 9 filespec, 10 acroform field,
  // 11 metadata, then per page: page, contents, link annotation.
  std::vector<std::string> o;
  std::string kids;
  for (int i = 0; i < pages; ++i) kids += std::to_string(12 + 3 * i) + " 0 R ";
  o.push_back("<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R /Names 6 0 R /AcroForm << /Fields [10 0 R] >> "
              "/Metadata 11 0 R /AA << /WC 5 0 R >> /Outlines << /Count 0 >> >>");
  o.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages) + " >>");
  o.push_back("<< /Title (Quarterly report) /Author (attacker) /Producer (hand-written) >>");
  o.push_back("<< /Type /Action /S /JavaScript /JS (app.alert\\('pwned'\\); this.exportDataObject\\({cName: 'x.exe', nLaunch: 2}\\);) >>");
  o.push_back("<< /Type /Action /S /Launch /F (cmd.exe) /Win << /F (cmd.exe) /P (/c calc.exe) >> >>");
  o.push_back("<< /JavaScript << /Names [(init) 4 0 R] >> /EmbeddedFiles << /Names [(payload.exe) 9 0 R] >> >>");
  o.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  const std::string payload = "stand-in for an embedded executable (payload.exe)";
  o.push_back("<< /Type /EmbeddedFile /Length " + std::to_string(payload.size()) + " >>\nstream\n" + payload +
              "\nendstream");
  o.push_back("<< /Type /Filespec /F (payload.exe) /EF << /F 8 0 R >> >>");
  o.push_back("<< /FT /Btn /T (button) /Rect [0 0 10 10] /Subtype /Widget /P 12 0 R /A 4 0 R >>");
  const std::string xmp = "<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret-metadata</x:xmpmeta>";
  o.push_back("<< /Type /Metadata /Subtype /XML /Length " + std::to_string(xmp.size()) + " >>\nstream\n" + xmp +
              "\nendstream");
  for (int i = 0; i < pages; ++i) {
    const int page = 12 + 3 * i;
    const std::string content = "BT /F1 36 Tf 72 700 Td (Page " + std::to_string(i + 1) + ") Tj ET";
    o.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 7 0 R >> >> "
                "/Contents " + std::to_string(page + 1) + " 0 R /Annots [" + std::to_string(page + 2) +
                " 0 R 10 0 R] /AA << /O 5 0 R /C 4 0 R >> >>");
    o.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
    o.push_back("<< /Type /Annot /Subtype /Link /Rect [72 690 300 740] /A << /S /URI /URI (http://evil.example/x) >> "
                "/Border [0 0 0] >>");
  }
  return assemble_pdf(o);
}

std::string cid_japanese_pdf(const std::u16string& text, bool vertical) {
  std::string hex;
  for (char16_t c : text) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04X", static_cast<unsigned>(c));
    hex += buf;
  }
  const std::string encoding = vertical ? "UniJIS-UCS2-V" : "UniJIS-UCS2-H";
  // Vertical text starts at the top right; horizontal at the top left.
  const std::string content = vertical ? "BT /F1 28 Tf 1 0 0 1 400 760 Tm <" + hex + "> Tj ET"
                                       : "BT /F1 28 Tf 1 0 0 1 60 700 Tm <" + hex + "> Tj ET";
  return assemble_pdf(
      {"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [4 0 R] /Count 1 >>", "<< /Producer (test) >>",
       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R /Resources << /Font << /F1 6 0 R >> >> >>",
       "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream",
       "<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light-" + encoding + " /Encoding /" + encoding +
           " /DescendantFonts [7 0 R] >>",
       "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /CIDSystemInfo << /Registry (Adobe) "
       "/Ordering (Japan1) /Supplement 2 >> /FontDescriptor 8 0 R /DW 1000 >>",
       "<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [-170 -331 1024 903] /ItalicAngle 0 "
       "/Ascent 723 /Descent -241 /CapHeight 709 /StemV 69 >>"});
}

std::string sized_pdf(double width_pt, double height_pt, int rotate, double user_unit) {
  char box[128];
  std::snprintf(box, sizeof box, "[0 0 %.3f %.3f]", width_pt, height_pt);
  std::string extra;
  if (rotate != 0) extra += " /Rotate " + std::to_string(rotate);
  if (user_unit != 1.0) extra += " /UserUnit " + std::to_string(user_unit);
  const std::string content = "0.2 0.4 0.8 rg 10 10 50 30 re f";
  return assemble_pdf({"<< /Type /Catalog /Pages 2 0 R >>",
                       "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                       "<< /Producer (test) >>",
                       "<< /Type /Page /Parent 2 0 R /MediaBox " + std::string(box) + extra +
                           " /Contents 5 0 R /Resources << >> >>",
                       "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream"});
}

}  // namespace mukaika::pdf_samples
