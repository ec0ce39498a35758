#include "queue/queue_manager.h"

#include <algorithm>
#include <iostream>

namespace mukaika {

using Clock = std::chrono::system_clock;
using queue_detail::sha256_hex;

namespace {
// Mails the delivery thread takes at once (deliver_batch): enough for one
// journal commit to cover a burst, few enough that the first mail's move
// to done/ does not wait long for the last one's delivery.
constexpr std::size_t kDeliveryBatch = 32;
}  // namespace

std::string_view to_string(SanitizedMail::Verdict verdict) {
  switch (verdict) {
    case SanitizedMail::Verdict::Clean: return "clean";
    case SanitizedMail::Verdict::Sanitized: return "sanitized";
    case SanitizedMail::Verdict::Blocked: return "blocked";
  }
  return "?";
}

QueueManager::QueueManager(QueueParts parts, QueueOptions options)
    : parts_(std::move(parts)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
  if (options_.retry_min.count() <= 0) options_.retry_min = std::chrono::seconds(1);
  if (options_.retry_max < options_.retry_min) options_.retry_max = options_.retry_min;
}

QueueManager::~QueueManager() { stop(); }

void QueueManager::log(const std::string& line) {
  if (options_.log)
    options_.log(line);
  else
    std::cerr << "mukaika queue: " << line << '\n';
}

void QueueManager::step(std::string_view name) {
  if (options_.step_hook) options_.step_hook(name);
}

std::chrono::seconds QueueManager::backoff(int attempts) const {
  auto delay = options_.retry_min;
  for (int i = 1; i < attempts && delay < options_.retry_max; ++i) delay *= 2;
  return std::min(delay, options_.retry_max);
}

bool QueueManager::due(Pass& p, const MessageMeta& meta) {
  if (p.flushing || meta.next_attempt <= p.now) return true;
  p.earliest = std::min(p.earliest, meta.next_attempt);
  return false;
}

void QueueManager::start() {
  if (!threads_.empty()) return;
  stopping_ = false;
  {
    std::lock_guard lock(mutex_);
    running_ = true;
  }
  threads_.emplace_back([this] { scheduler_main(); });
  for (int i = 0; i < std::max(1, options_.sanitize_threads); ++i)
    threads_.emplace_back([this] { worker_main(SpoolState::Incoming); });
  threads_.emplace_back([this] { worker_main(SpoolState::Sanitized); });
}

void QueueManager::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    running_ = false;
  }
  wake_.notify_all();
  work_ready_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  std::lock_guard lock(mutex_);
  to_sanitize_.clear();
  to_deliver_.clear();
  in_hand_.clear();
}

void QueueManager::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_all();
}

void QueueManager::accepted(const std::string& queue_id) {
  {
    std::lock_guard lock(mutex_);
    // The scheduler still learns of it when it lists; in hand, it is skipped.
    if (running_ && !stopping_ && options_.clock() >= paused_until_ && in_hand_.insert(queue_id).second) {
      to_sanitize_.push_back({queue_id, false});
      work_ready_.notify_all();
      return;
    }
    notified_ = true;
  }
  wake_.notify_all();
}

std::string QueueManager::submit_generated(const Envelope& envelope, const std::string& message,
                                          std::string_view kind, std::string_view event, std::string_view detail) {
  Envelope e = envelope;
  if (e.received == Clock::time_point{}) e.received = options_.clock();
  const std::string id = parts_.spool.accept_generated(e, message, kind);
  // Written before anyone is told it was queued; a lost record would leave
  // a delivery nobody can account for.
  parts_.audit.append(AuditLog::event(id, e.received, event, detail));
  notify();
  return id;
}

void QueueManager::flush() {
  flush_requested_ = true;
  notify();
}

