#include "config.h"

#include <pwd.h>

#include <filesystem>
#include <set>
#include <sstream>

namespace mukaika {

namespace {

const toml::table& options_or_empty(const toml::table& sanitizers, const std::string& name) {
  static const toml::table empty;
  if (const auto* t = sanitizers[name].as_table()) return *t;
  return empty;
}

class Checker {
 public:
  Checker(std::string file, const SanitizerRegistry& registry) : file_(std::move(file)), registry_(registry) {}

  void problem(const toml::node* node, std::string message) {
    int line = node ? static_cast<int>(node->source().begin.line) : 0;
    problems_.push_back({file_, line, std::move(message)});
  }

  // Validates `user` (the file's own table: lines point into it) and the
  // merged result `merged`.
  void check(const toml::table& user, const toml::table& merged) {
    static const std::set<std::string> kTop{"language", "limits",   "antivirus",  "workers", "smtp",
                                            "relay",    "spool",    "quarantine", "audit",   "policy",
                                            "sanitizer", "http",    "dropbox",    "accounts", "api_clients", "release", "ppap"};
    for (const auto& [key, node] : user) {
      if (!kTop.count(std::string(key.str())))
        problem(&node, "unknown key \"" + std::string(key.str()) +
                           "\" (known: language, limits, antivirus, workers, smtp, relay, spool, quarantine, audit, "
                           "policy, sanitizer, http, dropbox, release, ppap, accounts, api_clients)");
    }
    if (const auto* lang = user.get("language")) {
      auto v = lang->value<std::string>();
      if (!v || (*v != "ja" && *v != "en")) problem(lang, "language must be \"ja\" or \"en\"");
    }
    check_table(user, "limits",
                {{"max_item_bytes", 1, INT64_MAX},
                 {"max_total_bytes", 1, INT64_MAX},
                 {"max_text_bytes", 1, INT64_MAX},
                 {"max_depth", 1, 64},
                 {"max_parts", 1, 1000000},
                 {"max_seconds", 1, 86400},
                 {"max_name_chars", 16, 255}},
                {}, {});
    check_table(user, "antivirus",
                {{"max_scan_bytes", 1, INT64_MAX},
                 {"max_file_bytes", 1, INT64_MAX},
                 {"max_recursion", 1, 64},
                 {"max_files", 1, 10000000}},
                {"database", "temp_dir"}, {"required"});
    check_table(user, "workers",
                {{"count", 0, 256},
                 {"memory_mb", 64, 1048576},
                 {"time_limit_seconds", 0, 86400},
                 {"recycle_after", 1, 1000000}},
                {"user"}, {"require_full_sandbox"});
    check_workers(user, merged);
    check_table(user, "smtp",
                {{"max_message_bytes", 1024, INT64_MAX},
                 {"max_recipients", 1, 100000},
                 {"max_sessions", 1, 100000},
                 {"command_timeout_seconds", 1, 3600},
                 {"data_timeout_seconds", 1, 3600}},
                {"listen", "hostname", "tls_certificate", "tls_key"}, {}, {"allowed_networks"});
    check_table(user, "relay",
                {{"retry_min_s", 1, 86400},
                 {"retry_max_s", 1, 86400},
                 {"give_up_after_h", 1, 8760},
                 {"timeout_seconds", 1, 3600}},
                {"next_hop", "maildir", "bounce_hop"}, {"blocked_notice"});
    check_table(user, "spool", {}, {"dir"}, {});
    check_table(user, "quarantine", {{"keep_days", 1, 3650}}, {"dir"}, {});
    check_table(user, "audit", {}, {"log"}, {});
    check_mta(user, merged);
    check_http(user, merged);
    check_policy(user, merged);
    check_sanitizers(user, merged);
    // libclamav only partly scans a zip member larger than its file limit
    // and still answers clean, so no item may be larger than what it scans.
    auto item = merged["limits"]["max_item_bytes"].value<std::int64_t>();
    auto scan = merged["antivirus"]["max_file_bytes"].value<std::int64_t>();
    if (item && scan && *item > *scan) {
      const toml::node* at = user["limits"]["max_item_bytes"].node();
      if (!at) at = user["antivirus"]["max_file_bytes"].node();
      problem(at, "limits.max_item_bytes (" + std::to_string(*item) + ") must not exceed antivirus.max_file_bytes (" +
                      std::to_string(*scan) + "): larger items could not be scanned whole");
    }
  }

