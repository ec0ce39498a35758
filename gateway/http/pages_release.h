// The pages of the release of originals (原本取り出し): the request form
// and state next to an inbox item, a kept mail's page, the requester's
// requests, the approvers' list, and the requester's downloads. Plain
// server-rendered HTML like pages.h; every form carries the CSRF token.
// The Internet-side page shows only a file name and the decision, never
// the LGWAN-side report.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "http/pages.h"
#include "http/release_desk.h"

namespace mukaika::http::pages {

// Links to the pages the account's roles open on this zone.
std::string nav(Lang t, const AccountConfig& account, bool lgwan, bool originals_on_lgwan);

// An inbox item's original: the request's state, or the request form.
std::string release_cell(Lang t, const std::string& action, const std::optional<ReleaseRequest>& request,
                         const std::string& csrf);

// What an approver sees of a subject: the sanitizer's report.
struct SubjectReport {
  std::string verdict;
  std::vector<std::string> viruses;
  std::vector<std::string> lines;  // what was removed and why
  bool infected = false;
};
SubjectReport subject_report(const nlohmann::json& report, const std::string& verdict, const std::string& reason,
                             const std::string& name);

// GET /mail/<queue_id>: a kept mail's envelope, verdict, report, request.
struct MailView {
  std::string queue_id, mail_from, received, message_id;
  std::string subject, from;  // decoded by the worker; "" when unknown
  std::vector<std::string> recipients;
  SubjectReport report;
  bool may_request = false;  // the signed-in account is a recipient
  // Attachments held for their password (PPAP); with ppap on, the page
  // links the recipient to /mail/<queue_id>/password.
  std::vector<std::string> held;
  // The signed-in recipient's own PPAP state: held | delivered | locked |
  // blocked | unsupported ("" when nothing is held).
  std::string held_state;
};
std::string mail(Lang t, const std::string& who, const std::string& nav, const std::string& csrf, const MailView& m,
                 const std::optional<ReleaseRequest>& request, const std::string& flash);

// GET /requests: the account's own requests.
std::string requests(Lang t, const std::string& who, const std::string& nav, const std::string& csrf,
                     const std::vector<ReleaseRequest>& list, const std::string& originals_url,
                     const std::string& flash);

// GET /approvals: pending requests with their reports, and recent decisions.
struct PendingView {
  ReleaseRequest request;
  SubjectReport report;
  std::string link;      // the subject's page ("/mail/<id>"), or ""
  bool own = false;      // the approver's own request: shown, not decidable
  bool read_only = false;  // an auditor or administrator: shown, not decidable
};
std::string approvals(Lang t, const std::string& who, const std::string& nav, const std::string& csrf,
                      const std::vector<PendingView>& pending, const std::vector<ReleaseRequest>& decided,
                      const std::string& flash);

// GET /originals: the account's approved originals, with download links.
std::string originals(Lang t, const std::string& who, const std::string& nav, const std::string& csrf, bool lgwan,
                      const std::vector<ReleaseRequest>& list, std::chrono::system_clock::time_point now);

// The message after a redirect (?release=<code>), from a fixed list only; "" for others.
std::string release_flash(Lang t, const std::string& code);
// A status line for a flash message ("" for none).
std::string flash_html(const std::string& flash);

// "承認待ち" / "pending" ...
const char* release_state_label(Lang t, ReleaseState s);

}  // namespace mukaika::http::pages
