// html.to_text: see html_to_text.h for what it promises.
//
// Decisions a reviewer should know about:
// - <noscript> content is kept: mail clients run no scripts, so it is what
//   the reader would have seen.
// - <head> itself is walked, but its metadata (title, script, style, meta,
//   link, base) is dropped. libxml2 puts stray body content into <head> when
//   it follows a <script> or <style>; a browser would show that content.
// - Elements hidden by the `hidden` attribute or an inline display:none are
//   dropped: a browser would not show them either.
// - Table cells: " | " between the non-empty cells of a row (a tab is
//   invisible and every mail client renders it differently); empty cells and
//   empty rows are skipped.
// - mailto: links show the bare address: "山田 (yamada@example.jp)".
// - Whitespace that came from a line break in the source is removed between
//   two East Asian wide characters (the CSS Text 3 segment-break rule), so a
//   Japanese sentence wrapped in the HTML source gets no stray spaces.
// - libxml2's nesting limit (256) is kept. XML_PARSE_HUGE would lift it, but
//   then every unmatched end tag costs O(depth) and hostile input takes
//   quadratic time. When the parser stops early (depth, or a text node over
//   libxml2's 10 MB limit) the text ends with a marker saying so.
#include "html_to_text/html_to_text.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

#include "ascii.h"
#include "html_to_text/html_to_text_internal.h"
#include "mime/charset.h"
#include "text/utf8.h"
#include "registry.h"