// Lists the spool and queues every due message that no thread has in hand.
// Returns when it should look again without being notified.
Clock::time_point QueueManager::schedule() {
  const auto now = options_.clock();
  const bool flushing = flush_requested_.exchange(false);
  expire_if_due();
  {
    std::lock_guard lock(mutex_);
    if (flushing) {
      retry_at_.clear();
      paused_until_ = Clock::time_point{};
      // Messages in hand now are flushed when they come back.
      reflush_.insert(in_hand_.begin(), in_hand_.end());
    }
    if (now < paused_until_) return paused_until_;
  }
  const auto incoming = parts_.spool.list(SpoolState::Incoming);
  const auto sanitized = parts_.spool.list(SpoolState::Sanitized);
  auto next = now + options_.poll_interval;
  std::lock_guard lock(mutex_);
  std::map<std::string, Clock::time_point> retry_at;  // only for messages still listed
  std::set<std::string> reflush;
  auto queue = [&](const std::vector<std::string>& ids, std::deque<Task>& to) {
    for (const auto& id : ids) {
      if (in_hand_.count(id)) {
        if (reflush_.count(id)) reflush.insert(id);
        continue;
      }
      const bool flush_this = flushing || reflush_.count(id) > 0;
      if (auto it = retry_at_.find(id); it != retry_at_.end() && it->second > now && !flush_this) {
        retry_at.insert(*it);
        next = std::min(next, it->second);
        continue;
      }
      in_hand_.insert(id);
      to.push_back({id, flush_this});
    }
  };
  queue(incoming, to_sanitize_);
  queue(sanitized, to_deliver_);
  // Messages in hand get their entry when they come back.
  retry_at_ = std::move(retry_at);
  reflush_ = std::move(reflush);
  work_ready_.notify_all();
  return next;
}

void QueueManager::scheduler_main() {
  try {
    recover();
  } catch (const std::exception& e) {
    log(std::string("recovery: ") + e.what());
  }
  // Listing the spool costs time in proportion to its size: while the
  // threads have work queued, a notification waits up to this long, so that
  // a large backlog is not listed once per message.
  constexpr auto kRelistAfter = std::chrono::milliseconds(100);
  while (!stopping_) {
    Clock::time_point next;
    Clock::time_point not_before{};  // after a failed listing: not again at once
    try {
      next = schedule();
    } catch (const std::exception& e) {
      log(e.what());
      next = not_before = options_.clock() + options_.retry_min;
    }
    const auto listed = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    for (;;) {
      if (stopping_) break;
      // Due: the time schedule() named, or a message deferred since.
      auto due = next;
      for (const auto& [id, at] : retry_at_) due = std::min(due, at);
      due = std::max({due, not_before, paused_until_});  // the audit log refused: nothing before then
      const auto now = options_.clock();
      if (due <= now) break;
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
      wait = std::clamp(wait, std::chrono::milliseconds(0), options_.poll_interval);
      if (notified_) {
        const auto relist = listed + kRelistAfter;
        if ((to_sanitize_.empty() && to_deliver_.empty()) || std::chrono::steady_clock::now() >= relist) break;
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  relist - std::chrono::steady_clock::now()) + std::chrono::milliseconds(1));
      }
      if (wake_.wait_for(lock, wait) == std::cv_status::timeout && !notified_) break;
    }
    notified_ = false;
  }
}

// One message, as run_once() does it: errors are logged and retried later;
// an audit log that refuses a record pauses the queue.
QueueManager::Outcome QueueManager::run_task(SpoolState state, const Task& task, Pass& p) {
  p.now = options_.clock();
  p.flushing = task.flushing;
  try {
    if (state == SpoolState::Incoming)
      process_incoming(p, task.id);
    else
      process_sanitized(p, task.id);
  } catch (const AuditError& e) {
    // Fail closed: no work without its audit record. Try again later.
    log(std::string(e.what()) + " (queue paused until the audit log is writable)");
    return Outcome::AuditFailed;
  } catch (const std::exception& e) {
    log(std::string(to_string(state)) + " " + task.id + ": " + e.what());
    p.earliest = std::min(p.earliest, p.now + options_.retry_min);
  }
  return Outcome::Done;
}

