// Durable file primitives of the queue (spool, quarantine, audit log):
// Postfix's discipline. A file becomes visible under its final name only
// after its bytes and the directory entry are on disk (write to a temporary
// name, fsync the file, rename, fsync the directory), so a crash leaves
// either the old state or the new one, never a half file. Internal to
// gateway/queue.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unique_fd.h"

namespace mukaika {

// A storage operation failed: names the path, the operation and the errno
// in words an operator can act on ("disk full").
class StorageError : public std::runtime_error {
 public:
  StorageError(const std::string& what, int error_code) : std::runtime_error(what), error_code_(error_code) {}
  int error_code() const { return error_code_; }  // errno, 0 when none

 private:
  int error_code_;
};

namespace queue_detail {

using UniqueFd = ::mukaika::UniqueFd;

// "cannot write /x/y: No space left on device (disk full: ...)"
std::string describe_errno(int err);
[[noreturn]] void throw_errno(const std::string& operation, const std::filesystem::path& path, int err);

void write_all(int fd, std::string_view bytes, const std::filesystem::path& path_for_errors);
void fsync_fd(int fd, const std::filesystem::path& path_for_errors);
void fsync_dir(const std::filesystem::path& dir);
// Creates the directory if missing and makes its entry durable in the parent.
void make_dir_durable(const std::filesystem::path& dir);
// Creates `file` with `bytes` and fsyncs it; exclusive (fails if it exists).
void write_new_file(const std::filesystem::path& file, std::string_view bytes);
// Writes `file` whole (created, or truncated when it exists) and does not
// fsync it: only for a file whose loss in a crash is found and repaired
// later (the spool's output.eml, checked against its SHA-256 before delivery).
void write_file_unsynced(const std::filesystem::path& file, std::string_view bytes);
// Replaces dir/name atomically and durably: dir/name.tmp, fsync, rename, fsync dir.
// With sync_dir false the directory is not fsynced: the new file is
// complete under its name, durable once the caller fsyncs `dir` (for
// example with the next replace_file_durable in the same directory).
void replace_file_durable(const std::filesystem::path& dir, const std::string& name, std::string_view bytes,
                          bool sync_dir = true);
std::string read_file(const std::filesystem::path& file);

// The syncs of several writes, waited for together. Each write starts its
// writeback when it is made (add_file); commit() then fsyncs everything in
// the order added. On a journalling file system the first sync commits the
// changes of all of them in one transaction and the rest find nothing left
// to do: one journal commit where one sync after each write made several.
// Only for writes whose order among themselves does not matter if a crash
// comes before commit() returns; nothing counts as durable before it does.
class SyncBatch {
 public:
  SyncBatch() = default;
  SyncBatch(const SyncBatch&) = delete;
  SyncBatch& operator=(const SyncBatch&) = delete;

  // `fd` was just written: its writeback starts now; commit() fsyncs it
  // (fdatasync when `data_only`) and closes it.
  void add_file(UniqueFd fd, std::filesystem::path path, bool data_only);
  void add_dir(std::filesystem::path dir);  // commit() fsyncs it
  void add(std::function<void()> sync);     // a sync of its own (the audit log's group commit)
  // Runs every sync; the first that fails throws, as it would have alone.
  void commit();

 private:
  std::vector<std::function<void()>> syncs_;
};

// Creates `file` (exclusive) with `bytes` and leaves its fsync to `batch`.
// `name_for_errors`: the name it will have when the batch commits.
void write_new_file_batched(const std::filesystem::path& file, std::string_view bytes,
                            const std::filesystem::path& name_for_errors, SyncBatch& batch);
// Appends `bytes` to an existing file and leaves its fdatasync to `batch`;
// returns the file's size afterwards.
std::uint64_t append_batched(const std::filesystem::path& file, std::string_view bytes, SyncBatch& batch);
// replace_file_durable() with its syncs (the file's, the directory's) left
// to `batch`. Until the batch commits, a crash may leave the new name with
// incomplete bytes: only for a file that is written again after such a
// crash (the quarantine's summary of a mail still in incoming/).
void replace_file_batched(const std::filesystem::path& dir, const std::string& name, std::string_view bytes,
                          SyncBatch& batch);
// rename(2) that refuses to replace an existing target (renameat2 NOREPLACE
// where the file system supports it).
void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to);
void remove_file(const std::filesystem::path& file);  // missing is fine

std::string sha256_hex(std::string_view bytes);
// ISO 8601 with the local zone: 2026-12-07T23:04:11.123+09:00
std::string iso8601_local(std::chrono::system_clock::time_point t);
std::string iso8601_utc(std::chrono::system_clock::time_point t);  // ...Z, stored in metadata

}  // namespace queue_detail
}  // namespace mukaika
