// A child process owned by the supervisor.
//
// Promises: a Child that goes out of scope has been killed (SIGKILL to it and
// to its process group) and reaped, so no worker outlives its owner as a
// zombie or keeps running unsupervised. Its pid stays reserved (a zombie is
// not reaped behind its back) until wait() or the destructor, so kill()
// never hits a recycled pid.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <functional>
#include <optional>

namespace mukaika {

struct ChildExit {
  int status = 0;          // as from waitpid()
  rusage usage{};          // the child's resource use (CPU seconds, max RSS)
  bool killed_by_owner = false;  // kill() was called before it ended

  bool exited() const;
  int exit_code() const;   // when exited()
  bool signaled() const;
  int signal() const;      // when signaled()
};

class Child {
 public:
  Child() = default;
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Forks. In the child, runs `body` and _exit()s with its return value
  // (70 if it throws) without unwinding into the parent's stack, running
  // atexit handlers or flushing the parent's stdio buffers a second time.
  // Throws std::system_error when fork() fails.
  static Child spawn(const std::function<int()>& body);

  pid_t pid() const { return pid_; }
  explicit operator bool() const { return pid_ > 0; }

  // SIGKILL to the process and its process group (a worker leads its own
  // session). Idempotent.
  void kill();
  // Blocks until it has ended and reaps it.
  ChildExit wait();
  // Reaps it if it has ended.
  std::optional<ChildExit> try_wait();

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  std::optional<ChildExit> reap(int options);

  pid_t pid_ = -1;
  bool killed_ = false;
};

}  // namespace mukaika
