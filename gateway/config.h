// Configuration: TOML (toml++). An embedded default applies; a file given
// with --config overrides it key by key. Every problem in a file is reported
// with its line, all at once, so an operator fixes them in one go.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "registry.h"
#include "sanitizer.h"

namespace mukaika {

const char* embedded_default_config();

struct AntivirusConfig {
  std::string database;  // "" = automatic choice
  bool required = true;
  std::string temp_dir;
  std::uint64_t max_scan_bytes = 0;
  std::uint64_t max_file_bytes = 0;
  unsigned max_recursion = 0;
  unsigned max_files = 0;
};

// The sandboxed workers that run the pipeline (gateway/worker).
struct WorkersConfig {
  int count = 0;                       // 0 = one per CPU core
  std::uint64_t memory_mb = 1024;      // address space per worker beyond the shared engine
  int time_limit_seconds = 0;          // wall clock per item; 0 = limits.max_seconds + 10
  int recycle_after = 100;             // items a worker serves before it is replaced
  std::string user = "nobody";         // the workers' user when mukaika runs as root
  bool require_full_sandbox = true;    // refuse to run without network namespace and Landlock
};

// The MTA hop (`mukaika serve`, docs/configuration.md).
struct SmtpConfig {
  std::string listen = "127.0.0.1:2525";  // Internet-zone address to accept mail on
  std::string hostname;                   // greeting and Received; "" = this host's name
  std::vector<std::string> allowed_networks = {"127.0.0.0/8", "::1/128"};  // who may relay
  std::uint64_t max_message_bytes = 52428800;
  int max_recipients = 1000;
  int max_sessions = 500;
  int command_timeout_seconds = 300;
  int data_timeout_seconds = 600;
  std::string tls_certificate, tls_key;  // both set: STARTTLS offered
};

struct RelayConfig {
  std::string next_hop;                           // LGWAN-zone MTA "host:port"; "" = local Maildir
  std::string maildir = "./var/lgwan-maildir";    // where mail goes without a next hop
  std::string bounce_hop;                         // Internet-side MTA for bounces; "" = keep them on hold
  int retry_min_s = 60;                           // first retry after a temporary failure, then doubling
  int retry_max_s = 900;                          // longest wait between retries
  int give_up_after_h = 120;                      // then bounce
  int timeout_seconds = 300;                      // per SMTP command to the next hop
  bool blocked_notice = true;                     // tell recipients of a blocked mail
};

// The file drop box and REST API (`mukaika serve`, gateway/http): one HTTP
// listener per zone; nothing the LGWAN listener serves is reachable from
// the Internet listener, and the other way round.
struct HttpListenerConfig {
  std::string listen;
  std::string tls_certificate, tls_key;  // both set: HTTPS only
  // How people reach this listener ("https://mukaika.lgwan.example/"), for
  // links in notice mails; "" = derived from listen. Always ends with "/".
  std::string public_url;
};
struct HttpConfig {
  HttpListenerConfig internet{"127.0.0.1:8080", "", "", ""};  // upload page and upload API
  HttpListenerConfig lgwan{"127.0.0.1:8081", "", "", ""};     // inbox, results, downloads, /metrics
  std::uint64_t max_upload_bytes = 104857600;  // one upload request, all its files
  int max_connections = 256;                   // per listener
  int request_timeout_seconds = 60;            // a request (headers, or 64 KiB of body) must arrive within this
  int session_idle_minutes = 30;               // signed-in sessions end after this much idleness
  int signin_max_failures = 5;                 // then that account or address waits
  int signin_lock_minutes = 15;
};
struct DropBoxConfig {
  std::string dir = "./var/dropbox";
  int keep_days = 14;                    // sanitized files kept for download
  std::vector<std::string> departments;  // recipients besides staff accounts
};
// PPAP (docs/ppap.md): recipients type the password of a held archive or
// PDF on the LGWAN page; the original is opened and sanitized in a worker.
struct PpapConfig {
  bool enabled = true;
  int max_attempts = 5;  // wrong passwords per held item or mail, then locked
};
// A person who signs in to a web page. Roles: "uploader" (Internet page),
// "recipient" (LGWAN inbox); issue 8 adds approver, administrator, auditor.
struct AccountConfig {
  std::string name;
  std::string display_name;
  std::string password_hash;  // Argon2id, as `mukaika passwd` prints it
  std::vector<std::string> roles;
  std::string department;     // a recipient also sees what is sent to their department
  std::vector<std::string> mail;  // mail addresses that are this person's (lower case): their mails' originals and held archives
};
// A system that posts files over the REST API with a Bearer token.
struct ApiClientConfig {
  std::string name;
  std::string token_hash;  // "sha256:<hex>" of the token
};
// Release of originals with approval (原本取り出し, docs/release.md).
struct ReleaseConfig {
  std::string dir = "./var/releases";  // one JSON file per request
  int download_hours = 24;             // how long an approved original can be downloaded
  bool deliver_to_lgwan = false;       // true: downloadable on the LGWAN page (a policy exception, audited)
};
struct QuarantineConfig {
  std::string dir = "./var/quarantine";
  int keep_days = 14;
};

struct Config {
  std::string source;  // "embedded default" or the file's path
  Language language = Language::Ja;
  Limits limits;
  AntivirusConfig antivirus;
  WorkersConfig workers;
  SmtpConfig smtp;
  RelayConfig relay;
  std::string spool_dir = "./var/spool";
  QuarantineConfig quarantine;
  std::string audit_log = "./var/audit.jsonl";
  HttpConfig http;
  DropBoxConfig dropbox;
  ReleaseConfig release;
  PpapConfig ppap;
  std::vector<AccountConfig> accounts;
  std::vector<ApiClientConfig> api_clients;
  std::map<Kind, std::vector<std::string>> policy_file;
  std::map<Kind, std::vector<std::string>> policy_body;
  toml::table sanitizer_options;  // name -> options table
};

struct ConfigProblem {
  std::string file;
  int line = 0;  // 0 when the problem has no single line (e.g. a missing file)
  std::string message;
  std::string to_string() const;
};

// Every problem in `path` (none: the file is good). Checks syntax, keys,
// types, ranges, sanitizer names and their options against `registry`.
std::vector<ConfigProblem> check_config_file(const std::string& path, const SanitizerRegistry& registry);

// The effective configuration. Throws ConfigError listing every problem.
Config load_config(const std::optional<std::string>& path, const SanitizerRegistry& registry);

}  // namespace mukaika
