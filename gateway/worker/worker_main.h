// The worker's side: what a freshly forked worker process does, from fork()
// to _exit(). Internal to the pool.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "worker/sandbox.h"
#include "worker/worker_pool.h"

namespace mukaika::worker {

struct Launch {
  int socket_fd = -1;                      // the worker's end of its socketpair
  pid_t supervisor = 0;                    // to notice a supervisor that died before PR_SET_PDEATHSIG
  SandboxSpec sandbox;
  std::uint64_t max_request_bytes = 0;
  std::uint64_t max_item_bytes = 0;
  std::uint64_t cpu_seconds_per_item = 0;  // soft RLIMIT_CPU, re-armed per item
};

// Sets up the process (fds, signals, environment), enters the sandbox,
// says hello and serves requests until the supervisor closes the socket.
// Returns the exit code; never returns into the supervisor's code paths.
int serve(const Launch& launch, const ItemProcessor& processor) noexcept;

}  // namespace mukaika::worker
