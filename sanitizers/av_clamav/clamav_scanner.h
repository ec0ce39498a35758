// av.clamav: the antivirus engine (libclamav), loaded and compiled once and
// then shared read-only by every thread, as clamav.h intends.
//
// Promises: scan() is thread-safe; "could not scan" (a libclamav error, a
// scan limit exceeded) is ScanResult::Status::Error, never Clean, so the
// pipeline fails closed. The constructor throws ScannerError with a message
// that names the database directory when no signature can be loaded.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sanitizer.h"

namespace mukaika {

class ScannerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClamavOptions {
  std::string database_dir;         // directory with *.cvd/*.cld/*.hdb/*.ndb/... files
  std::string temp_dir;             // libclamav's scratch space; empty = its default
  std::uint64_t max_scan_bytes = 400ull << 20;  // CL_ENGINE_MAX_SCANSIZE
  std::uint64_t max_file_bytes = 100ull << 20;  // CL_ENGINE_MAX_FILESIZE
  unsigned max_recursion = 17;                  // CL_ENGINE_MAX_RECURSION (libclamav default)
  unsigned max_files = 10000;                   // CL_ENGINE_MAX_FILES
};

// True when `dir` holds at least one file libclamav would load as a database.
bool clamav_database_present(const std::string& dir);

class ClamavScanner : public Scanner {
 public:
  explicit ClamavScanner(const ClamavOptions& options);
  ~ClamavScanner() override;
  ClamavScanner(const ClamavScanner&) = delete;
  ClamavScanner& operator=(const ClamavScanner&) = delete;

  ScanResult scan(std::string_view bytes, std::string_view name) const override;

  unsigned signature_count() const;
  std::string engine_version() const;
  const std::string& database_dir() const;

 private:
  struct Engine;
  std::unique_ptr<Engine> engine_;
  std::string database_dir_;
  unsigned signatures_ = 0;
};

}  // namespace mukaika