  std::vector<ConfigProblem> take() { return std::move(problems_); }

 private:
  struct IntKey {
    const char* name;
    std::int64_t min, max;
  };

  void check_table(const toml::table& user, const char* section, std::vector<IntKey> ints,
                   std::vector<const char*> strings, std::vector<const char*> bools,
                   std::vector<const char*> string_lists = {}) {
    const toml::node* node = user.get(section);
    if (!node) return;
    const auto* t = node->as_table();
    if (!t) {
      problem(node, std::string("[") + section + "] must be a table");
      return;
    }
    for (const auto& [key, value] : *t) {
      std::string k(key.str());
      bool known = false;
      for (const auto& i : ints) {
        if (k != i.name) continue;
        known = true;
        auto v = value.value_exact<std::int64_t>();
        if (!v)
          problem(&value, std::string(section) + "." + k + " must be an integer");
        else if (*v < i.min || *v > i.max)
          problem(&value, std::string(section) + "." + k + " must be between " + std::to_string(i.min) + " and " +
                              std::to_string(i.max) + " (is " + std::to_string(*v) + ")");
      }
      for (const char* s : strings) {
        if (k != s) continue;
        known = true;
        if (!value.is_string()) problem(&value, std::string(section) + "." + k + " must be a string");
      }
      for (const char* b : bools) {
        if (k != b) continue;
        known = true;
        if (!value.is_boolean()) problem(&value, std::string(section) + "." + k + " must be true or false");
      }
      for (const char* l : string_lists) {
        if (k != l) continue;
        known = true;
        const auto* list = value.as_array();
        if (!list || !list->is_homogeneous(toml::node_type::string))
          problem(&value, std::string(section) + "." + k + " must be a list of strings");
      }
      if (!known) problem(&value, "unknown key " + std::string(section) + "." + k);
    }
  }

  // "host:port" with a port; "[v6]:port" for IPv6.
  static bool valid_endpoint(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size()) return false;
    const std::string port = s.substr(colon + 1);
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
    return std::stoi(port) <= 65535;
  }

  void check_mta(const toml::table& user, const toml::table& merged) {
    for (const char* key : {"smtp.listen", "relay.next_hop", "relay.bounce_hop"}) {
      const toml::node* at = user.at_path(key).node();
      auto v = merged.at_path(key).value<std::string>();
      if (!at || !v) continue;
      const bool may_be_empty = std::string(key) != "smtp.listen";
      if (v->empty() ? !may_be_empty : !valid_endpoint(*v))
        problem(at, std::string(key) + " must be \"host:port\" (\"[::1]:port\" for IPv6)" +
                        (may_be_empty ? " or \"\"" : "") + " (is \"" + *v + "\")");
    }
    auto lo = merged.at_path("relay.retry_min_s").value<std::int64_t>();
    auto hi = merged.at_path("relay.retry_max_s").value<std::int64_t>();
    if (lo && hi && *lo > *hi) {
      const toml::node* at = user.at_path("relay.retry_min_s").node();
      if (!at) at = user.at_path("relay.retry_max_s").node();
      problem(at, "relay.retry_min_s (" + std::to_string(*lo) + ") must not exceed relay.retry_max_s (" +
                      std::to_string(*hi) + ")");
    }
    const bool cert = !merged.at_path("smtp.tls_certificate").value_or(std::string()).empty();
    const bool key = !merged.at_path("smtp.tls_key").value_or(std::string()).empty();
    if (cert != key) {
      const toml::node* at = user.at_path(cert ? "smtp.tls_certificate" : "smtp.tls_key").node();
      problem(at, "smtp.tls_certificate and smtp.tls_key go together (STARTTLS needs both)");
    }
  }

