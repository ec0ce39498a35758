// mukaika: the command line.
//
//   mukaika sanitize [--config FILE] --out DIR [--report FILE] INPUT...
//   mukaika serve [--config FILE]            (serve.h)
//   mukaika queue [--config FILE] [list | flush]
//   mukaika check-config FILE
//   mukaika passwd [--token]
//   mukaika version
//
// Exit status: 0 nothing blocked, 1 something blocked, 2 usage,
// configuration or system error (with a message that says what to fix).
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "antivirus.h"
#include "config.h"
#include "http/auth.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"
#include "report.h"
#include "serve.h"
#include "worker/worker_pool.h"
#ifdef MUKAIKA_TEST_SANITIZERS
// Only in the test build of the CLI (mukaika_test_cli), never in `mukaika`.
#include "worker/testing/fault_sanitizers.h"
#endif

namespace fs = std::filesystem;
using namespace mukaika;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitBlocked = 1;
constexpr int kExitError = 2;

const char* kUsage =
    "使い方 / usage:\n"
    "  mukaika sanitize [--config FILE] --out DIR [--report FILE] INPUT...\n"
    "      メール (.eml) やファイルを無害化し、結果を DIR に書きます。\n"
    "      Sanitizes mails (.eml) and files, writing results to DIR.\n"
    "  mukaika serve [--config FILE]\n"
    "      メール中継 (SMTP) を始めます。無害化したメールを LGWAN 側へ届けます。\n"
    "      Runs the MTA hop: SMTP in, sanitized mail out to the LGWAN side.\n"
    "  mukaika queue [--config FILE] [list | flush]\n"
    "      配送待ちのメールを表示します / 今すぐ再送させます。\n"
    "      Lists the mail queue, or makes the daemon retry deferred mail now.\n"
    "  mukaika check-config FILE\n"
    "      設定ファイルを検査し、問題をすべて行番号付きで表示します。\n"
    "      Checks a configuration file and lists every problem with its line.\n"
    "  mukaika passwd [--token]\n"
    "      パスワードを標準入力から読み、設定用の Argon2id ハッシュを表示します。\n"
    "      --token: API トークンを作り、トークンと設定用のハッシュを表示します。\n"
    "      Reads a password on standard input and prints its Argon2id hash for [[accounts]];\n"
    "      --token makes a new API token and prints it and its hash for [[api_clients]].\n"
    "  mukaika version\n"
    "終了コード / exit status: 0 遮断なし / nothing blocked, 1 遮断あり / something blocked,\n"
    "  2 使い方・設定・システムのエラー / usage, configuration or system error\n";

void register_sanitizers(SanitizerRegistry& registry) {
  register_builtin_sanitizers(registry);
#ifdef MUKAIKA_TEST_SANITIZERS
  testing::register_fault_sanitizers(registry);
#endif
}

int usage_error(const std::string& message) {
  std::cerr << "mukaika: " << message << "\n\n" << kUsage;
  return kExitError;
}

// Writes atomically and durably: temp file, fsync, rename, fsync directory.
void write_file_durably(const fs::path& path, const std::string& bytes) {
  fs::path tmp = path;
  tmp += ".tmp-mukaika";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::unlink(tmp.c_str());
      throw std::runtime_error("cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot fsync " + tmp.string() + ": " + std::strerror(err));
  }
  ::close(closer.fd);
  closer.fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename to " + path.string() + ": " + std::strerror(err));
  }
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::optional<std::string> read_file(const std::string& path, std::string& error) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    error = "not a regular file or does not exist";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) {
    error = "read error";
    return std::nullopt;
  }
  return s.str();
}

int cmd_check_config(const std::vector<std::string>& args) {
  if (args.size() != 1) return usage_error("check-config takes exactly one FILE");
  SanitizerRegistry registry;
  register_sanitizers(registry);
  auto problems = check_config_file(args[0], registry);
  if (problems.empty()) {
    std::cout << args[0] << ": OK\n";
    return kExitOk;
  }
  for (const auto& p : problems) std::cerr << p.to_string() << "\n";
  std::cerr << problems.size() << (problems.size() == 1 ? " problem\n" : " problems\n");
  return kExitError;
}

