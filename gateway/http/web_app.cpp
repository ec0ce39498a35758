#include "http/web_app.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "ascii.h"
#include "digest.h"
#include "http/audit_search.h"
#include "http/multipart.h"
#include "http/pages.h"
#include "http/pages_release.h"
#include "http/web_app_detail.h"
#include "queue/durable_io.h"

namespace mukaika::http {

using webapp_detail::form_value;
using webapp_detail::html;
using webapp_detail::lang_of;

namespace {

using SysClock = std::chrono::system_clock;

constexpr std::uint64_t kFormLimit = 64 * 1024;  // sign-in and small forms
constexpr std::size_t kNoteLimit = 2000;         // bytes of a note
constexpr std::size_t kMaxFilesPerUpload = 100;

// Per zone: browsers do not separate cookies by port, and on one host (the
// demo on loopback) one zone's sign-in must not replace the other's.
const char* session_cookie(Zone z) { return z == Zone::Internet ? "mk_session_inet" : "mk_session_lgwan"; }
// The sign-in form's CSRF token (double submit) before a session exists.
const char* pre_cookie(Zone z) { return z == Zone::Internet ? "mk_pre_inet" : "mk_pre_lgwan"; }
const char* const kLangCookie = "mk_lang";

Response error_json(int status, const std::string& code, const std::string& ja, const std::string& en) {
  nlohmann::json j = {{"error", code}, {"message", ja}, {"message_en", en}};
  return Response::json(status, j.dump());
}


bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool lower_ascii_contains_multipart(std::string_view type) {
  return ascii_lower(type).find("multipart/") != std::string::npos;
}

Response storage_error(const std::exception& e) {
  return error_json(503, "storage", std::string("今は受け取れません: ") + e.what(),
                    std::string("cannot store uploads now: ") + e.what())
      .with("Retry-After", "60");
}


std::string cookie(const RequestHead& head, const std::string& name, const std::string& value, bool expire = false) {
  std::string c = name + "=" + value + "; Path=/; HttpOnly; SameSite=Strict";
  if (head.tls) c += "; Secure";
  if (expire) c += "; Max-Age=0";
  return c;
}

bool verify_csrf_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// PPAP: /mail/<queue_id>/password (web_app_ppap.cpp).
bool is_mail_password(std::string_view p) {
  return p.size() > 15 && p.substr(0, 6) == "/mail/" && p.substr(p.size() - 9) == "/password";
}

}  // namespace

namespace webapp_detail {

std::string form_value(std::string_view body, std::string_view name) {
  RequestHead h;
  h.query = std::string(body);
  std::string v = h.query_param(name);
  wipe(h.query);  // a form may carry a password (PPAP)
  return v;
}

pages::Lang lang_of(const RequestHead& head) {
  std::string q = head.query_param("lang");
  if (q.empty()) q = head.cookie(kLangCookie);
  return pages::Lang{q == "en"};
}

Response html(std::string body) { return Response::text(200, std::move(body), "text/html; charset=utf-8"); }

}  // namespace webapp_detail

// Who is asking: an API client, a signed-in person, or nobody.
std::optional<std::string> recipient_address_of(const AccountConfig& account, const nlohmann::json& kept_summary) {
  const auto it = kept_summary.find("recipients");
  if (it == kept_summary.end() || !it->is_array()) return std::nullopt;
  for (const auto& r : *it) {
    if (!r.is_string()) continue;
    const std::string rcpt = ascii_lower(r.get<std::string>());
    if (std::find(account.mail.begin(), account.mail.end(), rcpt) != account.mail.end()) return r.get<std::string>();
  }
  return std::nullopt;
}

bool is_recipient_of(const AccountConfig& account, const nlohmann::json& kept_summary) {
  return recipient_address_of(account, kept_summary).has_value();
}

struct WebApp::Caller {
  std::optional<std::string> api_client;  // name, when a valid Bearer token came
  bool bad_token = false;                 // a token came and was not valid
  std::optional<Session> session;
  const AccountConfig* account = nullptr;
  bool has_role(std::string_view role) const {
    return account && std::find(account->roles.begin(), account->roles.end(), role) != account->roles.end();
  }
  std::string owner() const { return api_client ? "api:" + *api_client : (account ? account->name : ""); }
};

WebApp::WebApp(Zone zone, const Config& config, DropBox& box)
    : zone_(zone),
      config_(config),
      box_(box),
      sessions_(SessionStore::Limits{std::chrono::minutes(config.http.session_idle_minutes), std::chrono::hours(12),
                                     10000}),
      limiter_(SignInLimiter::Limits{static_cast<std::size_t>(config.http.signin_max_failures),
                                     static_cast<std::size_t>(config.http.signin_max_failures) * 4,
                                     std::chrono::minutes(config.http.signin_lock_minutes), 100000}) {}

bool WebApp::uses_demo_credentials(const Config& config) {
  for (const auto& a : config.accounts)
    if (a.name.rfind("demo-", 0) == 0 || verify_password(a.password_hash, a.name)) return true;
  for (const auto& c : config.api_clients)
    if (verify_token(c.token_hash, "demo-token")) return true;
  return false;
}

WebApp::Caller WebApp::identify(const RequestHead& head) {
  Caller c;
  if (const std::string* auth = head.header("authorization")) {
    if (auth->size() > 7 && (starts_with(*auth, "Bearer ") || starts_with(*auth, "bearer "))) {
      const std::string token = auth->substr(7);
      for (const auto& client : config_.api_clients)
        if (verify_token(client.token_hash, token)) c.api_client = client.name;
    }
    if (!c.api_client) c.bad_token = true;
    return c;
  }
  const std::string sid = head.cookie(session_cookie(zone_));
  if (!sid.empty()) {
    c.session = sessions_.find(sid);
    if (c.session)
      for (const auto& a : config_.accounts)
        if (a.name == c.session->principal.account) c.account = &a;
    if (!c.account) c.session.reset();
  }
  return c;
}

bool WebApp::valid_recipient(const std::string& r) const {
  if (r.empty()) return true;
  for (const auto& a : config_.accounts)
    if (a.name == r && std::find(a.roles.begin(), a.roles.end(), "recipient") != a.roles.end()) return true;
  return std::find(config_.dropbox.departments.begin(), config_.dropbox.departments.end(), r) !=
         config_.dropbox.departments.end();
}

const AccountConfig* WebApp::signed_in(const RequestHead& head, Session& session) {
  Caller c = identify(head);
  if (!c.session || !c.account) return nullptr;
  session = *c.session;
  return c.account;
}

bool WebApp::may_see_account(const AccountConfig& account, const DropItem& item) const {
  Caller c;
  c.account = &account;
  return may_see(c, item);
}

bool WebApp::may_see(const Caller& caller, const DropItem& item) const {
  if (caller.api_client) return item.uploader == caller.owner();
  if (!caller.account) return false;
  if (zone_ == Zone::Internet) return caller.has_role("uploader") && item.uploader == caller.account->name;
  return is_recipient_of_item(*caller.account, item);
}

bool is_recipient_of_item(const AccountConfig& account, const DropItem& item) {
  return has_role(account, "recipient") &&
         (item.recipient == account.name || (!account.department.empty() && item.recipient == account.department));
}


// ----------------------------------------------------------------- uploads

namespace {

// Stores the files of one upload request as they stream in; commits them
// only when the whole request arrived.
class UploadSink : public BodySink, public MultipartHandler {
 public:
  UploadSink(DropBox& box, DropItem base, std::optional<std::string> boundary, std::string raw_name,
             std::function<bool(const std::string&)> valid_recipient)
      : box_(box), base_(std::move(base)), valid_recipient_(std::move(valid_recipient)) {
    if (boundary) {
      MultipartParser::Limits limits;
      limits.max_parts = kMaxFilesPerUpload + 10;
      limits.max_field_bytes = 16 * 1024;
      parser_.emplace(*boundary, *this, limits);
    } else {
      current_ = box_.begin_upload();
      current_name_ = safe_upload_name(raw_name);
    }
  }