  void check_http(const toml::table& user, const toml::table& merged) {
    if (const toml::node* node = user.get("http")) {
      if (const auto* t = node->as_table()) {
        // check_table knows flat tables; the two listeners are checked below.
        toml::table flat = *t;
        flat.erase("internet");
        flat.erase("lgwan");
        toml::table wrapper;
        wrapper.insert("http", flat);
        check_table(wrapper, "http",
                    {{"max_upload_bytes", 1024, INT64_MAX},
                     {"max_connections", 1, 100000},
                     {"request_timeout_seconds", 1, 3600},
                     {"session_idle_minutes", 1, 1440},
                     {"signin_max_failures", 1, 1000},
                     {"signin_lock_minutes", 1, 1440}},
                    {}, {});
      } else {
        problem(node, "[http] must be a table");
      }
    }
    for (const char* zone : {"internet", "lgwan"}) {
      const std::string section = std::string("http.") + zone;
      const toml::node* node = user.at_path(section).node();
      if (!node) continue;
      const auto* t = node->as_table();
      if (!t) {
        problem(node, "[" + section + "] must be a table");
        continue;
      }
      for (const auto& [key, value] : *t) {
        const std::string k(key.str());
        if (k != "listen" && k != "tls_certificate" && k != "tls_key" && k != "public_url")
          problem(&value, "unknown key " + section + "." + k + " (known: listen, tls_certificate, tls_key, public_url)");
        else if (!value.is_string())
          problem(&value, section + "." + k + " must be a string");
        else if (k == "public_url") {
          const std::string url = *value.value<std::string>();
          if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            problem(&value, section + ".public_url must start with http:// or https:// (is \"" + url + "\")");
        }
      }
      auto listen = merged.at_path(section + ".listen").value<std::string>();
      if (listen && !listen->empty() && !valid_endpoint(*listen))
        problem(user.at_path(section + ".listen").node(),
                section + ".listen must be \"host:port\" (\"[::1]:port\" for IPv6) or \"\" (off) (is \"" + *listen +
                    "\")");
      const bool cert = !merged.at_path(section + ".tls_certificate").value_or(std::string()).empty();
      const bool key = !merged.at_path(section + ".tls_key").value_or(std::string()).empty();
      if (cert != key)
        problem(user.at_path(section + (cert ? ".tls_certificate" : ".tls_key")).node(),
                section + ".tls_certificate and " + section + ".tls_key go together (HTTPS needs both)");
    }
    check_table(user, "dropbox", {{"keep_days", 1, 3650}}, {"dir"}, {}, {"departments"});
    check_table(user, "release", {{"download_hours", 1, 24 * 30}}, {"dir"}, {"deliver_to_lgwan"});
    check_table(user, "ppap", {{"max_attempts", 1, 100}}, {}, {"enabled"});
    static const std::set<std::string> kRoles{"uploader", "recipient", "approver", "administrator", "auditor"};
    if (const toml::node* node = user.get("accounts")) {
      const auto* list = node->as_array();
      if (!list) problem(node, "accounts must be a list of tables ([[accounts]])");
      std::set<std::string> names;
      for (std::size_t i = 0; list && i < list->size(); ++i) {
        const toml::node& entry = *list->get(i);
        const auto* t = entry.as_table();
        if (!t) {
          problem(&entry, "accounts: each entry must be a table ([[accounts]])");
          continue;
        }
        for (const auto& [key, value] : *t) {
          const std::string k(key.str());
          if (k == "roles") {
            const auto* roles = value.as_array();
            if (!roles || !roles->is_homogeneous(toml::node_type::string)) {
              problem(&value, "accounts.roles must be a list of strings");
              continue;
            }
            for (const auto& r : *roles)
              if (!kRoles.count(*r.value<std::string>()))
                problem(&r, "accounts.roles: unknown role \"" + *r.value<std::string>() +
                                "\" (known: uploader, recipient, approver, administrator, auditor)");
          } else if (k == "name" || k == "display_name" || k == "password_hash" || k == "department") {
            if (!value.is_string()) problem(&value, "accounts." + k + " must be a string");
          } else if (k == "mail") {
            const auto* addresses = value.as_array();
            if (!addresses || !addresses->is_homogeneous(toml::node_type::string)) {
              problem(&value, "accounts.mail must be a list of mail addresses");
              continue;
            }
            for (const auto& a : *addresses) {
              const std::string address = *a.value<std::string>();
              const auto at = address.find('@');
              if (at == std::string::npos || at == 0 || at + 1 == address.size() ||
                  address.find_first_of(" <>\t\r\n") != std::string::npos)
                problem(&a, "accounts.mail: \"" + address + "\" is not a mail address (name@domain)");
            }
          } else {
            problem(&value, "unknown key accounts." + k +
                                " (known: name, display_name, password_hash, roles, department, mail)");
          }
        }
        auto name = (*t)["name"].value<std::string>();
        if (!name || name->empty())
          problem(&entry, "accounts: every account needs a name");
        else if (!names.insert(*name).second)
          problem(&entry, "accounts: the name \"" + *name + "\" is used twice");
        auto hash = (*t)["password_hash"].value<std::string>();
        if (!hash || hash->rfind("$argon2id$", 0) != 0)
          problem(&entry, "accounts: \"" + name.value_or("?") +
                              "\" needs password_hash, an Argon2id hash (make one with `mukaika passwd`)");
      }
    }
    if (const toml::node* node = user.get("api_clients")) {
      const auto* list = node->as_array();
      if (!list) problem(node, "api_clients must be a list of tables ([[api_clients]])");
      for (std::size_t i = 0; list && i < list->size(); ++i) {
        const toml::node& entry = *list->get(i);
        const auto* t = entry.as_table();
        if (!t) {
          problem(&entry, "api_clients: each entry must be a table ([[api_clients]])");
          continue;
        }
        for (const auto& [key, value] : *t) {
          const std::string k(key.str());
          if (k != "name" && k != "token_hash")
            problem(&value, "unknown key api_clients." + k + " (known: name, token_hash)");
          else if (!value.is_string())
            problem(&value, "api_clients." + k + " must be a string");
        }
        auto hash = (*t)["token_hash"].value<std::string>();
        if (!hash || hash->size() != 71 || hash->rfind("sha256:", 0) != 0 ||
            hash->find_first_not_of("0123456789abcdef", 7) != std::string::npos)
          problem(&entry, "api_clients: token_hash must be \"sha256:\" and 64 lowercase hex digits "
                          "(make one with `mukaika passwd --token`)");
      }
    }
  }

