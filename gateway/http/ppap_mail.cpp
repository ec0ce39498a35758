#include "http/ppap_mail.h"

#include <chrono>

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

std::string make_ppap_follow_up(const std::string& recipient, const std::string& queue_id,
                                const nlohmann::json& kept_summary, const MailUnlockResult& result,
                                const BounceOptions& options) {
  GatewayMail m;
  m.recipient = recipient;
  m.subject_ja = "パスワード付き添付ファイルを開いて無害化しました (" + queue_id + ")";
  m.subject_en = "Password-protected attachment opened and sanitized (" + queue_id + ")";
  std::string held;
  for (const auto& h : held_attachments(kept_summary)) held += "  - " + h.path + "\n";
  const std::string from = kept_summary.value("mail_from", "");
  m.body_ja = "差出人 " + from + " からのメール (受付番号 " + queue_id +
              ") でパスワード付きのため保留していた添付ファイルを、入力されたパスワードで開き、"
              "ほかの添付ファイルと同じように無害化しました。\n\n保留していたもの:\n" + held +
              "\n無害化したメール全体を " + queue_id + ".eml として添付します。";
  m.body_en = "The password you typed opened the attachments held from the mail from " + from + " (queue id " +
              queue_id + "); their contents were sanitized like any other attachment.\n\nHeld:\n" + held +
              "\nThe sanitized mail is attached as " + queue_id + ".eml.";
  // message/rfc822 may not be base64-encoded (RFC 2046, 5.2.1), which the
  // builder always does; a .eml name is what mail programs open.
  m.attachments.push_back({queue_id + ".eml", "application/octet-stream", result.message});
  BounceOptions o = options;
  o.now = std::chrono::system_clock::now();
  return make_gateway_mail(m, o);
}

MailPpap::MailPpap(std::filesystem::path dir, const Quarantine& quarantine, Parts parts, int max_attempts)
    : dir_(std::move(dir)), quarantine_(quarantine), parts_(std::move(parts)), max_attempts_(max_attempts) {
  std::filesystem::create_directories(dir_);
}

MailPpap::Record MailPpap::record(const std::string& queue_id) const {
  // Only ids the quarantine accepts (no path can be smuggled in) reach here.
  std::error_code ec;
  const auto file = dir_ / (queue_id + ".json");
  if (!std::filesystem::is_regular_file(file, ec)) return {};
  nlohmann::json j = nlohmann::json::parse(queue_detail::read_file(file), nullptr, false);
  return j.is_object() ? record_from_json(j) : Record{};
}

void MailPpap::save(const std::string& queue_id, const Record& r) {
  queue_detail::replace_file_durable(dir_, queue_id + ".json", to_json(r).dump(2));
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
  ppap::Claim claim(mutex_, busy_, queue_id);
  if (!claim.held()) {
    out.result = Outcome::Result::Busy;
    return out;
  }
  const auto kept = quarantine_.find(queue_id);
  const auto summary = quarantine_.summary(queue_id);
  if (!kept || !summary || held_attachments(*summary).empty()) {
    out.result = Outcome::Result::NotHeld;
    return out;
  }
  Record rec = record(queue_id);
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
  auto audit = [&](const std::string& type, const nlohmann::json& extra) {
    nlohmann::json r = {{"type", type},
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
    save(queue_id, rec);
    audit("ppap.attempt", {{"result", "wrong"}, {"attempts", rec.attempts}, {"max_attempts", max_attempts_}});
    if (rec.locked) audit("ppap.locked", {{"attempts", rec.attempts}});
    out.attempts = rec.attempts;
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
    save(queue_id, rec);
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
  save(queue_id, rec);
  audit("ppap.delivered", {{"verdict", result.verdict}, {"to", recipient}, {"follow_up", rec.follow_up}});
  out.follow_up = rec.follow_up;
  out.result = Outcome::Result::Delivered;
  return out;
}

}  // namespace mukaika::http
