// pdf.rasterize with real Poppler: active content gone, page count kept,
// password-protected PDFs blocked, text searchable (Japanese, vertical,
// rotated pages), limits, page encodings, and the default policy.
#include "pdf_rasterize/pdf_rasterize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cairo.h>
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-page.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "pdf_rasterize/page_encoder.h"
#include "pdf_rasterize/pdf_writer.h"
#include "pdf_rasterize/sample_pdfs.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

namespace fs = std::filesystem;
using Status = PdfRasterizeResult::Status;

// ---- helpers ----

Item pdf_item(std::string bytes, std::string name = "report.pdf") {
  Item item;
  item.bytes = std::move(bytes);
  item.name = std::move(name);
  item.path = "mail.eml/" + item.name;
  item.kind = Kind::Pdf;
  item.detected_type = "application/pdf";
  return item;
}

Outcome rasterize(const std::string& pdf, testing::TestContext& t, PdfRasterizeOptions options = {}) {
  auto s = pdf_rasterize_sanitizer(options);
  return s->process(pdf_item(pdf), t.ctx);
}

std::unique_ptr<poppler::document> open(const std::string& pdf) {
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size())));
  EXPECT_TRUE(doc && !doc->is_locked());
  return doc;
}

std::string text_of(const std::string& pdf) {
  auto doc = open(pdf);
  if (!doc) return {};
  std::string out;
  for (int i = 0; i < doc->pages(); ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    auto bytes = page->text().to_utf8();
    out.append(bytes.begin(), bytes.end());
    out += "\n";
  }
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool has_note(const testing::TestContext& t, const std::string& code) {
  for (const auto& n : t.report.notes)
    if (n.reason.code == code) return true;
  return false;
}

// Names of PDF syntax that must never appear in a rasterized output.
const char* const kActiveNames[] = {"JavaScript", "/JS", "OpenAction", "/AA", "Launch", "/URI", "/Link",
                                    "/Annots", "EmbeddedFile", "/Filespec", "/AcroForm", "/XFA", "RichMedia",
                                    "/Metadata", "/Outlines", "/Names", "/Info", "/GoTo", "/SubmitForm"};

void expect_no_active_content(const std::string& out) {
  for (const char* name : kActiveNames) EXPECT_FALSE(contains(out, name)) << name << " survived";
}

bool have_qpdf() { return std::system("qpdf --version > /dev/null 2>&1") == 0; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

// qpdf --encrypt USER OWNER 256 [restrictions] -- in out
std::string encrypt(const std::string& pdf, const std::string& user, const std::string& owner,
                    const std::string& restrictions = "", const std::string& bits = "256") {
  // Per process: ctest runs the cases of this file in parallel processes.
  const fs::path dir = fs::path(::testing::TempDir()) / ("pdf_rasterize_qpdf_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_file(dir / "in.pdf", pdf);
  const std::string cmd = "qpdf --encrypt '" + user + "' '" + owner + "' " + bits + " " + restrictions + " -- '" +
                          (dir / "in.pdf").string() + "' '" + (dir / "out.pdf").string() + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return read_file(dir / "out.pdf");
}

// A one-page PDF with Helvetica text on a page with /Rotate.
std::string rotated_text_pdf(int rotate, const std::string& text) {
  const std::string content = "BT /F1 24 Tf 72 700 Td (" + text + ") Tj ET";
  return pdf_samples::assemble_pdf(
      {"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [4 0 R] /Count 1 >>", "<< /Producer (t) >>",
       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Rotate " + std::to_string(rotate) +
           " /Contents 5 0 R /Resources << /Font << /F1 6 0 R >> >> >>",
       "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream",
       "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"});
}

struct Box {
  std::string text;
  double x, y, w, h;
  int rotation;
};

std::vector<Box> boxes_of(const std::string& pdf) {
  std::vector<Box> out;
  auto doc = open(pdf);
  if (!doc) return out;
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  for (const auto& b : page->text_list()) {
    auto u = b.text().to_utf8();
    const auto r = b.bbox();
    out.push_back({std::string(u.begin(), u.end()), r.x(), r.y(), r.width(), r.height(), b.rotation()});
  }
  return out;
}

// ---- active content ----

TEST(PdfRasterize, ActiveContentIsGoneAndPagesAreKept) {
  const std::string in = pdf_samples::active_content_pdf(3);
  // The sample really carries what it claims to.
  for (const char* name : {"JavaScript", "OpenAction", "Launch", "/URI", "EmbeddedFile", "/AA", "/AcroForm"})
    ASSERT_TRUE(contains(in, name)) << name;

  testing::TestContext t;
  Outcome o = rasterize(in, t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.reason.code, "pdf.rasterized");
  EXPECT_EQ(o.type, "application/pdf");
  EXPECT_EQ(o.name, "report.pdf");
  EXPECT_EQ(o.reason.ja, "PDF を画像化しました (3ページ、テキスト検索可)");
  EXPECT_EQ(o.reason.en, "PDF rasterized (3 pages, searchable text)");
  EXPECT_TRUE(o.bytes.starts_with("%PDF-"));
  expect_no_active_content(o.bytes);
  for (const char* s : {"cmd.exe", "calc.exe", "evil.example", "payload.exe", "app.alert", "secret-metadata",
                        "attacker", "Helvetica"})
    EXPECT_FALSE(contains(o.bytes, s)) << s;
  EXPECT_EQ(open(o.bytes)->pages(), 3);
  const std::string text = text_of(o.bytes);
  EXPECT_TRUE(contains(text, "Page 1") && contains(text, "Page 2") && contains(text, "Page 3")) << text;
  EXPECT_TRUE(has_note(t, "pdf.active_removed"));
  EXPECT_TRUE(has_note(t, "pdf.pages"));
}

TEST(PdfRasterize, CorpusPdfsWithActiveContent) {
  const char* env = std::getenv("MUKAIKA_CORPUS");
  const fs::path corpus = env && *env ? env : MUKAIKA_SHARED_CORPUS;
  if (!fs::is_directory(corpus)) GTEST_SKIP() << corpus << " is missing";
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(corpus))
    if (e.is_regular_file() && e.path().extension() == ".pdf") files.push_back(e.path());
  ASSERT_FALSE(files.empty());
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    const std::string in = read_file(f);
    testing::TestContext t;
    Outcome o = rasterize(in, t);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    expect_no_active_content(o.bytes);
    auto original = open(in);
    ASSERT_TRUE(original);
    EXPECT_EQ(open(o.bytes)->pages(), original->pages());
  }
}

// ---- passwords ----

TEST(PdfRasterize, UserPasswordIsBlocked) {
  if (!have_qpdf()) GTEST_SKIP() << "qpdf is not installed";
  const std::string locked = encrypt(pdf_samples::active_content_pdf(1), "user-secret", "owner-secret");
  testing::TestContext t;
  Outcome o = rasterize(locked, t);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "pdf.encrypted");
  EXPECT_TRUE(contains(o.reason.ja, "パスワード"));
  EXPECT_TRUE(contains(o.reason.en, "password"));
  EXPECT_TRUE(o.bytes.empty());
}

