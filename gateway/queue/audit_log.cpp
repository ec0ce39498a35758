#include "queue/audit_log.h"

#include <fcntl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace mukaika {

using namespace queue_detail;

namespace {
queue_detail::UniqueFd open_log(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!fd) throw AuditError("audit log: cannot open " + path.string() + ": " + describe_errno(errno), errno);
  return fd;
}
}  // namespace

AuditLog::AuditLog(std::filesystem::path path) : path_(std::move(path)), fd_(open_log(path_)) {}

nlohmann::json AuditLog::record(const MessageAudit& a) {
  return {
      {"type", "message"},
      {"queue_id", a.queue_id},
      {"time", iso8601_local(a.time)},
      {"zone", "internet"},
      {"client_address", a.envelope.client_address},
      {"helo", a.envelope.helo},
      {"mail_from", a.envelope.mail_from},
      {"recipients", a.envelope.recipients},
      {"message_id", a.message_id},
      {"sha256_original", a.sha256_original},
      {"sha256_output", a.sha256_output},
      {"verdict", a.verdict},
      {"actions", a.actions},
      {"reason", a.reason},
      {"reason_en", a.reason_en},
  };
}

nlohmann::json AuditLog::record(const DeliveryAudit& a) {
  return {
      {"type", "delivery"},
      {"queue_id", a.queue_id},
      {"time", iso8601_local(a.time)},
      {"kind", a.kind},
      {"next_hop", a.next_hop},
      {"mail_from", a.mail_from},
      {"recipient", a.recipient},
      {"reply", {{"code", a.reply.code}, {"enhanced", a.reply.enhanced}, {"text", a.reply.text}}},
      {"outcome", a.outcome},
  };
}

nlohmann::json AuditLog::event(std::string_view queue_id, std::chrono::system_clock::time_point time,
                               std::string_view event, std::string_view detail) {
  return {{"type", std::string(event)},
          {"queue_id", std::string(queue_id)},
          {"time", iso8601_local(time)},
          {"detail", std::string(detail)}};
}

std::uint64_t AuditLog::write_line(const nlohmann::json& rec, bool start_writeback) {
  // Invalid UTF-8 from a peer must not make the record unwritable.
  std::string line = rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  std::lock_guard lock(mutex_);
  // One write: O_APPEND keeps the line whole against other appenders.
  ssize_t n;
  do {
    n = ::write(fd_.get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw AuditError("audit log: cannot write " + path_.string() + ": " + describe_errno(errno), errno);
  if (static_cast<size_t>(n) != line.size())
    throw AuditError("audit log: short write to " + path_.string() + " (disk full?)", ENOSPC);
  // For a batch: written out now, the line joins the journal commit that
  // the batch's first sync makes (a hint; errors show at the fdatasync).
  if (start_writeback) ::sync_file_range(fd_.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  return ++written_;
}

// Group commit: one fdatasync covers every line written before it began.
// Returns once a sync that began after line `mine` was written succeeded.
void AuditLog::sync_through(std::uint64_t mine) {
  std::unique_lock lock(mutex_);
  while (synced_ < mine) {
    if (syncing_) {
      synced_cv_.wait(lock);
      continue;
    }
    syncing_ = true;
    const std::uint64_t upto = written_;
    const int fd = fd_.get();  // reopen() waits while syncing_
    lock.unlock();
    const int rc = ::fdatasync(fd);
    const int err = errno;
    lock.lock();
    syncing_ = false;
    synced_cv_.notify_all();
    if (rc != 0) throw AuditError("audit log: cannot sync " + path_.string() + ": " + describe_errno(err), err);
    synced_ = std::max(synced_, upto);
  }
}

void AuditLog::append(const nlohmann::json& rec) { sync_through(write_line(rec, false)); }

void AuditLog::append(const nlohmann::json& rec, queue_detail::SyncBatch& batch) {
  const std::uint64_t mine = write_line(rec, true);
  batch.add([this, mine] { sync_through(mine); });
}

void AuditLog::reopen() {
  auto fresh = open_log(path_);
  std::unique_lock lock(mutex_);
  synced_cv_.wait(lock, [this] { return !syncing_; });
  // Lines written to the old file and not yet synced are synced before it
  // is closed (their writers wait for a sync that covers them).
  if (synced_ < written_ && ::fdatasync(fd_.get()) == 0) synced_ = written_;
  fd_ = std::move(fresh);
}

std::string header_block(std::string_view message) {
  for (size_t pos = 0; pos < message.size();) {
    size_t eol = message.find('\n', pos);
    if (eol == std::string_view::npos) return std::string(message);
    std::string_view line = message.substr(pos, eol - pos);
    if (line.empty() || line == "\r") return std::string(message.substr(0, pos));
    pos = eol + 1;
  }
  return std::string(message);
}

std::string parse_message_id(std::string_view message) {
  const std::string headers = header_block(message);
  static constexpr std::string_view name = "message-id:";
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t eol = headers.find('\n', pos);
    if (eol == std::string::npos) eol = headers.size();
    std::string_view line(headers.data() + pos, eol - pos);
    bool match = line.size() >= name.size();
    for (size_t i = 0; match && i < name.size(); ++i)
      match = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
    if (match) {
      std::string value(line.substr(name.size()));
      // Unfold continuation lines.
      size_t next = eol + 1;
      while (next < headers.size() && (headers[next] == ' ' || headers[next] == '\t')) {
        size_t e2 = headers.find('\n', next);
        if (e2 == std::string::npos) e2 = headers.size();
        value += headers.substr(next, e2 - next);
        next = e2 + 1;
      }
      std::string out;
      for (char c : value)
        if (!std::isspace(static_cast<unsigned char>(c))) out += c;
      return out.size() > 998 ? out.substr(0, 998) : out;
    }
    pos = eol + 1;
  }
  return "";
}

}  // namespace mukaika