// A sanitizing thread (Incoming) or the delivery thread (Sanitized).
void QueueManager::worker_main(SpoolState state) {
  std::deque<Task>& queue = state == SpoolState::Incoming ? to_sanitize_ : to_deliver_;
  const bool delivers = state == SpoolState::Sanitized;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (queue.empty()) {
      if (!delivers) {
        work_ready_.wait(lock, [&] { return stopping_ || !queue.empty(); });
      } else if (!work_ready_.wait_for(lock, options_.idle_check_interval,
                                       [&] { return stopping_ || !queue.empty(); })) {
        // Nothing to deliver: connections kept for reuse may be closed.
        lock.unlock();
        try {
          parts_.delivery.close_idle();
          if (parts_.bounce_delivery) parts_.bounce_delivery->close_idle();
        } catch (const std::exception& e) {
          log(e.what());
        }
        lock.lock();
      }
      continue;
    }
    if (options_.clock() < paused_until_) {
      in_hand_.erase(queue.front().id);  // the scheduler queues it again once the pause is over
      queue.pop_front();
      continue;
    }
    if (delivers) {
      std::vector<Task> tasks;
      while (!queue.empty() && tasks.size() < kDeliveryBatch) {
        tasks.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      deliver_batch(std::move(tasks), lock);
      continue;
    }
    Task task = std::move(queue.front());
    queue.pop_front();
    lock.unlock();
    Pass p;
    const Outcome outcome = run_task(state, task, p);
    lock.lock();
    task_finished(state, task, p, outcome);
  }
}

void QueueManager::task_finished(SpoolState state, const Task& task, const Pass& p, Outcome outcome) {
  std::deque<Task>& queue = state == SpoolState::Sanitized ? to_deliver_ : to_sanitize_;
  if (outcome == Outcome::AuditFailed) paused_until_ = options_.clock() + options_.retry_min;
  if (p.sanitized && outcome == Outcome::Done && !stopping_) {
    // Straight on to the delivery thread, still in hand: no listing needed.
    to_deliver_.push_back({task.id, false});
    work_ready_.notify_all();
    return;
  }
  in_hand_.erase(task.id);
  if (p.earliest != Clock::time_point::max() && !reflush_.count(task.id))
    retry_at_[task.id] = p.earliest;
  else
    retry_at_.erase(task.id);
  // The scheduler learns of the retry time, and lists the spool again
  // when this thread runs out of work.
  if (queue.empty() || reflush_.count(task.id)) notified_ = true;
  wake_.notify_all();
}

// The mails waiting for delivery, one after another, and then one batch of
// syncs for all their records (the audit log's and each mail's metadata):
// under load one journal commit covers many deliveries instead of two per
// mail in a single thread. The moves to done/ wait for that commit. A crash
// before it leaves the mails in sanitized/, to be delivered again: at most
// twice, as after a crash between the next hop's reply and its record.
void QueueManager::deliver_batch(std::vector<Task> tasks, std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  queue_detail::SyncBatch batch;
  std::vector<std::string> done;
  std::vector<std::pair<Pass, Outcome>> results;
  results.reserve(tasks.size());
  for (const Task& task : tasks) {
    Pass p;
    p.batch = &batch;
    p.done_after_commit = &done;
    // After the audit log refused a record, the rest wait for the pause
    // (the scheduler queues them again); on stop, for the next start.
    const bool refused = !results.empty() && results.back().second == Outcome::AuditFailed;
    if (stopping_ && !refused) {
      results.emplace_back(p, Outcome::Done);  // untouched: still in sanitized/
      continue;
    }
    const Outcome outcome = refused ? Outcome::AuditFailed : run_task(SpoolState::Sanitized, task, p);
    results.emplace_back(p, outcome);
  }
  Outcome committed = Outcome::Done;
  try {
    batch.commit();
    for (const auto& id : done) {
      parts_.spool.move(id, SpoolState::Sanitized, SpoolState::Done);
      step("deliver.done");
    }
  } catch (const AuditError& e) {
    log(std::string(e.what()) + " (queue paused until the audit log is writable)");
    committed = Outcome::AuditFailed;
  } catch (const std::exception& e) {
    // The records are written but maybe not synced: the mails stay in
    // sanitized/ and are looked at again (nothing left to deliver there).
    log(std::string("delivery records: ") + e.what());
    for (auto& [p, outcome] : results) p.earliest = std::min(p.earliest, options_.clock() + options_.retry_min);
  }
  lock.lock();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    auto& [p, outcome] = results[i];
    task_finished(SpoolState::Sanitized, tasks[i], p, committed == Outcome::AuditFailed ? committed : outcome);
  }
}

void QueueManager::recover() {
  next_expiry_ = Clock::time_point{};
  expire_if_due();
}

