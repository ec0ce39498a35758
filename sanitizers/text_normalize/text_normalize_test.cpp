#include "text_normalize/text_normalize.h"

#include <gtest/gtest.h>

#include <string>

#include "registry.h"
#include "support/test_support.h"

namespace mukaika {
namespace {

using namespace std::string_literals;
using mukaika::testing::TestContext;

const std::string kBom = "\xEF\xBB\xBF";

std::unique_ptr<Sanitizer> make(const toml::table& options = {}) { return make_text_normalize(options); }

Item file(std::string bytes, std::string name, std::string charset = "") {
  Item item;
  item.bytes = std::move(bytes);
  item.name = std::move(name);
  item.charset = std::move(charset);
  item.kind = Kind::Text;
  item.role = Role::File;
  item.path = "mail.eml/" + item.name;
  return item;
}

Item body(std::string bytes, std::string charset) {
  Item item = file(std::move(bytes), "", std::move(charset));
  item.role = Role::Body;
  item.path = "mail.eml/body";
  return item;
}

TEST(TextNormalize, NameAndKinds) {
  auto s = make();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->name(), "text.normalize");
  EXPECT_EQ(s->handles(), std::vector<Kind>{Kind::Text});
}

TEST(TextNormalize, Cp932CsvGetsBomAndKeepsName) {
  TestContext t;
  // "売上,①\r\n" in CP932, declared Shift_JIS.
  const Item item = file("\x94\x84\x8F\xE3,\x87@\r\n", "売上.csv", "shift_jis");
  const Outcome o = make()->process(item, t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.bytes, kBom + "売上,①\r\n");
  EXPECT_EQ(o.name, "売上.csv");
  EXPECT_EQ(o.type, "text/csv");
  EXPECT_EQ(o.charset, "utf-8");
  EXPECT_TRUE(o.cosmetic);
  EXPECT_EQ(o.reason.code, "text.utf8");
  EXPECT_EQ(o.reason.ja, "文字コードを CP932 から UTF-8 に変換しました");
  EXPECT_EQ(o.reason.en, "converted from cp932 to UTF-8");
  EXPECT_TRUE(t.report.notes.empty());
}

TEST(TextNormalize, CsvBomCanBeTurnedOff) {
  TestContext t;
  toml::table opts{{"csv_bom", false}};
  const Outcome o = make(opts)->process(file("a,b\r\n", "x.csv"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.bytes, "a,b\r\n");
}

TEST(TextNormalize, TsvAndUpperCaseExtension) {
  TestContext t;
  const Outcome tsv = make()->process(file("a\tb\n", "x.TSV"), t.ctx);
  EXPECT_EQ(tsv.type, "text/tab-separated-values");
  EXPECT_EQ(tsv.name, "x.TSV");
  EXPECT_EQ(tsv.bytes, kBom + "a\tb\n");
  const Outcome csv = make()->process(file("a,b\n", "DATA.Csv"), t.ctx);
  EXPECT_EQ(csv.type, "text/csv");
  EXPECT_EQ(csv.name, "DATA.Csv");
}

TEST(TextNormalize, NoDoubleBomWhenSourceHasOne) {
  TestContext t;
  const Outcome o = make()->process(file(kBom + "a,b\n", "x.csv", "utf-8"), t.ctx);
  EXPECT_EQ(o.bytes, kBom + "a,b\n");
}

TEST(TextNormalize, ScriptNameGetsTxtAppended) {
  TestContext t;
  const Outcome o = make()->process(file("alert(1);\n", "evil.js", "us-ascii"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.name, "evil.js.txt");
  EXPECT_EQ(o.type, "text/plain");
  EXPECT_EQ(o.bytes, "alert(1);\n");
  EXPECT_EQ(o.reason.code, "text.kept");
  EXPECT_EQ(o.reason.ja, "テキストのまま残しました");
  EXPECT_EQ(o.reason.en, "kept as text");
  ASSERT_EQ(t.report.notes.size(), 1u);
  EXPECT_EQ(t.report.notes[0].reason.code, "text.renamed");
  EXPECT_EQ(t.report.notes[0].path, "mail.eml/evil.js");
}

TEST(TextNormalize, TextExtensionsKeptOthersRenamed) {
  TestContext t;
  auto s = make();
  for (const char* name : {"a.txt", "a.TEXT", "a.log", "a.md", "a.Csv", "a.tsv"})
    EXPECT_EQ(s->process(file("x", name), t.ctx).name, name) << name;
  for (const char* name : {"a.ini", "a.html", "a.bat", "README", "a.txt.exe", "a."})
    EXPECT_EQ(s->process(file("x", name), t.ctx).name, name + ".txt"s) << name;
  // No name: stays empty.
  EXPECT_EQ(s->process(file("x", ""), t.ctx).name, "");
}

TEST(TextNormalize, BodyInIso2022JpConverted) {
  TestContext t;
  const Item item = body("\x1B$B3t<02q<R\x1B(B \x1B$B$*CN$i$;-!\x1B(B\r\n", "ISO-2022-JP");
  const Outcome o = make()->process(item, t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.bytes, "株式会社 お知らせ①\r\n");
  EXPECT_EQ(o.type, "text/plain");
  EXPECT_EQ(o.name, "");
  EXPECT_EQ(o.charset, "utf-8");
  EXPECT_EQ(o.reason.code, "text.utf8");
  EXPECT_EQ(o.reason.ja, "文字コードを ISO-2022-JP から UTF-8 に変換しました");
  EXPECT_EQ(o.reason.en, "converted from iso-2022-jp to UTF-8");
}

TEST(TextNormalize, BodyIsNeverRenamedAndNeverGetsBom) {
  TestContext t;
  Item item = body("a,b\n", "utf-8");
  item.name = "body.csv";
  const Outcome o = make()->process(item, t.ctx);
  EXPECT_EQ(o.bytes, "a,b\n");
  EXPECT_EQ(o.name, "body.csv");
  EXPECT_EQ(o.type, "text/plain");
  item.name = "body.js";
  EXPECT_EQ(make()->process(item, t.ctx).name, "body.js");
}

TEST(TextNormalize, Utf8Kept) {
  TestContext t;
  const Outcome o = make()->process(file("こんにちは\n", "a.txt", "utf-8"), t.ctx);
  EXPECT_EQ(o.bytes, "こんにちは\n");
  EXPECT_EQ(o.reason.code, "text.kept");
  EXPECT_TRUE(o.cosmetic);
}

TEST(TextNormalize, UnlabelledEucJpIsSniffed) {
  TestContext t;
  const Outcome o = make()->process(
      file("\xA4\xAA\xC3\xCE\xA4\xE9\xA4\xBB\xA1\xA7\xCB\xDC\xC6\xFC\xA4\xCE\xB2\xF1\xB5\xC4", "m.txt"), t.ctx);
  EXPECT_EQ(o.bytes, "お知らせ：本日の会議");
  EXPECT_EQ(o.reason.code, "text.utf8");
  EXPECT_EQ(o.reason.en, "converted from euc-jp to UTF-8");
}

TEST(TextNormalize, BinaryWithNulsRemoved) {
  TestContext t;
  const Outcome o = make()->process(file(std::string("MZ\x90\x00\x03\x00\x00\x00", 8), "a.txt"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Remove);
  EXPECT_EQ(o.reason.code, "text.not_text");
  EXPECT_EQ(o.reason.ja, "テキストとして読めない内容のため削除しました");
  EXPECT_EQ(o.reason.en, "removed: the content is not readable text");
}

TEST(TextNormalize, SingleNulInLongTextRemoved) {
  TestContext t;
  std::string text(5000, 'a');
  text[2500] = '\0';
  EXPECT_EQ(make()->process(file(text, "a.txt", "us-ascii"), t.ctx).action, Outcome::Action::Remove);
}

TEST(TextNormalize, ManyUndecodableBytesRemoved) {
  TestContext t;
  std::string text(1000, 'a');
  for (int i = 0; i < 10; ++i) text[static_cast<std::size_t>(i) * 100] = '\xFF';  // 1%, undecodable everywhere
  const Outcome o = make()->process(file(text, "a.txt", "utf-8"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Remove);
  EXPECT_EQ(o.reason.code, "text.not_text");
}

TEST(TextNormalize, FewUndecodableBytesTolerated) {
  TestContext t;
  std::string text(1000, 'a');
  text[10] = '\xFF';
  text[500] = '\xFF';
  text[900] = '\xFF';  // 3 of 1000 = 0.3%
  const Outcome o = make()->process(file(text, "a.txt", "utf-8"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_NE(o.bytes.find("\xEF\xBF\xBD"), std::string::npos);
  // Two bad bytes in a tiny file: still text.
  EXPECT_EQ(make()->process(file("a\xFF\xFF", "a.txt", "utf-8"), t.ctx).action, Outcome::Action::Replace);
  // Three in a tiny file: not.
  EXPECT_EQ(make()->process(file("a\xFF\xFF\xFF", "a.txt", "utf-8"), t.ctx).action, Outcome::Action::Remove);
}

TEST(TextNormalize, ControlCharacters) {
  TestContext t;
  auto s = make();
  // Allowed: TAB, LF, CR, FF, ESC (terminal colours in a log).
  EXPECT_EQ(s->process(file("a\tb\r\nc\fd\x1B[31me\n", "x.log"), t.ctx).action, Outcome::Action::Replace);
  // 5 of 100 characters are binary controls: removed.
  std::string text(100, 'x');
  for (int i = 0; i < 5; ++i) text[static_cast<std::size_t>(i) * 20] = '\x01';
  EXPECT_EQ(s->process(file(text, "x.txt"), t.ctx).action, Outcome::Action::Remove);
  // 5 of 1000: fine.
  std::string longer(1000, 'x');
  for (int i = 0; i < 5; ++i) longer[static_cast<std::size_t>(i) * 200] = '\x02';
  EXPECT_EQ(s->process(file(longer, "x.txt"), t.ctx).action, Outcome::Action::Replace);
  // A DOS end-of-file mark in a short file is still text.
  EXPECT_EQ(s->process(file("short\r\n\x1A", "x.txt"), t.ctx).action, Outcome::Action::Replace);
}

TEST(TextNormalize, Utf16WithBomIsTextNotBinary) {
  TestContext t;
  const Outcome o = make()->process(file(std::string("\xFF\xFE" "A\x00\x42\x30\n\x00", 8), "u.txt"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.bytes, "Aあ\n");
  EXPECT_EQ(o.reason.en, "converted from utf-16le to UTF-8");
}

TEST(TextNormalize, SizeLimit) {
  TestContext t;
  t.limits.max_text_bytes = 10;
  EXPECT_EQ(make()->process(file("0123456789", "a.txt"), t.ctx).action, Outcome::Action::Replace);
  const Outcome o = make()->process(file("0123456789A", "a.txt"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "limits.text_size");
  EXPECT_NE(o.reason.en.find("11 bytes"), std::string::npos) << o.reason.en;
  EXPECT_NE(o.reason.ja.find("上限 10 バイト"), std::string::npos) << o.reason.ja;
  // The limit is on the converted output: 4 CP932 bytes become 6 UTF-8 bytes,
  // and a CSV's BOM counts too.
  t.limits.max_text_bytes = 5;
  EXPECT_EQ(make()->process(file("\x82\xA0\x82\xA2", "a.txt", "cp932"), t.ctx).action, Outcome::Action::Block);
  EXPECT_EQ(make()->process(file("a,b", "a.csv"), t.ctx).action, Outcome::Action::Block);
}

TEST(TextNormalize, EmptyInputIsEmptyText) {
  TestContext t;
  const Outcome o = make()->process(file("", "empty.txt"), t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.bytes, "");
}

TEST(TextNormalize, FactoryRejectsBadOptions) {
  try {
    make(toml::table{{"csv_bomb", true}});
    FAIL() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("csv_bomb"), std::string::npos) << e.what();
  }
  try {
    make(toml::table{{"csv_bom", "yes"}});
    FAIL() << "non-bool csv_bom accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("csv_bom"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make(toml::table{{"csv_bom", 1}}), ConfigError);
  EXPECT_NO_THROW(make(toml::table{{"csv_bom", true}}));
}

TEST(TextNormalize, RegisteredInRegistry) {
  SanitizerRegistry r;
  register_builtin_sanitizers(r);
  ASSERT_TRUE(r.contains("text.normalize"));
  EXPECT_EQ(r.create("text.normalize", {})->name(), "text.normalize");
}

}  // namespace
}  // namespace mukaika

namespace mukaika {
namespace {

Outcome run_csv(const std::string& bytes, const std::string& name = "data.csv") {
  static testing::TestContext t;
  auto s = make_text_normalize(toml::table{{"csv_bom", false}});
  Item item;
  item.bytes = bytes;
  item.name = name;
  item.role = Role::File;
  return s->process(item, t.ctx);
}

TEST(TextNormalizeCsv, DdeFormulaBecomesText) {
  Outcome o = run_csv("=cmd|'/k calc.exe'!A0\r\nname,=HYPERLINK(\"http://x\")\r\n");
  EXPECT_EQ(o.bytes, "'=cmd|'/k calc.exe'!A0\r\nname,'=HYPERLINK(\"http://x\")\r\n");
  EXPECT_FALSE(o.cosmetic);
  EXPECT_EQ(o.reason.code, "text.csv_formula");
}

TEST(TextNormalizeCsv, QuotedFormulaAndOtherTriggers) {
  Outcome o = run_csv("\"=1+2\",@SUM(A1),+A1,\"a,=b\"\n");
  EXPECT_EQ(o.bytes, "\"'=1+2\",'@SUM(A1),'+A1,\"a,=b\"\n");
}

TEST(TextNormalizeCsv, NumbersAndPlainCellsUntouched) {
  Outcome o = run_csv("-5,+3.25,-1000,-12%,abc,\"x\"\"y\"\n");
  EXPECT_EQ(o.bytes, "-5,+3.25,-1000,-12%,abc,\"x\"\"y\"\n");
  EXPECT_TRUE(o.cosmetic);
}

TEST(TextNormalizeCsv, TsvUsesTabs) {
  Outcome o = run_csv("a\t=cmd|x\n", "d.tsv");
  EXPECT_EQ(o.bytes, "a\t'=cmd|x\n");
}

TEST(TextNormalizeCsv, TxtIsNotTouched) {
  Outcome o = run_csv("=cmd|x\n", "notes.txt");
  EXPECT_EQ(o.bytes, "=cmd|x\n");
}

}  // namespace
}  // namespace mukaika
