#include "text_normalize/text_normalize.h"

#include <array>
#include <string>
#include <utility>

#include "ascii.h"
#include "mime/charset.h"
#include "registry.h"

namespace mukaika {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Extensions that already open as plain text; anything else gets ".txt" so
// that a text file named ".js" or ".html" cannot run or render as one.
constexpr std::array<std::string_view, 6> kTextExtensions{"txt", "text", "csv", "tsv", "log", "md"};

std::string lower_extension(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return {};
  return ascii_lower(name.substr(dot + 1));
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

struct TextStats {
  std::size_t code_points = 0;
  std::size_t nul = 0;
  std::size_t controls = 0;  // C0 other than TAB, LF, FF, CR, ESC
};

TextStats measure(std::string_view utf8) {
  TextStats st;
  for (char ch : utf8) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c & 0xC0) != 0x80) ++st.code_points;  // count lead bytes only
    if (c == 0) {
      ++st.nul;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r' && c != 0x1B) {
      ++st.controls;
    }
  }
  return st;
}

bool is_formula_start(char c) { return c == '=' || c == '+' || c == '-' || c == '@'; }

// "-5", "+3.25", "-1,000", "-12%" are numbers Excel reads as numbers, not formulas.
bool looks_numeric(std::string_view cell) {
  if (cell.size() < 2) return false;
  bool digit = false;
  for (std::size_t i = 1; i < cell.size(); ++i) {
    char c = cell[i];
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != ',' && !(c == '%' && i + 1 == cell.size())) {
      return false;
    }
  }
  return digit && (cell[0] == '-' || cell[0] == '+');
}

// Excel runs a CSV cell that starts with = + - @ as a formula, and a formula
// can be DDE (=cmd|'/c calc'!A0). Such cells get a leading apostrophe, which
// makes Excel show them as text. Returns how many cells were defused.
std::size_t defuse_csv_formulas(std::string& text, char delimiter) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t defused = 0;
  bool cell_start = true;
  bool in_quotes = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (cell_start) {
      cell_start = false;
      bool quoted = c == '"';
      std::size_t first = quoted ? i + 1 : i;
      if (first < text.size() && is_formula_start(text[first])) {
        std::size_t end = first;
        while (end < text.size() && text[end] != delimiter && text[end] != '\n' && text[end] != '\r' &&
               !(quoted && text[end] == '"'))
          ++end;
        if (!looks_numeric(std::string_view(text).substr(first, end - first))) {
          if (quoted) out += '"';
          out += '\'';
          ++defused;
          if (quoted) {
            in_quotes = true;
            continue;  // the opening quote is already written
          }
        }
      }
    }
    if (c == '"') {
      in_quotes = !in_quotes;  // "" inside quotes toggles twice: still inside
    } else if (!in_quotes && (c == delimiter || c == '\n')) {
      cell_start = true;
    }
    out += c;
  }
  text = std::move(out);
  return defused;
}

class TextNormalize : public Sanitizer {
 public:
  explicit TextNormalize(bool csv_bom) : csv_bom_(csv_bom) {}

  std::string_view name() const override { return "text.normalize"; }
  std::vector<Kind> handles() const override { return {Kind::Text}; }
  Outcome process(const Item& item, Context& ctx) const override;

 private:
  bool csv_bom_;
};

Outcome TextNormalize::process(const Item& item, Context& ctx) const {
  charset::Decoded decoded = charset::to_utf8(item.bytes, item.charset);

  // Is it really text? Small counts are tolerated (a DOS ^Z at the end, one
  // damaged character) so that short files are not judged by one byte.
  const TextStats st = measure(decoded.utf8);
  const bool too_many_invalid = decoded.invalid > 2 && decoded.invalid * 200 > item.bytes.size();
  const bool too_many_controls = st.controls > 2 && st.controls * 100 > st.code_points;
  if (st.nul > 0 || too_many_invalid || too_many_controls) {
    return Outcome::remove({"text.not_text", "テキストとして読めない内容のため削除しました",
                            "removed: the content is not readable text"});
  }

  std::string ext = lower_extension(item.name);
  std::string out_name = item.name;
  std::string type = "text/plain";
  bool bom = false;
  if (item.role == Role::File) {
    bool text_ext = false;
    for (auto e : kTextExtensions) text_ext = text_ext || ext == e;
    if (!text_ext && !item.name.empty()) {
      out_name += ".txt";
      ctx.report.note(item.path, "note",
                      {"text.renamed", "ファイル名を「" + item.name + "」から「" + out_name + "」に変更しました",
                       "renamed \"" + item.name + "\" to \"" + out_name + "\""});
      ext = "txt";
    }
    if (ext == "csv") type = "text/csv";
    if (ext == "tsv") type = "text/tab-separated-values";
    bom = csv_bom_ && (ext == "csv" || ext == "tsv");  // so that Japanese Excel reads UTF-8
  }

  bool defused = false;
  if (item.role == Role::File && (ext == "csv" || ext == "tsv")) {
    std::size_t n = defuse_csv_formulas(decoded.utf8, ext == "csv" ? ',' : '\t');
    if (n > 0) {
      defused = true;
      ctx.report.note(item.path, "note",
                      {"text.csv_formula", "CSV の数式 " + std::to_string(n) + " 個を文字列にしました (DDE 対策)",
                       "turned " + std::to_string(n) + " CSV formula cells into text (DDE defence)"});
    }
  }

  std::string bytes;
  if (bom) {
    bytes.reserve(kUtf8Bom.size() + decoded.utf8.size());
    bytes += kUtf8Bom;
    bytes += decoded.utf8;
  } else {
    bytes = std::move(decoded.utf8);
  }

  if (bytes.size() > ctx.limits.max_text_bytes) {
    const std::string size = std::to_string(bytes.size());
    const std::string limit = std::to_string(ctx.limits.max_text_bytes);
    return Outcome::block({"limits.text_size",
                           "変換後のテキストが大きすぎるため（" + size + " バイト、上限 " + limit +
                               " バイト）通しませんでした",
                           "blocked: the converted text is too large (" + size + " bytes, limit " + limit + " bytes)"});
  }

  Reason reason;
  if (defused) {
    Outcome o = Outcome::replace(std::move(bytes), std::move(type), std::move(out_name),
                                 {"text.csv_formula", "CSV の数式を文字列にしました (Excel で実行されないよう無効化)",
                                  "CSV formulas turned into text so that Excel does not run them"});
    o.charset = "utf-8";
    return o;
  }
  if (decoded.charset == "utf-8" || decoded.charset == "us-ascii") {
    reason = {"text.kept", "テキストのまま残しました", "kept as text"};
  } else {
    reason = {"text.utf8", "文字コードを " + upper(decoded.charset) + " から UTF-8 に変換しました",
              "converted from " + decoded.charset + " to UTF-8"};
  }
  Outcome o = Outcome::replace(std::move(bytes), std::move(type), std::move(out_name), std::move(reason), true);
  o.charset = "utf-8";
  return o;
}

}  // namespace

std::unique_ptr<Sanitizer> make_text_normalize(const toml::table& options) {
  bool csv_bom = true;
  for (const auto& [key, node] : options) {
    if (key.str() != "csv_bom")
      throw ConfigError("text.normalize: unknown option \"" + std::string(key.str()) + "\" (known: csv_bom)");
    if (!node.is_boolean()) throw ConfigError("text.normalize: option \"csv_bom\" must be true or false");
    csv_bom = node.as_boolean()->get();
  }
  return std::make_unique<TextNormalize>(csv_bom);
}

}  // namespace mukaika
