#include "http/multipart.h"

#include "file_name.h"
#include "text/utf8.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "ascii.h"

namespace mukaika::http {

namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 7230 tchar, the characters of a token.
bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

struct Param {
  std::string name;  // lower case
  std::string value;
};

// "; a=b; c="d\"e"" after the media or disposition type. Quoted values lose
// their quotes and backslashes; nothing else is decoded.
std::optional<std::vector<Param>> parse_params(std::string_view s) {
  std::vector<Param> params;
  std::size_t i = 0;
  auto skip_ows = [&] {
    while (i < s.size() && is_ows(s[i])) ++i;
  };
  for (;;) {
    skip_ows();
    if (i == s.size()) return params;
    if (s[i] != ';') return std::nullopt;
    ++i;
    skip_ows();
    if (i == s.size()) return params;  // a trailing ';' is harmless
    Param p;
    while (i < s.size() && is_tchar(s[i])) p.name += ascii_lower(s[i++]);
    if (p.name.empty()) return std::nullopt;
    skip_ows();
    if (i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    skip_ows();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size()) c = s[i++];
        p.value += c;
      }
      if (!closed) return std::nullopt;
    } else {
      while (i < s.size() && s[i] != ';' && !is_ows(s[i])) p.value += s[i++];
    }
    params.push_back(std::move(p));
  }
}

