// WebApp: the routes of one zone's listener: the REST API
// (proto/openapi.yaml), the web pages, /healthz and /metrics.
//
// Promises:
// - Zones do not mix: each listener has its own WebApp, its own sessions
//   and only its own routes; a route of the other zone answers 404. The
//   Internet side takes uploads and shows their status; only the LGWAN side
//   serves sanitized bytes, thumbnails and metrics. Originals are never
//   served by either.
// - Nothing is served before it is decided: content is given only for items
//   whose status is done (409 before, 410 when blocked or failed).
// - Authorization before any body is read: a Bearer token (API clients,
//   hashed in the configuration) or a signed-in session with the zone's
//   role; writes by sessions need the session's CSRF token. Sign-in is
//   rate limited per account and per client address.
// - PPAP (web_app_ppap.cpp, docs/ppap.md): a held upload's or mail's
//   password is typed only on the LGWAN side, only by its recipient, with
//   the CSRF token; it goes to the worker in memory and is never echoed.
// - Every response carries Content-Security-Policy (no inline script, no
//   outside origin), X-Content-Type-Options: nosniff, X-Frame-Options:
//   DENY, Referrer-Policy: no-referrer, Cache-Control: no-store; downloads
//   are always attachments.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "http/auth.h"
#include "http/drop_box.h"
#include "http/http_server.h"
#include "http/release_desk.h"
#include "http/ppap_mail.h"
#include "mta_types.h"
#include "queue/quarantine.h"
#include "relay/dsn.h"

namespace mukaika::http {

enum class Zone { Internet, Lgwan };

class WebApp : public Application {
 public:
  WebApp(Zone zone, const Config& config, DropBox& box);
  Decision decide(RequestHead& head) override;
  Response handle(RequestHead& head) override;
  void finish_headers(const RequestHead& head, Response& response) override;

  // Accounts and tokens of the embedded default that must never face a network.
  static bool uses_demo_credentials(const Config& config);
  // The quarantine, for pages about a mail (/mail/<queue_id>): its report,
  // its original. None: mail pages answer 404.
  void set_quarantine(const Quarantine* quarantine) { quarantine_ = quarantine; }
  // Release of originals (web_app_release.cpp): requests, approvals and the
  // requester's downloads. None: those pages answer 404.
  void set_release_desk(ReleaseDesk* desk) { releases_ = desk; }
  // PPAP for mail (/mail/<queue_id>/password, web_app_ppap.cpp). None: 404.
  void set_mail_ppap(MailPpap* ppap) { mail_ppap_ = ppap; }
  // Queues a mail to LGWAN-side staff through the spool and the relay (a
  // decision notice, the contents of a held archive): envelope, the whole
  // RFC 5322 message (make_gateway_mail), a kind for the spool ("notice").
  // Returns the queue id; throws when it could not be stored.
  using MailSender =
      std::function<std::string(const Envelope& envelope, const std::string& message, const std::string& kind)>;
  // `options`: host name and language for make_gateway_mail (set `now` per mail).
  void set_mail_sender(MailSender sender, BounceOptions options) {
    send_mail_ = std::move(sender);
    mail_options_ = std::move(options);
  }
  // For /metrics: how many workers were replaced (none: not shown).
  void set_worker_restarts(std::function<std::uint64_t()> f) { worker_restarts_ = std::move(f); }

 private:
  struct Caller;
  Caller identify(const RequestHead& head);
  Decision upload(RequestHead& head, const Caller& caller);
  Response file_status(const RequestHead& head, const std::string& id);
  Response file_content(const RequestHead& head, const std::string& id);
  Response thumbnail(const RequestHead& head, const std::string& id);
  Response sign_in(RequestHead& head);
  Response mark_done(RequestHead& head, const std::string& id);
  Response page(const RequestHead& head);
  Response metrics();
  Response audit_page(const RequestHead& head, bool csv);
  bool may_see(const Caller& caller, const DropItem& item) const;
  bool valid_recipient(const std::string& recipient) const;
  // The signed-in account of this zone's session cookie (nullptr: none).
  const AccountConfig* signed_in(const RequestHead& head, Session& session);
  // web_app_release.cpp: the routes of the release of originals.
  static bool release_path(std::string_view path);
  std::optional<Decision> release_route(RequestHead& head);
  Response release_handle(RequestHead& head);
  Response mail_page(const RequestHead& head, const AccountConfig& account, const Session& session,
                     const std::string& queue_id);
  Response release_request(const RequestHead& head, const AccountConfig& account, const std::string& subject);
  Response requests_page(const RequestHead& head, const AccountConfig& account, const Session& session);
  Response approvals_page(const RequestHead& head, const AccountConfig& account, const Session& session);
  Response release_decision(const RequestHead& head, const AccountConfig& account, const std::string& id);
  Response originals_page(const RequestHead& head, const AccountConfig& account, const Session& session);
  Response original_content(const RequestHead& head, const AccountConfig& account, const std::string& id);
  // Tells the requester of a decision by mail (their first `mail` address);
  // false when the notice could not be queued (recorded and audited).
  bool notify_requester(const ReleaseRequest& r);
  // What the desk needs to know of a subject now (name, verdict, infected);
  // nullopt when it no longer exists.
  std::optional<SubjectFacts> subject_facts(const std::string& subject) const;
  // For pages written in other files: whether an account may see a
  // drop-box item (signed_in above gives the account).
  bool may_see_account(const AccountConfig& account, const DropItem& item) const;
  // PPAP (web_app_ppap.cpp): the password pages, LGWAN side only.
  Response file_password(RequestHead& head, const std::string& id);
  Response mail_password(RequestHead& head, const std::string& queue_id);
  // The inbox's list of the account's mails with held attachments ("" when
  // PPAP for mail is off or there are none).
  std::string held_mails_html(bool en, const AccountConfig& account) const;

  Zone zone_;
  const Config& config_;
  DropBox& box_;
  SessionStore sessions_;
  SignInLimiter limiter_;
  std::function<std::uint64_t()> worker_restarts_;
  const Quarantine* quarantine_ = nullptr;
  ReleaseDesk* releases_ = nullptr;
  MailPpap* mail_ppap_ = nullptr;
  MailSender send_mail_;  // none: no mails are sent (the pages still say what was decided)
  BounceOptions mail_options_;
};

// Whether a kept mail (Quarantine::summary) is addressed to `account`: one
// of its envelope recipients is one of the account's `mail` addresses
// (compared without regard to case).
bool is_recipient_of(const AccountConfig& account, const nlohmann::json& kept_summary);
// The envelope recipient (as written in the mail) that is one of the
// account's `mail` addresses, or nullopt: the address a reply to this
// account about that mail goes to.
std::optional<std::string> recipient_address_of(const AccountConfig& account, const nlohmann::json& kept_summary);
// Whether an uploaded file is addressed to `account` (a recipient: to their
// name or their department). The LGWAN inbox and its requests follow this.
bool is_recipient_of_item(const AccountConfig& account, const DropItem& item);
// Who may see the page of a kept mail: its recipients, approvers and administrators.
bool may_view_mail(const AccountConfig& account, const nlohmann::json& kept_summary);

}  // namespace mukaika::http
