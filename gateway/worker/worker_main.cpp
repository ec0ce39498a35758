#include "worker/worker_main.h"

#include "archive_flatten/sevenzip.h"
#include "digest.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "ipc/frame.h"
#include "worker/worker_protocol.h"

extern char** environ;

namespace mukaika::worker {

namespace {

constexpr int kSocketFd = 3;

void say(const std::string& message) {
  std::string line = "mukaika worker " + std::to_string(::getpid()) + ": " + message + "\n";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

// An uncaught exception in any thread (a renderer thread that could not
// allocate) ends up here: say "out of memory" when it was that.
[[noreturn]] void on_terminate() {
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      ::_exit(kWorkerExitMemory);
    } catch (...) {
    }
  }
  std::abort();
}

// Only the worker's socket (as fd 3) and stderr survive: the supervisor's
// sockets to other workers, their pidfds, spool and input files all go.
// stdin and stdout become /dev/null (stdout carries the CLI's results).
bool setup_fds(int socket_fd) {
  if (socket_fd != kSocketFd) {
    if (::dup2(socket_fd, kSocketFd) < 0) return false;
  }
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return false;
  if (::dup2(null, STDIN_FILENO) < 0 || ::dup2(null, STDOUT_FILENO) < 0) return false;
  if (null > kSocketFd) ::close(null);
  // fd 3 was dup2'ed: no close-on-exec; nothing is exec'ed anyway.
  return ::close_range(kSocketFd + 1, ~0u, 0) == 0;
}

// The supervisor's environment may hold secrets (relay passwords, tokens);
// the worker keeps only locale and time zone.
void reset_environment(const std::string& work_dir) {
  std::vector<std::string> keep;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("LANG=") || kv.starts_with("LC_") || kv.starts_with("TZ=")) keep.emplace_back(kv);
  }
  ::clearenv();
  for (const auto& kv : keep) {
    auto eq = kv.find('=');
    ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  }
  ::setenv("TMPDIR", work_dir.c_str(), 1);
  ::setenv("HOME", work_dir.c_str(), 1);
}

void reset_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  // A write to a closed socket is an error to report, not a death; a file
  // over RLIMIT_FSIZE is a failed write (libclamav reports a scan error,
  // which blocks the item), not a crash.
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGXFSZ, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

int serve(const Launch& launch, const ItemProcessor& processor) noexcept {
  try {
    // Dies with the supervisor, so a worker is never left unsupervised. If
    // the supervisor is already gone, the signal will never come.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != launch.supervisor) return kWorkerExitSandbox;
    // Its own session and process group: the supervisor kills the group,
    // and no terminal reaches it.
    ::setsid();
    reset_signals();
    if (!setup_fds(launch.socket_fd)) {
      say(std::string("cannot set up file descriptors: ") + std::strerror(errno));
      return kWorkerExitSandbox;
    }
    reset_environment(launch.sandbox.work_dir);
    std::set_terminate(on_terminate);
    // Out of memory (the address-space limit) ends the worker, whichever
    // thread and library hit it: the item is blocked as worker.memory rather
    // than as whatever a sanitizer makes of a caught std::bad_alloc, and the
    // worker, whose heap is now in doubt, serves nothing more.
    std::set_new_handler([] { ::_exit(kWorkerExitMemory); });

    Hello hello;
    try {
      hello.sandbox = enter_sandbox(launch.sandbox);
      // The seccomp filter allows starting 7z only under Landlock; calling
      // execve() without it would kill the worker.
      sevenzip::set_allowed((hello.sandbox.layers & kLayerLandlock) != 0 && !launch.sandbox.executable_paths.empty());
    } catch (const SandboxError& e) {
      say(std::string("cannot enter the sandbox: ") + e.what());
      return kWorkerExitSandbox;
    }
    ipc::write_frame(kSocketFd, ipc::FrameType::Hello, encode_hello(hello));

    for (;;) {
      std::optional<ipc::Frame> frame = ipc::read_frame(kSocketFd, launch.max_request_bytes);
      if (!frame) return 0;  // the supervisor retired this worker
      if (frame->type != ipc::FrameType::Request) return kWorkerExitProtocol;
      Item item;
      try {
        item = decode_request(frame->payload, launch.max_item_bytes);
      } catch (const ipc::ProtocolError& e) {
        say(std::string("malformed request: ") + e.what());
        return kWorkerExitProtocol;
      }
      if (!item.passphrases.empty()) wipe(frame->payload);
      frame.reset();
      if (launch.cpu_seconds_per_item > 0) arm_cpu_limit(launch.cpu_seconds_per_item);
      PipelineResult result = processor(std::move(item));
      ipc::write_frame(kSocketFd, ipc::FrameType::Reply, encode_reply(result));
    }
  } catch (const std::bad_alloc&) {
    return kWorkerExitMemory;
  } catch (const ipc::ProtocolError&) {
    return kWorkerExitProtocol;  // the supervisor went away mid-frame
  } catch (const std::exception& e) {
    say(std::string("internal error: ") + e.what());
    return 70;
  } catch (...) {
    return 70;
  }
}

}  // namespace mukaika::worker
