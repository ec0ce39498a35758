#include "sanitizer.h"

#include <array>
#include <utility>

namespace mukaika {

namespace {
struct KindName {
  Kind kind;
  std::string_view name;
};
constexpr std::array<KindName, 19> kKindNames{{
    {Kind::Empty, "empty"},
    {Kind::Text, "text"},
    {Kind::Html, "html"},
    {Kind::Xml, "xml"},
    {Kind::Mail, "mail"},
    {Kind::Pdf, "pdf"},
    {Kind::Image, "image"},
    {Kind::Svg, "svg"},
    {Kind::Archive, "archive"},
    {Kind::Office, "office"},
    {Kind::OfficeLegacy, "office_legacy"},
    {Kind::Rtf, "rtf"},
    {Kind::OpenDocument, "opendocument"},
    {Kind::Encrypted, "encrypted"},
    {Kind::Executable, "executable"},
    {Kind::Script, "script"},
    {Kind::Shortcut, "shortcut"},
    {Kind::DiskImage, "disk_image"},
    {Kind::Unknown, "unknown"},
}};
}  // namespace

std::string_view to_string(Kind kind) {
  for (const auto& k : kKindNames)
    if (k.kind == kind) return k.name;
  return "unknown";
}

bool kind_from_string(std::string_view name, Kind& out) {
  for (const auto& k : kKindNames) {
    if (k.name == name) {
      out = k.kind;
      return true;
    }
  }
  return false;
}

const std::vector<Kind>& all_kinds() {
  static const std::vector<Kind> kinds = [] {
    std::vector<Kind> v;
    for (const auto& k : kKindNames) v.push_back(k.kind);
    return v;
  }();
  return kinds;
}

Outcome Outcome::keep(Reason reason) {
  Outcome o;
  o.action = Action::Keep;
  o.reason = std::move(reason);
  return o;
}

Outcome Outcome::replace(Bytes bytes, std::string type, std::string name, Reason reason, bool cosmetic) {
  Outcome o;
  o.action = Action::Replace;
  o.bytes = std::move(bytes);
  o.type = std::move(type);
  o.name = std::move(name);
  o.reason = std::move(reason);
  o.cosmetic = cosmetic;
  return o;
}

Outcome Outcome::expand(std::vector<Item> children, std::any state, Reason reason) {
  Outcome o;
  o.action = Action::Expand;
  o.children = std::move(children);
  o.state = std::move(state);
  o.reason = std::move(reason);
  return o;
}

Outcome Outcome::remove(Reason reason) {
  Outcome o;
  o.action = Action::Remove;
  o.reason = std::move(reason);
  return o;
}

Outcome Outcome::block(Reason reason) {
  Outcome o;
  o.action = Action::Block;
  o.reason = std::move(reason);
  return o;
}

Outcome Sanitizer::reassemble(const Item&, std::any&, std::vector<ItemResult>&, Context&) const {
  return Outcome::block({"internal.no_reassemble",
                         "内部エラー: この無害化処理は分解した部品を組み立て直せません",
                         "internal error: this sanitizer cannot reassemble its parts"});
}

}  // namespace mukaika
