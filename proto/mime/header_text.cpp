#include "mime/header_text.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "mime/charset.h"

namespace mukaika::mime {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
bool is_lws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_lws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_lws(s.back())) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 5322 unfolding: a line break followed by WSP goes; any other line
// break (malformed, or trailing) becomes one space so words do not merge.
std::string unfold(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c != '\r' && c != '\n') {
      out += c;
      continue;
    }
    if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
    const bool folded = i + 1 < s.size() && is_wsp(s[i + 1]);
    if (!folded && i + 1 < s.size()) out += ' ';
  }
  return out;
}

// Decoded text ends up in new headers and in notices: no line breaks or NULs.
void neutralise_controls(std::string& s) {
  for (char& c : s)
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
}

// Raw header bytes (not encoded words) to UTF-8: UTF-8 when valid, ISO-2022-JP
// when it has escapes (old Japanese mailers sent raw JIS headers), else the
// fallback charset.
std::string raw_to_utf8(std::string_view raw, std::string_view fallback) {
  const bool has_esc = raw.find('\x1B') != std::string_view::npos;
  if (!has_esc && charset::is_valid_utf8(raw)) return std::string(raw);
  if (has_esc) return charset::to_utf8(raw, "iso-2022-jp").utf8;
  std::string label = charset::canonical(fallback);
  if (label.empty() || label == "utf-8" || label == "us-ascii") label = {};  // sniff instead
  return charset::to_utf8(raw, label).utf8;
}

// ---------------------------------------------------------------------------
// RFC 2047 encoded words.

bool base64_decode(std::string_view in, std::string& out) {
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t chars = 0;
  bool padding = false;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=') {
      padding = true;
      continue;
    } else {
      return false;
    }
    if (padding) return false;  // data after '='
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    ++chars;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return chars % 4 != 1;  // a lone 6-bit group cannot hold a byte
}

void q_decode(std::string_view in, std::string& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '_') {
      out += ' ';
    } else if (c == '=' && i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += c;  // lenient: a stray '=' stays literal
    }
  }
}

struct Token {
  bool word = false;
  std::string_view raw;  // the text, or the whole encoded word
  std::string key;       // encoded word: canonical charset (or the label) for joining
  std::string label;     // encoded word: charset as written, without *lang
  std::string bytes;     // encoded word: decoded payload
};

// Tries to read "=?charset?e?text?=" at s[i]; on success fills `t` and sets
// `end` just past it.
bool read_encoded_word(std::string_view s, std::size_t i, Token& t, std::size_t& end) {
  if (s.substr(i, 2) != "=?") return false;
  std::size_t j = i + 2;
  const std::size_t cs_start = j;
  while (j < s.size() && s[j] != '?' && s[j] > 0x20 && s[j] < 0x7F && j - cs_start <= 64) ++j;
  if (j == cs_start || j + 3 > s.size() || s[j] != '?') return false;
  const char enc = lower(s[j + 1]);
  if ((enc != 'b' && enc != 'q') || s[j + 2] != '?') return false;
  std::string_view label = s.substr(cs_start, j - cs_start);
  std::size_t k = j + 3;
  const std::size_t text_start = k;
  while (k < s.size() && s[k] != '?' && s[k] > 0x20 && s[k] < 0x7F) ++k;
  if (k + 1 >= s.size() || s[k] != '?' || s[k + 1] != '=') return false;
  std::string_view text = s.substr(text_start, k - text_start);

  std::string bytes;
  if (enc == 'b') {
    if (!base64_decode(text, bytes)) return false;
  } else {
    q_decode(text, bytes);
  }
  if (auto star = label.find('*'); star != std::string_view::npos) label = label.substr(0, star);  // RFC 2231 lang
  t.word = true;
  t.raw = s.substr(i, k + 2 - i);
  t.label = std::string(label);
  t.key = charset::canonical(label);
  if (t.key.empty()) t.key = to_lower(label);
  t.bytes = std::move(bytes);
  end = k + 2;
  return true;
}

// Splits into text and encoded words. Words are recognised anywhere, also
// glued to text: Japanese mailers write "Re:=?ISO-2022-JP?B?...?=".
std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> tokens;
  std::size_t text_start = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t at = s.find("=?", i);
    if (at == std::string_view::npos) break;
    Token t;
    std::size_t end = 0;
    if (read_encoded_word(s, at, t, end)) {
      if (at > text_start) tokens.push_back(Token{false, s.substr(text_start, at - text_start), {}, {}, {}});
      tokens.push_back(std::move(t));
      text_start = i = end;
    } else {
      i = at + 1;
    }
  }
  if (text_start < s.size()) tokens.push_back(Token{false, s.substr(text_start), {}, {}, {}});
  return tokens;
}

bool only_lws(std::string_view s) {
  for (char c : s)
    if (!is_lws(c)) return false;
  return true;
}

