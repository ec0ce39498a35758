// `mukaika sanitize` with misbehaving sanitizers: the test build of the
// command line (mukaika_test_cli, with test.fault registered) blocks each
// fault with its reason, keeps serving, and writes results and report in
// input order. The shipped `mukaika` does not know test.fault at all.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace mukaika {
namespace {

namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mukaika-cli-test-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

int run(const std::string& command) {
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(WorkerCli, FaultsAreBlockedAndTheRestIsWrittenInOrder) {
  TempDir dir;
  std::ofstream(dir.path / "mukaika.toml") << "language = \"en\"\n"
                                              "[limits]\nmax_seconds = 2\n"
                                              "[workers]\ncount = 2\nmemory_mb = 128\ntime_limit_seconds = "
                                           << (kAsan ? 8 : 3) << "\n"
                                              "recycle_after = 100\n"
                                              "[policy.file]\ntext = [\"test.fault\"]\n";
  struct Input {
    std::string name, content, verdict, code;
  };
  const std::vector<Input> inputs = {
      {"crash.txt", "CRASH now\n", "blocked", "worker.crashed"},
      {"one.txt", "first fine text\n", "clean", ""},
      {"loop.txt", "LOOP forever\n", "blocked", "worker.timeout"},
      {"alloc.txt", "ALLOC all of it\n", "blocked", kAsan ? "worker.crashed" : "worker.memory"},
      {"socket.txt", "SOCKET to the internet\n", "blocked", "worker.seccomp"},
      {"two.txt", "second fine text\n", "clean", ""},
  };
  std::string args;
  for (const auto& in : inputs) {
    std::ofstream(dir.path / in.name) << in.content;
    args += " " + (dir.path / in.name).string();
  }
  const fs::path out = dir.path / "out", report = dir.path / "report.json", stdout_file = dir.path / "stdout.txt";
  int rc = run(std::string(MUKAIKA_TEST_CLI) + " sanitize --config " + (dir.path / "mukaika.toml").string() + " --out " +
               out.string() + " --report " + report.string() + args + " > " + stdout_file.string() + " 2> " +
               (dir.path / "stderr.txt").string());
  EXPECT_EQ(rc, 1) << slurp(dir.path / "stderr.txt");  // something was blocked

  nlohmann::json j = nlohmann::json::parse(slurp(report));
  ASSERT_EQ(j["items"].size(), inputs.size());
  std::istringstream lines(slurp(stdout_file));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& item = j["items"][i];
    SCOPED_TRACE(inputs[i].name);
    EXPECT_EQ(item["input"], (dir.path / inputs[i].name).string());
    EXPECT_EQ(item["verdict"], inputs[i].verdict);
    EXPECT_EQ(item["sha256_in"].get<std::string>().size(), 64u);
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(line.rfind("[" + inputs[i].verdict + "] " + (dir.path / inputs[i].name).string(), 0), 0u) << line;
    if (inputs[i].code.empty()) {
      EXPECT_EQ(slurp(out / inputs[i].name), inputs[i].content);
    } else {
      EXPECT_EQ(item["actions"][0]["code"], inputs[i].code) << item.dump();
      EXPECT_TRUE(item["output"].is_null());
      EXPECT_FALSE(fs::exists(out / inputs[i].name));
    }
  }
}

TEST(WorkerCli, TheShippedCommandHasNoTestSanitizers) {
  TempDir dir;
  std::ofstream(dir.path / "mukaika.toml") << "[policy.file]\ntext = [\"test.fault\"]\n";
  const fs::path err = dir.path / "stderr.txt";
  int rc = run(std::string(MUKAIKA_CLI) + " check-config " + (dir.path / "mukaika.toml").string() + " > /dev/null 2> " +
               err.string());
  EXPECT_EQ(rc, 2);
  EXPECT_NE(slurp(err).find("unknown sanitizer \"test.fault\""), std::string::npos) << slurp(err);
}

}  // namespace
}  // namespace mukaika
