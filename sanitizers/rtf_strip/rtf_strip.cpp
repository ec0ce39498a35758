// rtf.strip: see rtf_strip.h for what it promises.
//
// Decisions a reviewer should know about:
// - Output is RTF, not text: RTF still arrives as real documents (WordPad,
//   older systems, exports), and what makes RTF dangerous is a short list of
//   destinations, which we drop. Because the output is written from our own
//   token tree, a trick that makes Word and a scanner see different things
//   (\bin lengths, a control word split by odd spacing, objects hidden in
//   other destinations) cannot survive: Word reads what we wrote.
// - A destination word takes effect wherever it appears in a group, not only
//   right after "{", as Word does (oletools' rtfobj notes this trick).
// - Pictures are kept when their bytes are what the picture type says
//   (metafiles included, as in the Office rebuild); they are written back
//   as hex.
// - \object's \result (the picture Word shows for the object) stays; the
//   rest of the object goes.
// - Control words longer than 32 letters are dropped: the RTF spec's limit,
//   and nothing Word writes is longer.
#include "rtf_strip/rtf_strip.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "office_strip/field_codes.h"
#include "office_strip/rebuild.h"
#include "registry.h"

namespace mukaika {
namespace {

using office_strip::Finding;
using office_strip::Findings;

// ---- the token tree ----

struct Node {
  enum class Type { Group, Word, Symbol, Hex, Text, Binary };
  Type type = Type::Text;
  std::string text;  // Word: name; Symbol: the character; Hex: one byte; Text/Binary: bytes
  bool has_param = false;
  long long param = 0;
  std::vector<Node> children;  // Group only
};

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct ParseResult {
  RtfStripResult::Status status = RtfStripResult::Status::NotRtf;
  Node root;
};

// Tokenizes as Word does: a control word is letters, then an optional
// signed number (saturated to 32 bits), then one optional space that belongs
// to it; \bin takes that many raw bytes (none when the number is missing or
// negative); CR and LF are not text; "\'" takes two hex digits; the first
// group is the document and anything after its end is ignored; groups left
// open at the end are closed.
ParseResult parse(std::string_view in, int max_depth) {
  ParseResult result;
  if (!in.starts_with("{\\rt")) return result;
  std::vector<Node> stack(1);  // stack[0] collects the document group
  stack[0].type = Node::Type::Group;
  auto add = [&](Node n) { stack.back().children.push_back(std::move(n)); };
  auto add_text = [&](char c) {
    auto& kids = stack.back().children;
    if (kids.empty() || kids.back().type != Node::Type::Text) kids.push_back({Node::Type::Text, {}, false, 0, {}});
    kids.back().text += c;
  };
  std::size_t i = 0;
  bool done = false;
  while (i < in.size() && !done) {
    const char c = in[i];
    if (c == '{') {
      if (static_cast<int>(stack.size()) > max_depth) {
        result.status = RtfStripResult::Status::TooDeep;
        return result;
      }
      Node g;
      g.type = Node::Type::Group;
      stack.push_back(std::move(g));
      ++i;
    } else if (c == '}') {
      ++i;
      if (stack.size() > 1) {
        Node g = std::move(stack.back());
        stack.pop_back();
        stack.back().children.push_back(std::move(g));
        if (stack.size() == 1) done = true;  // the document group ended
      }
    } else if (c == '\r' || c == '\n') {
      ++i;
    } else if (c == '\\') {
      ++i;
      if (i >= in.size()) break;
      const char d = in[i];
      if (is_letter(d)) {
        Node w;
        w.type = Node::Type::Word;
        while (i < in.size() && is_letter(in[i])) w.text += in[i++];
        bool negative = false;
        if (i + 1 < in.size() && in[i] == '-' && is_digit(in[i + 1])) {
          negative = true;
          ++i;
        }
        if (i < in.size() && is_digit(in[i])) {
          w.has_param = true;
          long long v = 0;
          while (i < in.size() && is_digit(in[i])) {
            v = std::min<long long>(v * 10 + (in[i] - '0'), static_cast<long long>(INT_MAX) + 1);
            ++i;
          }
          w.param = negative ? -v : std::min<long long>(v, INT_MAX);
        }
        if (i < in.size() && in[i] == ' ') ++i;
        const bool bin = w.text == "bin";
        const long long length = bin && w.has_param && w.param > 0 ? w.param : 0;
        add(std::move(w));
        if (bin) {
          Node data;
          data.type = Node::Type::Binary;
          const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(length), in.size() - i);
          data.text.assign(in.substr(i, n));
          i += n;
          add(std::move(data));
        }
      } else if (d == '\'') {
        ++i;
        if (i + 1 < in.size() && hex_value(in[i]) >= 0 && hex_value(in[i + 1]) >= 0) {
          Node h;
          h.type = Node::Type::Hex;
          h.text = std::string(1, static_cast<char>(hex_value(in[i]) * 16 + hex_value(in[i + 1])));
          add(std::move(h));
          i += 2;
        }
      } else if (d == '\\' || d == '{' || d == '}') {
        add_text(d);
        ++i;
      } else if (d == '\r' || d == '\n') {
        add({Node::Type::Word, "par", false, 0, {}});
        ++i;
      } else if (d == '\t') {
        add({Node::Type::Word, "tab", false, 0, {}});
        ++i;
      } else {
        add({Node::Type::Symbol, std::string(1, d), false, 0, {}});
        ++i;
      }
    } else {
      add_text(c);
      ++i;
    }
  }
  while (stack.size() > 1) {
    Node g = std::move(stack.back());
    stack.pop_back();
    stack.back().children.push_back(std::move(g));
  }
  if (stack[0].children.empty() || stack[0].children.front().type != Node::Type::Group) return result;
  result.root = std::move(stack[0].children.front());
  result.status = RtfStripResult::Status::Ok;
  return result;
}

// ---- what stays ----

bool one_of(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

// Destinations dropped wherever they appear, with or without \*, and why.
bool dropped_destination(std::string_view w, Finding& why) {
  if (one_of(w, {"objdata", "objclass", "objname", "objalias", "objsect", "oleclsid"})) {
    why = Finding::Embedded;
  } else if (one_of(w, {"template", "hl", "hlsrc", "hlloc", "hlfr", "hlinkbase", "linkval", "mailmerge", "xform",
                        "file", "filetbl"})) {
    why = Finding::External;
  } else if (one_of(w, {"ffentrymcr", "ffexitmcr"})) {
    why = Finding::Macros;
  } else if (one_of(w, {"fontemb", "fontfile"})) {
    why = Finding::Media;
  } else if (one_of(w, {"datastore", "datafield", "themedata", "colorschememapping", "password", "passwordhash",
                        "writereservhash", "writereservation", "userprops", "docvar", "htmltag", "mhtmltag",
                        "picprop", "sp", "sn", "sv", "svb", "shpinst", "shptxt"})) {
    why = Finding::Hidden;
  } else {
    return false;
  }
  return true;
}

// Ignorable destinations (\*\name) that stay; any other \* group goes, as
// Word itself skips what it does not know.
bool kept_ignorable(std::string_view w) {
  static constexpr std::string_view kKept[] = {
      "panose", "falt", "fname", "generator", "listtable", "listoverridetable", "listpicture", "listname",
      "liststylename", "pnseclvl", "pn", "pntext", "pntxta", "pntxtb", "rsidtbl", "xmlnstbl", "xmlopen",
      "xmlclose", "xmlattrname", "xmlattrvalue", "xmlname", "latentstyles", "lsdlockedexcept", "defchp", "defpap",
      "pgdsctbl", "pgdsc", "pgptbl", "pgp", "protusertbl", "cs", "ts", "bkmkstart", "bkmkend", "atnid",
      "atnauthor", "atndate", "atnparent", "atnref", "atnicn", "atntime", "atrfstart", "atrfend", "annotation",
      "aftncn", "aftnsep", "aftnsepc", "ftncn", "ftnsep", "ftnsepc", "shppict", "nonshppict", "blipuid",
      "oldcprops", "oldpprops", "oldsprops", "oldtprops", "nesttableprops", "nonesttables", "company", "manager",
      "category", "keywords", "doccomm", "title", "subject", "author", "operator", "comment", "windowcaption",
      "wgrffmtfilter", "ebcstart", "ebcend", "fchars", "lchars", "factoidname", "g", "gdir", "fldinst",
      "fldtype", "formfield", "ffname", "ffdeftext", "ffformat", "ffhelptext", "ffstattext", "ffl", "background",
      "dptxbxtext", "ud", "upr", "tc", "txe", "rxe", "xe", "bxe", "pxe", "revtbl", "listtext", "staticval",
      "rsid", "mmathPr", "jclisttab", "tcn", "themelangcs"};
  if (std::find(std::begin(kKept), std::end(kKept), w) != std::end(kKept)) return true;
  // Math (\*\moMath, \*\mr, \*\mf ...); mail-merge words (also "m...") only
  // occur inside \mailmerge, which goes.
  return w.size() > 1 && w[0] == 'm' && is_letter(w[1]) && !w.starts_with("mmodso") &&
         !one_of(w, {"mmconnectstr", "mmconnectstrdata", "mmdatasource", "mmheadersource", "mmquery",
                     "mmaddfieldname", "mmmailsubject"});
}

// Words not written back: \bin (its data is handled on its own) and
// \fromhtml (it would make a mail client rebuild HTML from \htmltag groups).
bool dropped_word(std::string_view w) { return w == "bin" || w == "fromhtml" || w.size() > 32; }

// Does the group hold `word` among its direct children (a destination that
// may appear after text or other words)?
std::size_t find_word(const Node& g, std::string_view word) {
  for (std::size_t i = 0; i < g.children.size(); ++i)
    if (g.children[i].type == Node::Type::Word && g.children[i].text == word) return i;
  return std::string::npos;
}

// ---- the writer ----

class Writer {
 public:
  std::string take() { return std::move(out_); }

  void open() {
    out_ += '{';
    delimit_ = false;
  }
  void close() {
    out_ += '}';
    delimit_ = false;
  }
  void word(std::string_view name, bool has_param = false, long long param = 0) {
    out_ += '\\';
    out_ += name;
    if (has_param) out_ += std::to_string(param);
    delimit_ = true;
    if (one_of(name, {"par", "row", "sect", "page"})) {
      out_ += "\r\n";  // ignored by readers; keeps lines short
      delimit_ = false;
    }
  }
  void symbol(char c) {
    out_ += '\\';
    out_ += c;
    delimit_ = false;
  }
  void byte(unsigned char b) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += "\\'";
    out_ += kHex[b >> 4];
    out_ += kHex[b & 15];
    delimit_ = false;
  }
  void text(std::string_view s) {
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '\t') {
        word("tab");
      } else if (c < 0x20 || c == 0x7F) {
        continue;
      } else if (c >= 0x80) {
        byte(c);
      } else {
        if (delimit_) out_ += ' ';
        delimit_ = false;
        if (ch == '\\' || ch == '{' || ch == '}') out_ += '\\';
        out_ += ch;
      }
    }
  }
  void hex_data(std::string_view data) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += "\r\n";
    for (std::size_t i = 0; i < data.size(); ++i) {
      const auto c = static_cast<unsigned char>(data[i]);
      out_ += kHex[c >> 4];
      out_ += kHex[c & 15];
      if (i % 64 == 63) out_ += "\r\n";
    }
    delimit_ = false;
  }

 private:
  std::string out_;
  bool delimit_ = false;
};