  std::optional<Response> write(std::string_view piece) override {
    try {
      if (!parser_) {
        current_->write(piece);
        return std::nullopt;
      }
      parser_->feed(piece);
    } catch (const DropBoxError& e) {
      return storage_error(e);  // disk full and the like: nothing of this request is kept
    }
    if (parser_->failed()) return bad_multipart();
    if (too_many_) return error_json(400, "too_many_files", "1 回に送れるファイルは " + std::to_string(kMaxFilesPerUpload) + " 個までです",
                                     "at most " + std::to_string(kMaxFilesPerUpload) + " files per upload");
    return std::nullopt;
  }

  Response finish(bool complete) override {
    if (!complete) {
      // Interrupted: every file of this request goes (the Uploads remove themselves).
      files_.clear();
      current_.reset();
      return error_json(400, "incomplete", "アップロードが途中で切れました。もう一度送ってください",
                        "the upload was interrupted; please send it again");
    }
    if (parser_) {
      if (!parser_->finish()) return bad_multipart();
    } else {
      files_.emplace_back(std::move(current_), current_name_);
    }
    if (files_.empty())
      return error_json(400, "no_file", "ファイルがありません (file という名前の欄で送ってください)",
                        "no file in the request (send it in a field named \"file\")");
    if (base_.note.size() > kNoteLimit)
      return error_json(400, "note_too_long", "メモが長すぎます", "the note is too long");
    if (!valid_recipient_(base_.recipient))
      return error_json(400, "unknown_recipient", "宛先「" + base_.recipient + "」は設定にありません",
                        "unknown recipient \"" + base_.recipient + "\"");
    nlohmann::json list = nlohmann::json::array();
    try {
      for (auto& [upload, name] : files_) {
        DropItem item = base_;
        item.name = name;
        DropItem stored = box_.commit(*upload, item);
        list.push_back({{"id", stored.id}, {"name", stored.name}, {"size", stored.size}, {"status", "queued"}});
      }
    } catch (const DropBoxError& e) {
      // Files committed before the failure are stored and will be processed;
      // the client hears 503 and may send again (at worst a duplicate, never a loss).
      return storage_error(e);
    }
    nlohmann::json j = {{"files", list}};
    if (list.size() == 1) {
      j["id"] = list[0]["id"];
      j["status"] = "queued";
    }
    return Response::json(202, j.dump());
  }

