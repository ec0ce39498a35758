#include "http/ppap_pages.h"

#include <algorithm>
#include <sstream>

#include "queue/durable_io.h"

namespace mukaika::http::pages {

namespace {

std::string attempts_left(Lang t, int attempts, int max_attempts) {
  const int left = std::max(0, max_attempts - attempts);
  return t.en ? std::to_string(left) + " of " + std::to_string(max_attempts) + " attempts left"
              : "あと " + std::to_string(left) + " 回 (上限 " + std::to_string(max_attempts) + " 回)";
}

// What cannot be opened here, said before anyone types (docs/ppap.md).
std::string supported_note(Lang t) {
  return std::string("<p class=\"ppap-support\">") +
         t("開けるもの: パスワード付き zip (ZipCrypto、AES)・7z・PDF。RAR のパスワード付きファイルと"
           "パスワード付きの Office 文書は開けません。",
           "Can be opened: password-protected zip (ZipCrypto, AES), 7z and PDF. Password-protected RAR files and "
           "Office documents cannot be opened here.") +
         "</p>\n";
}

void messages(std::ostringstream& b, const PpapMessage& m) {
  if (!m.error.empty()) b << "<p class=\"error\" id=\"ppap-error\" role=\"alert\">" << escape(m.error) << "</p>\n";
  if (!m.notice.empty()) b << "<p class=\"notice\" id=\"ppap-notice\">" << escape(m.notice) << "</p>\n";
}

// One password field per encrypted attachment with its own password; the
// "add" button asks for one more field (app.js adds it in place; without
// script the page comes back with one more, empty, field: nothing typed is
// ever written back).
void form(std::ostringstream& b, Lang t, const std::string& action, const std::string& csrf, int fields) {
  fields = std::clamp(fields, 1, kMaxPasswords);
  b << "<form method=\"post\" action=\"" << escape(action) << "\" class=\"ppap\" autocomplete=\"off\">\n"
    << "<input type=\"hidden\" name=\"csrf\" value=\"" << escape(csrf) << "\">\n"
    << "<input type=\"hidden\" name=\"fields\" id=\"ppap-fields\" value=\"" << fields << "\">\n<div id=\"ppap-list\">\n";
  for (int i = 0; i < fields; ++i)
    b << "<p><label>" << t("パスワード", "Password")
      << " <input name=\"password\" id=\"ppap-password" << (i ? "-" + std::to_string(i + 1) : std::string())
      << "\" class=\"ppap-password\" type=\"password\" autocomplete=\"off\"" << (i ? "" : " required")
      << " maxlength=\"" << kMaxPasswordBytes << "\"></label></p>\n";
  b << "</div>\n<p class=\"ppap-hint\">"
    << t("添付ファイルごとにパスワードが違うときは、欄を追加してすべて入力してください (1 回の試行として数えます)。",
         "If the attachments have different passwords, add fields and type them all (counted as one attempt).")
    << "</p>\n";
  // "Open" first: Enter in a field presses the form's first button.
  b << "<button type=\"submit\" id=\"ppap-submit\">" << t("開く", "Open") << "</button>\n";
  if (fields < kMaxPasswords)
    b << "<button type=\"submit\" name=\"add\" value=\"1\" formnovalidate id=\"ppap-add\" data-max=\""
      << kMaxPasswords << "\">" << t("パスワードを追加", "Add another password") << "</button>\n";
  b << "</form>\n";
}

}  // namespace

std::string held_action(Lang t, const DropItem& i) {
  if (i.password_locked)
    return std::string("<span class=\"ppap-locked\">") + t("パスワードの誤りが上限に達しました", "locked: too many wrong passwords") +
           "</span>";
  return "<a class=\"ppap-open\" href=\"/files/" + i.id + "/password\">" +
         t("パスワードを入力", "Enter the password") + "</a>";
}

std::string file_password(Lang t, const std::string& who, const std::string& csrf, const DropItem& i,
                          int max_attempts, const PpapMessage& message) {
  std::ostringstream b;
  messages(b, message);
  b << "<dl class=\"ppap-item\"><dt>" << t("ファイル", "File") << "</dt><dd id=\"ppap-name\">" << escape(i.name)
    << "</dd><dt>" << t("送信者", "Sender") << "</dt><dd>" << escape(i.uploader) << "</dd><dt>"
    << t("受付日時", "Received") << "</dt><dd>" << escape(queue_detail::iso8601_local(i.received).substr(0, 16))
    << "</dd></dl>\n";
  if (i.held.empty()) {
    b << "<p>" << t("このファイルはパスワード待ちではありません。", "This file is not waiting for a password.")
      << "</p>\n";
  } else if (i.password_locked) {
    b << "<p class=\"error\" id=\"ppap-locked\">"
      << t("パスワードの誤りが上限に達したため、このファイルは開けません。送信者に送り直しを依頼してください。",
           "Too many wrong passwords: this file cannot be opened any more. Ask the sender to send it again.")
      << "</p>\n";
  } else {
    b << "<p>"
      << t("このファイルはパスワードで保護されているため保留しています。送信者から届いたパスワードを入力すると、"
           "ゲートウェイが開いて無害化し、受信箱に置きます。",
           "This file is password-protected and is held. Type the password the sender gave you; the gateway "
           "opens it, sanitizes the contents and puts the result in your inbox.")
      << "</p>\n<p id=\"ppap-attempts\">" << escape(attempts_left(t, i.password_attempts, max_attempts)) << "</p>\n";
    form(b, t, "/files/" + i.id + "/password", csrf, message.fields);
    b << supported_note(t);
  }
  b << "<p><a href=\"/\" id=\"ppap-back\">" << t("受信箱に戻る", "Back to the inbox") << "</a></p>\n";
  return frame(t, t("パスワードの入力", "Enter the password"), who, csrf, true, b.str(), "ppap-file");
}

std::string mail_ppap_state_label(Lang t, const std::string& state) {
  if (state == "delivered") return t("開いて無害化し、あなたにメールで送りました", "Opened, sanitized and sent to you by mail");
  if (state == "locked") return t("パスワードの誤りが上限に達しました", "Locked: too many wrong passwords");
  if (state == "blocked" || state == "unsupported") return t("開けませんでした", "Could not be opened");
  return t("パスワード待ちで保留中", "Held until you type the password");
}

std::string held_mails(Lang t, const std::vector<MailPpap::HeldMail>& mails) {
  if (mails.empty()) return "";
  std::ostringstream b;
  b << "<h2>" << t("パスワード付きの添付ファイルがあるメール", "Mails with password-protected attachments") << "</h2>\n"
    << "<table class=\"items\" id=\"held-mails\">\n<thead><tr><th>" << t("件名", "Subject") << "</th><th>"
    << t("差出人 (エンベロープ)", "Sender (envelope)") << "</th><th>" << t("受信日時", "Received") << "</th><th>"
    << t("保留中の添付ファイル", "Held attachments") << "</th><th>" << t("状態", "State") << "</th><th></th></tr></thead>\n<tbody>\n";
  for (const auto& m : mails) {
    const std::string state = MailPpap::state_of(m.record);
    b << "<tr data-queue-id=\"" << escape(m.queue_id) << "\" data-state=\"" << escape(state) << "\"><td><a href=\"/mail/"
      << escape(m.queue_id) << "\">" << escape(m.subject.empty() ? m.queue_id : m.subject) << "</a></td><td>"
      << escape(m.mail_from) << "</td><td>" << escape(m.received.substr(0, 16)) << "</td><td><ul>";
    for (const auto& h : m.held) b << "<li>" << escape(h.substr(h.find('/') + 1)) << "</li>";
    b << "</ul></td><td class=\"ppap-state\">" << mail_ppap_state_label(t, state) << "</td><td class=\"actions\">";
    if (state == "held")
      b << "<a class=\"ppap-open\" href=\"/mail/" << escape(m.queue_id) << "/password\">"
        << t("パスワードを入力", "Enter the password") << "</a>";
    b << "</td></tr>\n";
  }
  b << "</tbody></table>\n";
  return b.str();
}

std::string mail_password(Lang t, const std::string& who, const std::string& csrf, const MailPpapView& m,
                          const PpapMessage& message) {
  std::ostringstream b;
  messages(b, message);
  b << "<dl class=\"ppap-item\"><dt>" << t("差出人 (エンベロープ)", "Sender (envelope)") << "</dt><dd>"
    << escape(m.mail_from) << "</dd><dt>" << t("受信日時", "Received") << "</dt><dd>" << escape(m.received.substr(0, 16))
    << "</dd><dt>" << t("受付番号", "Queue id") << "</dt><dd>" << escape(m.queue_id) << "</dd></dl>\n";
  b << "<h2>" << t("保留中の添付ファイル", "Held attachments") << "</h2>\n<ul id=\"ppap-held\">";
  for (const auto& h : m.held) b << "<li>" << escape(h.path) << "</li>";
  b << "</ul>\n";
  const MailPpap::Record& r = m.record;
  if (r.state == "delivered") {
    b << "<p class=\"notice\" id=\"ppap-delivered\">"
      << t("開いて無害化した結果をメールで送りました", "Opened, sanitized and sent to you by mail") << " ("
      << escape(r.delivered_to) << ", " << escape(r.time.substr(0, 16)) << ")</p>\n";
  } else if (r.state == "blocked" || r.state == "unsupported") {
    b << "<p class=\"error\" id=\"ppap-blocked\">" << escape(r.reason.empty() ? t("開けませんでした", "It could not be opened.") : r.reason)
      << "</p>\n";
  } else if (r.locked) {
    b << "<p class=\"error\" id=\"ppap-locked\">"
      << t("パスワードの誤りが上限に達したため、このメールの添付ファイルは開けません。送信者に送り直しを依頼してください。",
           "Too many wrong passwords: these attachments cannot be opened any more. Ask the sender to send them again.")
      << "</p>\n";
  } else {
    b << "<p>"
      << t("パスワード付きの添付ファイルは中身を検査できないため、メールから外して保留しています。送信者から届いた"
           "パスワードを入力すると、ゲートウェイが開いて無害化し、結果をメールであなたに送ります。",
           "Password-protected attachments cannot be inspected, so they were taken out of the mail and are held. "
           "Type the password the sender gave you; the gateway opens them, sanitizes the contents and mails the "
           "result to you.")
      << "</p>\n<p id=\"ppap-attempts\">" << escape(attempts_left(t, r.attempts, m.max_attempts)) << "</p>\n";
    form(b, t, "/mail/" + m.queue_id + "/password", csrf, message.fields);
    b << supported_note(t);
  }
  return frame(t, t("パスワード付き添付ファイル", "Password-protected attachments"), who, csrf, true, b.str(),
               "ppap-mail");
}

}  // namespace mukaika::http::pages
