// Tests for mime/header_text. Encoded-word payloads were produced with
// Python (base64 of ISO-2022-JP/UTF-8 bytes), not with the code under test.
#include "mime/header_text.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mime/charset.h"

namespace mukaika::mime {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------------------
// Helpers (independent of the code under test).

std::string b64decode(const std::string& in) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const auto v = alphabet.find(c);
    if (v == std::string::npos) ADD_FAILURE() << "bad base64 char in " << in;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

struct Word {
  std::string text;     // the whole =?...?=
  std::string decoded;  // payload bytes
};

// Every "=?UTF-8?B?...?=" word in `s`; fails the test on any other word.
std::vector<Word> utf8_words(const std::string& s) {
  std::vector<Word> words;
  for (std::size_t at = s.find("=?"); at != std::string::npos; at = s.find("=?", at + 2)) {
    const std::string prefix = "=?UTF-8?B?";
    EXPECT_EQ(s.compare(at, prefix.size(), prefix), 0) << "not a UTF-8 B word at " << at << " in " << s;
    const std::size_t end = s.find("?=", at + prefix.size());
    if (end == std::string::npos) {
      ADD_FAILURE() << "unterminated word in " << s;
      break;
    }
    words.push_back({s.substr(at, end + 2 - at), b64decode(s.substr(at + prefix.size(), end - at - prefix.size()))});
    at = end;
  }
  return words;
}

// ---------------------------------------------------------------------------
// decode_header_text

TEST(DecodeHeader, Iso2022JpBWordWithMicrosoftCharacters) {
  // ① ㈱ 髙 in ISO-2022-JP (rows 13 and 92), base64.
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCLSEtanxiGyhC?="), "①㈱髙");
  EXPECT_EQ(decode_header_text("=?iso-2022-jp?b?GyRCLSEtanxiGyhC?="), "①㈱髙");
}

TEST(DecodeHeader, Utf8CharacterSplitAcrossWords) {
  // "あい" = E3 81 82 | E3 81 84, split after the fourth byte.
  EXPECT_EQ(decode_header_text("=?UTF-8?B?44GC4w==?= =?UTF-8?B?gYQ=?="), "あい");
  // Folded between the words, as long Subjects are.
  EXPECT_EQ(decode_header_text("=?UTF-8?B?44GC4w==?=\r\n =?utf-8?B?gYQ=?="), "あい");
}

TEST(DecodeHeader, Iso2022JpCharacterSplitAcrossWords) {
  // "お知らせ": ESC $ B 0x24 | 0x2A ... ESC ( B — the pair for お is split.
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCJA==?=\r\n\t=?ISO-2022-JP?B?KkNOJGkkOxsoQg==?="), "お知らせ");
}

TEST(DecodeHeader, SplitWordsInDifferentLabelsOfOneCharset) {
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCJA==?= =?csISO2022JP?B?KkNOJGkkOxsoQg==?="), "お知らせ");
}

TEST(DecodeHeader, QEncodingWithUnderscores) {
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?hello_world_=E3=81=82?="), "hello world あ");
  EXPECT_EQ(decode_header_text("=?utf-8?q?a=5fb=3D?="), "a_b=");
  EXPECT_EQ(decode_header_text("=?ISO-8859-1?Q?caf=E9?="), "café");
}

TEST(DecodeHeader, MixedTextAndWords) {
  EXPECT_EQ(decode_header_text("Re: =?UTF-8?B?44GC?= and =?ISO-2022-JP?B?GyRCLSEbKEI=?= more"),
            "Re: あ and ① more");
}

TEST(DecodeHeader, WhitespaceBetweenWordsDroppedBetweenWordAndTextKept) {
  EXPECT_EQ(decode_header_text("=?UTF-8?B?44GC?= \t =?UTF-8?B?44GE?="), "あい");
  EXPECT_EQ(decode_header_text("=?UTF-8?B?44GC?= x =?UTF-8?B?44GE?="), "あ x い");
  EXPECT_EQ(decode_header_text("a =?UTF-8?B?44GC?= b"), "a あ b");
  // Different charsets are decoded separately and still joined.
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCLSEbKEI=?= =?UTF-8?B?44GE?="), "①い");
}

TEST(DecodeHeader, WordsGluedToText) {
  EXPECT_EQ(decode_header_text("Re:=?UTF-8?B?44GC?=!"), "Re:あ!");
  EXPECT_EQ(decode_header_text("=?UTF-8?B?44GC?==?UTF-8?B?44GE?="), "あい");
}

TEST(DecodeHeader, CharsetLanguageSuffix) {
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP*ja?B?GyRCLSEtanxiGyhC?="), "①㈱髙");
  EXPECT_EQ(decode_header_text("=?UTF-8*en-US?Q?ok?="), "ok");
}

TEST(DecodeHeader, MalformedWordsLeftAsIs) {
  for (const char* s : {"=?UTF-8?X?abc?=", "=?UTF-8?B?#$%&?=", "=?UTF-8?B?44GC", "=??B?44GC?=", "=?UTF-8?B?4?=",
                        "=?UTF-8?B?44 GC?=", "=?", "?=", "=?UTF-8?"})
    EXPECT_EQ(decode_header_text(s), s) << s;
  EXPECT_EQ(decode_header_text("ok =?UTF-8?B?#?= =?UTF-8?B?44GC?="), "ok =?UTF-8?B?#?= あ");
}

TEST(DecodeHeader, UnknownCharsetIsGuessed) {
  EXPECT_EQ(decode_header_text("=?x-unknown?B?44GC?="), "あ");
}

TEST(DecodeHeader, RawCp932Subject) {
  EXPECT_EQ(decode_header_text("\x82\xA8\x92m\x82\xE7\x82\xB9 test"), "お知らせ test");
  EXPECT_EQ(decode_header_text("Re: \x87@\xFB\xFC =?UTF-8?B?44GC?=", "Shift_JIS"), "Re: ①髙 あ");
}

TEST(DecodeHeader, RawUtf8AndRawJisSubjects) {
  EXPECT_EQ(decode_header_text("お知らせ =?UTF-8?B?44GC?="), "お知らせ あ");
  EXPECT_EQ(decode_header_text("\x1B$B$*CN$i$;\x1B(B test"), "お知らせ test");
}

TEST(DecodeHeader, RawEucJpWithEucFallback) {
  EXPECT_EQ(decode_header_text("\xA4\xAA\xC3\xCE\xA4\xE9\xA4\xBB", "euc-jp"), "お知らせ");
}

TEST(DecodeHeader, Unfolding) {
  EXPECT_EQ(decode_header_text("Hello\r\n World"), "Hello World");
  EXPECT_EQ(decode_header_text("Hello\n\tWorld\r\n"), "Hello\tWorld");
  EXPECT_EQ(decode_header_text("broken\r\nline"), "broken line");
}

TEST(DecodeHeader, LineBreaksAndNulFromWordsAreNeutralised) {
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?a=0D=0Ab=00c?="), "a  b c");
}

TEST(DecodeHeader, HostileInputGivesValidUtf8) {
  std::mt19937 rng(777);
  const std::vector<std::string> pieces = {"=?", "?=", "?B?", "?Q?", "UTF-8", "ISO-2022-JP", "GyRC", "44GC", "=E3",
                                           "\x1B$B", "\x1B(", "\x82", "\xA0", "\r\n ", " ", "_", "=", "*ja", "\xFF"};
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    ASSERT_TRUE(charset::is_valid_utf8(decode_header_text(s))) << round;
    ASSERT_TRUE(charset::is_valid_utf8(transcode_to_utf8(s))) << round;
    const HeaderValue v = parse_header_params("attachment; filename*0*=" + s + "; filename*1=\"" + s);
    for (const auto& [k, val] : v.params) ASSERT_TRUE(charset::is_valid_utf8(val)) << round;
  }
}

