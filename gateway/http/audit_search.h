// Search of the audit log for the auditors' page (情報セキュリティ監査):
// mail, deliveries, uploads, sign-ins, in one list, filtered, and as CSV.
//
// Promises: reads the JSON Lines log line by line (never whole), skips
// lines that are not JSON objects, returns at most `max` rows (newest
// first) and says when there were more. Read-only: the log is never
// written here.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace mukaika::http {

struct AuditQuery {
  std::string from, to;  // "YYYY-MM-DD", inclusive; "" = open
  std::string sender;    // substring of MAIL FROM, uploader or account (case-insensitive)
  std::string recipient;  // substring of a recipient
  std::string message_id;
  std::string verdict;   // exact: clean, sanitized, blocked, failed, delivered, deferred, ...
  std::string virus;     // substring of a signature name
  std::size_t max = 1000;
};

struct AuditRow {
  std::string time, type, id, sender, recipients, message_id, verdict, virus, detail;
};

struct AuditResult {
  std::vector<AuditRow> rows;  // newest first
  bool truncated = false;      // more matched than max
};

AuditResult search_audit(const std::filesystem::path& log, const AuditQuery& query);

// RFC 4180 CSV with a UTF-8 BOM (Excel opens it without mojibake).
std::string audit_csv(const std::vector<AuditRow>& rows);

}  // namespace mukaika::http
