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

struct Config {
  std::string source;  // "embedded default" or the file's path
  Language language = Language::Ja;
  Limits limits;
  AntivirusConfig antivirus;
  WorkersConfig workers;
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
