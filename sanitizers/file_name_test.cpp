#include "file_name.h"

#include <gtest/gtest.h>

namespace mukaika {
namespace {

TEST(SafeFileName, KeepsOrdinaryJapaneseNames) {
  EXPECT_EQ(safe_file_name("令和6年度 予算書①.xlsx"), "令和6年度 予算書①.xlsx");
}

TEST(SafeFileName, DropsDirectories) {
  EXPECT_EQ(safe_file_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(safe_file_name("C:\\Windows\\system32\\evil.dll"), "evil.dll");
}

TEST(SafeFileName, RemovesBidiAndZeroWidth) {
  // "invoice<RLO>fdp.exe" displays as "invoiceexe.pdf".
  EXPECT_EQ(safe_file_name("invoice\xE2\x80\xAE" "fdp.exe"), "invoicefdp.exe");
  EXPECT_EQ(safe_file_name("a\xE2\x80\x8B" "b\xEF\xBB\xBF.txt"), "ab.txt");
  EXPECT_EQ(safe_file_name("x\xE2\x81\xA6y.txt"), "xy.txt");
}

TEST(SafeFileName, ControlCharactersAndCrlf) {
  EXPECT_EQ(safe_file_name("a.txt\r\nX-Evil: 1"), "a.txt__X-Evil_ 1");
  EXPECT_EQ(safe_file_name(std::string("nul\0byte.txt", 12)), "nul_byte.txt");
}

TEST(SafeFileName, WindowsRules) {
  EXPECT_EQ(safe_file_name("what?.txt"), "what_.txt");
  EXPECT_EQ(safe_file_name("run.exe. . "), "run.exe");
  EXPECT_EQ(safe_file_name("...hidden"), "hidden");
  EXPECT_EQ(safe_file_name("CON.txt"), "_CON.txt");
  EXPECT_EQ(safe_file_name("lpt1"), "_lpt1");
  EXPECT_EQ(safe_file_name("console.txt"), "console.txt");
}

TEST(SafeFileName, FullWidthSlashIsASeparatorToo) {
  EXPECT_EQ(safe_file_name("a\xEF\xBC\x8F" "b.txt"), "a_b.txt");
}

TEST(SafeFileName, EmptyBecomesFallback) {
  EXPECT_EQ(safe_file_name("", 120, "attachment-3"), "attachment-3");
  EXPECT_EQ(safe_file_name("\xE2\x80\xAE", 120, "x"), "x");
}

TEST(SafeFileName, InvalidUtf8IsReplaced) {
  EXPECT_EQ(safe_file_name("a\xFF" "b.txt"), "a\xEF\xBF\xBD" "b.txt");
}

TEST(SafeFileName, LengthLimitKeepsExtension) {
  std::string longname;
  for (int i = 0; i < 200; ++i) longname += "あ";
  longname += ".docx";
  std::string s = safe_file_name(longname, 50);
  EXPECT_EQ(s.size(), 45u * 3 + 5);
  EXPECT_EQ(s.substr(s.size() - 5), ".docx");
}

TEST(ReplaceExtension, Works) {
  EXPECT_EQ(replace_extension("x.docm", "docx"), "x.docx");
  EXPECT_EQ(replace_extension("noext", "txt"), "noext.txt");
  EXPECT_EQ(replace_extension(".profile", "txt"), ".profile.txt");
}

}  // namespace
}  // namespace mukaika
