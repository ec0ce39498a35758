#include "http/drop_box.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "queue/durable_io.h"

namespace mukaika::http {

namespace fs = std::filesystem;
using namespace queue_detail;
using Clock = std::chrono::system_clock;

namespace {

constexpr const char* kMeta = "meta.json";
constexpr const char* kOriginal = "original";
constexpr const char* kOutput = "output";
constexpr const char* kThumbnail = "thumbnail.png";
constexpr int kThumbnailSide = 240;  // pixels, the longer side
constexpr std::size_t kKeptTimes = 1000;  // processing times kept for the histogram

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_ms(std::int64_t ms) { return Clock::time_point(std::chrono::milliseconds(ms)); }

ItemStatus status_from(std::string_view s) {
  if (s == "queued") return ItemStatus::Queued;
  if (s == "processing") return ItemStatus::Processing;
  if (s == "done") return ItemStatus::Done;
  if (s == "blocked") return ItemStatus::Blocked;
  return ItemStatus::Failed;
}

template <typename F>
auto as_drop_box_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const StorageError& e) {
    throw DropBoxError(std::string("drop box: ") + e.what());
  } catch (const fs::filesystem_error& e) {
    throw DropBoxError(std::string("drop box: ") + e.what());
  }
}

}  // namespace

std::string_view to_string(ItemStatus s) {
  switch (s) {
    case ItemStatus::Queued: return "queued";
    case ItemStatus::Processing: return "processing";
    case ItemStatus::Done: return "done";
    case ItemStatus::Blocked: return "blocked";
    case ItemStatus::Failed: return "failed";
  }
  return "failed";
}

nlohmann::json to_json(const DropItem& i) {
  return {{"id", i.id},
          {"name", i.name},
          {"size", i.size},
          {"sha256", i.sha256},
          {"uploader", i.uploader},
          {"recipient", i.recipient},
          {"note", i.note},
          {"client_address", i.client_address},
          {"received_ms", to_ms(i.received)},
          {"status", to_string(i.status)},
          {"attempts", i.attempts},
          {"next_attempt_ms", to_ms(i.next_attempt)},
          {"verdict", i.verdict},
          {"output_name", i.output_name},
          {"output_type", i.output_type},
          {"output_size", i.output_size},
          {"sha256_output", i.sha256_output},
          {"reason", i.reason},
          {"reason_en", i.reason_en},
          {"report", i.report},
          {"finished_ms", to_ms(i.finished)},
          {"processing_seconds", i.processing_seconds},
          {"picked_up", i.picked_up},
          {"thumbnail", i.thumbnail},
          {"held", i.held},
          {"password_attempts", i.password_attempts},
          {"password_locked", i.password_locked}};
}

DropItem item_from_json(const nlohmann::json& j) {
  DropItem i;
  i.id = j.at("id").get<std::string>();
  i.name = j.value("name", "");
  i.size = j.value("size", std::uint64_t{0});
  i.sha256 = j.value("sha256", "");
  i.uploader = j.value("uploader", "");
  i.recipient = j.value("recipient", "");
  i.note = j.value("note", "");
  i.client_address = j.value("client_address", "");
  i.received = from_ms(j.value("received_ms", std::int64_t{0}));
  i.status = status_from(j.value("status", "failed"));
  i.attempts = j.value("attempts", 0);
  i.next_attempt = from_ms(j.value("next_attempt_ms", std::int64_t{0}));
  i.verdict = j.value("verdict", "");
  i.output_name = j.value("output_name", "");
  i.output_type = j.value("output_type", "");
  i.output_size = j.value("output_size", std::uint64_t{0});
  i.sha256_output = j.value("sha256_output", "");
  i.reason = j.value("reason", "");
  i.reason_en = j.value("reason_en", "");
  if (j.contains("report")) i.report = j["report"];
  i.finished = from_ms(j.value("finished_ms", std::int64_t{0}));
  i.processing_seconds = j.value("processing_seconds", 0.0);
  i.picked_up = j.value("picked_up", false);
  i.thumbnail = j.value("thumbnail", false);
  i.held = j.value("held", "");
  i.password_attempts = j.value("password_attempts", 0);
  i.password_locked = j.value("password_locked", false);
  return i;
}

bool DropBox::valid_id(std::string_view id) {
  return id.size() == 24 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// SHA-256 of the bytes as they stream in, so that a 2 GB upload is never read twice.
struct DropBox::Upload::Sha {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha() {
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) throw DropBoxError("drop box: SHA-256 unavailable");
  }
  ~Sha() { EVP_MD_CTX_free(ctx); }
  std::string hex() {
    unsigned char md[32];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }
};