  void check_workers(const toml::table& user, const toml::table& merged) {
    // A worker's time limit below the pipeline's would kill items the
    // pipeline was about to block with a clearer reason.
    auto limit = merged["workers"]["time_limit_seconds"].value<std::int64_t>();
    auto pipeline = merged["limits"]["max_seconds"].value<std::int64_t>();
    if (limit && pipeline && *limit != 0 && *limit < *pipeline) {
      const toml::node* at = user["workers"]["time_limit_seconds"].node();
      if (!at) at = user["limits"]["max_seconds"].node();
      problem(at, "workers.time_limit_seconds (" + std::to_string(*limit) + ") must be 0 (automatic) or at least "
                  "limits.max_seconds (" + std::to_string(*pipeline) + ")");
    }
    if (auto name = merged["workers"]["user"].value<std::string>()) {
      const toml::node* at = user["workers"]["user"].node();
      const passwd* pw = name->empty() ? nullptr : ::getpwnam(name->c_str());
      if (!pw)
        problem(at, "workers.user: no such user \"" + *name + "\" (workers run as this user when mukaika runs as root)");
      else if (pw->pw_uid == 0)
        problem(at, "workers.user must not be root: workers parse untrusted content");
    }
  }

  void check_policy(const toml::table& user, const toml::table& merged) {
    const toml::node* node = user.get("policy");
    if (node && !node->is_table()) {
      problem(node, "[policy] must be a table");
      return;
    }
    if (node) {
      for (const auto& [key, value] : *node->as_table()) {
        std::string k(key.str());
        if (k != "file" && k != "body") problem(&value, "unknown key policy." + k + " (known: policy.file, policy.body)");
      }
    }
    for (const char* role : {"file", "body"}) {
      const toml::node* user_role = node ? node->as_table()->get(role) : nullptr;
      const auto* merged_role = merged["policy"][role].as_table();
      if (!merged_role) {
        problem(user_role, std::string("[policy.") + role + "] must be a table");
        continue;
      }
      for (const auto& [key, value] : *merged_role) {
        const toml::node* at = user_role && user_role->is_table() ? user_role->as_table()->get(key.str()) : nullptr;
        if (!at && user_role) at = user_role;
        Kind kind;
        std::string name = std::string("policy.") + role + "." + std::string(key.str());
        if (!kind_from_string(key.str(), kind) || kind == Kind::Empty) {
          problem(at, "unknown kind in " + name + " (known: " + kind_names() + ")");
          continue;
        }
        const auto* steps = value.as_array();
        if (!steps || steps->empty()) {
          problem(at, name + " must be a non-empty list of sanitizer names, \"remove\" or \"block\"");
          continue;
        }
        for (std::size_t i = 0; i < steps->size(); ++i) {
          auto step = (*steps)[i].value<std::string>();
          if (!step) {
            problem(at, name + "[" + std::to_string(i) + "] must be a string");
            continue;
          }
          if (*step == "remove" || *step == "block") {
            if (steps->size() != 1) problem(at, name + ": \"" + *step + "\" must stand alone in its list");
            continue;
          }
          if (!registry_.contains(*step)) {
            problem(at, name + ": unknown sanitizer \"" + *step + "\" (known: " + sanitizer_names() + ")");
            continue;
          }
          try {
            auto s = registry_.create(*step, options_or_empty(*merged["sanitizer"].as_table(), *step));
            bool handles = false;
            for (Kind k : s->handles()) handles = handles || k == kind;
            if (!handles) problem(at, name + ": sanitizer \"" + *step + "\" does not handle kind \"" +
                                          std::string(to_string(kind)) + "\"");
          } catch (const ConfigError&) {
            // Reported once, at the sanitizer's own table, by check_sanitizers().
          }
        }
      }
    }
  }

