#include "queue/queue_manager.h"

#include <algorithm>
#include <iostream>

namespace mukaika {

using Clock = std::chrono::system_clock;
using queue_detail::sha256_hex;

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

bool QueueManager::due(const MessageMeta& meta) {
  if (flushing_ || meta.next_attempt <= now_) return true;
  earliest_ = std::min(earliest_, meta.next_attempt);
  return false;
}

void QueueManager::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { thread_main(); });
}

void QueueManager::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void QueueManager::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_all();
}

void QueueManager::flush() {
  flush_requested_ = true;
  notify();
}

void QueueManager::thread_main() {
  try {
    recover();
  } catch (const std::exception& e) {
    log(std::string("recovery: ") + e.what());
  }
  while (!stopping_) {
    Clock::time_point next;
    try {
      next = run_once();
    } catch (const std::exception& e) {
      log(e.what());
      next = options_.clock() + options_.retry_min;
    }
    std::unique_lock lock(mutex_);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - options_.clock());
    wait = std::clamp(wait, std::chrono::milliseconds(0), options_.poll_interval);
    wake_.wait_for(lock, wait, [this] { return stopping_ || notified_; });
    notified_ = false;
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
    if (auto n = parts_.quarantine.expire(now)) log("quarantine: expired " + std::to_string(n) + " original(s)");
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
  now_ = options_.clock();
  earliest_ = Clock::time_point::max();
  flushing_ = flush_requested_.exchange(false);
  expire_if_due();
  const std::pair<SpoolState, void (QueueManager::*)(const std::string&)> passes[] = {
      {SpoolState::Incoming, &QueueManager::process_incoming},
      {SpoolState::Sanitized, &QueueManager::process_sanitized},
  };
  for (const auto& [state, process] : passes) {
    for (const auto& id : parts_.spool.list(state)) {
      if (stopping_) return now_;
      now_ = options_.clock();
      try {
        (this->*process)(id);
      } catch (const AuditError& e) {
        // Fail closed: no work without its audit record. Try again later.
        log(std::string(e.what()) + " (queue paused until the audit log is writable)");
        return now_ + options_.retry_min;
      } catch (const std::exception& e) {
        log(std::string(to_string(state)) + " " + id + ": " + e.what());
        earliest_ = std::min(earliest_, now_ + options_.retry_min);
      }
    }
  }
  return earliest_;
}

void QueueManager::flush_pending_audit(SpoolState state, MessageMeta& meta) {
  if (meta.audit_pending.empty()) return;
  for (const auto& record : meta.audit_pending) parts_.audit.append(record);
  meta.audit_pending = nlohmann::json::array();
  parts_.spool.save_meta(state, meta);
}

// Records go into the metadata first, so that a crash or a failing audit
// log cannot lose them; then to the log. (After a crash a record may be
// written twice; never zero times.)
void QueueManager::write_audit(SpoolState state, MessageMeta& meta, std::vector<nlohmann::json> records) {
  for (auto& r : records) meta.audit_pending.push_back(std::move(r));
  parts_.spool.save_meta(state, meta);
  flush_pending_audit(state, meta);
}

void QueueManager::hold(SpoolState from, MessageMeta& meta, const std::string& reason) {
  meta.hold_reason = reason;
  meta.finished = now_;
  log("hold " + meta.queue_id + ": " + reason);
  write_audit(from, meta, {AuditLog::event(meta.queue_id, now_, "hold", reason)});
  parts_.spool.move(meta.queue_id, from, SpoolState::Hold);
}

void QueueManager::sanitize_failed(MessageMeta& meta, const std::string& error) {
  meta.attempts += 1;
  meta.last_error = "sanitizer: " + error;
  if (now_ - meta.received >= options_.give_up_after) {
    hold(SpoolState::Incoming, meta,
         "could not be sanitized for " +
             std::to_string(std::chrono::duration_cast<std::chrono::hours>(options_.give_up_after).count()) +
             " hours: " + error);
    return;
  }
  meta.next_attempt = now_ + backoff(meta.attempts);
  earliest_ = std::min(earliest_, meta.next_attempt);
  log("sanitize " + meta.queue_id + " deferred: " + error);
  write_audit(SpoolState::Incoming, meta, {AuditLog::event(meta.queue_id, now_, "sanitize_deferred", error)});
}

