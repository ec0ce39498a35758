// WorkerPool: the supervisor side of the sandboxed workers.
//
// Everything that parses untrusted bytes (libmagic, libclamav, GMime,
// libxml2, Poppler, libarchive: all of Pipeline::run) runs in a worker
// process forked from the supervisor and sandboxed (sandbox.h) before it
// reads its first item. The supervisor loads configuration, policy and the
// libclamav engine once; forked workers share them copy-on-write.
//
// Promises:
// - Every item gets a result: run() in input order, submit()/wait() as
//   each finishes. A worker that crashes, is killed by seccomp, runs out of
//   memory, overruns the time limit, or sends anything but a well-formed
//   reply yields a Blocked result whose single
//   action names the reason (worker.crashed, worker.seccomp, worker.memory,
//   worker.timeout, worker.protocol, worker.start); the worker is replaced
//   and the next item is served.
// - The SHA-256 values in a result are computed here, from the bytes sent
//   and received, never taken from a worker.
// - A worker serves at most `recycle_after` items and is replaced after any
//   failure or internal error. Workers never outlive the pool.
// - The supervisor never waits for a worker's cooperation: it polls every
//   socket with the nearest deadline as timeout, reads and writes without
//   blocking, and only waits for the kernel to tear down a worker it killed.
//
// Construct the pool before starting any thread: fork() copies only the
// calling thread, and the pool refuses (WorkerError) to fork a process that
// has others.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config.h"
#include "pipeline.h"
#include "policy.h"
#include "worker/sandbox.h"

namespace mukaika {

class WorkerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct WorkerOptions {
  int count = 1;
  std::uint64_t memory_bytes = 1ull << 30;       // per worker, beyond the shared engine
  std::chrono::milliseconds time_limit{130000};  // wall clock per item
  int recycle_after = 100;                       // items per worker
  std::string user = "nobody";                   // the worker user when started as root
  bool require_full_sandbox = true;              // namespaces and Landlock, or refuse to start
  std::string temp_base;                         // where the run's directory goes; "" = /dev/shm (a tmpfs with room), else $TMPDIR or /tmp
  std::uint64_t max_item_bytes = 50ull << 20;    // limits.max_item_bytes: largest request and output
  int max_name_chars = 120;                      // limits.max_name_chars: output names are checked
  std::uint64_t max_file_bytes = 400ull << 20;   // RLIMIT_FSIZE (libclamav temp files)
  Language language = Language::Ja;
  std::vector<std::string> read_only_paths = default_read_only_paths();
  std::chrono::milliseconds start_limit{10000};  // a new worker must report ready within this
};

// libclamav's temp directory (CL_ENGINE_TMPDIR) when scanning happens in
// workers: the engine is loaded once in the supervisor, and each worker's
// working directory is its own private, empty directory, so the relative
// path "." sends every worker's temp files there and nowhere else (Landlock
// lets a worker write nowhere else). antivirus.temp_dir, when set, is where
// those private directories are made.
constexpr const char* kWorkerEngineTempDir = ".";

// [workers], [limits] and [antivirus] of a configuration.
WorkerOptions worker_options(const Config& config);

// The policy and the virus engine that workers share, loaded once in the
// supervisor; libclamav's temp dir is set to each worker's own directory
// (kWorkerEngineTempDir). Throws ConfigError with an operator's message.
struct WorkerEngine {
  std::unique_ptr<Policy> policy;
  std::unique_ptr<Scanner> scanner;
};
WorkerEngine open_worker_engine(const Config& config, const SanitizerRegistry& registry, std::ostream& warnings);

// For an operator after a WorkerError at start: the setting that runs
// without a complete sandbox, and that it is not recommended.
std::string sandbox_setting_hint(Language language);

// Runs inside a worker, once per item.
using ItemProcessor = std::function<PipelineResult(Item)>;

class WorkerPool {
 public:
  // Starts one worker and waits until it reports its sandbox in force.
  // Throws WorkerError when it cannot (the message says what is missing and
  // which setting would allow it).
  WorkerPool(WorkerOptions options, ItemProcessor processor);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The sandbox the first worker reported.
  const SandboxReport& sandbox() const;
  const WorkerOptions& options() const;

  // Sanitizes items 0..count-1 across the workers. `load(i)` is called just
  // before item i is handed to a worker (so at most a few items are held in
  // memory); nullopt means "no item here" (the caller recorded why).
  // `done(i, result)` is called in input order for every i, with nullopt for
  // the items load() skipped. Exceptions from load or done propagate (the
  // workers in flight are killed).
  using Loader = std::function<std::optional<Item>(std::size_t index)>;
  using Sink = std::function<void(std::size_t index, std::optional<PipelineResult> result)>;
  void run(std::size_t count, const Loader& load, const Sink& done);

  PipelineResult run_one(Item item);

  // Asynchronous use, for a single-threaded loop that also waits on a file
  // descriptor of its own (the sanitizer service serves several callers at
  // once). submit() queues an item under the caller's `tag`; it goes to the
  // next free worker. wait() hands out queued items, watches the workers
  // (replies, exits, deadlines: the same promises as run()) and `extra_fd`
  // (-1: none) for at most `cap`, and returns the items that finished, in
  // the order they finished; `extra_readable` says whether extra_fd became
  // readable (or hung up). Every submitted item gets exactly one result.
  // When no worker can be started, the queued items are blocked
  // (worker.start) and the next item tries again, as with run().
  // Exceptions propagate (the workers in flight are killed); do not mix
  // with run() while items are in flight.
  void submit(std::uint64_t tag, Item item);
  std::vector<std::pair<std::uint64_t, PipelineResult>> wait(std::chrono::milliseconds cap, int extra_fd,
                                                              bool& extra_readable);
  // Items submitted and not yet returned by wait().
  std::size_t in_flight() const;

  // For tests: pids of the workers waiting for an item.
  std::vector<pid_t> idle_worker_pids() const;

  struct Stats {
    std::uint64_t workers_started = 0;
    std::uint64_t items = 0;
    std::uint64_t failures = 0;  // items blocked because of their worker
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The blocked result the supervisor writes for an item whose worker failed.
// `code` is one of the worker.* codes above.
PipelineResult worker_failure_result(const Item& input, const std::string& sha256_in, const Reason& reason,
                                     Language language);

// An item no worker needs to see: over options.max_item_bytes, blocked
// unread with the reason the pipeline would give (limits.item_bytes).
// Whoever hands items to workers asks this first: the pool, and the
// SanitizerService, whose frames are sized for items within the limit.
std::optional<PipelineResult> refuse_oversize(const Item& item, const WorkerOptions& options);

// Exit codes of a worker process.
constexpr int kWorkerExitSandbox = 71;   // could not enter its sandbox
constexpr int kWorkerExitProtocol = 72;  // the supervisor's request made no sense
constexpr int kWorkerExitMemory = 73;    // std::bad_alloc: the address-space limit

}  // namespace mukaika