TEST(PdfRasterize, OwnerPasswordOnlyIsRasterized) {
  if (!have_qpdf()) GTEST_SKIP() << "qpdf is not installed";
  const std::string restricted =
      encrypt(pdf_samples::active_content_pdf(2), "", "owner-secret", "--print=none --extract=n --modify=none");
  ASSERT_FALSE(contains(restricted, "Page 1"));  // the content really is encrypted
  testing::TestContext t;
  Outcome o = rasterize(restricted, t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_FALSE(contains(o.bytes, "/Encrypt"));
  EXPECT_EQ(open(o.bytes)->pages(), 2);
  EXPECT_TRUE(contains(text_of(o.bytes), "Page 2"));
}

// ---- searchable text ----

TEST(PdfRasterize, JapaneseTextStaysSearchable) {
  const std::string family = pdf_samples::japanese_font_family();
  if (family.empty()) GTEST_SKIP() << "no Japanese font (fonts-ipafont-gothic)";
  const std::string in = pdf_samples::text_pdf(
      {{"請求書 令和6年4月分", "株式会社むかいか 御中", "合計金額 ¥123,456-"}, {"二ページ目: 住民票の写しを添付します"}},
      family);
  testing::TestContext t;
  Outcome o = rasterize(in, t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_FALSE(contains(o.bytes, "IPA"));  // the original font is gone
  const std::string text = text_of(o.bytes);
  for (const char* s : {"請求書", "令和6年4月分", "株式会社むかいか", "御中", "住民票の写しを添付します"})
    EXPECT_TRUE(contains(text, s)) << s << " missing from:\n" << text;

  // Search, as a viewer does it.
  auto doc = open(o.bytes);
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  poppler::rectf where;
  EXPECT_TRUE(page->search(poppler::ustring::from_utf8("株式会社"), where, poppler::page::search_from_top,
                           poppler::case_sensitive));
  // Found where it is on the image: the second line (baseline at 84 pt),
  // at the left margin (50 pt).
  EXPECT_NEAR(where.x(), 50, 3);
  EXPECT_GT(where.y(), 60);
  EXPECT_LT(where.y(), 84);
}

TEST(PdfRasterize, CidFontsHorizontalAndVertical) {
  for (bool vertical : {false, true}) {
    SCOPED_TRACE(vertical ? "vertical" : "horizontal");
    const std::u16string text = u"請求書の送付について";
    const std::string in = pdf_samples::cid_japanese_pdf(text, vertical);
    testing::TestContext t;
    Outcome o = rasterize(in, t);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    EXPECT_TRUE(contains(text_of(o.bytes), "請求書の送付について")) << text_of(o.bytes);
    // Same place and reading direction as in the original.
    const auto before = boxes_of(in), after = boxes_of(o.bytes);
    ASSERT_EQ(before.size(), 1u);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].rotation, before[0].rotation);
    EXPECT_NEAR(after[0].x, before[0].x, 2);
    EXPECT_NEAR(after[0].y, before[0].y, 2);
    EXPECT_NEAR(after[0].w, before[0].w, 2);
    EXPECT_NEAR(after[0].h, before[0].h, 2);
  }
}

