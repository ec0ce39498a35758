// The spool of the MTA hop: where a message lives from the SMTP `250` until
// the next hop acknowledged it (Postfix's queue discipline).
//
// Promises:
// - accept() returns only when the message and its metadata are on disk
//   (written under tmp/, the message directory renamed into incoming/,
//   then both files and both directories fsynced in one batch). If it
//   throws, nothing of the message is visible and the SMTP layer answers
//   451. A crash before it returns may leave a message whose original does
//   not match the SHA-256 in its metadata: never acknowledged, and held by
//   the queue manager rather than sanitized.
// - Each message is one directory <state>/<queue id>/ holding
//   original.eml, output.eml (once sanitized) and meta.json. A state change
//   is one rename(2) of that directory, so after a crash at any point the
//   message is in exactly one state (a move syncs the directory it enters;
//   should a crash leave the old name too, the start keeps the later
//   state). meta.json is a log of records, one compact JSON document per
//   line: an update appends a line and fdatasyncs it, the last complete
//   line is the message's state, and a line a crash cut short is cut off
//   at start.
// - accept() may run in the SMTP threads while the queue manager works on
//   other messages: it touches only tmp/ and a new name in incoming/,
//   which list() leaves out until accept() has returned.
// - The spool is held by one process: the constructor takes an exclusive
//   flock on <dir>/lock. Read-only listing (list_queue) needs no lock.
//
// Layout:  <dir>/lock
//          <dir>/tmp/<id>/         being accepted; removed at start (never acknowledged)
//          <dir>/incoming/<id>/    received, not yet sanitized
//          <dir>/sanitized/<id>/   sanitized output ready for delivery (possibly deferred)
//          <dir>/hold/<id>/        kept for the operator, never removed automatically
//          <dir>/done/<id>/        delivered/bounced/blocked: meta.json and an empty
//                                  output.eml (emptied rather than unlinked: no inode
//                                  freed per mail); the original is in the quarantine
//                                  and the story in the audit log
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mta_types.h"
#include "queue/durable_io.h"

namespace mukaika {

// The spool could not store or change a message. what() names the path and
// the errno in words ("disk full").
class SpoolError : public StorageError {
 public:
  using StorageError::StorageError;
};

enum class SpoolState { Incoming, Sanitized, Hold, Done };
std::string_view to_string(SpoolState state);
std::optional<SpoolState> spool_state_from_string(std::string_view name);

// Per-recipient status values.
namespace recipient_status {
inline constexpr const char* pending = "pending";      // not yet delivered, may be retried
inline constexpr const char* delivered = "delivered";  // the next hop answered 2xx
inline constexpr const char* failed = "failed";        // permanent failure, no DSN sent yet
inline constexpr const char* bounced = "bounced";      // permanent failure, DSN queued to the sender
inline constexpr const char* blocked = "blocked";      // the message was blocked by the sanitizer
}  // namespace recipient_status

struct RecipientState {
  std::string recipient;
  std::string status = recipient_status::pending;
  SmtpReply last_reply;
};

// meta.json. `kind`: "mail" (received over SMTP) or "bounce" (a DSN this
// gateway generated, to be delivered to the Internet side from <>).
struct MessageMeta {
  std::string queue_id;
  std::string kind = "mail";
  Envelope envelope;
  std::chrono::system_clock::time_point received{};
  int attempts = 0;  // sanitize attempts while incoming; delivery attempts after
  std::chrono::system_clock::time_point next_attempt{};
  std::vector<RecipientState> recipients;
  std::string last_error;
  std::string sha256_original;
  std::string sha256_output;
  std::string verdict;  // "" until sanitized; "clean" | "sanitized" | "blocked" | "generated"
  std::string message_id;
  std::string reason;
  std::string hold_reason;
  std::vector<std::string> bounce_ids;  // DSNs queued for this message
  std::chrono::system_clock::time_point finished{};  // when it reached done/hold
  // Audit records not yet written (the audit log failed): written before any
  // further work on this message.
  nlohmann::json audit_pending = nlohmann::json::array();
};

nlohmann::json to_json(const MessageMeta& meta);
MessageMeta meta_from_json(const nlohmann::json& j);  // throws nlohmann::json::exception on a malformed file

class Spool {
 public:
  // Creates the layout, takes the lock, checks the directory is writable
  // (writes, fsyncs and removes a probe), removes what a crash left: tmp/*,
  // *.tmp in message directories, message files in done/. Throws SpoolError.
  explicit Spool(std::filesystem::path dir);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // Stores a received message in incoming/, durably; returns its queue id.
  // Sets envelope.received to now when unset. Throws SpoolError.
  std::string accept(const Envelope& envelope, std::string_view message);
  // Stores a message this gateway generated (a DSN) directly in sanitized/
  // with kind "bounce", durably; returns its queue id. Throws SpoolError.
  std::string accept_generated(const Envelope& envelope, std::string_view message, std::string_view kind);