// ---- the rewrite ----

class Rewrite {
 public:
  std::string run(const Node& root) {
    w_.open();
    w_.word("rtf", true, 1);
    std::size_t from = 0;
    if (!root.children.empty() && root.children[0].type == Node::Type::Word && root.children[0].text.starts_with("rt"))
      from = 1;  // "\rtf1", or the "\rt" and "\rtf2" that Word also accepts
    content(root.children, from);
    w_.close();
    return w_.take();
  }

  Findings findings;

 private:
  void group(const Node& g) {
    w_.open();
    content(g.children, 0);
    w_.close();
  }

  // Writes children[from..] of one group, applying the rules; a dropped
  // destination ends the group.
  void content(const std::vector<Node>& kids, std::size_t from) {
    for (std::size_t i = from; i < kids.size(); ++i) {
      const Node& n = kids[i];
      switch (n.type) {
        case Node::Type::Group:
          group(n);
          break;
        case Node::Type::Text:
          w_.text(n.text);
          break;
        case Node::Type::Hex:
          w_.byte(static_cast<unsigned char>(n.text[0]));
          break;
        case Node::Type::Binary:
          // Binary data outside a picture: nothing a reader shows.
          findings.add(Finding::Hidden);
          break;
        case Node::Type::Symbol:
          if (n.text == "*") {
            if (i + 1 < kids.size() && kids[i + 1].type == Node::Type::Word) {
              const std::string& next = kids[i + 1].text;
              Finding why = Finding::Hidden;
              if (special(next) || dropped_destination(next, why)) break;  // the word decides
              if (!kept_ignorable(next)) {
                findings.add(Finding::Hidden);
                return;
              }
              w_.symbol('*');
            }
          } else if (one_of(n.text, {"~", "-", "_", ":", "|"})) {
            w_.symbol(n.text[0]);
          }
          break;
        case Node::Type::Word: {
          Finding why = Finding::Hidden;
          if (n.text == "object") return object(kids, i);
          if (n.text == "shp" || n.text == "shpgrp") return shape(kids, i);
          if (n.text == "field") return field(kids, i);
          if (n.text == "pict") return picture(kids, i);
          if (n.text == "result") break;  // a result outside an object: its content is plain content
          if (dropped_destination(n.text, why)) {
            findings.add(why);
            return;
          }
          if (!dropped_word(n.text)) w_.word(n.text, n.has_param, n.param);
          break;
        }
      }
    }
  }