TEST(PdfRasterize, RotatedPagesKeepOrientationAndTextPlace) {
  for (int rotate : {0, 90, 180, 270}) {
    SCOPED_TRACE("Rotate " + std::to_string(rotate));
    const std::string in = rotated_text_pdf(rotate, "Rotated words here");
    testing::TestContext t;
    Outcome o = rasterize(in, t);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    auto doc = open(o.bytes);
    std::unique_ptr<poppler::page> page(doc->create_page(0));
    const auto r = page->page_rect();
    const bool landscape = rotate % 180 != 0;
    EXPECT_DOUBLE_EQ(r.width(), landscape ? 792 : 612);
    EXPECT_DOUBLE_EQ(r.height(), landscape ? 612 : 792);
    EXPECT_FALSE(contains(o.bytes, "/Rotate"));
    EXPECT_TRUE(contains(text_of(o.bytes), "Rotated words here"));
    const auto before = boxes_of(in), after = boxes_of(o.bytes);
    ASSERT_EQ(before.size(), after.size());
    for (std::size_t i = 0; i < before.size(); ++i) {
      EXPECT_EQ(after[i].text, before[i].text);
      EXPECT_EQ(after[i].rotation, before[i].rotation);
      EXPECT_NEAR(after[i].x, before[i].x, 2);
      EXPECT_NEAR(after[i].y, before[i].y, 2);
    }
  }
}

TEST(PdfWriter, CharactersOutsideTheBmpCopyAsOneCharacter) {
  // 𠮷 (U+20BB7) appears in Japanese family names.
  StringSink sink(1 << 20);
  PdfWriter writer(sink);
  RasterPage page;
  page.width_pt = 200;
  page.height_pt = 100;
  std::vector<std::uint32_t> white(400 * 200, 0xFFFFFF);
  PageEncoder encoder({});
  page.image = encoder.encode(reinterpret_cast<unsigned char*>(white.data()), 400 * 4, 400, 200);
  page.words.push_back({U"𠮷野家", 10, 10, 60, 20, 0, true});
  page.words.push_back({U"\x01\x7F\xFFFE", 10, 40, 60, 20, 0, false});  // nothing printable: skipped
  page.words.push_back({U"髙橋", 10, 40, 40, 20, 0, false});
  writer.add_page(page);
  writer.finish();
  const std::string text = text_of(sink.bytes());
  EXPECT_TRUE(contains(text, "𠮷野家")) << text;
  EXPECT_TRUE(contains(text, "髙橋")) << text;
  EXPECT_FALSE(contains(text, "\x01"));
  EXPECT_EQ(writer.pages(), 1);
}

TEST(PdfWriter, GlyphlessFontIsAWellFormedTrueType) {
  const std::string ttf = glyphless_truetype_font();
  ASSERT_GE(ttf.size(), 12u);
  EXPECT_EQ(ttf.substr(0, 4), std::string("\x00\x01\x00\x00", 4));
  // The whole-font checksum with the adjustment is the magic constant.
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < ttf.size(); i += 4) {
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) v = (v << 8) | (i + k < ttf.size() ? static_cast<unsigned char>(ttf[i + k]) : 0u);
    sum += v;
  }
  EXPECT_EQ(sum, 0xB1B0AFBAu);
}

TEST(PdfRasterize, TextLayerCanBeSwitchedOff) {
  PdfRasterizeOptions options;
  options.text_layer = false;
  testing::TestContext t;
  Outcome o = rasterize(pdf_samples::active_content_pdf(1), t, options);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.reason.en, "PDF rasterized (1 page)");
  EXPECT_FALSE(contains(o.bytes, "/Font"));
  EXPECT_FALSE(contains(text_of(o.bytes), "Page"));
}

// ---- limits and broken input ----

