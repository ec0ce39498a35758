// OOXML by reconstruction: see rebuild.h and docs/policy.md.
//
// How it works, and why:
// - The package is walked from _rels/.rels along relationships. A part is
//   kept only when a relationship of an allowed type leads to it (an
//   allow-list of types, never a list of bad ones), the relationship is not
//   External, the part exists, and its content type fits the relationship:
//   XML for XML relationships (and the root element the type implies), a
//   picture whose bytes match its type for images. Everything else is left
//   behind, including parts nothing points to.
// - Every kept XML part is parsed (safe_xml.h: no DOCTYPE, no entities, no
//   network) and scrubbed: fields, formulas, names, events and actions that
//   run or fetch something are removed; every element that refers to a
//   relationship we dropped is removed (or, for a hyperlink, replaced by its
//   text), so nothing dangles and Office does not offer to "repair".
// - [Content_Types].xml and every .rels are written anew from what was kept;
//   a macro-enabled main part gets the macro-free content type, so x.docm
//   comes out as x.docx.
#include <algorithm>
#include <cctype>
#include <deque>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "office_strip/field_codes.h"
#include "office_strip/rebuild.h"
#include "office_strip/safe_xml.h"

namespace mukaika::office_strip {
namespace {

// ---- names ----

constexpr std::string_view kNsW = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
constexpr std::string_view kNsX = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
constexpr std::string_view kNsP = "http://schemas.openxmlformats.org/presentationml/2006/main";
constexpr std::string_view kNsA = "http://schemas.openxmlformats.org/drawingml/2006/main";
constexpr std::string_view kNsR = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
constexpr std::string_view kNsMc = "http://schemas.openxmlformats.org/markup-compatibility/2006";
constexpr std::string_view kNsV = "urn:schemas-microsoft-com:vml";
constexpr std::string_view kNsO = "urn:schemas-microsoft-com:office:office";
constexpr std::string_view kNsXv = "urn:schemas-microsoft-com:office:excel";
constexpr std::string_view kNsXm = "http://schemas.microsoft.com/office/excel/2006/main";
constexpr std::string_view kNsPkgRels = "http://schemas.openxmlformats.org/package/2006/relationships";
constexpr std::string_view kNsContentTypes = "http://schemas.openxmlformats.org/package/2006/content-types";

constexpr std::string_view kRelPrefix = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/";
constexpr std::string_view kStrictRelPrefix = "http://purl.oclc.org/ooxml/officeDocument/relationships/";
constexpr std::string_view kRelCoreProperties =
    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties";

constexpr std::string_view kRelsContentType = "application/vnd.openxmlformats-package.relationships+xml";
constexpr std::string_view kVmlContentType = "application/vnd.openxmlformats-officedocument.vmldrawing";

// Strict OOXML uses other namespace names for the same vocabulary; the
// rules below are written once, in Transitional terms.
std::string_view canonical_ns(std::string_view ns) {
  static constexpr std::pair<std::string_view, std::string_view> kStrict[] = {
      {"http://purl.oclc.org/ooxml/wordprocessingml/main", kNsW},
      {"http://purl.oclc.org/ooxml/spreadsheetml/main", kNsX},
      {"http://purl.oclc.org/ooxml/presentationml/main", kNsP},
      {"http://purl.oclc.org/ooxml/drawingml/main", kNsA},
      {"http://purl.oclc.org/ooxml/officeDocument/relationships", kNsR},
  };
  for (const auto& [strict, transitional] : kStrict)
    if (ns == strict) return transitional;
  return ns;
}

std::string canonical_rel_type(std::string_view type) {
  if (type.starts_with(kStrictRelPrefix)) return std::string(kRelPrefix) + std::string(type.substr(kStrictRelPrefix.size()));
  // Some old writers spell the core-properties type with a lower-case "d".
  if (ascii_lower(type) == "http://schemas.openxmlformats.org/officedocument/2006/relationships/metadata/core-properties")
    return std::string(kRelCoreProperties);
  return std::string(type);
}

bool is(const xmlNode& n, std::string_view ns, std::string_view name) {
  return n.type == XML_ELEMENT_NODE && local_name(n) == name && canonical_ns(ns_of(n)) == ns;
}

// ---- document types ----

enum class Family { Word, Excel, Presentation };

struct MainType {
  std::string_view content_type;  // of the main part, lower case
  Family family;
  std::string_view out_content_type;
  std::string_view mime;
  std::string_view ext_in;
  std::string_view ext_out;
};

constexpr std::string_view kDocx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml";
constexpr std::string_view kDotx = "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml";
constexpr std::string_view kXlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml";
constexpr std::string_view kXltx = "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml";
constexpr std::string_view kPptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml";
constexpr std::string_view kPpsx = "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml";
constexpr std::string_view kPotx = "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml";

constexpr MainType kMainTypes[] = {
    {kDocx, Family::Word, kDocx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "docx"},
    {"application/vnd.ms-word.document.macroenabled.main+xml", Family::Word, kDocx,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docm", "docx"},
    {kDotx, Family::Word, kDotx, "application/vnd.openxmlformats-officedocument.wordprocessingml.template", "dotx", "dotx"},
    {"application/vnd.ms-word.template.macroenabledtemplate.main+xml", Family::Word, kDotx,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.template", "dotm", "dotx"},
    {kXlsx, Family::Excel, kXlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "xlsx"},
    {"application/vnd.ms-excel.sheet.macroenabled.main+xml", Family::Excel, kXlsx,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsm", "xlsx"},
    {kXltx, Family::Excel, kXltx, "application/vnd.openxmlformats-officedocument.spreadsheetml.template", "xltx", "xltx"},
    {"application/vnd.ms-excel.template.macroenabled.main+xml", Family::Excel, kXltx,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.template", "xltm", "xltx"},
    {kPptx, Family::Presentation, kPptx, "application/vnd.openxmlformats-officedocument.presentationml.presentation",
     "pptx", "pptx"},
    {"application/vnd.ms-powerpoint.presentation.macroenabled.main+xml", Family::Presentation, kPptx,
     "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptm", "pptx"},
    {kPpsx, Family::Presentation, kPpsx, "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
     "ppsx", "ppsx"},
    {"application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml", Family::Presentation, kPpsx,
     "application/vnd.openxmlformats-officedocument.presentationml.slideshow", "ppsm", "ppsx"},
    {kPotx, Family::Presentation, kPotx, "application/vnd.openxmlformats-officedocument.presentationml.template",
     "potx", "potx"},
    {"application/vnd.ms-powerpoint.template.macroenabled.main+xml", Family::Presentation, kPotx,
     "application/vnd.openxmlformats-officedocument.presentationml.template", "potm", "potx"},
};

const MainType* find_main_type(std::string_view content_type) {
  const std::string ct = ascii_lower(content_type);
  for (const MainType& t : kMainTypes)
    if (t.content_type == ct) return &t;
  return nullptr;
}

// Formats that are OOXML packages but that we do not rebuild: removed with
// a sentence that tells the reader why and what to ask for.
std::optional<Reason> unsupported_main_type(std::string_view content_type) {
  const std::string ct = ascii_lower(content_type);
  if (ct == "application/vnd.ms-excel.sheet.binary.macroenabled.main")
    return Reason{"office.xlsb",
                  "Excel バイナリブック (.xlsb) は中身を検査・無害化できないため削除しました。送信者に .xlsx 形式での再送を依頼してください",
                  "removed: an Excel binary workbook (.xlsb) cannot be inspected or sanitized; ask the sender for .xlsx"};
  if (ct == "application/vnd.ms-excel.addin.macroenabled.main+xml" ||
      ct == "application/vnd.ms-powerpoint.addin.macroenabled.main+xml")
    return Reason{"office.addin",
                  "Office アドイン (.xlam/.ppam) はプログラムを配るための形式のため削除しました",
                  "removed: an Office add-in (.xlam, .ppam) exists to carry program code"};
  return std::nullopt;
}

// ---- relationship allow-list ----

enum class PartKind { Xml, Image, Vml };

// Relationship types (after kRelPrefix) whose target may stay, as XML.
constexpr std::string_view kKeptXml[] = {
    "extended-properties", "styles", "settings", "fontTable", "numbering", "theme", "themeOverride", "footnotes",
    "endnotes", "header", "footer", "comments", "chart", "chartUserShapes", "diagramData", "diagramLayout",
    "diagramQuickStyle", "diagramColors", "glossaryDocument", "worksheet", "chartsheet", "sharedStrings", "table",
    "drawing", "calcChain", "slide", "slideLayout", "slideMaster", "notesSlide", "notesMaster", "handoutMaster",
    "presProps", "viewProps", "tableStyles", "commentAuthors", "pivotTable", "pivotCacheDefinition",
    "pivotCacheRecords", "sheetMetadata",
};
// Microsoft's own additions that only hold content or formatting.
constexpr std::string_view kKeptMicrosoftXml[] = {
    "http://schemas.microsoft.com/office/2007/relationships/stylesWithEffects",
    "http://schemas.microsoft.com/office/2007/relationships/diagramDrawing",
    "http://schemas.microsoft.com/office/2011/relationships/people",
    "http://schemas.microsoft.com/office/2011/relationships/commentsExtended",
    "http://schemas.microsoft.com/office/2016/09/relationships/commentsIds",
    "http://schemas.microsoft.com/office/2018/08/relationships/commentsExtensible",
    "http://schemas.microsoft.com/office/2011/relationships/chartStyle",
    "http://schemas.microsoft.com/office/2011/relationships/chartColorStyle",
    "http://schemas.microsoft.com/office/2014/relationships/chartEx",
    "http://schemas.microsoft.com/office/2017/10/relationships/threadedComment",
    "http://schemas.microsoft.com/office/2017/10/relationships/person",
    "http://schemas.microsoft.com/office/2018/10/relationships/comments",
    "http://schemas.microsoft.com/office/2018/10/relationships/authors",
};

std::optional<PartKind> kept_kind(std::string_view type) {
  if (type == kRelCoreProperties) return PartKind::Xml;
  if (type.starts_with(kRelPrefix)) {
    std::string_view suffix = type.substr(kRelPrefix.size());
    if (suffix == "image") return PartKind::Image;
    if (suffix == "vmlDrawing") return PartKind::Vml;
    for (std::string_view k : kKeptXml)
      if (suffix == k) return PartKind::Xml;
    return std::nullopt;
  }
  for (std::string_view k : kKeptMicrosoftXml)
    if (type == k) return PartKind::Xml;
  return std::nullopt;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Why a relationship type is not kept, for the notice. The last word of a
// type says what it is ("vbaProject", "activeXControlBinary",
// "xlMacrosheet", "ui/extensibility"), old and new spellings alike.
Finding dropped_finding(std::string_view type) {
  const std::string t = ascii_lower(type);
  const std::string w = t.substr(t.rfind('/') == std::string::npos ? 0 : t.rfind('/') + 1);
  auto any = [&](std::initializer_list<std::string_view> words) {
    return std::any_of(words.begin(), words.end(), [&](std::string_view x) { return w == x; });
  };
  if (contains(w, "vba") || any({"keymapcustomizations"})) return Finding::Macros;
  if (contains(w, "macrosheet") || contains(w, "dialogsheet")) return Finding::Xlm;
  if (contains(w, "activex") || any({"control", "ctrlprop"})) return Finding::ActiveX;
  if (contains(w, "embed") || any({"oleobject", "package", "afchunk", "subdocument"})) return Finding::Embedded;
  if (any({"extensibility", "usercustomization", "attachedtoolbars"})) return Finding::CustomUi;
  if (contains(w, "mailmerge") ||
      any({"attachedtemplate", "externallink", "externallinkpath", "connections", "querytable", "frame",
           "slideupdateinfo"}))
    return Finding::External;
  if (any({"hyperlink"})) return Finding::Hyperlinks;
  if (contains(w, "webextension") || any({"audio", "video", "media", "model3d", "font", "hdphoto"}))
    return Finding::Media;
  return Finding::Hidden;
}

// Root elements a relationship type implies; a part whose root is something
// else is not what its relationship claims.
struct ExpectedRoot {
  std::string_view rel;  // after kRelPrefix
  std::string_view ns;
  std::string_view name;
};
constexpr ExpectedRoot kExpectedRoots[] = {
    {"worksheet", kNsX, "worksheet"},       {"chartsheet", kNsX, "chartsheet"},
    {"sharedStrings", kNsX, "sst"},         {"slide", kNsP, "sld"},
    {"slideLayout", kNsP, "sldLayout"},     {"slideMaster", kNsP, "sldMaster"},
    {"notesSlide", kNsP, "notes"},          {"notesMaster", kNsP, "notesMaster"},
    {"handoutMaster", kNsP, "handoutMaster"}, {"header", kNsW, "hdr"},
    {"footer", kNsW, "ftr"},                {"footnotes", kNsW, "footnotes"},
    {"endnotes", kNsW, "endnotes"},         {"settings", kNsW, "settings"},
    {"numbering", kNsW, "numbering"},       {"fontTable", kNsW, "fonts"},
    {"glossaryDocument", kNsW, "glossaryDocument"},
};

// ---- paths ----

std::string directory_of(std::string_view name) {
  std::size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(name.substr(0, slash + 1));
}

std::string rels_name_for(std::string_view part) {
  std::size_t slash = part.rfind('/');
  std::string dir = slash == std::string_view::npos ? std::string() : std::string(part.substr(0, slash + 1));
  std::string base(slash == std::string_view::npos ? part : part.substr(slash + 1));
  return dir + "_rels/" + base + ".rels";
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// The part a relationship target names, relative to the source part, or
// nothing when it cannot name a part (a fragment, a query, escaping above
// the package root, a backslash, control characters, an empty segment).
std::optional<std::string> resolve_target(std::string_view source, std::string_view target) {
  if (target.empty() || target.find_first_of("#?\\") != std::string_view::npos) return std::nullopt;
  std::optional<std::string> decoded = percent_decode(target);
  if (!decoded) return std::nullopt;
  for (char c : *decoded)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F || c == '\\') return std::nullopt;
  std::string path = decoded->front() == '/' ? decoded->substr(1) : directory_of(source) + *decoded;
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (segments.empty()) return std::nullopt;
      segments.pop_back();
    } else if (seg.empty()) {
      return std::nullopt;
    } else if (seg != ".") {
      segments.push_back(std::move(seg));
    }
    start = slash + 1;
  }
  if (segments.empty()) return std::nullopt;
  std::string out;
  for (const std::string& seg : segments) out += (out.empty() ? "" : "/") + seg;
  return out;
}

// A part name as a URI for [Content_Types].xml: RFC 3986 unreserved
// characters and the few sub-delimiters part names use stay; the rest is
// percent-encoded (UTF-8 names included).
std::string part_uri(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "/";
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    const bool plain = std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '!' ||
                       c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' ||
                       c == ',' || c == ';' || c == '=' || c == ':' || c == '@';
    if (plain) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string extension_of(std::string_view name) {
  std::size_t slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  std::size_t dot = base.rfind('.');
  return dot == std::string_view::npos ? std::string() : ascii_lower(base.substr(dot + 1));
}

bool is_xml_content_type(std::string_view ct) {
  const std::string t = ascii_lower(ct);
  return t.ends_with("+xml") || t == "application/xml" || t == "text/xml";
}

// ---- relationships and content types ----

struct Relationship {
  std::string id;
  std::string type;           // as written
  std::string canonical_type;
  std::string target;         // as written
  bool external = false;
  std::string part;           // resolved target part name (kept relationships only)
};

struct Package {
  std::vector<ZipMember> members;
  std::unordered_map<std::string, std::size_t> by_name;  // lower-case name -> index
  std::unordered_map<std::string, std::string> defaults;   // extension -> content type
  std::unordered_map<std::string, std::string> overrides;  // lower-case part name -> content type

  const ZipMember* find(std::string_view name) const {
    auto it = by_name.find(ascii_lower(name));
    return it == by_name.end() ? nullptr : &members[it->second];
  }
  std::optional<std::string> content_type(std::string_view name) const {
    auto o = overrides.find(ascii_lower(name));
    if (o != overrides.end()) return o->second;
    auto d = defaults.find(extension_of(name));
    if (d != defaults.end()) return d->second;
    return std::nullopt;
  }
};

Reason malformed_reason(std::string_view part) {
  return {"office.malformed", "文書の部品「" + std::string(part) + "」が正しい XML でないため遮断しました",
          "blocked: the part \"" + std::string(part) + "\" is not well-formed XML"};
}

Reason doctype_reason(std::string_view part) {
  return {"office.doctype",
          "文書の部品「" + std::string(part) +
              "」に DOCTYPE (エンティティ展開による攻撃 billion laughs / XXE に使われる) があるため遮断しました",
          "blocked: the part \"" + std::string(part) +
              "\" has a DOCTYPE (used for billion laughs and XXE attacks; Office documents never have one)"};
}

// Parses an XML member; a DOCTYPE or malformed XML is a reason to block.
std::optional<Reason> parse_member(const ZipMember& m, XmlDocPtr& doc) {
  XmlParse parsed = parse_xml(m.data);
  if (parsed.status == XmlParse::Status::Doctype) return doctype_reason(m.name);
  if (parsed.status != XmlParse::Status::Ok) return malformed_reason(m.name);
  doc = std::move(parsed.doc);
  return std::nullopt;
}

std::optional<Reason> read_content_types(Package& pkg) {
  const ZipMember* m = pkg.find("[Content_Types].xml");
  if (!m)
    return Reason{"office.unparseable", "Office 文書の目録 ([Content_Types].xml) がないため遮断しました",
                  "blocked: the package has no [Content_Types].xml, so it is not a valid Office document"};
  XmlDocPtr doc;
  if (auto r = parse_member(*m, doc)) return r;
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!is(*root, kNsContentTypes, "Types")) return malformed_reason(m->name);
  for (const xmlNode* n = root->children; n; n = n->next) {
    if (is(*n, kNsContentTypes, "Default")) {
      auto ext = attribute(*n, "", "Extension");
      auto ct = attribute(*n, "", "ContentType");
      if (ext && ct) pkg.defaults.emplace(ascii_lower(*ext), *ct);
    } else if (is(*n, kNsContentTypes, "Override")) {
      auto name = attribute(*n, "", "PartName");
      auto ct = attribute(*n, "", "ContentType");
      if (!name || !ct || name->empty()) continue;
      std::optional<std::string> decoded = percent_decode(*name);
      if (!decoded) continue;
      std::string key = ascii_lower(decoded->front() == '/' ? decoded->substr(1) : *decoded);
      pkg.overrides.emplace(std::move(key), *ct);
    }
  }
  return std::nullopt;
}

// Relationships of one .rels member. Two relationships with one Id would let
// a reader pick either: block.
std::optional<Reason> read_relationships(const ZipMember& m, std::vector<Relationship>& out) {
  XmlDocPtr doc;
  if (auto r = parse_member(m, doc)) return r;
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!is(*root, kNsPkgRels, "Relationships")) return malformed_reason(m.name);
  std::unordered_set<std::string> ids;
  for (const xmlNode* n = root->children; n; n = n->next) {
    if (!is(*n, kNsPkgRels, "Relationship")) continue;
    Relationship rel;
    auto id = attribute(*n, "", "Id");
    auto type = attribute(*n, "", "Type");
    auto target = attribute(*n, "", "Target");
    if (!id || !type || !target) continue;
    rel.id = *id;
    rel.type = *type;
    rel.canonical_type = canonical_rel_type(*type);
    rel.target = *target;
    auto mode = attribute(*n, "", "TargetMode");
    rel.external = mode && ascii_lower(*mode) == "external";
    if (!ids.insert(rel.id).second)
      return Reason{"office.ambiguous",
                    "文書の関係定義「" + m.name + "」に同じ ID「" + rel.id + "」が複数あるため遮断しました",
                    "blocked: \"" + m.name + "\" defines the relationship id \"" + rel.id + "\" twice"};
    out.push_back(std::move(rel));
  }
  return std::nullopt;
}

std::string relationships_xml(const std::vector<Relationship>& rels) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
      "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">";
  for (const Relationship& r : rels)
    out += "<Relationship Id=\"" + xml_escape(r.id) + "\" Type=\"" + xml_escape(r.type) + "\" Target=\"" +
           xml_escape(r.target) + "\"/>";
  out += "</Relationships>";
  return out;
}

// ---- formulas (Excel) ----

std::string upper_outside_strings(std::string_view f) {
  std::string s;
  bool in_string = false;
  for (char c : f) {
    if (c == '"') {
      in_string = !in_string;
      continue;
    }
    if (!in_string) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

bool calls(const std::string& s, std::string_view function) {
  for (std::size_t pos = s.find(function); pos != std::string::npos; pos = s.find(function, pos + 1)) {
    std::size_t end = pos + function.size();
    bool starts = pos == 0 || !(std::isalnum(static_cast<unsigned char>(s[pos - 1])) || s[pos - 1] == '_' ||
                                s[pos - 1] == '.');
    std::size_t j = end;
    while (j < s.size() && s[j] == ' ') ++j;
    if (starts && j < s.size() && s[j] == '(') return true;
  }
  return false;
}

// What makes an Excel formula reach outside the workbook or run code:
// DDE ("cmd|' /c calc'!A0"), references to other workbooks ("[1]Sheet!A1",
// kept as an index into externalReferences), and the functions that fetch
// (WEBSERVICE, IMAGE, RTD), link (HYPERLINK) or call code (CALL, REGISTER,
// EXEC). The cell keeps its last computed value.
std::optional<Finding> formula_danger(std::string_view formula) {
  std::string s = upper_outside_strings(formula);
  for (std::string_view prefix : {"_XLFN.", "_XLWS."}) {
    for (std::size_t p = s.find(prefix); p != std::string::npos; p = s.find(prefix, p)) s.erase(p, prefix.size());
  }
  if (s.find('|') != std::string::npos) return Finding::Dde;
  for (std::size_t p = s.find('['); p != std::string::npos; p = s.find('[', p + 1)) {
    std::size_t q = p + 1;
    while (q < s.size() && std::isdigit(static_cast<unsigned char>(s[q]))) ++q;
    if (q > p + 1 && q < s.size() && s[q] == ']') return Finding::External;
  }
  for (std::string_view f : {"WEBSERVICE", "IMAGE", "RTD"})
    if (calls(s, f)) return Finding::External;
  for (std::string_view f : {"CALL", "REGISTER", "REGISTER.ID", "EXEC"})
    if (calls(s, f)) return Finding::Xlm;
  if (calls(s, "HYPERLINK")) return Finding::Hyperlinks;
  return std::nullopt;
}

// ---- scrubbing one XML part ----

struct ScrubContext {
  Family family;
  std::string rel_type;  // canonical type of the relationship that reached the part
  const std::unordered_set<std::string>& kept_ids;
  Findings& findings;
  bool workbook_empty = false;  // set when no worksheet is left
};

bool rel_is(const ScrubContext& c, std::string_view suffix) {
  return c.rel_type == std::string(kRelPrefix) + std::string(suffix);
}

// Removes every node of `doomed` once: a node inside another doomed node
// goes with it.
void remove_all(const std::set<xmlNode*>& doomed) {
  std::vector<xmlNode*> outermost;
  for (xmlNode* n : doomed) {
    bool inside = false;
    for (xmlNode* a = n->parent; a && !inside; a = a->parent) inside = doomed.count(a) != 0;
    if (!inside) outermost.push_back(n);
  }
  for (xmlNode* n : outermost) remove_node(n);
}

void collect(xmlNode* n, std::vector<xmlNode*>& out, std::string_view ns, std::string_view name) {
  for (xmlNode* c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (is(*c, ns, name)) out.push_back(c);
    collect(c, out, ns, name);
  }
}

// -- Word fields --
//
// A complex field is a run of w:fldChar begin, w:instrText (the
// instruction), an optional w:fldChar separate, the result, and w:fldChar
// end; it can span paragraphs and nest. The field type is the first word of
// the instruction, which must be literal text: an instruction that starts
// with a nested field (a field type computed by another field) is removed.
// A removed field loses its markers and instruction; its result stays as
// ordinary text.
class WordFields {
 public:
  explicit WordFields(Findings& findings) : findings_(findings) {}

  void run(xmlNode* root) {
    std::vector<xmlNode*> items;
    gather(root, items);
    for (xmlNode* e : items) step(e);
    while (!stack_.empty()) {
      // A field that never ends: Word would not show it as a field either.
      Field f = std::move(stack_.back());
      stack_.pop_back();
      discard(f);
      findings_.add(Finding::Fields);
      adopt(f);
    }
    remove_all(doomed_);
  }

 private:
  struct Field {
    xmlNode* begin = nullptr;
    xmlNode* separate = nullptr;
    xmlNode* end = nullptr;
    std::string instruction;
    bool literal_seen = false;    // some instruction text before any nested field
    bool computed_type = false;   // a nested field came first
    bool in_result = false;
    std::vector<xmlNode*> instruction_nodes;  // everything in the instruction, nested fields included
    std::vector<xmlNode*> all_nodes;          // everything from begin to end
  };

  // Run content in document order: every child of every w:r except w:rPr.
  static void gather(xmlNode* n, std::vector<xmlNode*>& out) {
    for (xmlNode* c = n->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE) continue;
      if (is(*c, kNsW, "r")) {
        for (xmlNode* rc = c->children; rc; rc = rc->next)
          if (rc->type == XML_ELEMENT_NODE && !is(*rc, kNsW, "rPr")) out.push_back(rc);
      }
      gather(c, out);
    }
  }

  void step(xmlNode* e) {
    if (!stack_.empty()) stack_.back().all_nodes.push_back(e);
    if (is(*e, kNsW, "fldChar")) {
      std::string type = attribute(*e, kNsW, "fldCharType").value_or("");
      if (type.empty())
        if (auto strict = attribute(*e, "http://purl.oclc.org/ooxml/wordprocessingml/main", "fldCharType"))
          type = *strict;
      if (type == "begin") {
        if (!stack_.empty()) stack_.back().all_nodes.pop_back();  // belongs to the new field
        if (!stack_.empty() && !stack_.back().in_result && !stack_.back().literal_seen)
          stack_.back().computed_type = true;
        Field f;
        f.begin = e;
        f.all_nodes.push_back(e);
        stack_.push_back(std::move(f));
      } else if (type == "separate") {
        if (stack_.empty()) {
          doomed_.insert(e);
        } else {
          stack_.back().separate = e;
          stack_.back().in_result = true;
        }
      } else if (type == "end") {
        if (stack_.empty()) {
          doomed_.insert(e);
          return;
        }
        Field f = std::move(stack_.back());
        stack_.pop_back();
        f.end = e;
        finish(f);
        adopt(f);
      }
      return;
    }
    if (is(*e, kNsW, "instrText") || is(*e, kNsW, "delInstrText")) {
      if (stack_.empty() || stack_.back().in_result) {
        doomed_.insert(e);  // an instruction outside any field is meaningless
        return;
      }
      std::string text = text_content(*e);
      Field& f = stack_.back();
      f.instruction += text;
      if (text.find_first_not_of(" \t\r\n") != std::string::npos) f.literal_seen = true;
      f.instruction_nodes.push_back(e);
      return;
    }
    if (!stack_.empty() && !stack_.back().in_result) stack_.back().instruction_nodes.push_back(e);
  }

  void finish(Field& f) {
    const bool allowed = !f.computed_type && field_allowed(f.instruction);
    if (allowed) {
      // Kept fields lose what only code uses: binary field data and the
      // entry/exit macros of form fields.
      for (xmlNode* c = f.begin->children; c; c = c->next) {
        if (is(*c, kNsW, "fldData")) doomed_.insert(c);
        if (is(*c, kNsW, "ffData")) {
          for (xmlNode* m = c->children; m; m = m->next)
            if (is(*m, kNsW, "entryMacro") || is(*m, kNsW, "exitMacro")) {
              doomed_.insert(m);
              findings_.add(Finding::Macros);
            }
        }
      }
      return;
    }
    discard(f);
    if (field_is_dde(f.instruction))
      findings_.add(Finding::Dde);
    else if (field_type(f.instruction) == "HYPERLINK")
      findings_.add(Finding::Hyperlinks);
    else
      findings_.add(Finding::Fields);
  }

  void discard(const Field& f) {
    if (f.begin) doomed_.insert(f.begin);
    if (f.separate) doomed_.insert(f.separate);
    if (f.end) doomed_.insert(f.end);
    for (xmlNode* n : f.instruction_nodes) doomed_.insert(n);
  }

  // A finished field's nodes are part of the enclosing field (and of its
  // instruction, when the field sits in the instruction).
  void adopt(const Field& f) {
    if (stack_.empty()) return;
    Field& parent = stack_.back();
    parent.all_nodes.insert(parent.all_nodes.end(), f.all_nodes.begin(), f.all_nodes.end());
    if (!parent.in_result)
      parent.instruction_nodes.insert(parent.instruction_nodes.end(), f.all_nodes.begin(), f.all_nodes.end());
  }

  Findings& findings_;
  std::vector<Field> stack_;
  std::set<xmlNode*> doomed_;
};

// -- Excel workbook: sheets, names, views --

bool auto_run_name(std::string name) {
  name = ascii_lower(name);
  if (name.starts_with("_xlnm.")) name.erase(0, 6);
  for (std::string_view prefix : {"auto_open", "auto_close", "auto_activate", "auto_deactivate"})
    if (name.starts_with(prefix)) return true;
  return false;
}

bool flag_set(const xmlNode& n, const char* name) {
  auto v = attribute(n, "", name);
  return v && (*v == "1" || *v == "true");
}

void set_attribute(xmlNode* n, const char* name, const std::string& value) {
  xmlSetProp(n, xml_str(name), xml_str(value.c_str()));
}

void scrub_workbook(xmlNode* root, ScrubContext& c) {
  std::vector<int> removed;  // indexes of removed sheets, ascending
  int total = 0;
  xmlNode* sheets = nullptr;
  for (xmlNode* n = root->children; n; n = n->next)
    if (is(*n, kNsX, "sheets")) sheets = n;
  if (sheets) {
    int index = 0;
    for (xmlNode* s = sheets->children; s;) {
      xmlNode* next = s->next;
      if (is(*s, kNsX, "sheet")) {
        ++total;
        auto id = attribute(*s, kNsR, "id");
        if (!id) id = attribute(*s, "http://purl.oclc.org/ooxml/officeDocument/relationships", "id");
        if (!id || !c.kept_ids.count(*id)) {
          removed.push_back(index);
          remove_node(s);
        }
        ++index;
      }
      s = next;
    }
  }
  const int remaining = total - static_cast<int>(removed.size());
  if (remaining <= 0) {
    c.workbook_empty = true;
    return;
  }
  auto shift = [&](int old) {
    int below = 0;
    for (int r : removed)
      if (r < old) ++below;
    return old - below;
  };
  auto was_removed = [&](int i) { return std::find(removed.begin(), removed.end(), i) != removed.end(); };
  // Excel refuses a workbook whose sheets are all hidden.
  if (sheets) {
    bool visible = false;
    xmlNode* first = nullptr;
    for (xmlNode* s = sheets->children; s; s = s->next) {
      if (!is(*s, kNsX, "sheet")) continue;
      if (!first) first = s;
      auto state = attribute(*s, "", "state");
      if (!state || *state == "visible") visible = true;
    }
    if (!visible && first) xmlUnsetProp(first, xml_str("state"));
  }
  for (xmlNode* n = root->children; n; n = n->next) {
    if (is(*n, kNsX, "definedNames")) {
      for (xmlNode* d = n->children; d;) {
        xmlNode* next = d->next;
        if (is(*d, kNsX, "definedName")) {
          bool drop = false;
          const std::string name = attribute(*d, "", "name").value_or("");
          if (auto_run_name(name) || flag_set(*d, "function") || flag_set(*d, "vbProcedure") || flag_set(*d, "xlm")) {
            c.findings.add(Finding::Xlm);
            drop = true;
          } else if (auto danger = formula_danger(text_content(*d))) {
            c.findings.add(*danger);
            drop = true;
          } else if (auto local = attribute(*d, "", "localSheetId")) {
            int id = std::atoi(local->c_str());
            if (was_removed(id))
              drop = true;
            else if (shift(id) != id)
              set_attribute(d, "localSheetId", std::to_string(shift(id)));
          }
          if (drop) remove_node(d);
        }
        d = next;
      }
    } else if (is(*n, kNsX, "bookViews")) {
      for (xmlNode* v = n->children; v; v = v->next) {
        if (!is(*v, kNsX, "workbookView")) continue;
        for (const char* a : {"activeTab", "firstSheet"}) {
          if (auto value = attribute(*v, "", a)) {
            int t = std::clamp(shift(std::atoi(value->c_str())), 0, remaining - 1);
            set_attribute(v, a, std::to_string(t));
          }
        }
      }
    }
  }
}

// -- Excel worksheet: formulas --

void scrub_formulas(xmlNode* root, ScrubContext& c) {
  std::vector<xmlNode*> formulas;
  collect(root, formulas, kNsX, "f");
  std::set<std::string> removed_shared;
  std::vector<xmlNode*> doomed;
  for (xmlNode* f : formulas) {
    if (auto danger = formula_danger(text_content(*f))) {
      c.findings.add(*danger);
      doomed.push_back(f);
      if (attribute(*f, "", "t").value_or("") == "shared")
        if (auto si = attribute(*f, "", "si")) removed_shared.insert(*si);
    }
  }
  // Cells that share a removed formula would point at nothing.
  for (xmlNode* f : formulas) {
    if (std::find(doomed.begin(), doomed.end(), f) != doomed.end()) continue;
    if (attribute(*f, "", "t").value_or("") == "shared")
      if (auto si = attribute(*f, "", "si"); si && removed_shared.count(*si)) doomed.push_back(f);
  }
  for (xmlNode* f : doomed) remove_node(f);
}

// -- Excel VML: comments stay, form controls go --

void scrub_excel_vml(xmlNode* root, ScrubContext& c) {
  std::vector<xmlNode*> data;
  collect(root, data, kNsXv, "ClientData");
  std::set<xmlNode*> doomed;
  for (xmlNode* d : data) {
    const std::string type = attribute(*d, "", "ObjectType").value_or("");
    if (type == "Note") continue;
    // "Pict" is the picture of an OLE object (counted with the object);
    // buttons, check boxes and lists run macros through x:FmlaMacro.
    if (type == "Movie")
      c.findings.add(Finding::Media);
    else if (type != "Pict")
      c.findings.add(Finding::ActiveX);
    doomed.insert(d->parent && d->parent->type == XML_ELEMENT_NODE && d->parent != root ? d->parent : d);
  }
  remove_all(doomed);
}

// -- PowerPoint: OLE frames and animation commands --

void scrub_slide(xmlNode* root, ScrubContext& c) {
  std::vector<xmlNode*> objects;
  collect(root, objects, kNsP, "oleObj");
  std::set<xmlNode*> frames;
  for (xmlNode* o : objects) {
    xmlNode* frame = o->parent;
    while (frame && !is(*frame, kNsP, "graphicFrame")) frame = frame->parent;
    if (frame) frames.insert(frame);
  }
  for (xmlNode* frame : frames) {
    // The object's picture (p:pic inside p:oleObj) takes the frame's place,
    // so the slide still shows what the object looked like.
    std::vector<xmlNode*> ole;
    collect(frame, ole, kNsP, "oleObj");
    xmlNode* picture = nullptr;
    for (xmlNode* o : ole)
      for (xmlNode* p = o->children; p && !picture; p = p->next)
        if (is(*p, kNsP, "pic")) picture = p;
    if (picture) {
      xmlUnlinkNode(picture);
      xmlAddPrevSibling(frame, picture);
    }
    remove_node(frame);
  }
  std::vector<xmlNode*> timing;
  collect(root, timing, kNsP, "timing");
  for (xmlNode* t : timing) {
    std::vector<xmlNode*> commands;
    collect(t, commands, kNsP, "cmd");
    // "verb" runs an OLE verb, "call" a macro; removing one node would
    // leave an animation tree PowerPoint rejects, so the timing goes.
    if (!commands.empty()) {
      c.findings.add(Finding::Events);
      remove_node(t);
    }
  }
}

// -- what every XML part goes through --

enum class Verdict { Keep, Remove, Unwrap };

bool allowed_action(std::string_view action) {
  if (action.empty()) return true;
  for (std::string_view ok : {"ppaction://hlinkshowjump", "ppaction://hlinksldjump", "ppaction://customshow",
                              "ppaction://noaction"})
    if (action.starts_with(ok)) return true;
  return false;
}

bool looks_external(std::string_view v) {
  return v.find(':') != std::string_view::npos || v.starts_with("\\\\") || v.starts_with("//");
}

class Scrubber {
 public:
  explicit Scrubber(ScrubContext& c) : c_(c) {}

  void run(xmlNode* root) {
    walk(root);
    tidy(root);
  }

 private:
  void walk(xmlNode* parent) {
    for (xmlNode* n = parent->children; n;) {
      xmlNode* next = n->next;
      if (n->type == XML_PI_NODE || n->type == XML_COMMENT_NODE) {
        remove_node(n);
      } else if (n->type == XML_ELEMENT_NODE) {
        switch (decide(n)) {
          case Verdict::Remove:
            remove_node(n);
            break;
          case Verdict::Unwrap:
            walk(n);
            unwrap_node(n);
            break;
          case Verdict::Keep:
            walk(n);
            break;
        }
      }
      n = next;
    }
  }

  Verdict decide(xmlNode* n) {
    // References to relationships that were not kept.
    bool dangling = false;
    for (xmlAttr* a = n->properties; a;) {
      xmlAttr* next = a->next;
      if (canonical_ns(ns_of(*a)) == kNsR) {
        const std::string v = attribute_value(*a);
        if (!v.empty() && !c_.kept_ids.count(v)) {
          if (local_name(*a) == "link")
            xmlRemoveProp(a);  // a linked picture: the embedded copy, if any, stays
          else
            dangling = true;
        }
      }
      a = next;
    }
    const std::string_view ns = canonical_ns(ns_of(*n));
    const std::string_view name = local_name(*n);
    if (dangling) {
      if (ns == kNsW && name == "hyperlink") {
        for (xmlAttr* a = n->properties; a;) {
          xmlAttr* next = a->next;
          if (canonical_ns(ns_of(*a)) == kNsR) xmlRemoveProp(a);
          a = next;
        }
        return attribute(*n, kNsW, "anchor") ? Verdict::Keep : Verdict::Unwrap;
      }
      return Verdict::Remove;
    }
    if (ns == kNsV || ns == kNsO) {
      if (auto relid = attribute(*n, kNsO, "relid"); relid && !relid->empty() && !c_.kept_ids.count(*relid))
        return Verdict::Remove;
      // VML links and source paths: hyperlinks on shapes, original file names.
      for (xmlAttr* a = n->properties; a;) {
        xmlAttr* next = a->next;
        const std::string_view an = local_name(*a);
        const std::string_view ans = ns_of(*a);
        if ((an == "href" || an == "src") && (ans.empty() || ans == kNsO)) {
          if (looks_external(attribute_value(*a))) c_.findings.add(an == "href" ? Finding::Hyperlinks : Finding::External);
          xmlRemoveProp(a);
        }
        a = next;
      }
      if (ns == kNsO && name == "OLEObject") return Verdict::Remove;
    }
    if (ns == kNsW) {
      if (name == "attachedTemplate" || name == "saveThroughXslt" || name == "subDoc") {
        c_.findings.add(Finding::External);
        return Verdict::Remove;
      }
      if (name == "mailMerge") {
        c_.findings.add(Finding::External);
        return Verdict::Remove;
      }
      if (name == "docVars" || name == "updateFields" || name == "dataBinding" || name == "fldData")
        return Verdict::Remove;
      if (name == "control" || name == "altChunk" || name == "objectEmbed" || name == "objectLink")
        return Verdict::Remove;
      if (name == "entryMacro" || name == "exitMacro") {
        c_.findings.add(Finding::Macros);
        return Verdict::Remove;
      }
      if (name == "instrText" || name == "delInstrText") return Verdict::Keep;
      if (name == "fldSimple") {
        const std::string instr = attribute(*n, kNsW, "instr").value_or("");
        if (field_allowed(instr)) return Verdict::Keep;
        if (field_is_dde(instr))
          c_.findings.add(Finding::Dde);
        else if (field_type(instr) == "HYPERLINK")
          c_.findings.add(Finding::Hyperlinks);
        else
          c_.findings.add(Finding::Fields);
        return Verdict::Unwrap;
      }
    }
    if (ns == kNsX) {
      if (name == "oleObjects" || name == "controls" || name == "oleSize") return Verdict::Remove;
      if (name == "webPublishItems" || name == "webPublishObjects" || name == "webPublishing") return Verdict::Remove;
      if (name == "externalReferences") return Verdict::Remove;
    }
    if (ns == kNsP) {
      if (name == "controls" || name == "embeddedFontLst") return Verdict::Remove;
    }
    if (ns == kNsA && (name == "hlinkClick" || name == "hlinkHover" || name == "hlinkMouseOver")) {
      if (!allowed_action(attribute(*n, "", "action").value_or(""))) {
        c_.findings.add(Finding::Events);
        return Verdict::Remove;
      }
    }
    if (ns == kNsXm && (name == "macrosheet" || name == "dialogsheet")) return Verdict::Remove;
    return Verdict::Keep;
  }

  // After removals: containers that must not be empty, and markup
  // compatibility blocks whose choices are gone.
  void tidy(xmlNode* parent) {
    for (xmlNode* n = parent->children; n;) {
      xmlNode* next = n->next;
      if (n->type == XML_ELEMENT_NODE) {
        tidy(n);
        const std::string_view ns = canonical_ns(ns_of(*n));
        const std::string_view name = local_name(*n);
        if (ns == kNsMc && name == "AlternateContent") {
          tidy_alternate(n);
        } else if (!has_element_children(*n) && must_not_be_empty(ns, name)) {
          remove_node(n);
        }
      }
      n = next;
    }
  }

  static bool must_not_be_empty(std::string_view ns, std::string_view name) {
    if (ns == kNsX)
      return name == "hyperlinks" || name == "pivotCaches" || name == "definedNames" || name == "tableParts";
    if (ns == kNsP) return name == "custDataLst" || name == "sndAc" || name == "stSnd" || name == "tagLst";
    return false;
  }

  static void tidy_alternate(xmlNode* ac) {
    xmlNode* fallback = nullptr;
    bool choice = false;
    for (xmlNode* c = ac->children; c;) {
      xmlNode* next = c->next;
      if (is(*c, kNsMc, "Choice")) {
        if (has_element_children(*c))
          choice = true;
        else
          remove_node(c);
      } else if (is(*c, kNsMc, "Fallback")) {
        fallback = c;
      }
      c = next;
    }
    if (choice) return;
    // No choice left: what the fallback says is what every reader shows.
    if (fallback) {
      unwrap_node(fallback);
      unwrap_node(ac);
    } else {
      remove_node(ac);
    }
  }

  ScrubContext& c_;
};

// ---- the rebuild ----

struct Part {
  std::size_t member = 0;       // index into Package::members
  std::string content_type;     // as declared
  PartKind kind = PartKind::Xml;
  std::string rel_type;         // canonical type of the first relationship that reached it
  XmlDocPtr doc;
  std::vector<Relationship> rels;  // kept relationships from this part
};

class OoxmlRebuild {
 public:
  explicit OoxmlRebuild(const ZipLimits& limits) : limits_(limits) {}

  RebuildResult run(std::string_view bytes) {
    ZipReadResult zip = read_zip(bytes, limits_);
    if (zip.status != ZipReadResult::Status::Ok) return zip_failure(zip);
    pkg_.members = std::move(zip.members);
    for (std::size_t i = 0; i < pkg_.members.size(); ++i) pkg_.by_name.emplace(ascii_lower(pkg_.members[i].name), i);
    if (auto r = read_content_types(pkg_)) return blocked(*r);

    // The root relationships name the main part; its content type says
    // which format this is.
    const ZipMember* root_rels = pkg_.find("_rels/.rels");
    if (!root_rels)
      return blocked({"office.unparseable", "Office 文書の関係定義 (_rels/.rels) がないため遮断しました",
                      "blocked: the package has no _rels/.rels, so it is not a valid Office document"});
    std::vector<Relationship> rels;
    if (auto r = read_relationships(*root_rels, rels)) return blocked(*r);
    std::string main_name;
    std::string main_ct;
    for (const Relationship& rel : rels) {
      if (rel.external || rel.canonical_type != std::string(kRelPrefix) + "officeDocument") continue;
      if (auto part = resolve_target("", rel.target); part && pkg_.find(*part)) {
        main_name = pkg_.find(*part)->name;
        main_ct = pkg_.content_type(main_name).value_or("");
        break;
      }
    }
    if (auto reason = unsupported_main_type(main_ct)) return unsupported(*reason);
    main_type_ = find_main_type(main_ct);
    if (!main_type_)
      return unsupported({"office.unsupported",
                          "Word・Excel・PowerPoint の文書ではない形式 (XPS など) のため削除しました",
                          "removed: not a Word, Excel or PowerPoint document (for example XPS)"});

    main_name_ = main_name;
    std::vector<Relationship> kept_root;
    if (auto r = follow("", rels, kept_root)) return blocked(*r);
    if (std::none_of(kept_root.begin(), kept_root.end(),
                     [&](const Relationship& k) { return ascii_lower(k.part) == ascii_lower(main_name); }))
      return blocked({"office.unparseable", "Office 文書の本体が見つからないため遮断しました",
                      "blocked: the main part of the document is missing or unusable"});
    while (!queue_.empty()) {
      if (limits_.deadline && std::chrono::steady_clock::now() > *limits_.deadline)
        return blocked({"office.limits.time", "処理時間の上限を超えたため遮断しました",
                        "blocked: processing took longer than the time limit"});
      std::string name = queue_.front();
      queue_.pop_front();
      Part& part = parts_.at(ascii_lower(name));
      if (part.kind == PartKind::Image) continue;
      const ZipMember* rels_member = pkg_.find(rels_name_for(name));
      if (!rels_member) continue;
      std::vector<Relationship> part_rels;
      if (auto r = read_relationships(*rels_member, part_rels)) return blocked(*r);
      std::vector<Relationship> kept;
      if (auto r = follow(name, part_rels, kept)) return blocked(*r);
      parts_.at(ascii_lower(name)).rels = std::move(kept);
    }

    // Scrub every kept XML part against the relationships it kept.
    for (auto& [key, part] : parts_) {
      if (part.kind == PartKind::Image) continue;
      std::unordered_set<std::string> ids;
      for (const Relationship& r : part.rels) ids.insert(r.id);
      ScrubContext context{main_type_->family, part.rel_type, ids, findings_};
      xmlNode* root = xmlDocGetRootElement(part.doc.get());
      scrub_part(root, context, key == ascii_lower(main_name));
      if (context.workbook_empty)
        return unsupported({"office.empty",
                            "ブックにマクロシート以外のシートがなく、無害化すると何も残らないため削除しました",
                            "removed: the workbook holds nothing but macro sheets, so nothing would be left"});
    }
    return write(root_rels->name, kept_root, main_name);
  }

 private:
  // Decides, for each relationship of `source`, whether it stays; new parts
  // it reaches are queued.
  std::optional<Reason> follow(const std::string& source, const std::vector<Relationship>& rels,
                               std::vector<Relationship>& kept) {
    for (const Relationship& in : rels) {
      if (in.external) {
        findings_.add(in.canonical_type == std::string(kRelPrefix) + "hyperlink" ? Finding::Hyperlinks
                                                                                 : Finding::External);
        continue;
      }
      std::optional<std::string> target = resolve_target(source, in.target);
      const ZipMember* member = target ? pkg_.find(*target) : nullptr;
      // Only the one main part named by the package root is "the document".
      const bool main = source.empty() && in.canonical_type == std::string(kRelPrefix) + "officeDocument" &&
                        member && member->name == main_name_;
      std::optional<PartKind> kind = main ? std::optional(PartKind::Xml) : kept_kind(in.canonical_type);
      if (!kind) {
        Finding why = dropped_finding(in.canonical_type);
        // An external workbook link that is really a DDE link
        // (<ddeLink ddeService="cmd" ...>) is reported as DDE.
        if (why == Finding::External && member && member->data.find("ddeLink") != std::string::npos)
          why = Finding::Dde;
        findings_.add(why);
        continue;
      }
      if (*kind == PartKind::Vml && main_type_->family != Family::Excel) {
        // Word and PowerPoint keep VML only for OLE and ActiveX previews.
        findings_.add(Finding::Hidden);
        continue;
      }
      if (!member || member->name == "[Content_Types].xml" || ascii_lower(member->name).ends_with(".rels"))
        continue;  // dangling: nothing to keep
      Relationship rel = in;
      rel.part = member->name;
      const std::string key = ascii_lower(member->name);
      auto existing = parts_.find(key);
      if (existing != parts_.end()) {
        if (existing->second.kind != *kind) continue;  // one part, two natures: keep the first
        kept.push_back(std::move(rel));
        continue;
      }
      if (rejected_.count(key)) continue;
      std::optional<Finding> rejection;
      if (auto error = admit(*member, *kind, rel.canonical_type, main, rejection)) return error;
      if (rejection) {
        rejected_.insert(key);
        findings_.add(*rejection);
        continue;
      }
      kept.push_back(std::move(rel));
    }
    return std::nullopt;
  }

  // Checks a newly reached part: content type, bytes, root element. Sets
  // `rejection` when the part is left out; returns a reason when the whole
  // document must be blocked.
  std::optional<Reason> admit(const ZipMember& member, PartKind kind, const std::string& rel_type, bool main,
                              std::optional<Finding>& rejection) {
    std::optional<std::string> ct = pkg_.content_type(member.name);
    if (!ct) {
      rejection = Finding::Hidden;
      return std::nullopt;
    }
    const std::string lct = ascii_lower(*ct);
    Part part;
    part.member = static_cast<std::size_t>(&member - pkg_.members.data());
    part.content_type = *ct;
    part.kind = kind;
    part.rel_type = rel_type;
    if (kind == PartKind::Image) {
      if (!image_bytes_match(lct, member.data)) {
        rejection = Finding::Images;
        return std::nullopt;
      }
    } else {
      const bool xml_type = kind == PartKind::Vml ? lct == kVmlContentType : is_xml_content_type(lct);
      // An XML relationship pointing at a macro, control or object part.
      if (!xml_type || contains(lct, "vba") || contains(lct, "activex") || contains(lct, "oleobject") ||
          contains(lct, "macrosheet") || contains(lct, "dialogsheet") ||
          (!main && contains(lct, "macroenabled"))) {
        rejection = xml_type ? dropped_finding(lct) : Finding::Hidden;
        if (*rejection == Finding::Hidden && contains(lct, "macro")) rejection = Finding::Macros;
        return std::nullopt;
      }
      XmlParse parsed = parse_xml(member.data);
      if (parsed.status == XmlParse::Status::Doctype) return doctype_reason(member.name);
      if (parsed.status != XmlParse::Status::Ok) {
        if (kind == PartKind::Vml) {
          // Excel's VML is not always well-formed; without it only the
          // comment boxes lose their shape.
          rejection = Finding::Hidden;
          return std::nullopt;
        }
        return malformed_reason(member.name);
      }
      const xmlNode& root = *xmlDocGetRootElement(parsed.doc.get());
      if (auto why = wrong_root(root, rel_type, main)) {
        if (*why == Finding::Xlm) {
          rejection = Finding::Xlm;
          return std::nullopt;
        }
        return Reason{"office.unexpected_part",
                         "文書の部品「" + member.name + "」の中身が種類の宣言と一致しないため遮断しました",
                         "blocked: the part \"" + member.name + "\" is not what its relationship declares"};
      }
      part.doc = std::move(parsed.doc);
    }
    parts_.emplace(ascii_lower(member.name), std::move(part));
    queue_.push_back(member.name);
    return std::nullopt;
  }

  // Nothing when the root element fits; Xlm for an Excel 4.0 macro sheet
  // posing as a worksheet; Hidden for any other mismatch.
  std::optional<Finding> wrong_root(const xmlNode& root, const std::string& rel_type, bool main) const {
    const std::string_view ns = canonical_ns(ns_of(root));
    const std::string_view name = local_name(root);
    if (ns == kNsXm && (name == "macrosheet" || name == "dialogsheet")) return Finding::Xlm;
    if (main) {
      switch (main_type_->family) {
        case Family::Word:
          return ns == kNsW && name == "document" ? std::nullopt : std::optional(Finding::Hidden);
        case Family::Excel:
          return ns == kNsX && name == "workbook" ? std::nullopt : std::optional(Finding::Hidden);
        case Family::Presentation:
          return ns == kNsP && name == "presentation" ? std::nullopt : std::optional(Finding::Hidden);
      }
    }
    if (!rel_type.starts_with(kRelPrefix)) return std::nullopt;
    const std::string_view suffix = std::string_view(rel_type).substr(kRelPrefix.size());
    for (const ExpectedRoot& e : kExpectedRoots)
      if (e.rel == suffix) return ns == e.ns && name == e.name ? std::nullopt : std::optional(Finding::Hidden);
    if (suffix == "styles")
      return (ns == kNsW && name == "styles") || (ns == kNsX && name == "styleSheet") ? std::nullopt
                                                                                       : std::optional(Finding::Hidden);
    return std::nullopt;
  }

  void scrub_part(xmlNode* root, ScrubContext& c, bool main) {
    const std::string_view ns = canonical_ns(ns_of(*root));
    if (ns == kNsW) WordFields(c.findings).run(root);
    if (main && c.family == Family::Excel) scrub_workbook(root, c);
    if (ns == kNsX && local_name(*root) == "worksheet") scrub_formulas(root, c);
    if (rel_is(c, "vmlDrawing")) scrub_excel_vml(root, c);
    if (ns == kNsP) scrub_slide(root, c);
    Scrubber(c).run(root);
  }

  RebuildResult write(const std::string& root_rels_name, const std::vector<Relationship>& root_rels,
                      const std::string& main_name) {
    RebuildResult result;
    result.findings = findings_;
    result.mime_type = std::string(main_type_->mime);
    result.extension = std::string(main_type_->ext_out);
    result.input_extension = std::string(main_type_->ext_in);

    // Content types: defaults for .rels and .xml, an override for every part.
    std::string types =
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
        "<Default Extension=\"rels\" ContentType=\"" + std::string(kRelsContentType) + "\"/>"
        "<Default Extension=\"xml\" ContentType=\"application/xml\"/>";
    std::vector<std::pair<std::size_t, std::string>> outputs;  // member index, bytes
    std::map<std::size_t, std::string> rels_outputs;           // rels written after their source
    for (auto& [key, part] : parts_) {
      const ZipMember& m = pkg_.members[part.member];
      std::string ct = key == ascii_lower(main_name) ? std::string(main_type_->out_content_type) : part.content_type;
      types += "<Override PartName=\"" + xml_escape(part_uri(m.name)) + "\" ContentType=\"" + xml_escape(ct) + "\"/>";
      if (part.kind == PartKind::Image)
        outputs.emplace_back(part.member, m.data);
      else
        outputs.emplace_back(part.member, serialize_xml(*part.doc));
      if (!part.rels.empty()) rels_outputs.emplace(part.member, relationships_xml(part.rels));
    }
    types += "</Types>";
    std::sort(outputs.begin(), outputs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });

    std::vector<ZipOutMember> out;
    out.push_back({"[Content_Types].xml", types, false});
    const std::string root_xml = relationships_xml(root_rels);
    out.push_back({root_rels_name, root_xml, false});
    for (const auto& [index, data] : outputs) {
      const ZipMember& m = pkg_.members[index];
      out.push_back({m.name, data, false});
      auto r = rels_outputs.find(index);
      if (r != rels_outputs.end()) {
        out.push_back({rels_name_for(m.name), r->second, false});
      }
    }
    result.bytes = write_zip(out);
    result.status = RebuildResult::Status::Rebuilt;
    return result;
  }

  const ZipLimits& limits_;
  Package pkg_;
  const MainType* main_type_ = nullptr;
  std::string main_name_;
  std::map<std::string, Part> parts_;  // lower-case name -> part
  std::unordered_set<std::string> rejected_;
  std::deque<std::string> queue_;
  Findings findings_;
};

}  // namespace

RebuildResult rebuild_ooxml(std::string_view bytes, const ZipLimits& limits) {
  return OoxmlRebuild(limits).run(bytes);
}

}  // namespace mukaika::office_strip
