#include "queue/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <cerrno>
#include <cstdio>
#include <sstream>

namespace mukaika {

using namespace queue_detail;
namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

namespace {

constexpr SpoolState kStates[] = {SpoolState::Incoming, SpoolState::Sanitized, SpoolState::Hold, SpoolState::Done};
const char* const kOriginal = "original.eml";
const char* const kOutput = "output.eml";
const char* const kMeta = "meta.json";

int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_ms(int64_t ms) { return Clock::time_point(std::chrono::milliseconds(ms)); }

// Re-throws storage errors as SpoolError so that callers catch one type.
template <typename F>
auto as_spool_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SpoolError&) {
    throw;
  } catch (const StorageError& e) {
    throw SpoolError(std::string("spool: ") + e.what(), e.error_code());
  } catch (const fs::filesystem_error& e) {
    throw SpoolError(std::string("spool: ") + e.what() + ": " + describe_errno(e.code().value()), e.code().value());
  }
}

bool valid_queue_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::vector<std::string> list_ids(const fs::path& dir) {
  std::vector<std::string> ids;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    if (valid_queue_id(name)) ids.push_back(std::move(name));
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw SpoolError("spool: cannot list " + dir.string() + ": " + describe_errno(ec.value()), ec.value());
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

std::string_view to_string(SpoolState state) {
  switch (state) {
    case SpoolState::Incoming: return "incoming";
    case SpoolState::Sanitized: return "sanitized";
    case SpoolState::Hold: return "hold";
    case SpoolState::Done: return "done";
  }
  return "?";
}

std::optional<SpoolState> spool_state_from_string(std::string_view name) {
  for (auto s : kStates)
    if (to_string(s) == name) return s;
  return std::nullopt;
}

nlohmann::json to_json(const MessageMeta& m) {
  nlohmann::json rcpts = nlohmann::json::array();
  for (const auto& r : m.recipients)
    rcpts.push_back({{"recipient", r.recipient},
                     {"status", r.status},
                     {"reply", {{"code", r.last_reply.code}, {"enhanced", r.last_reply.enhanced}, {"text", r.last_reply.text}}}});
  return {
      {"queue_id", m.queue_id},
      {"kind", m.kind},
      {"envelope",
       {{"client_address", m.envelope.client_address},
        {"helo", m.envelope.helo},
        {"mail_from", m.envelope.mail_from},
        {"recipients", m.envelope.recipients},
        {"smtputf8", m.envelope.smtputf8},
        {"eight_bit", m.envelope.eight_bit},
        {"received_ms", to_ms(m.envelope.received)}}},
      {"received", iso8601_utc(m.received)},
      {"received_ms", to_ms(m.received)},
      {"attempts", m.attempts},
      {"next_attempt_ms", to_ms(m.next_attempt)},
      {"recipients", rcpts},
      {"last_error", m.last_error},
      {"sha256_original", m.sha256_original},
      {"sha256_output", m.sha256_output},
      {"verdict", m.verdict},
      {"message_id", m.message_id},
      {"reason", m.reason},
      {"hold_reason", m.hold_reason},
      {"bounce_ids", m.bounce_ids},
      {"finished_ms", to_ms(m.finished)},
      {"audit_pending", m.audit_pending},
  };
}

MessageMeta meta_from_json(const nlohmann::json& j) {
  MessageMeta m;
  m.queue_id = j.at("queue_id").get<std::string>();
  m.kind = j.value("kind", "mail");
  const auto& e = j.at("envelope");
  m.envelope.client_address = e.value("client_address", "");
  m.envelope.helo = e.value("helo", "");
  m.envelope.mail_from = e.at("mail_from").get<std::string>();
  m.envelope.recipients = e.at("recipients").get<std::vector<std::string>>();
  m.envelope.smtputf8 = e.value("smtputf8", false);
  m.envelope.eight_bit = e.value("eight_bit", false);
  m.envelope.received = from_ms(e.value("received_ms", int64_t{0}));
  m.received = from_ms(j.at("received_ms").get<int64_t>());
  m.attempts = j.value("attempts", 0);
  m.next_attempt = from_ms(j.value("next_attempt_ms", int64_t{0}));
  for (const auto& r : j.at("recipients")) {
    RecipientState rs;
    rs.recipient = r.at("recipient").get<std::string>();
    rs.status = r.at("status").get<std::string>();
    if (r.contains("reply")) {
      rs.last_reply.code = r["reply"].value("code", 0);
      rs.last_reply.enhanced = r["reply"].value("enhanced", "");
      rs.last_reply.text = r["reply"].value("text", "");
    }
    m.recipients.push_back(std::move(rs));
  }
  m.last_error = j.value("last_error", "");
  m.sha256_original = j.value("sha256_original", "");
  m.sha256_output = j.value("sha256_output", "");
  m.verdict = j.value("verdict", "");
  m.message_id = j.value("message_id", "");
  m.reason = j.value("reason", "");
  m.hold_reason = j.value("hold_reason", "");
  m.bounce_ids = j.value("bounce_ids", std::vector<std::string>{});
  m.finished = from_ms(j.value("finished_ms", int64_t{0}));
  m.audit_pending = j.value("audit_pending", nlohmann::json::array());
  return m;
}

namespace {

// meta.json is a log: one compact JSON document per line, appended and
// fdatasynced at each update; the last complete line is the message's
// state. An update is then one write and one fdatasync, with no new inode,
// no rename and no directory fsync. A line a crash cut short is ignored
// (the step that wrote it is done again) and cut off at start. A file
// written by an older mukaika (one pretty-printed document) reads as one
// record.
constexpr std::uint64_t kMetaCompactBytes = 64 * 1024;  // then rewritten as one line

std::string meta_line(const MessageMeta& meta) { return to_json(meta).dump() + "\n"; }

// The last record of a meta.json text; throws nlohmann::json::exception when
// there is none.
nlohmann::json last_meta_record(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t nl = text.rfind('\n', end - 1);
    std::size_t begin = nl == std::string_view::npos ? 0 : nl + 1;
    std::string_view line = text.substr(begin, end - begin);
    if (line.size() > 1 && line.front() == '{' && line.back() == '}') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) return j;
    }
    if (nl == std::string_view::npos) break;
    end = nl;
  }
  return nlohmann::json::parse(text);  // one pretty-printed document, or the parser's error
}