TEST(PdfRasterize, ZeroSizePageIsBlocked) {
  // Poppler replaces an empty MediaBox by Letter (what a viewer shows);
  // a 0.5 pt wide page stays as it is and cannot be drawn.
  testing::TestContext t;
  Outcome o = rasterize(pdf_samples::sized_pdf(0, 0), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  auto doc = open(o.bytes);
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  EXPECT_DOUBLE_EQ(page->page_rect().width(), 612);
  testing::TestContext t2;
  Outcome tiny = rasterize(pdf_samples::sized_pdf(0.5, 400), t2);
  ASSERT_EQ(tiny.action, Outcome::Action::Block);
  EXPECT_EQ(tiny.reason.code, "pdf.page_size");
}

TEST(PdfRasterize, HugePageIsRenderedAtALowerResolutionOrBlocked) {
  testing::TestContext t;
  PdfRasterizeOptions options;
  options.max_page_pixels = 4'000'000;
  // 3000 pt square: 39 million pixels at 150 dpi, 4 million at 48 dpi.
  Outcome o = rasterize(pdf_samples::sized_pdf(3000, 3000), t, options);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_TRUE(has_note(t, "pdf.reduced_dpi"));
  auto doc = open(o.bytes);
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  EXPECT_DOUBLE_EQ(page->page_rect().width(), 3000);  // the page keeps its size
  StringSink sink(10 << 20);
  const auto r = rasterize_pdf(pdf_samples::sized_pdf(3000, 3000), options, sink);
  ASSERT_EQ(r.pages.size(), 1u);
  EXPECT_LE(static_cast<std::uint64_t>(r.pages[0].width_px) * r.pages[0].height_px, 4'000'000u);
  EXPECT_GE(r.pages[0].dpi, 47);

  // A banner 20000 pt long: cairo's 32767-pixel side limit lowers the dpi.
  options.max_page_pixels = 36'000'000;
  StringSink sink2(10 << 20);
  const auto banner = rasterize_pdf(pdf_samples::sized_pdf(20000, 100), options, sink2);
  ASSERT_EQ(banner.status, Status::Done);
  EXPECT_LE(banner.pages[0].width_px, 32767);
  EXPECT_LT(banner.pages[0].dpi, 150);
  options.max_page_pixels = 4'000'000;

  // 200 x 200 inches would need 10 dpi: below the floor (36).
  testing::TestContext t2;
  Outcome blocked = rasterize(pdf_samples::sized_pdf(14400, 14400), t2, options);
  ASSERT_EQ(blocked.action, Outcome::Action::Block);
  EXPECT_EQ(blocked.reason.code, "pdf.page_pixels");
  EXPECT_TRUE(contains(blocked.reason.en, "page 1"));
}

TEST(PdfRasterize, TooManyPagesIsBlockedBeforeRendering) {
  PdfRasterizeOptions options;
  options.max_pages = 2;
  testing::TestContext t;
  Outcome o = rasterize(pdf_samples::active_content_pdf(3), t, options);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "pdf.pages_limit");
  EXPECT_TRUE(contains(o.reason.en, "3 pages"));
}

TEST(PdfRasterize, BrokenAndNonPdfInputIsBlocked) {
  testing::TestContext t;
  ::testing::internal::CaptureStderr();
  Outcome broken = rasterize("%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage garbage\n%%EOF\n", t);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(broken.action, Outcome::Action::Block);
  EXPECT_EQ(broken.reason.code, "pdf.broken");
  EXPECT_EQ(err, "") << "Poppler wrote to stderr";

  testing::TestContext t2;
  Outcome not_pdf = rasterize("MZ\x90\x00 this is not a PDF", t2);
  ASSERT_EQ(not_pdf.action, Outcome::Action::Block);
  EXPECT_EQ(not_pdf.reason.code, "pdf.not_pdf");
}

TEST(PdfRasterize, DamagedButReadablePdfIsRasterizedAndItsProblemsReported) {
  // A wrong xref offset (Poppler reconstructs the table) and an unknown
  // operator in a page (Poppler complains and goes on).
  std::string in = pdf_samples::active_content_pdf(2);
  in.replace(in.rfind("startxref\n") + 10, 1, "9");
  in.replace(in.find("(Page 1) Tj ET"), 14, "(Page 1) Tj zz ET");
  testing::TestContext t;
  ::testing::internal::CaptureStderr();
  Outcome o = rasterize(in, t);
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(open(o.bytes)->pages(), 2);
  EXPECT_EQ(err, "");
  EXPECT_TRUE(has_note(t, "pdf.parse_problems"));
  EXPECT_TRUE(contains(text_of(o.bytes), "Page 1"));
}

TEST(PdfRasterize, DeadlineBlocks) {
  testing::TestContext t;
  t.ctx.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  Outcome o = rasterize(pdf_samples::active_content_pdf(2), t);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "limits.time");
}

TEST(PdfRasterize, OutputLimitBlocks) {
  testing::TestContext t;
  t.limits.max_item_bytes = 2000;
  Outcome o = rasterize(pdf_samples::active_content_pdf(4), t);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "limits.item_bytes");
}