// The type before the parameters ("form-data", "multipart/form-data").
std::pair<std::string_view, std::string_view> split_type(std::string_view value) {
  value = trim(value);
  std::size_t semi = value.find(';');
  if (semi == std::string_view::npos) return {value, {}};
  return {trim(value.substr(0, semi)), value.substr(semi)};
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = ascii_lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 5987 ext-value: charset'language'percent-encoded. UTF-8 bytes are kept;
// ISO-8859-1 is converted to UTF-8; other charsets are refused.
std::optional<std::string> decode_ext_value(std::string_view v) {
  std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  std::string_view charset = v.substr(0, q1);
  bool latin1 = ascii_iequals(charset, "iso-8859-1");
  if (!latin1 && !ascii_iequals(charset, "utf-8")) return std::nullopt;
  std::string out;
  for (std::size_t i = q2 + 1; i < v.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(v[i]);
    if (v[i] == '%') {
      if (i + 2 >= v.size()) return std::nullopt;
      int hi = hex_value(v[i + 1]), lo = hex_value(v[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      b = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (latin1)
      utf8::append(out, b);
    else
      out += static_cast<char>(b);
  }
  return out;
}

// RFC 2046 bchars, and no space at the end.
bool valid_boundary(std::string_view b) {
  if (b.empty() || b.size() > 70 || b.back() == ' ') return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
  });
}

}  // namespace

std::optional<std::string> boundary_from_content_type(std::string_view content_type) {
  auto [type, rest] = split_type(content_type);
  if (!ascii_iequals(type, "multipart/form-data")) return std::nullopt;
  auto params = parse_params(rest);
  if (!params) return std::nullopt;
  std::optional<std::string> boundary;
  for (auto& p : *params) {
    if (p.name != "boundary") continue;
    if (boundary) return std::nullopt;  // two boundaries: which one would the sender use?
    boundary = std::move(p.value);
  }
  if (!boundary || !valid_boundary(*boundary)) return std::nullopt;
  return boundary;
}

ErrorText error_text(MultipartError error) {
  switch (error) {
    case MultipartError::None:
      return {"no error", "エラーはありません"};
    case MultipartError::BadBoundary:
      return {"invalid multipart boundary", "multipart の境界文字列が不正です"};
    case MultipartError::MalformedBoundaryLine:
      return {"malformed multipart boundary line", "multipart の境界行が不正です"};
    case MultipartError::HeaderTooLarge:
      return {"part headers too large", "パートのヘッダーが大きすぎます"};
    case MultipartError::TooManyHeaderLines:
      return {"too many part header lines", "パートのヘッダー行が多すぎます"};
    case MultipartError::MalformedHeader:
      return {"malformed part header", "パートのヘッダーが不正です"};
    case MultipartError::MissingContentDisposition:
      return {"part without Content-Disposition", "パートに Content-Disposition がありません"};
    case MultipartError::NotFormData:
      return {"Content-Disposition is not form-data", "Content-Disposition が form-data ではありません"};
    case MultipartError::MissingName:
      return {"form field without a name", "フォーム項目に name がありません"};
    case MultipartError::DuplicateHeader:
      return {"repeated part header or parameter", "パートのヘッダーまたはパラメーターが重複しています"};
    case MultipartError::TooManyParts:
      return {"too many parts", "パートが多すぎます"};
    case MultipartError::FieldsTooLarge:
      return {"form fields too large", "フォーム項目の合計サイズが大きすぎます"};
    case MultipartError::Truncated:
      return {"upload ended before the closing boundary", "アップロードが途中で終わりました（終端の境界がありません）"};
    case MultipartError::HandlerFailed:
      return {"upload could not be stored", "アップロードを保存できませんでした"};
  }
  return {"unknown error", "不明なエラー"};
}

MultipartParser::MultipartParser(std::string_view boundary, MultipartHandler& handler)
    : MultipartParser(boundary, handler, Limits{}) {}

MultipartParser::MultipartParser(std::string_view boundary, MultipartHandler& handler, Limits limits)
    : handler_(handler), limits_(limits) {
  if (!valid_boundary(boundary)) {
    fail(MultipartError::BadBoundary);
    return;
  }
  delimiter_ = "\r\n--";
  delimiter_ += boundary;
  // The first boundary may open the body without a CRLF before it: behave as
  // if there were one, so one search finds every delimiter.
  buffer_ = "\r\n";
}

void MultipartParser::fail(MultipartError error) {
  state_ = State::Failed;
  error_ = error;
  std::string().swap(buffer_);
}

void MultipartParser::feed(std::string_view chunk) {
  if (state_ == State::Done || state_ == State::Failed || finished_ || chunk.empty()) return;
  buffer_.append(chunk);
  try {
    run();
  } catch (...) {
    fail(MultipartError::HandlerFailed);
    throw;
  }
}

bool MultipartParser::finish() {
  if (!finished_) {
    finished_ = true;
    if (state_ != State::Done && state_ != State::Failed) fail(MultipartError::Truncated);
    std::string().swap(buffer_);
  }
  return complete();
}

// Each step returns true when it made progress and the next state should run.
void MultipartParser::run() {
  for (bool progress = true; progress;) {
    switch (state_) {
      case State::Preamble: {
        std::size_t at = buffer_.find(delimiter_);
        if (at == std::string::npos) {
          // Keep only what could still be the start of the delimiter.
          std::size_t keep = std::min(buffer_.size(), delimiter_.size() - 1);
          buffer_.erase(0, buffer_.size() - keep);
          progress = false;
        } else {
          buffer_.erase(0, at + delimiter_.size());
          state_ = State::AfterDelimiter;
        }
        break;
      }
      case State::AfterDelimiter:
        progress = after_delimiter();
        break;
      case State::Headers:
        progress = headers();
        break;
      case State::Body:
        progress = body();
        break;
      case State::Done:
        buffer_.clear();  // the epilogue
        progress = false;
        break;
      case State::Failed:
        progress = false;
        break;
    }
  }
}

// After "\r\n--boundary": "--" closes the body; otherwise optional spaces
// (transport padding) and a line end open the next part.
bool MultipartParser::after_delimiter() {
  if (buffer_.empty()) return false;
  if (buffer_[0] == '-') {
    if (buffer_.size() < 2) return false;
    if (buffer_[1] != '-') {
      fail(MultipartError::MalformedBoundaryLine);
      return false;
    }
    if (in_part_) {
      in_part_ = false;
      handler_.on_part_end();
    }
    state_ = State::Done;
    buffer_.clear();
    return false;
  }
  std::size_t i = 0;
  while (i < buffer_.size() && is_ows(buffer_[i])) ++i;
  if (i > limits_.max_header_bytes) {
    fail(MultipartError::HeaderTooLarge);
    return false;
  }
  if (i == buffer_.size()) return false;
  std::size_t line_end = 0;
  if (buffer_[i] == '\n') {
    line_end = i + 1;
  } else if (buffer_[i] == '\r') {
    if (i + 1 == buffer_.size()) return false;
    if (buffer_[i + 1] != '\n') {
      fail(MultipartError::MalformedBoundaryLine);
      return false;
    }
    line_end = i + 2;
  } else {
    fail(MultipartError::MalformedBoundaryLine);
    return false;
  }
  buffer_.erase(0, line_end);
  if (in_part_) {
    in_part_ = false;
    handler_.on_part_end();
  }
  if (parts_ >= limits_.max_parts) {
    fail(MultipartError::TooManyParts);
    return false;
  }
  header_bytes_ = 0;
  header_lines_ = 0;
  disposition_.reset();
  content_type_.reset();
  last_header_.clear();
  state_ = State::Headers;
  return true;
}

bool MultipartParser::headers() {
  std::size_t nl = buffer_.find('\n');
  if (nl == std::string::npos) {
    if (header_bytes_ + buffer_.size() > limits_.max_header_bytes) fail(MultipartError::HeaderTooLarge);
    return false;
  }
  header_bytes_ += nl + 1;
  if (header_bytes_ > limits_.max_header_bytes) {
    fail(MultipartError::HeaderTooLarge);
    return false;
  }
  std::string line = buffer_.substr(0, nl);
  buffer_.erase(0, nl + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return begin_part();
  if (++header_lines_ > limits_.max_header_lines) {
    fail(MultipartError::TooManyHeaderLines);
    return false;
  }
  return header_line(line);
}

bool MultipartParser::header_line(std::string_view line) {
  if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
    fail(MultipartError::MalformedHeader);
    return false;
  }
  if (is_ows(line.front())) {
    // An obsolete folded line continues the header before it.
    std::optional<std::string>* target = last_header_ == "content-disposition" ? &disposition_
                                         : last_header_ == "content-type"      ? &content_type_
                                                                               : nullptr;
    if (last_header_.empty()) {
      fail(MultipartError::MalformedHeader);
      return false;
    }
    if (target) **target += " " + std::string(trim(line));
    return true;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    fail(MultipartError::MalformedHeader);
    return false;
  }
  std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), is_tchar)) {
    fail(MultipartError::MalformedHeader);
    return false;
  }
  std::string value(trim(line.substr(colon + 1)));
  std::optional<std::string>* target = nullptr;
  if (ascii_iequals(name, "content-disposition")) {
    target = &disposition_;
    last_header_ = "content-disposition";
  } else if (ascii_iequals(name, "content-type")) {
    target = &content_type_;
    last_header_ = "content-type";
  } else {
    last_header_ = "other";  // Content-Transfer-Encoding and the like: RFC 7578 says to ignore them
  }
  if (target) {
    if (target->has_value()) {
      fail(MultipartError::DuplicateHeader);
      return false;
    }
    *target = std::move(value);
  }
  return true;
}

