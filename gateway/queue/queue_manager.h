// The queue manager of the MTA hop: one thread that moves every message
// from incoming/ through the sanitizer to the next hop, and never loses one.
//
// Promises:
// - Fail closed: a message is delivered only as the sanitizer's output. If
//   the sanitizer throws, the message stays in incoming/ and is retried with
//   backoff; after give_up_after it goes to hold/, never out.
// - Before a message leaves incoming/, its original is in the quarantine and
//   its audit record is written. Every delivery attempt is audited per
//   recipient; records the audit log refused are kept in the message's
//   metadata and written before any further work on that message.
// - Per recipient: 2xx -> delivered; 4xx or no reply -> deferred (retry_min,
//   doubling up to retry_max) until give_up_after, then failed; 5xx ->
//   failed. Failed recipients get a DSN (make_bounce) queued as its own
//   message and delivered from <> through bounce_delivery. When no DSN is
//   possible (null sender, a DSN that failed, no bounce_delivery) the
//   message goes to hold/ with the reason, audited: never dropped.
// - Blocked: not delivered; with blocked_notice the notice built by
//   make_blocked_notice is delivered to the recipients instead.
// - Crash safety: every step ends in one rename of the message directory;
//   a crash repeats at most the last step, so a message is delivered at
//   least once and at most twice (the same bytes, so the same Message-ID).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "mta_types.h"
#include "queue/audit_log.h"
#include "queue/quarantine.h"
#include "queue/spool.h"

namespace mukaika {

// What the sanitizer made of one mail (the result of the pipeline).
struct SanitizedMail {
  enum class Verdict { Clean, Sanitized, Blocked };
  Verdict verdict = Verdict::Blocked;
  std::string message;    // the output mail; empty when blocked (empty otherwise = an error: not delivered)
  std::string reason;     // when blocked, for people (Japanese)
  std::string reason_en;  // the same in English
  nlohmann::json report;  // the item report
  std::string message_id;
  std::string sha256_out;
};
std::string_view to_string(SanitizedMail::Verdict verdict);

// Throws when it could not decide: the message stays and is retried.
using SanitizeFn = std::function<SanitizedMail(const std::string& queue_id, const std::string& original)>;
// Builds a DSN (RFC 3464) for the failed recipients.
using BounceBuilder = std::function<std::string(const Envelope& envelope, const std::vector<RecipientResult>& failed,
                                                const std::string& original_headers)>;
// Builds the notice that replaces a blocked mail.
using NoticeBuilder =
    std::function<std::string(const Envelope& envelope, const SanitizedMail& result, const std::string& queue_id)>;

struct QueueOptions {
  std::chrono::seconds retry_min{60};
  std::chrono::seconds retry_max{900};
  std::chrono::seconds give_up_after{std::chrono::hours(120)};
  bool blocked_notice = false;
  std::function<std::chrono::system_clock::time_point()> clock = [] { return std::chrono::system_clock::now(); };
  std::chrono::seconds quarantine_expiry_interval{std::chrono::hours(1)};
  std::chrono::seconds done_keep{std::chrono::hours(24 * 7)};  // done/ records older than this are removed
  std::chrono::milliseconds poll_interval{std::chrono::seconds(30)};  // longest sleep without notify()
  // Operator log lines (default: stderr).
  std::function<void(const std::string&)> log;
  // Tests only: called at each named step so that a test can crash there.
  std::function<void(std::string_view step)> step_hook;
};

// What the manager works with; the references must outlive it.
struct QueueParts {
  Spool& spool;
  Quarantine& quarantine;
  AuditLog& audit;
  Delivery& delivery;                 // to the LGWAN side
  Delivery* bounce_delivery = nullptr;  // to the Internet side, for DSNs; none = failures go to hold
  SanitizeFn sanitize;
  BounceBuilder make_bounce;
  NoticeBuilder make_blocked_notice;
};

class QueueManager {
 public:
  QueueManager(QueueParts parts, QueueOptions options = {});
  ~QueueManager();  // stop()
  QueueManager(const QueueManager&) = delete;
  QueueManager& operator=(const QueueManager&) = delete;

  // Starts the thread: recover(), then run_once() whenever notified or due.
  void start();
  // Finishes the current step and returns; everything else stays on disk.
  void stop();
  // A message was accepted: look now.
  void notify();
  // Makes every deferred message due now (`mukaika queue --flush`).
  void flush();

  // At start: expires the quarantine and old done records. Messages a crash
  // left in incoming/ or sanitized/ are taken up by the next run_once().
  void recover();
  // One pass over all due work, in this thread (the thread's body; tests
  // call it directly). Returns when the next message becomes due.
  std::chrono::system_clock::time_point run_once();

 private:
  void process_incoming(const std::string& id);
  void process_sanitized(const std::string& id);
  void sanitize_failed(MessageMeta& meta, const std::string& error);
  void hold(SpoolState from, MessageMeta& meta, const std::string& reason);
  void write_audit(SpoolState state, MessageMeta& meta, std::vector<nlohmann::json> records);
  void flush_pending_audit(SpoolState state, MessageMeta& meta);
  std::chrono::seconds backoff(int attempts) const;
  bool due(const MessageMeta& meta);
  void step(std::string_view name);
  void log(const std::string& line);
  void expire_if_due();
  void thread_main();

  QueueParts parts_;
  QueueOptions options_;
  std::chrono::system_clock::time_point now_{};
  std::chrono::system_clock::time_point earliest_{};
  std::chrono::system_clock::time_point next_expiry_{};
  bool flushing_ = false;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> flush_requested_{false};
  std::thread thread_;
};

}  // namespace mukaika