int cmd_sanitize(const std::vector<std::string>& args) {
  std::optional<std::string> config_path, out_dir, report_path;
  std::vector<std::string> inputs;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::optional<std::string>& into) -> bool {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    if (a == "--config") {
      if (!value(config_path)) return usage_error("--config needs a FILE");
    } else if (a == "--out") {
      if (!value(out_dir)) return usage_error("--out needs a DIR");
    } else if (a == "--report") {
      if (!value(report_path)) return usage_error("--report needs a FILE");
    } else if (a == "--") {
      inputs.insert(inputs.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      inputs.push_back(a);
    }
  }
  if (!out_dir) return usage_error("sanitize needs --out DIR");
  if (inputs.empty()) return usage_error("sanitize needs at least one INPUT");

  SanitizerRegistry registry;
  register_sanitizers(registry);
  Config config;
  WorkerEngine engine;
  try {
    config = load_config(config_path, registry);
    engine = open_worker_engine(config, registry, std::cerr);
  } catch (const ConfigError& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return kExitError;
  }
  const bool ja = config.language == Language::Ja;

  std::error_code ec;
  fs::create_directories(*out_dir, ec);
  if (ec || !fs::is_directory(*out_dir)) {
    std::cerr << "mukaika: " << (ja ? "出力先ディレクトリを作れません" : "cannot create the output directory") << " "
              << *out_dir << ": " << (ec ? ec.message() : "not a directory") << "\n";
    return kExitError;
  }

  // The supervisor (this process) never parses an input: the pipeline runs
  // in sandboxed workers forked from here, sharing the loaded engine.
  Pipeline pipeline(*engine.policy, *engine.scanner, config.limits, config.language);
  std::unique_ptr<WorkerPool> pool;
  try {
    pool = std::make_unique<WorkerPool>(worker_options(config),
                                        [&pipeline](Item item) { return pipeline.run(std::move(item)); });
  } catch (const WorkerError& e) {
    std::cerr << "mukaika: " << e.what() << "\n" << sandbox_setting_hint(config.language) << "\n";
    return kExitError;
  }
  nlohmann::json items = nlohmann::json::array();
  int exit_code = kExitOk;
  int counts[3] = {0, 0, 0};
  std::set<std::string> written;
  std::vector<std::string> read_errors(inputs.size());

  auto load = [&](std::size_t i) -> std::optional<Item> {
    std::string error;
    auto bytes = read_file(inputs[i], error);
    if (!bytes) {
      read_errors[i] = error.empty() ? "read error" : error;
      return std::nullopt;
    }
    Item item;
    item.bytes = std::move(*bytes);
    item.name = fs::path(inputs[i]).filename().string();
    item.role = Role::File;
    return item;
  };

  // Called in input order.
  auto done = [&](std::size_t i, std::optional<PipelineResult> sanitized) {
    const std::string& input = inputs[i];
    if (!sanitized) {
      const std::string& error = read_errors[i];
      std::cerr << "mukaika: " << (ja ? "入力を読めません" : "cannot read input") << " " << input << ": " << error << "\n";
      items.push_back({{"input", input}, {"verdict", "error"}, {"error", error}});
      exit_code = kExitError;
      return;
    }
    PipelineResult& result = *sanitized;
    std::string output;
    if (result.verdict != PipelineResult::Verdict::Blocked) {
      // Two inputs with the same name must not overwrite each other.
      std::string name = result.item.name;
      for (int n = 2; written.count(name); ++n) {
        fs::path p(result.item.name);
        name = p.stem().string() + "-" + std::to_string(n) + p.extension().string();
      }
      written.insert(name);
      fs::path out = fs::path(*out_dir) / name;
      try {
        write_file_durably(out, result.item.bytes);
        output = out.string();
      } catch (const std::exception& e) {
        std::cerr << "mukaika: " << (ja ? "結果を書けません" : "cannot write the result") << ": " << e.what() << "\n";
        items.push_back({{"input", input}, {"verdict", "error"}, {"error", e.what()}});
        exit_code = kExitError;
        return;
      }
    }
    ++counts[static_cast<int>(result.verdict)];
    if (result.verdict == PipelineResult::Verdict::Blocked && exit_code == kExitOk) exit_code = kExitBlocked;
    std::cout << "[" << to_string(result.verdict) << "] " << input;
    if (!output.empty()) std::cout << " -> " << output;
    std::cout << "\n";
    items.push_back(report_item(input, output, result));
  };
  pool->run(inputs.size(), load, done);
  pool.reset();

  if (report_path) {
    try {
      write_file_durably(*report_path, nlohmann::json{{"items", items}}.dump(2) + "\n");
    } catch (const std::exception& e) {
      std::cerr << "mukaika: " << (ja ? "レポートを書けません" : "cannot write the report") << ": " << e.what() << "\n";
      return kExitError;
    }
  }
  if (ja)
    std::cout << "結果: 無害 " << counts[0] << " 件, 無害化 " << counts[1] << " 件, 遮断 " << counts[2] << " 件 / 出力先 "
              << *out_dir;
  else
    std::cout << "result: " << counts[0] << " clean, " << counts[1] << " sanitized, " << counts[2] << " blocked; output in "
              << *out_dir;
  if (report_path) std::cout << (ja ? " / レポート " : "; report ") << *report_path;
  std::cout << "\n";
  return exit_code;
}

// Hashes for [[accounts]] and [[api_clients]]: the configuration never holds
// a password or a token itself.
int cmd_passwd(const std::vector<std::string>& args) {
  if (args.size() == 1 && args[0] == "--token") {
    const std::string token = http::random_token();
    std::cout << "token = " << token << "\n"
              << "token_hash = \"" << http::token_hash(token) << "\"\n";
    return kExitOk;
  }
  if (!args.empty()) return usage_error("passwd takes no arguments besides --token");
  const bool tty = ::isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    // No echo while the password is typed.
    ::tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::cerr << "パスワード / password: " << std::flush;
  }
  std::string password;
  std::getline(std::cin, password);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.size() < 8) {
    std::cerr << "mukaika: パスワードは 8 文字以上にしてください / the password needs at least 8 characters\n";
    return kExitError;
  }
  std::cout << "password_hash = \"" << http::hash_password(password) << "\"\n";
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? kExitError : kExitOk;
  }
  std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "sanitize") return cmd_sanitize(args);
    if (command == "check-config") return cmd_check_config(args);
    if (command == "serve") return cmd_serve(args, register_sanitizers);
    if (command == "queue") return cmd_queue(args, register_sanitizers);
    if (command == "passwd") return cmd_passwd(args);
    if (command == "version" || command == "--version") {
      std::cout << "mukaika " << MUKAIKA_VERSION << "\n";
      return kExitOk;
    }
  } catch (const std::exception& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return kExitError;
  }
  return usage_error("unknown command " + command);
}