void QueueManager::expire_if_due() {
  const auto now = options_.clock();
  if (now < next_expiry_) return;
  next_expiry_ = now + options_.quarantine_expiry_interval;
  try {
    std::vector<std::string> days;
    if (auto n = parts_.quarantine.expire(now, &days)) {
      log("quarantine: expired " + std::to_string(n) + " original(s)");
      // Accountable: how many originals the retention removed, and of which days.
      std::sort(days.begin(), days.end());
      parts_.audit.append({{"type", "quarantine_expired"},
                           {"time", queue_detail::iso8601_local(now)},
                           {"count", n},
                           {"days", days},
                           {"keep_days", parts_.quarantine.keep_days()}});
    }
  } catch (const std::exception& e) {
    log(e.what());
  }
  try {
    parts_.spool.purge_done(now - options_.done_keep);
  } catch (const std::exception& e) {
    log(e.what());
  }
}

Clock::time_point QueueManager::run_once() {
  const bool flushing = flush_requested_.exchange(false);
  expire_if_due();
  auto earliest = Clock::time_point::max();
  for (SpoolState state : {SpoolState::Incoming, SpoolState::Sanitized}) {
    for (const auto& id : parts_.spool.list(state)) {
      if (stopping_) return options_.clock();
      Pass p;
      if (run_task(state, Task{id, flushing}, p) == Outcome::AuditFailed) return p.now + options_.retry_min;
      earliest = std::min(earliest, p.earliest);
    }
  }
  return earliest;
}

void QueueManager::flush_pending_audit(SpoolState state, MessageMeta& meta) {
  if (meta.audit_pending.empty()) return;
  for (const auto& record : meta.audit_pending) parts_.audit.append(record);
  meta.audit_pending = nlohmann::json::array();
  parts_.spool.save_meta(state, meta);
}

// Records go to the log first, then the metadata is saved: a crash in
// between repeats the step, so a record may be written twice, never zero
// times. A record the log refuses waits in the metadata (audit_pending),
// with the ones after it, and is written before any further work on the
// message.
void QueueManager::write_audit(SpoolState state, MessageMeta& meta, std::vector<nlohmann::json> records,
                               queue_detail::SyncBatch* outer, bool commit) {
  queue_detail::SyncBatch own;
  queue_detail::SyncBatch& batch = outer ? *outer : own;
  // A record the log refuses (or cannot sync) stays in the metadata, saved
  // alone and durably, for flush_pending_audit() to write later.
  const auto keep_pending = [&](std::size_t from) {
    for (std::size_t j = from; j < records.size(); ++j) meta.audit_pending.push_back(std::move(records[j]));
    parts_.spool.save_meta(state, meta);
  };
  for (std::size_t i = 0; i < records.size(); ++i) {
    try {
      parts_.audit.append(records[i], batch);
    } catch (const AuditError&) {
      keep_pending(i);
      throw;
    }
  }
  parts_.spool.save_meta(state, meta, batch);
  if (!commit) return;
  try {
    batch.commit();
  } catch (const AuditError&) {
    // Written but maybe not on disk: written again later (a record may
    // then appear twice; never not at all).
    keep_pending(0);
    throw;
  }
}

void QueueManager::hold(Pass& p, SpoolState from, MessageMeta& meta, const std::string& reason) {
  meta.hold_reason = reason;
  meta.finished = p.now;
  log("hold " + meta.queue_id + ": " + reason);
  write_audit(from, meta, {AuditLog::event(meta.queue_id, p.now, "hold", reason)});
  parts_.spool.move(meta.queue_id, from, SpoolState::Hold);
}

// Reads output.eml ("" when there is none) into `output`; false when it
// does not match the SHA-256 recorded with it (nothing recorded: true).
bool QueueManager::output_intact(SpoolState state, const MessageMeta& meta, std::string& output) {
  try {
    output = parts_.spool.load_output(state, meta.queue_id);
  } catch (const SpoolError& e) {
    if (e.error_code() != ENOENT) throw;
  }
  return meta.sha256_output.empty() || sha256_hex(output) == meta.sha256_output;
}

