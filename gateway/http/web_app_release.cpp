// The WebApp's routes for the release of originals (原本取り出し):
//
//   LGWAN:    GET  /mail/<queue_id>            a kept mail: envelope, verdict, report, request
//             POST /mail/<queue_id>/release    request its original (reason)
//             POST /files/<id>/release         request an uploaded file's original (reason)
//             GET  /requests                   the account's own requests
//             GET  /approvals                  pending requests with their reports (approvers)
//             POST /approvals/<request id>     approve or reject with a comment
//   Internet: GET  /originals                  the account's approved originals
//             GET  /originals/<id>/content     one download (audited)
//   (/originals is on the LGWAN side instead when release.deliver_to_lgwan.)
//
// Every decision about who may do what is in release_desk.h's functions
// and is_recipient_of(); this file only wires them to pages.
#include <algorithm>
#include <map>

#include "http/multipart.h"
#include "http/pages_release.h"
#include "http/ppap_mail.h"
#include "http/ppap_pages.h"
#include "http/web_app.h"
#include "http/web_app_detail.h"
#include "queue/durable_io.h"

namespace mukaika::http {

using webapp_detail::form_value;
using webapp_detail::html;
using webapp_detail::lang_of;

namespace {

constexpr std::uint64_t kReleaseFormLimit = 16 * 1024;
constexpr std::size_t kTextLimit = 2000;  // bytes of a reason or a comment

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

Response page_status(int status, const pages::Lang& t, const char* ja, const char* en) {
  return Response::text(status,
                        pages::layout(t, t(ja, en), "", "", "", "<p>" + pages::escape(t(ja, en)) + "</p>\n", "error"),
                        "text/html; charset=utf-8");
}

Response not_found_page(const RequestHead& head) {
  return Response::text(404, pages::not_found(lang_of(head)), "text/html; charset=utf-8");
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const nlohmann::json& member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json none;
  auto it = j.find(key);
  return it == j.end() ? none : *it;
}

}  // namespace

bool may_view_mail(const AccountConfig& account, const nlohmann::json& kept_summary) {
  return is_recipient_of(account, kept_summary) || has_role(account, "approver") ||
         has_role(account, "administrator");
}

bool WebApp::release_path(std::string_view p) {
  // /mail/<id>/password is PPAP's (web_app_ppap.cpp).
  if (p.size() > 9 && p.substr(p.size() - 9) == "/password") return false;
  if (starts_with(p, "/mail/") || p == "/requests" || p == "/approvals" || starts_with(p, "/approvals/") ||
      p == "/originals" || starts_with(p, "/originals/"))
    return true;
  return starts_with(p, "/files/") && p.size() > 15 && p.substr(p.size() - 8) == "/release";
}

std::optional<Decision> WebApp::release_route(RequestHead& head) {
  if (!releases_) return std::nullopt;
  const std::string& p = head.path;
  const bool lgwan = zone_ == Zone::Lgwan;
  const bool originals = starts_with(p, "/originals");
  // Zones do not mix: requests and decisions are LGWAN pages; originals are
  // handed out where the policy says, and nowhere else.
  if (originals ? lgwan != config_.release.deliver_to_lgwan : !lgwan) return std::nullopt;
  const bool post_route = starts_with(p, "/files/") || starts_with(p, "/approvals/") ||
                          (starts_with(p, "/mail/") && p.size() > 14 && p.substr(p.size() - 8) == "/release");
  if (post_route) {
    if (head.method != "POST") return Decision::respond(Response::text(405, "method not allowed\n"));
    return Decision::read_body(kReleaseFormLimit);
  }
  // A download is audited as one: HEAD would count one without sending it.
  const bool content = originals && p.size() > 8 && p.substr(p.size() - 8) == "/content";
  if (head.method != "GET" && (content || head.method != "HEAD"))
    return Decision::respond(Response::text(405, "method not allowed\n"));
  // Pages read request files and the quarantine: the blocking pool runs handle().
  return Decision::read_body(0);
}

Response WebApp::release_handle(RequestHead& head) {
  Session session;
  const AccountConfig* account = signed_in(head, session);
  const std::string& p = head.path;
  if (!account) return head.method == "POST" ? Response::text(401, "sign in first\n") : Response::redirect("/signin");
  try {
    if (head.method == "POST") {
      if (!check_csrf(session, form_value(head.body, "csrf")))
        return page_status(403, lang_of(head), "画面を開き直してください (CSRF トークンが違います)",
                           "Reload the page (CSRF token mismatch).");
      if (starts_with(p, "/approvals/")) return release_decision(head, *account, p.substr(11));
      if (starts_with(p, "/files/")) return release_request(head, *account, "file:" + p.substr(7, p.size() - 15));
      return release_request(head, *account, "mail:" + p.substr(6, p.size() - 14));
    }
    if (starts_with(p, "/mail/")) return mail_page(head, *account, session, p.substr(6));
    if (p == "/requests") return requests_page(head, *account, session);
    if (p == "/approvals") return approvals_page(head, *account, session);
    if (p == "/originals") return originals_page(head, *account, session);
    if (starts_with(p, "/originals/") && p.size() > 19 && p.substr(p.size() - 8) == "/content")
      return original_content(head, *account, p.substr(11, p.size() - 19));
    return not_found_page(head);
  } catch (const std::exception& e) {
    // The disk or the audit log refused: nothing is decided or handed out.
    return page_status(503, lang_of(head), "今は処理できません。しばらくしてからやり直してください",
                       "Cannot do this now. Please try again later.")
        .with("Retry-After", "60");
  }
}

std::optional<SubjectFacts> WebApp::subject_facts(const std::string& subject) const {
  const std::string id = subject.substr(subject.find(':') + 1);
  if (starts_with(subject, "file:")) {
    auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
    if (!item) return std::nullopt;
    return SubjectFacts{item->name, item->verdict, report_is_infected(item->report)};
  }
  if (!quarantine_) return std::nullopt;
  auto kept = quarantine_->summary(id);
  if (!kept) return std::nullopt;
  const nlohmann::json& s = member(*kept, "summary");
  // The decoded Subject (from the worker), else the Message-ID, else the queue id.
  std::string name = str(s, "subject");
  if (name.empty()) name = str(s, "message_id");
  if (name.empty()) name = id + ".eml";
  return SubjectFacts{name, str(s, "verdict"), report_is_infected(member(s, "report"))};
}

Response WebApp::mail_page(const RequestHead& head, const AccountConfig& account, const Session& session,
                           const std::string& queue_id) {
  const pages::Lang t = lang_of(head);
  auto kept = quarantine_ ? quarantine_->summary(queue_id) : std::nullopt;
  // Someone else's mail answers as if it did not exist.
  if (!kept || !may_view_mail(account, *kept)) return not_found_page(head);
  const nlohmann::json& s = member(*kept, "summary");
  pages::MailView m;
  m.queue_id = queue_id;
  m.mail_from = str(*kept, "mail_from");
  m.received = str(*kept, "received");
  m.message_id = str(s, "message_id");
  m.subject = str(s, "subject");
  m.from = str(s, "from");
  for (const auto& r : member(*kept, "recipients"))
    if (r.is_string()) m.recipients.push_back(r.get<std::string>());
  m.report = pages::subject_report(member(s, "report"), str(s, "verdict"), t.en ? str(s, "reason_en") : str(s, "reason"),
                                   queue_id + ".eml");
  m.may_request = is_recipient_of(account, *kept);
  if (config_.ppap.enabled && mail_ppap_)
    for (const auto& h : held_attachments(*kept)) m.held.push_back(h.path.substr(h.path.find('/') + 1));
  if (const auto address = recipient_address_of(account, *kept); address && !m.held.empty())
    m.held_state = MailPpap::state_of(mail_ppap_->record(queue_id, *address));
  const auto request = releases_->latest("mail:" + queue_id, account.name);
  return html(pages::mail(t, account.display_name, pages::nav(t, account, true, config_.release.deliver_to_lgwan),
                          session.csrf_token, m, request, pages::release_flash(t, head.query_param("release"))));
}

Response WebApp::release_request(const RequestHead& head, const AccountConfig& account, const std::string& subject) {
  const pages::Lang t = lang_of(head);
  const std::string id = subject.substr(5);
  // Only the item's or mail's own recipient may ask for its original.
  if (starts_with(subject, "file:")) {
    auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
    if (!item || !is_recipient_of_item(account, *item)) return not_found_page(head);
    if (item->status == ItemStatus::Queued || item->status == ItemStatus::Processing)
      return page_status(409, t, "まだ無害化が終わっていません", "Not sanitized yet.");
  } else {
    auto kept = quarantine_ ? quarantine_->summary(id) : std::nullopt;
    if (!kept || !is_recipient_of(account, *kept)) return not_found_page(head);
  }
  const std::string reason = form_value(head.body, "reason");
  if (reason.empty() || reason.size() > kTextLimit)
    return page_status(400, t, "原本が必要な理由を書いてください (2000 バイトまで)",
                       "Please give the reason (up to 2000 bytes).");
  auto facts = subject_facts(subject);
  if (!facts) return not_found_page(head);
  const ReleaseRequest r = releases_->request(subject, account.name, reason, *facts);
  const std::string back = starts_with(subject, "file:") ? "/" : "/mail/" + id;
  return Response::redirect(back + "?release=" + std::string(r.state == ReleaseState::Refused ? "refused" : "pending"));
}

Response WebApp::requests_page(const RequestHead& head, const AccountConfig& account, const Session& session) {
  const pages::Lang t = lang_of(head);
  releases_->expire();
  auto list = releases_->list([&](const ReleaseRequest& r) { return r.requester == account.name; });
  return html(pages::requests(t, account.display_name, pages::nav(t, account, true, config_.release.deliver_to_lgwan),
                              session.csrf_token, list, config_.http.internet.public_url + "originals",
                              pages::release_flash(t, head.query_param("release"))));
}

Response WebApp::approvals_page(const RequestHead& head, const AccountConfig& account, const Session& session) {
  const pages::Lang t = lang_of(head);
  const bool approver = has_role(account, "approver");
  // Auditors and administrators read; only approvers decide.
  if (!approver && !has_role(account, "auditor") && !has_role(account, "administrator")) return not_found_page(head);
  releases_->expire();
  std::vector<pages::PendingView> pending;
  std::vector<ReleaseRequest> decided;
  for (auto& r : releases_->list({})) {
    if (r.state != ReleaseState::Pending) {
      if (decided.size() < 50) decided.push_back(std::move(r));
      continue;
    }
    pages::PendingView v;
    const std::string id = r.subject_id();
    if (r.is_file()) {
      if (auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt)
        v.report = pages::subject_report(item->report, item->verdict, t.en ? item->reason_en : item->reason, item->name);
    } else if (auto kept = quarantine_ ? quarantine_->summary(id) : std::nullopt) {
      const nlohmann::json& s = member(*kept, "summary");
      v.report = pages::subject_report(member(s, "report"), str(s, "verdict"),
                                       t.en ? str(s, "reason_en") : str(s, "reason"), id + ".eml");
      v.link = "/mail/" + id;
    }
    v.own = approver && !may_decide(account, r);
    v.read_only = !approver;
    v.request = std::move(r);
    pending.push_back(std::move(v));
  }
  return html(pages::approvals(t, account.display_name,
                               pages::nav(t, account, true, config_.release.deliver_to_lgwan), session.csrf_token,
                               pending, decided, pages::release_flash(t, head.query_param("release"))));
}

Response WebApp::release_decision(const RequestHead& head, const AccountConfig& account, const std::string& id) {
  const pages::Lang t = lang_of(head);
  auto r = releases_->find(id);
  if (!r) return not_found_page(head);
  if (!has_role(account, "approver"))
    return page_status(403, t, "承認者だけが決裁できます", "Only approvers decide.");
  if (!may_decide(account, *r))
    return page_status(403, t, "ご自身の申請は決裁できません", "You cannot decide your own request.");
  const std::string decision = form_value(head.body, "decision");
  const std::string comment = form_value(head.body, "comment");
  if ((decision != "approve" && decision != "reject") || comment.size() > kTextLimit)
    return page_status(400, t, "承認か却下を選んでください (コメントは 2000 バイトまで)",
                       "Choose approve or reject (comment up to 2000 bytes).");
  auto facts = subject_facts(r->subject);
  if (!facts)
    return page_status(410, t, "原本は保管期限を過ぎて削除されています", "The original is no longer kept.");
  ReleaseRequest result;
  const auto outcome = releases_->decide(id, account.name, decision == "approve", comment, *facts, &result);
  switch (outcome) {
    case ReleaseDesk::Outcome::NotFound: return not_found_page(head);
    case ReleaseDesk::Outcome::NotPending:
      return page_status(409, t, "この申請はすでに決裁されています", "This request has been decided already.");
    case ReleaseDesk::Outcome::OwnRequest:
      return page_status(403, t, "ご自身の申請は決裁できません", "You cannot decide your own request.");
    case ReleaseDesk::Outcome::Infected: return Response::redirect("/approvals?release=refused");
    case ReleaseDesk::Outcome::Done: break;
  }
  const bool told = notify_requester(result);
  return Response::redirect(std::string("/approvals?release=") + (decision == "approve" ? "approved" : "rejected") +
                            (told ? "" : "-quiet"));
}

Response WebApp::originals_page(const RequestHead& head, const AccountConfig& account, const Session& session) {
  const pages::Lang t = lang_of(head);
  if (!has_role(account, "recipient")) return not_found_page(head);
  releases_->expire();
  const bool lgwan = zone_ == Zone::Lgwan;
  const auto now = releases_->now();
  auto list = releases_->list([&](const ReleaseRequest& r) {
    return r.requester == account.name && r.policy_exception == lgwan &&
           (r.state == ReleaseState::Approved || r.state == ReleaseState::Downloaded ||
            r.state == ReleaseState::Expired);
  });
  return html(pages::originals(t, account.display_name, pages::nav(t, account, lgwan, config_.release.deliver_to_lgwan),
                               session.csrf_token, lgwan, list, now));
}

Response WebApp::original_content(const RequestHead& head, const AccountConfig& account, const std::string& id) {
  const pages::Lang t = lang_of(head);
  auto r = releases_->find(id);
  if (!r) return not_found_page(head);
  const bool lgwan = zone_ == Zone::Lgwan;
  switch (download_access(account, *r, lgwan, config_.release.deliver_to_lgwan, releases_->now())) {
    case DownloadAccess::NotFound: return not_found_page(head);
    case DownloadAccess::Gone:
      releases_->expire();
      return page_status(410, t, "ダウンロードの期限が過ぎました", "The download has expired.");
    case DownloadAccess::Allowed: break;
  }
  // The bytes are read only now, from where the original is kept.
  std::optional<std::filesystem::path> path;
  std::string name;
  if (r->is_file()) {
    path = box_.original_path(r->subject_id());
    name = r->name;
  } else if (quarantine_) {
    if (auto kept = quarantine_->find(r->subject_id())) path = kept->eml;
    name = r->subject_id() + ".eml";
  }
  if (!path) return page_status(410, t, "原本は保管期限を過ぎて削除されています", "The original is no longer kept.");
  // Audited before a byte leaves: an unrecorded release never happens.
  releases_->record_download(id, account.name, lgwan ? "lgwan" : "internet");
  Response out;
  out.file = *path;
  out.headers.emplace_back("Content-Type", "application/octet-stream");
  out.headers.emplace_back("Content-Disposition", content_disposition_attachment(name));
  return out;
}

bool WebApp::notify_requester(const ReleaseRequest& r) {
  const AccountConfig* requester = nullptr;
  for (const auto& a : config_.accounts)
    if (a.name == r.requester) requester = &a;
  // Nobody to write to: the pages tell them (that is not a failure).
  if (!send_mail_ || !requester || requester->mail.empty()) return true;
  GatewayMail m;
  m.recipient = requester->mail.front();
  const bool approved = r.state == ReleaseState::Approved;
  const std::string until = queue_detail::iso8601_local(r.expires).substr(0, 16);
  const std::string where = r.policy_exception ? config_.http.lgwan.public_url + "originals"
                                               : config_.http.internet.public_url + "originals";
  if (approved) {
    m.subject_ja = "原本の取り出しが承認されました: " + r.name;
    m.subject_en = "Release of the original approved: " + r.name;
    m.body_ja = "申請された原本「" + r.name + "」の取り出しが " + r.decided_by + " により承認されました。\n\n" +
                (r.policy_exception ? "LGWAN 接続系の画面 (ポリシー上の例外) で受け取れます:\n"
                                    : "インターネット接続系の画面で、同じアカウントでサインインして受け取ってください:\n") +
                "  " + where + "\n期限: " + until + "\n" + (r.comment.empty() ? "" : "コメント: " + r.comment + "\n") +
                "\n原本は無害化されていません。開くときは十分注意してください。\n";
    m.body_en = "Your request for the original of \"" + r.name + "\" was approved by " + r.decided_by + ".\n\n" +
                (r.policy_exception ? "Download it on the LGWAN-side page (a policy exception):\n"
                                    : "Sign in with the same account on the Internet-side page to download it:\n") +
                "  " + where + "\nUntil: " + until + "\n" + (r.comment.empty() ? "" : "Comment: " + r.comment + "\n") +
                "\nThe original is not sanitized. Open it with care.\n";
  } else {
    m.subject_ja = "原本の取り出しは却下されました: " + r.name;
    m.subject_en = "Release of the original rejected: " + r.name;
    m.body_ja = "申請された原本「" + r.name + "」の取り出しは " + r.decided_by + " により却下されました。\n" +
                (r.comment.empty() ? "" : "コメント: " + r.comment + "\n");
    m.body_en = "Your request for the original of \"" + r.name + "\" was rejected by " + r.decided_by + ".\n" +
                (r.comment.empty() ? "" : "Comment: " + r.comment + "\n");
  }
  try {
    BounceOptions o = mail_options_;
    o.now = std::chrono::system_clock::now();
    Envelope envelope;
    envelope.recipients = {m.recipient};
    envelope.received = o.now;
    send_mail_(envelope, make_gateway_mail(m, o), "notice");
    return true;
  } catch (const std::exception& e) {
    // The decision stands; the failure is on the request and in the audit log.
    try {
      releases_->record_notice_failure(r.id, e.what());
    } catch (const std::exception&) {
      // Already failing storage: the decision's own records are written.
    }
    return false;
  }
}

}  // namespace mukaika::http