  void check_sanitizers(const toml::table& user, const toml::table& merged) {
    const toml::node* node = user.get("sanitizer");
    if (node && !node->is_table()) {
      problem(node, "[sanitizer] must be a table");
      return;
    }
    const auto* all = merged["sanitizer"].as_table();
    if (!all) return;
    for (const auto& [key, value] : *all) {
      std::string name(key.str());
      const toml::node* at = node ? node->as_table()->get(name) : nullptr;
      if (!registry_.contains(name)) {
        problem(at, "unknown sanitizer [sanitizer.\"" + name + "\"] (known: " + sanitizer_names() + ")");
        continue;
      }
      if (!value.is_table()) {
        problem(at, "[sanitizer.\"" + name + "\"] must be a table");
        continue;
      }
      try {
        registry_.create(name, *value.as_table());
      } catch (const ConfigError& e) {
        problem(at, "[sanitizer.\"" + name + "\"]: " + e.what());
      }
    }
  }

  std::string kind_names() const {
    std::string out;
    for (Kind k : all_kinds())
      if (k != Kind::Empty) out += (out.empty() ? "" : ", ") + std::string(to_string(k));
    return out;
  }
  std::string sanitizer_names() const {
    std::string out;
    for (const auto& n : registry_.names()) out += (out.empty() ? "" : ", ") + n;
    return out;
  }

