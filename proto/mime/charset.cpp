#include "mime/charset.h"

#include <iconv.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

namespace mukaika::charset {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr unsigned char kEsc = 0x1B;

unsigned char byte_at(std::string_view s, std::size_t i) { return static_cast<unsigned char>(s[i]); }

// ---------------------------------------------------------------------------
// iconv, wrapped so that every handle is closed exactly once.

class Converter {
 public:
  explicit Converter(const char* from) : cd_(iconv_open("UTF-8", from)) {}
  ~Converter() {
    if (ok()) iconv_close(cd_);
  }
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return cd_; }

 private:
  iconv_t cd_;
};

// iconv_open is slow (it searches the gconv configuration), and headers are
// decoded a few words at a time, so converters are kept per thread. Failed
// opens are remembered too, so junk labels cost one lookup. shared_ptr keeps a
// converter alive for its user even if the cache is cleared meanwhile.
std::shared_ptr<Converter> converter(const std::string& iconv_name) {
  thread_local std::map<std::string, std::shared_ptr<Converter>> cache;
  auto it = cache.find(iconv_name);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 64) cache.clear();  // bounded: labels come from hostile mail
  auto conv = std::make_shared<Converter>(iconv_name.c_str());
  cache.emplace(iconv_name, conv);
  return conv;
}

// How many bytes an undecodable sequence spans, so that one bad character
// becomes one U+FFFD (and its trail byte is not misread as ASCII).
enum class Skip { Byte, Sjis, Euc, Unit16, Unit32 };

bool sjis_lead(unsigned char b) { return (b >= 0x81 && b <= 0x9F) || (b >= 0xE0 && b <= 0xFC); }
bool sjis_trail(unsigned char b) { return b >= 0x40 && b <= 0xFC && b != 0x7F; }
bool euc_byte(unsigned char b) { return b >= 0xA1 && b <= 0xFE; }

std::size_t skip_length(Skip rule, const char* p, std::size_t left) {
  auto at = [p](std::size_t i) { return static_cast<unsigned char>(p[i]); };
  std::size_t n = 1;
  switch (rule) {
    case Skip::Byte:
      break;
    case Skip::Sjis:
      if (left >= 2 && sjis_lead(at(0)) && sjis_trail(at(1))) n = 2;
      break;
    case Skip::Euc:
      if (at(0) == 0x8F && left >= 3 && euc_byte(at(1)) && euc_byte(at(2)))
        n = 3;
      else if ((at(0) == 0x8E || euc_byte(at(0))) && left >= 2 && euc_byte(at(1)))
        n = 2;
      break;
    case Skip::Unit16:
      n = 2;
      break;
    case Skip::Unit32:
      n = 4;
      break;
  }
  return n < left ? n : left;
}

// Converts all of `in` with replacement; returns the number of replaced
// sequences. Always makes progress, so it cannot loop forever.
std::size_t iconv_decode(const std::string& iconv_name, Skip rule, std::string_view in, std::string& out) {
  auto conv = converter(iconv_name);
  if (!conv->ok()) {
    if (in.empty()) return 0;
    out += kReplacement;
    return 1;
  }
  iconv_t cd = conv->get();
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // fresh shift state for cached handles

  std::size_t invalid = 0;
  std::array<char, 16384> buf;
  char* src = const_cast<char*>(in.data());  // iconv's API is not const-correct; it does not write
  std::size_t left = in.size();
  while (left > 0) {
    char* dst = buf.data();
    std::size_t room = buf.size();
    const std::size_t before = left;
    const std::size_t r = iconv(cd, &src, &left, &dst, &room);
    const int err = errno;
    out.append(buf.data(), static_cast<std::size_t>(dst - buf.data()));
    if (r != static_cast<std::size_t>(-1)) continue;
    if (err == E2BIG && (left != before || dst != buf.data())) continue;
    if (err == EINVAL) {  // incomplete sequence at the very end
      out += kReplacement;
      ++invalid;
      break;
    }
    // EILSEQ, or anything unexpected: replace and step over the bad bytes.
    const std::size_t n = skip_length(rule, src, left);
    out += kReplacement;
    ++invalid;
    src += n;
    left -= n;
  }
  // Stateful decoders (EUC-JISX0213 combining pairs) may still hold a character.
  char* dst = buf.data();
  std::size_t room = buf.size();
  iconv(cd, nullptr, nullptr, &dst, &room);
  out.append(buf.data(), static_cast<std::size_t>(dst - buf.data()));
  return invalid;
}