// output.eml is written without fsync (process_incoming); a crash may have
// lost or cut it. A mail goes back to incoming/ and is sanitized again from
// its original, which is durable; a message the gateway generated has no
// original and is held for the operator.
void QueueManager::output_lost(Pass& p, MessageMeta& meta) {
  const std::string why = "output.eml does not match its SHA-256 (cut short by a crash)";
  if (meta.kind != "mail" && meta.kind != "notice") {
    hold(p, SpoolState::Sanitized, meta, why);
    return;
  }
  log("deliver " + meta.queue_id + ": " + why + "; sanitizing it again");
  meta.next_attempt = p.now;
  write_audit(SpoolState::Sanitized, meta, {AuditLog::event(meta.queue_id, p.now, "sanitize_again", why)});
  parts_.spool.move(meta.queue_id, SpoolState::Sanitized, SpoolState::Incoming);
  p.earliest = std::min(p.earliest, p.now);
}

void QueueManager::sanitize_failed(Pass& p, MessageMeta& meta, const std::string& error) {
  meta.attempts += 1;
  meta.last_error = "sanitizer: " + error;
  if (p.now - meta.received >= options_.give_up_after) {
    hold(p, SpoolState::Incoming, meta,
         "could not be sanitized for " +
             std::to_string(std::chrono::duration_cast<std::chrono::hours>(options_.give_up_after).count()) +
             " hours: " + error);
    return;
  }
  meta.next_attempt = p.now + backoff(meta.attempts);
  p.earliest = std::min(p.earliest, meta.next_attempt);
  log("sanitize " + meta.queue_id + " deferred: " + error);
  write_audit(SpoolState::Incoming, meta, {AuditLog::event(meta.queue_id, p.now, "sanitize_deferred", error)});
}

void QueueManager::process_incoming(Pass& p, const std::string& id) {
  auto meta = parts_.spool.load_meta(SpoolState::Incoming, id);
  flush_pending_audit(SpoolState::Incoming, meta);
  if (!due(p, meta)) return;
  // Sanitized and recorded already, its move to sanitized/ (not synced)
  // undone by a crash: the move again, nothing sanitized or recorded twice.
  const bool recorded = !meta.verdict.empty() && !meta.sha256_output.empty() && meta.hold_reason.empty() &&
                        (meta.kind == "mail" || meta.kind == "notice");
  if (std::string output; recorded && output_intact(SpoolState::Incoming, meta, output)) {
    log("incoming " + id + ": sanitized before a restart, moved on to delivery");
    parts_.spool.move(id, SpoolState::Incoming, SpoolState::Sanitized, false);
    p.sanitized = true;
    return;
  }
  const std::string original = parts_.spool.load_original(SpoolState::Incoming, id);
  // Not yet sanitized and not the bytes accepted: a crash came before the
  // accept's syncs returned, so no 250 was given for it (Spool::store).
  // Nothing to work on; hold/ keeps it for the operator to see.
  const std::string original_sha256 = sha256_hex(original);
  if (meta.verdict.empty() && !meta.sha256_original.empty() && original_sha256 != meta.sha256_original) {
    hold(p, SpoolState::Incoming, meta,
         "original.eml does not match the SHA-256 recorded at accept: a crash before the 250 cut it short "
         "(the sending MTA was not told it arrived and sends it again)");
    return;
  }

  SanitizedMail result;
  try {
    if (!parts_.sanitize) throw std::runtime_error("no sanitizer configured");
    result = parts_.sanitize(id, original);
    if (result.verdict != SanitizedMail::Verdict::Blocked && result.message.empty())
      throw std::runtime_error("the sanitizer returned an empty message");
  } catch (const std::exception& e) {
    sanitize_failed(p, meta, e.what());
    return;
  } catch (...) {
    sanitize_failed(p, meta, "unknown error");
    return;
  }
  step("sanitize.done");
  p.now = options_.clock();

  const bool blocked = result.verdict == SanitizedMail::Verdict::Blocked;
  std::string output;
  meta.kind = "mail";  // a step repeated after a crash decides afresh
  if (!blocked) {
    output = options_.trace_header ? options_.trace_header(meta.envelope, id) + result.message : result.message;
  } else if (options_.blocked_notice && parts_.make_blocked_notice) {
    output = parts_.make_blocked_notice(meta.envelope, result, id);
    meta.kind = "notice";
  }
  // Not synced: its SHA-256 goes into the metadata, and delivery sanitizes
  // again whatever a crash lost or cut (process_sanitized).
  if (!output.empty()) parts_.spool.save_output(SpoolState::Incoming, id, output);
  step("sanitize.output_written");

  meta.verdict = std::string(to_string(result.verdict));
  meta.sha256_original = original_sha256;
  meta.sha256_output = output.empty() ? "" : sha256_hex(output);
  meta.message_id = parse_message_id(original);
  if (meta.message_id.empty()) meta.message_id = result.message_id;
  meta.reason = result.reason;
  meta.attempts = 0;
  meta.last_error.clear();
  meta.next_attempt = p.now;

  MessageAudit audit;
  audit.queue_id = id;
  audit.time = p.now;
  audit.envelope = meta.envelope;
  audit.message_id = meta.message_id;
  audit.sha256_original = meta.sha256_original;
  audit.sha256_output = blocked ? "" : meta.sha256_output;
  audit.verdict = meta.verdict;
  audit.actions = result.report;
  audit.reason = result.reason;
  audit.reason_en = result.reason_en;

  // The quarantine's files, the audit record and the metadata are synced
  // together (write_audit), before the move out of incoming/.
  queue_detail::SyncBatch batch;
  parts_.quarantine.keep(id, original, meta.envelope,
                         {{"verdict", meta.verdict},
                          {"reason", result.reason},
                          {"reason_en", result.reason_en},
                          {"message_id", meta.message_id},
                          // Decoded by the worker: what people call the mail (release requests).
                          {"subject", result.subject},
                          {"from", result.from},
                          {"sha256_output", audit.sha256_output},
                          // What was removed and why, for the LGWAN mail page
                          // (release requests, held archives).
                          {"report", result.report}},
                         parts_.spool.original_file(SpoolState::Incoming, id), &batch, original_sha256);
  step("sanitize.quarantined");

  std::vector<nlohmann::json> records{AuditLog::record(audit)};
  if (blocked && output.empty()) {
    for (auto& r : meta.recipients) r.status = recipient_status::blocked;
    meta.finished = p.now;
  }
  if (blocked && !output.empty())
    records.push_back(AuditLog::event(id, p.now, "blocked_notice", "a notice replaces the blocked mail"));
  write_audit(SpoolState::Incoming, meta, std::move(records), &batch);
  step("sanitize.audited");

  // Not synced: the batch above made the result durable, and should a
  // crash undo the move, the next pass sees the recorded result and moves
  // it again (the top of this function). One journal commit per mail less.
  parts_.spool.move(id, SpoolState::Incoming, output.empty() ? SpoolState::Done : SpoolState::Sanitized, false);
  p.sanitized = !output.empty();
  step("sanitize.moved");
}

