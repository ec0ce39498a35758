// Tests for mime/charset. Inputs are explicit byte escapes; expected outputs
// are UTF-8 literals (this file is UTF-8, GCC's execution charset too).
// Vectors were produced independently with Python's cp932/euc_jp codecs and
// glibc iconv, not with the code under test.
#include "mime/charset.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mukaika::charset {
namespace {

using namespace std::string_literals;

constexpr const char* kFFFD = "\xEF\xBF\xBD";

// ---------------------------------------------------------------------------
// ISO-2022-JP

TEST(Iso2022Jp, PlainKanjiAndKana) {
  const std::string in = "\x1B$B3t<02q<R\x1B(B \x1B$B$*CN$i$;\x1B(B";
  Decoded d = to_utf8(in, "ISO-2022-JP");
  EXPECT_EQ(d.utf8, "株式会社 お知らせ");
  EXPECT_EQ(d.charset, "iso-2022-jp");
  EXPECT_EQ(d.invalid, 0u);
  EXPECT_FALSE(d.sniffed);
}

TEST(Iso2022Jp, MicrosoftExtensions) {
  // ① ㈱ ㍻ (NEC row 13) and 髙 (row 92, NEC-selected IBM extension).
  Decoded d = to_utf8("\x1B$B-!-j-_|b\x1B(B", "iso-2022-jp");
  EXPECT_EQ(d.utf8, "①㈱㍻髙");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Iso2022Jp, WaveDashIsFullwidthTilde) {
  EXPECT_EQ(to_utf8("\x1B$B!A\x1B(B", "iso-2022-jp").utf8, "\xEF\xBD\x9E");  // U+FF5E
}

TEST(Iso2022Jp, HalfWidthKatakanaByEscapeAndByShiftOut) {
  EXPECT_EQ(to_utf8("\x1B(I123\x1B(B", "iso-2022-jp").utf8, "ｱｲｳ");
  // CP50222 style: SO ... SI.
  EXPECT_EQ(to_utf8("a\x0E" "123\x0F" "b", "iso-2022-jp").utf8, "aｱｲｳb");
}

TEST(Iso2022Jp, MixedSetsInOneLine) {
  const std::string in = "Re: \x1B$B-j\x1B(B \x1B(I6\x1B(B test \x1B$@$*\x1B(J!";
  Decoded d = to_utf8(in, "iso-2022-jp");
  EXPECT_EQ(d.utf8, "Re: ㈱ ｶ test お!");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Iso2022Jp, MissingFinalEscapeKeepsText) {
  Decoded d = to_utf8("\x1B$B$*CN$i$;", "iso-2022-jp");
  EXPECT_EQ(d.utf8, "お知らせ");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Iso2022Jp, LineBreaksInsideKanjiModeKeepTheMode) {
  EXPECT_EQ(to_utf8("\x1B$B$*\r\n$*\x1B(B", "iso-2022-jp").utf8, "お\r\nお");
}

TEST(Iso2022Jp, RawShiftJisInsideStream) {
  // A broken mailer: JIS, then raw CP932 bytes for 株式 and ①, then JIS again.
  const std::string in = "abc \x1B$B$*\x1B(B \x8A\x94\x8E\xAE\x87@ \x1B$B$*\x1B(B";
  Decoded d = to_utf8(in, "iso-2022-jp");
  EXPECT_EQ(d.utf8, "abc お 株式① お");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Iso2022Jp, TruncatedEscapeAtEnd) {
  Decoded a = to_utf8("\x1B$B$*\x1B(", "iso-2022-jp");
  EXPECT_EQ(a.utf8, "お"s + kFFFD);
  EXPECT_EQ(a.invalid, 1u);
  Decoded b = to_utf8("\x1B$B$*\x1B", "iso-2022-jp");
  EXPECT_EQ(b.utf8, "お"s + kFFFD);
  EXPECT_EQ(b.invalid, 1u);
}

TEST(Iso2022Jp, LoneHalfOfPairIsReplaced) {
  Decoded d = to_utf8("\x1B$B$*$\x1B(Bx", "iso-2022-jp");
  EXPECT_EQ(d.utf8, "お"s + kFFFD + "x");
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Iso2022Jp, UnknownEscapeIsReplacedAndSkipped) {
  Decoded d = to_utf8("a\x1B$(Zb", "iso-2022-jp");
  EXPECT_EQ(d.utf8, "a"s + kFFFD + "b");
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Iso2022Jp, UnassignedJisCodeIsReplaced) {
  // Row 9 is empty in JIS X 0208 and in CP932.
  Decoded d = to_utf8("\x1B$B)!$*\x1B(B", "iso-2022-jp");
  EXPECT_EQ(d.utf8, kFFFD + "お"s);
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Iso2022Jp, JisX0212AndJisX0213) {
  EXPECT_EQ(to_utf8("\x1B$(D0!\x1B(B", "iso-2022-jp").utf8, "丂");            // U+4E02
  EXPECT_EQ(to_utf8("\x1B$(Q.!\x1B(B", "iso-2022-jp-3").utf8, "俱");          // U+4FF1
  EXPECT_EQ(to_utf8("\x1B$(P!!\x1B(B", "iso-2022-jp").utf8, "\xF0\xA0\x82\x89");  // U+20089
}

TEST(Iso2022Jp, Iso2022Jp2SingleShiftLatin1) {
  EXPECT_EQ(to_utf8("caf\x1B.A\x1BNi", "ISO-2022-JP-2").utf8, "café");
}

TEST(Iso2022Jp, DecodesLargeInputInRuns) {
  std::string in;
  std::string want;
  for (int i = 0; i < 20000; ++i) {
    in += "\x1B$B3t<02q<R-!\x1B(B abc\r\n";
    want += "株式会社① abc\r\n";
  }
  Decoded d = to_utf8(in, "iso-2022-jp");
  EXPECT_EQ(d.invalid, 0u);
  EXPECT_TRUE(d.utf8 == want);
}

// ---------------------------------------------------------------------------
// Shift_JIS / CP932, EUC-JP, UTF-8, UTF-16

TEST(Decode, ShiftJisLabelReadsCp932Extensions) {
  // ① ㈱ 髙 (IBM extension 0xFBFC) ～ (0x8160)
  Decoded d = to_utf8("\x87@\x87\x8A\xFB\xFC\x81`", "Shift_JIS");
  EXPECT_EQ(d.utf8, "①㈱髙\xEF\xBD\x9E");
  EXPECT_EQ(d.charset, "cp932");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Decode, Cp932KeepsBackslashAndTildeAsAscii) {
  EXPECT_EQ(to_utf8("C:\\dir~\x83\x5C", "cp932").utf8, "C:\\dir~ソ");
}

TEST(Decode, EucJpWithJisX0212) {
  Decoded d = to_utf8("\xA4\xA2\x8F\xB0\xA1\xA1\xC1", "EUC-JP");
  EXPECT_EQ(d.utf8, "あ丂\xEF\xBD\x9E");
  EXPECT_EQ(d.charset, "euc-jp");
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Decode, Utf8BomIsDropped) {
  Decoded d = to_utf8("\xEF\xBB\xBF" "abc\xE3\x81\x82", "utf-8");
  EXPECT_EQ(d.utf8, "abcあ");
  EXPECT_EQ(d.charset, "utf-8");
  Decoded s = to_utf8("\xEF\xBB\xBF" "abc", "");
  EXPECT_EQ(s.utf8, "abc");
  EXPECT_TRUE(s.sniffed);
}

TEST(Decode, Utf16LeWithBom) {
  const std::string in("\xFF\xFE" "A\x00\x42\x30", 6);  // BOM, 'A', U+3042
  Decoded d = to_utf8(in, "");
  EXPECT_EQ(d.utf8, "Aあ");
  EXPECT_EQ(d.charset, "utf-16le");
  EXPECT_TRUE(d.sniffed);
  // Labelled too: the BOM must not survive as U+FEFF.
  EXPECT_EQ(to_utf8(in, "UTF-16LE").utf8, "Aあ");
  EXPECT_EQ(to_utf8(in, "utf-16").utf8, "Aあ");
}

TEST(Decode, Utf16OddByteIsCounted) {
  Decoded d = to_utf8(std::string("\xFF\xFE" "A\x00" "B", 5), "");
  EXPECT_EQ(d.utf8, "A"s + kFFFD);
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Decode, MislabelledUsAsciiThatIsUtf8) {
  Decoded d = to_utf8("caf\xC3\xA9 \xE3\x81\x82", "us-ascii");
  EXPECT_EQ(d.utf8, "café あ");
  EXPECT_EQ(d.charset, "utf-8");
  EXPECT_TRUE(d.sniffed);
  EXPECT_EQ(d.invalid, 0u);
}

TEST(Decode, MislabelledUsAsciiThatIsCp932) {
  const std::string in =
      "\x82\xA8\x92m\x82\xE7\x82\xB9\x81" "F\x96{\x93\xFA\x82\xCC\x89\xEF\x8B" "c\x82\xCD\x8C\xDF\x8C\xE3"
      "\x82R\x8E\x9E\x82\xA9\x82\xE7\x82\xC5\x82\xB7\x81" "B";
  Decoded d = to_utf8(in, "US-ASCII");
  EXPECT_EQ(d.utf8, "お知らせ：本日の会議は午後３時からです。");
  EXPECT_EQ(d.charset, "cp932");
  EXPECT_TRUE(d.sniffed);
}

TEST(Decode, MislabelledUtf8ThatIsEucJp) {
  const std::string in =
      "\xA4\xAA\xC3\xCE\xA4\xE9\xA4\xBB\xA1\xA7\xCB\xDC\xC6\xFC\xA4\xCE\xB2\xF1\xB5\xC4\xA4\xCF\xB8\xE1\xB8\xE5"
      "\xA3\xB3\xBB\xFE\xA4\xAB\xA4\xE9\xA4\xC7\xA4\xB9\xA1\xA3";
  Decoded d = to_utf8(in, "utf-8");
  EXPECT_EQ(d.utf8, "お知らせ：本日の会議は午後３時からです。");
  EXPECT_EQ(d.charset, "euc-jp");
  EXPECT_TRUE(d.sniffed);
}

TEST(Decode, MislabelledAsciiThatIsIso2022Jp) {
  Decoded d = to_utf8("\x1B$B$*CN$i$;\x1B(B", "us-ascii");
  EXPECT_EQ(d.utf8, "お知らせ");
  EXPECT_EQ(d.charset, "iso-2022-jp");
}

TEST(Decode, Iso2022JpLabelOnUtf8WithoutEscapes) {
  Decoded d = to_utf8("\xE3\x81\x8A\xE7\x9F\xA5\xE3\x82\x89\xE3\x81\x9B", "ISO-2022-JP");
  EXPECT_EQ(d.utf8, "お知らせ");
  EXPECT_EQ(d.charset, "utf-8");
  EXPECT_TRUE(d.sniffed);
  // Raw Shift_JIS under the same label still goes through the JIS decoder.
  Decoded s = to_utf8("\x82\xA8\x92m\x82\xE7\x82\xB9", "ISO-2022-JP");
  EXPECT_EQ(s.utf8, "お知らせ");
  EXPECT_EQ(s.charset, "iso-2022-jp");
}

TEST(Decode, MostlyValidUtf8StaysUtf8) {
  // One stray byte in UTF-8 Japanese must not turn everything into mojibake.
  Decoded d = to_utf8("\xE3\x81\x82\xE3\x81\x84\xFF\xE3\x81\x86", "utf-8");
  EXPECT_EQ(d.utf8, "あい"s + kFFFD + "う");
  EXPECT_EQ(d.charset, "utf-8");
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Decode, InvalidUtf8CountedAndReplaced) {
  // Labelled UTF-8 Japanese with a bad byte and a truncated character at the
  // end (a cut-off file). Read as CP932 these bytes would decode without a
  // single error, as nonsense kanji; they must stay UTF-8.
  Decoded d = to_utf8("\xE3\x81\x82\xE3\x81\x84\xFF\xE3\x81\x86\xE3\x81", "utf-8");
  EXPECT_EQ(d.utf8, "あい"s + kFFFD + "う" + kFFFD);
  EXPECT_EQ(d.invalid, 2u);
  EXPECT_EQ(d.charset, "utf-8");
  EXPECT_FALSE(d.sniffed);
  // Unlabelled, the same holds.
  Decoded u = to_utf8("\xE3\x81\x82\xE3\x81\x84\xE3\x81\x86\xE3\x81\x88\xE3\x81", "");
  EXPECT_EQ(u.utf8, "あいうえ"s + kFFFD);
  EXPECT_EQ(u.charset, "utf-8");
}

TEST(Decode, InvalidCp932BytesCountedAndReplaced) {
  // 0x80 and 0xFF are undefined; 0x85 0x40 is an unassigned double-byte code.
  Decoded d = to_utf8("a\x80" "b\x85@c\xFF", "cp932");
  EXPECT_EQ(d.utf8, "a"s + kFFFD + "b" + kFFFD + "c" + kFFFD);
  EXPECT_EQ(d.invalid, 3u);
}

TEST(Decode, TruncatedCp932LeadByteAtEnd) {
  Decoded d = to_utf8("\x82\xA0\x82", "cp932");
  EXPECT_EQ(d.utf8, "あ"s + kFFFD);
  EXPECT_EQ(d.invalid, 1u);
}

TEST(Decode, InvalidEucJpCountedAndReplaced) {
  Decoded d = to_utf8("\xA4\xA2\xFF\xA4\xA2\xA4", "euc-jp");
  EXPECT_EQ(d.utf8, "あ"s + kFFFD + "あ" + kFFFD);
  EXPECT_EQ(d.invalid, 2u);
}

TEST(Decode, UnknownLabelIsSniffed) {
  Decoded d = to_utf8("\x82\xA8\x92m\x82\xE7\x82\xB9", "x-no-such-charset");
  EXPECT_EQ(d.utf8, "お知らせ");
  EXPECT_EQ(d.charset, "cp932");
  EXPECT_TRUE(d.sniffed);
}

TEST(Decode, OtherIconvCharsets) {
  EXPECT_EQ(to_utf8("caf\xE9", "ISO-8859-1").utf8, "café");
  Decoded k = to_utf8("\xC7\xD1", "ks_c_5601-1987");  // 한
  EXPECT_EQ(k.utf8, "한");
  EXPECT_EQ(k.charset, "cp949");
}

TEST(Decode, EmptyInput) {
  Decoded d = to_utf8("", "iso-2022-jp");
  EXPECT_EQ(d.utf8, "");
  EXPECT_EQ(d.invalid, 0u);
  EXPECT_EQ(to_utf8("", "").utf8, "");
}

TEST(Decode, NulBytesAreKeptNotTruncated) {
  Decoded d = to_utf8(std::string("a\0b", 3), "cp932");
  EXPECT_EQ(d.utf8, std::string("a\0b", 3));
}

// Random bytes under every decoder: no crash (ASan build), always valid
// UTF-8, and never more replacements than input bytes.
TEST(Decode, HostileInputAlwaysGivesValidUtf8) {
  std::mt19937 rng(12345);
  const char* labels[] = {"iso-2022-jp", "cp932", "euc-jp", "utf-8", "us-ascii", "utf-16le", "utf-16", "", "gb18030"};
  // Bias towards interesting bytes: ESC, SO/SI, '$', '(', high bytes.
  const unsigned char alphabet[] = {0x1B, 0x0E, 0x0F, '$', '(', 'B', 'J', 'I', 'D', 'N', '.', 0x21, 0x7E,
                                    0x80, 0x8E, 0x8F, 0xA1, 0xE3, 0xED, 0xF4, 0xFE, 0xFF, 0x00, 0x0A};
  for (int round = 0; round < 3000; ++round) {
    std::string in;
    const int len = static_cast<int>(rng() % 64);
    for (int i = 0; i < len; ++i)
      in += static_cast<char>(rng() % 2 ? alphabet[rng() % sizeof alphabet] : rng() % 256);
    for (const char* label : labels) {
      Decoded d = to_utf8(in, label);
      ASSERT_TRUE(is_valid_utf8(d.utf8)) << "label " << label << " round " << round;
      ASSERT_LE(d.invalid, in.size() + 1) << "label " << label;
    }
  }
}

// ---------------------------------------------------------------------------
// canonical, sniff, is_valid_utf8

TEST(Canonical, ShiftJisFamily) {
  for (const char* l : {"shift_jis", "Shift_JIS", "shift-jis", "sjis", "x-sjis", "MS_Kanji", "csShiftJIS",
                        "Windows-31J", "cp932", "MS932", "ibm-943", " \"Shift_JIS\" "})
    EXPECT_EQ(canonical(l), "cp932") << l;
}

TEST(Canonical, Iso2022JpFamily) {
  for (const char* l : {"ISO-2022-JP", "csISO2022JP", "iso-2022-jp-1", "iso-2022-jp-2", "CP50220", "cp50221",
                        "CP50222", "x-cp50220", "x-cp50221", "iso-2022-jp*ja"})
    EXPECT_EQ(canonical(l), "iso-2022-jp") << l;
}

TEST(Canonical, EucUtfAscii) {
  for (const char* l : {"EUC-JP", "x-euc-jp", "eucjp", "csEUCPkdFmtJapanese", "eucJP-ms"})
    EXPECT_EQ(canonical(l), "euc-jp") << l;
  EXPECT_EQ(canonical("UTF8"), "utf-8");
  EXPECT_EQ(canonical("utf-8"), "utf-8");
  EXPECT_EQ(canonical("US-ASCII"), "us-ascii");
  EXPECT_EQ(canonical("ascii"), "us-ascii");
  EXPECT_EQ(canonical("ANSI_X3.4-1968"), "us-ascii");
}

TEST(Canonical, IconvKnownUnknownAndJunk) {
  EXPECT_EQ(canonical("ISO-8859-1"), "iso-8859-1");
  EXPECT_EQ(canonical("KOI8-R"), "koi8-r");
  EXPECT_EQ(canonical("x-no-such-charset"), "");
  EXPECT_EQ(canonical(""), "");
  EXPECT_EQ(canonical("utf-8//TRANSLIT"), "");  // never hand suffixes to iconv
  EXPECT_EQ(canonical("../../etc/passwd"), "");
  EXPECT_EQ(canonical(std::string(200, 'a')), "");
}

TEST(Sniff, EachKind) {
  EXPECT_EQ(sniff(""), "utf-8");
  EXPECT_EQ(sniff("plain ascii"), "utf-8");
  EXPECT_EQ(sniff("\xE3\x81\x82"), "utf-8");
  EXPECT_EQ(sniff("\xEF\xBB\xBF" "abc"), "utf-8");
  EXPECT_EQ(sniff(std::string("\xFF\xFE" "A\x00", 4)), "utf-16le");
  EXPECT_EQ(sniff(std::string("\xFE\xFF\x00" "A", 4)), "utf-16be");
  EXPECT_EQ(sniff("\x1B$B$*CN$i$;\x1B(B"), "iso-2022-jp");
  EXPECT_EQ(sniff("\x1B$B$*\x1B(B \x82\xA0"), "iso-2022-jp");  // JIS with raw SJIS
  EXPECT_EQ(sniff("\x1B[31mred\x1B[0m"), "utf-8");               // terminal colours are not JIS
  EXPECT_EQ(sniff("\x82\xA8\x92m\x82\xE7\x82\xB9\x81" "F\x96{\x93\xFA\x82\xCC\x89\xEF\x8B" "c"), "cp932");
  EXPECT_EQ(sniff("\xA4\xAA\xC3\xCE\xA4\xE9\xA4\xBB\xA1\xA7\xCB\xDC\xC6\xFC\xA4\xCE\xB2\xF1\xB5\xC4"), "euc-jp");
  // Half-width katakana only is much more likely CP932 than EUC kanji.
  EXPECT_EQ(sniff("\xB1\xB2\xB3\xB4"), "cp932");
  // Damaged UTF-8 is still UTF-8.
  EXPECT_EQ(sniff("\xE3\x81\x82\xE3\x81\x84\xE3\x81"), "utf-8");
}

TEST(IsValidUtf8, AcceptsValid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("abc"));
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));
  EXPECT_TRUE(is_valid_utf8("あ①髙"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));      // U+E000
}

