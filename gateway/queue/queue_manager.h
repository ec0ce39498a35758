// The queue manager of the MTA hop: moves every message from incoming/
// through the sanitizer to the next hop, and never loses one.
//
// Threads (start()): one scheduler lists the spool and hands out due work;
// `sanitize_threads` threads sanitize (each one message at a time, so that
// several messages are in the sanitizer at once; serve runs two per worker,
// so a worker has its next mail while a thread writes the last one's
// results to disk); one delivery thread delivers sanitized messages and DSNs while the
// others sanitize (Delivery objects are used by one thread at a time, so a
// RelayClient can keep its connection to the next hop between messages).
// A message is in the hands of at most one thread at a time. run_once()
// does the same work in the calling thread, one message after the other.
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
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
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
  std::string subject, from;  // decoded, for the blocked notice ("" when unknown)
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
  // Threads that sanitize at once after start() (serve: 2 × workers.count).
  int sanitize_threads = 1;
  // How often an idle delivery thread calls Delivery::close_idle().
  std::chrono::milliseconds idle_check_interval{std::chrono::seconds(1)};
  // The Received: line this hop puts on top of each mail it delivers (RFC
  // 5321 4.4), from the envelope and the queue id; none: no line. Not on
  // the gateway's own notices and DSNs.
  std::function<std::string(const Envelope& envelope, const std::string& queue_id)> trace_header;
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

  // Starts the threads: recover(), then the scheduler hands every due
  // message to a sanitizing or the delivery thread whenever notified or due.
  void start();
  // Each thread finishes the message in its hands and returns; everything
  // else stays on disk.
  void stop();
  // A message was accepted: look now.
  void notify();
  // Message `queue_id` was just accepted into incoming/: once the threads
  // run, it goes straight to a sanitizing thread, without waiting for the
  // scheduler to list the spool; otherwise as notify().
  void accepted(const std::string& queue_id);
  // Makes every deferred message due now (`mukaika queue --flush`).
  void flush();

  // Queues a mail this gateway wrote (a decision notice, the contents of a
  // held archive) for delivery to the LGWAN side like a sanitized message:
  // on disk in sanitized/ and audited (`event`, `detail`) before it returns,
  // then delivered, retried and bounced-or-held as any other. The message
  // must already be safe: it is not sanitized again. Returns the queue id;
  // throws SpoolError / AuditError when it could not be stored.
  std::string submit_generated(const Envelope& envelope, const std::string& message, std::string_view kind,
                               std::string_view event, std::string_view detail);

  // At start: expires the quarantine and old done records. Messages a crash
  // left in incoming/ or sanitized/ are taken up by the next run_once().
  void recover();
  // One pass over all due work, in this thread, one message after the
  // other (tests call it directly; do not mix with start()). Returns when
  // the next message becomes due.
  std::chrono::system_clock::time_point run_once();

 private:
  using Clock = std::chrono::system_clock;
  // The work on one message: its clock, and when it is due next if it
  // stays where it is (max: it moved on).
  struct Pass {
    Clock::time_point now{};
    Clock::time_point earliest = Clock::time_point::max();
    bool flushing = false;
    bool sanitized = false;  // it moved to sanitized/: ready to deliver
    // The delivery thread's batch: the delivery records of several mails
    // are synced together, and the finished ones move to done/ after that.
    queue_detail::SyncBatch* batch = nullptr;
    std::vector<std::string>* done_after_commit = nullptr;
  };
  struct Task {
    std::string id;
    bool flushing = false;
  };
  // What a finished task tells the scheduler.
  enum class Outcome { Done, AuditFailed };

  void process_incoming(Pass& p, const std::string& id);
  void process_sanitized(Pass& p, const std::string& id);
  Outcome run_task(SpoolState state, const Task& task, Pass& p);
  void sanitize_failed(Pass& p, MessageMeta& meta, const std::string& error);
  bool output_intact(SpoolState state, const MessageMeta& meta, std::string& output);
  void output_lost(Pass& p, MessageMeta& meta);
  void hold(Pass& p, SpoolState from, MessageMeta& meta, const std::string& reason);
  // The records and then the metadata, durable together: one batch of
  // syncs (with what `batch` holds already, e.g. the quarantine's files).
  // With `commit` false the caller commits `batch` (and handles its errors).
  void write_audit(SpoolState state, MessageMeta& meta, std::vector<nlohmann::json> records,
                   queue_detail::SyncBatch* batch = nullptr, bool commit = true);
  void deliver_batch(std::vector<Task> tasks, std::unique_lock<std::mutex>& lock);
  void task_finished(SpoolState state, const Task& task, const Pass& p, Outcome outcome);  // with mutex_ held
  void flush_pending_audit(SpoolState state, MessageMeta& meta);
  std::chrono::seconds backoff(int attempts) const;
  bool due(Pass& p, const MessageMeta& meta);
  void step(std::string_view name);
  void log(const std::string& line);
  void expire_if_due();
  void scheduler_main();
  void worker_main(SpoolState state);
  Clock::time_point schedule();

  QueueParts parts_;
  QueueOptions options_;
  Clock::time_point next_expiry_{};

  std::mutex mutex_;  // everything below
  std::condition_variable wake_;        // the scheduler
  std::condition_variable work_ready_;  // sanitizing and delivery threads
  bool notified_ = false;
  std::atomic<bool> stopping_{false};
  bool running_ = false;  // start() ran and stop() did not; under mutex_
  std::atomic<bool> flush_requested_{false};
  std::deque<Task> to_sanitize_;
  std::deque<Task> to_deliver_;
  std::set<std::string> in_hand_;                   // queued or being worked on
  std::map<std::string, Clock::time_point> retry_at_;  // not due before
  std::set<std::string> reflush_;                   // flush() came while in hand: flush when back
  Clock::time_point paused_until_{};                // the audit log refused a record
  std::vector<std::thread> threads_;
};

}  // namespace mukaika
