#include "http/release_desk.h"

#include <algorithm>
#include <system_error>

#include "http/auth.h"
#include "queue/durable_io.h"

namespace mukaika::http {

namespace fs = std::filesystem;
using SysClock = std::chrono::system_clock;
using queue_detail::iso8601_local;

namespace {

std::int64_t to_ms(SysClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
SysClock::time_point from_ms(std::int64_t ms) { return SysClock::time_point(std::chrono::milliseconds(ms)); }

const char* const kStates[] = {"pending", "approved", "rejected", "refused", "downloaded", "expired"};

ReleaseState state_of(const std::string& s) {
  for (int i = 0; i < 6; ++i)
    if (s == kStates[i]) return static_cast<ReleaseState>(i);
  throw ReleaseError("unknown release state \"" + s + "\"");
}

// 16 random bytes as hex: the request's id and file name.
std::string new_id() {
  const std::string token = random_token();  // 43 base64url characters from the CSPRNG
  return queue_detail::sha256_hex(token).substr(0, 32);
}

}  // namespace

std::string_view to_string(ReleaseState s) { return kStates[static_cast<int>(s)]; }

bool ReleaseRequest::downloadable(SysClock::time_point now) const {
  return (state == ReleaseState::Approved || state == ReleaseState::Downloaded) && now < expires;
}

nlohmann::json to_json(const ReleaseRequest& r) {
  nlohmann::json j = {{"id", r.id},
                      {"subject", r.subject},
                      {"name", r.name},
                      {"verdict", r.verdict},
                      {"requester", r.requester},
                      {"reason", r.reason},
                      {"requested_ms", to_ms(r.requested)},
                      {"requested", iso8601_local(r.requested)},
                      {"state", to_string(r.state)},
                      {"decided_by", r.decided_by},
                      {"comment", r.comment},
                      {"decided_ms", to_ms(r.decided)},
                      {"expires_ms", to_ms(r.expires)},
                      {"policy_exception", r.policy_exception},
                      {"downloads", r.downloads},
                      {"notice_failed", r.notice_failed}};
  if (r.decided != SysClock::time_point{}) j["decided"] = iso8601_local(r.decided);
  if (r.expires != SysClock::time_point{}) j["expires"] = iso8601_local(r.expires);
  return j;
}

ReleaseRequest release_from_json(const nlohmann::json& j) {
  ReleaseRequest r;
  r.id = j.value("id", "");
  r.subject = j.value("subject", "");
  r.name = j.value("name", "");
  r.verdict = j.value("verdict", "");
  r.requester = j.value("requester", "");
  r.reason = j.value("reason", "");
  r.requested = from_ms(j.value("requested_ms", std::int64_t{0}));
  r.state = state_of(j.value("state", "pending"));
  r.decided_by = j.value("decided_by", "");
  r.comment = j.value("comment", "");
  r.decided = from_ms(j.value("decided_ms", std::int64_t{0}));
  r.expires = from_ms(j.value("expires_ms", std::int64_t{0}));
  r.policy_exception = j.value("policy_exception", false);
  r.downloads = j.value("downloads", 0);
  r.notice_failed = j.value("notice_failed", false);
  return r;
}

bool report_is_infected(const nlohmann::json& report) {
  if (!report.is_object()) return false;
  const auto it = report.find("actions");
  if (it == report.end() || !it->is_array()) return false;
  for (const auto& a : *it) {
    if (!a.is_object()) continue;
    if (a.contains("virus") && a["virus"].is_string() && !a["virus"].get<std::string>().empty()) return true;
    if (a.value("code", "") == "av.infected") return true;
  }
  return false;
}

ReleaseDesk::ReleaseDesk(fs::path dir, AuditLog& audit, Options options)
    : dir_(std::move(dir)), audit_(audit), options_(std::move(options)) {
  try {
    std::error_code ec;
    if (dir_.has_parent_path()) fs::create_directories(dir_.parent_path(), ec);  // the default ./var/ on first start
    queue_detail::make_dir_durable(dir_);
  } catch (const std::exception& e) {
    throw ReleaseError(std::string("release.dir: ") + e.what());
  }
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) throw ReleaseError("release.dir: " + dir_.string() + " is not a directory");
}

SysClock::time_point ReleaseDesk::now() const { return options_.clock ? options_.clock() : SysClock::now(); }

bool ReleaseDesk::valid_id(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

void ReleaseDesk::save(const ReleaseRequest& r) {
  try {
    queue_detail::replace_file_durable(dir_, r.id + ".json", to_json(r).dump(2) + "\n");
  } catch (const std::exception& e) {
    throw ReleaseError(std::string("release: cannot store request ") + r.id + ": " + e.what());
  }
}

void ReleaseDesk::audit(const char* type, const ReleaseRequest& r, const std::string& actor, const std::string& text) {
  nlohmann::json j = {{"type", type},
                      {"time", iso8601_local(now())},
                      {"id", r.id},
                      {"subject", r.subject},
                      {"name", r.name},
                      {"requester", r.requester},
                      {"by", actor},
                      {"state", to_string(r.state)},
                      {"detail", text},
                      {"policy_exception", r.policy_exception}};
  if (r.expires != SysClock::time_point{}) j["expires"] = iso8601_local(r.expires);
  audit_.append(j);
}

std::optional<ReleaseRequest> ReleaseDesk::find(const std::string& id) const {
  if (!valid_id(id)) return std::nullopt;
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code ec;
  const fs::path file = dir_ / (id + ".json");
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  try {
    return release_from_json(nlohmann::json::parse(queue_detail::read_file(file)));
  } catch (const std::exception& e) {
    throw ReleaseError("release: " + file.string() + ": " + e.what());
  }
}

std::vector<ReleaseRequest> ReleaseDesk::list(const std::function<bool(const ReleaseRequest&)>& filter) const {
  std::vector<ReleaseRequest> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
      const std::string name = e.path().filename().string();
      if (name.size() != 37 || e.path().extension() != ".json" || !valid_id(name.substr(0, 32))) continue;
      try {
        ReleaseRequest r = release_from_json(nlohmann::json::parse(queue_detail::read_file(e.path())));
        if (!filter || filter(r)) out.push_back(std::move(r));
      } catch (const std::exception&) {
        // A damaged file is left for the operator; find() names it.
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.requested > b.requested; });
  return out;
}

std::optional<ReleaseRequest> ReleaseDesk::latest(const std::string& subject, const std::string& requester) const {
  auto all = list([&](const ReleaseRequest& r) { return r.subject == subject && r.requester == requester; });
  if (all.empty()) return std::nullopt;
  return all.front();
}

ReleaseRequest ReleaseDesk::request(const std::string& subject, const std::string& requester,
                                    const std::string& reason, const SubjectFacts& facts) {
  // One request at a time: two quick clicks make one request, not two.
  std::lock_guard<std::mutex> one_at_a_time(request_mutex_);
  if (auto open = latest(subject, requester);
      open && (open->state == ReleaseState::Pending || open->downloadable(now())))
    return *open;
  ReleaseRequest r;
  r.id = new_id();
  r.subject = subject;
  r.name = facts.name;
  r.verdict = facts.verdict;
  r.requester = requester;
  r.reason = reason;
  r.requested = now();
  if (facts.infected) {
    // Never released: recorded so that the attempt is on file and on the audit page.
    r.state = ReleaseState::Refused;
    r.decided = r.requested;
    r.decided_by = "mukaika";
    r.comment = "ウイルスが検出された原本は取り出せません / an infected original is never released";
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    save(r);
  }
  audit(facts.infected ? "release.refused" : "release.requested", r, requester,
        facts.infected ? r.comment : reason);
  return r;
}

ReleaseDesk::Outcome ReleaseDesk::decide(const std::string& id, const std::string& approver, bool approve,
                                         const std::string& comment, const SubjectFacts& facts,
                                         ReleaseRequest* result) {
  ReleaseRequest r;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::error_code ec;
    const fs::path file = dir_ / (id + ".json");
    if (!valid_id(id) || !fs::is_regular_file(file, ec)) return Outcome::NotFound;
    r = release_from_json(nlohmann::json::parse(queue_detail::read_file(file)));
    if (r.state != ReleaseState::Pending) return Outcome::NotPending;
    if (r.requester == approver) return Outcome::OwnRequest;
    r.decided = now();
    r.decided_by = approver;
    r.comment = comment;
    if (facts.infected) {
      r.state = ReleaseState::Refused;
      r.decided_by = "mukaika";
      r.comment = "ウイルスが検出された原本は取り出せません / an infected original is never released";
    } else if (approve) {
      r.state = ReleaseState::Approved;
      r.expires = r.decided + options_.download_hours;
      r.policy_exception = options_.deliver_to_lgwan;
    } else {
      r.state = ReleaseState::Rejected;
    }
    save(r);
  }
  if (result) *result = r;
  if (facts.infected) {
    audit("release.refused", r, approver, r.comment);
    return Outcome::Infected;
  }
  audit(approve ? "release.approved" : "release.rejected", r, approver, comment);
  return Outcome::Done;
}