TEST(PdfRasterize, TextLimitDropsTextOfLaterPages) {
  testing::TestContext t;
  t.limits.max_text_bytes = 12;  // "Page 1" and "Page 2" fit, not "Page 3"
  Outcome o = rasterize(pdf_samples::active_content_pdf(3), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  const std::string text = text_of(o.bytes);
  EXPECT_TRUE(contains(text, "Page 2"));
  EXPECT_FALSE(contains(text, "Page 3"));
  EXPECT_TRUE(has_note(t, "pdf.text_truncated"));
}

// ---- parallelism ----

TEST(PdfRasterize, OutputDoesNotDependOnThreadCount) {
  const std::string in = pdf_samples::bench_pdf(7);
  std::string first;
  for (int threads : {1, 2, 5}) {
    PdfRasterizeOptions options;
    options.threads = threads;
    testing::TestContext t;
    Outcome o = rasterize(in, t, options);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    if (first.empty())
      first = o.bytes;
    else
      EXPECT_TRUE(o.bytes == first) << threads << " threads gave different bytes";
  }
  EXPECT_EQ(open(first)->pages(), 7);
}

// Pages render in parallel because this executable takes FreeType's face
// creation and destruction from poppler and cairo and serializes them.
TEST(PdfRasterize, FreeTypeFaceCallsGoThroughTheLock) {
  ASSERT_TRUE(pdf_render_parallel()) << "the FreeType functions of pdf_rasterize.cpp are not exported";
  const std::string in = pdf_samples::bench_pdf(3);
  const std::uint64_t before = pdf_freetype_locked_calls();
  PdfRasterizeOptions options;
  options.threads = 2;
  StringSink sink(50 << 20);
  ASSERT_EQ(rasterize_pdf(in, options, sink).status, Status::Done);
  EXPECT_GT(pdf_freetype_locked_calls(), before);
}

// A font the PDF names but does not embed: Poppler shares its face
// between documents.
std::string standard_font_pdf() {
  const std::string content =
      "BT /F1 24 Tf 50 700 Td (Invoice in Helvetica) Tj /F2 18 Tf 0 -40 Td (and in Times-Roman) Tj ET";
  const std::string page =
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
      "/Resources << /Font << /F1 7 0 R /F2 8 0 R >> >> >>";
  return pdf_samples::assemble_pdf({"<< /Type /Catalog /Pages 2 0 R >>",
                                    "<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 2 >>", "<< /Producer (test) >>", page,
                                    "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content +
                                        "\nendstream",
                                    page, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                                    "<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman >>"});
}

// Several documents at once, each in several threads, with embedded, CID
// and non-embedded fonts: fonts are created and freed in all threads at
// once, and every document comes out as it does alone.
TEST(PdfRasterize, ConcurrentDocumentsComeOutAsAlone) {
  std::vector<std::string> inputs = {pdf_samples::bench_pdf(6), standard_font_pdf()};
  for (bool vertical : {false, true}) inputs.push_back(pdf_samples::cid_japanese_pdf(u"請求書の送付について", vertical));
  const std::string family = pdf_samples::japanese_font_family();
  if (!family.empty())
    inputs.push_back(pdf_samples::text_pdf({{"請求書 令和6年4月分", "株式会社むかいか 御中"}, {"二ページ目"}}, family));

  PdfRasterizeOptions options;
  options.threads = 1;
  std::vector<std::string> alone;
  for (const std::string& in : inputs) {
    StringSink sink(50 << 20);
    ASSERT_EQ(rasterize_pdf(in, options, sink).status, Status::Done);
    alone.push_back(std::move(sink.bytes()));
  }
  options.threads = 3;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> out(inputs.size());
    std::vector<Status> status(inputs.size(), Status::Broken);
    {
      std::vector<std::jthread> threads;
      for (std::size_t i = 0; i < inputs.size(); ++i)
        threads.emplace_back([&, i] {
          StringSink sink(50 << 20);
          status[i] = rasterize_pdf(inputs[i], options, sink).status;
          out[i] = std::move(sink.bytes());
        });
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_EQ(status[i], Status::Done) << "document " << i;
      EXPECT_TRUE(out[i] == alone[i]) << "document " << i << " differs in round " << round;
    }
  }
}

TEST(PdfRasterize, LargePagesUseFewerThreads) {
  PdfRasterizeOptions options;
  options.threads = 4;
  options.max_page_pixels = 40'000'000;
  // 3000 pt square at 150 dpi: 39 million pixels, about 312 MB a thread.
  const std::string big = pdf_samples::assemble_pdf(
      {"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [4 0 R 5 0 R] /Count 2 >>", "<< >>",
       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 3000 3000] >>",
       "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 3000 3000] >>"});
  StringSink sink(50 << 20);
  auto r = rasterize_pdf(big, options, sink);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.threads, 1);
  StringSink sink2(50 << 20);
  r = rasterize_pdf(pdf_samples::active_content_pdf(4), options, sink2);
  ASSERT_EQ(r.status, Status::Done);
  EXPECT_EQ(r.threads, 4);
}

