// The sanitizer registry: names to factories, filled in one explicit place
// (register_builtin_sanitizers) rather than by static initialisers, which
// static libraries silently drop.
//
// A factory gets the sanitizer's own options table from the configuration
// (`[sanitizer."html.to_text"]`) and throws ConfigError for a bad option.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

// A problem in the configuration that the operator must fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using SanitizerFactory = std::function<std::unique_ptr<Sanitizer>(const toml::table& options)>;

class SanitizerRegistry {
 public:
  void add(const std::string& name, SanitizerFactory factory);
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;
  // Throws ConfigError for an unknown name or bad options.
  std::unique_ptr<Sanitizer> create(const std::string& name, const toml::table& options) const;

 private:
  std::map<std::string, SanitizerFactory> factories_;
};

// A sanitizer option naming a charset iconv knows ("fallback_charset"), or
// ConfigError saying so.
std::string charset_option(const toml::node& value, const std::string& key);

// Every sanitizer that ships with mukaika is registered here, one line each.
void register_builtin_sanitizers(SanitizerRegistry& registry);

}  // namespace mukaika