MessageMeta parse_meta(std::string_view text) { return meta_from_json(last_meta_record(text)); }

}  // namespace

Spool::Spool(fs::path dir) : dir_(std::move(dir)) {
  as_spool_error([&] {
    make_dir_durable(dir_);
    const auto lock_path = dir_ / "lock";
    lock_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (!lock_) throw_errno("open", lock_path, errno);
    if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK)
        throw SpoolError("spool: " + dir_.string() + " is in use by another mukaika process (lock " +
                             lock_path.string() + ")",
                         errno);
      throw_errno("lock", lock_path, errno);
    }
    make_dir_durable(dir_ / "tmp");
    for (auto s : kStates) make_dir_durable(state_dir(s));
    // Fail at start, not at the first message: the directory must take a synced file.
    const auto probe = dir_ / "tmp" / "probe";
    remove_file(probe);
    write_new_file(probe, "probe\n");
    remove_file(probe);
    recover_layout();
  });
}

Spool::~Spool() = default;

fs::path Spool::state_dir(SpoolState state) const { return dir_ / std::string(to_string(state)); }

fs::path Spool::message_dir(SpoolState state, const std::string& queue_id) const {
  return state_dir(state) / queue_id;
}

void Spool::recover_layout() {
  // tmp/: messages whose accept() never returned: the client got no 250.
  std::error_code ec;
  for (fs::directory_iterator it(dir_ / "tmp", ec), end; !ec && it != end; it.increment(ec)) fs::remove_all(it->path());
  if (ec) throw_errno("list", dir_ / "tmp", ec.value());
  fsync_dir(dir_ / "tmp");
  // A move fsyncs only the directory it moves into. Where a crash left the
  // old name too (file systems that do not journal a rename as one step),
  // the later state is the true one: kStates is in the order of the moves.
  std::map<std::string, SpoolState> seen;
  for (auto s : kStates)
    for (const auto& id : list_ids(state_dir(s))) {
      auto [it, fresh] = seen.emplace(id, s);
      if (fresh) continue;
      fs::remove_all(message_dir(it->second, id));
      fsync_dir(state_dir(it->second));
      it->second = s;
    }
  for (const auto& [id, s] : seen) {
    const auto mdir = message_dir(s, id);
    bool changed = false;
    for (const auto& entry : fs::directory_iterator(mdir)) {
      const auto name = entry.path().filename().string();
      const bool temp = name.size() > 4 && name.ends_with(".tmp");
      // In done/ the output is kept emptied (move): only a crash leaves bytes.
      const bool data_in_done =
          s == SpoolState::Done && (name == kOriginal || (name == kOutput && entry.file_size() > 0));
      if (temp || data_in_done) {
        remove_file(entry.path());
        changed = true;
      }
    }
    changed |= repair_meta_log(mdir / kMeta);
    if (changed) fsync_dir(mdir);
  }
}