  void on_part_begin(const PartHeaders& part) override {
    field_.clear();
    field_name_ = part.name;
    in_file_ = part.is_file() && part.name == "file";
    if (in_file_) {
      if (part.filename->empty()) {
        in_file_ = false;  // "no file chosen" in a browser form
        skip_ = true;
        return;
      }
      if (files_.size() >= kMaxFilesPerUpload) {
        too_many_ = true;
        in_file_ = false;
        skip_ = true;
        return;
      }
      current_ = box_.begin_upload();
      current_name_ = safe_upload_name(*part.filename);
    }
    skip_ = false;
  }
  void on_part_data(std::string_view bytes) override {
    if (in_file_)
      current_->write(bytes);
    else if (!skip_)
      field_.append(bytes);
  }
  void on_part_end() override {
    if (in_file_) {
      files_.emplace_back(std::move(current_), current_name_);
    } else if (!skip_) {
      if (field_name_ == "recipient") base_.recipient = field_;
      if (field_name_ == "note") base_.note = field_;
    }
    in_file_ = false;
  }

 private:
  Response bad_multipart() {
    const ErrorText t = error_text(parser_->error());
    return error_json(400, "bad_multipart", "送られたフォームが正しくありません: " + std::string(t.ja),
                      "malformed multipart/form-data: " + std::string(t.en));
  }