// ---------------------------------------------------------------------------
// UTF-8 (our own: faster than iconv and with WHATWG "maximal subpart"
// replacement, so the count of bad sequences is meaningful).

// Length of the valid sequence starting at s[i], or 0 with `bad` = how many
// bytes form the maximal invalid subpart (at least 1).
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::size_t& bad) {
  const unsigned char b = byte_at(s, i);
  bad = 1;
  if (b < 0x80) return 1;
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char c = byte_at(s, i + k);
    if (c < lo || c > hi) return 0;
    lo = 0x80;
    hi = 0xBF;
    bad = k + 1;
  }
  return need + 1;
}

std::size_t utf8_decode(std::string_view in, std::string& out) {
  std::size_t invalid = 0;
  std::size_t i = 0;
  out.reserve(out.size() + in.size());
  while (i < in.size()) {
    // Copy valid stretches in one go.
    std::size_t start = i;
    std::size_t bad = 1;
    std::size_t len;
    while (i < in.size()) {
      if (byte_at(in, i) < 0x80) {
        ++i;
      } else if ((len = utf8_sequence(in, i, bad)) != 0) {
        i += len;
      } else {
        break;
      }
    }
    out.append(in.substr(start, i - start));
    if (i < in.size()) {
      out += kReplacement;
      ++invalid;
      i += bad;  // the lead plus the continuations that matched (maximal subpart)
    }
  }
  return invalid;
}

// ---------------------------------------------------------------------------
// ISO-2022-JP as Microsoft and old Japanese mailers write it. Each JIS X 0208
// pair is turned into Shift_JIS and whole runs go through iconv's CP932,
// which knows the NEC and IBM extensions that glibc's ISO-2022-JP rejects.

class Iso2022JpDecoder {
 public:
  std::size_t decode(std::string_view s, std::string& out);

 private:
  enum class Set { Ascii, Kana, Jis0208, Jis0212, Jis0213Plane1, Jis0213Plane2, Gb2312, Ksc5601 };
  enum class Pending { None, Cp932, EucJpMs, EucJisx0213, EucCn, EucKr, Latin1, Greek };

  void add(Pending kind, unsigned char a) {
    if (kind != pending_kind_) flush();
    pending_kind_ = kind;
    pending_ += static_cast<char>(a);
  }
  void bad() {
    flush();
    *out_ += kReplacement;
    ++invalid_;
  }
  void flush();
  // Reads the escape sequence at s[i]; returns its length (at least 1).
  std::size_t escape(std::string_view s, std::size_t i);
  void pair(Set set, unsigned char j1, unsigned char j2);

  std::string* out_ = nullptr;
  std::size_t invalid_ = 0;
  std::string pending_;  // bytes in pending_kind_ awaiting one iconv call
  Pending pending_kind_ = Pending::None;
  Set g0_ = Set::Ascii;
  Pending g2_ = Pending::None;  // ISO-2022-JP-2 single-shift set
  bool shifted_ = false;        // SO ... SI: half-width katakana (CP50222)
  bool single_shift_ = false;   // ESC N: next byte comes from G2
};