void ReleaseDesk::record_download(const std::string& id, const std::string& by, const std::string& zone) {
  ReleaseRequest r;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const fs::path file = dir_ / (id + ".json");
    r = release_from_json(nlohmann::json::parse(queue_detail::read_file(file)));
    ++r.downloads;
    if (r.state == ReleaseState::Approved) r.state = ReleaseState::Downloaded;
    save(r);
  }
  audit("release.downloaded", r, by, zone);
}

void ReleaseDesk::record_notice_failure(const std::string& id, const std::string& error) {
  ReleaseRequest r;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    r = release_from_json(nlohmann::json::parse(queue_detail::read_file(dir_ / (id + ".json"))));
    r.notice_failed = true;
    save(r);
  }
  audit("release.notice_failed", r, "mukaika", error);
}

std::size_t ReleaseDesk::expire() {
  const auto t = now();
  auto due = list([&](const ReleaseRequest& r) {
    return (r.state == ReleaseState::Approved || r.state == ReleaseState::Downloaded) && !(t < r.expires);
  });
  std::size_t expired = 0;
  for (auto& r : due) {
    {
      // Read again under the lock: a download may have changed it meanwhile.
      std::lock_guard<std::mutex> lock(mutex_);
      r = release_from_json(nlohmann::json::parse(queue_detail::read_file(dir_ / (r.id + ".json"))));
      if (r.state != ReleaseState::Approved && r.state != ReleaseState::Downloaded) continue;
      r.state = ReleaseState::Expired;
      save(r);
    }
    audit("release.expired", r, "mukaika", "");
    ++expired;
  }
  return expired;
}

