// The quarantine (原本保管): every original as received, kept byte-exact in
// the Internet zone for `keep_days` days, so that an operator can show what
// arrived and release or re-examine it.
//
// Promises:
// - keep() returns only when <dir>/<YYYY-MM-DD>/<id>.eml and <id>.json are
//   on disk (temporary name, fsync, rename, fsync directory). The day is the
//   local date of the message's receive time. Keeping the same id again
//   replaces the files (idempotent: a message sanitized again after a crash).
// - The queue manager calls keep() before the message leaves incoming/, so
//   an original is never only in flight.
// - expire(now) removes whole day directories older than keep_days days
//   (today and the keep_days days before it are kept) and nothing else.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mta_types.h"
#include "queue/durable_io.h"

namespace mukaika {

class QuarantineError : public StorageError {
 public:
  using StorageError::StorageError;
};

class Quarantine {
 public:
  // Creates `dir` if missing. keep_days >= 1, else std::invalid_argument.
  Quarantine(std::filesystem::path dir, int keep_days);

  // Stores the original and a JSON summary (envelope, verdict, hashes, the
  // caller's `summary`); returns the path of the .eml. `original_file`, when
  // given, is a durable file holding exactly `original` (the spool's copy):
  // the .eml becomes a hard link to it where the file system allows.
  // With `batch`, the syncs wait for its commit(), and keep() is durable
  // only then. `sha256_original`: the caller's hash of `original`, when it
  // has one (a large mail is not hashed twice). Throws QuarantineError.
  std::filesystem::path keep(const std::string& queue_id, std::string_view original, const Envelope& envelope,
                             const nlohmann::json& summary, const std::filesystem::path& original_file = {},
                             queue_detail::SyncBatch* batch = nullptr, std::string_view sha256_original = {});

  // Where a kept message is: its original and its JSON summary.
  struct Kept {
    std::filesystem::path eml, json;
    std::string day;  // "2026-12-07"
  };
  // Looks a queue id up in the day directories, newest first; nullopt when it
  // is not (or no longer) kept, or when `queue_id` is not a plain name (no
  // path may be smuggled in from a web page). Throws QuarantineError.
  std::optional<Kept> find(const std::string& queue_id) const;
  // The JSON summary keep() wrote for `queue_id`, or nullopt as find().
  std::optional<nlohmann::json> summary(const std::string& queue_id) const;

  // Removes day directories older than keep_days; returns how many messages
  // (.eml files) went with them and, when `days` is given, adds the names
  // of the removed days to it (for the audit record). Throws QuarantineError.
  std::size_t expire(std::chrono::system_clock::time_point now, std::vector<std::string>* days = nullptr);

  const std::filesystem::path& dir() const { return dir_; }
  int keep_days() const { return keep_days_; }
  // "2026-12-07": the local date of `t`, the name of its day directory.
  static std::string day_name(std::chrono::system_clock::time_point t);

 private:
  std::filesystem::path dir_;
  int keep_days_;
};

}  // namespace mukaika