void Iso2022JpDecoder::flush() {
  if (pending_.empty()) return;
  const char* name = "CP932";
  Skip rule = Skip::Sjis;
  switch (pending_kind_) {
    case Pending::None:
    case Pending::Cp932:
      break;
    case Pending::EucJpMs:
      name = "EUC-JP-MS";
      rule = Skip::Euc;
      break;
    case Pending::EucJisx0213:
      name = "EUC-JISX0213";
      rule = Skip::Euc;
      break;
    case Pending::EucCn:
      name = "EUC-CN";
      rule = Skip::Euc;
      break;
    case Pending::EucKr:
      name = "EUC-KR";
      rule = Skip::Euc;
      break;
    case Pending::Latin1:
      name = "ISO-8859-1";
      rule = Skip::Byte;
      break;
    case Pending::Greek:
      name = "ISO-8859-7";
      rule = Skip::Byte;
      break;
  }
  invalid_ += iconv_decode(name, rule, pending_, *out_);
  pending_.clear();
  pending_kind_ = Pending::None;
}

void Iso2022JpDecoder::pair(Set set, unsigned char j1, unsigned char j2) {
  switch (set) {
    case Set::Jis0208: {
      // JIS row/cell to Shift_JIS; rows 13 and 89-92 land on CP932's NEC
      // and NEC-selected IBM extensions.
      const auto s1 = static_cast<unsigned char>(((j1 + 1) >> 1) + (j1 <= 0x5E ? 0x70 : 0xB0));
      const auto s2 = static_cast<unsigned char>(j2 + ((j1 & 1) ? (j2 >= 0x60 ? 0x20 : 0x1F) : 0x7E));
      add(Pending::Cp932, s1);
      add(Pending::Cp932, s2);
      break;
    }
    case Set::Jis0212:
      add(Pending::EucJpMs, 0x8F);
      add(Pending::EucJpMs, j1 | 0x80);
      add(Pending::EucJpMs, j2 | 0x80);
      break;
    case Set::Jis0213Plane1:
      add(Pending::EucJisx0213, j1 | 0x80);
      add(Pending::EucJisx0213, j2 | 0x80);
      break;
    case Set::Jis0213Plane2:
      add(Pending::EucJisx0213, 0x8F);
      add(Pending::EucJisx0213, j1 | 0x80);
      add(Pending::EucJisx0213, j2 | 0x80);
      break;
    case Set::Gb2312:
      add(Pending::EucCn, j1 | 0x80);
      add(Pending::EucCn, j2 | 0x80);
      break;
    case Set::Ksc5601:
      add(Pending::EucKr, j1 | 0x80);
      add(Pending::EucKr, j2 | 0x80);
      break;
    case Set::Ascii:
    case Set::Kana:
      break;  // single-byte sets never get here
  }
}

std::size_t Iso2022JpDecoder::escape(std::string_view s, std::size_t i) {
  const std::string_view rest = s.substr(i + 1);
  struct Designation {
    std::string_view seq;
    Set set;
  };
  static constexpr std::array<Designation, 15> kG0{{
      {"(B", Set::Ascii},
      {"(J", Set::Ascii},  // JIS-Roman read as ASCII, as Windows does: keeps \ and ~
      {"(H", Set::Ascii},
      {"(I", Set::Kana},
      {"$@", Set::Jis0208},
      {"$B", Set::Jis0208},
      {"$A", Set::Gb2312},
      {"$(@", Set::Jis0208},
      {"$(B", Set::Jis0208},
      {"$(D", Set::Jis0212},
      {"$(O", Set::Jis0213Plane1},
      {"$(Q", Set::Jis0213Plane1},
      {"$(P", Set::Jis0213Plane2},
      {"$(A", Set::Gb2312},
      {"$(C", Set::Ksc5601},
  }};
  for (const auto& d : kG0) {
    if (rest.substr(0, d.seq.size()) == d.seq) {
      g0_ = d.set;
      shifted_ = false;
      return 1 + d.seq.size();
    }
  }
  if (rest.substr(0, 2) == "&@") return 3;  // JIS X 0208-1990 announcer: no change
  if (rest.substr(0, 2) == ".A") {
    g2_ = Pending::Latin1;
    return 3;
  }
  if (rest.substr(0, 2) == ".F") {
    g2_ = Pending::Greek;
    return 3;
  }
  if (rest.substr(0, 1) == "N") {
    single_shift_ = true;
    return 2;
  }
  // Unknown or truncated: skip it as one ISO 2022 escape (intermediates
  // 0x20-0x2F, then a final byte) and mark it.
  std::size_t n = 1;
  while (i + n < s.size() && byte_at(s, i + n) >= 0x20 && byte_at(s, i + n) <= 0x2F) ++n;
  if (i + n < s.size() && byte_at(s, i + n) >= 0x30 && byte_at(s, i + n) <= 0x7E) ++n;
  bad();
  return n;
}

