// Small helpers shared by the WebApp's source files (web_app.cpp, and
// web_app_release.cpp for the release of originals); not an interface.
#pragma once

#include <string>
#include <string_view>

#include "http/http_server.h"
#include "http/pages.h"

namespace mukaika::http::webapp_detail {

// A field of an application/x-www-form-urlencoded body.
std::string form_value(std::string_view body, std::string_view name);
// ?lang=en, else the language cookie.
pages::Lang lang_of(const RequestHead& head);
Response html(std::string body);

}  // namespace mukaika::http::webapp_detail