TEST(PdfRasterize, BenchmarkPagesGetTheirEncodings) {
  const std::string in = pdf_samples::bench_pdf(6);
  StringSink sink(100 << 20);
  const auto r = rasterize_pdf(in, {}, sink);
  ASSERT_EQ(r.status, Status::Done);
  ASSERT_EQ(r.pages.size(), 6u);
  // Pages 3 and 6 carry a photograph (gray, colour) over half the page with
  // a caption; page 2 has a colour bar.
  EXPECT_EQ(r.pages[0].encoding, "gray4");
  EXPECT_EQ(r.pages[1].encoding, "indexed");
  EXPECT_TRUE(r.pages[2].encoding.ends_with("+jpeg")) << r.pages[2].encoding;
  EXPECT_TRUE(r.pages[5].encoding.ends_with("+jpeg")) << r.pages[5].encoding;
  for (const auto& p : r.pages) EXPECT_GT(p.words, 0);
  // Against every page as lossless RGB (what Dangerzone writes).
  PdfRasterizeOptions baseline;
  baseline.lossless_rgb = true;
  baseline.text_layer = false;
  StringSink sink2(200 << 20);
  const auto b = rasterize_pdf(in, baseline, sink2);
  ASSERT_EQ(b.status, Status::Done);
  EXPECT_LT(r.output_bytes * 3, b.output_bytes) << r.output_bytes << " vs " << b.output_bytes;
}

// ---- page encoder ----

struct Canvas {
  int w, h;
  cairo_surface_t* s;
  cairo_t* cr;
  Canvas(int width, int height)
      : w(width), h(height), s(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)), cr(cairo_create(s)) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
  }
  ~Canvas() {
    cairo_destroy(cr);
    cairo_surface_destroy(s);
  }
  PageImage encode(PageEncoder& e) {
    cairo_surface_flush(s);
    return e.encode(cairo_image_surface_get_data(s), static_cast<std::size_t>(cairo_image_surface_get_stride(s)), w, h);
  }
};

TEST(PageEncoder, ChoosesByContent) {
  PageEncoder enc({});
  {
    Canvas c(600, 800);  // black boxes on white, no anti-aliasing
    cairo_set_antialias(c.cr, CAIRO_ANTIALIAS_NONE);
    cairo_set_source_rgb(c.cr, 0, 0, 0);
    cairo_rectangle(c.cr, 50, 50, 200, 10);
    cairo_fill(c.cr);
    EXPECT_EQ(c.encode(enc).encoding(), "bilevel");
  }
  {
    Canvas c(600, 800);  // anti-aliased black text
    cairo_set_source_rgb(c.cr, 0, 0, 0);
    cairo_set_font_size(c.cr, 14);
    for (int y = 40; y < 780; y += 18) {
      cairo_move_to(c.cr, 20, y);
      cairo_show_text(c.cr, "The quick brown fox jumps over the lazy dog 0123456789");
    }
    EXPECT_EQ(c.encode(enc).encoding(), "gray4");
    // The same text in red: a small palette.
    cairo_set_source_rgb(c.cr, 0.8, 0, 0);
    cairo_move_to(c.cr, 20, 30);
    cairo_show_text(c.cr, "red heading");
    const PageImage im = c.encode(enc);
    EXPECT_TRUE(im.encoding() == "indexed" || im.encoding() == "indexed4") << im.encoding();
    EXPECT_FALSE(im.palette.empty());
  }
  {
    Canvas c(600, 800);  // a slide background: 4 bits would band it
    cairo_pattern_t* g = cairo_pattern_create_linear(0, 0, 0, 800);
    cairo_pattern_add_color_stop_rgb(g, 0, 0.75, 0.75, 0.75);
    cairo_pattern_add_color_stop_rgb(g, 1, 1, 1, 1);
    cairo_set_source(c.cr, g);
    cairo_paint(c.cr);
    cairo_pattern_destroy(g);
    EXPECT_EQ(c.encode(enc).encoding(), "gray");
  }
  {
    Canvas c(600, 800);  // thin lines in 400 colours: too many for a palette
    cairo_set_line_width(c.cr, 1);
    cairo_set_antialias(c.cr, CAIRO_ANTIALIAS_NONE);
    for (int i = 0; i < 400; ++i) {
      cairo_set_source_rgb(c.cr, (i % 20) / 19.0, (i / 20) / 19.0, ((i * 7) % 11) / 10.0);
      cairo_move_to(c.cr, 10 + i, 10.5 + (i % 7) * 100);
      cairo_line_to(c.cr, 10 + i + 30, 10.5 + (i % 7) * 100);
      cairo_stroke(c.cr);
    }
    EXPECT_EQ(c.encode(enc).encoding(), "rgb4");
  }
}

// Fills a rectangle with a photograph-like texture (smooth noise).
void paint_photo(Canvas& c, int x0, int y0, int w, int h, bool color) {
  cairo_surface_flush(c.s);
  unsigned char* data = cairo_image_surface_get_data(c.s);
  const int stride = cairo_image_surface_get_stride(c.s);
  std::uint32_t seed = 12345;
  for (int y = y0; y < y0 + h; ++y) {
    auto* row = reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
    for (int x = x0; x < x0 + w; ++x) {
      seed = seed * 1664525u + 1013904223u;
      const unsigned noise = (seed >> 24) % 12;
      const unsigned v = 60 + (x * 3 + y * 2) % 120 + noise;
      row[x] = color ? (v << 16) | ((v / 2) << 8) | (255 - v) : (v << 16) | (v << 8) | v;
    }
  }
  cairo_surface_mark_dirty(c.s);
}

