#include "test_support.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mukaika::testing {

ScanResult MarkerScanner::scan(std::string_view bytes, std::string_view) const {
  if (bytes.find("SCAN-ERROR-MARKER") != std::string_view::npos)
    return {ScanResult::Status::Error, "test scan error"};
  if (bytes.find(marker_) != std::string_view::npos) return {ScanResult::Status::Infected, "Test.Marker"};
  return {ScanResult::Status::Clean, {}};
}

TestContext::TestContext(Language lang)
    : ctx{limits, scanner, report, lang, std::chrono::steady_clock::now() + std::chrono::seconds(60)} {}

std::string read_sample(const std::string& relative) {
  std::string path = std::string(MUKAIKA_TEST_SAMPLES) + "/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read sample " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace mukaika::testing
