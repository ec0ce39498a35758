// WebApp's PPAP pages (LGWAN side): /files/<id>/password for a held upload
// and /mail/<queue_id>/password for a mail whose encrypted attachments were
// held. GET shows the form; POST (CSRF) runs one attempt, on the blocking
// pool (decide() asked for the body), since it sanitizes in a worker.
// Others' items and mails answer 404; the password is wiped from the
// request once it has been handed on and is never written into a page.
#include <algorithm>
#include <optional>

#include "digest.h"
#include "http/ppap_pages.h"
#include "http/release_desk.h"
#include "http/web_app.h"
#include "http/web_app_detail.h"

namespace mukaika::http {

using webapp_detail::form_value;
using webapp_detail::lang_of;

namespace {

// Every non-empty value of `name` in a form body, at most `limit` + 1 (one
// more than allowed is enough to refuse). The decoded copies are the
// caller's to wipe.
std::vector<std::string> form_values(std::string_view body, std::string_view name, std::size_t limit) {
  std::vector<std::string> out;
  out.reserve(limit + 1);  // never moved: a short password lives inside the string itself
  while (!body.empty() && out.size() <= limit) {
    const auto amp = body.find('&');
    const std::string_view pair = body.substr(0, amp);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && percent_decode(pair.substr(0, eq), true) == name) {
      std::string v = percent_decode(pair.substr(eq + 1), true);
      if (!v.empty()) out.push_back(std::move(v));
    }
    if (amp == std::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return out;
}

// The password form of a POST (nothing for a GET), taken out of the request
// body, which is wiped; the passwords are wiped when this goes. `add`: the
// "add another password" button (no attempt); `fields`: the fields shown.
struct PasswordForm {
  std::vector<std::string> passwords;
  std::string csrf;
  bool add = false;
  int fields = 1;
  explicit PasswordForm(RequestHead& head) {
    if (head.method == "POST") {
      passwords = form_values(head.body, "password", pages::kMaxPasswords);
      csrf = form_value(head.body, "csrf");
      add = !form_value(head.body, "add").empty();
      try {
        fields = std::stoi(form_value(head.body, "fields"));
      } catch (const std::exception&) {
        fields = 1;
      }
      fields = std::clamp(std::max(fields, int(passwords.size())) + (add ? 1 : 0), 1, pages::kMaxPasswords);
    }
    wipe(head.body);
  }
  ~PasswordForm() { wipe_passphrases(passwords); }
  PasswordForm(const PasswordForm&) = delete;
  PasswordForm& operator=(const PasswordForm&) = delete;
};

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


// A POST that cannot be tried at all (expired page, no password, too many
// or too long, or only asking for another field): says why in `message` and
// returns its status; nullopt when the attempt may go ahead.
std::optional<int> refuse_form(pages::Lang t, const Session& session, const PasswordForm& form,
                               pages::PpapMessage& message) {
  message.fields = form.fields;
  if (!check_csrf(session, form.csrf)) {
    message.error = t("画面の有効期限が切れました。開き直してください", "The page expired; please reload it.");
    return 403;
  }
  if (form.add) return 200;  // one more field, nothing tried
  if (form.passwords.empty()) {
    message.error = t("パスワードを入力してください", "Please type the password.");
    return 400;
  }
  const bool too_long = std::any_of(form.passwords.begin(), form.passwords.end(),
                                    [](const std::string& p) { return p.size() > pages::kMaxPasswordBytes; });
  if (form.passwords.size() > std::size_t(pages::kMaxPasswords) || too_long) {
    message.error = t("パスワードは 8 個まで、それぞれ 1024 バイトまでです", "At most 8 passwords of up to 1024 bytes each.");
    return 400;
  }
  return std::nullopt;
}

// The results both kinds of attempt share, as the page says them.
enum class AttemptFailure { Wrong, Locked, Busy, Error };
int say_failure(pages::Lang t, AttemptFailure f, int attempts, int max_attempts, pages::PpapMessage& message) {
  switch (f) {
    case AttemptFailure::Wrong:
      message.error = wrong_text(t, attempts, max_attempts);
      return 422;
    case AttemptFailure::Locked:
      message.error = t("パスワードの誤りが上限に達したため、これ以上は試せません", "Too many wrong passwords: locked.");
      return 423;
    case AttemptFailure::Busy:
      message.error =
          t("別の試行を処理中です。少し待ってからもう一度どうぞ", "Another attempt is in progress; try again shortly.");
      return 409;
    case AttemptFailure::Error:
      break;
  }
  message.error = t("今は開けません。しばらくしてからもう一度どうぞ", "It cannot be opened now; please try again later.");
  return 503;
}

}  // namespace

Response WebApp::file_password(RequestHead& head, const std::string& id) {
  const pages::Lang t = lang_of(head);
  const PasswordForm form(head);

  Session session;
  const AccountConfig* account = signed_in(head, session);
  if (!account) return Response::redirect("/signin");
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  if (!config_.ppap.enabled || !has_role(*account, "recipient") || !item || !may_see_account(*account, *item))
    return page_response(404, pages::not_found(t));
  const int max = config_.ppap.max_attempts;
  pages::PpapMessage message;
  int status = 200;
  if (head.method == "POST") {
    if (const auto refused = refuse_form(t, session, form, message)) {
      status = *refused;
    } else {
      const auto out = box_.try_password(id, form.passwords, account->name, head.client_address, max);
      using R = DropBox::PasswordOutcome::Result;
      switch (out.result) {
        case R::Opened:
          return Response::redirect("/?opened=" + id);
        case R::NotHeld:
        case R::Unsupported:
        case R::Blocked:
          return Response::redirect("/");  // the inbox shows the new reason
        case R::Wrong:
          status = say_failure(t, AttemptFailure::Wrong, out.attempts, max, message);
          break;
        case R::Locked:
          status = say_failure(t, AttemptFailure::Locked, out.attempts, max, message);
          break;
        case R::Busy:
          status = say_failure(t, AttemptFailure::Busy, out.attempts, max, message);
          break;
        case R::Error:
          status = say_failure(t, AttemptFailure::Error, out.attempts, max, message);
          break;
      }
    }
    item = box_.find(id);
    if (!item) return page_response(404, pages::not_found(t));
  }
  return page_response(status, pages::file_password(t, display_name(*account), session.csrf_token, *item, max, message));
}

Response WebApp::mail_password(RequestHead& head, const std::string& queue_id) {
  const pages::Lang t = lang_of(head);
  const PasswordForm form(head);

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
  // Only the mail's recipient; the follow-up goes to their address among
  // the mail's recipients.
  const auto address = summary ? recipient_address_of(*account, *summary) : std::nullopt;
  if (!address) return page_response(404, pages::not_found(t));
  pages::MailPpapView view;
  view.queue_id = queue_id;
  view.mail_from = summary->value("mail_from", "");
  view.received = summary->value("received", "");
  view.held = held_attachments(*summary);
  view.max_attempts = mail_ppap_->max_attempts();
  if (view.held.empty()) return page_response(404, pages::not_found(t));

  pages::PpapMessage message;
  int status = 200;
  if (head.method == "POST") {
    if (const auto refused = refuse_form(t, session, form, message)) {
      status = *refused;
    } else {
      const auto out = mail_ppap_->try_password(queue_id, form.passwords, *address, account->name, head.client_address);
      const int max = view.max_attempts;
      using R = MailPpap::Outcome::Result;
      switch (out.result) {
        case R::Delivered:
          message.notice = t("開いて無害化しました。結果をメールで送りました", "Opened and sanitized; the result was sent to you by mail.");
          break;
        case R::NotHeld:
        case R::Unsupported:
        case R::Blocked:
          break;  // the record says what became of it
        case R::Wrong: {
          status = say_failure(t, AttemptFailure::Wrong, out.attempts, max, message);
          std::string which;
          for (const auto& p : out.not_opened) which += (which.empty() ? "" : ", ") + p;
          if (!which.empty()) message.error += t(" 開けなかったもの: ", " Not opened: ") + which;
          break;
        }
        case R::Locked:
          status = say_failure(t, AttemptFailure::Locked, out.attempts, max, message);
          break;
        case R::Busy:
          status = say_failure(t, AttemptFailure::Busy, out.attempts, max, message);
          break;
        case R::Error:
          status = say_failure(t, AttemptFailure::Error, out.attempts, max, message);
          break;
      }
    }
  }
  view.record = mail_ppap_->record(queue_id, *address);
  return page_response(status, pages::mail_password(t, display_name(*account), session.csrf_token, view, message));
}

std::string WebApp::held_mails_html(bool en, const AccountConfig& account) const {
  if (!config_.ppap.enabled || !mail_ppap_ || zone_ != Zone::Lgwan || !has_role(account, "recipient")) return "";
  try {
    return pages::held_mails(pages::Lang{en}, mail_ppap_->held_for(account.mail));
  } catch (const std::exception&) {
    return "";  // the inbox's files are still worth showing
  }
}

}  // namespace mukaika::http
