// MailPpap: PPAP for mail. A mail whose encrypted archive or PDF was
// removed (archive.encrypted, pdf.encrypted in the kept report) is opened
// when its recipient types the password on the LGWAN page
// (/mail/<queue_id>/password): the quarantined original is sanitized again,
// whole, in a worker with the passphrase, and the result goes to that
// recipient as a follow-up mail through the spool and the relay.
//
// Promises:
// - The daemon never decrypts or parses the mail: unlock() runs in the
//   sandboxed workers; the follow-up carries the re-sanitized mail as it is.
// - Passwords travel in memory only (to the worker in the IPC request) and
//   are wiped when try_password() returns; never stored, never audited.
// - Every recipient of the mail opens it for themselves and gets their own
//   follow-up. Wrong passwords are counted per (mail, recipient) in
//   <dir>/<queue_id>.json (written durably, so a restart does not reset the
//   count); after max_attempts that recipient is locked, the others are not.
//   The record also says whether that recipient's follow-up was queued and
//   under which queue id: each recipient is sent it once.
// - One attempt at a time per (mail, recipient); every attempt, lock and
//   delivery is audited with the recipient (ppap.attempt, ppap.locked,
//   ppap.delivered).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mta_types.h"
#include "queue/quarantine.h"
#include "relay/dsn.h"

namespace mukaika::http {

// An attachment of a kept mail that a password can open: where it was, why held.
struct HeldAttachment {
  std::string path;
  std::string code;    // archive.encrypted | pdf.encrypted
  std::string reason;  // as the report says it (configured language)
};
// From a Quarantine::summary(): the actions with an encrypted code.
std::vector<HeldAttachment> held_attachments(const nlohmann::json& kept_summary);

// What the worker made of the mail with the passwords.
struct MailUnlockResult {
  std::string verdict;  // clean | sanitized | blocked
  std::string message;  // the re-sanitized mail (not blocked)
  nlohmann::json report;
  std::string reason, reason_en;  // blocked: why
};

// The follow-up mail for `recipient`: what was held and opened, in both
// languages, with the re-sanitized mail attached as <queue_id>.eml (the
// daemon does not take mails apart: decision 18).
std::string make_ppap_follow_up(const std::string& recipient, const std::string& queue_id,
                                const nlohmann::json& kept_summary, const MailUnlockResult& result,
                                const BounceOptions& options);

class MailPpap {
 public:
  struct Parts {
    // Sanitizes the original again with passphrases, in a worker. Throws
    // when it could not decide.
    std::function<MailUnlockResult(const std::string& queue_id, std::string original,
                                   std::vector<std::string> passphrases)>
        unlock;
    // Builds the follow-up mail (RFC 5322) for `recipient`.
    std::function<std::string(const std::string& recipient, const std::string& queue_id,
                              const nlohmann::json& kept_summary, const MailUnlockResult& result)>
        follow_up;
    // Queues a mail for LGWAN-side staff durably; its queue id. Throws when
    // it could not be stored.
    std::function<std::string(const Envelope& envelope, const std::string& message, const std::string& kind)> send;
    std::function<void(const nlohmann::json&)> audit;
    std::function<void(const std::string&)> log;
  };

  struct Record {
    std::string state = "held";  // held | delivered | blocked | unsupported
    int attempts = 0;            // wrong passwords
    bool locked = false;
    std::string follow_up;       // queue id of the follow-up mail
    std::string delivered_to, time;
    std::string reason, reason_en;  // blocked or unsupported: why
  };
  // What a recipient's record says, in one word for pages:
  // held | delivered | locked | blocked | unsupported.
  static std::string state_of(const Record& r) { return r.state == "held" && r.locked ? "locked" : r.state; }

  struct Outcome {
    enum class Result { Delivered, Wrong, Locked, NotHeld, Busy, Unsupported, Blocked, Error };
    Result result = Result::Error;
    int attempts = 0;
    int max_attempts = 0;
    std::string follow_up;
    std::string detail;
    std::vector<std::string> not_opened;  // Wrong: the attachments no password opened
  };

  // Creates `dir` if missing (throws std::filesystem::filesystem_error).
  MailPpap(std::filesystem::path dir, const Quarantine& quarantine, Parts parts, int max_attempts);

  // `recipient`'s record of a mail (the address as in the envelope; compared
  // without case). A fresh "held" record when there is none.
  Record record(const std::string& queue_id, const std::string& recipient) const;
  int max_attempts() const { return max_attempts_; }
  // A kept mail with held attachments, for a recipient's inbox.
  struct HeldMail {
    std::string queue_id;
    std::string recipient;  // the account's address among the mail's recipients
    std::vector<std::string> recipients;  // all of them (envelope)
    std::string mail_from, received, subject;
    std::vector<std::string> held;  // paths as the report gives them
    Record record;                  // that recipient's
  };
  // The kept mails with held attachments addressed to any of `addresses`
  // (lower case, AccountConfig::mail), newest first, at most `limit`. Reads
  // each summary once (remembered by file), and lists a day directory of
  // the quarantine again only when it changed: no mail is parsed.
  std::vector<HeldMail> held_for(const std::vector<std::string>& addresses, std::size_t limit = 50) const;

  // `recipient`: the caller's address among the mail's recipients (the
  // follow-up goes there). The passphrases are wiped before this returns.
  Outcome try_password(const std::string& queue_id, std::vector<std::string> passphrases, const std::string& recipient,
                       const std::string& actor, const std::string& client_address);

 private:
  void save(const std::string& queue_id, const std::string& recipient, const Record& r);
  nlohmann::json load(const std::string& queue_id) const;

  std::filesystem::path dir_;
  const Quarantine& quarantine_;
  Parts parts_;
  int max_attempts_;
  mutable std::mutex mutex_;
  std::set<std::string> busy_;
  std::mutex file_mutex_;  // a mail's record file holds all its recipients
  // held_for()'s memory of the quarantine: per day directory its time and
  // the mails with held attachments found in it (most have none).
  struct Day {
    std::filesystem::file_time_type time;
    std::set<std::string> read;  // summaries read (file names)
    std::vector<HeldMail> mails;
  };
  static std::optional<HeldMail> held_mail_of(const std::filesystem::path& summary_file);
  mutable std::mutex scan_mutex_;
  mutable std::map<std::string, Day> days_;
};

}  // namespace mukaika::http
