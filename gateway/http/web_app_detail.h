// Small helpers shared by the WebApp's source files (web_app.cpp,
// web_app_release.cpp and web_app_ppap.cpp); not an interface.
#pragma once

#include <string>
#include <string_view>

#include "http/http_server.h"
#include "http/pages.h"

namespace mukaika::http::webapp_detail {

// A field of an application/x-www-form-urlencoded body. The temporary
// copy of the body is wiped (a form may carry a password).
std::string form_value(std::string_view body, std::string_view name);
// ?lang=en, else the language cookie.
pages::Lang lang_of(const RequestHead& head);
Response html(std::string body);

}  // namespace mukaika::http::webapp_detail
