#include "archive_flatten/sevenzip.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <utility>

namespace mukaika::sevenzip {

namespace {

// Off until a worker has seen its sandbox confine execve (worker_main.cpp):
// 7z never runs in the daemon, nor in a worker without Landlock.
std::atomic<bool> g_allowed{false};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// One pipe; each end closed on its own or when it goes out of scope.
struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    read = fds[0];
    write = fds[1];
  }
  ~Pipe() {
    close_fd(read);
    close_fd(write);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
};

// The encrypted archive as a file, for as long as 7z runs: the 7z format
// needs to seek, so a pipe will not do.
class TempArchive {
 public:
  explicit TempArchive(std::string_view bytes) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir && *dir ? dir : "/tmp") + "/mukaika-7z-XXXXXX";
    int fd = ::mkostemp(path_.data(), O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(std::string("cannot write the archive for 7z: ") + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close_fd(fd);
        ::unlink(path_.c_str());
        throw std::runtime_error(std::string("cannot write the archive for 7z: ") + std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
    close_fd(fd);
  }
  ~TempArchive() { ::unlink(path_.c_str()); }
  TempArchive(const TempArchive&) = delete;
  TempArchive& operator=(const TempArchive&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed or died of a signal
  bool timed_out = false;
  bool stopped = false;  // the stdout sink asked to stop
  std::string err;       // 7z's stderr, capped
};

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60'000));
}

// Runs 7z with `args`; `password` is already in the stdin pipe. Every byte
// of stdout goes to `sink` (false: enough, kill 7z).
RunResult run(const std::vector<std::string>& args, const std::string& password,
              std::chrono::steady_clock::time_point deadline,
              const std::function<bool(const char*, std::size_t)>& sink) {
  // Filled and closed before the child exists: the password waits in the
  // pipe's buffer (far below its 64 KiB), so writing cannot block or raise
  // SIGPIPE.
  Pipe in, out, err;
  if (!password.empty() && ::write(in.write, password.data(), password.size()) != static_cast<ssize_t>(password.size()))
    throw std::runtime_error(std::string("cannot hand the password to 7z: ") + std::strerror(errno));
  close_fd(in.write);

  std::vector<char*> argv;
  std::vector<std::string> owned = args;
  owned.insert(owned.begin(), kBinary);
  for (auto& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  char locale[] = "LC_ALL=C.UTF-8";  // names and non-ASCII passwords are converted through it
  char* envp[] = {locale, nullptr};
  // A backstop behind the deadline, should the worker be gone.
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
  const auto cpu = static_cast<rlim_t>(std::max<long long>(left.count(), 0) + 2);

  // clone() with a pidfd instead of fork(): the worker's seccomp filter lets
  // it signal only processes it holds a pidfd for.
  int pidfd = -1;
  const pid_t parent = ::getpid();
  const long pid = ::syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, nullptr, &pidfd, nullptr, 0);
  if (pid < 0) throw std::runtime_error(std::string("cannot start 7z: ") + std::strerror(errno));
  if (pid == 0) {
    // The child: only system calls from here to execve(). Its own session,
    // without a terminal: p7zip asks /dev/tty for the password when there
    // is one, and stdin only when there is none. Having left the worker's
    // process group, it dies with the worker instead.
    ::setsid();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in.read, 0);
    ::dup2(out.write, 1);
    ::dup2(err.write, 2);
    if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
      for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    ::signal(SIGPIPE, SIG_DFL);
    rlimit lim{cpu, cpu};
    ::setrlimit(RLIMIT_CPU, &lim);
    ::execve(kBinary, argv.data(), envp);
    ::_exit(127);
  }
  struct PidFd {
    int fd;
    ~PidFd() { close_fd(fd); }
  } child{pidfd};
  close_fd(in.read);
  close_fd(out.write);
  close_fd(err.write);

  RunResult r;
  bool killed = false;
  auto kill_child = [&] {
    if (!killed) ::syscall(SYS_pidfd_send_signal, child.fd, SIGKILL, nullptr, 0);
    killed = true;
  };
  auto reap = [&] {
    int status = 0;
    while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  };
  char buffer[64 * 1024];
  try {
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
      pollfd fds[2] = {{out_open ? out.read : -1, POLLIN, 0}, {err_open ? err.read : -1, POLLIN, 0}};
      const int ms = remaining_ms(deadline);
      int n = ms == 0 ? 0 : ::poll(fds, 2, ms);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        r.timed_out = true;
        kill_child();
        break;
      }
      if (fds[0].revents) {
        ssize_t got = ::read(out.read, buffer, sizeof buffer);
        if (got <= 0) {
          out_open = false;
        } else if (!sink(buffer, static_cast<std::size_t>(got))) {
          r.stopped = true;
          kill_child();
          break;
        }
      }
      if (fds[1].revents) {
        ssize_t got = ::read(err.read, buffer, sizeof buffer);
        if (got <= 0)
          err_open = false;
        else if (r.err.size() < 16 * 1024)
          r.err.append(buffer, static_cast<std::size_t>(got));
      }
    }
    // 7z may have closed its output and still run: wait for it until the
    // deadline, then kill it. Reaped in every case.
    if (!killed) {
      pollfd done{child.fd, POLLIN, 0};
      int rc;
      do {
        rc = ::poll(&done, 1, remaining_ms(deadline));  // 0 ms still reports an exit that happened
      } while (rc < 0 && errno == EINTR);
      if (rc <= 0 || !(done.revents & POLLIN)) {
        r.timed_out = true;
        kill_child();
      }
    }
  } catch (...) {  // a sink out of memory: the child is still killed and reaped
    kill_child();
    reap();
    throw;
  }
  const int status = reap();
  if (!killed && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

bool says_wrong_password(const RunResult& r) { return r.err.find("Wrong password") != std::string::npos; }

// 7z's own words, as printable ASCII, for a notice.
std::string detail_of(const RunResult& r) {
  if (r.exit_code < 0) return "7z was stopped";
  std::string out;
  for (char c : r.err) {
    if (out.size() >= 200) break;
    if (c == '\n' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return "7z exit " + std::to_string(r.exit_code) + (out.empty() ? "" : ": " + out);
}

// "2024-05-01 12:34:56.1234567" -> seconds since the epoch, UTC as 7z prints it.
std::time_t parse_time(const std::string& v) {
  std::tm tm{};
  if (v.size() < 19 || !::strptime(v.substr(0, 19).c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return 0;
  return ::timegm(&tm);
}

// `7z l -slt -ba`: one "Key = Value" per line, a blank line between entries,
// each starting with "Path". A name with a newline in it can fake lines;
// that only moves where the stream is split, and extract() still requires
// the listed sizes to add up to exactly what 7z writes.
std::vector<Entry> parse_listing(const std::string& text, bool& malformed) {
  std::vector<Entry> entries;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;  // blank lines, the password prompt
    const std::string key = line.substr(0, eq), value = line.substr(eq + 3);
    if (key == "Path") {
      entries.push_back({value, 0, 0, false, false});
      continue;
    }
    if (entries.empty()) continue;
    Entry& e = entries.back();
    if (key == "Size") {
      char* stop = nullptr;
      errno = 0;
      const unsigned long long size = value.empty() ? 0 : std::strtoull(value.c_str(), &stop, 10);
      if (errno != 0 || (stop && *stop) || value.starts_with("-")) malformed = true;
      e.size = size;
    } else if (key == "Folder") {
      e.directory = e.directory || value == "+";
    } else if (key == "Attributes") {
      // "D drwxr-xr-x", "A -rw-r--r--", "A lrwxrwxrwx"
      const std::size_t space = value.find(' ');
      const std::string dos = value.substr(0, space);
      const char unix_type = space != std::string::npos && space + 1 < value.size() ? value[space + 1] : '-';
      e.directory = e.directory || dos.find('D') != std::string::npos || unix_type == 'd';
      e.link = unix_type == 'l';
    } else if (key == "Modified") {
      e.mtime = parse_time(value);
    }
  }
  return entries;
}

}  // namespace

void set_allowed(bool allowed) { g_allowed = allowed; }
bool allowed() { return g_allowed; }
bool usable() { return allowed() && ::access(kBinary, X_OK) == 0; }

bool has_signature(std::string_view bytes) { return bytes.substr(0, 6) == std::string_view("7z\xBC\xAF\x27\x1C", 6); }

Listing list(std::string_view archive, const std::string& password, std::size_t max_entries,
             std::chrono::steady_clock::time_point deadline) {
  Listing l;
  TempArchive file(archive);
  // A few hundred bytes per entry; more output than that is refused.
  const std::size_t cap = (max_entries + 1) * 4096;
  std::string text;
  RunResult r = run({"l", "-slt", "-ba", "-t7z", "-bd", "--", file.path()}, password, deadline,
                    [&](const char* p, std::size_t n) {
                      if (text.size() + n > cap) return false;
                      text.append(p, n);
                      return true;
                    });
  if (r.timed_out) {
    l.status = Status::TimedOut;
    return l;
  }
  if (r.stopped) {
    l.status = Status::TooMuch;
    return l;
  }
  if (r.exit_code != 0) {
    l.status = says_wrong_password(r) ? Status::WrongPassword : Status::Failed;
    l.detail = detail_of(r);
    return l;
  }
  bool malformed = false;
  l.entries = parse_listing(text, malformed);
  if (malformed) {
    l.detail = "7z listed a size that is not a number";
    return l;
  }
  l.status = l.entries.size() > max_entries ? Status::TooMuch : Status::Ok;
  return l;
}

Extraction extract(std::string_view archive, const std::string& password, const std::vector<Entry>& listing,
                   std::chrono::steady_clock::time_point deadline) {
  Extraction x;
  x.files.resize(listing.size());
  std::size_t index = 0;  // the entry the next byte belongs to
  auto skip_filled = [&] {
    while (index < listing.size() && (listing[index].directory || x.files[index].size() >= listing[index].size)) ++index;
  };
  skip_filled();
  TempArchive file(archive);
  RunResult r = run({"x", "-so", "-t7z", "-bd", "-y", "--", file.path()}, password, deadline,
                    [&](const char* p, std::size_t n) {
                      while (n > 0) {
                        skip_filled();
                        if (index >= listing.size()) return false;  // more than listed
                        const std::size_t take = static_cast<std::size_t>(
                            std::min<std::uint64_t>(n, listing[index].size - x.files[index].size()));
                        x.files[index].append(p, take);
                        p += take;
                        n -= take;
                      }
                      return true;
                    });
  skip_filled();
  if (r.timed_out) {
    x.status = Status::TimedOut;
  } else if (r.stopped) {
    x.status = Status::TooMuch;
    x.detail = "7z wrote more than it listed";
  } else if (r.exit_code != 0) {
    x.status = says_wrong_password(r) ? Status::WrongPassword : Status::Failed;
    x.detail = detail_of(r);
  } else if (index < listing.size()) {
    x.status = Status::Failed;
    x.detail = "7z wrote less than it listed";
  } else {
    x.status = Status::Ok;
  }
  if (x.status != Status::Ok) x.files.clear();
  return x;
}

}  // namespace mukaika::sevenzip