DropBox::Upload::Upload(DropBox& box, std::string id, fs::path dir, UniqueFd fd)
    : box_(box), id_(std::move(id)), dir_(std::move(dir)), fd_(std::move(fd)), sha_(std::make_unique<Sha>()) {}

DropBox::Upload::~Upload() {
  if (committed_) return;
  // Interrupted or refused: nothing of it stays, not even under tmp/.
  fd_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void DropBox::Upload::write(std::string_view bytes) {
  as_drop_box_error([&] { write_all(fd_.get(), bytes, dir_ / kOriginal); });
  EVP_DigestUpdate(sha_->ctx, bytes.data(), bytes.size());
  size_ += bytes.size();
}

DropBox::DropBox(fs::path dir, AuditLog& audit, FileSanitizer sanitize, Options options)
    : dir_(std::move(dir)), audit_(audit), sanitize_(std::move(sanitize)), options_(std::move(options)) {
  as_drop_box_error([&] {
    make_dir_durable(dir_);
    make_dir_durable(dir_ / "tmp");
    make_dir_durable(dir_ / "items");
  });
  lock_.reset(::open((dir_ / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!lock_ || ::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0)
    throw DropBoxError("drop box: " + (dir_ / "lock").string() +
                       (lock_ ? " is held by another mukaika process (one store, one daemon)" : ": " + describe_errno(errno)));
  // Uploads that never got their 202 are not ours to keep.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "tmp", ec)) fs::remove_all(e.path(), ec);
  for (const auto& e : fs::directory_iterator(dir_ / "items", ec)) {
    const std::string id = e.path().filename().string();
    if (!valid_id(id)) continue;
    try {
      DropItem item = item_from_json(nlohmann::json::parse(read_file(e.path() / kMeta)));
      if (item.status == ItemStatus::Processing) item.status = ItemStatus::Queued;  // a crash mid-way: again
      items_[id] = std::move(item);
    } catch (const std::exception& err) {
      // Kept on disk for the operator; never served.
      if (options_.log) options_.log("drop box: skipping " + e.path().string() + ": " + err.what());
    }
  }
}

DropBox::~DropBox() { stop(); }

std::unique_ptr<DropBox::Upload> DropBox::begin_upload() {
  return as_drop_box_error([&] {
    for (int tries = 0;; ++tries) {
      unsigned char rnd[12];
      if (::getrandom(rnd, sizeof rnd, 0) != sizeof rnd) throw DropBoxError("drop box: getrandom failed");
      static const char* digits = "0123456789abcdef";
      std::string id;
      for (unsigned char c : rnd) {
        id += digits[c >> 4];
        id += digits[c & 15];
      }
      const fs::path work = dir_ / "tmp" / id;
      if (::mkdir(work.c_str(), 0750) != 0) {
        if (errno == EEXIST && tries < 10) continue;
        throw_errno("create directory", work, errno);
      }
      UniqueFd fd(::open((work / kOriginal).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
      if (!fd) {
        const int err = errno;
        std::error_code ec;
        fs::remove_all(work, ec);
        throw_errno("create", work / kOriginal, err);
      }
      return std::unique_ptr<Upload>(new Upload(*this, id, work, std::move(fd)));
    }
  });
}

DropItem DropBox::commit(Upload& upload, DropItem item) {
  item.id = upload.id_;
  item.size = upload.size_;
  item.sha256 = upload.sha_->hex();
  item.received = Clock::now();
  item.status = ItemStatus::Queued;
  item.next_attempt = item.received;
  as_drop_box_error([&] {
    fsync_fd(upload.fd_.get(), upload.dir_ / kOriginal);
    upload.fd_.reset();
    write_new_file(upload.dir_ / kMeta, to_json(item).dump(2));
    fsync_dir(upload.dir_);
    rename_no_replace(upload.dir_, item_dir(item.id));
    upload.committed_ = true;
    fsync_dir(dir_ / "items");
    fsync_dir(dir_ / "tmp");
  });
  nlohmann::json record = {{"type", "upload"},
                           {"id", item.id},
                           {"time", iso8601_local(item.received)},
                           {"client_address", item.client_address},
                           {"uploader", item.uploader},
                           {"recipient", item.recipient},
                           {"name", item.name},
                           {"size", item.size},
                           {"sha256_original", item.sha256}};
  audit(record);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[item.id] = item;
  }
  wake_.notify_all();
  return item;
}

void DropBox::audit(const nlohmann::json& record) {
  try {
    audit_.append(record);
  } catch (const std::exception& e) {
    // The item itself is durable; the missing line is the operator's to see.
    if (options_.log) options_.log(std::string("drop box: audit log: ") + e.what());
  }
}

std::optional<DropItem> DropBox::find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = items_.find(id);
  if (it == items_.end()) return std::nullopt;
  return it->second;
}

std::vector<DropItem> DropBox::list(const std::function<bool(const DropItem&)>& filter, std::size_t max) const {
  std::vector<DropItem> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, item] : items_)
      if (!filter || filter(item)) out.push_back(item);
  }
  std::sort(out.begin(), out.end(), [](const DropItem& a, const DropItem& b) { return a.received > b.received; });
  if (out.size() > max) out.resize(max);
  return out;
}