namespace mukaika {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kTruncatedLine = "[…以下省略 / truncated]";
constexpr std::string_view kStoppedLine =
    "[…HTMLの解析を途中で打ち切ったため以下省略 / HTML parsing stopped early, rest omitted]";
constexpr std::string_view kRule = "----------------------------------------";
constexpr int kMaxBlankLines = 2;
// Beyond this much indentation, deeper lists and quotes stop indenting, so
// hostile nesting cannot make every line huge.
constexpr std::size_t kMaxIndentBytes = 40;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// No network, no error output; IGNORE_ENC because the input is already UTF-8
// and a <meta charset> inside it must not make libxml2 decode it again.
constexpr int kParseOptions = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                              HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC;

// ---- RAII for libxml2 handles ----

struct DocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocDeleter>;

struct ParserCtxtDeleter {
  void operator()(htmlParserCtxt* ctxt) const { htmlFreeParserCtxt(ctxt); }
};
using ParserCtxtPtr = std::unique_ptr<htmlParserCtxt, ParserCtxtDeleter>;

struct XmlCharDeleter {
  void operator()(xmlChar* s) const { xmlFree(s); }
};
using XmlCharPtr = std::unique_ptr<xmlChar, XmlCharDeleter>;

const xmlChar* xml(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

std::optional<std::string> attribute(const xmlNode& node, const char* name) {
  XmlCharPtr value(xmlGetProp(&node, xml(name)));
  if (!value) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(value.get()));
}

bool has_attribute(const xmlNode& node, const char* name) { return xmlHasProp(&node, xml(name)) != nullptr; }

// ---- ASCII and UTF-8 helpers ----



bool is_html_space(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_html_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && is_html_space(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Characters never written: controls (tab and line breaks are handled by the
// caller) and invisible format characters that hide text or reorder it for
// display (U+202E makes "gpj.exe" look like "exe.jpg"): zero-width and bidi
// controls, soft hyphen, word joiners, BOM, interlinear annotation marks,
// and Unicode tag characters (invisible ASCII look-alikes).
bool is_dropped(char32_t cp) {
  if (cp < 0x20) return cp != '\t' && cp != '\n' && cp != '\r';
  return utf8::is_control(cp) || utf8::is_invisible(cp);
}

// East Asian Wide/Fullwidth/Halfwidth, Hangul excluded (Korean uses spaces).
bool is_wide(char32_t cp) {
  if (cp >= 0x3130 && cp <= 0x318F) return false;
  return (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
         (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
         (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFF61 && cp <= 0xFF9F) ||
         (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

// Visible characters of s with whitespace runs collapsed to one space and
// trimmed: for comparing a link's text with its URL and for alt text.
std::string clean_inline(std::string_view s) {
  std::string out;
  bool space = false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = utf8::next(s, i);
    if (is_html_space(cp) || cp == 0xA0) {
      space = true;
      continue;
    }
    if (is_dropped(cp)) continue;
    if (space && !out.empty()) out += ' ';
    space = false;
    utf8::append(out, cp);
  }
  return out;
}

// Word's "downlevel-revealed" conditionals (<![if !supportLists]> ...
// <![endif]>) are bogus comments to a browser; libxml2 leaves them as text.
std::string strip_bogus_comments(std::string_view s) {
  std::string out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t open = s.find("<![", pos);
    if (open == std::string_view::npos) break;
    out.append(s, pos, open - pos);
    std::size_t close = s.find('>', open);
    pos = close == std::string_view::npos ? s.size() : close + 1;
  }
  if (pos < s.size()) out.append(s, pos, std::string_view::npos);
  return out;
}

// HTML's "rules for parsing integers" (start=, value=), clamped so that
// counting on from them cannot overflow.
std::optional<long long> parse_html_integer(std::string_view s) {
  s = trim(s);
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  constexpr long long kLimit = 1'000'000'000;
  long long value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    value = std::min(kLimit, value * 10 + (c - '0'));
  }
  return negative ? -value : value;
}

// ---- link targets ----

struct LinkTarget {
  std::string url;      // as it will be compared with the link text
  std::string display;  // what is written; empty: no usable target
};

// Only http, https and mailto are shown; javascript:, data:, vbscript:,
// file:, relative URLs and everything else are dropped (the text stays).
LinkTarget link_target(std::string_view href) {
  // As a browser does: tabs and line breaks anywhere are ignored, so
  // "java\nscript:" is javascript:; leading/trailing controls and spaces too.
  std::string url;
  for (char c : href)
    if (c != '\t' && c != '\n' && c != '\r') url += c;
  std::size_t begin = 0, end = url.size();
  while (begin < end && static_cast<unsigned char>(url[begin]) <= 0x20) ++begin;
  while (end > begin && static_cast<unsigned char>(url[end - 1]) <= 0x20) --end;
  url = url.substr(begin, end - begin);

  std::size_t colon = url.find(':');
  if (colon == std::string::npos) return {};
  std::string scheme = ascii_lower(std::string_view(url).substr(0, colon));
  if (scheme != "http" && scheme != "https" && scheme != "mailto") return {};

  // One token in the text: spaces encoded, controls gone.
  LinkTarget target;
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ')
      target.url += "%20";
    else if (u >= 0x20 && u != 0x7F)
      target.url += c;
  }
  std::string rest = target.url.substr(colon + 1);
  if (scheme == "mailto") {
    target.display = rest.substr(0, rest.find('?'));
  } else if (!rest.empty()) {
    target.display = target.url;
  }
  return target;
}

// ---- the text writer ----

// Builds the output line by line. Block elements ask for line breaks
// (pending until the next visible character, so empty blocks cost nothing),
// whitespace is collapsed, each line starts with the current prefix (list
// indentation, "> " for quotes). Clean by construction: no trailing spaces,
// no leading blank lines, at most kMaxBlankLines blank lines in a row.
class TextWriter {
 public:
  explicit TextWriter(std::size_t limit) : limit_(limit) {}

  // More than `limit` bytes written: the caller stops and the text is cut.
  bool full() const { return out_.size() > limit_; }
  std::size_t visible_count() const { return visible_count_; }

  // 1: what follows starts a new line; 2: after a blank line.
  void block(int newlines) {
    drop_pending_space();
    if (!started()) return;
    // Blank lines between blocks carry only the prefix the blocks share:
    // ">" between two quoted paragraphs, nothing after the quote ends.
    break_indent_ = pending_breaks_ == 0 ? indent_.size() : std::min(break_indent_, indent_.size());
    pending_breaks_ = std::max(pending_breaks_, newlines);
  }

  // <br>, or a line break inside <pre>.
  void line_break() {
    drop_pending_space();
    if (!started()) return;
    flush_breaks();
    if (at_line_start_)
      blank_line();
    else
      end_line();
  }

  void soft_space() { pending_space_ = true; }
  void cell_separator() { pending_separator_ = true; }

  void text(std::string_view utf8, bool preformatted) {
    for (std::size_t i = 0; i < utf8.size();) {
      char32_t cp = utf8::next(utf8, i);
      if (!preformatted && is_html_space(cp)) {
        pending_space_ = true;
        if (cp == '\n' || cp == '\r') pending_segment_break_ = true;
        continue;
      }
      if (preformatted && (cp == '\n' || cp == '\r')) {
        if (cp == '\r' && i < utf8.size() && utf8[i] == '\n') ++i;  // CRLF is one break
        line_break();
        continue;
      }
      if (is_dropped(cp)) continue;
      if (cp == 0xA0 || cp == 0x2028 || cp == 0x2029) cp = ' ';  // not collapsed, as in a browser
      put(cp);
    }
  }

  std::size_t push_indent(std::string_view segment) {
    std::size_t mark = indent_.size();
    if (indent_.size() + segment.size() <= kMaxIndentBytes) indent_ += segment;
    return mark;
  }

  void pop_indent(std::size_t mark) {
    if (mark < indent_.size()) indent_.resize(mark);
    break_indent_ = std::min(break_indent_, indent_.size());
  }

  // A list marker, written in place of the innermost indentation on the next
  // line that has content. Returns a mark for drop_markers().
  std::size_t add_marker(std::string_view marker) {
    std::size_t mark = markers_.size();
    if (markers_.empty()) marker_pos_ = indent_.size();
    // Items nested in items before any text put their markers on one line;
    // hostile nesting must not make that line huge.
    if (markers_.size() + marker.size() <= kMaxIndentBytes) markers_ += marker;
    return mark;
  }

  // At the end of an item: a marker still pending belongs to an empty item.
  void drop_markers(std::size_t mark) {
    if (mark < markers_.size()) markers_.resize(mark);
  }

  void begin_capture() { captures_.emplace_back(); }
  std::string end_capture() {
    std::string captured = std::move(captures_.back());
    captures_.pop_back();
    if (!captures_.empty()) captures_.back() += captured;
    return clean_inline(captured);
  }

  std::string finish() && {
    out_.resize(last_visible_end_);
    if (!out_.empty()) out_ += '\n';
    return std::move(out_);
  }

 private:
  bool started() const { return visible_count_ > 0; }

  void drop_pending_space() {
    pending_space_ = false;
    pending_segment_break_ = false;
    pending_separator_ = false;
  }

  void put(char32_t cp) {
    const bool visible = cp != ' ' && cp != '\t';
    if (!visible && !started()) return;  // the output starts with its first visible character
    begin_content(cp);
    std::size_t before = out_.size();
    utf8::append(out_, cp);
    if (!captures_.empty()) captures_.back().append(out_, before, std::string::npos);
    last_cp_ = cp;
    if (visible) {
      line_visible_ = true;
      ++visible_count_;
      last_visible_end_ = out_.size();
    }
  }

  void begin_content(char32_t next) {
    if (pending_breaks_ > 0) {
      flush_breaks();
      drop_pending_space();
    }
    if (at_line_start_) {
      start_line();
      drop_pending_space();
      return;
    }
    if (pending_separator_)
      write_inline(" | ");
    else if (pending_space_ && !(pending_segment_break_ && is_wide(last_cp_) && is_wide(next)))
      write_inline(" ");
    drop_pending_space();
  }

  void write_inline(std::string_view s) {
    out_ += s;
    if (!captures_.empty()) captures_.back() += s;
  }

  void start_line() {
    line_start_ = out_.size();
    if (!markers_.empty()) {
      out_.append(indent_, 0, marker_pos_);
      out_ += markers_;
      markers_.clear();
    } else {
      out_ += indent_;
    }
    at_line_start_ = false;
    line_visible_ = false;
  }

  void end_line() {
    while (out_.size() > line_start_ && (out_.back() == ' ' || out_.back() == '\t')) out_.pop_back();
    if (!captures_.empty()) captures_.back() += ' ';
    at_line_start_ = true;
    if (!line_visible_) {
      // Only prefix or spaces: a blank line, and counted as one.
      if (blank_run_ >= kMaxBlankLines) {
        out_.resize(line_start_);
        return;
      }
      ++blank_run_;
    } else {
      blank_run_ = 0;
    }
    out_ += '\n';
  }

  void blank_line(std::size_t prefix_bytes = kNone) {
    if (!started() || blank_run_ >= kMaxBlankLines) return;
    std::string_view prefix = std::string_view(indent_).substr(0, prefix_bytes);
    while (!prefix.empty() && prefix.back() == ' ') prefix.remove_suffix(1);
    out_ += prefix;
    out_ += '\n';
    ++blank_run_;
  }

  // Materialises the pending breaks; a line already ended by <br> counts.
  void flush_breaks() {
    int wanted = pending_breaks_;
    pending_breaks_ = 0;
    if (wanted == 0) return;
    if (!at_line_start_) end_line();
    for (int blanks = blank_run_; blanks < wanted - 1; ++blanks) blank_line(break_indent_);
  }

  std::size_t limit_;
  std::string out_;
  std::size_t last_visible_end_ = 0;
  std::size_t visible_count_ = 0;
  std::size_t line_start_ = 0;
  bool at_line_start_ = true;
  bool line_visible_ = false;
  int blank_run_ = 0;
  int pending_breaks_ = 0;
  std::size_t break_indent_ = 0;
  bool pending_space_ = false;
  bool pending_segment_break_ = false;
  bool pending_separator_ = false;
  char32_t last_cp_ = 0;
  std::string indent_;
  std::string markers_;
  std::size_t marker_pos_ = 0;
  std::vector<std::string> captures_;
};

// ---- elements ----

enum class Tag : std::uint8_t {
  Inline,     // span, b, font, unknown elements...
  Drop,       // the element and everything in it is skipped
  Block,      // starts and ends a line
  Paragraph,  // blank line before and after
  Pre,        // whitespace kept
  Break,
  Image,
  Rule,
  List,
  Item,
  Definition,
  Quote,
  Row,
  Cell,
  Link,
  RubyText,
};

Tag classify(const xmlChar* raw_name) {
  static const std::unordered_map<std::string_view, Tag> kTags = {
      // Active or invisible content; title is dropped because a mail body's
      // <title> is usually an editor's leftover, not something shown.
      {"script", Tag::Drop}, {"style", Tag::Drop}, {"template", Tag::Drop}, {"title", Tag::Drop},
      {"meta", Tag::Drop}, {"link", Tag::Drop}, {"base", Tag::Drop}, {"object", Tag::Drop},
      {"applet", Tag::Drop}, {"iframe", Tag::Drop}, {"frame", Tag::Drop}, {"noembed", Tag::Drop},
      {"param", Tag::Drop}, {"svg", Tag::Drop}, {"math", Tag::Drop}, {"input", Tag::Drop},
      {"select", Tag::Drop}, {"option", Tag::Drop}, {"optgroup", Tag::Drop}, {"datalist", Tag::Drop},
      {"audio", Tag::Drop}, {"video", Tag::Drop}, {"canvas", Tag::Drop}, {"map", Tag::Drop},
      {"area", Tag::Drop}, {"rp", Tag::Drop},
      // Void in HTML5 but unknown as such to libxml2 2.9, which makes what
      // follows their children: walk those children (they are siblings
      // really); the elements themselves have nothing to show. Dropping
      // them would drop the rest of the document.
      {"embed", Tag::Inline}, {"source", Tag::Inline}, {"track", Tag::Inline},
      {"keygen", Tag::Inline}, {"wbr", Tag::Inline},
      // Outlook's <xml> data islands (document properties, not text).
      {"xml", Tag::Drop},

      {"html", Tag::Block}, {"head", Tag::Block}, {"body", Tag::Block}, {"div", Tag::Block},
      {"section", Tag::Block}, {"article", Tag::Block}, {"aside", Tag::Block},
      {"header", Tag::Block}, {"footer", Tag::Block}, {"nav", Tag::Block}, {"main", Tag::Block},
      {"address", Tag::Block}, {"center", Tag::Block}, {"form", Tag::Block},
      {"fieldset", Tag::Block}, {"legend", Tag::Block}, {"figcaption", Tag::Block},
      {"details", Tag::Block}, {"summary", Tag::Block}, {"dt", Tag::Block},
      {"table", Tag::Block}, {"caption", Tag::Block}, {"thead", Tag::Block},
      {"tbody", Tag::Block}, {"tfoot", Tag::Block}, {"noscript", Tag::Block},
      {"noframes", Tag::Block}, {"frameset", Tag::Block}, {"hgroup", Tag::Block},
      {"search", Tag::Block}, {"dialog", Tag::Block}, {"marquee", Tag::Block},

      {"p", Tag::Paragraph}, {"h1", Tag::Paragraph}, {"h2", Tag::Paragraph},
      {"h3", Tag::Paragraph}, {"h4", Tag::Paragraph}, {"h5", Tag::Paragraph},
      {"h6", Tag::Paragraph}, {"figure", Tag::Paragraph}, {"dl", Tag::Paragraph},

      {"pre", Tag::Pre}, {"listing", Tag::Pre}, {"xmp", Tag::Pre}, {"plaintext", Tag::Pre},
      {"textarea", Tag::Pre},

      {"br", Tag::Break}, {"img", Tag::Image}, {"hr", Tag::Rule},
      {"ul", Tag::List}, {"ol", Tag::List}, {"menu", Tag::List}, {"dir", Tag::List},
      {"li", Tag::Item}, {"dd", Tag::Definition}, {"blockquote", Tag::Quote},
      {"tr", Tag::Row}, {"td", Tag::Cell}, {"th", Tag::Cell}, {"a", Tag::Link},
      {"rt", Tag::RubyText},
  };
  if (raw_name == nullptr) return Tag::Inline;
  // libxml2's HTML parser lower-cases element names.
  auto it = kTags.find(reinterpret_cast<const char*>(raw_name));
  return it == kTags.end() ? Tag::Inline : it->second;
}

// What a browser would not show: `hidden`, or an inline display:none.
bool is_hidden(const xmlNode& node) {
  if (has_attribute(node, "hidden")) return true;
  std::optional<std::string> style = attribute(node, "style");
  if (!style) return false;
  std::string css;
  for (char c : *style)
    if (!is_html_space(static_cast<unsigned char>(c))) css += ascii_lower(c);
  for (std::size_t pos = css.find("display:none"); pos != std::string::npos;
       pos = css.find("display:none", pos + 1)) {
    std::size_t after = pos + std::string_view("display:none").size();
    bool starts = pos == 0 || css[pos - 1] == ';' || css[pos - 1] == '{';
    bool ends = after == css.size() || css[after] == ';' || css[after] == '!';
    if (starts && ends) return true;
  }
  return false;
}

struct Frame {
  const xmlNode* node = nullptr;
  Tag tag = Tag::Inline;
  int block_after = 0;
  std::size_t indent_mark = kNone;
  // List
  bool ordered = false;
  long long next_number = 1;
  int step = 1;
  int open_items = 0;
  // Item: index of its list's frame; its marker's mark
  std::size_t list = kNone;
  std::size_t marker_mark = 0;
  // Row: visible characters written before it, to tell whether a cell is
  // the row's first non-empty one
  std::size_t row_start = 0;
  // Link
  std::string href, display;
  bool captured = false;
  // RubyText
  bool parens = false;
};

struct Rendered {
  std::string text;
  bool truncated = false;
};

class Renderer {
 public:
  Renderer(const HtmlToTextOptions& options, std::optional<Clock::time_point> deadline)
      : options_(options), deadline_(deadline), writer_(options.max_bytes) {}

  // Iterative depth-first walk: the only per-level state is frames_ on the
  // heap, so nesting depth cannot exhaust the stack.
  Rendered render(const xmlDoc& doc) && {
    const xmlNode* node = doc.children;
    std::size_t steps = 0;
    while (!writer_.full()) {
      if (node == nullptr) {
        if (frames_.empty()) break;
        const xmlNode* done = frames_.back().node;
        leave();
        node = done->next;
        continue;
      }
      if (deadline_ && (++steps & 0xFFF) == 0 && Clock::now() > *deadline_)
        throw std::runtime_error("html.to_text: time limit exceeded while converting");
      if (node->type == XML_ELEMENT_NODE) {
        if (enter(*node)) {
          if (node->children != nullptr) {
            node = node->children;
            continue;
          }
          leave();
        }
      } else if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
        on_text(*node);
      }
      // Comments, processing instructions, the DTD: nothing to show.
      node = node->next;
    }
    Rendered rendered;
    rendered.truncated = writer_.full();
    rendered.text = std::move(writer_).finish();
    return rendered;
  }

 private:
  bool enter(const xmlNode& node) {
    const Tag tag = classify(node.name);
    if (tag == Tag::Drop || is_hidden(node)) return false;
    switch (tag) {
      case Tag::Break:
        writer_.line_break();
        return false;
      case Tag::Image:
        image(node);
        return false;
      case Tag::Rule:
        writer_.block(1);
        writer_.text(kRule, false);
        writer_.block(1);
        return false;
      default:
        break;
    }

    Frame f;
    f.node = &node;
    f.tag = tag;
    switch (tag) {
      case Tag::Block:
        f.block_after = 1;
        break;
      case Tag::Paragraph:
        f.block_after = 2;
        break;
      case Tag::Pre:
        f.block_after = 2;
        ++pre_depth_;
        break;
      case Tag::List:
        start_list(node, f);
        break;
      case Tag::Item:
        start_item(node, f);
        break;
      case Tag::Definition:
        f.block_after = 1;
        break;
      case Tag::Quote:
        f.block_after = 2;
        break;
      case Tag::Row:
        f.block_after = 1;
        f.row_start = writer_.visible_count();
        break;
      case Tag::Cell:
        if (!rows_.empty() && writer_.visible_count() > frames_[rows_.back()].row_start)
          writer_.cell_separator();
        else
          writer_.soft_space();
        break;
      case Tag::Link:
        start_link(node, f);
        break;
      case Tag::RubyText:
        // Furigana: "漢字（かんじ）", the usual plain-text form.
        f.parens = node.children != nullptr;
        if (f.parens) writer_.text("（", false);
        break;
      default:
        break;
    }
    if (f.block_after > 0 && tag != Tag::List && tag != Tag::Item) writer_.block(f.block_after);
    if (tag == Tag::Definition) f.indent_mark = writer_.push_indent("  ");
    if (tag == Tag::Quote) f.indent_mark = writer_.push_indent("> ");
    if (tag == Tag::Row) rows_.push_back(frames_.size());
    if (tag == Tag::List) lists_.push_back(frames_.size());
    frames_.push_back(std::move(f));
    return true;
  }

  void leave() {
    Frame f = std::move(frames_.back());
    frames_.pop_back();
    switch (f.tag) {
      case Tag::Pre:
        --pre_depth_;
        break;
      case Tag::List:
        lists_.pop_back();
        break;
      case Tag::Item:
        if (f.list != kNone) --frames_[f.list].open_items;
        writer_.drop_markers(f.marker_mark);
        break;
      case Tag::Row:
        rows_.pop_back();
        break;
      case Tag::Cell:
        writer_.soft_space();
        break;
      case Tag::Link:
        finish_link(f);
        break;
      case Tag::RubyText:
        if (f.parens) writer_.text("）", false);
        break;
      default:
        break;
    }
    if (f.block_after > 0) writer_.block(f.block_after);
    if (f.indent_mark != kNone) writer_.pop_indent(f.indent_mark);
  }

  void on_text(const xmlNode& node) {
    if (node.content == nullptr) return;
    std::string_view s(reinterpret_cast<const char*>(node.content));
    const bool pre = pre_depth_ > 0;
    // HTML ignores a line break right after <pre>; libxml2 keeps it.
    if (pre && node.parent != nullptr && node.parent->children == &node &&
        classify(node.parent->name) == Tag::Pre) {
      if (s.starts_with("\r\n"))
        s.remove_prefix(2);
      else if (s.starts_with("\n"))
        s.remove_prefix(1);
    }
    if (s.find("<![") != std::string_view::npos)
      writer_.text(strip_bogus_comments(s), pre);
    else
      writer_.text(s, pre);
  }

  void image(const xmlNode& node) {
    std::optional<std::string> alt = attribute(node, "alt");
    if (!alt) return;
    std::string text = clean_inline(*alt);
    if (text.empty()) return;
    writer_.soft_space();
    writer_.text("[画像: " + text + "]", false);
    writer_.soft_space();
  }

  void start_list(const xmlNode& node, Frame& f) {
    // Top-level lists get a blank line around them, nested ones do not.
    const bool nested = !lists_.empty();
    f.block_after = nested ? 1 : 2;
    writer_.block(f.block_after);
    // A list inside an item is indented by the item; one put straight into
    // another list (common in mail editors) indents itself.
    if (nested && frames_[lists_.back()].open_items == 0) f.indent_mark = writer_.push_indent("  ");
    f.ordered = ascii_iequals(reinterpret_cast<const char*>(node.name), "ol");
    if (!f.ordered) return;
    const bool reversed = has_attribute(node, "reversed");
    f.step = reversed ? -1 : 1;
    std::optional<long long> start;
    if (std::optional<std::string> s = attribute(node, "start")) start = parse_html_integer(*s);
    if (start) {
      f.next_number = *start;
    } else if (reversed) {
      long long items = 0;
      for (const xmlNode* c = node.children; c != nullptr; c = c->next)
        if (c->type == XML_ELEMENT_NODE && classify(c->name) == Tag::Item) ++items;
      f.next_number = items;
    }
  }

  void start_item(const xmlNode& node, Frame& f) {
    f.block_after = 1;
    writer_.block(1);
    std::string marker = "・ ";
    if (!lists_.empty()) {
      f.list = lists_.back();
      Frame& list = frames_[f.list];
      ++list.open_items;
      if (list.ordered) {
        if (std::optional<std::string> v = attribute(node, "value"))
          if (std::optional<long long> n = parse_html_integer(*v)) list.next_number = *n;
        marker = std::to_string(list.next_number) + ". ";
        list.next_number += list.step;
      }
    }
    f.marker_mark = writer_.add_marker(marker);
    f.indent_mark = writer_.push_indent("  ");
  }

  void start_link(const xmlNode& node, Frame& f) {
    if (!options_.links) return;
    std::optional<std::string> href = attribute(node, "href");
    if (!href) return;
    LinkTarget target = link_target(*href);
    if (target.display.empty()) return;
    f.href = std::move(target.url);
    f.display = std::move(target.display);
    f.captured = true;
    writer_.begin_capture();
  }

  void finish_link(const Frame& f) {
    if (!f.captured) return;
    const std::string text = writer_.end_capture();
    if (text == f.display || text == f.href) return;
    writer_.soft_space();
    if (text.empty()) {
      writer_.text(f.display, false);
      writer_.soft_space();
    } else {
      writer_.text("(" + f.display + ")", false);
    }
  }

  const HtmlToTextOptions& options_;
  std::optional<Clock::time_point> deadline_;
  TextWriter writer_;
  std::vector<Frame> frames_;
  std::vector<std::size_t> lists_;  // indexes into frames_
  std::vector<std::size_t> rows_;
  int pre_depth_ = 0;
};

// The cut: at most max_bytes including the marker line (unless max_bytes is
// smaller than the marker itself), on a UTF-8 boundary, marker last.
std::string cut(std::string text, std::size_t max_bytes, bool force) {
  if (!force && text.size() <= max_bytes) return text;
  const std::size_t marker = kTruncatedLine.size() + 1;
  std::size_t keep = max_bytes > marker + 1 ? max_bytes - marker - 1 : 0;
  keep = std::min(keep, text.size());
  while (keep > 0 && keep < text.size() && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) --keep;
  text.resize(keep);
  while (!text.empty() && is_html_space(static_cast<unsigned char>(text.back()))) text.pop_back();
  if (!text.empty()) text += '\n';
  text += kTruncatedLine;
  text += '\n';
  return text;
}

struct Conversion {
  bool parsed = false;  // false: libxml2 built no document
  std::string text;
  bool truncated = false;
  bool stopped = false;  // the parser gave up part way
};

Conversion finish(Rendered rendered, bool stopped, std::size_t max_bytes) {
  Conversion c;
  c.parsed = true;
  c.stopped = stopped;
  c.truncated = rendered.truncated;
  std::string text = std::move(rendered.text);
  if (stopped && !rendered.truncated) {
    text += kStoppedLine;
    text += '\n';
  }
  if (rendered.truncated || text.size() > max_bytes) {
    c.truncated = true;
    text = cut(std::move(text), max_bytes, true);
  }
  c.text = std::move(text);
  return c;
}

Conversion convert(std::string_view html, const HtmlToTextOptions& options,
                   std::optional<Clock::time_point> deadline) {
  // libxml2 returns no document for empty input; that is simply no text.
  if (trim(html).empty()) {
    Conversion empty;
    empty.parsed = true;
    return empty;
  }
  if (html.size() > static_cast<std::size_t>(INT_MAX)) return {};
  ParserCtxtPtr ctxt(htmlNewParserCtxt());
  if (!ctxt) return {};
  DocPtr doc(htmlCtxtReadMemory(ctxt.get(), html.data(), static_cast<int>(html.size()), nullptr, "UTF-8",
                                kParseOptions));
  if (!doc) return {};
  // With RECOVER, disableSAX is only set when the parser halts: nesting
  // beyond 256, a text node beyond 10 MB, or memory exhaustion.
  const bool stopped = ctxt->disableSAX != 0;
  ctxt.reset();
  if (deadline && Clock::now() > *deadline)
    throw std::runtime_error("html.to_text: time limit exceeded while parsing");
  return finish(Renderer(options, deadline).render(*doc), stopped, options.max_bytes);
}

// ---- html_meta_charset helpers ----

// One tag's attributes, parsed as HTML's prescan does; pos is just after the
// tag name and ends after the '>' (or at the end of s).
std::vector<std::pair<std::string, std::string>> scan_attributes(std::string_view s, std::size_t& pos) {
  std::vector<std::pair<std::string, std::string>> attrs;
  auto skip_space = [&] {
    while (pos < s.size() && is_html_space(static_cast<unsigned char>(s[pos]))) ++pos;
  };
  while (true) {
    while (pos < s.size() && (is_html_space(static_cast<unsigned char>(s[pos])) || s[pos] == '/')) ++pos;
    if (pos >= s.size()) return attrs;
    if (s[pos] == '>') {
      ++pos;
      return attrs;
    }
    std::string name;
    while (pos < s.size() && !is_html_space(static_cast<unsigned char>(s[pos])) && s[pos] != '=' &&
           s[pos] != '>' && (s[pos] != '/' || name.empty()))
      name += ascii_lower(s[pos++]);
    skip_space();
    std::string value;
    if (pos < s.size() && s[pos] == '=') {
      ++pos;
      skip_space();
      if (pos < s.size() && (s[pos] == '"' || s[pos] == '\'')) {
        const char quote = s[pos++];
        std::size_t close = s.find(quote, pos);
        if (close == std::string_view::npos) {
          pos = s.size();
          return attrs;  // cut off by the window: not trusted
        }
        value = s.substr(pos, close - pos);
        pos = close + 1;
      } else {
        while (pos < s.size() && !is_html_space(static_cast<unsigned char>(s[pos])) && s[pos] != '>')
          value += s[pos++];
      }
    }
    attrs.emplace_back(std::move(name), std::move(value));
  }
}

// "text/html; charset=Shift_JIS" -> "Shift_JIS".
std::string charset_from_content(std::string_view content) {
  std::string lowered = ascii_lower(content);
  for (std::size_t pos = lowered.find("charset"); pos != std::string::npos;
       pos = lowered.find("charset", pos + 1)) {
    std::size_t i = pos + 7;
    while (i < content.size() && is_html_space(static_cast<unsigned char>(content[i]))) ++i;
    if (i >= content.size() || content[i] != '=') continue;
    ++i;
    while (i < content.size() && is_html_space(static_cast<unsigned char>(content[i]))) ++i;
    if (i >= content.size()) return "";
    if (content[i] == '"' || content[i] == '\'') {
      std::size_t close = content.find(content[i], i + 1);
      if (close == std::string_view::npos) return "";
      return std::string(content.substr(i + 1, close - i - 1));
    }
    std::size_t end = i;
    while (end < content.size() && !is_html_space(static_cast<unsigned char>(content[end])) &&
           content[end] != ';')
      ++end;
    return std::string(content.substr(i, end - i));
  }
  return "";
}

// Lower-cased label, or "" when it does not look like one (a label goes on
// to iconv; keep it to the characters labels are made of).
std::string clean_label(std::string_view label) {
  label = trim(label);
  if (label.empty() || label.size() > 40) return "";
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':' || c == '+';
    if (!ok) return "";
  }
  return ascii_lower(label);
}

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// ---- the sanitizer ----

const Reason& converted_reason() {
  static const Reason reason{"html.to_text", "HTMLをテキストに変換しました（スクリプト・書式・画像は削除）",
                             "converted HTML to plain text (scripts, formatting and images removed)"};
  return reason;
}

// "page.html" -> "page.txt"; "report.php" -> "report.php.txt".
std::string text_file_name(const std::string& name) {
  if (name.empty()) return name;
  static constexpr std::string_view kHtmlExtensions[] = {"html", "htm", "xhtml", "xht", "shtml",
                                                         "mht",  "mhtml", "txt"};
  std::size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) {
    std::string ext = ascii_lower(std::string_view(name).substr(dot + 1));
    for (std::string_view known : kHtmlExtensions)
      if (ext == known) return name.substr(0, dot) + ".txt";
  }
  return name + ".txt";
}

// A byte order mark decides the encoding before any label, as in a browser.
std::string bom_charset(std::string_view bytes) {
  if (bytes.starts_with("\xEF\xBB\xBF")) return "utf-8";
  if (bytes.starts_with("\xFF\xFE")) return "utf-16le";
  if (bytes.starts_with("\xFE\xFF")) return "utf-16be";
  return "";
}

class HtmlToText : public Sanitizer {
 public:
  explicit HtmlToText(HtmlToTextOptions options) : options_(options) {}