TEST(PageEncoder, PhotographsOnTextPagesBecomeJpegOverlays) {
  PageEncoder enc({});
  Canvas c(1240, 1754);
  cairo_set_source_rgb(c.cr, 0, 0, 0);
  cairo_set_font_size(c.cr, 20);
  for (int y = 900; y < 1700; y += 30) {
    cairo_move_to(c.cr, 80, y);
    cairo_show_text(c.cr, "Text under the photograph stays lossless and sharp.");
  }
  paint_photo(c, 200, 150, 800, 600, true);
  const PageImage im = c.encode(enc);
  EXPECT_EQ(enc.last_analysis().photo_regions, 1);
  ASSERT_EQ(im.overlays.size(), 1u);
  const PageOverlay& o = im.overlays[0];
  EXPECT_EQ(o.color, PageOverlay::Color::Rgb);
  // The region is the photo, rounded out to 32-pixel blocks.
  EXPECT_LE(o.x, 200);
  EXPECT_GT(o.x, 200 - 32);
  EXPECT_LE(o.y, 150);
  EXPECT_GE(o.x + o.width, 1000);
  EXPECT_LT(o.x + o.width, 1000 + 32);
  EXPECT_GE(o.y + o.height, 750);
  EXPECT_EQ(im.encoding(), "gray4+jpeg");  // the rest has no colour left
  EXPECT_TRUE(o.data.starts_with("\xFF\xD8"));

  // A page that is one photograph (a scan) is one JPEG.
  Canvas full(600, 800);
  paint_photo(full, 0, 0, 600, 800, false);
  const PageImage scan = full.encode(enc);
  EXPECT_EQ(scan.encoding(), "gray-jpeg");
  EXPECT_TRUE(enc.last_analysis().photo);
  EXPECT_TRUE(scan.overlays.empty());

  // A small picture (an icon, a logo) stays in the lossless page.
  Canvas icon(1240, 1754);
  paint_photo(icon, 100, 100, 64, 64, true);
  EXPECT_TRUE(icon.encode(enc).overlays.empty());
}

TEST(PageEncoder, PhotographsBecomeJpegAndLosslessBaselineIsRgb) {
  const std::string in = pdf_samples::bench_pdf(3);
  StringSink sink(50 << 20);
  PdfRasterizeOptions o;
  o.lossless_rgb = true;
  const auto r = rasterize_pdf(in, o, sink);
  ASSERT_EQ(r.status, Status::Done);
  for (const auto& p : r.pages) EXPECT_EQ(p.encoding, "rgb");
}

// ---- options ----

TEST(PdfRasterize, Options) {
  auto parse = [](const std::string& toml) { return make_pdf_rasterize(toml::parse(toml)); };
  EXPECT_NO_THROW(parse("dpi = 200\ntext_layer = false\njpeg_quality = 70\nmax_pages = 10\n"
                        "max_page_pixels = 1000000\nthreads = 2\n"));
  EXPECT_THROW(parse("dpi = 10"), ConfigError);
  EXPECT_THROW(parse("dpi = \"high\""), ConfigError);
  EXPECT_THROW(parse("text_layer = 1"), ConfigError);
  EXPECT_THROW(parse("jpeg_quality = 101"), ConfigError);
  EXPECT_THROW(parse("threads = -1"), ConfigError);
  EXPECT_THROW(parse("colour = true"), ConfigError);
  auto s = parse("");
  EXPECT_EQ(s->name(), "pdf.rasterize");
  const auto kinds = s->handles();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), Kind::Pdf), kinds.end());
}

// ---- the default policy, end to end in-process ----

struct DefaultPipeline {
  SanitizerRegistry registry;
  Config config;
  testing::MarkerScanner scanner;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<Pipeline> pipeline;
  DefaultPipeline() {
    register_builtin_sanitizers(registry);
    config = load_config(std::nullopt, registry);
    policy = std::make_unique<Policy>(config, registry);
    pipeline = std::make_unique<Pipeline>(*policy, scanner, config.limits, config.language);
  }
  PipelineResult run(const std::string& bytes, const std::string& name, std::vector<std::string> passphrases = {}) {
    Item item;
    item.passphrases = std::move(passphrases);
    item.bytes = bytes;
    item.name = name;
    return pipeline->run(std::move(item));
  }
};

TEST(PdfRasterizeDefaults, PdfFileIsRasterizedByDefault) {
  DefaultPipeline p;
  const auto r = p.run(pdf_samples::active_content_pdf(2), "請求書.pdf");
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized);
  EXPECT_EQ(r.item.reason.code, "pdf.rasterized");
  EXPECT_EQ(r.item.name, "請求書.pdf");
  expect_no_active_content(r.item.bytes);
  EXPECT_EQ(open(r.item.bytes)->pages(), 2);
}