bool MultipartParser::begin_part() {
  if (!disposition_) {
    fail(MultipartError::MissingContentDisposition);
    return false;
  }
  auto [type, rest] = split_type(*disposition_);
  if (!ascii_iequals(type, "form-data")) {
    fail(MultipartError::NotFormData);
    return false;
  }
  auto params = parse_params(rest);
  if (!params) {
    fail(MultipartError::MalformedHeader);
    return false;
  }
  std::optional<std::string> name, filename, filename_ext;
  for (auto& p : *params) {
    std::optional<std::string>* target = p.name == "name"        ? &name
                                         : p.name == "filename"  ? &filename
                                         : p.name == "filename*" ? &filename_ext
                                                                 : nullptr;
    if (!target) continue;
    if (target->has_value()) {
      // Two names: a proxy and the gateway could each believe a different one.
      fail(MultipartError::DuplicateHeader);
      return false;
    }
    *target = std::move(p.value);
  }
  if (!name) {
    fail(MultipartError::MissingName);
    return false;
  }
  if (filename_ext) {
    auto decoded = decode_ext_value(*filename_ext);
    if (!decoded) {
      fail(MultipartError::MalformedHeader);
      return false;
    }
    filename = std::move(decoded);
  }
  part_.name = std::move(*name);
  part_.filename = std::move(filename);
  part_.content_type = content_type_.value_or(std::string());
  ++parts_;
  in_part_ = true;
  state_ = State::Body;
  handler_.on_part_begin(part_);
  return true;
}

