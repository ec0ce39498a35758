#include "queue/quarantine.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <vector>
#include <optional>
#include <stdexcept>

namespace mukaika {

using namespace queue_detail;
namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

namespace {

template <typename F>
auto as_quarantine_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const QuarantineError&) {
    throw;
  } catch (const StorageError& e) {
    throw QuarantineError(std::string("quarantine: ") + e.what(), e.error_code());
  } catch (const fs::filesystem_error& e) {
    throw QuarantineError(std::string("quarantine: ") + e.what() + ": " + describe_errno(e.code().value()),
                          e.code().value());
  }
}

std::chrono::sys_days local_day(Clock::time_point t) {
  time_t secs = Clock::to_time_t(t);
  struct tm tm {};
  localtime_r(&secs, &tm);
  return std::chrono::sys_days(std::chrono::year{tm.tm_year + 1900} / std::chrono::month{unsigned(tm.tm_mon + 1)} /
                               std::chrono::day{unsigned(tm.tm_mday)});
}

// "2026-12-07" -> the day; anything else (an operator's folder) -> nullopt.
std::optional<std::chrono::sys_days> parse_day(const std::string& name) {
  int y = 0;
  unsigned m = 0, d = 0;
  char tail = 0;
  if (name.size() != 10 || std::sscanf(name.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &tail) != 3) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{d}};
  if (!ymd.ok()) return std::nullopt;
  return std::chrono::sys_days(ymd);
}

}  // namespace

Quarantine::Quarantine(fs::path dir, int keep_days) : dir_(std::move(dir)), keep_days_(keep_days) {
  if (keep_days < 1) throw std::invalid_argument("quarantine keep_days must be at least 1");
  as_quarantine_error([&] { make_dir_durable(dir_); });
}

std::string Quarantine::day_name(Clock::time_point t) {
  const std::chrono::year_month_day ymd(local_day(t));
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()));
  return buf;
}

fs::path Quarantine::keep(const std::string& queue_id, std::string_view original, const Envelope& envelope,
                          const nlohmann::json& summary, const fs::path& original_file,
                          queue_detail::SyncBatch* batch, std::string_view sha256_original) {
  return as_quarantine_error([&] {
    const auto received = envelope.received == Clock::time_point{} ? Clock::now() : envelope.received;
    const auto day = dir_ / day_name(received);
    make_dir_durable(day);
    nlohmann::json meta = {
        {"queue_id", queue_id},
        {"received", iso8601_local(received)},
        {"client_address", envelope.client_address},
        {"helo", envelope.helo},
        {"mail_from", envelope.mail_from},
        {"recipients", envelope.recipients},
        {"sha256_original", sha256_original.empty() ? sha256_hex(original) : std::string(sha256_original)},
        {"size", original.size()},
        {"summary", summary},
    };
    // The .eml first: a .json never points at a missing original. One
    // fsync of the directory makes both names durable before keep()
    // returns. A hard link to the spool's copy, whose bytes are already
    // synced, spares writing and syncing them again; a copy where there can
    // be no link (another file system) or where a crash left one behind.
    const auto eml = day / (queue_id + ".eml");
    if (original_file.empty() || ::link(original_file.c_str(), eml.c_str()) != 0)
      replace_file_durable(day, queue_id + ".eml", original, false);
    // Batched, a crash before the commit may leave a .json with missing
    // bytes: the mail is still in incoming/ then, and is kept again.
    if (batch)
      replace_file_batched(day, queue_id + ".json", meta.dump(2), *batch);
    else
      replace_file_durable(day, queue_id + ".json", meta.dump(2));
    return day / (queue_id + ".eml");
  });
}

std::optional<Quarantine::Kept> Quarantine::find(const std::string& queue_id) const {
  if (queue_id.empty() || queue_id.size() > 128) return std::nullopt;
  for (char c : queue_id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' ||
          c == '.') ||
        queue_id[0] == '.')
      return std::nullopt;
  return as_quarantine_error([&]() -> std::optional<Kept> {
    std::vector<std::string> days;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.is_directory() && parse_day(entry.path().filename().string()))
        days.push_back(entry.path().filename().string());
    std::sort(days.rbegin(), days.rend());
    for (const std::string& day : days) {
      Kept k{dir_ / day / (queue_id + ".eml"), dir_ / day / (queue_id + ".json"), day};
      std::error_code ec;
      if (fs::is_regular_file(k.json, ec) && fs::is_regular_file(k.eml, ec)) return k;
    }
    return std::nullopt;
  });
}

std::optional<nlohmann::json> Quarantine::summary(const std::string& queue_id) const {
  const auto kept = find(queue_id);
  if (!kept) return std::nullopt;
  std::ifstream in(kept->json, std::ios::binary);
  if (!in) throw QuarantineError("quarantine: cannot read " + kept->json.string(), errno);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw QuarantineError("quarantine: " + kept->json.string() + " is not valid JSON", 0);
  return j;
}

std::size_t Quarantine::expire(Clock::time_point now, std::vector<std::string>* days) {
  return as_quarantine_error([&] {
    const auto oldest_kept = local_day(now) - std::chrono::days(keep_days_);
    std::size_t removed = 0;
    bool changed = false;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (!entry.is_directory()) continue;
      const auto day = parse_day(entry.path().filename().string());
      if (!day || *day >= oldest_kept) continue;
      for (const auto& f : fs::directory_iterator(entry.path()))
        if (f.path().extension() == ".eml") ++removed;
      fs::remove_all(entry.path());
      if (days) days->push_back(entry.path().filename().string());
      changed = true;
    }
    if (changed) fsync_dir(dir_);
    return removed;
  });
}

}  // namespace mukaika
