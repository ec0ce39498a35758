#include "http/ppap_mail.h"

#include <algorithm>
#include <chrono>

#include "ascii.h"
#include "digest.h"
#include "http/ppap_common.h"
#include "queue/durable_io.h"

namespace mukaika::http {

namespace {

using Clock = std::chrono::system_clock;

nlohmann::json to_json(const MailPpap::Record& r) {
  return {{"state", r.state},         {"attempts", r.attempts},         {"locked", r.locked},
          {"follow_up", r.follow_up}, {"delivered_to", r.delivered_to}, {"time", r.time},
          {"reason", r.reason},       {"reason_en", r.reason_en}};
}

MailPpap::Record record_from_json(const nlohmann::json& j) {
  MailPpap::Record r;
  r.state = j.value("state", "held");
  r.attempts = j.value("attempts", 0);
  r.locked = j.value("locked", false);
  r.follow_up = j.value("follow_up", "");
  r.delivered_to = j.value("delivered_to", "");
  r.time = j.value("time", "");
  r.reason = j.value("reason", "");
  r.reason_en = j.value("reason_en", "");
  return r;
}

// Records are kept per recipient under the address in lower case.
std::string recipient_key(const std::string& address) { return ascii_lower(address); }

}  // namespace

std::vector<HeldAttachment> held_attachments(const nlohmann::json& kept_summary) {
  std::vector<HeldAttachment> out;
  const nlohmann::json* report = nullptr;
  if (auto s = kept_summary.find("summary"); s != kept_summary.end() && s->is_object())
    if (auto r = s->find("report"); r != s->end() && r->is_object()) report = &*r;
  if (!report) return out;
  const auto actions = report->find("actions");
  if (actions == report->end() || !actions->is_array()) return out;
  for (const auto& a : *actions) {
    if (!a.is_object()) continue;
    const std::string code = a.value("code", "");
    if (code == "archive.encrypted" || code == "pdf.encrypted")
      out.push_back({a.value("path", ""), code, a.value("reason", "")});
  }
  return out;
}

namespace {

std::vector<std::string> paths_with(const nlohmann::json& report, const std::vector<std::string_view>& codes) {
  std::vector<std::string> out;
  for (const auto& a : report.value("actions", nlohmann::json::array())) {
    if (!a.is_object()) continue;
    const std::string code = a.value("code", "");
    const std::string path = a.value("path", "");
    if (std::find(codes.begin(), codes.end(), code) != codes.end() &&
        std::find(out.begin(), out.end(), path) == out.end())
      out.push_back(path);
  }
  return out;
}

std::string shown_path(const std::string& path) {
  // "<queue_id>.eml/見積書.zip": the mail's own name says nothing to its reader.
  const auto slash = path.find('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string make_ppap_follow_up(const std::string& recipient, const std::string& queue_id,
                                const nlohmann::json& kept_summary, const MailUnlockResult& result,
                                const BounceOptions& options) {
  GatewayMail m;
  m.recipient = recipient;
  m.subject_ja = "パスワード付き添付ファイルを開いて無害化しました (" + queue_id + ")";
  m.subject_en = "Password-protected attachment opened and sanitized (" + queue_id + ")";
  // Which of the held attachments the passwords opened: those the new
  // report no longer holds for a password.
  const auto still_held = paths_with(result.report, {"archive.encrypted", "pdf.encrypted", "archive.wrong_password",
                                                      "pdf.wrong_password", "archive.password_unsupported"});
  std::string opened, not_opened;
  for (const auto& h : held_attachments(kept_summary)) {
    const bool held = std::find(still_held.begin(), still_held.end(), h.path) != still_held.end();
    (held ? not_opened : opened) += "  - " + shown_path(h.path) + "\n";
  }
  const std::string from = kept_summary.value("mail_from", "");
  std::string subject;
  if (auto s = kept_summary.find("summary"); s != kept_summary.end() && s->is_object()) subject = s->value("subject", "");
  const std::string about_ja = subject.empty() ? "" : "件名「" + subject + "」、";
  const std::string about_en = subject.empty() ? "" : "\"" + subject + "\", ";
  m.body_ja = "差出人 " + from + " からのメール (" + about_ja + "受付番号 " + queue_id +
              ") でパスワード付きのため保留していた添付ファイルを、入力されたパスワードで開き、"
              "ほかの添付ファイルと同じように無害化しました。\n\n開いたもの:\n" + opened +
              (not_opened.empty() ? "" : "\n開けなかったもの:\n" + not_opened) +
              "\n無害化したメール全体を " + queue_id +
              ".eml として添付します。メールとして開くと、無害化した添付ファイルを一つずつ保存できます。";
  m.body_en = "The passwords you typed opened the attachments held from the mail from " + from + " (" + about_en +
              "queue id " + queue_id + "); their contents were sanitized like any other attachment.\n\nOpened:\n" +
              opened + (not_opened.empty() ? "" : "\nNot opened:\n" + not_opened) + "\nThe sanitized mail is attached as " +
              queue_id + ".eml; open it as a mail to save its sanitized attachments one by one.";
  // Attached as a mail, so that mail programs open it as one (dsn.h falls
  // back to an opaque file if its lines cannot go unencoded).
  m.attachments.push_back({queue_id + ".eml", "message/rfc822", result.message});
  BounceOptions o = options;
  o.now = std::chrono::system_clock::now();
  return make_gateway_mail(m, o);
}

MailPpap::MailPpap(std::filesystem::path dir, const Quarantine& quarantine, Parts parts, int max_attempts)
    : dir_(std::move(dir)), quarantine_(quarantine), parts_(std::move(parts)), max_attempts_(max_attempts) {
  std::filesystem::create_directories(dir_);
}

nlohmann::json MailPpap::load(const std::string& queue_id) const {
  // Only ids the quarantine accepts (no path can be smuggled in) reach here.
  std::error_code ec;
  const auto file = dir_ / (queue_id + ".json");
  if (!std::filesystem::is_regular_file(file, ec)) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(queue_detail::read_file(file), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

MailPpap::Record MailPpap::record(const std::string& queue_id, const std::string& recipient) const {
  const nlohmann::json j = load(queue_id);
  const std::string key = recipient_key(recipient);
  if (auto all = j.find("recipients"); all != j.end() && all->is_object()) {
    const auto it = all->find(key);
    return it != all->end() && it->is_object() ? record_from_json(*it) : Record{};
  }
  if (!j.contains("state")) return Record{};
  // A record from before recipients were counted apart: it was the whole
  // mail's. Its delivery was to one recipient; its wrong passwords stay
  // with everyone (nobody gains attempts by the change).
  Record old = record_from_json(j);
  if (old.state != "delivered" || recipient_key(old.delivered_to) == key) return old;
  Record fresh;
  fresh.attempts = old.attempts;
  fresh.locked = old.locked;
  return fresh;
}

void MailPpap::save(const std::string& queue_id, const std::string& recipient, const Record& r) {
  // Read, change one recipient, write: under one lock, as attempts of the
  // mail's other recipients may be saving at the same time.
  std::lock_guard<std::mutex> lock(file_mutex_);
  nlohmann::json j = load(queue_id);
  if (!j.contains("recipients")) j = {{"recipients", nlohmann::json::object()}};
  j["recipients"][recipient_key(recipient)] = to_json(r);
  queue_detail::replace_file_durable(dir_, queue_id + ".json", j.dump(2));
}

std::vector<MailPpap::HeldMail> MailPpap::held_for(const std::vector<std::string>& addresses,
                                                   std::size_t limit) const {
  namespace fs = std::filesystem;
  std::vector<HeldMail> out;
  if (addresses.empty()) return out;
  {
    std::lock_guard<std::mutex> lock(scan_mutex_);
    std::error_code ec;
    std::map<std::string, Day> days;
    for (const auto& e : fs::directory_iterator(quarantine_.dir(), ec)) {
      const std::string name = e.path().filename().string();
      if (!e.is_directory(ec) || name.size() != 10) continue;
      const auto time = fs::last_write_time(e.path(), ec);
      if (ec) continue;
      Day day;
      if (auto known = days_.find(name); known != days_.end()) day = std::move(known->second);
      // A directory's time moves in coarse steps: one changed just now is
      // listed again next time too, so that nothing kept in the same step is
      // missed.
      const bool settled = fs::file_time_type::clock::now() - time > std::chrono::seconds(2);
      if (day.read.empty() || day.time != time || !settled) {
        day.time = time;
        for (const auto& f : fs::directory_iterator(e.path(), ec)) {
          if (f.path().extension() != ".json" || !day.read.insert(f.path().filename().string()).second) continue;
          if (auto m = held_mail_of(f.path())) day.mails.push_back(std::move(*m));
        }
      }
      days.emplace(name, std::move(day));
    }
    days_ = std::move(days);  // expired days go
    for (const auto& [name, day] : days_)
      for (const auto& m : day.mails)
        for (const auto& r : m.recipients)
          if (std::find(addresses.begin(), addresses.end(), recipient_key(r)) != addresses.end()) {
            out.push_back(m);
            out.back().recipient = r;
            break;
          }
  }
  std::sort(out.begin(), out.end(), [](const HeldMail& a, const HeldMail& b) { return a.received > b.received; });
  if (out.size() > limit) out.resize(limit);
  for (auto& m : out) m.record = record(m.queue_id, m.recipient);
  return out;
}

std::optional<MailPpap::HeldMail> MailPpap::held_mail_of(const std::filesystem::path& summary_file) {
  std::string text;
  try {
    text = queue_detail::read_file(summary_file);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (text.find(".encrypted\"") == std::string::npos) return std::nullopt;  // most mails: no JSON parsed
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  HeldMail m;
  for (const auto& h : held_attachments(j)) m.held.push_back(h.path);
  if (m.held.empty()) return std::nullopt;
  m.queue_id = summary_file.stem().string();
  m.mail_from = j.value("mail_from", "");
  m.received = j.value("received", "");
  if (auto s = j.find("summary"); s != j.end() && s->is_object()) m.subject = s->value("subject", "");
  for (const auto& r : j.value("recipients", nlohmann::json::array()))
    if (r.is_string()) m.recipients.push_back(r.get<std::string>());
  return m;
}

MailPpap::Outcome MailPpap::try_password(const std::string& queue_id, std::vector<std::string> passphrases,
                                         const std::string& recipient, const std::string& actor,
                                         const std::string& client_address) {
  struct Wipe {
    std::vector<std::string>& p;
    ~Wipe() { wipe_passphrases(p); }
  } wipe_on_return{passphrases};
  Outcome out;
  out.max_attempts = max_attempts_;
  ppap::Claim claim(mutex_, busy_, queue_id + "\n" + recipient_key(recipient));
  if (!claim.held()) {
    out.result = Outcome::Result::Busy;
    return out;
  }
  const auto kept = quarantine_.find(queue_id);
  const auto summary = quarantine_.summary(queue_id);
  // Only a recipient of the mail gets it (the pages check this too).
  bool is_recipient = false;
  if (summary)
    for (const auto& r : summary->value("recipients", nlohmann::json::array()))
      is_recipient = is_recipient || (r.is_string() && recipient_key(r.get<std::string>()) == recipient_key(recipient));
  if (!kept || !summary || !is_recipient || held_attachments(*summary).empty()) {
    out.result = Outcome::Result::NotHeld;
    return out;
  }
  Record rec = record(queue_id, recipient);
  out.attempts = rec.attempts;
  out.follow_up = rec.follow_up;
  if (rec.state != "held") {
    out.result = Outcome::Result::NotHeld;
    return out;
  }
  if (rec.locked || rec.attempts >= max_attempts_) {
    out.result = Outcome::Result::Locked;
    return out;
  }
  std::string message_id;
  if (auto s = summary->find("summary"); s != summary->end() && s->is_object()) message_id = s->value("message_id", "");
  // How many passwords the attempt carried is on file; never what they were.
  const std::size_t typed = passphrases.size();
  auto audit = [&](const std::string& type, const nlohmann::json& extra) {
    nlohmann::json r = {{"type", type},
                        {"passwords", typed},
                        {"time", queue_detail::iso8601_local(Clock::now())},
                        {"queue_id", queue_id},
                        {"subject", "mail " + queue_id},
                        {"message_id", message_id},
                        {"recipient", recipient},
                        {"actor", actor},
                        {"client_address", client_address}};
    r.update(extra);
    if (parts_.audit) parts_.audit(r);
  };

  MailUnlockResult result;
  try {
    result = parts_.unlock(queue_id, queue_detail::read_file(kept->eml), std::move(passphrases));
  } catch (const std::exception& e) {
    out.detail = e.what();
    if (parts_.log) parts_.log("ppap: mail " + queue_id + ": " + e.what());
    audit("ppap.attempt", {{"result", "error"}, {"attempts", rec.attempts}});
    return out;
  }

  if (ppap::report_has(result.report, ppap::kWrongPassword)) {
    ++rec.attempts;
    rec.locked = rec.attempts >= max_attempts_;
    save(queue_id, recipient, rec);
    audit("ppap.attempt", {{"result", "wrong"}, {"attempts", rec.attempts}, {"max_attempts", max_attempts_}});
    if (rec.locked) audit("ppap.locked", {{"attempts", rec.attempts}});
    out.attempts = rec.attempts;
    for (const auto& p : paths_with(result.report, ppap::kWrongPassword)) out.not_opened.push_back(shown_path(p));
    out.result = rec.locked ? Outcome::Result::Locked : Outcome::Result::Wrong;
    return out;
  }
  const bool unsupported = ppap::report_has(result.report, ppap::kUnsupported);
  audit("ppap.attempt", {{"result", unsupported ? "unsupported" : "ok"}, {"attempts", rec.attempts}});
  rec.time = queue_detail::iso8601_local(Clock::now());
  if (unsupported || result.verdict == "blocked" || result.message.empty()) {
    // The password was not the problem, and nothing can be sent: say why.
    rec.state = unsupported ? "unsupported" : "blocked";
    rec.reason = result.reason;
    rec.reason_en = result.reason_en;
    if (unsupported || rec.reason.empty())
      for (const auto& a : result.report.value("actions", nlohmann::json::array()))
        if (a.is_object() && (a.value("action", "") == "block")) {
          rec.reason = a.value("reason", "");
          break;
        }
    save(queue_id, recipient, rec);
    audit("ppap.delivered", {{"verdict", "blocked"}, {"to", ""}, {"reason", rec.reason}});
    out.result = unsupported ? Outcome::Result::Unsupported : Outcome::Result::Blocked;
    return out;
  }
  try {
    Envelope envelope;
    envelope.mail_from = "";  // from the gateway itself: nothing bounces back to it
    envelope.recipients = {recipient};
    envelope.received = Clock::now();
    envelope.client_address = "127.0.0.1";
    envelope.helo = "mukaika-ppap";
    const std::string message = parts_.follow_up(recipient, queue_id, *summary, result);
    rec.follow_up = parts_.send(envelope, message, "ppap");
  } catch (const std::exception& e) {
    // Opened, but not stored for delivery: the recipient may try again.
    out.detail = e.what();
    if (parts_.log) parts_.log("ppap: mail " + queue_id + ": follow-up not queued: " + e.what());
    return out;
  }
  rec.state = "delivered";
  rec.delivered_to = recipient;
  save(queue_id, recipient, rec);
  audit("ppap.delivered", {{"verdict", result.verdict}, {"to", recipient}, {"follow_up", rec.follow_up}});
  out.follow_up = rec.follow_up;
  out.result = Outcome::Result::Delivered;
  return out;
}

}  // namespace mukaika::http