  std::string_view name() const override { return "html.to_text"; }
  std::vector<Kind> handles() const override { return {Kind::Html}; }

  Outcome process(const Item& item, Context& ctx) const override {
    std::string label = bom_charset(item.bytes);
    if (label.empty()) label = item.charset;
    if (label.empty()) {
      label = html_meta_charset(item.bytes);
      // A <meta> that could be read as ASCII cannot be UTF-16 (HTML says so).
      if (label.starts_with("utf-16")) label = "utf-8";
    }
    charset::Decoded decoded = charset::to_utf8(item.bytes, label);

    HtmlToTextOptions options = options_;
    options.max_bytes = static_cast<std::size_t>(
        std::min<std::uint64_t>(options.max_bytes, ctx.limits.max_text_bytes));
    Conversion c = convert(decoded.utf8, options, ctx.deadline);
    if (!c.parsed) {
      return Outcome::block({"html.unparseable", "HTMLを解析できなかったため、この部分を遮断しました",
                             "blocked: the HTML could not be parsed"});
    }
    if (c.stopped) {
      ctx.report.note(item.path, "truncated",
                      {"html.parse_stopped",
                       "HTMLの入れ子が深すぎるか大きすぎるため、途中から後ろのテキストを省略しました",
                       "the HTML is nested too deeply or too large; the text after that point was omitted"});
    }
    if (c.truncated) {
      ctx.report.note(item.path, "truncated",
                      {"html.truncated", "変換後のテキストが上限を超えたため、後ろを省略しました",
                       "the converted text exceeded the size limit; the rest was omitted"});
    }
    std::string new_name = item.role == Role::Body ? item.name : text_file_name(item.name);
    Outcome out = Outcome::replace(std::move(c.text), "text/plain", std::move(new_name), converted_reason());
    out.charset = "utf-8";
    return out;
  }

