// libFuzzer target for the mail path: any bytes, named as a .eml, through
// the whole pipeline with the embedded default policy (mail.rebuild, the
// charset decoders, html.to_text, text.normalize). A scanner stand-in keeps
// each run fast; the target is the parsing, not the signatures.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"

namespace {

class CleanScanner : public mukaika::Scanner {
 public:
  mukaika::ScanResult scan(std::string_view, std::string_view) const override {
    return {mukaika::ScanResult::Status::Clean, {}};
  }
};

struct Harness {
  mukaika::SanitizerRegistry registry;
  mukaika::Config config;
  CleanScanner scanner;
  std::unique_ptr<mukaika::Policy> policy;
  std::unique_ptr<mukaika::Pipeline> pipeline;
  Harness() {
    mukaika::register_builtin_sanitizers(registry);
    config = mukaika::load_config(std::nullopt, registry);
    config.limits.max_seconds = std::chrono::seconds(10);
    policy = std::make_unique<mukaika::Policy>(config, registry);
    pipeline = std::make_unique<mukaika::Pipeline>(*policy, scanner, config.limits, mukaika::Language::Ja);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness harness;
  mukaika::Item item;
  item.bytes.assign(reinterpret_cast<const char*>(data), size);
  item.name = "fuzz.eml";
  auto result = harness.pipeline->run(std::move(item));
  // A delivered result must never be empty of a verdict's evidence.
  if (result.verdict != mukaika::PipelineResult::Verdict::Blocked && result.sha256_out.empty()) __builtin_trap();
  return 0;
}
