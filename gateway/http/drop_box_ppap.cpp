// PPAP for the drop box: a held item (blocked only for want of a password)
// opened with the password its recipient typed (drop_box.h, try_password).
//
// The original is sanitized again in a worker with the passphrases; the
// daemon never decrypts. The count of wrong passwords lives in meta.json so
// that a restart does not reset it; the password is never stored or audited.
#include <algorithm>

#include "digest.h"
#include "http/drop_box.h"
#include "http/ppap_common.h"
#include "queue/durable_io.h"

namespace mukaika::http {

namespace {
using Clock = std::chrono::system_clock;
}  // namespace

std::string held_code(const nlohmann::json& report) {
  // Only what a password can open: zip and 7z/RAR archives, PDFs. Office
  // documents (office.encrypted) have no decryptor here and stay blocked.
  for (const char* code : {"archive.encrypted", "pdf.encrypted"})
    if (ppap::report_has(report, {code})) return code;
  return "";
}

DropBox::PasswordOutcome DropBox::try_password(const std::string& id, std::vector<std::string> passphrases,
                                               const std::string& by, const std::string& client_address,
                                               int max_attempts) {
  struct Wipe {
    std::vector<std::string>& p;
    ~Wipe() { wipe_passphrases(p); }
  } wipe_on_return{passphrases};
  PasswordOutcome out;
  out.max_attempts = max_attempts;
  ppap::Claim claim(mutex_, unlocking_, id);
  if (!claim.held()) {
    out.result = PasswordOutcome::Result::Busy;
    return out;
  }
  std::optional<DropItem> found = find(id);
  if (!found || found->held.empty() || found->status != ItemStatus::Blocked) {
    out.result = PasswordOutcome::Result::NotHeld;
    return out;
  }
  DropItem item = *found;
  out.attempts = item.password_attempts;
  if (item.password_locked || item.password_attempts >= max_attempts) {
    out.result = PasswordOutcome::Result::Locked;
    return out;
  }
  if (!options_.unlock) {
    out.detail = "no sanitizer for passwords";
    return out;
  }
  // How many passwords the attempt carried is on file; never what they were.
  const std::size_t typed = passphrases.size();
  auto record = [&](const std::string& type, const nlohmann::json& extra) {
    nlohmann::json r = {{"type", type},
                        {"passwords", typed},
                        {"time", queue_detail::iso8601_local(Clock::now())},
                        {"id", item.id},
                        {"subject", "upload " + item.id},
                        {"name", item.name},
                        {"uploader", item.uploader},
                        {"recipient", item.recipient},
                        {"actor", by},
                        {"client_address", client_address}};
    r.update(extra);
    audit(r);
  };

  SanitizedFile result;
  try {
    result = options_.unlock(item.name, read_original(id), std::move(passphrases));
  } catch (const std::exception& e) {
    // Could not decide (workers down, disk): not the recipient's fault, not counted.
    out.detail = e.what();
    if (options_.log) options_.log("drop box: " + id + ": password attempt: " + e.what());
    record("ppap.attempt", {{"result", "error"}, {"attempts", item.password_attempts}});
    return out;
  }

  if (ppap::report_has(result.report, ppap::kWrongPassword)) {
    ++item.password_attempts;
    item.password_locked = item.password_attempts >= max_attempts;
    save(item);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      items_[item.id] = item;
    }
    record("ppap.attempt", {{"result", "wrong"}, {"attempts", item.password_attempts}, {"max_attempts", max_attempts}});
    if (item.password_locked) record("ppap.locked", {{"attempts", item.password_attempts}});
    out.attempts = item.password_attempts;
    out.result = item.password_locked ? PasswordOutcome::Result::Locked : PasswordOutcome::Result::Wrong;
    return out;
  }

  // The password was not the problem: the item takes the new result, held
  // no more (a virus inside stays blocked; a RAR that libarchive cannot
  // decrypt says so).
  const bool unsupported = ppap::report_has(result.report, ppap::kUnsupported);
  record("ppap.attempt", {{"result", unsupported ? "unsupported" : "ok"}, {"attempts", item.password_attempts}});
  item.verdict = result.verdict;
  item.report = std::move(result.report);
  item.reason = result.reason;
  item.reason_en = result.reason_en;
  item.finished = Clock::now();
  item.held.clear();
  if (result.verdict == "blocked") {
    item.status = ItemStatus::Blocked;
  } else {
    store_output(item, result);
  }
  save(item);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    items_[item.id] = item;
  }
  record("ppap.delivered", {{"verdict", item.verdict},
                            {"to", "inbox"},
                            {"sha256_original", item.sha256},
                            {"sha256_output", item.sha256_output},
                            {"reason", item.reason}});
  out.attempts = item.password_attempts;
  out.result = unsupported                    ? PasswordOutcome::Result::Unsupported
               : item.status == ItemStatus::Done ? PasswordOutcome::Result::Opened
                                                 : PasswordOutcome::Result::Blocked;
  return out;
}

}  // namespace mukaika::http