 private:
  HtmlToTextOptions options_;
};

}  // namespace

std::string html_to_text(std::string_view html, const HtmlToTextOptions& options) {
  // No document (only possible for input over 2 GiB or without memory):
  // nothing readable, and never the input itself.
  return convert(html, options, std::nullopt).text;
}

std::string html_meta_charset(std::string_view html) {
  const std::string_view s = html.substr(0, 4096);
  std::size_t pos = 0;
  while ((pos = s.find('<', pos)) != std::string_view::npos) {
    if (s.substr(pos, 4) == "<!--") {
      std::size_t end = s.find("-->", pos + 4);
      if (end == std::string_view::npos) return "";
      pos = end + 3;
      continue;
    }
    if (pos + 1 < s.size() && (s[pos + 1] == '!' || s[pos + 1] == '/' || s[pos + 1] == '?')) {
      if (s[pos + 1] == '/' && pos + 2 < s.size() && is_ascii_alpha(s[pos + 2])) {
        pos += 2;
        while (pos < s.size() && is_ascii_alpha(s[pos])) ++pos;
        scan_attributes(s, pos);  // end tags' "attributes" are skipped too
        continue;
      }
      std::size_t end = s.find('>', pos + 1);
      if (end == std::string_view::npos) return "";
      pos = end + 1;
      continue;
    }
    if (pos + 1 >= s.size() || !is_ascii_alpha(s[pos + 1])) {
      ++pos;
      continue;
    }
    std::size_t name_end = pos + 1;
    while (name_end < s.size() && !is_html_space(static_cast<unsigned char>(s[name_end])) &&
           s[name_end] != '/' && s[name_end] != '>')
      ++name_end;
    const bool is_meta = ascii_iequals(s.substr(pos + 1, name_end - pos - 1), "meta");
    pos = name_end;
    // Other tags' attributes are skipped, so <img alt="<meta charset=x>">
    // does not count.
    auto attrs = scan_attributes(s, pos);
    if (!is_meta) continue;
    const std::string* charset = nullptr;
    const std::string* http_equiv = nullptr;
    const std::string* content = nullptr;
    for (const auto& [name, value] : attrs) {
      if (name == "charset" && !charset) charset = &value;
      if (name == "http-equiv" && !http_equiv) http_equiv = &value;
      if (name == "content" && !content) content = &value;
    }
    std::string label;
    if (charset)
      label = clean_label(*charset);
    else if (http_equiv && content && ascii_iequals(trim(*http_equiv), "content-type"))
      label = clean_label(charset_from_content(*content));
    if (!label.empty()) return label;
  }
  return "";
}

std::unique_ptr<Sanitizer> make_html_to_text(const toml::table& options) {
  HtmlToTextOptions o;
  for (const auto& [key, node] : options) {
    const std::string_view k = key.str();
    if (k == "links") {
      const auto* value = node.as_boolean();
      if (value == nullptr)
        throw ConfigError("html.to_text: option \"links\" must be true or false");
      o.links = value->get();
    } else if (k == "max_bytes") {
      const auto* value = node.as_integer();
      if (value == nullptr || value->get() <= 0)
        throw ConfigError("html.to_text: option \"max_bytes\" must be a positive integer");
      o.max_bytes = static_cast<std::size_t>(value->get());
    } else {
      throw ConfigError("html.to_text: unknown option \"" + std::string(k) + "\" (known: links, max_bytes)");
    }
  }
  // libxml2's one-time set-up is not thread-safe; do it here, at start-up,
  // before process() runs on several threads.
  xmlInitParser();
  return std::make_unique<HtmlToText>(o);
}

namespace html_to_text_detail {

std::string render_document(const xmlDoc& doc, const HtmlToTextOptions& options) {
  return finish(Renderer(options, std::nullopt).render(doc), false, options.max_bytes).text;
}

}  // namespace html_to_text_detail

}  // namespace mukaika
