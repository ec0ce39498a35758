#include "registry.h"

#include "archive_flatten/archive_flatten.h"
#include "html_to_text/html_to_text.h"
#include "image_reencode/image_reencode.h"
#include "pdf_rasterize/pdf_rasterize.h"
#include "mail_rebuild/mail_rebuild.h"
#include "office_strip/office_strip.h"
#include "rtf_strip/rtf_strip.h"
#include "text_normalize/text_normalize.h"
#include "mime/charset.h"

namespace mukaika {

void SanitizerRegistry::add(const std::string& name, SanitizerFactory factory) {
  factories_[name] = std::move(factory);
}

bool SanitizerRegistry::contains(const std::string& name) const { return factories_.count(name) != 0; }

std::vector<std::string> SanitizerRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, factory] : factories_) out.push_back(name);
  return out;
}

std::unique_ptr<Sanitizer> SanitizerRegistry::create(const std::string& name,
                                                     const toml::table& options) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [n, f] : factories_) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown sanitizer \"" + name + "\" (known: " + known + ")");
  }
  auto sanitizer = it->second(options);
  if (!sanitizer) throw ConfigError("sanitizer \"" + name + "\" could not be created");
  return sanitizer;
}

std::string charset_option(const toml::node& value, const std::string& key) {
  auto v = value.value<std::string>();
  if (!v || charset::canonical(*v).empty())
    throw ConfigError(key + " must be a charset name iconv knows (e.g. \"cp932\")");
  return *v;
}

void register_builtin_sanitizers(SanitizerRegistry& registry) {
  registry.add("mail.rebuild", make_mail_rebuild);
  registry.add("text.normalize", make_text_normalize);
  registry.add("html.to_text", make_html_to_text);
  registry.add("pdf.rasterize", make_pdf_rasterize);
  registry.add("image.reencode", make_image_reencode);
  registry.add("archive.flatten", make_archive_flatten);
  registry.add("office.strip_active", make_office_strip_active);
  registry.add("rtf.strip", make_rtf_strip);
}

}  // namespace mukaika