  static bool special(std::string_view w) { return one_of(w, {"object", "shp", "shpgrp", "field", "pict", "result"}); }

  // {\object ... {\*\objdata ...}{\result ...}}: only the result stays.
  void object(const std::vector<Node>& kids, std::size_t at) {
    findings.add(Finding::Embedded);
    for (std::size_t i = at + 1; i < kids.size(); ++i) {
      if (kids[i].type != Node::Type::Group) continue;
      std::size_t r = find_word(kids[i], "result");
      if (r == std::string::npos) continue;
      w_.open();
      content(kids[i].children, r + 1);
      w_.close();
    }
  }

  // {\shp {\*\shpinst ...}{\shprslt ...}}: the shape's own description
  // (property groups, where exploits hid) goes; its result stays.
  void shape(const std::vector<Node>& kids, std::size_t at) {
    findings.add(Finding::Hidden);
    for (std::size_t i = at + 1; i < kids.size(); ++i) {
      if (kids[i].type != Node::Type::Group) continue;
      std::size_t r = find_word(kids[i], "shprslt");
      if (r == std::string::npos) continue;
      w_.open();
      content(kids[i].children, r + 1);
      w_.close();
    }
  }

  // The instruction of a field: its text, nested formatting groups
  // included; nested fields and other destinations not. `computed` when a
  // nested field comes before any literal text (the type would be computed).
  static void instruction(const Node& g, std::size_t from, std::string& text, bool& literal, bool& computed) {
    for (std::size_t i = from; i < g.children.size(); ++i) {
      const Node& n = g.children[i];
      if (n.type == Node::Type::Text || n.type == Node::Type::Hex) {
        text += n.text;
        if (n.text.find_first_not_of(" \t") != std::string::npos) literal = true;
      } else if (n.type == Node::Type::Group) {
        if (find_word(n, "field") != std::string::npos) {
          if (!literal) computed = true;
          continue;
        }
        bool destination = false;
        for (const Node& c : n.children)
          if ((c.type == Node::Type::Symbol && c.text == "*") ||
              (c.type == Node::Type::Word && one_of(c.text, {"formfield", "datafield", "fldinst", "fldrslt"})))
            destination = true;
        if (!destination) instruction(n, 0, text, literal, computed);
      }
    }
  }