  DropBox& box_;
  DropItem base_;
  std::function<bool(const std::string&)> valid_recipient_;
  std::optional<MultipartParser> parser_;
  std::vector<std::pair<std::unique_ptr<DropBox::Upload>, std::string>> files_;
  std::unique_ptr<DropBox::Upload> current_;
  std::string current_name_;
  std::string field_name_, field_;
  bool in_file_ = false, skip_ = false, too_many_ = false;
};

}  // namespace

Decision WebApp::upload(RequestHead& head, const Caller& caller) {
  if (caller.bad_token)
    return Decision::respond(error_json(401, "bad_token", "トークンが正しくありません", "invalid token")
                                 .with("WWW-Authenticate", "Bearer"));
  if (!caller.api_client) {
    if (!caller.session)
      return Decision::respond(error_json(401, "unauthenticated", "サインインするかトークンを付けてください",
                                          "sign in or send a Bearer token")
                                   .with("WWW-Authenticate", "Bearer"));
    if (!caller.has_role("uploader"))
      return Decision::respond(error_json(403, "forbidden", "このアカウントはアップロードできません",
                                          "this account may not upload"));
    const std::string* csrf = head.header("x-csrf-token");
    if (!csrf || !check_csrf(*caller.session, *csrf))
      return Decision::respond(error_json(403, "csrf", "画面を開き直してください (CSRF トークンが違います)",
                                          "reload the page (CSRF token mismatch)"));
  }
  DropItem base;
  base.uploader = caller.owner();
  base.client_address = head.client_address;
  base.recipient = head.query_param("recipient");
  base.note = head.query_param("note");
  const std::string* type = head.header("content-type");
  std::optional<std::string> boundary;
  std::string raw_name;
  if (type && boundary_from_content_type(*type)) {
    boundary = boundary_from_content_type(*type);
  } else if (type && lower_ascii_contains_multipart(*type)) {
    return Decision::respond(error_json(400, "bad_multipart", "multipart/form-data の boundary がありません",
                                        "multipart/form-data without a valid boundary"));
  } else {
    raw_name = head.query_param("name");
    if (raw_name.empty())
      return Decision::respond(error_json(400, "no_name",
                                          "ファイル名がありません (multipart/form-data で送るか ?name= を付けてください)",
                                          "no file name (send multipart/form-data, or a raw body with ?name=)"));
  }
  try {
    auto sink = std::make_unique<UploadSink>(box_, base, boundary, raw_name,
                                             [this](const std::string& r) { return valid_recipient(r); });
    return Decision::stream(config_.http.max_upload_bytes, std::move(sink));
  } catch (const DropBoxError& e) {
    return Decision::respond(storage_error(e));
  }
}

// ----------------------------------------------------------------- reading

namespace {

nlohmann::json api_item(const DropItem& i) {
  nlohmann::json j = {{"id", i.id},
                      {"name", i.name},
                      {"size", i.size},
                      {"sha256", i.sha256},
                      {"status", to_string(i.status)},
                      {"verdict", i.verdict.empty() ? nlohmann::json(nullptr) : nlohmann::json(i.verdict)},
                      {"report", i.report.is_null() ? nlohmann::json(nullptr) : i.report},
                      {"received", queue_detail::iso8601_local(i.received)},
                      {"uploader", i.uploader},
                      {"recipient", i.recipient},
                      {"note", i.note},
                      {"picked_up", i.picked_up}};
  if (!i.reason.empty()) j["reason"] = {{"ja", i.reason}, {"en", i.reason_en}};
  if (i.status == ItemStatus::Done)
    j["output"] = {{"name", i.output_name}, {"type", i.output_type}, {"size", i.output_size}, {"sha256", i.sha256_output}};
  if (i.status == ItemStatus::Done || i.status == ItemStatus::Blocked || i.status == ItemStatus::Failed)
    j["finished"] = queue_detail::iso8601_local(i.finished);
  return j;
}

Response unauthorized(const WebApp* /*unused*/ = nullptr) {
  return error_json(401, "unauthenticated", "サインインするかトークンを付けてください", "sign in or send a Bearer token")
      .with("WWW-Authenticate", "Bearer");
}

Response not_found_json() { return error_json(404, "not_found", "見つかりません", "not found"); }

}  // namespace

Response WebApp::file_status(const RequestHead& head, const std::string& id) {
  Caller caller = identify(head);
  if (caller.bad_token || (!caller.api_client && !caller.session)) return unauthorized();
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  // Someone else's item answers as if it did not exist.
  if (!item || !may_see(caller, *item)) return not_found_json();
  return Response::json(200, api_item(*item).dump());
}

Response WebApp::file_content(const RequestHead& head, const std::string& id) {
  Caller caller = identify(head);
  if (caller.bad_token || (!caller.api_client && !caller.session)) return unauthorized();
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  if (!item || !may_see(caller, *item)) return not_found_json();
  if (item->status == ItemStatus::Blocked || item->status == ItemStatus::Failed)
    return error_json(410, to_string(item->status) == std::string_view("blocked") ? "blocked" : "failed",
                      item->reason.empty() ? "遮断されたため渡せません" : item->reason,
                      item->reason_en.empty() ? "blocked: not passed on" : item->reason_en);
  auto path = box_.output_path(id);
  if (!path)
    return error_json(409, "not_done", "まだ無害化が終わっていません", "not sanitized yet").with("Retry-After", "2");
  Response r;
  r.file = *path;
  r.headers.emplace_back("Content-Type", item->output_type.empty() ? "application/octet-stream" : item->output_type);
  r.headers.emplace_back("Content-Disposition", content_disposition_attachment(item->output_name));
  return r;
}

Response WebApp::thumbnail(const RequestHead& head, const std::string& id) {
  Caller caller = identify(head);
  if (!caller.session) return unauthorized();
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  if (!item || !may_see(caller, *item) || item->status != ItemStatus::Done) return not_found_json();
  // A PDF's first page, rendered by a worker from the sanitized PDF; a
  // sanitized image (re-encoded from pixels by the workers) is its own
  // thumbnail, scaled by the page.
  std::optional<std::filesystem::path> path;
  std::string type = "image/png";
  if (item->thumbnail) {
    path = box_.thumbnail_path(id);
  } else if (item->output_type == "image/png" || item->output_type == "image/jpeg") {
    path = box_.output_path(id);
    type = item->output_type;
  }
  if (!path) return not_found_json();
  Response r;
  r.file = *path;
  r.headers.emplace_back("Content-Type", type);
  r.headers.emplace_back("Content-Disposition", "inline");
  return r;
}

// ----------------------------------------------------------------- sign-in

Response WebApp::sign_in(RequestHead& head) {
  const pages::Lang t = lang_of(head);
  const bool lgwan = zone_ == Zone::Lgwan;
  const std::string pre = head.cookie(pre_cookie(zone_));
  const std::string form_csrf = form_value(head.body, "csrf");
  const std::string name = form_value(head.body, "name");
  const std::string password = form_value(head.body, "password");
  auto again = [&](int status, const std::string& error) {
    const std::string token = random_token();
    return Response::text(status, pages::sign_in(t, lgwan, token, error, ""), "text/html; charset=utf-8")
        .with("Set-Cookie", cookie(head, pre_cookie(zone_), token));
  };
  if (pre.empty() || form_csrf.size() != pre.size() || !verify_csrf_equal(form_csrf, pre))
    return again(403, t("画面の有効期限が切れました。もう一度サインインしてください", "The page expired. Please sign in again."));
  if (!limiter_.allowed(name, head.client_address))
    return again(429, t("サインインの失敗が続いたため、しばらく待ってからやり直してください",
                        "Too many failed sign-ins. Please wait a while and try again."));
  const AccountConfig* account = nullptr;
  for (const auto& a : config_.accounts)
    if (a.name == name) account = &a;
  const bool ok = account && verify_password(account->password_hash, password);
  // The Internet side is for uploaders, and for recipients fetching an
  // approved original (/originals); the LGWAN side for recipients and for
  // the approvers', auditors' and administrators' pages.
  const std::vector<std::string> allowed =
      lgwan ? std::vector<std::string>{"recipient", "approver", "administrator", "auditor"}
      : config_.release.deliver_to_lgwan ? std::vector<std::string>{"uploader"}
                                         : std::vector<std::string>{"uploader", "recipient"};
  if (!ok) {
    limiter_.record_failure(name, head.client_address);
    box_.audit({{"type", "signin"}, {"zone", lgwan ? "lgwan" : "internet"}, {"time", queue_detail::iso8601_local(SysClock::now())}, {"account", name}, {"client_address", head.client_address}, {"ok", false}});
    return again(401, t("アカウント名またはパスワードが違います", "Wrong account name or password."));
  }
  const bool may = std::any_of(allowed.begin(), allowed.end(), [&](const std::string& r) {
    return std::find(account->roles.begin(), account->roles.end(), r) != account->roles.end();
  });
  if (!may) {
    box_.audit({{"type", "signin"}, {"zone", lgwan ? "lgwan" : "internet"}, {"time", queue_detail::iso8601_local(SysClock::now())}, {"account", name}, {"client_address", head.client_address}, {"ok", false}});
    return again(403, lgwan ? t("このアカウントは受信箱を使えません", "This account has no inbox here.")
                            : t("このアカウントはアップロードできません", "This account may not upload."));
  }
  limiter_.record_success(name);
  box_.audit({{"type", "signin"}, {"zone", lgwan ? "lgwan" : "internet"}, {"time", queue_detail::iso8601_local(SysClock::now())}, {"account", name}, {"client_address", head.client_address}, {"ok", true}});
  Session s = sessions_.create(Principal{account->name, account->roles, {lgwan ? "lgwan" : "internet"}});
  const bool recipient = std::find(account->roles.begin(), account->roles.end(), "recipient") != account->roles.end();
  const bool uploader = has_role(*account, "uploader");
  const char* home = lgwan ? (recipient ? "/" : has_role(*account, "approver") ? "/approvals" : "/audit")
                           : (uploader ? "/" : "/originals");
  return Response::redirect(home)
      .with("Set-Cookie", cookie(head, session_cookie(zone_), s.id))
      .with("Set-Cookie", cookie(head, pre_cookie(zone_), "", true));
}

Response WebApp::mark_done(RequestHead& head, const std::string& id) {
  Caller caller = identify(head);
  if (!caller.session) return Response::redirect("/signin");
  if (!check_csrf(*caller.session, form_value(head.body, "csrf")))
    return Response::text(403, "CSRF\n");
  auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
  if (!item || !may_see(caller, *item)) return Response::text(404, "not found\n");
  box_.mark_picked_up(id, caller.account->name);
  return Response::redirect("/");
}

// ----------------------------------------------------------------- pages

Response WebApp::page(const RequestHead& head) {
  const pages::Lang t = lang_of(head);
  Response r;
  if (head.path == "/signin") {
    std::string token = head.cookie(pre_cookie(zone_));
    if (token.size() < 16) token = random_token();
    r = html(pages::sign_in(t, zone_ == Zone::Lgwan, token, "", ""));
    r.with("Set-Cookie", cookie(head, pre_cookie(zone_), token));
  } else {
    Caller caller = identify(head);
    if (!caller.session) return Response::redirect("/signin");
    const std::string who = caller.account->display_name.empty() ? caller.account->name : caller.account->display_name;
    if (zone_ == Zone::Internet) {
      if (!caller.has_role("uploader"))
        return Response::redirect(caller.has_role("recipient") ? "/originals" : "/signin");
      if (head.path == "/receipt") {
        std::vector<DropItem> items;
        std::string ids = head.query_param("ids");
        std::stringstream in(ids);
        for (std::string id; std::getline(in, id, ',');) {
          auto item = DropBox::valid_id(id) ? box_.find(id) : std::nullopt;
          if (item && may_see(caller, *item)) items.push_back(*item);
        }
        r = html(pages::receipt(t, who, items, caller.session->csrf_token));
      } else {
        std::vector<pages::Recipient> recipients;
        for (const auto& a : config_.accounts)
          if (std::find(a.roles.begin(), a.roles.end(), "recipient") != a.roles.end())
            recipients.push_back({a.name, (a.display_name.empty() ? a.name : a.display_name) +
                                              (a.department.empty() ? "" : " (" + a.department + ")")});
        for (const auto& d : config_.dropbox.departments) recipients.push_back({d, d});
        r = html(pages::upload(t, who, recipients, caller.session->csrf_token, config_.http.max_upload_bytes));
      }
    } else {
      if (!caller.has_role("recipient"))
        return Response::redirect(caller.has_role("approver")                                         ? "/approvals"
                                  : caller.has_role("auditor") || caller.has_role("administrator") ? "/audit"
                                                                                                   : "/signin");
      auto items = box_.list([&](const DropItem& i) { return may_see(caller, i); });
      // Each item's latest release request of this account, read once.
      std::map<std::string, ReleaseRequest> requests;
      std::function<std::string(const DropItem&)> release_cell;
      if (releases_) {
        for (auto& q : releases_->list([&](const ReleaseRequest& q) { return q.requester == caller.account->name; }))
          requests.emplace(q.subject, std::move(q));  // newest first: the first one stays
        release_cell = [&](const DropItem& i) -> std::string {
          if (i.status == ItemStatus::Queued || i.status == ItemStatus::Processing) return "";
          auto it = requests.find("file:" + i.id);
          return pages::release_cell(t, "/files/" + i.id + "/release",
                                     it == requests.end() ? std::nullopt : std::optional<ReleaseRequest>(it->second),
                                     caller.session->csrf_token);
        };
      }
      r = html(pages::inbox(t, who, items, caller.session->csrf_token,
                            releases_ ? pages::nav(t, *caller.account, true, config_.release.deliver_to_lgwan) +
                                            pages::flash_html(pages::release_flash(t, head.query_param("release")))
                                      : "",
                            release_cell, config_.ppap.enabled, held_mails_html(t.en, *caller.account)));
    }
  }
  if (!head.query_param("lang").empty()) r.with("Set-Cookie", cookie(head, kLangCookie, t.en ? "en" : "ja"));
  return r;
}

Response WebApp::metrics() {
  const DropBox::Stats s = box_.stats();
  std::ostringstream out;
  out << "# HELP mukaika_dropbox_items_total Uploaded files sanitized since start, by verdict.\n"
         "# TYPE mukaika_dropbox_items_total counter\n";
  for (const char* v : {"clean", "sanitized", "blocked", "failed"}) {
    auto it = s.by_verdict.find(v);
    out << "mukaika_dropbox_items_total{verdict=\"" << v << "\"} " << (it == s.by_verdict.end() ? 0 : it->second) << "\n";
  }
  out << "# HELP mukaika_dropbox_queue_depth Uploaded files waiting for or in sanitizing.\n"
         "# TYPE mukaika_dropbox_queue_depth gauge\n"
         "mukaika_dropbox_queue_depth{state=\"queued\"} " << s.queued << "\n"
      << "mukaika_dropbox_queue_depth{state=\"processing\"} " << s.processing << "\n";
  out << "# HELP mukaika_dropbox_processing_seconds Time to sanitize one uploaded file (the last 1000).\n"
         "# TYPE mukaika_dropbox_processing_seconds histogram\n";
  double sum = 0;
  for (double v : s.seconds) sum += v;
  for (double le : {0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0}) {
    const auto n = std::count_if(s.seconds.begin(), s.seconds.end(), [le](double v) { return v <= le; });
    out << "mukaika_dropbox_processing_seconds_bucket{le=\"" << le << "\"} " << n << "\n";
  }
  out << "mukaika_dropbox_processing_seconds_bucket{le=\"+Inf\"} " << s.seconds.size() << "\n"
      << "mukaika_dropbox_processing_seconds_sum " << sum << "\n"
      << "mukaika_dropbox_processing_seconds_count " << s.seconds.size() << "\n";
  if (worker_restarts_) {
    out << "# HELP mukaika_worker_restarts_total Sandboxed workers replaced after a crash, a timeout or an error.\n"
           "# TYPE mukaika_worker_restarts_total counter\n"
           "mukaika_worker_restarts_total " << worker_restarts_() << "\n";
  }
  return Response::text(200, out.str(), "text/plain; version=0.0.4; charset=utf-8");
}

Response WebApp::audit_page(const RequestHead& head, bool csv) {
  Caller caller = identify(head);
  if (!caller.session) return csv ? unauthorized() : Response::redirect("/signin");
  // Auditors read; administrators too. Recipients and approvers do not.
  if (!caller.has_role("auditor") && !caller.has_role("administrator"))
    return Response::text(403, pages::not_found(lang_of(head)), "text/html; charset=utf-8");
  AuditQuery q;
  q.from = head.query_param("from");
  q.to = head.query_param("to");
  q.sender = head.query_param("sender");
  q.recipient = head.query_param("recipient");
  q.message_id = head.query_param("message_id");
  q.verdict = head.query_param("verdict");
  q.virus = head.query_param("virus");
  if (csv) q.max = 100000;
  AuditResult result = search_audit(config_.audit_log, q);
  box_.audit({{"type", csv ? "audit_export" : "audit_search"},
              {"time", queue_detail::iso8601_local(SysClock::now())},
              {"by", caller.account->name},
              {"query", head.query},
              {"rows", result.rows.size()}});
  if (csv)
    return Response::text(200, audit_csv(result.rows), "text/csv; charset=utf-8")
        .with("Content-Disposition", content_disposition_attachment("audit-" + (q.from.empty() ? std::string("all") : q.from) +
                                                                   (q.to.empty() ? "" : "_" + q.to) + ".csv"));
  const std::string who = caller.account->display_name.empty() ? caller.account->name : caller.account->display_name;
  return html(pages::audit(lang_of(head), who, q, result, caller.session->csrf_token,
                           "/audit.csv" + (head.query.empty() ? std::string() : "?" + head.query)));
}

// ----------------------------------------------------------------- routing

Decision WebApp::decide(RequestHead& head) {
  const std::string& p = head.path;
  const std::string& m = head.method;
  const bool get = m == "GET" || m == "HEAD";
  const bool lgwan = zone_ == Zone::Lgwan;
  auto wrong_method = [] { return Decision::respond(Response::text(405, "method not allowed\n")); };
  auto not_found = [&] {
    return Decision::respond(starts_with(p, "/api/") ? not_found_json()
                                                     : Response::text(404, pages::not_found(lang_of(head)),
                                                                      "text/html; charset=utf-8"));
  };

  if (p == "/static/style.css" || p == "/static/app.js") {
    if (!get) return wrong_method();
    const bool css = p == "/static/style.css";
    Response r = Response::text(200, std::string(css ? pages::stylesheet() : pages::script()),
                                css ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8");
    return Decision::respond(std::move(r));
  }
  if (release_path(p)) {
    if (auto d = release_route(head)) return std::move(*d);
    return not_found();
  }
  if (p == "/signin") {
    if (get) return Decision::respond(page(head));
    if (m == "POST") return Decision::read_body(kFormLimit);
    return wrong_method();
  }
  if (p == "/signout") {
    if (m != "POST") return wrong_method();
    return Decision::read_body(kFormLimit);
  }
  if (p == "/" || (!lgwan && p == "/receipt")) {
    if (!get) return wrong_method();
    return Decision::respond(page(head));
  }
  const std::string files = "/api/v1/files";
  if (p == files) {
    if (lgwan) return not_found();  // uploads come from the Internet zone only
    if (m != "POST") return wrong_method();
    return upload(head, identify(head));
  }
  if (starts_with(p, files + "/")) {
    std::string rest = p.substr(files.size() + 1);
    const bool content = rest.size() > 8 && rest.compare(rest.size() - 8, 8, "/content") == 0;
    if (content) rest.resize(rest.size() - 8);
    if (rest.find('/') != std::string::npos) return not_found();
    if (content && !lgwan) return not_found();  // sanitized bytes go to the LGWAN zone only
    if (!get) return wrong_method();
    return Decision::respond(content ? file_content(head, rest) : file_status(head, rest));
  }
  if (lgwan && starts_with(p, "/files/")) {
    std::string rest = p.substr(7);
    auto slash = rest.find('/');
    if (slash == std::string::npos) return not_found();
    const std::string id = rest.substr(0, slash), what = rest.substr(slash + 1);
    if (what == "thumbnail" && get) return Decision::respond(thumbnail(head, id));
    if (what == "done" && m == "POST") return Decision::read_body(kFormLimit);
    // PPAP: the POST sanitizes in a worker, so both run on the blocking pool.
    if (what == "password" && (get || m == "POST")) return Decision::read_body(kFormLimit);
    return not_found();
  }
  if (lgwan && is_mail_password(p)) {
    if (!get && m != "POST") return wrong_method();
    return Decision::read_body(kFormLimit);
  }
  if (lgwan && (p == "/audit" || p == "/audit.csv")) {
    if (!get) return wrong_method();
    // Reading the log may take a while: handle() runs on the blocking pool.
    return Decision::read_body(0);
  }
  if (lgwan && p == "/healthz") return Decision::respond(Response::text(200, "ok\n"));
  if (lgwan && p == "/metrics") return Decision::respond(metrics());
  return not_found();
}

Response WebApp::handle(RequestHead& head) {
  if (release_path(head.path)) return release_handle(head);
  if (head.path == "/audit" || head.path == "/audit.csv") return audit_page(head, head.path == "/audit.csv");
  if (head.path == "/signin") return sign_in(head);
  if (head.path == "/signout") {
    Caller caller = identify(head);
    if (caller.session && check_csrf(*caller.session, form_value(head.body, "csrf")))
      sessions_.destroy(caller.session->id);
    return Response::redirect("/signin").with("Set-Cookie", cookie(head, session_cookie(zone_), "", true));
  }
  if (is_mail_password(head.path)) return mail_password(head, head.path.substr(6, head.path.size() - 15));
  if (starts_with(head.path, "/files/")) {
    std::string id = head.path.substr(7);
    const std::string what = id.substr(std::min(id.size(), id.find('/') + 1));
    id = id.substr(0, id.find('/'));
    if (what == "password") return file_password(head, id);
    return mark_done(head, id);
  }
  return Response::text(404, "not found\n");
}

void WebApp::finish_headers(const RequestHead& head, Response& r) {
  const bool is_static = starts_with(head.path, "/static/");
  r.with("Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
         "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
      .with("X-Content-Type-Options", "nosniff")
      .with("X-Frame-Options", "DENY")
      .with("Referrer-Policy", "no-referrer")
      .with("Cache-Control", is_static ? "no-cache" : "no-store");
  if (head.tls) r.with("Strict-Transport-Security", "max-age=31536000");
}

}  // namespace mukaika::http