TEST(PdfRasterizeDefaults, EncryptedPdfIsBlocked) {
  if (!have_qpdf()) GTEST_SKIP() << "qpdf is not installed";
  DefaultPipeline p;
  const auto r = p.run(encrypt(pdf_samples::active_content_pdf(1), "u", "o"), "locked.pdf");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(r.item.reason.code, "pdf.encrypted");
}

// PPAP: the recipient's password opens it in the pipeline; a wrong one says so.
TEST(PdfRasterizeDefaults, UserPasswordFromTheRecipientOpensIt) {
  if (!have_qpdf()) GTEST_SKIP() << "qpdf is not installed";
  DefaultPipeline p;
  const std::string locked = encrypt(pdf_samples::active_content_pdf(2), "user-pw", "owner-pw");
  const auto opened = p.run(locked, "locked.pdf", {"wrong", "user-pw"});
  ASSERT_EQ(opened.verdict, PipelineResult::Verdict::Sanitized) << opened.item.reason.en;
  EXPECT_EQ(opened.item.reason.code, "pdf.rasterized");
  EXPECT_EQ(open(opened.item.bytes)->pages(), 2);
  EXPECT_FALSE(contains(opened.item.bytes, "/Encrypt"));
  expect_no_active_content(opened.item.bytes);
  // The owner password opens it too: either is "the password" to a sender.
  EXPECT_EQ(p.run(locked, "locked.pdf", {"owner-pw"}).verdict, PipelineResult::Verdict::Sanitized);

  const auto wrong = p.run(locked, "locked.pdf", {"nope"});
  EXPECT_EQ(wrong.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(wrong.item.reason.code, "pdf.wrong_password");
}

// Non-ASCII passwords: UTF-8 for AES-256 (R6), so Japanese works there;
// Latin-1 (PDFDocEncoding) for AES-128 (R4), which qpdf writes from UTF-8.
TEST(PdfRasterizeDefaults, JapaneseAndLatin1PasswordsOpenIt) {
  if (!have_qpdf()) GTEST_SKIP() << "qpdf is not installed";
  DefaultPipeline p;
  const std::string pdf = pdf_samples::active_content_pdf(1);
  const std::string r6 = encrypt(pdf, "パスワード", "所有者");
  const auto opened = p.run(r6, "r6.pdf", {"パスワ", "パスワード"});
  ASSERT_EQ(opened.verdict, PipelineResult::Verdict::Sanitized) << opened.item.reason.en;
  EXPECT_EQ(opened.item.reason.code, "pdf.rasterized");
  EXPECT_EQ(p.run(r6, "r6.pdf", {"所有者"}).verdict, PipelineResult::Verdict::Sanitized);
  EXPECT_EQ(p.run(r6, "r6.pdf", {"ぱすわーど"}).item.reason.code, "pdf.wrong_password");

  const std::string r4 = encrypt(pdf, "garçon", "propriétaire", "", "128 --use-aes=y");
  const auto latin = p.run(r4, "r4.pdf", {"garcon", "garçon"});
  ASSERT_EQ(latin.verdict, PipelineResult::Verdict::Sanitized) << latin.item.reason.en;
  EXPECT_EQ(p.run(r4, "r4.pdf", {"garcon"}).item.reason.code, "pdf.wrong_password");
}

TEST(PdfRasterizeDefaults, PdfAttachmentInMailIsRasterized) {
  DefaultPipeline p;
  const std::string pdf = pdf_samples::active_content_pdf(1);
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  for (std::size_t i = 0; i < pdf.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(pdf[i]) << 16;
    if (i + 1 < pdf.size()) v |= static_cast<unsigned char>(pdf[i + 1]) << 8;
    if (i + 2 < pdf.size()) v |= static_cast<unsigned char>(pdf[i + 2]);
    enc += b64[(v >> 18) & 63];
    enc += b64[(v >> 12) & 63];
    enc += i + 1 < pdf.size() ? b64[(v >> 6) & 63] : '=';
    enc += i + 2 < pdf.size() ? b64[v & 63] : '=';
    if (enc.size() % 77 == 76) enc += "\r\n";
  }
  const std::string mail =
      "From: a@example.jp\r\nTo: b@example.lg.jp\r\nSubject: report\r\nDate: Mon, 1 Apr 2024 09:00:00 +0900\r\n"
      "Message-ID: <1@example.jp>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
      "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
      "--b\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; "
      "filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + enc + "\r\n--b--\r\n";
  const auto r = p.run(mail, "mail.eml");
  ASSERT_NE(r.verdict, PipelineResult::Verdict::Blocked);
  bool rasterized = false;
  for (const auto& a : r.actions)
    if (a.path == "mail.eml/report.pdf" && a.code == "pdf.rasterized") rasterized = true;
  EXPECT_TRUE(rasterized);
  EXPECT_FALSE(contains(r.item.bytes, "JavaScript"));
}

}  // namespace
}  // namespace mukaika