void QueueManager::process_sanitized(Pass& p, const std::string& id) {
  auto meta = parts_.spool.load_meta(SpoolState::Sanitized, id);
  flush_pending_audit(SpoolState::Sanitized, meta);
  if (!due(p, meta)) return;

  const bool is_bounce = meta.kind == "bounce";
  std::vector<std::string> pending;
  for (const auto& r : meta.recipients)
    if (r.status == recipient_status::pending) pending.push_back(r.recipient);

  bool finished_now = false;  // the metadata saved last is final
  if (!pending.empty()) {
    Delivery* delivery = is_bounce ? parts_.bounce_delivery : &parts_.delivery;
    if (!delivery) {
      hold(p, SpoolState::Sanitized, meta, "a DSN is queued but no bounce delivery is configured");
      return;
    }
    std::string output;
    if (!output_intact(SpoolState::Sanitized, meta, output)) {
      output_lost(p, meta);
      return;
    }
    auto results = delivery->deliver(meta.envelope, pending, output);
    step("deliver.delivered");
    p.now = options_.clock();
    if (results.size() != pending.size())
      log("delivery " + id + ": " + delivery->describe() + " returned " + std::to_string(results.size()) +
          " results for " + std::to_string(pending.size()) + " recipients");

    std::vector<nlohmann::json> records;
    const bool give_up = p.now - meta.received >= options_.give_up_after;
    bool still_pending = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      // The Delivery contract: one result per recipient, in order.
      SmtpReply reply = i < results.size() ? results[i].reply
                            : SmtpReply{0, "", "no result from " + delivery->describe()};
      auto it = std::find_if(meta.recipients.begin(), meta.recipients.end(), [&](const RecipientState& r) {
        return r.recipient == pending[i] && r.status == recipient_status::pending;
      });
      if (it == meta.recipients.end()) continue;
      std::string outcome;
      if (reply.ok()) {
        it->status = recipient_status::delivered;
        outcome = "delivered";
      } else if (reply.permanent()) {
        it->status = recipient_status::failed;
        outcome = "bounced";
      } else if (give_up) {
        it->status = recipient_status::failed;
        reply.text = "gave up after " +
                     std::to_string(std::chrono::duration_cast<std::chrono::hours>(options_.give_up_after).count()) +
                     " hours; last reply: " + (reply.code ? std::to_string(reply.code) + " " : "") + reply.text;
        outcome = "bounced";
      } else {
        outcome = "deferred";
        still_pending = true;
        meta.last_error = delivery->describe() + ": " + (reply.code ? std::to_string(reply.code) + " " : "") + reply.text;
      }
      it->last_reply = reply;
      DeliveryAudit a;
      a.queue_id = id;
      a.time = p.now;
      a.kind = meta.kind;
      a.next_hop = delivery->describe();
      a.mail_from = meta.envelope.mail_from;
      a.recipient = pending[i];
      a.reply = reply;
      a.outcome = outcome;
      records.push_back(AuditLog::record(a));
    }
    meta.attempts += 1;
    if (still_pending) {
      meta.next_attempt = p.now + backoff(meta.attempts);
      p.earliest = std::min(p.earliest, meta.next_attempt);
    }
    // Nothing left to do after this (the usual case: every recipient
    // delivered): the metadata saved with the records is the final one.
    finished_now = std::all_of(meta.recipients.begin(), meta.recipients.end(), [](const RecipientState& r) {
      return r.status != recipient_status::pending && r.status != recipient_status::failed;
    });
    if (finished_now) meta.finished = p.now;
    // In the delivery thread's batch the sync comes later (deliver_batch);
    // a crash before it can only deliver the mail again (at most twice).
    write_audit(SpoolState::Sanitized, meta, std::move(records), p.batch, p.batch == nullptr);
    step("deliver.recorded");
  }

  std::vector<RecipientResult> failed;
  bool any_pending = false;
  for (const auto& r : meta.recipients) {
    if (r.status == recipient_status::failed) failed.push_back({r.recipient, r.last_reply});
    if (r.status == recipient_status::pending) any_pending = true;
  }
  if (!failed.empty()) {
    std::string no_dsn;
    if (is_bounce)
      no_dsn = "the DSN to " + meta.envelope.recipients.front() + " could not be delivered (double bounce)";
    else if (meta.envelope.mail_from.empty())
      no_dsn = "delivery failed permanently and the sender is the null sender: no DSN possible";
    else if (!parts_.bounce_delivery || !parts_.make_bounce)
      no_dsn = "delivery failed permanently and no bounce delivery is configured";
    if (no_dsn.empty()) {
      const std::string headers = header_block(parts_.spool.load_original(SpoolState::Sanitized, id));
      const std::string dsn = parts_.make_bounce(meta.envelope, failed, headers);
      Envelope bounce_env;
      bounce_env.mail_from = "";
      bounce_env.recipients = {meta.envelope.mail_from};
      bounce_env.received = p.now;
      const std::string bounce_id = parts_.spool.accept_generated(bounce_env, dsn, "bounce");
      step("bounce.queued");
      for (auto& r : meta.recipients)
        if (r.status == recipient_status::failed) r.status = recipient_status::bounced;
      meta.bounce_ids.push_back(bounce_id);
      write_audit(SpoolState::Sanitized, meta,
                  {AuditLog::event(id, p.now, "bounce_queued",
                                   "DSN " + bounce_id + " to <" + meta.envelope.mail_from + "> from <>")});
      notify();
    } else if (!any_pending) {
      hold(p, SpoolState::Sanitized, meta, no_dsn);
      return;
    }
  }
  if (!any_pending) {
    if (!finished_now || !failed.empty()) {
      meta.finished = p.now;
      parts_.spool.save_meta(SpoolState::Sanitized, meta);
    }
    if (p.done_after_commit && finished_now && failed.empty()) {
      p.done_after_commit->push_back(id);  // once its records are synced
      return;
    }
    parts_.spool.move(id, SpoolState::Sanitized, SpoolState::Done);
    step("deliver.done");
  }
}

}  // namespace mukaika
