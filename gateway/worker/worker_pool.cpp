#include "worker/worker_pool.h"

#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <deque>
#include <map>

#include "antivirus.h"
#include "digest.h"
#include "file_name.h"
#include "ipc/frame.h"
#include "worker/child.h"
#include "unique_fd.h"
#include "worker/worker_main.h"
#include "worker/worker_protocol.h"

namespace fs = std::filesystem;

namespace mukaika {

namespace {

using Clock = std::chrono::steady_clock;

// Room for names, reasons and action records next to the largest item.
constexpr std::uint64_t kFrameOverhead = 32ull << 20;
constexpr std::uint64_t kMaxActions = 100000;
// Consecutive workers that die before saying hello before the pool gives
// up and blocks what is left (fail closed) instead of forking forever.
constexpr int kMaxStartFailures = 3;
// How long a worker that closed its socket mid-item gets to finish dying
// (so its real cause of death, not our SIGKILL, is reported).
constexpr std::chrono::milliseconds kExitGrace{2000};

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

int count_threads() {
  std::error_code ec;
  int n = 0;
  for (auto it = fs::directory_iterator("/proc/self/task", ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? 1 : n;
}

Reason reason_timeout(std::chrono::milliseconds limit) {
  const std::string s = std::to_string((limit.count() + 999) / 1000);
  return {"worker.timeout", "無害化処理が制限時間 (" + s + " 秒) を超えたため、処理を強制終了して遮断しました",
          "blocked: sanitizing did not finish within " + s + " seconds and was stopped"};
}

Reason reason_memory(std::uint64_t bytes) {
  const std::string mib = std::to_string(bytes >> 20);
  return {"worker.memory", "無害化処理がメモリの上限 (" + mib + " MiB) を超えたため遮断しました",
          "blocked: sanitizing needed more than " + mib + " MiB of memory"};
}

Reason reason_crashed(const std::string& how) {
  return {"worker.crashed", "無害化処理が異常終了した (" + how + ") ため遮断しました",
          "blocked: the sanitizing process crashed (" + how + ")"};
}

Reason reason_seccomp() {
  return {"worker.seccomp",
          "無害化処理が許可されていない操作 (システムコール) を試みたため強制終了し、遮断しました。攻撃の可能性があります",
          "blocked: the sanitizing process attempted a forbidden system call and was stopped; this may be an attack"};
}

Reason reason_protocol(const std::string& detail) {
  return {"worker.protocol", "無害化処理から不正な応答があったため遮断しました (" + detail + ")",
          "blocked: the sanitizing process sent a malformed reply (" + detail + ")"};
}

Reason reason_start(const std::string& detail) {
  return {"worker.start", "無害化処理用のプロセスを起動できないため遮断しました (" + detail + ")",
          "blocked: no sandboxed worker could be started (" + detail + ")"};
}

std::string describe_exit(const ChildExit& e) {
  if (e.signaled()) return "killed by " + signal_name(e.signal());
  return "exit status " + std::to_string(e.exit_code());
}

std::string missing_layers(std::uint32_t layers, bool require_full) {
  std::string out;
  auto need = [&](std::uint32_t bit, const char* name) {
    if (!(layers & bit)) out += (out.empty() ? "" : ", ") + std::string(name);
  };
  need(kLayerSeccomp, "seccomp");
  need(kLayerNoNewPrivs, "no_new_privs");
  need(kLayerUnprivileged, "unprivileged user");
  need(kLayerRlimits, "resource limits");
  if (require_full) {
    need(kLayerNetNamespace, "network namespace");
    need(kLayerLandlock, "Landlock");
  }
  return out;
}

}  // namespace

std::optional<PipelineResult> refuse_oversize(const Item& item, const WorkerOptions& options) {
  if (item.bytes.size() <= options.max_item_bytes) return std::nullopt;
  const std::string n = std::to_string(options.max_item_bytes);
  Reason r{"limits.item_bytes", "サイズが上限 (" + n + " バイト) を超えたため遮断しました",
           "blocked: larger than " + n + " bytes"};
  return worker_failure_result(item, sha256_hex(item.bytes), r, options.language);
}

PipelineResult worker_failure_result(const Item& input, const std::string& sha256_in, const Reason& reason,
                                     Language language) {
  PipelineResult r;
  r.verdict = PipelineResult::Verdict::Blocked;
  r.sha256_in = sha256_in;
  r.kind = Kind::Unknown;
  r.item.verdict = ItemResult::Verdict::Blocked;
  r.item.role = input.role;
  r.item.input_name = input.name;
  r.item.name = input.name;
  r.item.path = input.path.empty() ? input.name : input.path;
  r.item.kind = Kind::Unknown;
  r.item.reason = reason;
  r.actions.push_back({r.item.path, "block", reason.code, reason.text(language), {}});
  return r;
}

WorkerEngine open_worker_engine(const Config& config, const SanitizerRegistry& registry, std::ostream& warnings) {
  WorkerEngine e;
  e.policy = std::make_unique<Policy>(config, registry);
  // Only the workers scan; each finds libclamav's temp dir "." in its own
  // private directory.
  Config engine = config;
  engine.antivirus.temp_dir = kWorkerEngineTempDir;
  e.scanner = open_scanner(engine, warnings);
  return e;
}

std::string sandbox_setting_hint(Language language) {
  return language == Language::Ja
             ? "分離できない環境で動かすには設定 workers.require_full_sandbox = false を使います (非推奨)。"
             : "To run where the sandbox cannot be complete, set workers.require_full_sandbox = false (not "
               "recommended).";
}

WorkerOptions worker_options(const Config& config) {
  WorkerOptions o;
  const WorkersConfig& w = config.workers;
  o.count = w.count > 0 ? w.count : std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  o.memory_bytes = w.memory_mb << 20;
  // The pipeline's own limit (checked between steps) comes first and gives
  // the clearer reason; the worker's is the hard stop behind it.
  o.time_limit = w.time_limit_seconds > 0 ? std::chrono::seconds(w.time_limit_seconds)
                                          : std::chrono::seconds(config.limits.max_seconds.count() + 10);
  o.recycle_after = w.recycle_after;
  o.user = w.user;
  o.require_full_sandbox = w.require_full_sandbox;
  o.temp_base = config.antivirus.temp_dir;
  o.max_item_bytes = config.limits.max_item_bytes;
  o.max_name_chars = config.limits.max_name_chars;
  o.max_file_bytes = std::max(config.antivirus.max_scan_bytes, config.limits.max_item_bytes);
  o.language = config.language;
  return o;
}

struct WorkerPool::Impl {
  struct Job {
    std::size_t index = 0;
    Item input;  // without its bytes: for a failure result
    std::string sha256_in;
  };

  struct Slot {
    enum class State {
      Empty,     // no worker
      Starting,  // forked, waiting for its hello
      Idle,      // ready for an item
      Busy,      // sanitizing job
      Ending,    // closed its socket during an item; waiting for its pidfd
    };
    State state = State::Empty;
    Child child;
    UniqueFd sock;
    UniqueFd pidfd;  // readable once the worker has exited
    std::string dir;
    ipc::FrameReader reader{0};
    std::string out_header, out_payload;
    std::size_t out_offset = 0;
    Clock::time_point deadline;
    std::optional<Job> job;
    int served = 0;
  };

  // A worker that served its last item, on its way out (it exits when its
  // socket closes); reaped when its pidfd says so, killed if it lingers.
  struct Retired {
    Child child;
    UniqueFd pidfd;
    std::string dir;
    Clock::time_point deadline;
  };

  WorkerOptions opt;
  ItemProcessor processor;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::string run_dir;
  // opt.count workers sanitize at once; one more slot holds a spare that is
  // forked and sandboxed while the others work, so a fresh worker is ready
  // when one is retired.
  std::vector<Slot> slots;
  std::vector<Retired> retired;
  SandboxReport first_sandbox;
  Stats stats;
  std::uint64_t serial = 0;
  int start_failures = 0;
  std::string last_start_failure;
  bool warned = false;
  std::map<std::size_t, std::optional<PipelineResult>> finished;  // of the current run(), by index
  // submit()/wait(): items not yet handed to a worker, and how many are
  // submitted and not yet returned. Results go to `finished` by tag.
  std::deque<std::pair<std::uint64_t, Item>> waiting;
  std::size_t async_in_flight = 0;

  Impl(WorkerOptions o, ItemProcessor p) : opt(std::move(o)), processor(std::move(p)) {
    if (opt.count < 1) opt.count = 1;
    if (opt.recycle_after < 1) opt.recycle_after = 1;
    if (::geteuid() == 0) {
      passwd* pw = ::getpwnam(opt.user.c_str());
      if (!pw)
        throw WorkerError("ワーカー用ユーザー \"" + opt.user + "\" が存在しません (workers.user) / worker user \"" +
                          opt.user + "\" does not exist (workers.user)");
      if (pw->pw_uid == 0)
        throw WorkerError("ワーカー用ユーザーに root は使えません (workers.user) / workers.user must not be root");
      uid = pw->pw_uid;
      gid = pw->pw_gid;
    }
    make_run_dir();
    slots.resize(static_cast<std::size_t>(opt.count) + 1);
  }

  ~Impl() {
    for (Slot& s : slots) kill_slot(s);
    for (Retired& r : retired) {
      r.child.kill();
      r.child.wait();
      remove_dir(r.dir);
    }
    remove_dir(run_dir);
  }

  std::uint64_t max_request() const { return opt.max_item_bytes + kFrameOverhead; }
  std::uint64_t max_reply() const { return opt.max_item_bytes + kFrameOverhead; }

  void make_run_dir() {
    std::string base = opt.temp_base.empty() ? default_temp_base() : opt.temp_base;
    sweep_stale_run_dirs(base);
    std::string pattern = (fs::path(base) / ("mukaika-workers-" + std::to_string(::getpid()) + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data()))
      throw WorkerError("ワーカー用の一時ディレクトリを作れません / cannot create the workers' directory under " + base +
                        ": " + std::strerror(errno));
    run_dir = pattern;
    // Workers may pass through to their own directory, not list the others.
    ::chmod(run_dir.c_str(), 0711);
  }

  // libclamav writes every part it unpacks to its scratch directory and
  // removes it again: on a disk file system that is an inode created and
  // freed, and a directory made and removed, several times per mail. In
  // memory (tmpfs) it costs a fraction, so /dev/shm is the default where it
  // is a tmpfs with room for every worker's worst case (max_file_bytes
  // each, libclamav's own bound); else $TMPDIR, else /tmp.
  std::string default_temp_base() const {
    struct statfs fs {};
    if (::statfs("/dev/shm", &fs) == 0 && static_cast<unsigned long>(fs.f_type) == TMPFS_MAGIC &&
        ::access("/dev/shm", W_OK | X_OK) == 0) {
      const unsigned __int128 room = static_cast<unsigned __int128>(fs.f_bavail) * fs.f_bsize;
      const unsigned __int128 need = static_cast<unsigned __int128>(std::max(1, opt.count)) * opt.max_file_bytes;
      if (room >= need) return "/dev/shm";
    }
    const char* t = std::getenv("TMPDIR");
    return t && *t ? t : "/tmp";
  }

  // A supervisor that was killed (kill -9, Ctrl-C) leaves its run directory
  // behind, possibly with libclamav's temp copies of what it was scanning.
  // Removed here once its pid is gone; a live supervisor's is left alone.
  static void sweep_stale_run_dirs(const std::string& base) {
    std::error_code ec;
    const std::string prefix = "mukaika-workers-";
    for (auto it = fs::directory_iterator(base, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const std::string rest = name.substr(prefix.size());
      const auto dash = rest.find('-');
      if (dash == std::string::npos || dash == 0) continue;
      pid_t owner = 0;
      try {
        owner = static_cast<pid_t>(std::stol(rest.substr(0, dash)));
      } catch (const std::exception&) {
        continue;
      }
      struct stat st {};
      if (owner <= 0 || ::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
        continue;
      if (::kill(owner, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
      remove_dir(it->path().string());
    }
  }

  std::string make_worker_dir() {
    std::string dir = run_dir + "/w" + std::to_string(++serial);
    if (::mkdir(dir.c_str(), 0700) != 0)
      throw WorkerError("cannot create worker directory " + dir + ": " + std::strerror(errno));
    if (uid && ::chown(dir.c_str(), *uid, *gid) != 0) {
      int err = errno;
      ::rmdir(dir.c_str());
      throw WorkerError("cannot hand worker directory " + dir + " to " + opt.user + ": " + std::strerror(err));
    }
    return dir;
  }

  // Only ever called on a directory whose worker has been reaped: nothing
  // can swap a symlink in while it is removed.
  static void remove_dir(const std::string& dir) {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }

  // --- a worker's life ----------------------------------------------------

  void spawn(Slot& s) {
    if (int threads = count_threads(); threads > 1)
      throw WorkerError("refusing to fork workers from a process with " + std::to_string(threads) +
                        " threads (create the WorkerPool before starting threads)");
    Slot fresh;
    fresh.dir = make_worker_dir();
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      int err = errno;
      remove_dir(fresh.dir);
      throw WorkerError(std::string("socketpair: ") + std::strerror(err));
    }
    UniqueFd mine(fds[0]), theirs(fds[1]);

    worker::Launch launch;
    launch.socket_fd = theirs.get();
    launch.supervisor = ::getpid();
    launch.sandbox.work_dir = fresh.dir;
    launch.sandbox.memory_bytes = opt.memory_bytes;
    // CPU seconds: a backstop behind the wall clock, generous enough for a
    // renderer using every core. The hard limit bounds the worker's life.
    const auto limit_s = static_cast<std::uint64_t>((opt.time_limit.count() + 999) / 1000);
    const auto cores = static_cast<std::uint64_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    launch.cpu_seconds_per_item = limit_s * cores + 1;
    launch.sandbox.cpu_seconds_hard =
        launch.cpu_seconds_per_item * (static_cast<std::uint64_t>(opt.recycle_after) + 1);
    launch.sandbox.max_file_bytes = opt.max_file_bytes;
    launch.sandbox.uid = uid;
    launch.sandbox.gid = gid;
    launch.sandbox.require_full = opt.require_full_sandbox;
    launch.sandbox.read_only_paths = opt.read_only_paths;
    launch.max_request_bytes = max_request();
    launch.max_item_bytes = opt.max_item_bytes;

    try {
      fresh.child = Child::spawn([&] { return worker::serve(launch, processor); });
    } catch (const std::system_error& e) {
      remove_dir(fresh.dir);
      throw WorkerError(std::string("cannot start a worker: ") + e.what());
    }
    theirs.reset();
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": call the kernel directly.
    fresh.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, fresh.child.pid(), 0)));
    if (!fresh.pidfd) {
      int err = errno;
      kill_slot(fresh);
      throw WorkerError(std::string("pidfd_open: ") + std::strerror(err));
    }
    fresh.sock = std::move(mine);
    fresh.reader = ipc::FrameReader(kFrameOverhead);  // a hello is small
    fresh.state = Slot::State::Starting;
    fresh.deadline = Clock::now() + opt.start_limit;
    s = std::move(fresh);
    ++stats.workers_started;
  }

  // SIGKILL, reap (blocks only as long as the kernel takes to tear the
  // process down), remove its directory, empty the slot.
  std::optional<ChildExit> kill_slot(Slot& s) {
    std::optional<ChildExit> exit;
    if (s.child) {
      s.child.kill();
      exit = s.child.wait();
    }
    remove_dir(s.dir);
    s = Slot{};
    return exit;
  }

  // The worker has exited (its pidfd is readable): reap without killing, so
  // the status is its own.
  ChildExit reap_slot(Slot& s) {
    ChildExit exit = s.child.wait();
    remove_dir(s.dir);
    s = Slot{};
    return exit;
  }

  void retire(Slot& s) {
    s.sock.reset();  // EOF: the worker exits
    retired.push_back({std::move(s.child), std::move(s.pidfd), s.dir, Clock::now() + kExitGrace});
    s = Slot{};
  }

  void start_failed(Slot& s, std::optional<ChildExit> exit, const std::string& why) {
    if (!exit) exit = kill_slot(s);
    else if (s.state != Slot::State::Empty) kill_slot(s);
    ++start_failures;
    last_start_failure = why + (exit ? " (" + describe_exit(*exit) + ")" : "");
  }

  // --- what a worker says -------------------------------------------------

  void on_hello(Slot& s, const ipc::Frame& f) {
    worker::Hello h = worker::decode_hello(f.payload);
    std::string missing = missing_layers(h.sandbox.layers, opt.require_full_sandbox);
    if (!missing.empty()) {
      // Not worth retrying: every next worker would lack the same layers.
      kill_slot(s);
      throw WorkerError("ワーカーのサンドボックスが不完全です / the worker sandbox is incomplete: missing " + missing);
    }
    if (!warned && !h.sandbox.missing.empty()) {
      warned = true;
      std::cerr << "mukaika: 警告 / WARNING: ワーカーは分離の一部なしで動作します (workers.require_full_sandbox = false) / "
                   "workers run WITHOUT part of their sandbox (workers.require_full_sandbox = false):\n";
      for (const auto& m : h.sandbox.missing) std::cerr << "  - " << m << "\n";
    }
    if (first_sandbox.layers == 0) first_sandbox = h.sandbox;
    start_failures = 0;
    s.state = Slot::State::Idle;
    s.reader = ipc::FrameReader(max_reply());
  }

  void on_reply(Slot& s, const ipc::Frame& f) {
    worker::ReplyLimits limits{opt.max_item_bytes, kMaxActions};
    PipelineResult r = worker::decode_reply(f.payload, limits);
    // The name becomes a file name on the supervisor's disk: it must be one
    // the pipeline could have produced.
    if (r.verdict != PipelineResult::Verdict::Blocked && r.item.role == Role::File &&
        safe_file_name(r.item.name, static_cast<std::size_t>(opt.max_name_chars), "") != r.item.name)
      throw ipc::ProtocolError("output name is not a safe file name");
    Job job = std::move(*s.job);
    s.job.reset();
    r.sha256_in = job.sha256_in;
    r.sha256_out = r.verdict == PipelineResult::Verdict::Blocked ? std::string() : sha256_hex(r.item.bytes);
    // An exception inside the pipeline may have left a library in a bad
    // state: such a worker serves no further item.
    bool internal_error = std::any_of(r.actions.begin(), r.actions.end(),
                                      [](const ActionRecord& a) { return a.code.starts_with("internal."); });
    finished[job.index] = std::move(r);
    ++stats.items;
    ++s.served;
    if (s.served >= opt.recycle_after || internal_error)
      retire(s);
    else
      s.state = Slot::State::Idle;
  }

  // The worker failed during an item: block the item with the reason and
  // empty the slot. `exit` is set when the worker has already been reaped.
  void fail_busy(Slot& s, std::optional<Reason> decided, std::optional<ChildExit> exit = std::nullopt) {
    Job job = std::move(*s.job);
    if (!exit) exit = kill_slot(s);
    s = Slot{};  // reaped either way: nothing left to kill
    Reason reason = decided ? *decided : classify(exit);
    ++stats.failures;
    ++stats.items;
    finished[job.index] = worker_failure_result(job.input, job.sha256_in, reason, opt.language);
  }

  Reason classify(const std::optional<ChildExit>& exit) const {
    if (!exit) return reason_crashed("unknown");
    const ChildExit& e = *exit;
    if (e.signaled()) {
      switch (e.signal()) {
        case SIGSYS:
          return reason_seccomp();
        case SIGXCPU:
          return reason_timeout(opt.time_limit);
        case SIGKILL: {
          // By us: it stayed alive after closing its socket mid-item.
          if (e.killed_by_owner) return reason_protocol("closed its connection without a reply");
          // By the kernel: the hard CPU limit, or the OOM killer.
          const auto cpu = static_cast<std::int64_t>(e.usage.ru_utime.tv_sec + e.usage.ru_stime.tv_sec);
          if (cpu * 1000 >= opt.time_limit.count()) return reason_timeout(opt.time_limit);
          return reason_memory(opt.memory_bytes);
        }
        default:
          return reason_crashed(signal_name(e.signal()));
      }
    }
    switch (e.exit_code()) {
      case kWorkerExitMemory:
        return reason_memory(opt.memory_bytes);
      case kWorkerExitProtocol:
        return reason_protocol("the worker could not read its request");
      default:
        return reason_crashed(describe_exit(e));
    }
  }

  void protocol_failure(Slot& s, const std::string& what) {
    switch (s.state) {
      case Slot::State::Busy:
      case Slot::State::Ending:
        return fail_busy(s, reason_protocol(what));
      case Slot::State::Starting:
        return start_failed(s, std::nullopt, "malformed hello: " + what);
      default:
        kill_slot(s);  // an idle worker that talks out of turn
    }
  }

  void on_readable(Slot& s) {
    while (s.sock) {
      ipc::FrameReader::Status st;
      try {
        st = s.reader.read_from(s.sock.get());
      } catch (const ipc::ProtocolError& e) {
        return protocol_failure(s, e.what());
      }
      if (st == ipc::FrameReader::Status::NeedMore) return;
      if (st == ipc::FrameReader::Status::Closed) return on_closed(s);
      ipc::Frame f = s.reader.take();
      try {
        if (s.state == Slot::State::Starting && f.type == ipc::FrameType::Hello)
          on_hello(s, f);
        else if (s.state == Slot::State::Busy && f.type == ipc::FrameType::Reply && !pending_output(s))
          on_reply(s, f);
        else
          return protocol_failure(s, "unexpected frame");
      } catch (const ipc::ProtocolError& e) {
        return protocol_failure(s, e.what());
      }
      if (s.state != Slot::State::Busy && s.state != Slot::State::Starting) return;
    }
  }

  // The worker closed its end. Mid-item it is dying (or pretending to):
  // its pidfd, within a grace period, says how it ended.
  void on_closed(Slot& s) {
    switch (s.state) {
      case Slot::State::Busy:
        s.sock.reset();
        s.state = Slot::State::Ending;
        s.deadline = Clock::now() + kExitGrace;
        return;
      case Slot::State::Starting:
        return start_failed(s, std::nullopt, "the worker ended before it was ready");
      default:
        kill_slot(s);
    }
  }

  void on_exited(Slot& s) {
    if (s.sock) on_readable(s);  // a reply sent just before it exited still counts
    switch (s.state) {
      case Slot::State::Starting:
        return start_failed(s, reap_slot(s), "the worker ended before it was ready");
      case Slot::State::Busy:
      case Slot::State::Ending:
        return fail_busy(s, std::nullopt, reap_slot_keep_job(s));
      case Slot::State::Idle:
        reap_slot(s);
        return;
      default:
        return;
    }
  }

  // reap_slot() for a slot whose job fail_busy() still needs.
  ChildExit reap_slot_keep_job(Slot& s) {
    ChildExit exit = s.child.wait();
    remove_dir(s.dir);
    s.dir.clear();
    s.sock.reset();
    s.pidfd.reset();
    s.state = Slot::State::Empty;
    return exit;
  }

  void on_deadline(Slot& s) {
    switch (s.state) {
      case Slot::State::Starting:
        return start_failed(s, std::nullopt, "the worker did not report ready in time");
      case Slot::State::Busy:
        return fail_busy(s, reason_timeout(opt.time_limit));
      case Slot::State::Ending:
        return fail_busy(s, std::nullopt);  // still alive: classify() says so
      default:
        return;
    }
  }

  bool pending_output(const Slot& s) const {
    return s.state == Slot::State::Busy && s.out_offset < s.out_header.size() + s.out_payload.size();
  }

  void on_writable(Slot& s) {
    try {
      s.out_offset = ipc::send_some(s.sock.get(), s.out_header, s.out_payload, s.out_offset);
    } catch (const ipc::ProtocolError&) {
      // Its end is closed: it died. Its pidfd will say how.
      s.sock.reset();
      s.state = Slot::State::Ending;
      s.deadline = Clock::now() + kExitGrace;
      return;
    }
    if (!pending_output(s)) {
      s.out_header.clear();
      wipe(s.out_payload);  // it may hold PPAP passwords
      s.out_payload = std::string();
    }
  }

  void dispatch(Slot& s, std::size_t index, Item item) {
    Job job;
    job.index = index;
    job.sha256_in = sha256_hex(item.bytes);
    s.out_payload = worker::encode_request(item);
    s.out_header = ipc::encode_header(ipc::FrameType::Request, s.out_payload.size());
    s.out_offset = 0;
    item.bytes = std::string();
    wipe_passphrases(item.passphrases);
    job.input = std::move(item);
    s.job = std::move(job);
    s.state = Slot::State::Busy;
    s.deadline = Clock::now() + opt.time_limit;
    on_writable(s);
  }

  // --- the loop -------------------------------------------------------------

  // Waits for anything (at most until the nearest deadline, or `cap`) and
  // handles it.
  void poll_once(std::chrono::milliseconds cap, int extra_fd = -1, bool* extra_readable = nullptr) {
    enum What { Socket, Exit, RetiredExit };
    std::vector<pollfd> fds;
    std::vector<std::pair<What, std::size_t>> owner;
    const auto now = Clock::now();
    auto wait = cap;
    auto until = [&](Clock::time_point t) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - now) + std::chrono::milliseconds(1);
      wait = std::min(wait, std::max(left, std::chrono::milliseconds(0)));
    };
    for (std::size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (s.state == Slot::State::Empty) continue;
      if (s.sock) {
        fds.push_back({s.sock.get(), static_cast<short>(POLLIN | (pending_output(s) ? POLLOUT : 0)), 0});
        owner.push_back({Socket, i});
      }
      if (s.state != Slot::State::Idle) {
        fds.push_back({s.pidfd.get(), POLLIN, 0});
        owner.push_back({Exit, i});
        until(s.deadline);
      }
    }
    for (std::size_t i = 0; i < retired.size(); ++i) {
      fds.push_back({retired[i].pidfd.get(), POLLIN, 0});
      owner.push_back({RetiredExit, i});
      until(retired[i].deadline);
    }
    if (extra_fd >= 0) fds.push_back({extra_fd, POLLIN, 0});  // last, owned by nobody here
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) throw WorkerError(std::string("poll: ") + std::strerror(errno));
    if (extra_fd >= 0) {
      if (extra_readable) *extra_readable = n > 0 && (fds.back().revents & (POLLIN | POLLHUP | POLLERR));
      fds.pop_back();
    }

