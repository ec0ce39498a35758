#include "worker/testing/fault_sanitizers.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mukaika::testing {

namespace {

// The result of one system call, as the probe reports it: "ok" or the errno
// name.
std::string outcome(int rc) {
  if (rc >= 0) return "ok";
  const char* name = ::strerrorname_np(errno);
  return name ? name : std::to_string(errno);
}

std::string open_outcome(const char* path, int flags) {
  int fd = ::open(path, flags | O_CLOEXEC, 0600);
  std::string r = outcome(fd);
  if (fd >= 0) ::close(fd);
  return r;
}

std::string status_field(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "unreadable";
}

std::string probe() {
  std::ostringstream out;
  out << "uid=" << ::getuid() << "\n";
  out << "seccomp=" << status_field("Seccomp") << "\n";
  out << "no_new_privs=" << status_field("NoNewPrivs") << "\n";
  out << "cap_eff=" << status_field("CapEff") << "\n";
  // Harmless probe that glibc makes: refused, not fatal.
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  out << "socket_unix=" << outcome(s) << "\n";
  if (s >= 0) ::close(s);
  out << "read_etc_passwd=" << open_outcome("/etc/passwd", O_RDONLY) << "\n";
  out << "read_etc_hostname=" << open_outcome("/etc/hostname", O_RDONLY) << "\n";
  out << "read_proc_1_environ=" << open_outcome("/proc/1/environ", O_RDONLY) << "\n";
  out << "read_samples=" << open_outcome(MUKAIKA_TEST_SAMPLES "/clamav/README.md", O_RDONLY) << "\n";
  out << "write_tmp=" << open_outcome("/tmp/mukaika-sandbox-probe", O_WRONLY | O_CREAT | O_TRUNC) << "\n";
  out << "write_dev_shm=" << open_outcome("/dev/shm/mukaika-sandbox-probe", O_WRONLY | O_CREAT | O_TRUNC) << "\n";
  out << "write_cwd=" << open_outcome("probe.tmp", O_WRONLY | O_CREAT | O_TRUNC) << "\n";
  ::unlink("probe.tmp");
  out << "mkdir_cwd=" << outcome(::mkdir("probe.dir", 0700)) << "\n";
  ::rmdir("probe.dir");
  char cwd[4096] = {};
  out << "cwd=" << (::getcwd(cwd, sizeof cwd) ? cwd : "?") << "\n";
  out << "ioctl=" << outcome(::isatty(STDERR_FILENO) ? 0 : -1) << "\n";
  const char* home = std::getenv("HOME");
  out << "env_home=" << (home ? home : "") << "\n";
  out << "env_secret=" << (std::getenv("MUKAIKA_TEST_SECRET") ? "visible" : "absent") << "\n";
  return out.str();
}

class FaultSanitizer : public Sanitizer {
 public:
  std::string_view name() const override { return "test.fault"; }
  std::vector<Kind> handles() const override { return {Kind::Text}; }

  Outcome process(const Item& item, Context&) const override {
    std::istringstream in(item.bytes);
    std::string word;
    in >> word;
    if (word == "CRASH") {
      // A wild write, as a parser bug makes one (not null: UBSan would
      // catch that first in the sanitizer build).
      volatile std::uintptr_t wild = 16;
      *reinterpret_cast<volatile int*>(wild) = 1;
    } else if (word == "ABORT") {
      std::abort();
    } else if (word == "LOOP") {
      volatile std::uint64_t spins = 0;
      for (;;) spins = spins + 1;
    } else if (word == "ALLOC") {
      std::vector<std::unique_ptr<char[]>> hoard;
      for (;;) {
        hoard.emplace_back(new char[16 << 20]);
        std::memset(hoard.back().get(), 0x5a, 16 << 20);
      }
    } else if (word == "SOCKET") {
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      return Outcome::replace("socket returned " + std::to_string(s), "text/plain", item.name,
                              {"test.fault", "ソケットを開けた", "a socket could be opened"});
    } else if (word == "EXEC") {
      // Under Landlock seccomp lets execve() through (for 7z); Landlock must
      // then refuse every other program. Without Landlock seccomp kills.
      char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), const_cast<char*>("true"), nullptr};
      const int rc = ::execve("/bin/sh", argv, nullptr);
      return Outcome::replace("execve /bin/sh: " + outcome(rc), "text/plain", item.name, {"test.fault", "exec", "exec"});
    } else if (word == "FORK") {
      pid_t pid = ::fork();
      if (pid == 0) ::_exit(0);
      return Outcome::replace("fork returned " + std::to_string(pid), "text/plain", item.name,
                              {"test.fault", "fork", "fork"});
    } else if (word == "GARBAGE") {
      // What a compromised parser could send: a frame header claiming a
      // reply of 4 GiB, then silence.
      const char junk[] = "\xff\xff\xff\xff\x03\x00\x00\x00garbage";
      [[maybe_unused]] ssize_t n = ::write(3, junk, sizeof junk - 1);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    } else if (word == "HANGUP") {
      ::close(3);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    } else if (word == "SLEEP") {
      int ms = 0;
      in >> ms;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    } else if (word == "THREADS") {
      std::atomic<std::uint64_t> sum{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t)
        threads.emplace_back([&sum, t] {
          for (int i = 0; i < 100000; ++i) sum += static_cast<std::uint64_t>(i % (t + 2));
        });
      for (auto& t : threads) t.join();
      return Outcome::replace("threads " + std::to_string(sum.load()), "text/plain", item.name,
                              {"test.fault", "スレッド", "threads"});
    } else if (word == "PID") {
      return Outcome::replace(std::to_string(::getpid()), "text/plain", item.name, {"test.fault", "pid", "pid"});
    } else if (word == "PROBE") {
      return Outcome::replace(probe(), "text/plain", item.name, {"test.fault", "検査", "probed"});
    }
    return Outcome::keep();
  }
};

}  // namespace

void register_fault_sanitizers(SanitizerRegistry& registry) {
  registry.add("test.fault", [](const toml::table&) { return std::make_unique<FaultSanitizer>(); });
}

}  // namespace mukaika::testing
