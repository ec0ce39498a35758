// Helpers for unit tests of sanitizers.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sanitizer.h"

namespace mukaika::testing {

// Flags any item containing `marker` (default "INFECTED-TEST-MARKER") as
// infected with signature "Test.Marker"; flags any item containing
// "SCAN-ERROR-MARKER" as a scan error. Everything else is clean.
class MarkerScanner : public Scanner {
 public:
  explicit MarkerScanner(std::string marker = "INFECTED-TEST-MARKER") : marker_(std::move(marker)) {}
  ScanResult scan(std::string_view bytes, std::string_view name) const override;

 private:
  std::string marker_;
};

struct Note {
  std::string path, action;
  Reason reason;
};

class RecordingReport : public ReportSink {
 public:
  void note(const std::string& path, const std::string& action, const Reason& reason) override {
    notes.push_back({path, action, reason});
  }
  std::vector<Note> notes;
};

// Owns everything a Context refers to.
struct TestContext {
  Limits limits;
  MarkerScanner scanner;
  RecordingReport report;
  Context ctx;
  explicit TestContext(Language lang = Language::Ja);
};

// Reads a file under samples/ (path relative to samples/). Throws if missing.
std::string read_sample(const std::string& relative);

}  // namespace mukaika::testing