std::optional<fs::path> DropBox::thumbnail_path(const std::string& id) const {
  auto item = find(id);
  if (!item || item->status != ItemStatus::Done || !item->thumbnail) return std::nullopt;
  return item_dir(id) / kThumbnail;
}

std::optional<fs::path> DropBox::original_path(const std::string& id) const {
  auto item = find(id);
  if (!item) return std::nullopt;
  std::error_code ec;
  const fs::path p = item_dir(id) / kOriginal;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  return p;
}

std::optional<fs::path> DropBox::output_path(const std::string& id) const {
  auto item = find(id);
  if (!item || item->status != ItemStatus::Done) return std::nullopt;
  return item_dir(id) / kOutput;
}

void DropBox::save(const DropItem& item) {
  as_drop_box_error([&] { replace_file_durable(item_dir(item.id), kMeta, to_json(item).dump(2)); });
}

void DropBox::mark_picked_up(const std::string& id, const std::string& by) {
  DropItem item;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(id);
    if (it == items_.end()) return;
    it->second.picked_up = true;
    item = it->second;
  }
  save(item);
  audit({{"type", "upload_picked_up"}, {"id", id}, {"time", iso8601_local(Clock::now())}, {"by", by}});
}

DropBox::Stats DropBox::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats s;
  s.by_verdict = by_verdict_;
  s.seconds = seconds_;
  for (const auto& [id, item] : items_) {
    if (item.status == ItemStatus::Queued) ++s.queued;
    if (item.status == ItemStatus::Processing) ++s.processing;
  }
  return s;
}

std::string DropBox::read_original(const std::string& id) const {
  return as_drop_box_error([&] { return read_file(item_dir(id) / kOriginal); });
}

void DropBox::store_output(DropItem& item, const SanitizedFile& result) {
  as_drop_box_error([&] {
    remove_file(item_dir(item.id) / kOutput);  // a crash after writing it, before meta.json said so
    write_new_file(item_dir(item.id) / kOutput, result.bytes);
  });
  item.output_name = result.name.empty() ? item.name : result.name;
  item.output_type = result.type;
  item.output_size = result.bytes.size();
  item.sha256_output = result.sha256_output;
  item.status = ItemStatus::Done;
  if (options_.thumbnail && item.output_type == "application/pdf") {
    // Best effort: an inbox without a picture is still an inbox.
    try {
      if (auto png = options_.thumbnail(result.bytes)) {
        as_drop_box_error([&] {
          remove_file(item_dir(item.id) / kThumbnail);
          write_new_file(item_dir(item.id) / kThumbnail, *png);
        });
        item.thumbnail = true;
      }
    } catch (const std::exception& e) {
      if (options_.log) options_.log("drop box: " + item.id + ": no thumbnail: " + e.what());
    }
  }
}

