// The web pages of the drop box: plain server-rendered HTML (Japanese by
// default, English with ?lang=en), one stylesheet and one script of our own
// served from /static/ (no inline script or style: the CSP forbids them; no
// CDN: the LGWAN zone has no Internet).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/audit_search.h"
#include "http/drop_box.h"

namespace mukaika::http::pages {

struct Lang {
  bool en = false;
  const char* operator()(const char* ja, const char* english) const { return en ? english : ja; }
};

std::string escape(std::string_view text);  // HTML text and attribute values

struct Recipient {
  std::string value;  // account name or department
  std::string label;
};

std::string sign_in(Lang t, bool lgwan, const std::string& csrf, const std::string& error, const std::string& notice);
std::string upload(Lang t, const std::string& who, const std::vector<Recipient>& recipients, const std::string& csrf,
                   std::uint64_t max_bytes);
std::string receipt(Lang t, const std::string& who, const std::vector<DropItem>& items, const std::string& csrf);
// `nav`: links to the other pages of the account's roles; `release_cell`:
// the original's request form or state for an item (pages_release.cpp).
// `ppap`: held items link to their password page; `after`: more of the
// inbox after the items (the held mails, ppap_pages.cpp).
std::string inbox(Lang t, const std::string& who, const std::vector<DropItem>& items, const std::string& csrf,
                  const std::string& nav = "", const std::function<std::string(const DropItem&)>& release_cell = {},
                  bool ppap = true, const std::string& after = "");
std::string not_found(Lang t);

// The frame of every page: header (zone, who, sign-out, language), title, body.
std::string layout(Lang t, const std::string& title, const std::string& who, const std::string& csrf,
                   const std::string& zone_label, const std::string& body, const std::string& page_id);
const char* verdict_label(Lang t, const std::string& verdict);  // "無害化済み" ...
// The common frame of every page (header, sign-out, language link), for
// pages written in other files (ppap_pages.cpp).
std::string frame(Lang t, const std::string& title, const std::string& who, const std::string& csrf, bool lgwan,
                  const std::string& body, const std::string& page_id);
// PPAP (ppap_pages.cpp): the inbox's action for a held item.
std::string held_action(Lang t, const DropItem& item);
std::string audit(Lang t, const std::string& who, const AuditQuery& query, const AuditResult& result,
                  const std::string& csrf, const std::string& csv_link);

// Plain-language lines of what the gateway did to an item ("PDF を画像化しました", ...).
std::vector<std::string> report_lines(const DropItem& item);
// The same for any item report (a kept mail's): `reason_for_all` first.
std::vector<std::string> report_lines(const nlohmann::json& report, const std::string& reason_for_all,
                                      const std::string& name);

std::string_view stylesheet();
std::string_view script();

}  // namespace mukaika::http::pages
