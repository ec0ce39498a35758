// DropBox: the store of the file drop box and the REST API. Files come in
// from the Internet zone, are sanitized by the workers, and are picked up in
// the LGWAN zone.
//
// Promises:
// - Lose nothing, serve nothing half-stored. An upload is written under
//   tmp/ while it arrives; commit() fsyncs the file and its metadata and
//   renames the item's directory into items/ (then fsyncs both
//   directories) before it returns, and only then does the caller answer
//   202. An upload that was interrupted is never committed; tmp/ is emptied
//   at start.
// - Fail closed: only the sanitizer's output is ever stored as `output`, and
//   content() gives bytes only for status done. When the sanitizer throws
//   (could not decide), the item stays queued and is retried; after
//   max_attempts it is `failed`, never passed.
// - Each state change replaces meta.json atomically (tmp, fsync, rename);
//   an item found in `processing` at start is sanitized again.
// - Thread-safe: uploads arrive on the HTTP threads, the processor runs on
//   its own thread, pages read from any.
// - Every upload and every result is written to the audit log.
//
// Layout:  <dir>/lock                 flock: one process owns the store
//          <dir>/tmp/<id>/            an upload being received
//          <dir>/items/<id>/meta.json the item: names, people, status, report
//          <dir>/items/<id>/original  the bytes as uploaded (原本, kept keep_days)
//          <dir>/items/<id>/output    the sanitized bytes (status done only)
//          <dir>/items/<id>/thumbnail.png  first page of a sanitized PDF (optional)
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "queue/audit_log.h"
#include "unique_fd.h"

namespace mukaika::http {

enum class ItemStatus { Queued, Processing, Done, Blocked, Failed };
std::string_view to_string(ItemStatus s);

// What is known of one uploaded file.
struct DropItem {
  std::string id;
  std::string name;          // safe display name of the file
  std::uint64_t size = 0;    // bytes uploaded
  std::string sha256;        // of the original
  std::string uploader;      // account name, or "api:<client>"
  std::string recipient;     // staff account or department ("" = none chosen)
  std::string note;
  std::string client_address;
  std::chrono::system_clock::time_point received{};
  ItemStatus status = ItemStatus::Queued;
  int attempts = 0;
  std::chrono::system_clock::time_point next_attempt{};  // queued after a failure: not before this
  std::string verdict;       // clean | sanitized | blocked (once processed)
  std::string output_name;   // file name of the sanitized result
  std::string output_type;   // its media type
  std::uint64_t output_size = 0;
  std::string sha256_output;
  std::string reason, reason_en;  // blocked or failed: why, for people
  nlohmann::json report;     // the item report (as the CLI's)
  std::chrono::system_clock::time_point finished{};
  double processing_seconds = 0;
  bool picked_up = false;    // the recipient marked it done
  bool thumbnail = false;    // items/<id>/thumbnail.png exists (first page of a PDF)
  // PPAP (drop_box_ppap.cpp): blocked only for want of a password. `held` is
  // the reason code (archive.encrypted, pdf.encrypted); the count of wrong
  // passwords survives restarts. The password itself is never stored.
  std::string held;
  int password_attempts = 0;
  bool password_locked = false;
};

// The code of a blocked item that a password can open ("archive.encrypted",
// "pdf.encrypted"), from its report's actions; "" when there is none.
std::string held_code(const nlohmann::json& report);

// The sanitizer as the drop box sees it: bytes and a name in, a result out.
// Throws when it could not decide (the item is retried).
struct SanitizedFile {
  std::string verdict;  // clean | sanitized | blocked
  std::string bytes;    // the output (not blocked)
  std::string name, type;
  std::string sha256_output;
  std::string reason, reason_en;
  nlohmann::json report;
};
using FileSanitizer = std::function<SanitizedFile(const std::string& id, const std::string& name, std::string bytes)>;

class DropBoxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DropBox {
 public:
  struct Options {
    int keep_days = 14;
    int max_attempts = 3;
    std::chrono::seconds retry_delay{30};
    std::function<void(const std::string&)> log;  // operator log lines
    // A PNG of the first page of a sanitized PDF (made in a sandboxed
    // worker); nullopt or an exception: no thumbnail.
    std::function<std::optional<std::string>(const std::string& pdf)> thumbnail;
    // Originals larger than this (limits.max_item_bytes; 0: no limit) are
    // blocked without being read into memory or sent to the sanitizer.
    std::uint64_t max_file_bytes = 0;
    // PPAP: sanitizes an original again with passwords (in a worker).
    // Throws when it could not decide. None: try_password() answers Error.
    std::function<SanitizedFile(const std::string& name, std::string bytes, std::vector<std::string> passphrases)>
        unlock;
  };