std::size_t Iso2022JpDecoder::decode(std::string_view s, std::string& out) {
  out_ = &out;
  out.reserve(out.size() + s.size() * 3 / 2);
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const unsigned char b = byte_at(s, i);
    if (single_shift_) {
      single_shift_ = false;
      if (b >= 0x20 && b < 0x80 && g2_ != Pending::None) {
        add(g2_, b | 0x80);
        ++i;
        continue;
      }
      bad();  // ESC N without a usable G2 byte; b is handled normally below
    }
    if (b == kEsc) {
      flush();
      i += escape(s, i);
    } else if (b == 0x0E) {  // SO
      shifted_ = true;
      ++i;
    } else if (b == 0x0F) {  // SI
      shifted_ = false;
      ++i;
    } else if (b >= 0x80) {
      // Raw 8-bit bytes from a broken mailer: read them as CP932.
      if (sjis_lead(b) && i + 1 < n && sjis_trail(byte_at(s, i + 1))) {
        add(Pending::Cp932, b);
        add(Pending::Cp932, byte_at(s, i + 1));
        i += 2;
      } else if (b >= 0xA1 && b <= 0xDF) {
        add(Pending::Cp932, b);
        ++i;
      } else {
        bad();
        ++i;
      }
    } else if (b <= 0x20 || b == 0x7F || (g0_ == Set::Ascii && !shifted_)) {
      // ASCII text, and controls/space in any set: copy the whole stretch.
      flush();
      const std::size_t start = i;
      const bool ascii = g0_ == Set::Ascii && !shifted_;
      while (i < n) {
        const unsigned char c = byte_at(s, i);
        if (c == kEsc || c == 0x0E || c == 0x0F || c >= 0x80) break;
        if (!ascii && c > 0x20 && c != 0x7F) break;
        ++i;
      }
      out.append(s.substr(start, i - start));
    } else if (shifted_ || g0_ == Set::Kana) {
      if (b <= 0x5F)
        add(Pending::Cp932, b | 0x80);  // half-width katakana in CP932
      else
        bad();
      ++i;
    } else {
      // A double-byte set: consume pairs while they last.
      while (i < n) {
        const unsigned char j1 = byte_at(s, i);
        if (j1 <= 0x20 || j1 >= 0x7F) break;
        if (i + 1 >= n || byte_at(s, i + 1) <= 0x20 || byte_at(s, i + 1) >= 0x7F) {
          bad();  // a lone half of a pair
          ++i;
          break;
        }
        pair(g0_, j1, byte_at(s, i + 1));
        i += 2;
      }
    }
  }
  if (single_shift_) bad();
  flush();  // a missing final ESC ( B must not lose the last run
  out_ = nullptr;
  return invalid_;
}

// ---------------------------------------------------------------------------
// Helpers for canonical() and sniff().

std::string lower_trimmed(std::string_view label) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\''; };
  while (!label.empty() && is_space(label.front())) label.remove_prefix(1);
  while (!label.empty() && is_space(label.back())) label.remove_suffix(1);
  std::string out;
  out.reserve(label.size());
  for (char c : label) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return out;
}

