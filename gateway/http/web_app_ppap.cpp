// WebApp's PPAP pages (LGWAN side): /files/<id>/password for a held upload
// and /mail/<queue_id>/password for a mail whose encrypted attachments were
// held. GET shows the form; POST (CSRF) runs one attempt, on the blocking
// pool (decide() asked for the body), since it sanitizes in a worker.
// Others' items and mails answer 404; the password is wiped from the
// request once it has been handed on and is never written into a page.
#include <algorithm>

#include "digest.h"
#include "http/ppap_pages.h"
#include "http/web_app.h"

namespace mukaika::http {

namespace {

pages::Lang page_lang(const RequestHead& head) {
  std::string q = head.query_param("lang");
  if (q.empty()) q = head.cookie("mk_lang");
  return pages::Lang{q == "en"};
}

std::string body_field(const std::string& body, std::string_view name) {
  RequestHead h;
  h.query = body;
  std::string v = h.query_param(name);
  wipe(h.query);
  return v;
}

Response page_response(int status, std::string body) {
  return Response::text(status, std::move(body), "text/html; charset=utf-8");
}

std::string display_name(const AccountConfig& a) { return a.display_name.empty() ? a.name : a.display_name; }

// The wrong-password sentence, with what is left.
std::string wrong_text(pages::Lang t, int attempts, int max_attempts) {
  const int left = std::max(0, max_attempts - attempts);
  return t.en ? "Wrong password (" + std::to_string(attempts) + " of " + std::to_string(max_attempts) +
                    " wrong; " + std::to_string(left) + " left)."
              : "パスワードが違います (誤り " + std::to_string(attempts) + " 回目、あと " + std::to_string(left) + " 回)";
}

const char* locked_text(pages::Lang t) {
  return t("パスワードの誤りが上限に達したため、これ以上は試せません", "Too many wrong passwords: locked.");
}
const char* busy_text(pages::Lang t) {
  return t("別の試行を処理中です。少し待ってからもう一度どうぞ", "Another attempt is in progress; try again shortly.");
}
const char* csrf_text(pages::Lang t) {
  return t("画面の有効期限が切れました。開き直してください", "The page expired; please reload it.");
}

}  // namespace

Response WebApp::file_password(RequestHead& head, const std::string& id) {
  const pages::Lang t = page_lang(head);
  std::string password = head.method == "POST" ? body_field(head.body, "password") : "";
  const std::string csrf = head.method == "POST" ? body_field(head.body, "csrf") : "";
  wipe(head.body);
  struct Wipe {
    std::string& s;
    ~Wipe() { wipe(s); }
  } wipe_on_return{password};

  Session session;
  const AccountConfig* account = signed_in(head, session);
  if (!account) return Response::redirect("/signin");
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  const bool recipient = std::find(account->roles.begin(), account->roles.end(), "recipient") != account->roles.end();
  if (!config_.ppap.enabled || !recipient || !item || !may_see_account(*account, *item))
    return page_response(404, pages::not_found(t));
  const int max = config_.ppap.max_attempts;
  pages::PpapMessage message;
  int status = 200;
  if (head.method == "POST") {
    if (!check_csrf(session, csrf)) {
      message.error = csrf_text(t);
      status = 403;
    } else if (password.empty()) {
      message.error = t("パスワードを入力してください", "Please type the password.");
      status = 400;
    } else {
      std::vector<std::string> passphrases{password};
      const auto out = box_.try_password(id, std::move(passphrases), account->name, head.client_address, max);
      using R = DropBox::PasswordOutcome::Result;
      switch (out.result) {
        case R::Opened:
          return Response::redirect("/?opened=" + id);
        case R::Wrong:
          message.error = wrong_text(t, out.attempts, max);
          status = 422;
          break;
        case R::Locked:
          message.error = locked_text(t);
          status = 423;
          break;
        case R::Busy:
          message.error = busy_text(t);
          status = 409;
          break;
        case R::NotHeld:
          return Response::redirect("/");
        case R::Unsupported:
        case R::Blocked:
          return Response::redirect("/");  // the inbox shows the new reason
        case R::Error:
          message.error = t("今は開けません。しばらくしてからもう一度どうぞ", "It cannot be opened now; please try again later.");
          status = 503;
          break;
      }
    }
    item = box_.find(id);
    if (!item) return page_response(404, pages::not_found(t));
  }
  return page_response(status, pages::file_password(t, display_name(*account), session.csrf_token, *item, max, message));
}

Response WebApp::mail_password(RequestHead& head, const std::string& queue_id) {
  const pages::Lang t = page_lang(head);
  std::string password = head.method == "POST" ? body_field(head.body, "password") : "";
  const std::string csrf = head.method == "POST" ? body_field(head.body, "csrf") : "";
  wipe(head.body);
  struct Wipe {
    std::string& s;
    ~Wipe() { wipe(s); }
  } wipe_on_return{password};

  Session session;
  const AccountConfig* account = signed_in(head, session);
  if (!account) return Response::redirect("/signin");
  if (!config_.ppap.enabled || !quarantine_ || !mail_ppap_) return page_response(404, pages::not_found(t));
  std::optional<nlohmann::json> summary;
  try {
    summary = quarantine_->summary(queue_id);
  } catch (const std::exception&) {
    summary.reset();
  }
  if (!summary || !is_recipient_of(*account, *summary)) return page_response(404, pages::not_found(t));
  pages::MailPpapView view;
  view.queue_id = queue_id;
  view.mail_from = summary->value("mail_from", "");
  view.received = summary->value("received", "");
  view.held = held_attachments(*summary);
  view.max_attempts = mail_ppap_->max_attempts();
  if (view.held.empty()) return page_response(404, pages::not_found(t));
  // The follow-up goes to this account's address among the mail's recipients.
  std::string address;
  for (const auto& r : summary->value("recipients", nlohmann::json::array())) {
    if (!r.is_string()) continue;
    std::string a = r.get<std::string>();
    std::transform(a.begin(), a.end(), a.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (address.empty() && std::find(account->mail.begin(), account->mail.end(), a) != account->mail.end())
      address = r.get<std::string>();
  }

  pages::PpapMessage message;
  int status = 200;
  if (head.method == "POST") {
    if (!check_csrf(session, csrf)) {
      message.error = csrf_text(t);
      status = 403;
    } else if (password.empty()) {
      message.error = t("パスワードを入力してください", "Please type the password.");
      status = 400;
    } else {
      std::vector<std::string> passphrases{password};
      const auto out =
          mail_ppap_->try_password(queue_id, std::move(passphrases), address, account->name, head.client_address);
      using R = MailPpap::Outcome::Result;
      switch (out.result) {
        case R::Delivered:
          message.notice = t("開いて無害化しました。結果をメールで送りました", "Opened and sanitized; the result was sent to you by mail.");
          break;
        case R::Wrong:
          message.error = wrong_text(t, out.attempts, view.max_attempts);
          status = 422;
          break;
        case R::Locked:
          message.error = locked_text(t);
          status = 423;
          break;
        case R::Busy:
          message.error = busy_text(t);
          status = 409;
          break;
        case R::NotHeld:
        case R::Unsupported:
        case R::Blocked:
          break;  // the record says what became of it
        case R::Error:
          message.error = t("今は開けません。しばらくしてからもう一度どうぞ", "It cannot be opened now; please try again later.");
          status = 503;
          break;
      }
    }
  }
  view.record = mail_ppap_->record(queue_id);
  return page_response(status, pages::mail_password(t, display_name(*account), session.csrf_token, view, message));
}

}  // namespace mukaika::http