// ---------------------------------------------------------------------------
// transcode_to_utf8

TEST(Transcode, AddressListKeepsStructure) {
  // "山田 太郎" in ISO-2022-JP; the quoted name holds a comma.
  const std::string in =
      "=?ISO-2022-JP?B?GyRCOzNFRBsoQiAbJEJCQE86GyhC?= <taro@example.jp>, \"Yamada, Hanako\" <h@example.jp>";
  const std::string out = transcode_to_utf8(in);
  // "山田 太郎" in UTF-8 is 5bGx55SwIOWkqumDjg== (Python).
  EXPECT_EQ(out, "=?UTF-8?B?5bGx55SwIOWkqumDjg==?= <taro@example.jp>, \"Yamada, Hanako\" <h@example.jp>");
  for (const Word& w : utf8_words(out)) EXPECT_TRUE(charset::is_valid_utf8(w.decoded)) << w.text;
  EXPECT_EQ(decode_header_text(out), "山田 太郎 <taro@example.jp>, \"Yamada, Hanako\" <h@example.jp>");
}

TEST(Transcode, SplitJisWordsAreRejoinedThenReencoded) {
  const std::string out = transcode_to_utf8("=?ISO-2022-JP?B?GyRCJA==?=\r\n =?ISO-2022-JP?B?KkNOJGkkOxsoQg==?= <a@b>");
  const auto words = utf8_words(out);
  ASSERT_EQ(words.size(), 1u);
  EXPECT_EQ(words[0].decoded, "お知らせ");
  EXPECT_EQ(out, words[0].text + " <a@b>");
}

