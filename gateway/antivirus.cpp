#include "antivirus.h"

#include <cstdlib>
#include <filesystem>

#include "av_clamav/clamav_scanner.h"

namespace mukaika {

namespace {

// Used only when the configuration says required = false.
class NoScanner : public Scanner {
 public:
  ScanResult scan(std::string_view, std::string_view) const override { return {ScanResult::Status::Clean, {}}; }
};

constexpr const char* kSystemDatabase = "/var/lib/clamav";

}  // namespace

std::string bundled_signature_dir() {
  if (const char* env = std::getenv("MUKAIKA_SAMPLE_SIGNATURES"); env && *env) return env;
  for (const char* dir : {MUKAIKA_SOURCE_SIGNATURES, MUKAIKA_INSTALLED_SIGNATURES}) {
    if (clamav_database_present(dir)) return dir;
  }
  return MUKAIKA_SOURCE_SIGNATURES;
}

std::unique_ptr<Scanner> open_scanner(const Config& config, std::ostream& warnings) {
  const bool ja = config.language == Language::Ja;
  std::string dir = config.antivirus.database;
  if (dir.empty()) {
    if (clamav_database_present(kSystemDatabase)) {
      dir = kSystemDatabase;
    } else {
      dir = bundled_signature_dir();
      warnings << (ja ? "警告: /var/lib/clamav にウイルス定義がないため、同梱のテスト用署名 (" + dir +
                            ") を使います。これは EICAR などの試験用ファイルしか検出しません。本番では freshclam で定義を取得してください。\n"
                      : "warning: no virus database in /var/lib/clamav, using the bundled test signatures (" + dir +
                            "), which detect only test files such as EICAR. In production, fetch signatures with freshclam.\n");
    }
  }
  ClamavOptions opts;
  opts.database_dir = dir;
  opts.temp_dir = config.antivirus.temp_dir;
  opts.max_scan_bytes = config.antivirus.max_scan_bytes;
  opts.max_file_bytes = config.antivirus.max_file_bytes;
  opts.max_recursion = config.antivirus.max_recursion;
  opts.max_files = config.antivirus.max_files;
  try {
    return std::make_unique<ClamavScanner>(opts);
  } catch (const ScannerError& e) {
    if (config.antivirus.required)
      throw ConfigError(std::string(e.what()) +
                        (ja ? "\nウイルス検査なしでは起動しません (antivirus.required = true)。"
                            : "\nmukaika does not run without a virus scanner (antivirus.required = true)."));
    warnings << (ja ? "警告: ウイルス定義を読み込めないまま、設定 antivirus.required = false によりウイルス検査なしで動作します: "
                    : "warning: running WITHOUT a virus scanner because antivirus.required = false: ")
             << e.what() << "\n";
    return std::make_unique<NoScanner>();
  }
}

}  // namespace mukaika