void ReleaseDesk::start(std::chrono::seconds interval, std::function<void(const std::string&)> log) {
  std::lock_guard<std::mutex> lock(thread_mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this, interval, log = std::move(log)] {
    std::unique_lock<std::mutex> lock(thread_mutex_);
    while (!stopping_) {
      lock.unlock();
      try {
        expire();
      } catch (const std::exception& e) {
        if (log) log(std::string("release: expiry: ") + e.what());
      }
      lock.lock();
      wake_.wait_for(lock, interval, [this] { return stopping_; });
    }
  });
}

void ReleaseDesk::stop() {
  {
    std::lock_guard<std::mutex> lock(thread_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ReleaseDesk::~ReleaseDesk() { stop(); }

// --- access -----------------------------------------------------------------

bool has_role(const AccountConfig& account, std::string_view role) {
  return std::find(account.roles.begin(), account.roles.end(), role) != account.roles.end();
}

bool may_decide(const AccountConfig& account, const ReleaseRequest& r) {
  return has_role(account, "approver") && account.name != r.requester;
}

DownloadAccess download_access(const AccountConfig& account, const ReleaseRequest& r, bool zone_is_lgwan,
                               bool deliver_to_lgwan, SysClock::time_point now) {
  // Someone else's request, or one meant for the other zone, does not exist here.
  if (r.requester != account.name || zone_is_lgwan != deliver_to_lgwan || zone_is_lgwan != r.policy_exception)
    return DownloadAccess::NotFound;
  if (r.state == ReleaseState::Expired) return DownloadAccess::Gone;
  if (r.state != ReleaseState::Approved && r.state != ReleaseState::Downloaded) return DownloadAccess::NotFound;
  return now < r.expires ? DownloadAccess::Allowed : DownloadAccess::Gone;
}

}  // namespace mukaika::http
