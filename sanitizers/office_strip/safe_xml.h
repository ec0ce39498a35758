// XML parts of Office documents, parsed with libxml2 so that nothing outside
// the bytes is ever read and nothing expands.
//
// Promises: no network, no DTD loading, no entity substitution, and any
// document that has a DOCTYPE at all is refused (OOXML and ODF never carry
// one; billion laughs and XXE need one). The parser stops at the DOCTYPE, so
// the internal subset is never even read. libxml2's own limits (nesting 256,
// text nodes 10 MB) stay on.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <libxml/tree.h>
#include <libxml/xmlmemory.h>

namespace mukaika::office_strip {

struct XmlDocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocDeleter>;

struct XmlCharDeleter {
  void operator()(xmlChar* s) const { xmlFree(s); }
};
using XmlCharPtr = std::unique_ptr<xmlChar, XmlCharDeleter>;

struct XmlParse {
  enum class Status { Ok, Doctype, Malformed };
  Status status = Status::Malformed;
  XmlDocPtr doc;
};

XmlParse parse_xml(std::string_view bytes);

// UTF-8 with an XML declaration; the standalone flag is kept.
std::string serialize_xml(xmlDoc& doc);

// Small accessors that hide libxml2's xmlChar casts.
inline const xmlChar* xml_str(const char* s) { return reinterpret_cast<const xmlChar*>(s); }
inline std::string_view local_name(const xmlNode& n) {
  return n.name ? std::string_view(reinterpret_cast<const char*>(n.name)) : std::string_view();
}
inline std::string_view local_name(const xmlAttr& a) {
  return a.name ? std::string_view(reinterpret_cast<const char*>(a.name)) : std::string_view();
}
inline std::string_view ns_of(const xmlNode& n) {
  return n.ns && n.ns->href ? std::string_view(reinterpret_cast<const char*>(n.ns->href)) : std::string_view();
}
inline std::string_view ns_of(const xmlAttr& a) {
  return a.ns && a.ns->href ? std::string_view(reinterpret_cast<const char*>(a.ns->href)) : std::string_view();
}
// Value of an attribute in namespace `ns` ("" for no namespace).
std::optional<std::string> attribute(const xmlNode& n, std::string_view ns, const char* name);
std::string attribute_value(const xmlAttr& a);
// All text below `n`, in document order.
std::string text_content(const xmlNode& n);

// Unlinks and frees `n`.
void remove_node(xmlNode* n);
// Replaces `n` by its children (they move up one level), then frees `n`.
void unwrap_node(xmlNode* n);
bool has_element_children(const xmlNode& n);

}  // namespace mukaika::office_strip
