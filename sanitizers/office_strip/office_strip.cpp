// office.strip_active: see office_strip.h for what it promises and
// rebuild.h for how.
#include "office_strip/office_strip.h"

#include <string>
#include <string_view>

#include <libxml/parser.h>

#include "office_strip/rebuild.h"
#include "registry.h"

namespace mukaika {
namespace {

using office_strip::Finding;
using office_strip::RebuildResult;

// Extensions a rebuilt document may arrive with; they are replaced by the
// output's. Any other name keeps its extension and gets the right one added,
// so the name never claims a macro-enabled type.
constexpr std::string_view kOfficeExtensions[] = {
    "docx", "docm", "dotx", "dotm", "xlsx", "xlsm", "xltx", "xltm", "xlsb", "xlam", "pptx", "pptm", "potx",
    "potm", "ppsx", "ppsm", "ppam", "odt",  "ott",  "ods",  "ots",  "odp",  "otp",  "odg",  "otg",
};

std::string output_name(const std::string& name, const std::string& extension) {
  if (name.empty()) return name;
  std::size_t dot = name.rfind('.');
  if (dot != std::string::npos && dot > 0) {
    const std::string ext = office_strip::ascii_lower(std::string_view(name).substr(dot + 1));
    for (std::string_view known : kOfficeExtensions)
      if (ext == known) return name.substr(0, dot + 1) + extension;
  }
  return name + "." + extension;
}

struct OfficeStripOptions {
  std::size_t max_members = 2000;
};

class OfficeStripActive : public Sanitizer {
 public:
  explicit OfficeStripActive(OfficeStripOptions options) : options_(options) {}

  std::string_view name() const override { return "office.strip_active"; }
  std::vector<Kind> handles() const override { return {Kind::Office, Kind::OpenDocument}; }

  Outcome process(const Item& item, Context& ctx) const override {
    office_strip::ZipLimits limits;
    limits.max_members = options_.max_members;
    limits.max_member_bytes = ctx.limits.max_item_bytes;
    limits.max_total_bytes = ctx.limits.max_total_bytes;
    limits.deadline = ctx.deadline;
    RebuildResult r = item.kind == Kind::OpenDocument ? office_strip::rebuild_opendocument(item.bytes, limits)
                                                      : office_strip::rebuild_ooxml(item.bytes, limits);
    switch (r.status) {
      case RebuildResult::Status::Blocked:
        return Outcome::block(std::move(r.reason));
      case RebuildResult::Status::Unsupported:
        return Outcome::remove(std::move(r.reason));
      case RebuildResult::Status::Rebuilt:
        break;
    }
    for (std::size_t i = 0; i < office_strip::kFindingCount; ++i) {
      if (r.findings.counts[i] > 0)
        ctx.report.note(item.path, "remove", office_strip::finding_reason(static_cast<Finding>(i), r.findings.counts[i]));
    }
    if (r.input_extension != r.extension) {
      ctx.report.note(item.path, "note",
                      {"office.renamed",
                       "マクロ有効形式 (." + r.input_extension + ") をマクロなしの形式 (." + r.extension + ") にしました",
                       "changed the macro-enabled format (." + r.input_extension + ") to the macro-free one (." +
                           r.extension + ")"});
    }
    const bool visible = r.findings.visible();
    Outcome out = Outcome::replace(std::move(r.bytes), std::move(r.mime_type), output_name(item.name, r.extension),
                                   summary(r.findings), !visible && r.input_extension == r.extension);
    return out;
  }

 private:
  static Reason summary(const office_strip::Findings& f) {
    std::string ja, en;
    for (std::size_t i = 0; i < office_strip::kFindingCount; ++i) {
      const auto finding = static_cast<Finding>(i);
      if (f.counts[i] == 0 || finding == Finding::Hidden) continue;
      ja += (ja.empty() ? "" : "・") + office_strip::finding_label(finding, Language::Ja);
      en += (en.empty() ? "" : ", ") + office_strip::finding_label(finding, Language::En);
    }
    if (ja.empty())
      return {"office.rebuilt", "Office 文書を作り直しました（マクロなどの動作する内容はありませんでした）",
              "rebuilt the Office document (it held no macros or other active content)"};
    return {"office.strip_active", "Office 文書を作り直し、次を除去しました: " + ja,
            "rebuilt the Office document without: " + en};
  }

  OfficeStripOptions options_;
};

}  // namespace

std::unique_ptr<Sanitizer> make_office_strip_active(const toml::table& options) {
  OfficeStripOptions o;
  for (const auto& [key, node] : options) {
    const std::string_view k = key.str();
    if (k == "max_members") {
      const auto* value = node.as_integer();
      if (value == nullptr || value->get() <= 0 || value->get() > 1'000'000)
        throw ConfigError("office.strip_active: option \"max_members\" must be an integer from 1 to 1000000");
      o.max_members = static_cast<std::size_t>(value->get());
    } else {
      throw ConfigError("office.strip_active: unknown option \"" + std::string(k) + "\" (known: max_members)");
    }
  }
  // libxml2's one-time set-up is not thread-safe; do it here, at start-up,
  // before process() runs on several threads.
  xmlInitParser();
  return std::make_unique<OfficeStripActive>(o);
}

}  // namespace mukaika
