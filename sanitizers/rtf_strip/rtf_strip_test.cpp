#include "rtf_strip/rtf_strip.h"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

using office_strip::Finding;

const std::string kCorpus = MUKAIKA_CORPUS_DIR;
const std::string kClamavTestfiles = "/usr/share/clamav-testfiles";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

RtfStripResult strip(const std::string& rtf) { return strip_rtf(rtf, {}); }

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kHex[static_cast<unsigned char>(c) >> 4];
    out += kHex[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

// The text a reader sees, roughly: text outside groups that are
// destinations (\*, font and colour tables, pictures, field instructions,
// info); \'hh as bytes, \uN as "<uN>". Enough to compare before and after.
std::string visible_text(const std::string& rtf) {
  std::string out;
  std::vector<bool> hidden{false};
  bool group_start = false;
  for (std::size_t i = 0; i < rtf.size(); ++i) {
    const char c = rtf[i];
    if (c == '{') {
      hidden.push_back(hidden.back());
      group_start = true;
      continue;
    }
    if (c == '}') {
      if (hidden.size() > 1) hidden.pop_back();
      continue;
    }
    if (c == '\r' || c == '\n') continue;
    if (c == '\\' && i + 1 < rtf.size()) {
      const char d = rtf[i + 1];
      if (std::isalpha(static_cast<unsigned char>(d))) {
        std::size_t j = i + 1;
        std::string word;
        while (j < rtf.size() && std::isalpha(static_cast<unsigned char>(rtf[j]))) word += rtf[j++];
        std::string param;
        if (j < rtf.size() && (rtf[j] == '-' || std::isdigit(static_cast<unsigned char>(rtf[j])))) {
          param += rtf[j++];
          while (j < rtf.size() && std::isdigit(static_cast<unsigned char>(rtf[j]))) param += rtf[j++];
        }
        if (j < rtf.size() && rtf[j] == ' ') ++j;
        i = j - 1;
        if (group_start && (word == "fonttbl" || word == "colortbl" || word == "stylesheet" || word == "info" ||
                            word == "pict" || word == "fldinst" || word == "object" || word == "listtable" ||
                            word == "listoverridetable" || word == "header" || word == "footer"))
          hidden.back() = true;
        if (!hidden.back()) {
          if (word == "par" || word == "line") out += '\n';
          if (word == "tab" || word == "cell") out += '\t';
          if (word == "u") out += "<u" + param + ">";
        }
        group_start = false;
        continue;
      }
      if (d == '*') {
        hidden.back() = true;
        ++i;
        continue;
      }
      if (d == '\'' && i + 3 < rtf.size()) {
        if (!hidden.back()) out += rtf.substr(i, 4);
        i += 3;
        group_start = false;
        continue;
      }
      if (!hidden.back() && (d == '\\' || d == '{' || d == '}')) out += d;
      ++i;
      group_start = false;
      continue;
    }
    group_start = false;
    if (!hidden.back()) out += c;
  }
  return out;
}

// ---- text and structure ----

TEST(RtfStrip, JapaneseTextAndFormattingStay) {
  const std::string in =
      "{\\rtf1\\ansi\\ansicpg932\\deff0{\\fonttbl{\\f0\\fnil\\fcharset128 \\'82\\'6c\\'82\\'72 \\'96\\'be\\'92\\'a9;}}"
      "{\\colortbl;\\red255\\green0\\blue0;}\n"
      "\\f0\\fs24 \\'8b\\'63\\'8e\\'96\\'98\\'5e {\\b \\cf1 \\'8f\\'64\\'97\\'76}\\par\n"
      "\\uc1\\u12354?\\u-3913? braces \\{ \\} and \\\\ backslash\\par\n"
      "\\trowd\\cellx2000\\cellx4000 A\\cell B\\cell\\row\n"
      "tab\\tab end\\line x\\~y\\-z\\_w\\par}";
  RtfStripResult r = strip(in);
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(r.findings.visible());
  EXPECT_TRUE(r.rtf.starts_with("{\\rtf1"));
  EXPECT_EQ(visible_text(r.rtf), visible_text(in));
  EXPECT_TRUE(contains(r.rtf, "\\'8b\\'63\\'8e\\'96\\'98\\'5e"));
  EXPECT_TRUE(contains(r.rtf, "\\fcharset128"));
  EXPECT_TRUE(contains(r.rtf, "\\u-3913"));
  // Our output read again gives the same output: what we wrote is what we parsed.
  EXPECT_EQ(strip(r.rtf).rtf, r.rtf);
}

TEST(RtfStrip, EightBitTextIsEscapedAndControlWordsKeepTheirDelimiter) {
  RtfStripResult r = strip("{\\rtf1 \\b bold\\b0  two spaces \xe9t\xe9\tx}");
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_EQ(r.rtf, "{\\rtf1\\b bold\\b0  two spaces \\'e9t\\'e9\\tab x}");
}

// ---- objects ----

TEST(RtfStrip, ObjectsGoTheirResultPictureStays) {
  const std::string wmf = std::string("\x01\x00\x09\x00\x00\x03\x10\x00\x00\x00", 10) + std::string(20, '\0');
  const std::string ole = "01050000020000000b0000005061636b61676500" + hex("calc.exe MZ\x90 This program");
  const std::string in = "{\\rtf1 before {\\object\\objemb\\objw100\\objh100{\\*\\objclass Package}{\\*\\objdata " + ole +
                         "}{\\result{\\pict\\wmetafile8\\picw10\\pich10 " + hex(wmf) + "}}} after\\par}";
  RtfStripResult r = strip(in);
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(contains(r.rtf, "object"));
  EXPECT_FALSE(contains(r.rtf, "objdata"));
  EXPECT_FALSE(contains(r.rtf, "Package"));
  EXPECT_FALSE(contains(r.rtf, hex("calc.exe")));
  EXPECT_TRUE(contains(r.rtf, "\\pict\\wmetafile8\\picw10\\pich10"));
  EXPECT_TRUE(contains(r.rtf, hex(wmf)));
  EXPECT_TRUE(contains(r.rtf, "before"));
  EXPECT_TRUE(contains(r.rtf, "after"));
  EXPECT_EQ(r.findings.count(Finding::Embedded), 1);
}

TEST(RtfStrip, ObjectDataAnywhereAndDestinationsMidGroupGo) {
  // \objdata after other content in a group still opens the destination, as
  // in Word (oletools issue 251).
  RtfStripResult r = strip("{\\rtf1 keep{\\footer\\.\\objdata 0105000002000000 hidden} more{\\*\\objdata 01050000}\\par}");
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(contains(r.rtf, "objdata"));
  EXPECT_FALSE(contains(r.rtf, "0105"));
  EXPECT_FALSE(contains(r.rtf, "hidden"));
  EXPECT_TRUE(contains(r.rtf, "keep"));
  EXPECT_TRUE(contains(r.rtf, "more"));
}

TEST(RtfStrip, BinTricksDoNotLetDataThrough) {
  // \bin with no length, with a space, negative, longer than the file, and
  // words that merely start with "bin".
  const std::string payload = "MZ\x90\x00\x03\x00\x00\x00\x04\x00";
  const std::vector<std::string> inputs = {
      "{\\rtf1 a\\bin b{\\*\\objdata 01\\bin" + std::to_string(payload.size()) + " " + payload + "}\\par}",
      "{\\rtf1 a{\\object{\\*\\objdata 32\\bin6 FF}}}",  // issue 185: the length runs past the end
      "{\\rtf1 a\\bin-5 b\\binN\\bin\\binN c\\par}",
      "{\\rt{\\object\\objautlink{\\*\\objclass \\'77}{\\*\\objdata 32\\bin6 FF}}}",
  };
  for (const auto& in : inputs) {
    SCOPED_TRACE(in);
    RtfStripResult r = strip(in);
    ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
    EXPECT_FALSE(contains(r.rtf, "\\bin ")) << r.rtf;
    EXPECT_FALSE(contains(r.rtf, "\\bin6")) << r.rtf;
    EXPECT_FALSE(contains(r.rtf, "MZ")) << r.rtf;
    EXPECT_FALSE(contains(r.rtf, "objdata")) << r.rtf;
    for (char c : r.rtf) EXPECT_TRUE(c == '\r' || c == '\n' || (c >= 0x20 && c < 0x7F)) << "raw byte in " << r.rtf;
    EXPECT_EQ(strip(r.rtf).rtf, r.rtf);
  }
}

TEST(RtfStrip, PicturesAreCheckedAndWrittenAsHex) {
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(16, 'p');
  // Binary picture data comes out as hex.
  RtfStripResult bin = strip("{\\rtf1{\\pict\\pngblip\\picw1\\pich1\\bin" + std::to_string(png.size()) + " " + png + "}x}");
  ASSERT_EQ(bin.status, RtfStripResult::Status::Ok);
  EXPECT_TRUE(contains(bin.rtf, hex(png))) << bin.rtf;
  EXPECT_FALSE(contains(bin.rtf, "\\bin"));
  // A "JPEG" that is not one, a Mac PICT, and picture properties.
  RtfStripResult bad = strip("{\\rtf1{\\pict\\jpegblip 4d5a9000}{\\pict\\macpict 0000}"
                             "{\\pict{\\*\\picprop{\\sp{\\sn pFragments}{\\sv 1;2;AAAA}}}\\pngblip " + hex(png) + "}y}");
  ASSERT_EQ(bad.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(contains(bad.rtf, "4d5a"));
  EXPECT_FALSE(contains(bad.rtf, "macpict"));
  EXPECT_FALSE(contains(bad.rtf, "pFragments"));
  EXPECT_TRUE(contains(bad.rtf, hex(png)));
  EXPECT_EQ(bad.findings.count(Finding::Images), 2);
}

TEST(RtfStrip, ShapesKeepOnlyTheirResult) {
  RtfStripResult r = strip("{\\rtf1{\\shp{\\*\\shpinst\\shpleft0{\\sp{\\sn pFragments}{\\sv 1;1;ffff}}{\\shptxt inside}}"
                           "{\\shprslt{\\*\\do\\dobxcolumn text box}}}after}");
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(contains(r.rtf, "shpinst"));
  EXPECT_FALSE(contains(r.rtf, "pFragments"));
  EXPECT_FALSE(contains(r.rtf, "\\shp"));
  EXPECT_TRUE(contains(r.rtf, "after"));
}

// ---- fields ----

TEST(RtfStrip, ActiveFieldsGoTheirResultStays) {
  const std::string in =
      "{\\rtf1 "
      "{\\field{\\*\\fldinst {\\rtlch DDEAUTO c:\\\\\\\\windows\\\\\\\\system32\\\\\\\\cmd.exe \"/k calc.exe\"}}{\\fldrslt {DDE result}}}"
      "{\\field{\\*\\fldinst DD}{\\*\\fldinst E cmd}{\\fldrslt split}}"
      "{\\field{\\*\\fldinst HYPERLINK \"http://evil.example/\"}{\\fldrslt {\\ul link text}}}"
      "{\\field{\\*\\fldinst INCLUDEPICTURE \"http://evil.example/x.png\" \\\\d}{\\fldrslt pic}}"
      "{\\field{\\*\\fldinst {\\field{\\*\\fldinst QUOTE 68 68 69}{\\fldrslt DDE}} c:\\\\\\\\x}{\\fldrslt nested}}"
      "{\\field{\\*\\fldinst PAGE \\\\* MERGEFORMAT}{\\fldrslt 7}}"
      "{\\field{\\*\\fldinst FORMTEXT {\\*\\formfield{\\*\\ffname T1}{\\*\\ffentrymcr Evil}{\\*\\ffexitmcr Evil2}}}{\\fldrslt input}}"
      "\\par}";
  RtfStripResult r = strip(in);
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  for (const char* gone : {"DDEAUTO", "cmd.exe", "HYPERLINK", "INCLUDEPICTURE", "evil", "QUOTE", "ffentrymcr", "Evil"})
    EXPECT_FALSE(contains(r.rtf, gone)) << gone << " in " << r.rtf;
  for (const char* kept : {"DDE result", "split", "link text", "pic", "nested", "PAGE", "7", "FORMTEXT", "ffname", "input"})
    EXPECT_TRUE(contains(r.rtf, kept)) << kept << " in " << r.rtf;
  EXPECT_EQ(r.findings.count(Finding::Dde), 2);
  EXPECT_EQ(r.findings.count(Finding::Hyperlinks), 1);
  EXPECT_EQ(r.findings.count(Finding::Fields), 2);
  EXPECT_EQ(r.findings.count(Finding::Macros), 2);
}

TEST(RtfStrip, DangerousAndUnknownDestinationsGo) {
  RtfStripResult r = strip(
      "{\\rtf1{\\*\\template http://evil.example/t.dotm}{\\*\\datastore 0105}{\\*\\themedata 504b0304}"
      "{\\*\\htmltag84 <script>alert(1)</script>}{\\*\\unknownthing secret}{\\fonttbl{\\f0 {\\*\\panose 0202}Arial;}}"
      "{\\*\\fontemb{\\*\\fontfile x}}{\\mailmerge{\\*\\mmconnectstr evil}}\\fromhtml1 text\\par}");
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  for (const char* gone : {"template", "evil", "datastore", "themedata", "504b", "script", "secret", "fontemb",
                           "mailmerge", "fromhtml"})
    EXPECT_FALSE(contains(r.rtf, gone)) << gone << " in " << r.rtf;
  EXPECT_TRUE(contains(r.rtf, "\\*\\panose 0202"));
  EXPECT_TRUE(contains(r.rtf, "text"));
  EXPECT_EQ(r.findings.count(Finding::External), 2);
}

// ---- refusals ----

TEST(RtfStrip, NotRtfAndTooDeep) {
  EXPECT_EQ(strip("hello").status, RtfStripResult::Status::NotRtf);
  EXPECT_EQ(strip(" {\\rtf1 x}").status, RtfStripResult::Status::NotRtf);
  EXPECT_EQ(strip("{\\rtf1 " + std::string(300, '{') + "x" + std::string(300, '}') + "}").status,
            RtfStripResult::Status::TooDeep);
  // Unclosed groups are closed; anything after the document is ignored.
  RtfStripResult open = strip("{\\rtf1 {\\b x");
  ASSERT_EQ(open.status, RtfStripResult::Status::Ok);
  EXPECT_EQ(open.rtf, "{\\rtf1{\\b x}}");
  EXPECT_EQ(strip("{\\rtf1 x}trailing {\\object}").rtf, "{\\rtf1 x}");
}

// ---- the sanitizer ----

TEST(RtfStripSanitizer, OutcomeNameAndNotes) {
  auto s = make_rtf_strip({});
  EXPECT_EQ(s->name(), "rtf.strip");
  EXPECT_EQ(s->handles(), std::vector<Kind>{Kind::Rtf});
  testing::TestContext tc;
  Item item;
  item.bytes = "{\\rtf1 {\\object{\\*\\objdata 0105}} text\\par}";
  item.name = "請求書.doc";
  item.kind = Kind::Rtf;
  item.path = "mail.eml/請求書.doc";
  Outcome o = s->process(item, tc.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Replace);
  EXPECT_EQ(o.name, "請求書.rtf");
  EXPECT_EQ(o.type, "application/rtf");
  EXPECT_EQ(o.reason.code, "rtf.strip");
  EXPECT_FALSE(o.cosmetic);
  ASSERT_FALSE(tc.report.notes.empty());
  EXPECT_EQ(tc.report.notes[0].reason.code, "office.embedded");

  item.bytes = "{\\rtf1 plain\\par}";
  item.name = "memo.rtf";
  Outcome clean = s->process(item, tc.ctx);
  EXPECT_EQ(clean.name, "memo.rtf");
  EXPECT_EQ(clean.reason.code, "rtf.rebuilt");
  EXPECT_TRUE(clean.cosmetic);

  item.bytes = "MZ not rtf";
  EXPECT_EQ(s->process(item, tc.ctx).action, Outcome::Action::Block);

  EXPECT_THROW(make_rtf_strip(toml::parse("max_depth = 0")), ConfigError);
  EXPECT_THROW(make_rtf_strip(toml::parse("depth = 3")), ConfigError);
  SanitizerRegistry registry;
  register_builtin_sanitizers(registry);
  EXPECT_TRUE(registry.contains("rtf.strip"));
}

// ---- public samples ----

// The zipped oletools samples use the password "infected-test".
std::string unzip_first(const std::string& path, const char* password) {
  struct Deleter {
    void operator()(archive* a) const { archive_read_free(a); }
  };
  std::unique_ptr<archive, Deleter> a(archive_read_new());
  archive_read_support_format_zip(a.get());
  archive_read_add_passphrase(a.get(), password);
  if (archive_read_open_filename(a.get(), path.c_str(), 16384) != ARCHIVE_OK) return {};
  archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return {};
  std::string out;
  char buf[16384];
  la_ssize_t n;
  while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

void expect_disarmed(const std::string& label, const std::string& input, const std::string& payload_hex = "") {
  SCOPED_TRACE(label);
  ASSERT_FALSE(input.empty());
  RtfStripResult r = strip(input);
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  for (const char* gone : {"\\object", "\\objdata", "objclass", "\\bin", "\\*\\template", "ddeauto", "DDEAUTO"})
    EXPECT_FALSE(contains(r.rtf, gone)) << gone;
  if (!payload_hex.empty()) {
    EXPECT_FALSE(contains(r.rtf, payload_hex)) << "the embedded file's bytes are still there";
  }
  EXPECT_EQ(strip(r.rtf).rtf, r.rtf) << "the output is stable when sanitized again";
  std::fprintf(stderr, "  %-48s %8zu -> %8zu bytes, embedded=%d images=%d hidden=%d dde=%d\n", label.c_str(),
               input.size(), r.rtf.size(), r.findings.count(Finding::Embedded), r.findings.count(Finding::Images),
               r.findings.count(Finding::Hidden), r.findings.count(Finding::Dde));
}

TEST(RtfStripCorpus, OletoolsAndExefilterSamples) {
  if (!std::ifstream(kCorpus + "/README.md")) GTEST_SKIP() << kCorpus << " is missing";
  expect_disarmed("oletools/rtfobj/issue_251.rtf", read_file(kCorpus + "/oletools/rtfobj/issue_251.rtf"));
  expect_disarmed("oletools/rtfobj/issue_185.rtf", unzip_first(kCorpus + "/oletools/rtfobj/issue_185.rtf.zip", "infected-test"));
  // The OLE Package in this file carries an EXE: its header must not survive
  // in any encoding.
  const std::string exefilter = read_file(kCorpus + "/exefilter/RTF OLE Package EXE.rtf");
  expect_disarmed("exefilter/RTF OLE Package EXE.rtf", exefilter, "4d5a90");
  EXPECT_EQ(strip(exefilter).findings.count(Finding::Embedded), 1);

  // The RTF specification: a large clean document keeps its text.
  const std::string spec = read_file(kCorpus + "/oletools/msodde/RTF-Spec-1.7.rtf");
  ASSERT_FALSE(spec.empty());
  RtfStripResult r = strip(spec);
  ASSERT_EQ(r.status, RtfStripResult::Status::Ok);
  EXPECT_FALSE(r.findings.count(Finding::Embedded));
  const std::string before = visible_text(spec), after = visible_text(r.rtf);
  EXPECT_GT(before.size(), 100000u);
  EXPECT_EQ(after, before);
}

TEST(RtfStripCorpus, ClamavTestfile) {
  const std::string rtf = read_file(kClamavTestfiles + "/clam.exe.rtf");
  const std::string exe = read_file(kClamavTestfiles + "/clam.exe");
  if (rtf.empty() || exe.empty()) GTEST_SKIP() << kClamavTestfiles << " is missing";
  expect_disarmed("clamav-testfiles/clam.exe.rtf", rtf, hex(exe.substr(0, 32)));
  RtfStripResult r = strip(rtf);
  EXPECT_FALSE(contains(r.rtf, exe.substr(0, 32)));
  EXPECT_EQ(r.findings.count(Finding::Embedded), 1);
}

}  // namespace
}  // namespace mukaika
