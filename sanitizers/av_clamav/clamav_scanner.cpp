// STUB
#include "av_clamav/clamav_scanner.h"
namespace mukaika {
struct ClamavScanner::Engine {};
bool clamav_database_present(const std::string&) { return false; }
ClamavScanner::ClamavScanner(const ClamavOptions&) { throw ScannerError("stub"); }
ClamavScanner::~ClamavScanner() = default;
ScanResult ClamavScanner::scan(std::string_view, std::string_view) const { return {}; }
unsigned ClamavScanner::signature_count() const { return 0; }
std::string ClamavScanner::engine_version() const { return ""; }
const std::string& ClamavScanner::database_dir() const { return database_dir_; }
}