void QueueManager::process_incoming(const std::string& id) {
  auto meta = parts_.spool.load_meta(SpoolState::Incoming, id);
  flush_pending_audit(SpoolState::Incoming, meta);
  if (!due(meta)) return;
  const std::string original = parts_.spool.load_original(SpoolState::Incoming, id);

  SanitizedMail result;
  try {
    if (!parts_.sanitize) throw std::runtime_error("no sanitizer configured");
    result = parts_.sanitize(id, original);
    if (result.verdict != SanitizedMail::Verdict::Blocked && result.message.empty())
      throw std::runtime_error("the sanitizer returned an empty message");
  } catch (const std::exception& e) {
    sanitize_failed(meta, e.what());
    return;
  } catch (...) {
    sanitize_failed(meta, "unknown error");
    return;
  }
  step("sanitize.done");
  now_ = options_.clock();

  const bool blocked = result.verdict == SanitizedMail::Verdict::Blocked;
  std::string output;
  meta.kind = "mail";  // a step repeated after a crash decides afresh
  if (!blocked) {
    output = result.message;
  } else if (options_.blocked_notice && parts_.make_blocked_notice) {
    output = parts_.make_blocked_notice(meta.envelope, result, id);
    meta.kind = "notice";
  }
  if (!output.empty()) parts_.spool.save_output(SpoolState::Incoming, id, output);
  step("sanitize.output_written");

  meta.verdict = std::string(to_string(result.verdict));
  meta.sha256_original = sha256_hex(original);
  meta.sha256_output = output.empty() ? "" : sha256_hex(output);
  meta.message_id = parse_message_id(original);
  if (meta.message_id.empty()) meta.message_id = result.message_id;
  meta.reason = result.reason;
  meta.attempts = 0;
  meta.last_error.clear();
  meta.next_attempt = now_;

  MessageAudit audit;
  audit.queue_id = id;
  audit.time = now_;
  audit.envelope = meta.envelope;
  audit.message_id = meta.message_id;
  audit.sha256_original = meta.sha256_original;
  audit.sha256_output = blocked ? "" : meta.sha256_output;
  audit.verdict = meta.verdict;
  audit.actions = result.report;
  audit.reason = result.reason;
  audit.reason_en = result.reason_en;

  parts_.quarantine.keep(id, original, meta.envelope,
                         {{"verdict", meta.verdict},
                          {"reason", result.reason},
                          {"reason_en", result.reason_en},
                          {"message_id", meta.message_id},
                          {"sha256_output", audit.sha256_output}});
  step("sanitize.quarantined");

  std::vector<nlohmann::json> records{AuditLog::record(audit)};
  if (blocked && output.empty()) {
    for (auto& r : meta.recipients) r.status = recipient_status::blocked;
    meta.finished = now_;
  }
  if (blocked && !output.empty())
    records.push_back(AuditLog::event(id, now_, "blocked_notice", "a notice replaces the blocked mail"));
  write_audit(SpoolState::Incoming, meta, std::move(records));
  step("sanitize.audited");

  parts_.spool.move(id, SpoolState::Incoming, output.empty() ? SpoolState::Done : SpoolState::Sanitized);
  step("sanitize.moved");
}

void QueueManager::process_sanitized(const std::string& id) {
  auto meta = parts_.spool.load_meta(SpoolState::Sanitized, id);
  flush_pending_audit(SpoolState::Sanitized, meta);
  if (!due(meta)) return;

  const bool is_bounce = meta.kind == "bounce";
  std::vector<std::string> pending;
  for (const auto& r : meta.recipients)
    if (r.status == recipient_status::pending) pending.push_back(r.recipient);

  if (!pending.empty()) {
    Delivery* delivery = is_bounce ? parts_.bounce_delivery : &parts_.delivery;
    if (!delivery) {
      hold(SpoolState::Sanitized, meta, "a DSN is queued but no bounce delivery is configured");
      return;
    }
    const std::string output = parts_.spool.load_output(SpoolState::Sanitized, id);
    auto results = delivery->deliver(meta.envelope, pending, output);
    step("deliver.delivered");
    now_ = options_.clock();
    if (results.size() != pending.size())
      log("delivery " + id + ": " + delivery->describe() + " returned " + std::to_string(results.size()) +
          " results for " + std::to_string(pending.size()) + " recipients");

    std::vector<nlohmann::json> records;
    const bool give_up = now_ - meta.received >= options_.give_up_after;
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
      a.time = now_;
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
      meta.next_attempt = now_ + backoff(meta.attempts);
      earliest_ = std::min(earliest_, meta.next_attempt);
    }
    write_audit(SpoolState::Sanitized, meta, std::move(records));
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
      bounce_env.received = now_;
      const std::string bounce_id = parts_.spool.accept_generated(bounce_env, dsn, "bounce");
      step("bounce.queued");
      for (auto& r : meta.recipients)
        if (r.status == recipient_status::failed) r.status = recipient_status::bounced;
      meta.bounce_ids.push_back(bounce_id);
      write_audit(SpoolState::Sanitized, meta,
                  {AuditLog::event(id, now_, "bounce_queued",
                                   "DSN " + bounce_id + " to <" + meta.envelope.mail_from + "> from <>")});
      notify();
    } else if (!any_pending) {
      hold(SpoolState::Sanitized, meta, no_dsn);
      return;
    }
  }
  if (!any_pending) {
    meta.finished = now_;
    parts_.spool.save_meta(SpoolState::Sanitized, meta);
    parts_.spool.move(id, SpoolState::Sanitized, SpoolState::Done);
    step("deliver.done");
  }
}

}  // namespace mukaika