void DropBox::process(DropItem item) {
  const auto started = std::chrono::steady_clock::now();
  item.status = ItemStatus::Processing;
  ++item.attempts;
  save(item);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[item.id] = item;
  }
  SanitizedFile result;
  std::string error;
  try {
    if (options_.max_file_bytes != 0 && item.size > options_.max_file_bytes) {
      const std::string limit = std::to_string(options_.max_file_bytes);
      result.verdict = "blocked";
      result.reason = "サイズが上限 (" + limit + " バイト) を超えたため遮断しました";
      result.reason_en = "blocked: larger than " + limit + " bytes";
      result.report = {{"input", item.name},
                       {"verdict", "blocked"},
                       {"actions", nlohmann::json::array({{{"action", "block"},
                                                           {"code", "limits.item_bytes"},
                                                           {"path", item.name},
                                                           {"reason", result.reason}}})}};
    } else {
      result = sanitize_(item.id, item.name, read_file(item_dir(item.id) / kOriginal));
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto now = Clock::now();
  if (!error.empty()) {
    // Could not decide: fail closed. Retried a few times, then failed for good.
    if (item.attempts >= options_.max_attempts) {
      item.status = ItemStatus::Failed;
      item.verdict = "failed";
      item.reason = "無害化処理ができなかったため、ファイルを渡せません (" + error + ")";
      item.reason_en = "the file could not be sanitized, so it is not passed on (" + error + ")";
      item.finished = now;
    } else {
      item.status = ItemStatus::Queued;
      item.next_attempt = now + options_.retry_delay * item.attempts;
    }
    if (options_.log) options_.log("drop box: " + item.id + ": " + error);
  } else {
    item.verdict = result.verdict;
    item.report = std::move(result.report);
    item.reason = result.reason;
    item.reason_en = result.reason_en;
    item.finished = now;
    if (result.verdict == "blocked") {
      item.status = ItemStatus::Blocked;
    } else {
      store_output(item, result);
    }
    item.held = item.status == ItemStatus::Blocked ? held_code(item.report) : "";
  }
  item.processing_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  save(item);
  if (item.status != ItemStatus::Queued) {
    audit({{"type", "upload_result"},
           {"id", item.id},
           {"time", iso8601_local(now)},
           {"uploader", item.uploader},
           {"recipient", item.recipient},
           {"name", item.name},
           {"sha256_original", item.sha256},
           {"sha256_output", item.sha256_output},
           {"verdict", item.verdict},
           {"reason", item.reason},
           {"reason_en", item.reason_en},
           {"actions", item.report.is_null() ? nlohmann::json::object() : item.report}});
  }
  std::lock_guard<std::mutex> lock(mutex_);
  items_[item.id] = item;
  if (item.status != ItemStatus::Queued) {
    ++by_verdict_[item.verdict];
    seconds_.push_back(item.processing_seconds);
    if (seconds_.size() > kKeptTimes) seconds_.erase(seconds_.begin());
  }
}

void DropBox::process_pending() {
  for (;;) {
    std::optional<DropItem> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && thread_.joinable()) return;
      const auto now = Clock::now();
      for (const auto& [id, item] : items_) {
        if (item.status != ItemStatus::Queued || item.next_attempt > now) continue;
        if (!next || item.received < next->received) next = item;  // oldest first
      }
    }
    if (!next) return;
    try {
      process(*next);
    } catch (const std::exception& e) {
      // The disk refused a state change: the item stays as it was on disk and
      // is taken up again later.
      if (options_.log) options_.log("drop box: " + next->id + ": " + e.what());
      std::lock_guard<std::mutex> lock(mutex_);
      auto& item = items_[next->id];
      item.status = ItemStatus::Queued;
      item.next_attempt = Clock::now() + options_.retry_delay;
    }
  }
}

std::size_t DropBox::expire(Clock::time_point now) {
  const auto limit = now - std::chrono::hours(24) * options_.keep_days;
  std::vector<std::string> old;
  std::map<std::string, std::string> day_of;  // id -> the day it was received
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, item] : items_)
      if (item.received < limit && item.status != ItemStatus::Queued && item.status != ItemStatus::Processing) {
        old.push_back(id);
        day_of[id] = iso8601_local(item.received).substr(0, 10);
      }
  }
  std::set<std::string> days;
  std::size_t removed = 0;
  for (const auto& id : old) {
    std::error_code ec;
    fs::remove_all(item_dir(id), ec);
    if (ec) continue;
    ++removed;
    days.insert(day_of[id]);
    audit({{"type", "upload_expired"}, {"id", id}, {"time", iso8601_local(now)}});
    std::lock_guard<std::mutex> lock(mutex_);
    items_.erase(id);
  }
  // One record per run as well: how many originals the retention removed, of which days.
  if (removed)
    audit({{"type", "dropbox_expired"},
           {"time", iso8601_local(now)},
           {"count", removed},
           {"days", std::vector<std::string>(days.begin(), days.end())},
           {"keep_days", options_.keep_days}});
  return old.size();
}

void DropBox::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { thread_main(); });
}

void DropBox::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DropBox::thread_main() {
  auto next_expiry = Clock::now();
  for (;;) {
    if (Clock::now() >= next_expiry) {
      try {
        expire(Clock::now());
      } catch (const std::exception& e) {
        if (options_.log) options_.log(std::string("drop box: expiry: ") + e.what());
      }
      next_expiry = Clock::now() + std::chrono::hours(1);
    }
    process_pending();
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) return;
    auto until = next_expiry;
    for (const auto& [id, item] : items_)
      if (item.status == ItemStatus::Queued) until = std::min(until, item.next_attempt);
    wake_.wait_until(lock, until, [&] {
      if (stopping_) return true;
      const auto now = Clock::now();
      for (const auto& [id, item] : items_)
        if (item.status == ItemStatus::Queued && item.next_attempt <= now) return true;
      return false;
    });
    if (stopping_) return;
  }
}

}  // namespace mukaika::http