TEST(IsValidUtf8, RejectsInvalid) {
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xE0\x9F\xBF"));      // overlong 3-byte
  EXPECT_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));  // overlong 4-byte
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xE3\x81"));  // truncated
  EXPECT_FALSE(is_valid_utf8("a\xE3\x81" "a"));
}

TEST(Decode, Utf8ReplacementFollowsMaximalSubparts) {
  // A BOM pins the decoder to UTF-8 (no re-sniffing), so this checks the
  // WHATWG rule: overlongs and surrogates are one U+FFFD per byte, a
  // truncated but valid prefix is one U+FFFD.
  auto decode = [](const std::string& tail) { return to_utf8("\xEF\xBB\xBF" + tail, "utf-8"); };
  Decoded overlong = decode("\xC0\xAF");
  EXPECT_EQ(overlong.utf8, kFFFD + std::string(kFFFD));
  EXPECT_EQ(overlong.invalid, 2u);
  EXPECT_EQ(decode("\xE0\x80\xAF").invalid, 3u);
  EXPECT_EQ(decode("\xED\xA0\x80").invalid, 3u);
  EXPECT_EQ(decode("\xF4\x90\x80\x80").invalid, 4u);
  Decoded truncated = decode("\xE3\x81" "a\xF0\x9F\x98");
  EXPECT_EQ(truncated.utf8, kFFFD + "a"s + kFFFD);
  EXPECT_EQ(truncated.invalid, 2u);
}

}  // namespace
}  // namespace mukaika::charset