  // Queue ids, oldest first; not those accept() has not yet returned.
  std::vector<std::string> list(SpoolState state) const;
  std::optional<SpoolState> find(const std::string& queue_id) const;

  MessageMeta load_meta(SpoolState state, const std::string& queue_id) const;  // throws SpoolError
  void save_meta(SpoolState state, const MessageMeta& meta);                   // durable; throws SpoolError
  // Durable once `batch` commits (queue_detail::SyncBatch).
  void save_meta(SpoolState state, const MessageMeta& meta, queue_detail::SyncBatch& batch);
  std::string load_original(SpoolState state, const std::string& queue_id) const;
  // Where load_original() reads from (synced at accept, never changed).
  std::filesystem::path original_file(SpoolState state, const std::string& queue_id) const;
  std::string load_output(SpoolState state, const std::string& queue_id) const;
  // Not synced: a crash may lose or cut it. The caller records its SHA-256
  // in the metadata and checks it before delivery (a mismatch is sanitized
  // again from the original, which is durable).
  void save_output(SpoolState state, const std::string& queue_id, std::string_view output);

  // Moves a message to another state by one rename, durably. Moving to Done
  // is not synced (save the final metadata first: a move a crash undoes is
  // then only repeated) and removes the message files (what a crash leaves
  // of them is removed at start). With `sync` false the move into any
  // state is not synced: for a caller that finds and repeats a move a
  // crash undid (incoming/ to sanitized/, QueueManager::process_incoming).
  void move(const std::string& queue_id, SpoolState from, SpoolState to, bool sync = true);

  // Removes done records that finished before `before`; returns how many.
  std::size_t purge_done(std::chrono::system_clock::time_point before);

  std::filesystem::path message_dir(SpoolState state, const std::string& queue_id) const;

  // A new queue id: 16 hex digits of microseconds since the epoch, then 8 of
  // randomness. Sorts by time, unique, safe as a file name.
  static std::string new_queue_id();

 private:
  std::string store(const Envelope& envelope, std::string_view message, bool generated, std::string_view kind);
  void recover_layout();
  // Cuts off a meta.json record a crash left incomplete, or rewrites an older
  // mukaika's single document as one line; true when the directory changed.
  static bool repair_meta_log(const std::filesystem::path& file);
  std::filesystem::path state_dir(SpoolState state) const;

  std::filesystem::path dir_;
  queue_detail::UniqueFd lock_;
  // Renamed into their state but not yet synced (store): list() leaves
  // them out, so that nothing works on a message whose 250 may yet be a 451.
  void accepting(const std::string& queue_id, bool in_progress);
  mutable std::mutex accepting_mutex_;
  std::set<std::string> accepting_;
};

// One line of `mukaika queue`.
struct QueueEntry {
  std::string queue_id;
  SpoolState state = SpoolState::Incoming;
  std::string kind;
  std::chrono::seconds age{0};
  std::string sender;  // "" = null sender
  std::vector<std::string> recipients;
  int attempts = 0;
  std::chrono::system_clock::time_point next_attempt{};
  std::string last_error;
};

// Lists the spool at `spool_dir` without locking or changing it (safe while
// `mukaika serve` runs; a message moving meanwhile may be missed or listed
// twice). Done records are listed only when `include_done`.
std::vector<QueueEntry> list_queue(const std::filesystem::path& spool_dir, std::chrono::system_clock::time_point now,
                                   bool include_done = false);
// A text table of list_queue() for people.
std::string format_queue(const std::vector<QueueEntry>& entries, std::chrono::system_clock::time_point now);

}  // namespace mukaika