    // Sockets first, so that a reply sent just before an exit counts. A
    // slot emptied by an earlier event no longer owns its fds: compare.
    for (std::size_t k = 0; n > 0 && k < fds.size(); ++k) {
      auto [what, i] = owner[k];
      if (what != Socket || !fds[k].revents) continue;
      Slot& s = slots[i];
      if (s.sock.get() != fds[k].fd) continue;
      if (fds[k].revents & POLLOUT) on_writable(s);
      if (s.sock.get() == fds[k].fd && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) on_readable(s);
    }
    for (std::size_t k = 0; n > 0 && k < fds.size(); ++k) {
      auto [what, i] = owner[k];
      if (what != Exit || !fds[k].revents) continue;
      Slot& s = slots[i];
      if (s.pidfd.get() == fds[k].fd) on_exited(s);
    }
    const auto later = Clock::now();
    for (auto it = retired.begin(); it != retired.end();) {
      std::optional<ChildExit> e = it->child.try_wait();
      if (!e && later >= it->deadline) {
        it->child.kill();
        e = it->child.wait();
      }
      if (e) {
        remove_dir(it->dir);
        it = retired.erase(it);
      } else {
        ++it;
      }
    }
    for (Slot& s : slots) {
      if ((s.state == Slot::State::Starting || s.state == Slot::State::Busy || s.state == Slot::State::Ending) &&
          later >= s.deadline)
        on_deadline(s);
    }
  }