bool Spool::repair_meta_log(const fs::path& file) {
  // Every message's log is looked at on each start: its last byte alone,
  // unless that byte shows a line left open.
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == EISDIR) return false;  // no metadata: load_meta names the message
    throw_errno("open", file, errno);
  }
  struct stat st {};
  char last = '\n';
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat", file, errno);
  if (st.st_size == 0 || ::pread(fd.get(), &last, 1, st.st_size - 1) != 1 || last == '\n') return false;
  const std::string text = read_file(file);
  // One pretty-printed document from an older mukaika: rewritten as a
  // line, so that records can be appended to it.
  auto whole = nlohmann::json::parse(text, nullptr, false);
  if (whole.is_object()) {
    replace_file_durable(file.parent_path(), kMeta, whole.dump() + "\n", false);
    return true;
  }
  // The tail of an append a crash cut short: cut it off. The record before
  // it stands, and the step that was writing is done again.
  const std::size_t nl = text.rfind('\n');
  if (nl == std::string::npos) return false;  // nothing to keep; load_meta names the file
  if (::ftruncate(fd.get(), static_cast<off_t>(nl + 1)) != 0) throw_errno("truncate", file, errno);
  fsync_fd(fd.get(), file);
  return false;
}

std::string Spool::new_queue_id() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
  uint32_t rnd = 0;
  if (::getrandom(&rnd, sizeof rnd, 0) != sizeof rnd) throw SpoolError("spool: getrandom failed", errno);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%08x", static_cast<unsigned long long>(us), static_cast<unsigned>(rnd));
  return buf;
}

std::string Spool::accept(const Envelope& envelope, std::string_view message) {
  return store(envelope, message, false, "mail");
}

std::string Spool::accept_generated(const Envelope& envelope, std::string_view message, std::string_view kind) {
  return store(envelope, message, true, kind);
}