// Decodes a run of encoded words (tokens[first..last], words and the
// whitespace between them): whitespace goes, and consecutive words in one
// charset are joined as bytes first so split characters survive.
std::string decode_word_run(const std::vector<Token>& tokens, std::size_t first, std::size_t last) {
  std::string out;
  std::string pending;
  const Token* pending_word = nullptr;
  auto flush = [&] {
    if (pending_word != nullptr) out += charset::to_utf8(pending, pending_word->label).utf8;
    pending.clear();
    pending_word = nullptr;
  };
  for (std::size_t i = first; i <= last; ++i) {
    const Token& t = tokens[i];
    if (!t.word) continue;
    if (pending_word != nullptr && pending_word->key != t.key) flush();
    if (pending_word == nullptr) pending_word = &t;
    pending += t.bytes;
  }
  flush();
  neutralise_controls(out);
  return out;
}

// Calls `text(token)` for plain text and `run(first, last)` for each maximal
// run of encoded words separated only by whitespace.
template <typename TextFn, typename RunFn>
void walk(const std::vector<Token>& tokens, TextFn text, RunFn run) {
  std::size_t i = 0;
  while (i < tokens.size()) {
    if (!tokens[i].word) {
      text(tokens[i]);
      ++i;
      continue;
    }
    std::size_t last = i;
    std::size_t j = i + 1;
    while (j < tokens.size()) {
      if (tokens[j].word) {
        last = j++;
      } else if (only_lws(tokens[j].raw) && j + 1 < tokens.size() && tokens[j + 1].word) {
        ++j;
      } else {
        break;
      }
    }
    run(i, last);
    i = last + 1;
  }
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const auto v = (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<unsigned char>(in[i + 2]);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kBase64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// UTF-8 text as "=?UTF-8?B?...?=" words of at most 75 characters each,
// split only between characters.
std::string encode_words(std::string_view utf8) {
  constexpr std::size_t kMaxBytes = 45;  // 60 base64 chars + 12 for "=?UTF-8?B?" "?=" = 72
  std::string out;
  while (!utf8.empty()) {
    std::size_t n = utf8.size() < kMaxBytes ? utf8.size() : kMaxBytes;
    // Back off continuation bytes so a character is never split.
    while (n < utf8.size() && n > 0 && (static_cast<unsigned char>(utf8[n]) & 0xC0) == 0x80) --n;
    if (n == 0) n = utf8.size() < kMaxBytes ? utf8.size() : kMaxBytes;  // not UTF-8 after all; cannot happen
    if (!out.empty()) out += ' ';
    out += "=?UTF-8?B?";
    out += base64_encode(utf8.substr(0, n));
    out += "?=";
    utf8.remove_prefix(n);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parameters.

// Reads an unquoted value (or the main value) up to ';'. Junk without the
// semicolon ("text/plain name=a") is cut where whitespace is followed by a
// "token=" that starts a new parameter.
std::size_t unquoted_end(std::string_view s, std::size_t i) {
  while (i < s.size() && s[i] != ';') {
    if (is_lws(s[i])) {
      std::size_t j = i;
      while (j < s.size() && is_lws(s[j])) ++j;
      std::size_t k = j;
      while (k < s.size() && s[k] != '=' && s[k] != ';' && s[k] != '"' && s[k] != '?' && !is_lws(s[k])) ++k;
      if (k > j && k < s.size() && s[k] == '=') return i;
      i = j;
      continue;
    }
    ++i;
  }
  return i;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Bytes in a named charset (RFC 2231) to UTF-8; an empty or unknown charset
// is treated like raw header bytes.
std::string charset_to_utf8(std::string_view bytes, std::string_view label, std::string_view fallback) {
  if (charset::canonical(label).empty()) return raw_to_utf8(bytes, fallback);
  return charset::to_utf8(bytes, label).utf8;
}

// "charset'lang'rest" -> charset and rest; no quotes: no charset.
std::string_view split_charset(std::string_view v, std::string& label) {
  const std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return v;
  const std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return v;
  label = std::string(v.substr(0, q1));
  return v.substr(q2 + 1);
}

struct Segment {
  bool encoded = false;
  std::string value;
};

struct ParamParts {
  bool has_plain = false;
  std::string plain;
  bool has_extended = false;  // name*=
  std::string extended;
  std::map<int, Segment> segments;  // name*0, name*1*, ...
};

std::string join_segments(const std::map<int, Segment>& segments, std::string_view fallback) {
  bool any_encoded = false;
  for (const auto& [n, seg] : segments) any_encoded = any_encoded || seg.encoded;
  std::string joined;
  if (!any_encoded) {
    for (const auto& [n, seg] : segments) joined += seg.value;
    // Some mailers split an RFC 2047 word across continuations.
    return decode_header_text(joined, fallback);
  }
  std::string label;
  bool first = true;
  for (const auto& [n, seg] : segments) {
    if (!seg.encoded) {
      joined += seg.value;
    } else if (first) {
      joined += percent_decode(split_charset(seg.value, label));
    } else {
      joined += percent_decode(seg.value);
    }
    first = false;
  }
  return charset_to_utf8(joined, label, fallback);
}

}  // namespace

std::string decode_header_text(std::string_view raw, std::string_view fallback_charset) {
  const std::string s = unfold(raw);
  const std::vector<Token> tokens = tokenize(s);
  std::string out;
  out.reserve(s.size());
  walk(
      tokens, [&](const Token& t) { out += raw_to_utf8(t.raw, fallback_charset); },
      [&](std::size_t first, std::size_t last) { out += decode_word_run(tokens, first, last); });
  neutralise_controls(out);
  // Each piece is valid UTF-8 and they join at character boundaries.
  return out;
}

std::string transcode_to_utf8(std::string_view raw, std::string_view fallback_charset) {
  const std::vector<Token> tokens = tokenize(raw);
  std::string out;
  out.reserve(raw.size() * 2);
  walk(
      tokens, [&](const Token& t) { out += raw_to_utf8(t.raw, fallback_charset); },
      [&](std::size_t first, std::size_t last) { out += encode_words(decode_word_run(tokens, first, last)); });
  return out;
}

HeaderValue parse_header_params(std::string_view raw, std::string_view fallback_charset) {
  // Raw 8-bit to UTF-8 first: a Shift_JIS trail byte can be '\\', which
  // would otherwise be read as an escape inside a quoted string.
  const std::string s = raw_to_utf8(unfold(raw), fallback_charset);
  HeaderValue result;
  std::size_t i = 0;
  while (i < s.size() && is_lws(s[i])) ++i;
  {
    const std::size_t end = unquoted_end(s, i);
    std::string_view v = trim(std::string_view(s).substr(i, end - i));
    if (v.find('=') == std::string_view::npos) {  // no main value at all: "filename=a.txt"
      result.value = to_lower(v);
      i = end;
    }
  }

  std::map<std::string, ParamParts> parts;
  std::vector<std::string> order;
  while (i < s.size()) {
    if (is_lws(s[i]) || s[i] == ';') {
      ++i;
      continue;
    }
    const std::size_t name_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';' && s[i] != '"' && !is_lws(s[i])) ++i;
    std::string name = to_lower(std::string_view(s).substr(name_start, i - name_start));
    std::size_t j = i;
    while (j < s.size() && is_lws(s[j])) ++j;
    if (name.empty() || j >= s.size() || s[j] != '=') {
      // Junk without '=': skip it (and a stray quote) and go on.
      if (i == name_start) ++i;
      continue;
    }
    i = j + 1;
    while (i < s.size() && is_lws(s[i])) ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
      if (i < s.size()) ++i;  // closing quote; an unterminated one runs to the end
    } else {
      const std::size_t end = unquoted_end(s, i);
      value = std::string(trim(std::string_view(s).substr(i, end - i)));
      i = end;
    }

    // name, name*, name*N, name*N*
    std::string base = name;
    int index = -1;
    bool encoded = false;
    bool extended = false;
    if (const std::size_t star = name.find('*'); star != std::string::npos) {
      base = name.substr(0, star);
      std::string_view rest = std::string_view(name).substr(star + 1);
      if (rest.empty()) {
        extended = true;
      } else {
        std::size_t digits = 0;
        while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
        const std::string_view tail = rest.substr(digits);
        if (digits == 0 || digits > 4 || !(tail.empty() || tail == "*")) continue;  // junk name
        index = std::stoi(std::string(rest.substr(0, digits)));
        encoded = tail == "*";
      }
      if (base.empty()) continue;
    }
    auto [it, inserted] = parts.try_emplace(base);
    if (inserted) order.push_back(base);
    ParamParts& p = it->second;
    if (extended) {
      if (!p.has_extended) p.extended = std::move(value), p.has_extended = true;
    } else if (index >= 0) {
      p.segments.try_emplace(index, Segment{encoded, std::move(value)});
    } else if (!p.has_plain) {
      p.plain = std::move(value);
      p.has_plain = true;
    }
  }

  // RFC 2231 forms are more precise than a plain (often RFC 2047) value
  // sent alongside them, so they win.
  for (const std::string& name : order) {
    const ParamParts& p = parts[name];
    std::string v;
    if (p.has_extended) {
      std::string label;
      const std::string_view rest = split_charset(p.extended, label);
      v = charset_to_utf8(percent_decode(rest), label, fallback_charset);
    } else if (!p.segments.empty()) {
      v = join_segments(p.segments, fallback_charset);
    } else {
      v = decode_header_text(p.plain, fallback_charset);
    }
    neutralise_controls(v);
    result.params.emplace(name, std::move(v));
  }
  return result;
}

}  // namespace mukaika::mime
