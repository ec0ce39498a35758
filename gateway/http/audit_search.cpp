#include "http/audit_search.h"

#include <algorithm>
#include <deque>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ascii.h"

namespace mukaika::http {

namespace {


bool contains(const std::string& haystack, const std::string& needle) {
  return needle.empty() || ascii_lower(haystack).find(ascii_lower(needle)) != std::string::npos;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Signature names anywhere in an item report's actions.
std::string viruses(const nlohmann::json& report) {
  std::string out;
  if (!report.is_object() || !report.contains("actions") || !report["actions"].is_array()) return out;
  for (const auto& a : report["actions"]) {
    const std::string v = a.is_object() ? str(a, "virus") : "";
    if (!v.empty() && out.find(v) == std::string::npos) out += (out.empty() ? "" : " ") + v;
  }
  return out;
}

AuditRow row_of(const nlohmann::json& j) {
  AuditRow r;
  r.time = str(j, "time");
  r.type = str(j, "type");
  r.id = str(j, "queue_id");
  if (r.id.empty()) r.id = str(j, "id");
  if (r.type == "message") {
    r.sender = str(j, "mail_from");
    if (j.contains("recipients") && j["recipients"].is_array())
      for (const auto& x : j["recipients"])
        if (x.is_string()) r.recipients += (r.recipients.empty() ? "" : " ") + x.get<std::string>();
    r.message_id = str(j, "message_id");
    r.verdict = str(j, "verdict");
    r.virus = viruses(j.value("actions", nlohmann::json()));
    r.detail = str(j, "reason");
  } else if (r.type == "delivery") {
    r.sender = str(j, "mail_from");
    r.recipients = str(j, "recipient");
    r.verdict = str(j, "outcome");
    if (j.contains("reply") && j["reply"].is_object())
      r.detail = std::to_string(j["reply"].value("code", 0)) + " " + str(j["reply"], "text");
  } else if (r.type == "upload" || r.type == "upload_result") {
    r.sender = str(j, "uploader");
    r.recipients = str(j, "recipient");
    r.verdict = str(j, "verdict");
    r.virus = viruses(j.value("actions", nlohmann::json()));
    r.detail = str(j, "name");
    if (!str(j, "reason").empty()) r.detail += ": " + str(j, "reason");
  } else if (r.type.rfind("ppap.", 0) == 0) {
    // PPAP: who typed a password for which held file or mail, and what came
    // of it; the records never hold the password itself.
    r.sender = str(j, "actor");
    r.recipients = str(j, "recipient");
    r.message_id = str(j, "message_id");
    r.verdict = r.type == "ppap.attempt" ? str(j, "result") : r.type == "ppap.locked" ? "locked" : str(j, "verdict");
    r.detail = str(j, "subject");
    if (!str(j, "name").empty()) r.detail += " " + str(j, "name");
    if (j.contains("attempts") && j["attempts"].is_number_integer())
      r.detail += " attempts=" + std::to_string(j["attempts"].get<int>());
    if (!str(j, "to").empty()) r.detail += " to=" + str(j, "to");
    if (!str(j, "follow_up").empty()) r.detail += " follow_up=" + str(j, "follow_up");
  } else if (r.type == "signin") {
    r.sender = str(j, "account");
    r.verdict = j.value("ok", false) ? "ok" : "failed";
    r.detail = str(j, "zone") + " " + str(j, "client_address");
  } else if (r.type.rfind("release.", 0) == 0) {
    // Release of originals: who acted, for whom, on what, and why.
    r.sender = str(j, "by");
    r.recipients = str(j, "requester");
    r.verdict = str(j, "state");
    r.detail = str(j, "subject") + " " + str(j, "name");
    if (!str(j, "detail").empty()) r.detail += ": " + str(j, "detail");
    if (j.value("policy_exception", false)) r.detail += " [policy_exception]";
  } else if (r.type == "quarantine_expired" || r.type == "dropbox_expired") {
    r.verdict = "expired";
    r.detail = std::to_string(j.value("count", 0)) + ":";
    if (j.contains("days") && j["days"].is_array())
      for (const auto& d : j["days"])
        if (d.is_string()) r.detail += " " + d.get<std::string>();
  } else {
    r.detail = str(j, "detail");
    if (r.detail.empty()) r.detail = str(j, "by");
  }
  return r;
}

bool matches(const AuditRow& r, const AuditQuery& q) {
  const std::string day = r.time.substr(0, 10);
  if (!q.from.empty() && day < q.from) return false;
  if (!q.to.empty() && day > q.to) return false;
  if (!q.verdict.empty() && r.verdict != q.verdict) return false;
  return contains(r.sender, q.sender) && contains(r.recipients, q.recipient) &&
         contains(r.message_id, q.message_id) && contains(r.virus, q.virus) && (q.virus.empty() || !r.virus.empty());
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

AuditResult search_audit(const std::filesystem::path& log, const AuditQuery& q) {
  AuditResult result;
  std::ifstream in(log, std::ios::binary);
  std::deque<AuditRow> kept;  // the newest `max` matches
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    AuditRow r = row_of(j);
    if (!matches(r, q)) continue;
    kept.push_back(std::move(r));
    if (kept.size() > q.max) {
      kept.pop_front();
      result.truncated = true;
    }
  }
  result.rows.assign(std::make_move_iterator(kept.rbegin()), std::make_move_iterator(kept.rend()));
  return result;
}

std::string audit_csv(const std::vector<AuditRow>& rows) {
  std::string out = "\xEF\xBB\xBF" "time,type,id,sender,recipients,message_id,verdict,virus,detail\r\n";
  for (const auto& r : rows)
    out += csv_field(r.time) + "," + csv_field(r.type) + "," + csv_field(r.id) + "," + csv_field(r.sender) + "," +
           csv_field(r.recipients) + "," + csv_field(r.message_id) + "," + csv_field(r.verdict) + "," +
           csv_field(r.virus) + "," + csv_field(r.detail) + "\r\n";
  return out;
}

}  // namespace mukaika::http