std::string Spool::store(const Envelope& envelope, std::string_view message, bool generated, std::string_view kind) {
  return as_spool_error([&] {
    std::string id;
    fs::path work;
    for (int tries = 0;; ++tries) {
      id = new_queue_id();
      work = dir_ / "tmp" / id;
      if (::mkdir(work.c_str(), 0750) == 0) break;
      if (errno != EEXIST || tries > 10) throw_errno("create directory", work, errno);
    }
    try {
      const auto now = Clock::now();
      MessageMeta meta;
      meta.queue_id = id;
      meta.kind = std::string(kind);
      meta.envelope = envelope;
      if (meta.envelope.received == Clock::time_point{}) meta.envelope.received = now;
      meta.received = meta.envelope.received;
      meta.next_attempt = meta.received;
      for (const auto& r : envelope.recipients) meta.recipients.push_back({r, recipient_status::pending, {}});
      if (generated) {
        meta.verdict = "generated";
        meta.sha256_output = sha256_hex(message);
      } else {
        meta.sha256_original = sha256_hex(message);
      }
      // Write, rename, then every sync, and only then the 250: the files,
      // the message directory and the state directory are synced in one
      // batch, so one journal commit makes all of it durable (two, when
      // the rename waited for the files' fsync). Until the batch returns
      // nothing is promised: a crash before may leave the new name with
      // bytes missing where the file system does not write data before the
      // rename. The SHA-256 in the metadata catches that before any work
      // (QueueManager: such a message goes to hold/, the sender, who got
      // no 250, sends it again). tmp/ is not synced: one rename cannot
      // leave the directory in both places, and whatever a crash leaves
      // under tmp/ is removed at start.
      const auto target = message_dir(generated ? SpoolState::Sanitized : SpoolState::Incoming, id);
      const auto file = generated ? kOutput : kOriginal;
      SyncBatch batch;
      write_new_file_batched(work / file, message, target / file, batch);
      write_new_file_batched(work / kMeta, meta_line(meta), target / kMeta, batch);
      accepting(id, true);
      rename_no_replace(work, target);
      work = target;  // what to remove if a sync fails
      batch.add_dir(target);
      batch.add_dir(target.parent_path());
      batch.commit();
    } catch (...) {
      std::error_code ec;
      fs::remove_all(work, ec);  // nothing half-written stays, not even under tmp/
      accepting(id, false);
      throw;
    }
    accepting(id, false);
    return id;
  });
}

void Spool::accepting(const std::string& queue_id, bool in_progress) {
  std::lock_guard lock(accepting_mutex_);
  if (in_progress)
    accepting_.insert(queue_id);
  else
    accepting_.erase(queue_id);
}

std::vector<std::string> Spool::list(SpoolState state) const {
  auto ids = list_ids(state_dir(state));
  std::lock_guard lock(accepting_mutex_);
  if (!accepting_.empty())
    std::erase_if(ids, [&](const std::string& id) { return accepting_.count(id) != 0; });
  return ids;
}

std::optional<SpoolState> Spool::find(const std::string& queue_id) const {
  if (!valid_queue_id(queue_id)) return std::nullopt;
  for (auto s : kStates) {
    std::error_code ec;
    if (fs::exists(message_dir(s, queue_id), ec)) return s;
  }
  return std::nullopt;
}

MessageMeta Spool::load_meta(SpoolState state, const std::string& queue_id) const {
  return as_spool_error([&] {
    const auto path = message_dir(state, queue_id) / kMeta;
    const auto text = read_file(path);
    try {
      return parse_meta(text);
    } catch (const nlohmann::json::exception& e) {
      throw SpoolError("spool: " + path.string() + " is not valid metadata: " + e.what() +
                           " (move the message directory to hold/ and inspect it)",
                       0);
    }
  });
}

void Spool::save_meta(SpoolState state, const MessageMeta& meta) {
  as_spool_error([&] {
    SyncBatch batch;
    save_meta(state, meta, batch);
    batch.commit();
  });
}

void Spool::save_meta(SpoolState state, const MessageMeta& meta, SyncBatch& batch) {
  as_spool_error([&] {
    const auto dir = message_dir(state, meta.queue_id);
    const std::string line = meta_line(meta);
    // A deferred message is saved at every retry: past a bound the log is
    // replaced by its last record (the old way: new file, rename, fsync).
    if (append_batched(dir / kMeta, line, batch) > kMetaCompactBytes) replace_file_durable(dir, kMeta, line);
  });
}

std::string Spool::load_original(SpoolState state, const std::string& queue_id) const {
  return as_spool_error([&] { return read_file(message_dir(state, queue_id) / kOriginal); });
}

fs::path Spool::original_file(SpoolState state, const std::string& queue_id) const {
  return message_dir(state, queue_id) / kOriginal;
}

std::string Spool::load_output(SpoolState state, const std::string& queue_id) const {
  return as_spool_error([&] { return read_file(message_dir(state, queue_id) / kOutput); });
}

void Spool::save_output(SpoolState state, const std::string& queue_id, std::string_view output) {
  as_spool_error([&] { write_file_unsynced(message_dir(state, queue_id) / kOutput, output); });
}

