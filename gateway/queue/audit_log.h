// The audit log (ACCOUNTABLE): JSON Lines, one record per sanitized message
// and one per delivery attempt and recipient, so that an operator can show
// what happened to every message.
//
// Promises:
// - Each record is one line written with one write(2) on an O_APPEND file
//   and made durable with fdatasync before the call returns. Concurrent
//   callers share syncs (group commit): a caller whose line was written
//   while another's fdatasync ran waits for the next one, which covers
//   every line written before it.
// - Thread-safe: records from several threads never interleave.
// - A failure to write is an AuditError, never ignored: the queue manager
//   keeps the records it could not write in the message's metadata and does
//   no further work on that message until they are written (fail closed:
//   deferred, never unaudited). A record may appear twice after a crash.
// - reopen() opens the path again (after logrotate moved it; call on SIGHUP).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mta_types.h"
#include "queue/durable_io.h"

namespace mukaika {

class AuditError : public StorageError {
 public:
  using StorageError::StorageError;
};

// After sanitizing: what arrived, what left, and why.
struct MessageAudit {
  std::string queue_id;
  std::chrono::system_clock::time_point time{};
  Envelope envelope;
  std::string message_id;
  std::string sha256_original;
  std::string sha256_output;  // "" when blocked
  std::string verdict;        // clean | sanitized | blocked
  nlohmann::json actions;     // the sanitizer's item report (actions with their reasons)
  std::string reason;         // when blocked, Japanese
  std::string reason_en;
};

// One recipient of one delivery attempt.
struct DeliveryAudit {
  std::string queue_id;
  std::chrono::system_clock::time_point time{};
  std::string kind;  // mail | notice | bounce
  std::string next_hop;
  std::string mail_from;
  std::string recipient;
  SmtpReply reply;
  std::string outcome;  // delivered | deferred | bounced | failed
};

class AuditLog {
 public:
  // Opens (creates, mode 0640) the log for appending. Throws AuditError.
  explicit AuditLog(std::filesystem::path path);

  static nlohmann::json record(const MessageAudit& a);
  static nlohmann::json record(const DeliveryAudit& a);
  // An event about a message (hold, sanitize_deferred, give_up ...).
  static nlohmann::json event(std::string_view queue_id, std::chrono::system_clock::time_point time,
                              std::string_view event, std::string_view detail);

  // Appends one record as one line, durably. Throws AuditError.
  void append(const nlohmann::json& record);
  // Writes the line now and leaves the wait for its sync to `batch`
  // (the same group commit; a failed sync throws AuditError from commit()).
  void append(const nlohmann::json& record, queue_detail::SyncBatch& batch);
  void write(const MessageAudit& a) { append(record(a)); }
  void write(const DeliveryAudit& a) { append(record(a)); }

  // Reopens the path (log rotation). On failure keeps the old file and throws.
  void reopen();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::mutex mutex_;
  std::condition_variable synced_cv_;
  queue_detail::UniqueFd fd_;
  std::uint64_t written_ = 0;  // lines written
  std::uint64_t synced_ = 0;   // lines known to be on disk
  bool syncing_ = false;       // a thread is in fdatasync (without mutex_)

  std::uint64_t write_line(const nlohmann::json& record, bool start_writeback);  // its number, for sync_through()
  void sync_through(std::uint64_t line);
};

// The Message-ID header of a message ("<abc@example.jp>"), read cheaply from
// the header block (unfolded, first occurrence); "" when there is none.
std::string parse_message_id(std::string_view message);
// The header block of a message, up to and excluding the empty line (for DSNs).
std::string header_block(std::string_view message);

}  // namespace mukaika
