// Test helpers for relay_test: temporary directories, child processes
// (the aiosmtpd peer, smtp-sink, python checks), and small file utilities.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mukaika::testing {

// A fresh directory under /tmp, removed with everything in it at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process with a pipe to its stdin and one from its stdout;
// terminated (SIGTERM, then SIGKILL) and reaped at the end.
class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv, bool capture_stdout = true, bool quiet = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // One line of the child's stdout, or nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }
  // Closes its stdin, waits for it to end, returns its exit status (-1: killed).
  int wait_exit();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
};

// A port that was free a moment ago (for peers that cannot report theirs).
int free_port();
// Waits until something accepts connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& data);
std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir);

// Runs a command, returns its exit status and stdout. `quiet`: its stderr
// goes to /dev/null.
int run(const std::vector<std::string>& argv, std::string* out = nullptr, bool quiet = false);

}  // namespace mukaika::testing