  // {\field {\*\fldinst INSTRUCTION}{\fldrslt RESULT}}: kept when the
  // instruction is on the allow-list; otherwise only the result's text
  // stays. Several instruction groups are read as one, so a type split
  // across them is still seen.
  void field(const std::vector<Node>& kids, std::size_t at) {
    std::vector<std::pair<const Node*, std::size_t>> instructions;
    const Node* result = nullptr;
    std::size_t result_at = 0;
    for (std::size_t i = at + 1; i < kids.size(); ++i) {
      if (kids[i].type != Node::Type::Group) continue;
      if (std::size_t p = find_word(kids[i], "fldinst"); p != std::string::npos) instructions.emplace_back(&kids[i], p + 1);
      if (std::size_t p = find_word(kids[i], "fldrslt"); p != std::string::npos && !result) {
        result = &kids[i];
        result_at = p + 1;
      }
    }
    std::string text;
    bool literal = false, computed = false;
    for (const auto& [inst, inst_at] : instructions) instruction(*inst, inst_at, text, literal, computed);
    if (!computed && office_strip::field_allowed(text)) {
      w_.word("field");
      content(kids, at + 1);
      return;
    }
    if (office_strip::field_is_dde(text))
      findings.add(Finding::Dde);
    else if (office_strip::field_type(text) == "HYPERLINK")
      findings.add(Finding::Hyperlinks);
    else
      findings.add(Finding::Fields);
    if (result) {
      w_.open();
      content(result->children, result_at);
      w_.close();
    }
  }

