#include "queue/durable_io.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <cstdio>
#include <memory>
#include <vector>

namespace mukaika::queue_detail {

std::string describe_errno(int err) {
  std::string text = std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      text += " (disk full: free space on this file system)";
      break;
    case EROFS:
      text += " (read-only file system)";
      break;
    case EACCES:
    case EPERM:
      text += " (permission denied: check the owner and mode of the directory)";
      break;
    default:
      break;
  }
  return text;
}

void throw_errno(const std::string& operation, const std::filesystem::path& path, int err) {
  throw StorageError("cannot " + operation + " " + path.string() + ": " + describe_errno(err), err);
}

void write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

void fsync_fd(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) != 0) throw_errno("fsync", path, errno);
}

void fsync_dir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno("open directory", dir, errno);
  fsync_fd(fd.get(), dir);
}

void make_dir_durable(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0750) == 0) {
    fsync_dir(dir.parent_path().empty() ? "." : dir.parent_path());
    return;
  }
  if (errno != EEXIST) throw_errno("create directory", dir, errno);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw_errno("stat", dir, errno);
  if (!S_ISDIR(st.st_mode)) throw StorageError(dir.string() + " exists and is not a directory", ENOTDIR);
}

namespace {
// Creates (or, with O_TRUNC in `flags`, truncates; O_EXCL, refuses an
// existing) `file` and writes `bytes`; the descriptor, still open.
UniqueFd create_and_write(const std::filesystem::path& file, std::string_view bytes, int flags) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0640));
  if (!fd) throw_errno("create", file, errno);
  write_all(fd.get(), bytes, file);
  return fd;
}

// create_and_write(), then fsync when `sync`, and close.
void write_file(const std::filesystem::path& file, std::string_view bytes, int flags, bool sync) {
  UniqueFd fd = create_and_write(file, bytes, flags);
  if (sync) fsync_fd(fd.get(), file);
  // close(2) can report a delayed write error (NFS); treat it as one.
  if (::close(fd.release()) != 0) throw_errno("close", file, errno);
}
}  // namespace

void write_new_file(const std::filesystem::path& file, std::string_view bytes) {
  write_file(file, bytes, O_EXCL, true);
}

void write_file_unsynced(const std::filesystem::path& file, std::string_view bytes) {
  write_file(file, bytes, O_TRUNC, false);
}

void replace_file_durable(const std::filesystem::path& dir, const std::string& name, std::string_view bytes,
                          bool sync_dir) {
  // A leftover of a crash under the temporary name is truncated, not
  // unlinked first: one system call fewer on every replacement.
  const auto tmp = dir / (name + ".tmp");
  try {
    write_file(tmp, bytes, O_TRUNC, true);
  } catch (...) {
    ::unlink(tmp.c_str());  // never leave a half file behind
    throw;
  }
  const auto target = dir / name;
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("rename to", target, err);
  }
  if (sync_dir) fsync_dir(dir);
}

void SyncBatch::add_file(UniqueFd fd, std::filesystem::path path, bool data_only) {
  ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: errors show at the fsync
  auto owned = std::make_shared<UniqueFd>(std::move(fd));
  syncs_.push_back([owned, path = std::move(path), data_only] {
    if ((data_only ? ::fdatasync(owned->get()) : ::fsync(owned->get())) != 0)
      throw_errno(data_only ? "fdatasync" : "fsync", path, errno);
    if (::close(owned->release()) != 0) throw_errno("close", path, errno);
  });
}

void SyncBatch::add_dir(std::filesystem::path dir) {
  syncs_.push_back([dir = std::move(dir)] { fsync_dir(dir); });
}

void SyncBatch::add(std::function<void()> sync) { syncs_.push_back(std::move(sync)); }

void SyncBatch::commit() {
  auto syncs = std::move(syncs_);
  syncs_.clear();
  for (auto& sync : syncs) sync();
}

void write_new_file_batched(const std::filesystem::path& file, std::string_view bytes,
                            const std::filesystem::path& name_for_errors, SyncBatch& batch) {
  batch.add_file(create_and_write(file, bytes, O_EXCL), name_for_errors, false);
}

std::uint64_t append_batched(const std::filesystem::path& file, std::string_view bytes, SyncBatch& batch) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (!fd) throw_errno("open", file, errno);
  write_all(fd.get(), bytes, file);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat", file, errno);
  batch.add_file(std::move(fd), file, true);
  return static_cast<std::uint64_t>(st.st_size);
}

void replace_file_batched(const std::filesystem::path& dir, const std::string& name, std::string_view bytes,
                          SyncBatch& batch) {
  const auto tmp = dir / (name + ".tmp");
  const auto target = dir / name;
  UniqueFd fd;
  try {
    fd = create_and_write(tmp, bytes, O_TRUNC);
  } catch (...) {
    ::unlink(tmp.c_str());  // never leave a half file behind
    throw;
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw_errno("rename to", target, err);
  }
  // The descriptor still names the renamed file: its fsync syncs the bytes
  // now under `name`.
  batch.add_file(std::move(fd), target, false);
  batch.add_dir(dir);
}

std::string read_file(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open", file, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read", file, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    // The file system cannot refuse; check first (the spool is single-writer by its lock).
    std::error_code ec;
    if (std::filesystem::exists(to, ec)) throw_errno("rename to", to, EEXIST);
    if (::rename(from.c_str(), to.c_str()) == 0) return;
    err = errno;
  }
  throw_errno("rename " + from.string() + " to", to, err);
}

void remove_file(const std::filesystem::path& file) {
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) throw_errno("remove", file, errno);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed (OpenSSL)");
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

namespace {
std::string iso8601(std::chrono::system_clock::time_point t, bool local) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  struct tm tm {};
  if (local)
    localtime_r(&secs, &tm);
  else
    gmtime_r(&secs, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  char fracbuf[8];
  std::snprintf(fracbuf, sizeof fracbuf, ".%03ld", frac);
  out += fracbuf;
  if (!local) return out + "Z";
  // Real offsets are within a day; the bound also tells the compiler so.
  const int off = static_cast<int>(tm.tm_gmtoff % 86400);
  const int abs_off = off < 0 ? -off : off;
  char zone[16];
  std::snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', abs_off / 3600, (abs_off % 3600) / 60);
  return out + zone;
}
}  // namespace

std::string iso8601_local(std::chrono::system_clock::time_point t) { return iso8601(t, true); }
std::string iso8601_utc(std::chrono::system_clock::time_point t) { return iso8601(t, false); }

}  // namespace mukaika::queue_detail
