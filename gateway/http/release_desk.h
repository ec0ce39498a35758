// ReleaseDesk: requests to release an original (原本取り出し) and their
// decisions. A recipient asks for the original of a drop-box item or a mail
// with a reason; an approver (not the requester) approves or rejects with a
// comment; an approved original can be downloaded by the requester alone,
// until the download expires.
//
// Promises:
// - Lose nothing: every request and every change of it is one JSON file
//   under <dir>/<request id>.json, written tmp, fsync, rename, fsync dir
//   before the call returns. The file is the truth: it is read again on
//   every look-up, so nothing is decided from a stale copy.
// - An infected original is never released: a request for one is refused
//   at once (recorded, state "refused"), and approval is refused even if a
//   record says pending (the facts are checked again when deciding).
// - States: pending -> approved | rejected; approved -> downloaded (still
//   downloadable until it expires) -> expired. Refused is final.
// - Accountable: release.requested, release.refused, release.approved,
//   release.rejected, release.downloaded, release.expired go to the audit
//   log with the request id, subject, actor, reason or comment and
//   policy_exception (true when the original is handed out on the LGWAN
//   side). A record that cannot be written to the log makes the call throw
//   after the request file is stored (fail closed: the caller answers 503).
// - Thread-safe (one mutex around every change).
// - The original's bytes are never read here: the web app reads them from
//   the quarantine or the drop box at download time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "queue/audit_log.h"

namespace mukaika::http {

enum class ReleaseState { Pending, Approved, Rejected, Refused, Downloaded, Expired };
std::string_view to_string(ReleaseState s);

struct ReleaseRequest {
  std::string id;            // 32 hex digits
  std::string subject;       // "file:<drop-box id>" or "mail:<queue id>"
  std::string name;          // what people see: the file's name or the mail's subject line
  std::string verdict;       // the sanitizer's verdict of the subject, when asked
  std::string requester;     // account name
  std::string reason;
  std::chrono::system_clock::time_point requested{};
  ReleaseState state = ReleaseState::Pending;
  std::string decided_by;
  std::string comment;       // the approver's, or why it was refused
  std::chrono::system_clock::time_point decided{};
  std::chrono::system_clock::time_point expires{};  // approved: downloadable until then
  bool policy_exception = false;  // approved for download on the LGWAN side
  int downloads = 0;
  bool notice_failed = false;  // the mail telling the requester could not be queued

  bool is_file() const { return subject.rfind("file:", 0) == 0; }
  bool is_mail() const { return subject.rfind("mail:", 0) == 0; }
  std::string subject_id() const { return subject.substr(subject.find(':') + 1); }
  // Approved (or downloaded) and not expired at `now`.
  bool downloadable(std::chrono::system_clock::time_point now) const;
};

nlohmann::json to_json(const ReleaseRequest& r);
ReleaseRequest release_from_json(const nlohmann::json& j);

// What the desk is told about a subject when a request is made or decided:
// read from the drop box or the quarantine by the caller.
struct SubjectFacts {
  std::string name;
  std::string verdict;
  bool infected = false;
};

// True when an item report shows a virus: an action with a "virus" or the
// code av.infected. Such an original is never released.
bool report_is_infected(const nlohmann::json& report);

class ReleaseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ReleaseDesk {
 public:
  struct Options {
    std::chrono::hours download_hours{24};
    bool deliver_to_lgwan = false;
    std::function<std::chrono::system_clock::time_point()> clock;  // none: system clock
  };
  // Creates `dir` if missing. Throws ReleaseError.
  ReleaseDesk(std::filesystem::path dir, AuditLog& audit, Options options);

  // A new request. Refused at once (state refused) when `facts.infected`.
  // One open request per subject and requester: asking again returns the
  // pending or approved one. Throws ReleaseError / AuditError.
  ReleaseRequest request(const std::string& subject, const std::string& requester, const std::string& reason,
                         const SubjectFacts& facts);

  enum class Outcome { Done, NotFound, NotPending, OwnRequest, Infected };
  // Approves or rejects a pending request. `facts` are read again by the
  // caller now: an infected subject is refused whatever the record says.
  Outcome decide(const std::string& id, const std::string& approver, bool approve, const std::string& comment,
                 const SubjectFacts& facts, ReleaseRequest* result = nullptr);

  // One download by the requester (audited; policy_exception when on the LGWAN side).
  void record_download(const std::string& id, const std::string& by, const std::string& zone);
  // The mail telling the requester was not queued: recorded on the request and audited.
  void record_notice_failure(const std::string& id, const std::string& error);

  std::optional<ReleaseRequest> find(const std::string& id) const;
  // Newest first.
  std::vector<ReleaseRequest> list(const std::function<bool(const ReleaseRequest&)>& filter) const;
  // The newest request for `subject` by `requester`.
  std::optional<ReleaseRequest> latest(const std::string& subject, const std::string& requester) const;

  // Approved requests whose download time is over become expired (audited). Returns how many.
  std::size_t expire();
  // A thread that calls expire() every `interval` (errors go to `log`), so
  // that release.expired is recorded even when nobody looks; stopped by
  // stop() or the destructor.
  void start(std::chrono::seconds interval, std::function<void(const std::string&)> log);
  void stop();
  ~ReleaseDesk();
  ReleaseDesk(const ReleaseDesk&) = delete;
  ReleaseDesk& operator=(const ReleaseDesk&) = delete;

  std::chrono::system_clock::time_point now() const;
  bool deliver_to_lgwan() const { return options_.deliver_to_lgwan; }
  static bool valid_id(std::string_view id);

 private:
  void save(const ReleaseRequest& r);
  void audit(const char* type, const ReleaseRequest& r, const std::string& actor, const std::string& text);

  std::filesystem::path dir_;
  AuditLog& audit_;
  Options options_;
  mutable std::mutex mutex_;   // around each read-modify-write of a request file
  std::mutex request_mutex_;   // request(): look for an open one, then add
  std::mutex thread_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// --- who may do what (the one place for these decisions) -------------------

bool has_role(const AccountConfig& account, std::string_view role);
// An approver decides, but never their own request; auditors only read.
bool may_decide(const AccountConfig& account, const ReleaseRequest& r);
// The original of `r` may be downloaded by `account` on the listener of
// `zone_is_lgwan`: only the requester, only where policy puts it.
enum class DownloadAccess { Allowed, NotFound, Gone };
DownloadAccess download_access(const AccountConfig& account, const ReleaseRequest& r, bool zone_is_lgwan,
                               bool deliver_to_lgwan, std::chrono::system_clock::time_point now);

}  // namespace mukaika::http
