// Policy: for each role (body part or file) and kind, the ordered chain of
// steps configured for it. Built at start-up from the configuration and the
// registry; a kind with no rule is removed (fail closed). Sanitizer
// instances are created here once and shared read-only afterwards.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "config.h"
#include "registry.h"
#include "sanitizer.h"

namespace mukaika {

struct Step {
  enum class Type { Run, Remove, Block };
  Type type = Type::Remove;
  const Sanitizer* sanitizer = nullptr;  // for Run
};

class Policy {
 public:
  // Throws ConfigError for an unknown sanitizer or one that does not handle
  // the kind it is configured for.
  Policy(const Config& config, const SanitizerRegistry& registry);

  const std::vector<Step>& chain(Role role, Kind kind) const;

  // Why a built-in "remove" or "block" step dropped an item of `kind`.
  static Reason removal_reason(Kind kind);
  static Reason block_reason(Kind kind);

 private:
  std::vector<std::unique_ptr<Sanitizer>> owned_;
  std::map<Kind, std::vector<Step>> file_;
  std::map<Kind, std::vector<Step>> body_;
};

}  // namespace mukaika
