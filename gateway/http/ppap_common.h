// What the drop box's and the mail's PPAP flows share: reading the codes of
// an item report, and "one password attempt at a time per held thing".
#pragma once

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mukaika::http::ppap {

// A password was given and did not open it (archive.flatten, pdf.rasterize).
inline const std::vector<std::string_view> kWrongPassword = {"archive.wrong_password", "pdf.wrong_password"};
// A password cannot open it here at all (RAR: libarchive 3.6 does not decrypt it; 7z only where p7zip can run).
inline const std::vector<std::string_view> kUnsupported = {"archive.password_unsupported"};

// Whether any action of an item report has one of `codes`.
inline bool report_has(const nlohmann::json& report, const std::vector<std::string_view>& codes) {
  const auto it = report.find("actions");
  if (it == report.end() || !it->is_array()) return false;
  for (const auto& a : *it) {
    if (!a.is_object()) continue;
    const std::string code = a.value("code", "");
    if (std::find(codes.begin(), codes.end(), code) != codes.end()) return true;
  }
  return false;
}

// Claims a key in `busy` for its lifetime; held() is false when another
// attempt has it.
class Claim {
 public:
  Claim(std::mutex& m, std::set<std::string>& busy, std::string key) : m_(m), busy_(busy), key_(std::move(key)) {
    std::lock_guard<std::mutex> lock(m_);
    held_ = busy_.insert(key_).second;
  }
  ~Claim() {
    if (!held_) return;
    std::lock_guard<std::mutex> lock(m_);
    busy_.erase(key_);
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  bool held() const { return held_; }

 private:
  std::mutex& m_;
  std::set<std::string>& busy_;
  std::string key_;
  bool held_ = false;
};

}  // namespace mukaika::http::ppap