void Spool::move(const std::string& queue_id, SpoolState from, SpoolState to, bool sync) {
  as_spool_error([&] {
    const auto target = message_dir(to, queue_id);
    rename_no_replace(message_dir(from, queue_id), target);
    // Into done/ is not synced: the caller saved the final metadata first,
    // so a move that a crash undoes is only finished again (nothing is
    // delivered twice for it).
    // Only the directory it moved into is synced: the new name durable is
    // what counts, and where a crash leaves the old name as well, the start
    // keeps the later state (recover_layout).
    if (to != SpoolState::Done && sync) fsync_dir(state_dir(to));
    if (to == SpoolState::Done) {
      // Not synced: the constructor removes message files a crash left in done/.
      // The original lives on as the quarantine's link. The output is
      // emptied, not unlinked: on ext4, an inode freed in the last minutes
      // is skipped by every allocation in its group, so a file freed per
      // mail makes each new spool file slower to create. The empty file
      // goes with its directory when done/ is purged.
      remove_file(target / kOriginal);
      if (::truncate((target / kOutput).c_str(), 0) != 0 && errno != ENOENT)
        throw_errno("empty", target / kOutput, errno);
    }
  });
}

std::size_t Spool::purge_done(Clock::time_point before) {
  return as_spool_error([&] {
    std::size_t n = 0;
    for (const auto& id : list(SpoolState::Done)) {
      MessageMeta meta;
      try {
        meta = load_meta(SpoolState::Done, id);
      } catch (const SpoolError&) {
        continue;  // unreadable records stay for the operator
      }
      if (meta.finished < before) {
        fs::remove_all(message_dir(SpoolState::Done, id));
        ++n;
      }
    }
    if (n) fsync_dir(state_dir(SpoolState::Done));
    return n;
  });
}

std::vector<QueueEntry> list_queue(const fs::path& spool_dir, Clock::time_point now, bool include_done) {
  std::vector<QueueEntry> out;
  for (auto s : kStates) {
    if (s == SpoolState::Done && !include_done) continue;
    for (const auto& id : list_ids(spool_dir / std::string(to_string(s)))) {
      QueueEntry e;
      e.queue_id = id;
      e.state = s;
      try {
        const auto meta =
            parse_meta(read_file(spool_dir / std::string(to_string(s)) / id / kMeta));
        e.kind = meta.kind;
        e.age = std::chrono::duration_cast<std::chrono::seconds>(now - meta.received);
        e.sender = meta.envelope.mail_from;
        for (const auto& r : meta.recipients) e.recipients.push_back(r.recipient + " (" + r.status + ")");
        e.attempts = meta.attempts;
        e.next_attempt = meta.next_attempt;
        e.last_error = meta.hold_reason.empty() ? meta.last_error : meta.hold_reason;
      } catch (const StorageError& err) {
        if (err.error_code() == ENOENT) continue;  // moved while we looked
        e.last_error = err.what();
      } catch (const nlohmann::json::exception& err) {
        e.last_error = std::string("unreadable meta.json: ") + err.what();
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::string format_queue(const std::vector<QueueEntry>& entries, Clock::time_point now) {
  std::ostringstream os;
  os << "QUEUE ID                 STATE      AGE      ATTEMPTS  NEXT      SENDER -> RECIPIENTS\n";
  for (const auto& e : entries) {
    char line[128];
    const auto next = std::chrono::duration_cast<std::chrono::seconds>(e.next_attempt - now).count();
    std::snprintf(line, sizeof line, "%-24s %-10s %7llds %8d  %7llds ", e.queue_id.c_str(),
                  std::string(to_string(e.state)).c_str(), static_cast<long long>(e.age.count()), e.attempts,
                  static_cast<long long>(next > 0 ? next : 0));
    os << line << '<' << e.sender << "> ->";
    for (const auto& r : e.recipients) os << ' ' << r;
    os << '\n';
    if (!e.last_error.empty()) os << "    " << e.last_error << '\n';
  }
  os << entries.size() << " message(s)\n";
  return os.str();
}

}  // namespace mukaika
