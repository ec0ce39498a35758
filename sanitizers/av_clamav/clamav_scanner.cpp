#include "av_clamav/clamav_scanner.h"

#include <clamav.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <filesystem>
#include <mutex>
#include <system_error>

namespace mukaika {

namespace {

struct EngineDeleter {
  void operator()(cl_engine* engine) const noexcept { cl_engine_free(engine); }
};
using EngineHandle = std::unique_ptr<cl_engine, EngineDeleter>;

struct FmapDeleter {
  void operator()(cl_fmap_t* map) const noexcept { cl_fmap_close(map); }
};
using FmapHandle = std::unique_ptr<cl_fmap_t, FmapDeleter>;

// How libclamav names "this could not be scanned fully" when
// CL_SCAN_HEURISTIC_EXCEEDS_MAX is on (MaxFileSize, MaxScanSize, MaxFiles,
// MaxRecursion, MaxScanTime, ...).
constexpr std::string_view kLimitsExceeded = "Heuristics.Limits.Exceeded";

// cl_init() sets up process-wide state (OpenSSL, the bytecode runtime); it
// must run once, before the first engine, whatever thread gets there first.
void init_libclamav() {
  static std::once_flag once;
  static cl_error_t result = CL_SUCCESS;
  std::call_once(once, [] { result = cl_init(CL_INIT_DEFAULT); });
  if (result != CL_SUCCESS)
    throw ScannerError(std::string("libclamav を初期化できません (") + cl_strerror(result) +
                       ") / cannot initialise libclamav: " + cl_strerror(result));
}

[[noreturn]] void engine_error(const std::string& what, cl_error_t err) {
  throw ScannerError("ClamAV エンジンを準備できません: " + what + " (" + cl_strerror(err) +
                     ") / cannot prepare the ClamAV engine: " + what + ": " + cl_strerror(err));
}

[[noreturn]] void database_error(const std::string& dir, const std::string& why) {
  throw ScannerError("ウイルス定義を読み込めません: " + dir + " (" + why +
                     ")。freshclam で定義を取得するか、設定 antivirus.database を確認してください / "
                     "cannot load virus signatures from " + dir + ": " + why +
                     "; run freshclam or check antivirus.database");
}

// Zero means "no limit" to libclamav. A scan without limits can be held
// hostage by a zip bomb, and the promise that an item too large or too deep
// is reported rather than silently passed would be empty, so refuse it.
void set_limit(cl_engine* engine, cl_engine_field field, const char* name, std::uint64_t value) {
  if (value == 0 || value > static_cast<std::uint64_t>(LLONG_MAX))
    throw ScannerError(std::string("ClamAV の制限値が不正です: ") + name + " = " +
                       std::to_string(value) + " / invalid ClamAV limit " + name + " = " +
                       std::to_string(value) + " (must be between 1 and " +
                       std::to_string(LLONG_MAX) + ")");
  cl_error_t err = cl_engine_set_num(engine, field, static_cast<long long>(value));
  if (err != CL_SUCCESS) engine_error(std::string("cl_engine_set_num(") + name + ")", err);
}

std::uint64_t get_limit(const cl_engine* engine, cl_engine_field field, const char* name) {
  int err = CL_SUCCESS;
  long long value = cl_engine_get_num(engine, field, &err);
  if (err != CL_SUCCESS) engine_error(std::string("cl_engine_get_num(") + name + ")", static_cast<cl_error_t>(err));
  return value < 0 ? 0 : static_cast<std::uint64_t>(value);
}

// libclamav 1.4 answers CL_CLEAN without looking at the data when it cannot
// create its per-scan directory under the temp dir (deleted, not writable):
// even a bare EICAR file comes back clean. The pre-cache callback runs for
// every layer it really examines, cached or not, so "never called" means
// "not scanned". Inputs of this size or less libclamav never scans, by
// design ("small data"); for them its CL_CLEAN is its considered answer.
constexpr std::size_t kLibclamavSkipsUpTo = 5;

struct ScanContext {
  bool examined = false;
};

cl_error_t on_pre_cache(int, const char*, void* context) {
  if (context != nullptr) static_cast<ScanContext*>(context)->examined = true;
  return CL_CLEAN;  // go on scanning
}

cl_scan_options make_scan_options() {
  cl_scan_options o{};
  // Heuristics on: without it libclamav raises none of the alerts below.
  // No HEURISTIC_PRECEDENCE: a heuristic alert then waits for the end of the
  // scan and a real signature found later wins, so the audit trail names the
  // actual malware. Both outcomes are non-clean, so nothing is let through
  // either way; precedence would only save time on items blocked anyway.
  o.general = CL_SCAN_GENERAL_HEURISTICS;
  // Every parser libclamav has, including ones added in later versions.
  o.parse = ~0u;
  // EXCEEDS_MAX: an item that could not be scanned fully is reported instead
  // of coming back CL_CLEAN (mapped to Status::Error below).
  // BROKEN: a malformed PE/ELF is an exploit or evasion attempt, not
  // something a municipal office needs delivered.
  // Deliberately off:
  //  - ENCRYPTED_ARCHIVE / ENCRYPTED_DOC: password-protected archives and
  //    documents (PPAP mail) are decided by the pipeline and policy
  //    (Kind::Encrypted); as a "virus" they would be mislabelled in the
  //    notice. Note that Clean from libclamav then says nothing about what
  //    is inside them.
  //  - MACROS: macro documents are the Office sanitizers' business (strip or
  //    convert); flagged as a virus they could not be sanitized at all.
  //  - BROKEN_MEDIA, PARTITION_INTXN, STRUCTURED (DLP), PHISHING_SSL_MISMATCH,
  //    PHISHING_CLOAK: false positives on ordinary mail; images, disk images
  //    and links are handled by their own sanitizers.
  o.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_BROKEN;
  o.mail = 0;
  o.dev = 0;
  return o;
}

}  // namespace

struct ClamavScanner::Engine {
  EngineHandle handle;
  cl_scan_options options;
  std::uint64_t max_file_bytes = 0;  // as libclamav holds it (it clamps at 2 GiB)
};

bool clamav_database_present(const std::string& dir) {
  // Extensions cl_load() reads signatures from with CL_DB_STDOPT (libclamav's
  // CLI_DBEXT minus allow-lists (.fp, .sfp), ignore lists (.ign, .ign2),
  // configuration (.cfg, .ftm, .crb, .cat, .pwdb, .info), the PUA variants
  // (.hdu, .ndu, ...: skipped without CL_DB_PUA) and unsigned bytecode
  // (.cbc: skipped without CL_DB_BYTECODE_UNSIGNED)). A directory holding
  // only those would load no detection signature.
  static constexpr std::string_view kExtensions[] = {
      ".cvd", ".cld", ".cud", ".db",  ".hdb", ".hsb", ".mdb",  ".msb", ".imp", ".ndb", ".ldb",
      ".idb", ".cdb", ".ioc", ".yar", ".yara", ".zmd", ".rmd", ".pdb", ".gdb", ".wdb"};
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return false;
  for (const auto& entry : it) {
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;  // follows symlinks, as cl_load does
    std::string ext = entry.path().extension().string();
    // libclamav compares extensions case-insensitively.
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (std::find(std::begin(kExtensions), std::end(kExtensions), ext) != std::end(kExtensions))
      return true;
  }
  return false;
}

ClamavScanner::ClamavScanner(const ClamavOptions& options)
    : engine_(std::make_unique<Engine>()), database_dir_(options.database_dir) {
  init_libclamav();
  if (database_dir_.empty()) database_error("(未設定 / not set)", "antivirus.database is empty");

  EngineHandle engine(cl_engine_new());
  if (!engine) engine_error("cl_engine_new", CL_EMEM);

  if (!options.temp_dir.empty()) {
    // Checked here for a clear start-up error; scan() still catches a temp
    // dir that disappears later.
    std::error_code ec;
    if (!std::filesystem::is_directory(options.temp_dir, ec))
      throw ScannerError("ClamAV の一時ディレクトリがありません: " + options.temp_dir +
                         "。設定を確認してください / ClamAV temp directory does not exist: " + options.temp_dir);
    cl_error_t err = cl_engine_set_str(engine.get(), CL_ENGINE_TMPDIR, options.temp_dir.c_str());
    if (err != CL_SUCCESS) engine_error("CL_ENGINE_TMPDIR " + options.temp_dir, err);
  }
  set_limit(engine.get(), CL_ENGINE_MAX_SCANSIZE, "max_scan_bytes", options.max_scan_bytes);
  set_limit(engine.get(), CL_ENGINE_MAX_FILESIZE, "max_file_bytes", options.max_file_bytes);
  set_limit(engine.get(), CL_ENGINE_MAX_RECURSION, "max_recursion", options.max_recursion);
  set_limit(engine.get(), CL_ENGINE_MAX_FILES, "max_files", options.max_files);

  unsigned sigs = 0;
  cl_error_t err = cl_load(database_dir_.c_str(), engine.get(), &sigs, CL_DB_STDOPT);
  if (err != CL_SUCCESS) database_error(database_dir_, cl_strerror(err));
  if (sigs == 0) database_error(database_dir_, "署名が 0 件 / no signatures found");

  cl_engine_set_clcb_pre_cache(engine.get(), on_pre_cache);

  err = cl_engine_compile(engine.get());
  if (err != CL_SUCCESS) engine_error("cl_engine_compile " + database_dir_, err);

  engine_->max_file_bytes = get_limit(engine.get(), CL_ENGINE_MAX_FILESIZE, "max_file_bytes");
  engine_->options = make_scan_options();
  engine_->handle = std::move(engine);
  signatures_ = sigs;
}

ClamavScanner::~ClamavScanner() = default;

ScanResult ClamavScanner::scan(std::string_view bytes, std::string_view name) const {
  using Status = ScanResult::Status;
  const std::string limits_detail = "スキャン制限を超えたため完全には検査できません / scan limits exceeded, could not scan fully";

  // libclamav answers CL_VIRUS with no signature name for a top-level input
  // over the file-size limit; say plainly what happened instead.
  if (bytes.size() > engine_->max_file_bytes)
    return {Status::Error, limits_detail + " (" + std::to_string(bytes.size()) + " bytes > max_file_bytes " +
                               std::to_string(engine_->max_file_bytes) + ")"};

  // The map only borrows `bytes`; libclamav reads, never writes it.
  FmapHandle map(cl_fmap_open_memory(bytes.data(), bytes.size()));
  if (!map) return {Status::Error, "ClamAV がデータを開けません / libclamav could not map the data"};

  // cl_scanmap_callback takes non-const options; each call gets its own copy
  // so concurrent scans share nothing mutable.
  cl_scan_options options = engine_->options;
  ScanContext context;
  const std::string file_name(name);
  const char* virname = nullptr;
  unsigned long scanned = 0;
  cl_error_t err = cl_scanmap_callback(map.get(), file_name.empty() ? nullptr : file_name.c_str(), &virname,
                                       &scanned, engine_->handle.get(), &options, &context);
  switch (err) {
    case CL_CLEAN:
      if (!context.examined && bytes.size() > kLibclamavSkipsUpTo)
        return {Status::Error,
                "ClamAV がデータを検査しませんでした (一時ディレクトリを確認してください) / "
                "libclamav returned clean without scanning (check its temp directory)"};
      return {Status::Clean, {}};
    case CL_VIRUS: {
      if (virname == nullptr)
        return {Status::Error, "ClamAV が名前のない検出を報告しました / libclamav reported a detection without a name"};
      std::string_view found(virname);
      if (found.starts_with(kLimitsExceeded)) return {Status::Error, limits_detail + " (" + std::string(found) + ")"};
      return {Status::Infected, std::string(found)};
    }
    default:
      return {Status::Error, std::string("ClamAV の検査に失敗しました / libclamav scan failed: ") + cl_strerror(err)};
  }
}

unsigned ClamavScanner::signature_count() const { return signatures_; }

std::string ClamavScanner::engine_version() const { return cl_retver(); }

const std::string& ClamavScanner::database_dir() const { return database_dir_; }

}  // namespace mukaika
