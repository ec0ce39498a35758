#include "report.h"

namespace mukaika {

nlohmann::json report_item(const std::string& input, const std::string& output, const PipelineResult& result) {
  nlohmann::json actions = nlohmann::json::array();
  for (const auto& a : result.actions) {
    nlohmann::json j{{"path", a.path}, {"action", a.action}, {"code", a.code}, {"reason", a.reason}};
    if (!a.virus.empty()) j["virus"] = a.virus;
    actions.push_back(std::move(j));
  }
  nlohmann::json item{
      {"input", input},
      {"verdict", std::string(to_string(result.verdict))},
      {"output", output.empty() ? nlohmann::json(nullptr) : nlohmann::json(output)},
      {"sha256_in", result.sha256_in},
      {"sha256_out", result.sha256_out.empty() ? nlohmann::json(nullptr) : nlohmann::json(result.sha256_out)},
      {"detected_type", result.detected_type},
      {"kind", std::string(to_string(result.kind))},
      {"actions", std::move(actions)},
  };
  if (!result.item.virus.empty()) item["virus"] = result.item.virus;
  return item;
}

}  // namespace mukaika