// Labels are handed to iconv_open only when they look like charset names:
// no "//TRANSLIT" suffixes, paths or control characters.
bool plausible_label(std::string_view s) {
  if (s.empty() || s.size() > 40) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                    c == ':' || c == '+' || c == '(' || c == ')';
    if (!ok) return false;
  }
  return true;
}

struct Alias {
  std::string_view label;
  std::string_view canonical;
};

constexpr std::array<Alias, 62> kAliases{{
    {"shift_jis", "cp932"},
    {"shift-jis", "cp932"},
    {"sjis", "cp932"},
    {"x-sjis", "cp932"},
    {"s-jis", "cp932"},
    {"ms_kanji", "cp932"},
    {"csshiftjis", "cp932"},
    {"windows-31j", "cp932"},
    {"cswindows31j", "cp932"},
    {"cp932", "cp932"},
    {"ms932", "cp932"},
    {"windows-932", "cp932"},
    {"x-ms-cp932", "cp932"},
    {"ibm-943", "cp932"},
    {"ibm943", "cp932"},
    {"iso-2022-jp", "iso-2022-jp"},
    {"csiso2022jp", "iso-2022-jp"},
    {"iso-2022-jp-1", "iso-2022-jp"},
    {"iso-2022-jp-2", "iso-2022-jp"},  // a superset; our decoder reads its JP, CN, KR and G2 sets
    {"csiso2022jp2", "iso-2022-jp"},
    {"iso-2022-jp-3", "iso-2022-jp"},
    {"iso-2022-jp-2004", "iso-2022-jp"},
    {"iso-2022-jp-ms", "iso-2022-jp"},
    {"cp50220", "iso-2022-jp"},
    {"cp50221", "iso-2022-jp"},
    {"cp50222", "iso-2022-jp"},
    {"x-cp50220", "iso-2022-jp"},
    {"x-cp50221", "iso-2022-jp"},
    {"x-cp50222", "iso-2022-jp"},
    {"jis", "iso-2022-jp"},
    {"euc-jp", "euc-jp"},
    {"x-euc-jp", "euc-jp"},
    {"x-euc", "euc-jp"},
    {"eucjp", "euc-jp"},
    {"cseucpkdfmtjapanese", "euc-jp"},
    {"eucjp-ms", "euc-jp"},
    {"euc-jp-ms", "euc-jp"},
    {"eucjp-win", "euc-jp"},
    {"eucjp-open", "euc-jp"},
    {"utf-8", "utf-8"},
    {"utf8", "utf-8"},
    {"unicode-1-1-utf-8", "utf-8"},
    {"x-unicode20utf8", "utf-8"},
    {"us-ascii", "us-ascii"},
    {"ascii", "us-ascii"},
    {"ansi_x3.4-1968", "us-ascii"},
    {"ansi_x3.4-1986", "us-ascii"},
    {"iso646-us", "us-ascii"},
    {"csascii", "us-ascii"},
    {"us", "us-ascii"},
    {"iso-ir-6", "us-ascii"},
    {"utf-16", "utf-16"},
    {"utf16", "utf-16"},
    {"utf-16le", "utf-16le"},
    {"utf16le", "utf-16le"},
    {"utf-16be", "utf-16be"},
    {"utf16be", "utf-16be"},
    // Common mail labels glibc does not know or knows too narrowly.
    {"ks_c_5601-1987", "cp949"},
    {"gb2312", "gb18030"},
    {"gbk", "gb18030"},
    {"x-gbk", "gb18030"},
    {"csgb2312", "gb18030"},
}};