  std::size_t count_in(std::initializer_list<Slot::State> states) const {
    return static_cast<std::size_t>(std::count_if(slots.begin(), slots.end(), [&](const Slot& s) {
      return std::find(states.begin(), states.end(), s.state) != states.end();
    }));
  }

  // The ready worker that has served the most: a worker is used up before
  // the spare is touched, so recycling happens after recycle_after items.
  Slot* idle_slot() {
    if (count_in({Slot::State::Busy, Slot::State::Ending}) >= static_cast<std::size_t>(opt.count)) return nullptr;
    Slot* best = nullptr;
    for (Slot& s : slots)
      if (s.state == Slot::State::Idle && (!best || s.served > best->served)) best = &s;
    return best;
  }

  // Starts workers in empty slots until `wanted` are starting or ready.
  void fill(std::size_t wanted) {
    std::size_t live = count_in({Slot::State::Starting, Slot::State::Idle});
    for (Slot& s : slots) {
      if (live >= wanted || start_failures >= kMaxStartFailures) return;
      if (s.state != Slot::State::Empty) continue;
      try {
        spawn(s);
        ++live;
      } catch (const WorkerError& e) {
        ++start_failures;
        last_start_failure = e.what();
      }
    }
  }

  void wait_until_ready() {
    fill(1);
    while (count_in({Slot::State::Idle}) == 0) {
      if (start_failures >= kMaxStartFailures || count_in({Slot::State::Starting}) == 0)
        throw WorkerError("サンドボックス化したワーカーを起動できません / cannot start a sandboxed worker: " +
                          last_start_failure);
      poll_once(std::chrono::milliseconds(1000));
    }
  }

