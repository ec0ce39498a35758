#include "http/pages_release.h"
#include "http/ppap_pages.h"

#include <algorithm>
#include <sstream>

#include "queue/durable_io.h"

namespace mukaika::http::pages {

namespace {

std::string when(std::chrono::system_clock::time_point t) {
  if (t == std::chrono::system_clock::time_point{}) return "";
  return queue_detail::iso8601_local(t).substr(0, 16);
}

std::string hidden_csrf(const std::string& csrf) {
  return "<input type=\"hidden\" name=\"csrf\" value=\"" + escape(csrf) + "\">";
}


void report_html(std::ostringstream& b, Lang t, const SubjectReport& r) {
  b << "<span class=\"verdict verdict-" << escape(r.verdict) << "\">" << verdict_label(t, r.verdict) << "</span>";
  if (!r.viruses.empty()) {
    b << " <span class=\"virus\">" << t("ウイルス: ", "virus: ");
    for (std::size_t i = 0; i < r.viruses.size(); ++i) b << (i ? ", " : "") << escape(r.viruses[i]);
    b << "</span>";
  }
  b << "<ul class=\"report\">";
  for (const auto& line : r.lines) b << "<li>" << escape(line) << "</li>";
  b << "</ul>";
}

void request_form(std::ostringstream& b, Lang t, const std::string& action, const std::string& csrf) {
  b << "<form method=\"post\" action=\"" << escape(action) << "\" class=\"release-form\">" << hidden_csrf(csrf)
    << "<label>" << t("原本が必要な理由", "Why you need the original")
    << " <input name=\"reason\" class=\"release-reason\" maxlength=\"500\" required></label>"
    << "<button type=\"submit\" class=\"release-request\">" << t("原本を申請", "Request the original")
    << "</button></form>";
}

std::string state_html(Lang t, const ReleaseRequest& r) {
  std::ostringstream b;
  b << "<span class=\"release-state state-" << to_string(r.state) << "\">" << release_state_label(t, r.state)
    << "</span>";
  // A refusal's reason is the state itself; a person's comment is shown.
  if (!r.comment.empty() && r.state != ReleaseState::Pending && r.state != ReleaseState::Refused)
    b << " <span class=\"release-comment\">" << escape(r.comment) << "</span>";
  return b.str();
}

}  // namespace

std::string flash_html(const std::string& flash) {
  return flash.empty() ? std::string() : "<p class=\"notice\" id=\"flash\" role=\"status\">" + escape(flash) + "</p>\n";
}

std::string release_flash(Lang t, const std::string& code) {
  if (code == "pending") return t("原本を申請しました。承認を待っています。", "Requested. Waiting for approval.");
  if (code == "refused")
    return t("ウイルスが検出された原本は取り出せません。申請は記録されました。",
             "An infected original is never released. The attempt was recorded.");
  if (code == "approved") return t("承認しました。申請者に通知しました。", "Approved. The requester has been told.");
  if (code == "rejected") return t("却下しました。申請者に通知しました。", "Rejected. The requester has been told.");
  if (code == "approved-quiet" || code == "rejected-quiet")
    return t("決裁しました。通知メールは送れませんでした (監査ログに記録しました)。",
             "Decided. The notice mail could not be queued (recorded in the audit log).");
  return "";
}

const char* release_state_label(Lang t, ReleaseState s) {
  switch (s) {
    case ReleaseState::Pending: return t("原本: 承認待ち", "original: awaiting approval");
    case ReleaseState::Approved: return t("原本: 承認済み", "original: approved");
    case ReleaseState::Rejected: return t("原本: 却下", "original: rejected");
    case ReleaseState::Refused: return t("原本: 取り出し不可 (ウイルス)", "original: refused (virus)");
    case ReleaseState::Downloaded: return t("原本: ダウンロード済み", "original: downloaded");
    case ReleaseState::Expired: return t("原本: 期限切れ", "original: expired");
  }
  return "";
}

std::string nav(Lang t, const AccountConfig& a, bool lgwan, bool originals_on_lgwan) {
  std::ostringstream b;
  b << "<nav class=\"pages\">";
  auto link = [&](const char* href, const char* ja, const char* en) {
    b << "<a href=\"" << href << "\">" << t(ja, en) << "</a> ";
  };
  if (lgwan) {
    if (has_role(a, "recipient")) {
      link("/", "受信箱", "Inbox");
      link("/requests", "原本の申請", "My requests");
      if (originals_on_lgwan) link("/originals", "原本のダウンロード", "Originals");
    }
    if (has_role(a, "approver")) link("/approvals", "承認待ち", "Approvals");
    if (has_role(a, "auditor") || has_role(a, "administrator")) link("/audit", "監査ログ", "Audit log");
  } else {
    if (has_role(a, "uploader")) link("/", "ファイルを送る", "Send files");
    if (has_role(a, "recipient") && !originals_on_lgwan) link("/originals", "原本のダウンロード", "Originals");
  }
  b << "</nav>\n";
  return b.str();
}

std::string release_cell(Lang t, const std::string& action, const std::optional<ReleaseRequest>& request,
                         const std::string& csrf) {
  std::ostringstream b;
  b << "<div class=\"release\">";
  if (request) b << state_html(t, *request);
  // A new request only when none is open (pending, or approved and not yet
  // expired); a refusal (virus) is final.
  const bool open = request && (request->state == ReleaseState::Pending || request->state == ReleaseState::Approved ||
                                request->state == ReleaseState::Downloaded || request->state == ReleaseState::Refused);
  if (!open) request_form(b, t, action, csrf);
  b << "</div>";
  return b.str();
}

SubjectReport subject_report(const nlohmann::json& report, const std::string& verdict, const std::string& reason,
                             const std::string& name) {
  SubjectReport r;
  r.verdict = verdict;
  r.lines = report_lines(report, reason, name);
  r.infected = report_is_infected(report);
  if (report.is_object() && report.contains("actions") && report["actions"].is_array())
    for (const auto& a : report["actions"]) {
      if (!a.is_object() || !a.contains("virus") || !a["virus"].is_string()) continue;
      const std::string v = a["virus"].get<std::string>();
      if (!v.empty() && std::find(r.viruses.begin(), r.viruses.end(), v) == r.viruses.end()) r.viruses.push_back(v);
    }
  return r;
}

std::string mail(Lang t, const std::string& who, const std::string& nav, const std::string& csrf, const MailView& m,
                 const std::optional<ReleaseRequest>& request, const std::string& flash) {
  std::ostringstream b;
  b << nav << flash_html(flash) << "<table class=\"items\" id=\"mail\">\n<tbody>\n"
    << "<tr><th>" << t("件名", "Subject") << "</th><td id=\"mail-subject\">" << escape(m.subject) << "</td></tr>\n"
    << "<tr><th>" << t("差出人", "From") << "</th><td id=\"mail-from\">" << escape(m.from)
    << (m.from.empty() ? "" : "<br>") << "<small>" << escape(m.mail_from) << "</small></td></tr>\n"
    << "<tr><th>" << t("宛先", "To") << "</th><td>";
  for (std::size_t i = 0; i < m.recipients.size(); ++i) b << (i ? ", " : "") << escape(m.recipients[i]);
  b << "</td></tr>\n<tr><th>" << t("受信日時", "Received") << "</th><td>" << escape(m.received.substr(0, 19))
    << "</td></tr>\n<tr><th>Message-ID</th><td id=\"message-id\">" << escape(m.message_id) << "</td></tr>\n"
    << "<tr><th>" << t("受付番号", "Queue id") << "</th><td>" << escape(m.queue_id) << "</td></tr>\n"
    << "<tr><th>" << t("判定と処理内容", "Verdict and what was done") << "</th><td id=\"mail-report\">";
  report_html(b, t, m.report);
  b << "</td></tr>\n</tbody></table>\n";
  if (!m.held.empty() && m.may_request) {
    b << "<h2>" << t("パスワード付きの添付ファイル", "Password-protected attachments") << "</h2>\n<ul id=\"held\">";
    for (const auto& h : m.held) b << "<li>" << escape(h) << "</li>";
    b << "</ul>\n<p id=\"held-state\" data-state=\"" << escape(m.held_state) << "\">"
      << mail_ppap_state_label(t, m.held_state) << "</p>\n";
    if (m.held_state == "held")
      b << "<p><a id=\"password-link\" href=\"/mail/" << escape(m.queue_id) << "/password\">"
        << t("パスワードを入力して開く", "Enter the password to open them") << "</a></p>\n";
  }
  b << "<h2>" << t("原本", "The original") << "</h2>\n<p>"
    << t("原本 (受け取ったままのメール) は無害化前のものです。業務上どうしても必要なときだけ、理由を添えて申請してください。"
         "承認されると、インターネット接続系の画面から期限付きでダウンロードできます。",
         "The original (the mail as received) is not sanitized. Request it only when your work needs it, with the "
         "reason. Once approved, it can be downloaded for a limited time on the Internet-zone page.")
    << "</p>\n";
  if (m.may_request)
    b << release_cell(t, "/mail/" + m.queue_id + "/release", request, csrf) << "\n";
  else if (request)
    b << "<div class=\"release\">" << state_html(t, *request) << "</div>\n";
  return layout(t, t("メールの詳細", "Mail details"), who, csrf, t("LGWAN 接続系", "LGWAN zone"), b.str(), "mail");
}

std::string requests(Lang t, const std::string& who, const std::string& nav, const std::string& csrf,
                     const std::vector<ReleaseRequest>& list, const std::string& originals_url,
                     const std::string& flash) {
  std::ostringstream b;
  b << nav << flash_html(flash);
  if (list.empty()) b << "<p id=\"empty\">" << t("原本の申請はありません。", "You have not requested any originals.") << "</p>\n";
  b << "<table class=\"items\" id=\"requests\">\n<thead><tr><th>" << t("対象", "Subject") << "</th><th>"
    << t("理由", "Reason") << "</th><th>" << t("申請日時", "Requested") << "</th><th>" << t("状態", "State")
    << "</th><th>" << t("決裁", "Decision") << "</th><th>" << t("ダウンロード期限", "Download until")
    << "</th></tr></thead>\n<tbody>\n";
  for (const auto& r : list) {
    b << "<tr data-id=\"" << r.id << "\" data-state=\"" << to_string(r.state) << "\"><td>" << escape(r.name)
      << "</td><td>" << escape(r.reason) << "</td><td>" << when(r.requested) << "</td><td>" << state_html(t, r)
      << "</td><td>" << escape(r.decided_by) << (r.decided_by.empty() ? "" : " ") << when(r.decided) << "</td><td>";
    if (r.state == ReleaseState::Approved || r.state == ReleaseState::Downloaded) {
      b << when(r.expires) << "<br>";
      if (r.policy_exception)
        b << "<a href=\"/originals\">" << t("LGWAN 側で受け取る", "Download here (LGWAN)") << "</a>";
      else
        b << t("インターネット接続系の画面で: ", "On the Internet-zone page: ") << "<span class=\"originals-url\">"
          << escape(originals_url) << "</span>";
    }
    b << "</td></tr>\n";
  }
  b << "</tbody></table>\n";
  return layout(t, t("原本の申請", "My requests for originals"), who, csrf, t("LGWAN 接続系", "LGWAN zone"), b.str(),
                "requests");
}

std::string approvals(Lang t, const std::string& who, const std::string& nav, const std::string& csrf,
                      const std::vector<PendingView>& pending, const std::vector<ReleaseRequest>& decided,
                      const std::string& flash) {
  std::ostringstream b;
  b << nav << flash_html(flash);
  if (pending.empty()) b << "<p id=\"empty\">" << t("承認待ちの申請はありません。", "No requests are waiting.") << "</p>\n";
  b << "<table class=\"items\" id=\"approvals\">\n<thead><tr><th>" << t("対象", "Subject") << "</th><th>"
    << t("申請者", "Requester") << "</th><th>" << t("理由", "Reason") << "</th><th>" << t("判定と処理内容", "Report")
    << "</th><th>" << t("決裁", "Decision") << "</th></tr></thead>\n<tbody>\n";
  for (const auto& p : pending) {
    const ReleaseRequest& r = p.request;
    b << "<tr data-id=\"" << r.id << "\"><td>";
    if (!p.link.empty()) b << "<a href=\"" << escape(p.link) << "\">" << escape(r.name) << "</a>";
    else b << escape(r.name);
    b << "<br><small>" << escape(r.subject) << "</small></td><td>" << escape(r.requester) << "<br><small>"
      << when(r.requested) << "</small></td><td>" << escape(r.reason) << "</td><td class=\"report\">";
    report_html(b, t, p.report);
    b << "</td><td class=\"decide\">";
    if (p.own) {
      b << t("ご自身の申請は決裁できません", "You cannot decide your own request");
    } else if (p.read_only) {
      b << t("閲覧のみ", "read only");
    } else {
      b << "<form method=\"post\" action=\"/approvals/" << r.id << "\">" << hidden_csrf(csrf) << "<label>"
        << t("コメント", "Comment") << " <input name=\"comment\" class=\"comment\" maxlength=\"500\"></label>";
      if (!p.report.infected)
        b << "<button type=\"submit\" name=\"decision\" value=\"approve\" class=\"approve\">" << t("承認", "Approve")
          << "</button> ";
      else
        b << "<span class=\"error\">" << t("ウイルスが検出されたため承認できません", "Infected: cannot be approved")
          << "</span> ";
      b << "<button type=\"submit\" name=\"decision\" value=\"reject\" class=\"reject\">" << t("却下", "Reject")
        << "</button></form>";
    }
    b << "</td></tr>\n";
  }
  b << "</tbody></table>\n<h2>" << t("最近の決裁", "Recent decisions") << "</h2>\n<table class=\"items\" id=\"decided\">\n"
    << "<thead><tr><th>" << t("対象", "Subject") << "</th><th>" << t("申請者", "Requester") << "</th><th>"
    << t("状態", "State") << "</th><th>" << t("決裁者", "Decided by") << "</th><th>" << t("日時", "When")
    << "</th></tr></thead>\n<tbody>\n";
  for (const auto& r : decided)
    b << "<tr data-id=\"" << r.id << "\"><td>" << escape(r.name) << "</td><td>" << escape(r.requester) << "</td><td>"
      << state_html(t, r) << (r.policy_exception ? t(" (ポリシー例外: LGWAN 側)", " (policy exception: LGWAN side)") : "")
      << "</td><td>" << escape(r.decided_by) << "</td><td>" << when(r.decided) << "</td></tr>\n";
  b << "</tbody></table>\n";
  return layout(t, t("原本取り出しの承認", "Approvals of originals"), who, csrf, t("LGWAN 接続系", "LGWAN zone"),
                b.str(), "approvals");
}

std::string originals(Lang t, const std::string& who, const std::string& nav, const std::string& csrf, bool lgwan,
                      const std::vector<ReleaseRequest>& list, std::chrono::system_clock::time_point now) {
  std::ostringstream b;
  b << nav << "<p>"
    << (lgwan ? t("承認された原本です。原本は無害化されていません。この画面での受け取りはポリシー上の例外として記録されます。",
                  "Approved originals. They are not sanitized; fetching them on the LGWAN side is recorded as a "
                  "policy exception.")
              : t("承認された原本です。原本は無害化されていません。インターネット接続系の環境で開いてください。",
                  "Approved originals. They are not sanitized: open them in the Internet-zone environment."))
    << "</p>\n";
  if (list.empty()) b << "<p id=\"empty\">" << t("ダウンロードできる原本はありません。", "No originals to download.") << "</p>\n";
  b << "<table class=\"items\" id=\"originals\">\n<thead><tr><th>" << t("ファイル", "File") << "</th><th>"
    << t("承認", "Approved") << "</th><th>" << t("期限", "Until") << "</th><th></th></tr></thead>\n<tbody>\n";
  for (const auto& r : list) {
    b << "<tr data-id=\"" << r.id << "\"><td>" << escape(r.name) << "</td><td>" << escape(r.decided_by) << " "
      << when(r.decided) << (r.comment.empty() ? "" : "<br>" + escape(r.comment)) << "</td><td>" << when(r.expires)
      << "</td><td>";
    if (r.downloadable(now))
      b << "<a class=\"download\" href=\"/originals/" << r.id << "/content\" download>"
        << t("原本をダウンロード", "Download the original") << "</a>";
    else
      b << t("期限切れ", "expired");
    b << "</td></tr>\n";
  }
  b << "</tbody></table>\n";
  return layout(t, t("原本のダウンロード", "Originals"), who, csrf,
                lgwan ? t("LGWAN 接続系", "LGWAN zone") : t("インターネット接続系", "Internet zone"), b.str(), "originals");
}

}  // namespace mukaika::http::pages