std::string iconv_name(std::string_view canon) {
  if (canon == "euc-jp") return "EUC-JP-MS";
  std::string out;
  for (char c : canon) out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

Skip skip_rule(std::string_view canon) {
  if (canon == "cp932") return Skip::Sjis;
  if (canon == "euc-jp" || canon.substr(0, 4) == "euc-") return Skip::Euc;
  if (canon.substr(0, 6) == "utf-16" || canon.substr(0, 5) == "ucs-2") return Skip::Unit16;
  if (canon.substr(0, 6) == "utf-32" || canon.substr(0, 5) == "ucs-4") return Skip::Unit32;
  return Skip::Byte;
}

bool all_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// An ISO-2022-JP designation (not merely any ESC, which terminal logs have).
bool has_jis_escape(std::string_view s) {
  for (std::size_t i = s.find('\x1B'); i != std::string_view::npos; i = s.find('\x1B', i + 1)) {
    const std::string_view r = s.substr(i + 1, 3);
    if (r.substr(0, 2) == "$B" || r.substr(0, 2) == "$@" || r.substr(0, 2) == "(I" || r.substr(0, 2) == "(J" ||
        r == "$(D" || r == "$(O" || r == "$(Q" || r == "$(P")
      return true;
  }
  return false;
}

std::string_view bom_charset(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") return "utf-8";
  if (s.substr(0, 4) == std::string_view("\xFF\xFE\x00\x00", 4)) return "utf-32le";
  if (s.substr(0, 4) == std::string_view("\x00\x00\xFE\xFF", 4)) return "utf-32be";
  if (s.substr(0, 2) == "\xFF\xFE") return "utf-16le";
  if (s.substr(0, 2) == "\xFE\xFF") return "utf-16be";
  return {};
}

// Decodes one code point of valid UTF-8 at s[i] and advances i.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const unsigned char b = byte_at(s, i);
  std::size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  if (i + len > s.size()) len = s.size() - i;
  char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (byte_at(s, i + k) & 0x3F);
  i += len;
  return cp;
}

// How much a decoding looks like Japanese: kana, kanji and Japanese
// punctuation score; half-width katakana (what EUC-JP looks like read as
// CP932) barely; undecodable sequences cost a lot.
long plausibility(const std::string& utf8, std::size_t invalid) {
  long score = -20 * static_cast<long>(invalid);
  std::size_t i = 0;
  while (i < utf8.size()) {
    const char32_t cp = next_code_point(utf8, i);
    if (cp < 0x80 || cp == 0xFFFD) continue;
    if ((cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFF01 && cp <= 0xFF5E))
      score += 2;
    else if (cp >= 0xFF61 && cp <= 0xFF9F)
      score += 1;
  }
  return score;
}

// Damaged UTF-8 (a truncated file, one bad byte) still has many valid
// multi-byte sequences; Shift_JIS and EUC-JP text almost never has any. True
// when valid multi-byte sequences outnumber bad ones `ratio` to one.
bool mostly_utf8(std::string_view s, std::size_t ratio) {
  std::size_t good = 0;
  std::size_t bad_count = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    if (byte_at(s, i) < 0x80) {
      ++i;
      continue;
    }
    std::size_t bad;
    const std::size_t len = utf8_sequence(s, i, bad);
    if (len == 0) {
      ++bad_count;
      i += bad;
    } else {
      ++good;
      i += len;
    }
  }
  return good > 0 && good >= ratio * bad_count;
}

void drop_leading_bom(std::string& utf8) {
  if (utf8.compare(0, 3, "\xEF\xBB\xBF") == 0) utf8.erase(0, 3);
}

// Decodes with a canonical charset name; no sniffing.
Decoded decode_as(std::string_view bytes, const std::string& canon) {
  Decoded d;
  d.charset = canon;
  if (canon == "utf-8") {
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    d.invalid = utf8_decode(bytes, d.utf8);
  } else if (canon == "us-ascii") {
    d.invalid = utf8_decode(bytes, d.utf8);  // only reached for ASCII; stays safe otherwise
  } else if (canon == "iso-2022-jp") {
    d.invalid = Iso2022JpDecoder().decode(bytes, d.utf8);
  } else {
    d.invalid = iconv_decode(iconv_name(canon), skip_rule(canon), bytes, d.utf8);
  }
  drop_leading_bom(d.utf8);  // UTF-16LE labelled input keeps its BOM as U+FEFF
  // iconv is trusted, but the header promises valid UTF-8: check, never
  // assume. (Our own UTF-8 decoder's output is valid by construction.)
  if (canon != "utf-8" && canon != "us-ascii" && !is_valid_utf8(d.utf8)) {
    std::string clean;
    d.invalid += utf8_decode(d.utf8, clean);
    d.utf8 = std::move(clean);
  }
  return d;
}

}  // namespace