  std::string file_;
  const SanitizerRegistry& registry_;
  std::vector<ConfigProblem> problems_;
};

// Key-by-key override: tables merge recursively, everything else replaces.
void merge_into(toml::table& base, const toml::table& over) {
  for (const auto& [key, value] : over) {
    auto* existing = base.get(key.str());
    if (existing && existing->is_table() && value.is_table()) {
      merge_into(*existing->as_table(), *value.as_table());
    } else {
      base.insert_or_assign(key.str(), value);
    }
  }
}

std::map<Kind, std::vector<std::string>> read_policy(const toml::table& merged, const char* role) {
  std::map<Kind, std::vector<std::string>> out;
  if (const auto* t = merged["policy"][role].as_table()) {
    for (const auto& [key, value] : *t) {
      Kind kind;
      if (!kind_from_string(key.str(), kind)) continue;
      std::vector<std::string> steps;
      if (const auto* a = value.as_array())
        for (const auto& s : *a)
          if (auto v = s.value<std::string>()) steps.push_back(*v);
      out[kind] = std::move(steps);
    }
  }
  return out;
}

Config build(const toml::table& merged, std::string source) {
  Config c;
  c.source = std::move(source);
  c.language = merged["language"].value_or(std::string("ja")) == "en" ? Language::En : Language::Ja;
  auto lim = merged["limits"];
  c.limits.max_item_bytes = static_cast<std::uint64_t>(lim["max_item_bytes"].value_or<std::int64_t>(0));
  c.limits.max_total_bytes = static_cast<std::uint64_t>(lim["max_total_bytes"].value_or<std::int64_t>(0));
  c.limits.max_text_bytes = static_cast<std::uint64_t>(lim["max_text_bytes"].value_or<std::int64_t>(0));
  c.limits.max_depth = lim["max_depth"].value_or(c.limits.max_depth);
  c.limits.max_parts = lim["max_parts"].value_or(c.limits.max_parts);
  c.limits.max_seconds = std::chrono::seconds(lim["max_seconds"].value_or<std::int64_t>(c.limits.max_seconds.count()));
  c.limits.max_name_chars = lim["max_name_chars"].value_or(c.limits.max_name_chars);
  auto av = merged["antivirus"];
  c.antivirus.database = av["database"].value_or(std::string());
  c.antivirus.required = av["required"].value_or(true);
  c.antivirus.temp_dir = av["temp_dir"].value_or(std::string());
  c.antivirus.max_scan_bytes = static_cast<std::uint64_t>(av["max_scan_bytes"].value_or<std::int64_t>(0));
  c.antivirus.max_file_bytes = static_cast<std::uint64_t>(av["max_file_bytes"].value_or<std::int64_t>(0));
  c.antivirus.max_recursion = av["max_recursion"].value_or(16u);
  c.antivirus.max_files = av["max_files"].value_or(10000u);
  auto wk = merged["workers"];
  c.workers.count = wk["count"].value_or(c.workers.count);
  c.workers.memory_mb = static_cast<std::uint64_t>(wk["memory_mb"].value_or<std::int64_t>(1024));
  c.workers.time_limit_seconds = wk["time_limit_seconds"].value_or(c.workers.time_limit_seconds);
  c.workers.recycle_after = wk["recycle_after"].value_or(c.workers.recycle_after);
  c.workers.user = wk["user"].value_or(c.workers.user);
  c.workers.require_full_sandbox = wk["require_full_sandbox"].value_or(c.workers.require_full_sandbox);
  auto smtp = merged["smtp"];
  c.smtp.listen = smtp["listen"].value_or(c.smtp.listen);
  c.smtp.hostname = smtp["hostname"].value_or(c.smtp.hostname);
  c.smtp.max_message_bytes =
      static_cast<std::uint64_t>(smtp["max_message_bytes"].value_or<std::int64_t>(c.smtp.max_message_bytes));
  c.smtp.max_recipients = smtp["max_recipients"].value_or(c.smtp.max_recipients);
  c.smtp.max_sessions = smtp["max_sessions"].value_or(c.smtp.max_sessions);
  c.smtp.command_timeout_seconds = smtp["command_timeout_seconds"].value_or(c.smtp.command_timeout_seconds);
  c.smtp.data_timeout_seconds = smtp["data_timeout_seconds"].value_or(c.smtp.data_timeout_seconds);
  c.smtp.tls_certificate = smtp["tls_certificate"].value_or(std::string());
  c.smtp.tls_key = smtp["tls_key"].value_or(std::string());
  if (const auto* nets = smtp["allowed_networks"].as_array()) {
    c.smtp.allowed_networks.clear();
    for (const auto& n : *nets)
      if (auto s = n.value<std::string>()) c.smtp.allowed_networks.push_back(*s);
  }
  auto relay = merged["relay"];
  c.relay.next_hop = relay["next_hop"].value_or(std::string());
  c.relay.maildir = relay["maildir"].value_or(c.relay.maildir);
  c.relay.bounce_hop = relay["bounce_hop"].value_or(std::string());
  c.relay.retry_min_s = relay["retry_min_s"].value_or(c.relay.retry_min_s);
  c.relay.retry_max_s = relay["retry_max_s"].value_or(c.relay.retry_max_s);
  c.relay.give_up_after_h = relay["give_up_after_h"].value_or(c.relay.give_up_after_h);
  c.relay.timeout_seconds = relay["timeout_seconds"].value_or(c.relay.timeout_seconds);
  c.relay.blocked_notice = relay["blocked_notice"].value_or(c.relay.blocked_notice);
  c.spool_dir = merged["spool"]["dir"].value_or(c.spool_dir);
  c.quarantine.dir = merged["quarantine"]["dir"].value_or(c.quarantine.dir);
  c.quarantine.keep_days = merged["quarantine"]["keep_days"].value_or(c.quarantine.keep_days);
  c.audit_log = merged["audit"]["log"].value_or(c.audit_log);
  auto http = merged["http"];
  for (auto [zone, out] : {std::pair{"internet", &c.http.internet}, std::pair{"lgwan", &c.http.lgwan}}) {
    out->listen = http[zone]["listen"].value_or(out->listen);
    out->tls_certificate = http[zone]["tls_certificate"].value_or(std::string());
    out->tls_key = http[zone]["tls_key"].value_or(std::string());
    out->public_url = http[zone]["public_url"].value_or(std::string());
    if (out->public_url.empty() && !out->listen.empty())
      out->public_url = std::string(out->tls_certificate.empty() ? "http://" : "https://") + out->listen + "/";
    if (!out->public_url.empty() && out->public_url.back() != '/') out->public_url += '/';
  }
  c.http.max_upload_bytes =
      static_cast<std::uint64_t>(http["max_upload_bytes"].value_or<std::int64_t>(c.http.max_upload_bytes));
  c.http.max_connections = http["max_connections"].value_or(c.http.max_connections);
  c.http.request_timeout_seconds = http["request_timeout_seconds"].value_or(c.http.request_timeout_seconds);
  c.http.session_idle_minutes = http["session_idle_minutes"].value_or(c.http.session_idle_minutes);
  c.http.signin_max_failures = http["signin_max_failures"].value_or(c.http.signin_max_failures);
  c.http.signin_lock_minutes = http["signin_lock_minutes"].value_or(c.http.signin_lock_minutes);
  c.dropbox.dir = merged["dropbox"]["dir"].value_or(c.dropbox.dir);
  c.dropbox.keep_days = merged["dropbox"]["keep_days"].value_or(c.dropbox.keep_days);
  c.ppap.enabled = merged["ppap"]["enabled"].value_or(c.ppap.enabled);
  c.ppap.max_attempts = merged["ppap"]["max_attempts"].value_or(c.ppap.max_attempts);
  if (const auto* deps = merged["dropbox"]["departments"].as_array())
    for (const auto& d : *deps)
      if (auto s = d.value<std::string>()) c.dropbox.departments.push_back(*s);
  c.release.dir = merged["release"]["dir"].value_or(c.release.dir);
  c.release.download_hours = merged["release"]["download_hours"].value_or(c.release.download_hours);
  c.release.deliver_to_lgwan = merged["release"]["deliver_to_lgwan"].value_or(c.release.deliver_to_lgwan);
  if (const auto* list = merged["accounts"].as_array())
    for (const auto& entry : *list) {
      const auto* t = entry.as_table();
      if (!t) continue;
      AccountConfig a;
      a.name = (*t)["name"].value_or(std::string());
      a.display_name = (*t)["display_name"].value_or(a.name);
      a.password_hash = (*t)["password_hash"].value_or(std::string());
      a.department = (*t)["department"].value_or(std::string());
      if (const auto* roles = (*t)["roles"].as_array())
        for (const auto& r : *roles)
          if (auto s = r.value<std::string>()) a.roles.push_back(*s);
      if (const auto* addresses = (*t)["mail"].as_array())
        for (const auto& m : *addresses)
          if (auto s = m.value<std::string>()) {
            std::string lower = *s;
            for (char& ch : lower)
              if (ch >= 'A' && ch <= 'Z') ch = char(ch - 'A' + 'a');
            a.mail.push_back(std::move(lower));
          }
      c.accounts.push_back(std::move(a));
    }
  if (const auto* list = merged["api_clients"].as_array())
    for (const auto& entry : *list) {
      const auto* t = entry.as_table();
      if (!t) continue;
      c.api_clients.push_back({(*t)["name"].value_or(std::string()), (*t)["token_hash"].value_or(std::string())});
    }
  c.policy_file = read_policy(merged, "file");
  c.policy_body = read_policy(merged, "body");
  if (const auto* s = merged["sanitizer"].as_table()) c.sanitizer_options = *s;
  return c;
}

toml::table parse_default() {
  return toml::parse(std::string_view(embedded_default_config()), std::string_view("embedded default"));
}

struct Loaded {
  toml::table user;
  toml::table merged;
  std::vector<ConfigProblem> problems;
};

Loaded load(const std::string& path, const SanitizerRegistry& registry) {
  Loaded l;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    l.problems.push_back({path, 0, "cannot read the configuration file (it does not exist or is not a regular file)"});
    return l;
  }
  try {
    l.user = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    l.problems.push_back({path, static_cast<int>(e.source().begin.line), std::string(e.description())});
    return l;
  }
  l.merged = parse_default();
  merge_into(l.merged, l.user);
  Checker checker(path, registry);
  checker.check(l.user, l.merged);
  l.problems = checker.take();
  return l;
}

}  // namespace

std::string ConfigProblem::to_string() const {
  std::ostringstream s;
  s << file;
  if (line > 0) s << ":" << line;
  s << ": " << message;
  return s.str();
}

std::vector<ConfigProblem> check_config_file(const std::string& path, const SanitizerRegistry& registry) {
  return load(path, registry).problems;
}

Config load_config(const std::optional<std::string>& path, const SanitizerRegistry& registry) {
  if (!path) {
    toml::table merged = parse_default();
    Checker checker("embedded default", registry);
    checker.check(merged, merged);
    auto problems = checker.take();
    if (!problems.empty()) throw ConfigError("embedded default configuration: " + problems.front().to_string());
    return build(merged, "embedded default");
  }
  Loaded l = load(*path, registry);
  if (!l.problems.empty()) {
    std::string all;
    for (const auto& p : l.problems) all += (all.empty() ? "" : "\n") + p.to_string();
    throw ConfigError(all);
  }
  return build(l.merged, *path);
}

}  // namespace mukaika