  void run(std::size_t count, const Loader& load, const Sink& done) {
    finished.clear();
    start_failures = 0;
    std::size_t next_load = 0, next_done = 0;
    // How far ahead of the oldest unfinished item work is handed out: bounds
    // the results held back to keep the output in input order.
    const std::size_t window = static_cast<std::size_t>(opt.count) * 4 + 4;
    try {
      while (next_done < count) {
        for (auto it = finished.find(next_done); it != finished.end(); it = finished.find(next_done)) {
          std::optional<PipelineResult> result = std::move(it->second);
          finished.erase(it);
          done(next_done++, std::move(result));
        }
        if (next_done >= count) break;

        bool progressed = false;
        while (next_load < count && next_load - next_done < window) {
          const bool broken = start_failures >= kMaxStartFailures;
          Slot* s = broken ? nullptr : idle_slot();
          if (!broken && !s) break;
          std::optional<Item> item = load(next_load);
          progressed = true;
          if (item) {
            item->name = safe_file_name(item->name, static_cast<std::size_t>(opt.max_name_chars), "input");
            if (item->path.empty()) item->path = item->name;
          }
          if (!item) {
            finished[next_load] = std::nullopt;
          } else if (auto refused = refuse_oversize(*item, opt)) {
            finished[next_load] = std::move(*refused);
          } else if (broken) {
            // Fail closed: nothing can be sanitized; block what is left.
            ++stats.failures;
            finished[next_load] =
                worker_failure_result(*item, sha256_hex(item->bytes), reason_start(last_start_failure), opt.language);
          } else {
            dispatch(*s, next_load, std::move(*item));
          }
          ++next_load;
        }
        if (progressed && finished.count(next_done)) continue;

        // A worker starting for every item not yet handed out, up to the
        // free slots (with recycle_after = 1 the next worker is forked and
        // sandboxed while the current item is being sanitized).
        const std::size_t busy = count_in({Slot::State::Busy, Slot::State::Ending});
        fill(std::min(count - next_load, slots.size() - busy));
        if (start_failures >= kMaxStartFailures && next_load < count) continue;
        poll_once(std::chrono::milliseconds(1000));
      }
    } catch (...) {
      for (Slot& s : slots)
        if (s.state == Slot::State::Busy || s.state == Slot::State::Ending) kill_slot(s);
      finished.clear();
      throw;
    }
    // The next call (the daemon's next item) should not wait for a fork.
    fill(1);
  }

