#include "office_strip/safe_xml.h"

#include <climits>
#include <stdexcept>

#include <libxml/parser.h>

namespace mukaika::office_strip {
namespace {

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};
using ParserCtxtPtr = std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter>;

// No NOENT (entities stay references), no DTDLOAD/DTDATTR/DTDVALID (no DTD is
// read), no HUGE (libxml2's size and depth limits stay), no RECOVER (a part
// that is not well-formed is refused, not guessed at).
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;

// Called by libxml2 when it meets <!DOCTYPE ...>, before the internal subset
// is parsed: remember it and stop, so not one entity declaration is read.
void refuse_doctype(void* context, const xmlChar*, const xmlChar*, const xmlChar*) {
  auto* ctxt = static_cast<xmlParserCtxt*>(context);
  *static_cast<bool*>(ctxt->_private) = true;
  xmlStopParser(ctxt);
}

}  // namespace

XmlParse parse_xml(std::string_view bytes) {
  XmlParse result;
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) return result;
  ParserCtxtPtr ctxt(xmlNewParserCtxt());
  if (!ctxt) throw std::runtime_error("libxml2: out of memory");
  bool saw_doctype = false;
  ctxt->_private = &saw_doctype;
  ctxt->sax->internalSubset = refuse_doctype;
  XmlDocPtr doc(xmlCtxtReadMemory(ctxt.get(), bytes.data(), static_cast<int>(bytes.size()), nullptr, nullptr,
                                  kParseOptions));
  if (saw_doctype) {
    result.status = XmlParse::Status::Doctype;
    return result;
  }
  if (!doc || !ctxt->wellFormed || !xmlDocGetRootElement(doc.get())) return result;
  result.status = XmlParse::Status::Ok;
  result.doc = std::move(doc);
  return result;
}

std::string serialize_xml(xmlDoc& doc) {
  xmlChar* raw = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(&doc, &raw, &size, "UTF-8");
  XmlCharPtr owned(raw);
  if (!owned || size < 0) throw std::runtime_error("libxml2: cannot serialize a document (out of memory)");
  return std::string(reinterpret_cast<const char*>(owned.get()), static_cast<std::size_t>(size));
}

std::optional<std::string> attribute(const xmlNode& n, std::string_view ns, const char* name) {
  for (const xmlAttr* a = n.properties; a != nullptr; a = a->next) {
    if (local_name(*a) == name && ns_of(*a) == ns) return attribute_value(*a);
  }
  return std::nullopt;
}

std::string attribute_value(const xmlAttr& a) {
  std::string out;
  for (const xmlNode* c = a.children; c != nullptr; c = c->next)
    if (c->content) out += reinterpret_cast<const char*>(c->content);
  return out;
}

std::string text_content(const xmlNode& n) {
  XmlCharPtr s(xmlNodeGetContent(&n));
  return s ? std::string(reinterpret_cast<const char*>(s.get())) : std::string();
}

void remove_node(xmlNode* n) {
  xmlUnlinkNode(n);
  xmlFreeNode(n);
}

void unwrap_node(xmlNode* n) {
  xmlNode* child = n->children;
  while (child != nullptr) {
    xmlNode* next = child->next;
    xmlUnlinkNode(child);
    xmlAddPrevSibling(n, child);
    child = next;
  }
  remove_node(n);
}

bool has_element_children(const xmlNode& n) {
  for (const xmlNode* c = n.children; c != nullptr; c = c->next)
    if (c->type == XML_ELEMENT_NODE) return true;
  return false;
}

}  // namespace mukaika::office_strip
