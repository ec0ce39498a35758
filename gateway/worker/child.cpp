#include "worker/child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace mukaika {

bool ChildExit::exited() const { return WIFEXITED(status); }
int ChildExit::exit_code() const { return WEXITSTATUS(status); }
bool ChildExit::signaled() const { return WIFSIGNALED(status); }
int ChildExit::signal() const { return WTERMSIG(status); }

Child::~Child() {
  if (pid_ > 0) {
    kill();
    wait();
  }
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), killed_(std::exchange(other.killed_, false)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      kill();
      wait();
    }
    pid_ = std::exchange(other.pid_, -1);
    killed_ = std::exchange(other.killed_, false);
  }
  return *this;
}

Child Child::spawn(const std::function<int()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    int code = 70;  // EX_SOFTWARE
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  return Child(pid);
}

void Child::kill() {
  if (pid_ <= 0) return;
  killed_ = true;
  // The group first: a worker that already called setsid() leads it. The
  // pid itself too, for a worker killed before it got that far.
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

std::optional<ChildExit> Child::reap(int options) {
  if (pid_ <= 0) return std::nullopt;
  ChildExit out;
  for (;;) {
    pid_t r = ::wait4(pid_, &out.status, options, &out.usage);
    if (r == pid_) break;
    if (r == 0) return std::nullopt;  // WNOHANG: still running
    if (errno == EINTR) continue;
    // ECHILD: someone else reaped it (a SIGCHLD handler set to SIG_IGN);
    // nothing left to wait for.
    out.status = 0;
    break;
  }
  out.killed_by_owner = killed_;
  pid_ = -1;
  killed_ = false;
  return out;
}

ChildExit Child::wait() {
  auto r = reap(0);
  return r ? *r : ChildExit{};
}

std::optional<ChildExit> Child::try_wait() { return reap(WNOHANG); }

}  // namespace mukaika
