// SanitizerService: the sandboxed workers, for a process that has threads.
//
// WorkerPool forks its workers and so must live in a process with a single
// thread. The daemon (`mukaika serve`) has many: SMTP sessions, the queue.
// This class forks, once and before any thread starts, a small service
// process that owns the WorkerPool and nothing else (no listener, no spool,
// no configuration files open for writing). The daemon hands it items over
// a socketpair, in the same frames the pool speaks to its workers
// (proto/ipc, worker_protocol.h), each request and reply prefixed with a
// request id, and gets the PipelineResults back.
//
// Concurrency: the service process stays single-threaded. One poll() loop
// (WorkerPool::submit/wait) reads requests, hands each to the next free
// worker of its pool and writes each reply as soon as its worker is done,
// so up to `WorkerOptions::count` items are sanitized at once and a slow
// item does not hold up the others. It reads a further request only while
// fewer than 2 × count are in its hands (bounded memory; the daemon's
// writers wait meanwhile). In the daemon, callers write their request under
// a write lock; whichever caller is waiting reads the next reply and hands
// it to its owner by id (one reader at a time).
//
// Promises:
// - sanitize() is safe to call from any thread, concurrently; each call
//   returns the result for its own item.
// - Whatever the workers do, sanitize() returns a result (the pool turns
//   crashes and timeouts into blocked results). If the service process
//   itself is gone or answers nonsense (no reply within the pool's limits,
//   an unknown request id, a malformed frame), sanitize() throws
//   WorkerError in every caller waiting then and later: the caller could not
//   decide and must keep the message for later; it is never passed
//   unsanitized.
// - An item over the workers' max_item_bytes is blocked here unread
//   (refuse_oversize, as the pool does); it never reaches the service.
// - The SHA-256 values of a result are computed here, from the bytes sent
//   and received.
// - The service ends when this object is destroyed or the daemon dies (it
//   reads end-of-file and exits); a SIGKILL of the daemon leaves no service
//   or worker behind. Destroy it only when no call is in progress.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

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
  // Reads one reply and files it under its id; on failure marks the
  // service broken. Called by one waiting caller at a time, without mutex_.
  void read_one_reply();
  void fail(const std::string& why);  // with mutex_ held

  WorkerOptions options_;
  Child child_;
  UniqueFd socket_;
  std::mutex write_mutex_;  // one request on the wire at a time
  std::mutex mutex_;        // everything below
  std::condition_variable replied_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::optional<std::string>> replies_;  // by request id: the reply's payload once read
  bool reading_ = false;
  bool broken_ = false;
  std::string broken_reason_;
};

}  // namespace mukaika
