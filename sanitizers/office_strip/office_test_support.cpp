#include "office_strip/office_test_support.h"

#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "office_strip/safe_xml.h"
#include "office_strip/zip_package.h"

namespace mukaika::office_test {
namespace {

using office_strip::ascii_lower;

void put32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::string dir_of(const std::string& name) {
  std::size_t slash = name.rfind('/');
  return slash == std::string::npos ? "" : name.substr(0, slash + 1);
}

// Resolves a relationship target the simple way tests need.
std::string resolve(const std::string& source_dir, const std::string& target) {
  std::string path = target.starts_with("/") ? target.substr(1) : source_dir + target;
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string seg = path.substr(start, slash - start);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    start = slash + 1;
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

void collect_texts(const xmlNode* n, bool odf, std::vector<std::string>& out) {
  for (const xmlNode* c = n->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    const std::string_view name = office_strip::local_name(*c);
    if (!odf && name == "t") {
      out.push_back(office_strip::text_content(*c));
    } else if (odf && (name == "p" || name == "h") &&
               office_strip::ns_of(*c) == "urn:oasis:names:tc:opendocument:xmlns:text:1.0") {
      out.push_back(office_strip::text_content(*c));
    } else {
      collect_texts(c, odf, out);
    }
  }
}

}  // namespace

std::string zip(const Members& members) {
  std::vector<office_strip::ZipOutMember> out;
  for (const auto& [name, data] : members) out.push_back({name, data, false});
  return office_strip::write_zip(out);
}

std::map<std::string, std::string> unzip(std::string_view bytes) {
  std::map<std::string, std::string> out;
  auto r = office_strip::read_zip(bytes, {});
  for (auto& m : r.members) out[m.name] = std::move(m.data);
  return out;
}

std::vector<std::string> member_names(std::string_view bytes) {
  std::vector<std::string> out;
  for (auto& m : office_strip::read_zip(bytes, {}).members) out.push_back(m.name);
  return out;
}

std::string rels(const std::vector<Rel>& list) {
  std::string s =
      "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
      "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">";
  for (const Rel& r : list) {
    std::string type = r.type.find("://") == std::string::npos ? kRel + r.type : r.type;
    s += "<Relationship Id=\"" + r.id + "\" Type=\"" + type + "\" Target=\"" + r.target + "\"" +
         (r.external ? " TargetMode=\"External\"" : "") + "/>";
  }
  return s + "</Relationships>";
}

std::string content_types(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::string s =
      "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
      "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
      "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
      "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
      "<Default Extension=\"png\" ContentType=\"image/png\"/>"
      "<Default Extension=\"emf\" ContentType=\"image/x-emf\"/>"
      "<Default Extension=\"bin\" ContentType=\"application/vnd.openxmlformats-officedocument.oleObject\"/>";
  for (const auto& [part, type] : overrides)
    s += "<Override PartName=\"/" + part + "\" ContentType=\"" + type + "\"/>";
  return s + "</Types>";
}

std::string tiny_png() {
  static const unsigned char kPng[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
      0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
      0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(kPng), sizeof kPng);
}

std::string tiny_emf() {
  std::string s;
  put32(s, 1);   // EMR_HEADER
  put32(s, 88);  // record size
  for (int i = 0; i < 8; ++i) put32(s, i % 2 ? 100 : 0);  // bounds, frame
  put32(s, 0x464D4520);  // " EMF"
  put32(s, 0x10000);     // version
  put32(s, 108);         // file size
  put32(s, 2);           // records
  put32(s, 1);           // handles (u16) + reserved (u16)
  put32(s, 0);           // description length
  put32(s, 0);           // description offset
  put32(s, 0);           // palette entries
  put32(s, 1024);        // device width, height (pixels)
  put32(s, 768);
  put32(s, 320);         // millimeters
  put32(s, 240);
  put32(s, 14);          // EMR_EOF
  put32(s, 20);
  put32(s, 0);
  put32(s, 16);
  put32(s, 20);
  return s;
}

std::vector<std::string> ooxml_problems(std::string_view bytes) {
  std::vector<std::string> problems;
  auto read = office_strip::read_zip(bytes, {});
  if (read.status != office_strip::ZipReadResult::Status::Ok) return {"not a readable zip: " + read.detail};
  std::map<std::string, std::string> members;
  for (auto& m : read.members) members[ascii_lower(m.name)] = m.data;
  if (read.members.empty() || read.members.front().name != "[Content_Types].xml")
    problems.push_back("[Content_Types].xml is not the first member");
  std::set<std::string> typed;
  std::set<std::string> default_ext;
  if (auto ct = members.find("[content_types].xml"); ct != members.end()) {
    auto parsed = office_strip::parse_xml(ct->second);
    if (parsed.status != office_strip::XmlParse::Status::Ok) {
      problems.push_back("[Content_Types].xml does not parse");
    } else {
      for (const xmlNode* n = xmlDocGetRootElement(parsed.doc.get())->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (office_strip::local_name(*n) == "Override")
          typed.insert(ascii_lower(office_strip::attribute(*n, "", "PartName").value_or("/").substr(1)));
        if (office_strip::local_name(*n) == "Default")
          default_ext.insert(ascii_lower(office_strip::attribute(*n, "", "Extension").value_or("")));
      }
    }
  }
  for (const auto& m : read.members) {
    const std::string lname = ascii_lower(m.name);
    if (lname == "[content_types].xml") continue;
    const std::size_t dot = lname.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : lname.substr(dot + 1);
    if (!typed.count(lname) && !default_ext.count(ext)) problems.push_back(m.name + " has no content type");
    const bool xml = ext == "xml" || ext == "rels" || ext == "vml";
    if (!xml) continue;
    auto parsed = office_strip::parse_xml(m.data);
    if (parsed.status != office_strip::XmlParse::Status::Ok) {
      problems.push_back(m.name + " does not parse");
      continue;
    }
    if (ext != "rels") continue;
    // "word/_rels/document.xml.rels" describes "word/document.xml".
    std::string source_dir = dir_of(m.name);
    source_dir = source_dir.substr(0, source_dir.size() - std::string("_rels/").size());
    std::string source = source_dir + m.name.substr(dir_of(m.name).size());
    source = source.substr(0, source.size() - 5);
    if (!source.empty() && !members.count(ascii_lower(source)))
      problems.push_back(m.name + " describes a missing part " + source);
    for (const xmlNode* r = xmlDocGetRootElement(parsed.doc.get())->children; r; r = r->next) {
      if (r->type != XML_ELEMENT_NODE) continue;
      if (office_strip::attribute(*r, "", "TargetMode").value_or("") == "External") {
        problems.push_back(m.name + " keeps an external relationship");
        continue;
      }
      const std::string target = resolve(source_dir, office_strip::attribute(*r, "", "Target").value_or(""));
      if (!members.count(ascii_lower(target))) problems.push_back(m.name + " points at missing " + target);
    }
  }
  return problems;
}

std::vector<std::string> odf_problems(std::string_view bytes) {
  std::vector<std::string> problems;
  auto read = office_strip::read_zip(bytes, {});
  if (read.status != office_strip::ZipReadResult::Status::Ok) return {"not a readable zip: " + read.detail};
  if (read.members.empty() || read.members.front().name != "mimetype") problems.push_back("mimetype is not first");
  // Local header of the first member: compression method 0 (stored).
  if (bytes.size() < 30 || bytes[8] != 0 || bytes[9] != 0) problems.push_back("mimetype is compressed");
  std::set<std::string> names;
  std::string manifest;
  for (const auto& m : read.members) {
    names.insert(m.name);
    if (m.name == "META-INF/manifest.xml") manifest = m.data;
    if (m.name.ends_with(".xml") && office_strip::parse_xml(m.data).status != office_strip::XmlParse::Status::Ok)
      problems.push_back(m.name + " does not parse");
  }
  auto parsed = office_strip::parse_xml(manifest);
  if (parsed.status != office_strip::XmlParse::Status::Ok) {
    problems.push_back("no usable manifest");
    return problems;
  }
  std::set<std::string> listed;
  for (const xmlNode* n = xmlDocGetRootElement(parsed.doc.get())->children; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    std::string path =
        office_strip::attribute(*n, "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0", "full-path").value_or("");
    if (path != "/") listed.insert(path);
  }
  for (const auto& n : names)
    if (n != "mimetype" && n != "META-INF/manifest.xml" && !listed.count(n))
      problems.push_back(n + " is not in the manifest");
  for (const auto& n : listed)
    if (!names.count(n)) problems.push_back("the manifest lists missing " + n);
  return problems;
}

std::vector<std::string> texts(std::string_view xml) {
  std::vector<std::string> out;
  auto parsed = office_strip::parse_xml(xml);
  if (parsed.status != office_strip::XmlParse::Status::Ok) return out;
  const xmlNode* root = xmlDocGetRootElement(parsed.doc.get());
  const bool odf = office_strip::ns_of(*root) == "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
  collect_texts(root, odf, out);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace mukaika::office_test