  // --- submit()/wait() ------------------------------------------------------

  void submit(std::uint64_t tag, Item item) {
    item.name = safe_file_name(item.name, static_cast<std::size_t>(opt.max_name_chars), "input");
    if (item.path.empty()) item.path = item.name;
    ++async_in_flight;
    start_failures = 0;  // each new item may try to start workers again, as run() does
    if (auto refused = refuse_oversize(item, opt)) {
      finished[tag] = std::move(*refused);
      return;
    }
    waiting.emplace_back(tag, std::move(item));
  }

  // Hands waiting items to free workers and keeps workers starting for the
  // rest (one spare when nothing waits).
  void pump() {
    while (!waiting.empty()) {
      if (start_failures >= kMaxStartFailures) {
        // Fail closed: nothing can be sanitized now; block what waits. The
        // next item tries to start workers again.
        for (auto& [tag, item] : waiting) {
          ++stats.failures;
          finished[tag] =
              worker_failure_result(item, sha256_hex(item.bytes), reason_start(last_start_failure), opt.language);
        }
        waiting.clear();
        start_failures = 0;
        break;
      }
      Slot* s = idle_slot();
      if (!s) break;
      dispatch(*s, waiting.front().first, std::move(waiting.front().second));
      waiting.pop_front();
    }
    const std::size_t busy = count_in({Slot::State::Busy, Slot::State::Ending});
    fill(std::min(std::max<std::size_t>(waiting.size(), 1), slots.size() - busy));
  }