  // {\pict \pngblip \picw.. HEX}: kept when the type is one we keep and the
  // bytes are that type; written back with its size words and hex data.
  void picture(const std::vector<Node>& kids, std::size_t at) {
    std::vector<const Node*> words;
    std::string data;
    std::string pending_hex;
    std::string_view type;
    for (std::size_t i = at + 1; i < kids.size(); ++i) {
      const Node& n = kids[i];
      if (n.type == Node::Type::Word) {
        if (n.text == "bin") continue;
        if (one_of(n.text, {"pngblip", "jpegblip", "emfblip", "wmetafile", "dibitmap"})) type = n.text;
        if (!dropped_word(n.text)) words.push_back(&n);
      } else if (n.type == Node::Type::Text) {
        for (char c : n.text)
          if (hex_value(c) >= 0) pending_hex += c;
      } else if (n.type == Node::Type::Binary) {
        flush_hex(pending_hex, data);
        data += n.text;
      }
      // Groups inside a picture (\*\picprop shape properties, \*\blipuid)
      // are not needed to show it.
    }
    flush_hex(pending_hex, data);
    if (!picture_ok(type, data)) {
      findings.add(Finding::Images);
      return;
    }
    w_.word("pict");
    for (const Node* n : words) w_.word(n->text, n->has_param, n->param);
    w_.hex_data(data);
  }

  static void flush_hex(std::string& hex, std::string& data) {
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
      data += static_cast<char>(hex_value(hex[i]) * 16 + hex_value(hex[i + 1]));
    hex.clear();  // an odd last digit is dropped, as Word does
  }

  static bool picture_ok(std::string_view type, std::string_view data) {
    if (type == "pngblip") return office_strip::image_bytes_match("image/png", data);
    if (type == "jpegblip") return office_strip::image_bytes_match("image/jpeg", data);
    if (type == "emfblip") return office_strip::image_bytes_match("image/x-emf", data);
    if (type == "wmetafile") return office_strip::image_bytes_match("image/x-wmf", data);
    if (type == "dibitmap") {
      // A device-independent bitmap starts with its header's size.
      if (data.size() < 4) return false;
      const auto size = static_cast<std::uint32_t>(static_cast<unsigned char>(data[0])) |
                        static_cast<std::uint32_t>(static_cast<unsigned char>(data[1])) << 8 |
                        static_cast<std::uint32_t>(static_cast<unsigned char>(data[2])) << 16 |
                        static_cast<std::uint32_t>(static_cast<unsigned char>(data[3])) << 24;
      return size == 12 || size == 40 || size == 52 || size == 56 || size == 108 || size == 124;
    }
    return false;
  }

