// OpenDocument by reconstruction: see rebuild.h and docs/policy.md.
//
// A new package holds only mimetype, content.xml, styles.xml, meta.xml, the
// pictures the kept XML still shows, and a manifest written anew. Left
// behind: Basic/, Scripts/, Dialogs/ (macros), "Object N/" and
// ObjectReplacements/ (embedded objects, charts included: each is a whole
// document of its own), Configurations2/ (menus and toolbars), Thumbnails/,
// settings.xml (view and printer settings), signatures and anything else.
// In the XML: event listeners, scripts, forms and controls, linked sections
// and sheets, DDE, database fields, macro fields, plug-ins and applets,
// animation commands, and every link to outside the package (hyperlinks
// keep their text).
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "office_strip/rebuild.h"
#include "office_strip/safe_xml.h"

namespace mukaika::office_strip {
namespace {

constexpr std::string_view kNsOffice = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
constexpr std::string_view kNsText = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";
constexpr std::string_view kNsDraw = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0";
constexpr std::string_view kNsTable = "urn:oasis:names:tc:opendocument:xmlns:table:1.0";
constexpr std::string_view kNsScript = "urn:oasis:names:tc:opendocument:xmlns:script:1.0";
constexpr std::string_view kNsForm = "urn:oasis:names:tc:opendocument:xmlns:form:1.0";
constexpr std::string_view kNsPresentation = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0";
constexpr std::string_view kNsAnim = "urn:oasis:names:tc:opendocument:xmlns:animation:1.0";
constexpr std::string_view kNsXlink = "http://www.w3.org/1999/xlink";
constexpr std::string_view kNsXforms = "http://www.w3.org/2002/xforms";
constexpr std::string_view kNsSvg = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0";
constexpr std::string_view kNsManifest = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0";

struct OdfType {
  std::string_view mime;
  std::string_view ext;
};

constexpr OdfType kOdfTypes[] = {
    {"application/vnd.oasis.opendocument.text", "odt"},
    {"application/vnd.oasis.opendocument.text-template", "ott"},
    {"application/vnd.oasis.opendocument.spreadsheet", "ods"},
    {"application/vnd.oasis.opendocument.spreadsheet-template", "ots"},
    {"application/vnd.oasis.opendocument.presentation", "odp"},
    {"application/vnd.oasis.opendocument.presentation-template", "otp"},
    {"application/vnd.oasis.opendocument.graphics", "odg"},
    {"application/vnd.oasis.opendocument.graphics-template", "otg"},
};

bool is(const xmlNode& n, std::string_view ns, std::string_view name) {
  return n.type == XML_ELEMENT_NODE && ns_of(n) == ns && local_name(n) == name;
}

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && static_cast<unsigned char>(s[b]) <= ' ') ++b;
  while (e > b && static_cast<unsigned char>(s[e - 1]) <= ' ') --e;
  return std::string(s.substr(b, e - b));
}