bool MultipartParser::emit(std::string_view bytes) {
  if (bytes.empty()) return true;
  if (!part_.is_file()) {
    field_bytes_ += bytes.size();
    if (field_bytes_ > limits_.max_field_bytes) {
      fail(MultipartError::FieldsTooLarge);
      return false;
    }
  }
  handler_.on_part_data(bytes);
  return true;
}

bool MultipartParser::body() {
  std::size_t at = buffer_.find(delimiter_);
  if (at != std::string::npos) {
    if (!emit(std::string_view(buffer_).substr(0, at))) return false;
    buffer_.erase(0, at + delimiter_.size());
    state_ = State::AfterDelimiter;
    return true;
  }
  // Hold back only a tail that could be the start of the delimiter, so data
  // flows on at once unless a CR might begin "\r\n--boundary".
  std::size_t hold = buffer_.size();
  std::size_t from = buffer_.size() > delimiter_.size() ? buffer_.size() - delimiter_.size() + 1 : 0;
  for (std::size_t i = buffer_.find('\r', from); i != std::string::npos; i = buffer_.find('\r', i + 1)) {
    if (std::string_view(delimiter_).starts_with(std::string_view(buffer_).substr(i))) {
      hold = i;
      break;
    }
  }
  if (!emit(std::string_view(buffer_).substr(0, hold))) return false;
  buffer_.erase(0, hold);
  return false;
}

std::string safe_upload_name(std::string_view raw) {
  constexpr std::size_t kMaxBytes = 255;
  // 255 characters first; then bytes, as file systems count them.
  std::string name = safe_file_name(raw, kMaxBytes, "file");
  if (name.size() <= kMaxBytes) return name;
  std::string ext;
  std::size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0 && name.size() - dot <= 16) ext = name.substr(dot);
  std::string_view stem = std::string_view(name).substr(0, name.size() - ext.size());
  std::size_t cut = kMaxBytes - ext.size();
  // Back up to the first byte of a UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(stem[cut]) & 0xC0) == 0x80) --cut;
  std::string out(stem.substr(0, cut));
  while (!out.empty() && (out.back() == '.' || out.back() == ' ')) out.pop_back();
  if (out.empty()) out = "file";  // only reachable with a stem of dots and spaces
  return out + ext;
}

std::string content_disposition_attachment(std::string_view utf8_name) {
  if (utf8_name.empty()) utf8_name = "file";
  std::string fallback;
  std::string encoded;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < utf8_name.size();) {
    std::size_t start = i;
    char32_t cp = utf8::next(utf8_name, i);
    bool plain = cp >= 0x20 && cp < 0x7F && cp != '"' && cp != '\\' && cp != '%';
    fallback += plain ? static_cast<char>(cp) : '_';  // one '_' per character, not per byte
    for (std::size_t k = start; k < i; ++k) {
      auto b = static_cast<unsigned char>(utf8_name[k]);
      // RFC 5987 attr-char: ALPHA DIGIT !#$&+-.^_`|~ ; everything else encoded.
      bool attr = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                  std::string_view("!#$&+-.^_`|~").find(static_cast<char>(b)) != std::string_view::npos;
      if (attr) {
        encoded += static_cast<char>(b);
      } else {
        encoded += '%';
        encoded += kHex[b >> 4];
        encoded += kHex[b & 0xF];
      }
    }
  }
  return "attachment; filename=\"" + fallback + "\"; filename*=UTF-8''" + encoded;
}

}  // namespace mukaika::http
