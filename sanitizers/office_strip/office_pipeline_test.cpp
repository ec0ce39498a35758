// office.strip_active and rtf.strip inside the real pipeline with the
// default configuration: detection (libmagic), policy, the sanitizer, the
// rescan of the output, and mail attachments.
#include <gtest/gtest.h>

#include <string>

#include "config.h"
#include "office_strip/office_test_support.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

using office_test::content_types;
using office_test::rels;
using office_test::zip;

const std::string kCorpus = MUKAIKA_CORPUS_DIR;

struct Gateway {
  SanitizerRegistry registry;
  Config config;
  testing::MarkerScanner scanner;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<Pipeline> pipeline;

  Gateway() {
    register_builtin_sanitizers(registry);
    config = load_config(std::nullopt, registry);
    policy = std::make_unique<Policy>(config, registry);
    pipeline = std::make_unique<Pipeline>(*policy, scanner, config.limits, Language::Ja);
  }

  PipelineResult run(std::string bytes, std::string name) {
    Item i;
    i.bytes = std::move(bytes);
    i.name = std::move(name);
    return pipeline->run(std::move(i));
  }
};

std::string describe(const PipelineResult& r) {
  std::string s = "verdict " + std::string(to_string(r.verdict)) + " kind " + std::string(to_string(r.kind)) + "\n";
  for (const auto& a : r.actions) s += "  " + a.action + " " + a.code + " " + a.path + " : " + a.reason + "\n";
  return s;
}

bool has(const PipelineResult& r, const std::string& action, const std::string& code) {
  for (const auto& a : r.actions)
    if (a.action == action && a.code == code) return true;
  return false;
}

std::string docm() {
  const std::string w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
  return zip({{"[Content_Types].xml",
               content_types({{"word/document.xml", "application/vnd.ms-word.document.macroEnabled.main+xml"},
                              {"word/vbaProject.bin", "application/vnd.ms-office.vbaProject"}})},
              {"_rels/.rels", rels({{"rId1", "officeDocument", "word/document.xml"}})},
              {"word/document.xml", "<w:document xmlns:w=\"" + w + "\"><w:body><w:p><w:r><w:t>請求書の本文</w:t></w:r></w:p>"
                                    "</w:body></w:document>"},
              {"word/_rels/document.xml.rels",
               rels({{"rId2", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin"}})},
              {"word/vbaProject.bin", "\xD0\xCF\x11\xE0 Sub AutoOpen()"}});
}

TEST(OfficePipeline, MacroDocumentIsDeliveredWithoutItsMacros) {
  Gateway g;
  PipelineResult r = g.run(docm(), "請求書.docm");
  EXPECT_EQ(r.kind, Kind::Office) << describe(r);
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << describe(r);
  EXPECT_EQ(r.item.name, "請求書.docx");
  EXPECT_EQ(r.item.type, "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_TRUE(has(r, "convert", "office.strip_active")) << describe(r);
  EXPECT_TRUE(has(r, "remove", "office.macros")) << describe(r);
  auto out = office_test::unzip(r.item.bytes);
  EXPECT_EQ(out.count("word/vbaProject.bin"), 0u);
  EXPECT_TRUE(office_test::ooxml_problems(r.item.bytes).empty());
}

TEST(OfficePipeline, RtfWithAnObjectIsDeliveredWithoutIt) {
  Gateway g;
  PipelineResult r = g.run("{\\rtf1\\ansi {\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000}} 本文\\par}",
                           "memo.rtf");
  EXPECT_EQ(r.kind, Kind::Rtf) << describe(r);
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << describe(r);
  EXPECT_EQ(r.item.name, "memo.rtf");
  EXPECT_TRUE(has(r, "convert", "rtf.strip")) << describe(r);
  EXPECT_EQ(r.item.bytes.find("objdata"), std::string::npos);
}

TEST(OfficePipeline, AttachedToAMailTheDocumentIsRebuiltAndRenamed) {
  Gateway g;
  std::string b64;
  {
    static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::string in = docm();
    for (std::size_t i = 0; i < in.size(); i += 3) {
      unsigned v = static_cast<unsigned char>(in[i]) << 16;
      if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
      if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
      b64 += kB64[(v >> 18) & 63];
      b64 += kB64[(v >> 12) & 63];
      b64 += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
      b64 += i + 2 < in.size() ? kB64[v & 63] : '=';
      if (b64.size() % 77 == 76) b64 += "\r\n";
    }
  }
  const std::string mail =
      "From: sender@example.jp\r\nTo: staff@city.example.lg.jp\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
      "Please see the attached file.\r\n--b\r\nContent-Type: application/vnd.ms-word.document.macroEnabled.12; "
      "name=\"invoice.docm\"\r\nContent-Disposition: attachment; filename=\"invoice.docm\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b--\r\n";
  PipelineResult r = g.run(mail, "mail.eml");
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << describe(r);
  EXPECT_TRUE(has(r, "convert", "office.strip_active")) << describe(r);
  EXPECT_NE(r.item.bytes.find("invoice.docx"), std::string::npos);
  EXPECT_EQ(r.item.bytes.find("invoice.docm"), std::string::npos);
}

TEST(OfficePipeline, CorpusFilesLibmagicOnlyDescribes) {
  const std::string docx = office_test::read_file(kCorpus + "/oletools/oleobj/external_link/sample_with_external_link_to_doc.docx");
  const std::string xps = office_test::read_file(kCorpus + "/oletools/other/presentation.xps");
  if (docx.empty() || xps.empty()) GTEST_SKIP() << kCorpus << " is missing";
  Gateway g;
  // libmagic: application/octet-stream, "Microsoft OOXML".
  PipelineResult d = g.run(docx, "sample_with_external_link_to_doc.docx");
  EXPECT_EQ(d.kind, Kind::Office) << describe(d);
  EXPECT_EQ(d.verdict, PipelineResult::Verdict::Sanitized) << describe(d);
  EXPECT_TRUE(has(d, "remove", "office.external")) << describe(d);
  PipelineResult x = g.run(xps, "presentation.xps");
  EXPECT_EQ(x.verdict, PipelineResult::Verdict::Blocked) << describe(x);
  EXPECT_TRUE(has(x, "remove", "office.unsupported")) << describe(x);
}

}  // namespace
}  // namespace mukaika
