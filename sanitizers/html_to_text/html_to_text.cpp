// STUB
#include "html_to_text/html_to_text.h"
namespace mukaika {
std::string html_to_text(std::string_view html, const HtmlToTextOptions&) { return std::string(html); }
std::string html_meta_charset(std::string_view) { return ""; }
std::unique_ptr<Sanitizer> make_html_to_text(const toml::table&) { return nullptr; }
}
