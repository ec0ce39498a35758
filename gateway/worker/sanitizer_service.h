// SanitizerService: the sandboxed workers, for a process that has threads.
//
// WorkerPool forks its workers and so must live in a process with a single
// thread. The daemon (`mukaika serve`) has many: SMTP sessions, the queue.
// This class forks, once and before any thread starts, a small service
// process that owns the WorkerPool and nothing else (no listener, no spool,
// no configuration files open for writing). The daemon hands it one item at
// a time over a socketpair, in the same frames the pool speaks to its
// workers (proto/ipc, worker_protocol.h), and gets the PipelineResult back.
//
// Promises:
// - sanitize() is safe to call from any thread; calls are served one after
//   the other (the queue manager is one thread; see docs/architecture.md).
// - Whatever the workers do, sanitize() returns a result (the pool turns
//   crashes and timeouts into blocked results). If the service process
//   itself is gone or answers nonsense, sanitize() throws WorkerError: the
//   caller could not decide and must keep the message for later; it is
//   never passed unsanitized.
// - The SHA-256 values of a result are computed here, from the bytes sent
//   and received.
// - The service ends when this object is destroyed or the daemon dies (it
//   reads end-of-file and exits); a SIGKILL of the daemon leaves no service
//   or worker behind.
#pragma once

#include <memory>
#include <mutex>

#include "pipeline.h"
#include "worker/child.h"
#include "unique_fd.h"
#include "worker/worker_pool.h"

namespace mukaika {

class SanitizerService {
 public:
  // Forks the service and waits until its WorkerPool has started its first
  // worker in the sandbox. Throws WorkerError with the pool's own message
  // when it cannot (for example a sandbox layer missing).
  SanitizerService(WorkerOptions options, ItemProcessor processor);
  ~SanitizerService();
  SanitizerService(const SanitizerService&) = delete;
  SanitizerService& operator=(const SanitizerService&) = delete;

  PipelineResult sanitize(Item item);

  pid_t pid() const { return child_.pid(); }

 private:
  WorkerOptions options_;
  Child child_;
  UniqueFd socket_;
  std::mutex mutex_;
  bool broken_ = false;
};

}  // namespace mukaika
