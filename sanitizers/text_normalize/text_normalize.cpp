// STUB
#include "text_normalize/text_normalize.h"
namespace mukaika { std::unique_ptr<Sanitizer> make_text_normalize(const toml::table&) { return nullptr; } }