std::string q_encode_all(const std::string& bytes) {
  static const char* hex = "0123456789ABCDEF";
  std::string q;
  for (unsigned char c : bytes) {
    q += '=';
    q += hex[c >> 4];
    q += hex[c & 15];
  }
  return q;
}

TEST(Transcode, LongTextSplitIntoShortWordsAtCharacterBoundaries) {
  // A leading ASCII byte puts the 3-byte characters off the 45-byte chunk
  // grid, so naive chunking would cut characters.
  std::string text = "a";
  for (int i = 0; i < 10; ++i) text += "お知らせ①";
  const std::string out = transcode_to_utf8("=?UTF-8?Q?" + q_encode_all(text) + "?=");
  const auto words = utf8_words(out);
  ASSERT_GE(words.size(), 4u);
  std::string joined;
  for (const Word& w : words) {
    EXPECT_LE(w.text.size(), 75u) << w.text;
    EXPECT_TRUE(charset::is_valid_utf8(w.decoded)) << "split inside a character: " << w.text;
    joined += w.decoded;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(decode_header_text(out), text);
}

TEST(Transcode, TextAroundWordsUntouched) {
  EXPECT_EQ(transcode_to_utf8("Subject  text =?UTF-8?B?44GK55+l44KJ44Gb?=	tail"),
            "Subject  text =?UTF-8?B?44GK55+l44KJ44Gb?=\ttail");
}

TEST(Transcode, RawCp932DisplayNameConverted) {
  // 山田 in CP932 as raw 8-bit bytes.
  EXPECT_EQ(transcode_to_utf8("\x8ER\x93" "c <yamada@example.jp>"), "山田 <yamada@example.jp>");
  // ソ (0x83 0x5C) has a backslash trail byte: it must not break the quotes.
  EXPECT_EQ(transcode_to_utf8("\"\x83\x5C\x83t\x83g\" <s@example.jp>"), "\"ソフト\" <s@example.jp>");
}

TEST(Transcode, PlainAsciiAndUtf8AreByteIdentical) {
  for (const char* s : {"a@b.example, c@d.example", "Taro <t@example.jp>,\r\n\tHanako <h@example.jp>",
                        "\"=?broken\" <x@y>", "山田 <y@example.jp>", ""})
    EXPECT_EQ(transcode_to_utf8(s), s) << s;
}

TEST(Transcode, QuotedEncodedWordStaysQuoted) {
  EXPECT_EQ(transcode_to_utf8("\"=?ISO-2022-JP?B?GyRCLSEbKEI=?=\" <a@b>"), "\"=?UTF-8?B?4pGg?=\" <a@b>");
}

// ---------------------------------------------------------------------------
// parse_header_params

TEST(Params, SimpleContentType) {
  const HeaderValue v = parse_header_params("  Text/Plain ; Charset=\"ISO-2022-JP\"; format=flowed");
  EXPECT_EQ(v.value, "text/plain");
  ASSERT_EQ(v.params.size(), 2u);
  EXPECT_EQ(v.params.at("charset"), "ISO-2022-JP");
  EXPECT_EQ(v.params.at("format"), "flowed");
}

TEST(Params, Rfc2231Utf8WithLanguage) {
  EXPECT_EQ(parse_header_params("attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8%2E%70%64%66")
                .params.at("filename"),
            "請求書.pdf");
  EXPECT_EQ(parse_header_params("attachment; filename*=utf-8'ja'%E3%81%82.txt").params.at("filename"), "あ.txt");
  EXPECT_EQ(parse_header_params("attachment; filename*=\"UTF-8''%E3%81%82.txt\"").params.at("filename"), "あ.txt");
}

TEST(Params, Rfc2231ContinuationsCp932) {
  const HeaderValue v = parse_header_params("attachment; filename*0*=shift_jis''%82%A0; filename*1*=%82%A2.txt");
  EXPECT_EQ(v.value, "attachment");
  EXPECT_EQ(v.params.at("filename"), "あい.txt");
  EXPECT_EQ(parse_header_params("attachment; filename*0*=Shift_JIS''%87%40%EE%E0; filename*1=.txt")
                .params.at("filename"),
            "①髙.txt");
}

TEST(Params, Rfc2231ContinuationsIso2022JpSplitMidCharacter) {
  // ESC $ B 0x24 0x22 0x24 0x24 ESC ( B = "あい"; the second pair is split.
  const HeaderValue v = parse_header_params(
      "attachment;\r\n filename*0*=iso-2022-jp''%1B%24%42%24%22%24;\r\n filename*1*=%24%1B%28%42.txt");
  EXPECT_EQ(v.params.at("filename"), "あい.txt");
}

TEST(Params, Rfc2231ContinuationsUtf8OutOfOrderAndMixed) {
  EXPECT_EQ(parse_header_params("attachment; filename*1*=%81%84.txt; filename*0*=UTF-8''%E3%81%82%E3")
                .params.at("filename"),
            "あい.txt");
  EXPECT_EQ(parse_header_params("attachment; filename*0*=UTF-8''%E3%81%82; filename*1=\"-plain.txt\"")
                .params.at("filename"),
            "あ-plain.txt");
  EXPECT_EQ(parse_header_params("attachment; name*1=b.txt; name*0=a").params.at("name"), "ab.txt");
}

TEST(Params, Rfc2231WinsOverPlainValue) {
  const HeaderValue v =
      parse_header_params("attachment; filename=\"fallback.txt\"; filename*=UTF-8''%E3%81%82.txt");
  EXPECT_EQ(v.params.at("filename"), "あ.txt");
  EXPECT_EQ(v.params.size(), 1u);
}

TEST(Params, Rfc2047InQuotedFilename) {
  // "請求書①" in ISO-2022-JP, as most Japanese mailers write it.
  EXPECT_EQ(parse_header_params("attachment; filename=\"=?ISO-2022-JP?B?GyRCQEE1YT1xLSEbKEI=?=\"")
                .params.at("filename"),
            "請求書①");
  EXPECT_EQ(parse_header_params("application/octet-stream; name==?UTF-8?B?44GC?=.txt").params.at("name"),
            "あ.txt");
  // An RFC 2047 word cut in two by RFC 2231 continuations.
  EXPECT_EQ(parse_header_params("attachment; filename*0=\"=?ISO-2022-JP?B?GyRCQEE1\"; "
                                "filename*1=\"YT1xLSEbKEI=?=\"")
                .params.at("filename"),
            "請求書①");
}

TEST(Params, EscapedQuotesAndBackslashes) {
  EXPECT_EQ(parse_header_params(R"(attachment; filename="a \"quoted\" name.txt")").params.at("filename"),
            "a \"quoted\" name.txt");
  EXPECT_EQ(parse_header_params(R"(attachment; filename="a\\b;c.txt"; size=5)").params.at("filename"), "a\\b;c.txt");
}

TEST(Params, RawCp932FilenameWithBackslashTrailByte) {
  // ソ = 0x83 0x5C, 表 = 0x95 0x5C: the 0x5C must not escape the closing quote.
  const HeaderValue v = parse_header_params("attachment; filename=\"\x83\x5C\x83t\x83g.txt\"; size=1");
  EXPECT_EQ(v.params.at("filename"), "ソフト.txt");
  EXPECT_EQ(v.params.at("size"), "1");
  EXPECT_EQ(parse_header_params("attachment; filename=\"\x95\x5C\"").params.at("filename"), "表");
}

TEST(Params, Junk) {
  // Missing semicolons.
  HeaderValue a = parse_header_params("text/plain charset=utf-8 name=a.txt");
  EXPECT_EQ(a.value, "text/plain");
  EXPECT_EQ(a.params.at("charset"), "utf-8");
  EXPECT_EQ(a.params.at("name"), "a.txt");
  // Unterminated quote runs to the end.
  EXPECT_EQ(parse_header_params("attachment; filename=\"abc.txt").params.at("filename"), "abc.txt");
  // Duplicates: first wins; names lower-cased.
  HeaderValue d = parse_header_params("attachment; FileName=a.txt; filename=b.txt");
  EXPECT_EQ(d.params.at("filename"), "a.txt");
  EXPECT_EQ(d.params.size(), 1u);
  // Stray separators, tokens without '=', an '=' without a name.
  HeaderValue j = parse_header_params("attachment;;; foo ; =bar; \"x\"; filename=x.txt;");
  EXPECT_EQ(j.value, "attachment");
  ASSERT_EQ(j.params.size(), 1u);
  EXPECT_EQ(j.params.at("filename"), "x.txt");
  // Unquoted value with spaces (broken mailers).
  EXPECT_EQ(parse_header_params("attachment; filename=my file.txt").params.at("filename"), "my file.txt");
  // No main value at all.
  HeaderValue n = parse_header_params("filename=a.txt");
  EXPECT_EQ(n.value, "");
  EXPECT_EQ(n.params.at("filename"), "a.txt");
  // Absurd continuation numbers are ignored, not allocated.
  EXPECT_EQ(parse_header_params("a; f*99999999999=x").params.count("f"), 0u);
  EXPECT_EQ(parse_header_params("").value, "");
  EXPECT_TRUE(parse_header_params(";;;").params.empty());
}

TEST(Params, Rfc2231BadPercentAndCharset) {
  EXPECT_EQ(parse_header_params("a; f*=utf-8''100%25%zz%4").params.at("f"), "100%%zz%4");
  // Unknown charset: treated like raw bytes (UTF-8 here).
  EXPECT_EQ(parse_header_params("a; f*=x-nope''%E3%81%82").params.at("f"), "あ");
  // No charset quotes at all.
  EXPECT_EQ(parse_header_params("a; f*=%E3%81%82").params.at("f"), "あ");
}

TEST(Params, ControlCharactersInValuesNeutralised) {
  EXPECT_EQ(parse_header_params("a; f*=utf-8''x%0D%0Ay%00z").params.at("f"), "x  y z");
}

}  // namespace
}  // namespace mukaika::mime