std::optional<std::string> percent_decode(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// What an xlink:href points at.
struct Href {
  enum class Kind { Anchor, Package, Outside, Code } kind = Kind::Outside;
  std::string member;  // for Package: the member name ("Pictures/x.png")
};

Href classify_href(std::string_view raw) {
  Href h;
  const std::string v = trim(raw);
  const std::string lower = ascii_lower(v);
  for (std::string_view code : {"vnd.sun.star.script:", "vnd.sun.star.basic:", "macro:", "javascript:",
                                "vbscript:", "service:", "slot:", ".uno:"})
    if (lower.starts_with(code)) {
      h.kind = Href::Kind::Code;
      return h;
    }
  if (v.empty() || v.front() == '#') {
    h.kind = Href::Kind::Anchor;
    return h;
  }
  // A scheme, an absolute or UNC path, or "../" (relative to the package,
  // i.e. next to the file on the reader's disk): all outside.
  const std::size_t colon = v.find(':');
  const std::size_t slash = v.find('/');
  if ((colon != std::string::npos && (slash == std::string::npos || colon < slash)) || v.front() == '/' ||
      v.front() == '\\' || v.starts_with("../"))
    return h;
  std::string path = v;
  while (path.starts_with("./")) path.erase(0, 2);
  std::optional<std::string> decoded = percent_decode(path);
  if (!decoded || decoded->empty() || decoded->find("..") != std::string::npos ||
      decoded->find('\\') != std::string::npos)
    return h;
  h.kind = Href::Kind::Package;
  h.member = *decoded;
  while (!h.member.empty() && h.member.back() == '/') h.member.pop_back();
  return h;
}

// Image types we keep, by their bytes.
std::optional<std::string_view> sniff_image(std::string_view bytes) {
  for (std::string_view t : {"image/png", "image/jpeg", "image/gif", "image/bmp", "image/tiff", "image/x-emf",
                             "image/x-wmf"})
    if (image_bytes_match(t, bytes)) return t;
  return std::nullopt;
}

bool calls(const std::string& s, std::string_view function) {
  for (std::size_t pos = s.find(function); pos != std::string::npos; pos = s.find(function, pos + 1)) {
    const bool starts = pos == 0 || !(std::isalnum(static_cast<unsigned char>(s[pos - 1])) || s[pos - 1] == '_' ||
                                      s[pos - 1] == '.');
    std::size_t j = pos + function.size();
    while (j < s.size() && s[j] == ' ') ++j;
    if (starts && j < s.size() && s[j] == '(') return true;
  }
  return false;
}

// A spreadsheet formula that reaches outside: DDE(), WEBSERVICE(),
// HYPERLINK(), or a reference into another file ('file:///...'#$Sheet1.A1).
std::optional<Finding> formula_danger(std::string_view formula) {
  std::string s;
  bool in_string = false;
  for (char c : formula) {
    if (c == '"') {
      in_string = !in_string;
      continue;
    }
    if (!in_string) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (calls(s, "DDE")) return Finding::Dde;
  if (calls(s, "WEBSERVICE") || calls(s, "FILTERXML") || s.find("'FILE:") != std::string::npos ||
      s.find("'HTTP") != std::string::npos || s.find("'FTP") != std::string::npos)
    return Finding::External;
  if (calls(s, "HYPERLINK")) return Finding::Hyperlinks;
  return std::nullopt;
}

enum class Verdict { Keep, Remove, Unwrap };

class OdfScrubber {
 public:
  OdfScrubber(const std::set<std::string>& members, Findings& findings) : members_(members), findings_(findings) {}

  void run(xmlNode* root) {
    walk(root);
    tidy(root);
  }

  const std::set<std::string>& pictures() const { return pictures_; }

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

  Verdict remove(Finding f) {
    findings_.add(f);
    return Verdict::Remove;
  }

  Verdict decide(xmlNode* n) {
    const std::string_view ns = ns_of(*n);
    const std::string_view name = local_name(*n);
    // Code and events, wherever they are.
    if (ns == kNsScript) return remove(Finding::Events);
    if (name == "event-listeners" || name == "event-listener") return remove(Finding::Events);
    if (ns == kNsOffice && name == "scripts") return remove(Finding::Macros);
    if (ns == kNsText && name == "script") return remove(Finding::Macros);
    if (ns == kNsOffice && name == "forms") return remove(Finding::ActiveX);
    if (ns == kNsDraw && name == "control") return remove(Finding::ActiveX);
    if (ns == kNsForm || ns == kNsXforms) return remove(Finding::ActiveX);
    if (ns == kNsAnim && name == "command") return remove(Finding::Events);
    if (ns == kNsAnim && name == "audio") return remove(Finding::Media);
    if (ns == kNsPresentation && name == "sound") return remove(Finding::Media);
    // Embedded objects and things that run in a frame.
    if (ns == kNsDraw && (name == "object" || name == "object-ole" || name == "plugin" || name == "applet" ||
                          name == "floating-frame"))
      return remove(Finding::Embedded);
    if (ns == kNsOffice && name == "binary-data") return remove(Finding::Images);
    // Content pulled from elsewhere.
    if ((ns == kNsText && (name == "section-source" || name == "dde-connection-decls")) ||
        (ns == kNsTable && (name == "table-source" || name == "cell-range-source" || name == "dde-links" ||
                            name == "database-source-sql" || name == "database-source-query" ||
                            name == "database-source-table")) ||
        (ns == kNsOffice && name == "dde-source"))
      return remove(name.find("dde") != std::string_view::npos ? Finding::Dde : Finding::External);
    if (ns == kNsText && name == "dde-connection") {
      findings_.add(Finding::Dde);
      return Verdict::Unwrap;
    }
    if (ns == kNsText && name == "execute-macro") {
      findings_.add(Finding::Macros);
      return Verdict::Unwrap;
    }
    if (ns == kNsText && name.starts_with("database-")) {
      findings_.add(Finding::Fields);
      return Verdict::Unwrap;
    }
    // Attributes that name code ("vnd.sun.star.script:...") or formulas
    // that reach outside.
    for (xmlAttr* a = n->properties; a;) {
      xmlAttr* next = a->next;
      if (ns_of(*a) == kNsTable && local_name(*a) == "formula") {
        if (auto danger = formula_danger(attribute_value(*a))) {
          findings_.add(*danger);
          xmlRemoveProp(a);  // the cell keeps its value
        }
      } else if (!(ns_of(*a) == kNsXlink && local_name(*a) == "href")) {
        if (classify_href(attribute_value(*a)).kind == Href::Kind::Code) {
          findings_.add(Finding::Events);
          xmlRemoveProp(a);
        }
      }
      a = next;
    }
    // Links: hyperlinks lose their target and keep their text; anything
    // else that points outside the package, or at a part we left behind,
    // goes.
    if (auto href = attribute(*n, kNsXlink, "href")) {
      const Href h = classify_href(*href);
      const bool hyperlink = (ns == kNsText || ns == kNsDraw) && name == "a";
      if (hyperlink) {
        if (h.kind == Href::Kind::Anchor) return Verdict::Keep;
        findings_.add(h.kind == Href::Kind::Code ? Finding::Events : Finding::Hyperlinks);
        return Verdict::Unwrap;
      }
      switch (h.kind) {
        case Href::Kind::Anchor:
          break;
        case Href::Kind::Code:
          return remove(Finding::Events);
        case Href::Kind::Outside:
          return remove(Finding::External);
        case Href::Kind::Package:
          if (!members_.count(h.member)) return Verdict::Remove;  // a part that is not kept (or missing)
          pictures_.insert(h.member);
          break;
      }
    }
    return Verdict::Keep;
  }

  // Frames and link areas emptied by the removals above (a title or a
  // description alone shows nothing).
  void tidy(xmlNode* parent) {
    for (xmlNode* n = parent->children; n;) {
      xmlNode* next = n->next;
      if (n->type == XML_ELEMENT_NODE) {
        tidy(n);
        if ((is(*n, kNsDraw, "frame") || is(*n, kNsDraw, "a")) && !has_content(*n)) remove_node(n);
      }
      n = next;
    }
  }

  static bool has_content(const xmlNode& n) {
    for (const xmlNode* c = n.children; c; c = c->next)
      if (c->type == XML_ELEMENT_NODE && ns_of(*c) != kNsSvg) return true;
    return false;
  }

  const std::set<std::string>& members_;  // pictures that may be kept
  Findings& findings_;
  std::set<std::string> pictures_;        // pictures still referenced
};

Reason malformed(std::string_view part) {
  return {"office.malformed", "文書の部品「" + std::string(part) + "」が正しい XML でないため遮断しました",
          "blocked: the part \"" + std::string(part) + "\" is not well-formed XML"};
}

}  // namespace

RebuildResult rebuild_opendocument(std::string_view bytes, const ZipLimits& limits) {
  ZipReadResult zip = read_zip(bytes, limits);
  if (zip.status != ZipReadResult::Status::Ok) return zip_failure(zip);
  std::map<std::string, const ZipMember*> members;
  for (const ZipMember& m : zip.members) members.emplace(m.name, &m);

  // The manifest: which type this is, and whether anything is encrypted.
  auto manifest_it = members.find("META-INF/manifest.xml");
  if (manifest_it == members.end())
    return blocked({"office.unparseable", "OpenDocument の目録 (META-INF/manifest.xml) がないため遮断しました",
                    "blocked: the OpenDocument package has no META-INF/manifest.xml"});
  XmlParse manifest = parse_xml(manifest_it->second->data);
  if (manifest.status == XmlParse::Status::Doctype)
    return blocked({"office.doctype",
                    "文書の目録に DOCTYPE (エンティティ展開による攻撃 billion laughs / XXE に使われる) があるため遮断しました",
                    "blocked: the manifest has a DOCTYPE (used for billion laughs and XXE attacks)"});
  if (manifest.status != XmlParse::Status::Ok) return blocked(malformed("META-INF/manifest.xml"));
  const xmlNode* mroot = xmlDocGetRootElement(manifest.doc.get());
  if (!is(*mroot, kNsManifest, "manifest")) return blocked(malformed("META-INF/manifest.xml"));
  std::string root_type;
  std::unordered_map<std::string, std::string> media_types;
  for (const xmlNode* e = mroot->children; e; e = e->next) {
    if (!is(*e, kNsManifest, "file-entry")) continue;
    const std::string path = attribute(*e, kNsManifest, "full-path").value_or("");
    const std::string type = attribute(*e, kNsManifest, "media-type").value_or("");
    for (const xmlNode* c = e->children; c; c = c->next)
      if (is(*c, kNsManifest, "encryption-data"))
        return blocked({"office.encrypted", "パスワードで保護されていて中身を検査できないため遮断しました",
                        "blocked: password-protected, so its content cannot be inspected"});
    if (path == "/") root_type = type;
    media_types[path] = type;
  }
  std::string mime = trim(members.count("mimetype") ? members.at("mimetype")->data : root_type);
  const OdfType* type = nullptr;
  for (const OdfType& t : kOdfTypes)
    if (t.mime == mime) type = &t;
  if (!type)
    return unsupported({"office.unsupported",
                        "文書・表計算・プレゼンテーション・図形以外の OpenDocument (データベースなど) のため削除しました",
                        "removed: an OpenDocument type other than text, spreadsheet, presentation or drawing "
                        "(for example a database)"});

  RebuildResult result;
  Findings& findings = result.findings;

  // What is left behind, for the notice. Embedded objects ("Object N/")
  // are counted where content.xml shows them (draw:object).
  bool macros = false;
  for (const ZipMember& m : zip.members) {
    const std::string& n = m.name;
    if (n.starts_with("Basic/") || n.starts_with("Scripts/") || n.starts_with("Dialogs/")) {
      macros = true;
    } else if (n.starts_with("Configurations2/") && m.data.find('<') != std::string::npos &&
               n.find("accelerator") == std::string::npos) {
      findings.add(Finding::CustomUi);
    } else if (n.starts_with("Thumbnails/") || n == "settings.xml" || n == "manifest.rdf" ||
               (n.starts_with("META-INF/") && n != "META-INF/manifest.xml")) {
      findings.add(Finding::Hidden);
    }
  }
  if (macros) findings.add(Finding::Macros);

  // Pictures that may stay: in the package, not inside an object, and a
  // picture format we keep. An object's replacement picture
  // (ObjectReplacements/) stays as a picture, as Word's and PowerPoint's
  // object previews do.
  std::set<std::string> picture_members;
  std::map<std::string, std::string_view> picture_types;
  for (const ZipMember& m : zip.members) {
    if (m.name.starts_with("Object ") || m.name.starts_with("Thumbnails/") || m.name.starts_with("META-INF/") ||
        m.name.ends_with(".xml") || m.name == "mimetype")
      continue;
    if (auto t = sniff_image(m.data)) {
      picture_members.insert(m.name);
      picture_types[m.name] = *t;
    }
  }

  // The XML parts.
  struct Kept {
    std::string name;
    std::string bytes;
  };
  std::vector<Kept> xml_parts;
  std::set<std::string> shown;
  constexpr std::pair<std::string_view, std::string_view> kParts[] = {
      {"content.xml", "document-content"}, {"styles.xml", "document-styles"}, {"meta.xml", "document-meta"}};
  for (const auto& [part, root_name] : kParts) {
    auto it = members.find(std::string(part));
    if (it == members.end()) continue;
    XmlParse parsed = parse_xml(it->second->data);
    if (parsed.status == XmlParse::Status::Doctype)
      return blocked({"office.doctype",
                      "文書の部品「" + std::string(part) +
                          "」に DOCTYPE (エンティティ展開による攻撃 billion laughs / XXE に使われる) があるため遮断しました",
                      "blocked: the part \"" + std::string(part) + "\" has a DOCTYPE (used for billion laughs and XXE attacks)"});
    if (parsed.status != XmlParse::Status::Ok) return blocked(malformed(part));
    xmlNode* root = xmlDocGetRootElement(parsed.doc.get());
    if (!is(*root, kNsOffice, root_name))
      return blocked({"office.unexpected_part",
                      "文書の部品「" + std::string(part) + "」の中身が想定と違うため遮断しました",
                      "blocked: the part \"" + std::string(part) + "\" is not what its name says"});
    OdfScrubber scrubber(picture_members, findings);
    scrubber.run(root);
    shown.insert(scrubber.pictures().begin(), scrubber.pictures().end());
    xml_parts.push_back({std::string(part), serialize_xml(*parsed.doc)});
  }
  if (xml_parts.empty() || xml_parts.front().name != "content.xml")
    return blocked({"office.unparseable", "OpenDocument の本文 (content.xml) がないため遮断しました",
                    "blocked: the OpenDocument package has no content.xml"});
  // Pictures in the package that nothing shows any more (or that were
  // not a format we keep) are left behind.
  for (const ZipMember& m : zip.members)
    if (m.name.starts_with("Pictures/") && !shown.count(m.name) && !picture_members.count(m.name))
      findings.add(Finding::Images);

  // The manifest, written anew.
  std::string version = attribute(*mroot, kNsManifest, "version").value_or("");
  std::string version_attr = version.empty() ? "" : " manifest:version=\"" + xml_escape(version) + "\"";
  std::string manifest_xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"" + version_attr + ">"
      "<manifest:file-entry manifest:full-path=\"/\"" + version_attr + " manifest:media-type=\"" +
      xml_escape(type->mime) + "\"/>";
  for (const Kept& k : xml_parts)
    manifest_xml += "<manifest:file-entry manifest:full-path=\"" + xml_escape(k.name) + "\" manifest:media-type=\"text/xml\"/>";
  for (const std::string& p : shown)
    manifest_xml += "<manifest:file-entry manifest:full-path=\"" + xml_escape(p) + "\" manifest:media-type=\"" +
                    std::string(picture_types.at(p)) + "\"/>";
  manifest_xml += "</manifest:manifest>";

  std::vector<ZipOutMember> out;
  const std::string mime_bytes(type->mime);
  out.push_back({"mimetype", mime_bytes, true});  // first and stored, as ODF requires
  for (const Kept& k : xml_parts) out.push_back({k.name, k.bytes, false});
  for (const std::string& p : shown) out.push_back({p, members.at(p)->data, false});
  out.push_back({"META-INF/manifest.xml", manifest_xml, false});

  result.bytes = write_zip(out);
  result.status = RebuildResult::Status::Rebuilt;
  result.mime_type = std::string(type->mime);
  result.extension = std::string(type->ext);
  result.input_extension = std::string(type->ext);
  return result;
}

}  // namespace mukaika::office_strip