  std::vector<std::pair<std::uint64_t, PipelineResult>> wait(std::chrono::milliseconds cap, int extra_fd,
                                                              bool& extra_readable) {
    extra_readable = false;
    try {
      pump();
      // Results at hand go out at once; extra_fd is still looked at.
      poll_once(finished.empty() ? cap : std::chrono::milliseconds(0), extra_fd, &extra_readable);
      pump();
    } catch (...) {
      for (Slot& s : slots)
        if (s.state == Slot::State::Busy || s.state == Slot::State::Ending) kill_slot(s);
      throw;
    }
    std::vector<std::pair<std::uint64_t, PipelineResult>> out;
    for (auto& [tag, result] : finished) {
      // Every submitted item has a result (failures are blocked results).
      if (result) out.emplace_back(tag, std::move(*result));
    }
    finished.clear();
    async_in_flight -= std::min(async_in_flight, out.size());
    return out;
  }
};

WorkerPool::WorkerPool(WorkerOptions options, ItemProcessor processor)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(processor))) {
  impl_->wait_until_ready();
}

WorkerPool::~WorkerPool() = default;

const SandboxReport& WorkerPool::sandbox() const { return impl_->first_sandbox; }
const WorkerOptions& WorkerPool::options() const { return impl_->opt; }

void WorkerPool::run(std::size_t count, const Loader& load, const Sink& done) { impl_->run(count, load, done); }

PipelineResult WorkerPool::run_one(Item item) {
  std::optional<PipelineResult> out;
  std::optional<Item> in(std::move(item));
  run(1, [&](std::size_t) { return std::move(in); }, [&](std::size_t, std::optional<PipelineResult> r) { out = std::move(r); });
  return std::move(*out);
}

void WorkerPool::submit(std::uint64_t tag, Item item) { impl_->submit(tag, std::move(item)); }

std::vector<std::pair<std::uint64_t, PipelineResult>> WorkerPool::wait(std::chrono::milliseconds cap, int extra_fd,
                                                                       bool& extra_readable) {
  return impl_->wait(cap, extra_fd, extra_readable);
}

std::size_t WorkerPool::in_flight() const { return impl_->async_in_flight; }

std::vector<pid_t> WorkerPool::idle_worker_pids() const {
  std::vector<pid_t> out;
  for (const auto& s : impl_->slots)
    if (s.state == Impl::Slot::State::Idle) out.push_back(s.child.pid());
  return out;
}

WorkerPool::Stats WorkerPool::stats() const { return impl_->stats; }

}  // namespace mukaika
