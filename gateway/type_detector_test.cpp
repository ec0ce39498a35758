#include "type_detector.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace mukaika {
namespace {

// A minimal PE header: libmagic calls this an MS-DOS/PE executable.
std::string tiny_pe() {
  std::string b(512, '\0');
  b[0] = 'M';
  b[1] = 'Z';
  b[0x3c] = 0x80;
  b.replace(0x80, 4, std::string("PE\0\0", 4));
  b[0x84] = 0x4c;  // i386
  b[0x85] = 0x01;
  return b;
}

TEST(TypeDetector, TextIsText) {
  TypeDetector d;
  auto v = d.classify("hello, world\nsecond line\n", "memo.txt", "text/plain");
  EXPECT_EQ(v.kind, Kind::Text);
  EXPECT_FALSE(v.disguised);
}

TEST(TypeDetector, ExecutableNamedPdfIsADisguise) {
  TypeDetector d;
  auto v = d.classify(tiny_pe(), "請求書.pdf", "application/pdf");
  EXPECT_EQ(v.kind, Kind::Executable);
  EXPECT_TRUE(v.disguised);
  EXPECT_EQ(v.claimed, "pdf");
}

TEST(TypeDetector, ExecutableNamedExeIsNotADisguise) {
  TypeDetector d;
  auto v = d.classify(tiny_pe(), "setup.exe", "application/octet-stream");
  EXPECT_EQ(v.kind, Kind::Executable);
  EXPECT_FALSE(v.disguised);
}

TEST(TypeDetector, TextNamedJsIsAScript) {
  TypeDetector d;
  auto v = d.classify("var x = new ActiveXObject('WScript.Shell');\n", "invoice.js", "text/plain");
  EXPECT_EQ(v.kind, Kind::Script);
}

TEST(TypeDetector, TrailingDotsDoNotHideTheExtension) {
  EXPECT_EQ(extension_of("run.exe. . "), "exe");
  EXPECT_EQ(kind_from_extension("a.B.VBS"), Kind::Script);
  EXPECT_EQ(extension_of(".bashrc"), "");
}

TEST(TypeDetector, TextNamedHtmlIsHtml) {
  TypeDetector d;
  EXPECT_EQ(d.classify("just words\n", "page.html", "").kind, Kind::Html);
}

TEST(TypeDetector, MailSniffedFromHeaders) {
  TypeDetector d;
  std::string mail = "MIME-Version: 1.0\r\nSubject: hi\r\nFrom: a@example.jp\r\n\r\nbody\r\n";
  EXPECT_EQ(d.classify(mail, "x", "").kind, Kind::Mail);
  std::string mbox = "From a@example.jp Mon Jan  1 00:00:00 2024\nSubject: x\nFrom: a@example.jp\n\nbody\n";
  EXPECT_EQ(d.classify(mbox, "", "").kind, Kind::Mail);
  EXPECT_FALSE(looks_like_mail("Dear: sir\nthis is a letter\n"));
}

TEST(TypeDetector, TextThatLibmagicMisreadsStaysText) {
  TypeDetector d;
  // libmagic calls this HP-GL; the sender says text, and it is.
  std::string body = "SPring-8 のビームタイム申請について\n";
  EXPECT_NE(d.mime_of(body).rfind("text/", 0), 0u);
  EXPECT_EQ(d.classify(body, "", "text/plain").kind, Kind::Text);
  EXPECT_EQ(d.classify("int main() { return 0; }\n", "main.c", "").kind, Kind::Text);
}

TEST(TypeDetector, EmptyAndUnknown) {
  TypeDetector d;
  EXPECT_EQ(d.classify("", "x.doc", "").kind, Kind::Empty);
  std::string noise;
  for (int i = 0; i < 256; ++i) noise += static_cast<char>((i * 73 + 11) & 0xFF);
  EXPECT_EQ(d.classify(noise, "blob.bin", "").kind, Kind::Unknown);
}

TEST(TypeDetector, PasswordProtectedLegacyOfficeIsEncrypted) {
  const std::filesystem::path dir = "/work/shared/corpus/oletools";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " missing (../shared/corpus)";
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  TypeDetector d;
  for (const char* f : {"encrypted/encrypted.doc", "encrypted/encrypted.xls", "encrypted/encrypted.ppt",
                        "encrypted/dde-test-encrypt-standardpassword.xls"})
    EXPECT_EQ(d.classify(read(dir / f), f, "").kind, Kind::Encrypted) << f;
  for (const char* f : {"msodde/harmless-clean.doc", "olevba/sample_with_vba.ppt", "oleobj/embedded-simple-2007.xls"})
    EXPECT_EQ(d.classify(read(dir / f), f, "").kind, Kind::OfficeLegacy) << f;
}

TEST(TypeDetector, MimeKinds) {
  EXPECT_EQ(kind_from_mime("application/vnd.openxmlformats-officedocument.wordprocessingml.document"), Kind::Office);
  EXPECT_EQ(kind_from_mime("Application/PDF; name=x"), Kind::Pdf);
  EXPECT_EQ(kind_from_mime("application/x-ms-shortcut"), Kind::Shortcut);
  EXPECT_EQ(kind_from_mime("application/x-iso9660-image"), Kind::DiskImage);
  EXPECT_EQ(kind_from_mime("image/png"), Kind::Image);
  EXPECT_EQ(kind_from_mime("application/encrypted"), Kind::Encrypted);
}

}  // namespace
}  // namespace mukaika