  // Creates the layout if missing and takes the lock. Throws DropBoxError.
  DropBox(std::filesystem::path dir, AuditLog& audit, FileSanitizer sanitize, Options options);
  ~DropBox();  // stop()
  DropBox(const DropBox&) = delete;
  DropBox& operator=(const DropBox&) = delete;

  // One file arriving. Write the bytes in pieces, then commit() (durable,
  // returns the item) or let it go (destroyed uncommitted: removed).
  class Upload {
   public:
    ~Upload();
    void write(std::string_view bytes);  // throws DropBoxError (disk full ...)
    std::uint64_t size() const { return size_; }
    const std::string& id() const { return id_; }

   private:
    friend class DropBox;
    Upload(DropBox& box, std::string id, std::filesystem::path dir, UniqueFd fd);
    DropBox& box_;
    std::string id_;
    std::filesystem::path dir_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
    bool committed_ = false;
    struct Sha;
    std::unique_ptr<Sha> sha_;
  };
  std::unique_ptr<Upload> begin_upload();
  // `item` carries name, uploader, recipient, note, client; the rest is set
  // here. Durable when it returns; the processor is woken.
  DropItem commit(Upload& upload, DropItem item);

  std::optional<DropItem> find(const std::string& id) const;
  // Newest first; `filter` picks (for example the items of one recipient).
  std::vector<DropItem> list(const std::function<bool(const DropItem&)>& filter, std::size_t max = 500) const;
  // The sanitized bytes' path, for status done only.
  std::optional<std::filesystem::path> output_path(const std::string& id) const;
  // The original as uploaded (原本), while the item is kept: for an approved release only.
  std::optional<std::filesystem::path> original_path(const std::string& id) const;
  // The first page's PNG of a done PDF item, when one was made.
  std::optional<std::filesystem::path> thumbnail_path(const std::string& id) const;
  void mark_picked_up(const std::string& id, const std::string& by);

  // PPAP: a recipient's password for a held item. The original is sanitized
  // again with it (Options::unlock, in a worker); right: the item becomes
  // done with the sanitized contents; wrong: counted in meta.json, and after
  // max_attempts the item is locked. One attempt at a time per item; every
  // attempt is audited (ppap.attempt, ppap.locked, ppap.delivered), never
  // the password. The passphrases are wiped before this returns.
  struct PasswordOutcome {
    enum class Result { Opened, Wrong, Locked, NotHeld, Busy, Unsupported, Blocked, Error };
    Result result = Result::Error;
    int attempts = 0;      // wrong passwords so far
    int max_attempts = 0;
    std::string detail;    // Error: what went wrong
  };
  PasswordOutcome try_password(const std::string& id, std::vector<std::string> passphrases, const std::string& by,
                               const std::string& client_address, int max_attempts);

  // Counters for /metrics.
  struct Stats {
    std::map<std::string, std::uint64_t> by_verdict;  // since start
    std::size_t queued = 0, processing = 0;
    std::vector<double> seconds;  // processing times since start (bounded, newest)
  };
  Stats stats() const;

  // The processor thread: sanitizes queued items one after another.
  void start();
  void stop();
  // One pass in the caller's thread (tests).
  void process_pending();
  // Removes items older than keep_days (original and output). Returns how many.
  std::size_t expire(std::chrono::system_clock::time_point now);

  static bool valid_id(std::string_view id);

  // One audit record about the drop box (sign-ins, downloads); a failure to
  // write it is logged for the operator.
  void audit(const nlohmann::json& record);

 private:
  std::filesystem::path item_dir(const std::string& id) const { return dir_ / "items" / id; }
  void save(const DropItem& item);
  void store_output(DropItem& item, const SanitizedFile& result);
  std::string read_original(const std::string& id) const;
  void process(DropItem item);
  void thread_main();

  std::filesystem::path dir_;
  AuditLog& audit_;
  FileSanitizer sanitize_;
  Options options_;
  UniqueFd lock_;
  mutable std::mutex mutex_;
  std::map<std::string, DropItem> items_;  // the index; meta.json is the truth on disk
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::map<std::string, std::uint64_t> by_verdict_;
  std::vector<double> seconds_;
  std::set<std::string> unlocking_;  // items with a password attempt in progress
};

nlohmann::json to_json(const DropItem& item);
DropItem item_from_json(const nlohmann::json& j);

}  // namespace mukaika::http
