// Test helpers for office.strip_active: building packages from strings and
// checking rebuilt ones without Office (see docs/policy.md for why the
// structural check stands in for opening the output in LibreOffice).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mukaika::office_test {

using Members = std::vector<std::pair<std::string, std::string>>;

// A zip holding `members` in order (deflated).
std::string zip(const Members& members);
// Every member of a zip, by name; empty when it is not a readable zip.
std::map<std::string, std::string> unzip(std::string_view bytes);
// Member names in archive order.
std::vector<std::string> member_names(std::string_view bytes);

// Well-known relationship and content types.
inline const std::string kRel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/";
inline const std::string kWordNs = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

struct Rel {
  std::string id, type, target;
  bool external = false;
};
// A .rels part. A type without "://" is taken relative to kRel.
std::string rels(const std::vector<Rel>& list);
// [Content_Types].xml with Defaults for rels, xml, png, emf and bin and the
// given overrides (part name without the leading "/", content type).
std::string content_types(const std::vector<std::pair<std::string, std::string>>& overrides);

// A minimal 1x1 PNG and an EMF header that pass the picture checks.
std::string tiny_png();
std::string tiny_emf();

// Problems with a rebuilt OOXML package, one line each (empty: none):
// [Content_Types].xml first; every part has a content type; every .rels is
// well-formed and every internal target exists; no relationship is
// External; every XML part parses.
std::vector<std::string> ooxml_problems(std::string_view bytes);
// The same for OpenDocument: mimetype first and stored, manifest lists
// exactly the members, every XML member parses.
std::vector<std::string> odf_problems(std::string_view bytes);

// Text of all elements named "t" (w:t, a:t, x:t) in one XML part, joined by
// "\n"; for ODF parts, the text of every text:p and text:h.
std::vector<std::string> texts(std::string_view xml);

// Reads a file; "" when it does not exist.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

}  // namespace mukaika::office_test
