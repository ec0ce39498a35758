// STUB
#include "mail_rebuild/mail_rebuild.h"
namespace mukaika { std::unique_ptr<Sanitizer> make_mail_rebuild(const toml::table&) { return nullptr; } }