  Writer w_;
};

// "x.rtf" stays; a document extension that Word would also open RTF under
// (x.doc, x.wri) becomes .rtf, so the name says what it is; anything else
// gets .rtf added.
std::string rtf_file_name(const std::string& name) {
  if (name.empty()) return name;
  std::size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) {
    std::string ext = office_strip::ascii_lower(std::string_view(name).substr(dot + 1));
    if (ext == "rtf") return name;
    if (one_of(ext, {"doc", "dot", "docx", "docm", "dotx", "dotm", "wri", "wps"})) return name.substr(0, dot) + ".rtf";
  }
  return name + ".rtf";
}

class RtfStrip : public Sanitizer {
 public:
  explicit RtfStrip(RtfStripOptions options) : options_(options) {}

  std::string_view name() const override { return "rtf.strip"; }
  std::vector<Kind> handles() const override { return {Kind::Rtf}; }

  Outcome process(const Item& item, Context& ctx) const override {
    RtfStripResult r = strip_rtf(item.bytes, options_);
    if (r.status == RtfStripResult::Status::NotRtf)
      return Outcome::block({"rtf.unparseable", "RTF として読めないため遮断しました",
                             "blocked: the file does not start like an RTF document"});
    if (r.status == RtfStripResult::Status::TooDeep)
      return Outcome::block({"rtf.too_deep",
                             "RTF の入れ子が深すぎる (上限 " + std::to_string(options_.max_depth) + ") ため遮断しました",
                             "blocked: RTF groups nested deeper than " + std::to_string(options_.max_depth)});
    if (ctx.past_deadline())
      return Outcome::block({"rtf.limits.time", "処理時間の上限を超えたため遮断しました",
                             "blocked: processing took longer than the time limit"});
    std::string ja, en;
    for (std::size_t i = 0; i < office_strip::kFindingCount; ++i) {
      if (r.findings.counts[i] == 0) continue;
      const auto f = static_cast<Finding>(i);
      ctx.report.note(item.path, "remove", office_strip::finding_reason(f, r.findings.counts[i]));
      if (f == Finding::Hidden) continue;
      ja += (ja.empty() ? "" : "・") + office_strip::finding_label(f, Language::Ja);
      en += (en.empty() ? "" : ", ") + office_strip::finding_label(f, Language::En);
    }
    Reason reason = ja.empty()
                        ? Reason{"rtf.rebuilt", "RTF 文書を書き直しました（埋め込みオブジェクトなどはありませんでした）",
                                 "rewrote the RTF document (it held no embedded objects or active fields)"}
                        : Reason{"rtf.strip", "RTF 文書を書き直し、次を除去しました: " + ja,
                                 "rewrote the RTF document without: " + en};
    return Outcome::replace(std::move(r.rtf), "application/rtf", rtf_file_name(item.name), std::move(reason),
                            !r.findings.visible());
  }

 private:
  RtfStripOptions options_;
};

}  // namespace

RtfStripResult strip_rtf(std::string_view input, const RtfStripOptions& options) {
  RtfStripResult result;
  ParseResult parsed = parse(input, options.max_depth);
  result.status = parsed.status;
  if (parsed.status != RtfStripResult::Status::Ok) return result;
  Rewrite rewrite;
  result.rtf = rewrite.run(parsed.root);
  result.findings = rewrite.findings;
  return result;
}

std::unique_ptr<Sanitizer> make_rtf_strip(const toml::table& options) {
  RtfStripOptions o;
  for (const auto& [key, node] : options) {
    const std::string_view k = key.str();
    if (k == "max_depth") {
      const auto* value = node.as_integer();
      if (value == nullptr || value->get() < 1 || value->get() > 10000)
        throw ConfigError("rtf.strip: option \"max_depth\" must be an integer from 1 to 10000");
      o.max_depth = static_cast<int>(value->get());
    } else {
      throw ConfigError("rtf.strip: unknown option \"" + std::string(k) + "\" (known: max_depth)");
    }
  }
  return std::make_unique<RtfStrip>(o);
}

}  // namespace mukaika