// ---------------------------------------------------------------------------

std::string canonical(std::string_view label) {
  std::string l = lower_trimmed(label);
  // RFC 2231 / RFC 2184 language suffix: "iso-2022-jp*ja".
  if (auto star = l.find('*'); star != std::string::npos) l.resize(star);
  if (!plausible_label(l)) return {};
  for (const auto& a : kAliases)
    if (a.label == l) return std::string(a.canonical);
  if (converter(iconv_name(l))->ok()) return l;
  return {};
}

std::string sniff(std::string_view bytes) {
  if (auto bom = bom_charset(bytes); !bom.empty()) return std::string(bom);
  const bool valid = is_valid_utf8(bytes);
  if (has_jis_escape(bytes) && (!valid || all_ascii(bytes))) return "iso-2022-jp";
  if (valid || mostly_utf8(bytes, 2)) return "utf-8";
  // A prefix is plenty to tell the two apart and keeps sniffing cheap.
  std::string_view sample = bytes.substr(0, 64 * 1024);
  std::string a, b;
  const std::size_t bad_sjis = iconv_decode("CP932", Skip::Sjis, sample, a);
  const std::size_t bad_euc = iconv_decode("EUC-JP-MS", Skip::Euc, sample, b);
  return plausibility(b, bad_euc) > plausibility(a, bad_sjis) ? "euc-jp" : "cp932";
}

Decoded to_utf8(std::string_view bytes, std::string_view label) {
  std::string canon = canonical(label);
  // A byte order mark beats the label (as in WHATWG's decode).
  std::string_view bom = bom_charset(bytes);
  if (!bom.empty() && canon != bom &&
      !(bom == "utf-16le" && canon == "utf-16") && !(bom == "utf-16be" && canon == "utf-16")) {
    Decoded d = decode_as(bytes, std::string(bom));
    d.sniffed = true;
    return d;
  }
  if (canon.empty()) {
    Decoded d = decode_as(bytes, sniff(bytes));
    d.sniffed = true;
    return d;
  }
  if (canon == "us-ascii" || canon == "utf-8") {
    // Mislabelled Japanese mail: JIS escapes under an ASCII/UTF-8 label, or
    // bytes that are not valid in the label at all.
    if (has_jis_escape(bytes) && all_ascii(bytes)) {
      Decoded d = decode_as(bytes, "iso-2022-jp");
      d.sniffed = true;
      return d;
    }
    if (canon == "us-ascii" ? !all_ascii(bytes) : !is_valid_utf8(bytes)) {
      // Damaged UTF-8 under a UTF-8 label stays UTF-8 (the label is
      // evidence too); anything else is guessed.
      const std::string guess = canon == "utf-8" && mostly_utf8(bytes, 1) ? "utf-8" : sniff(bytes);
      Decoded d = decode_as(bytes, guess);
      d.sniffed = guess != canon;
      return d;
    }
  }
  if (canon == "iso-2022-jp" && !all_ascii(bytes) && !has_jis_escape(bytes) && is_valid_utf8(bytes)) {
    // 8-bit text without a single JIS escape under a 7-bit label: UTF-8 sent
    // with a stale label (webmail does this). Raw Shift_JIS is not valid UTF-8.
    Decoded d = decode_as(bytes, "utf-8");
    d.sniffed = true;
    return d;
  }
  return decode_as(bytes, canon);
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    // Fast path for ASCII.
    if (byte_at(s, i) < 0x80) {
      ++i;
      continue;
    }
    std::size_t bad;
    const std::size_t len = utf8_sequence(s, i, bad);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace mukaika::charset
