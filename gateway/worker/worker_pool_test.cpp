// The sandboxed workers, with real processes: a sanitizer that crashes,
// loops, exhausts memory, opens a socket, execs, forks or lies on the wire
// is blocked with the right reason and the next item is served; the sandbox
// is really in force (/proc/<pid>/status, what a probe inside can and cannot
// do); results come back in input order and match the in-process pipeline.
#include "worker/worker_pool.h"

#include <grp.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <future>
#include <sstream>
#include <thread>

#include "archive_flatten/sevenzip.h"
#include "av_clamav/clamav_scanner.h"
#include "digest.h"
#include "test_support.h"
#include "worker/sanitizer_service.h"
#include "worker/testing/fault_sanitizers.h"

namespace mukaika {
namespace {

namespace fs = std::filesystem;

// ASan's allocator reports "out of memory" and exits instead of throwing
// std::bad_alloc, so under ASan a worker over its memory limit is reported
// as crashed (docs/isolation.md, "ASan builds").
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
// Long enough to exhaust 128 MiB on a busy machine (and for ASan to write
// its report).
constexpr std::chrono::milliseconds kTimeLimit{kAsan ? 8000 : 3000};

Item text_item(const std::string& content, const std::string& name = "item.txt") {
  Item item;
  item.bytes = content;
  item.name = name;
  item.role = Role::File;
  return item;
}

std::map<std::string, std::string> parse_probe(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string proc_status(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

// A policy whose text chain is the misbehaving test.fault sanitizer.
struct FaultFixture {
  SanitizerRegistry registry;
  Config config;
  testing::MarkerScanner scanner;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<Pipeline> pipeline;

  FaultFixture() {
    register_builtin_sanitizers(registry);
    testing::register_fault_sanitizers(registry);
    config = load_config(std::nullopt, registry);
    config.language = Language::En;
    config.policy_file[Kind::Text] = {"test.fault"};
    policy = std::make_unique<Policy>(config, registry);
    pipeline = std::make_unique<Pipeline>(*policy, scanner, config.limits, config.language);
  }

  WorkerOptions options(int count = 2, int recycle_after = 100) const {
    WorkerOptions o = worker_options(config);
    o.count = count;
    o.recycle_after = recycle_after;
    o.memory_bytes = 128ull << 20;
    o.time_limit = kTimeLimit;
    return o;
  }

  std::unique_ptr<WorkerPool> pool(const WorkerOptions& o) {
    Pipeline* p = pipeline.get();
    return std::make_unique<WorkerPool>(o, [p](Item item) { return p->run(std::move(item)); });
  }
};

std::vector<PipelineResult> run_all(WorkerPool& pool, std::vector<Item> items) {
  std::vector<PipelineResult> out;
  std::vector<std::size_t> order;
  pool.run(
      items.size(), [&](std::size_t i) { return std::optional<Item>(std::move(items[i])); },
      [&](std::size_t i, std::optional<PipelineResult> r) {
        order.push_back(i);
        out.push_back(std::move(*r));
      });
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], i) << "results out of input order";
  return out;
}

std::string code_of(const PipelineResult& r) { return r.actions.empty() ? "" : r.actions.back().code; }

TEST(WorkerPool, EveryFaultIsBlockedWithItsReasonAndTheNextItemIsServed) {
  FaultFixture f;
  auto pool = f.pool(f.options(2, 100));
  struct Case {
    std::string content, code;
  };
  const std::vector<Case> cases = {
      {"CRASH now", "worker.crashed"},
      {"fine 1", ""},
      {"LOOP forever", "worker.timeout"},
      {"fine 2", ""},
      {"ALLOC everything", kAsan ? "worker.crashed" : "worker.memory"},
      {"fine 3", ""},
      {"SOCKET to the internet", "worker.seccomp"},
      {"fine 4", ""},
      {"FORK a child", "worker.seccomp"},
      {"ABORT here", "worker.crashed"},
      {"GARBAGE reply", "worker.protocol"},
      {"HANGUP the socket", "worker.protocol"},
      {"fine 5", ""},
  };
  std::vector<Item> items;
  for (std::size_t i = 0; i < cases.size(); ++i) items.push_back(text_item(cases[i].content, "c" + std::to_string(i) + ".txt"));
  auto results = run_all(*pool, items);
  ASSERT_EQ(results.size(), cases.size());
  std::uint64_t failures = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PipelineResult& r = results[i];
    SCOPED_TRACE(cases[i].content);
    EXPECT_EQ(r.sha256_in, sha256_hex(cases[i].content));
    if (cases[i].code.empty()) {
      EXPECT_EQ(r.verdict, PipelineResult::Verdict::Clean);
      EXPECT_EQ(r.item.bytes, cases[i].content);
      EXPECT_EQ(r.sha256_out, sha256_hex(cases[i].content));
      continue;
    }
    ++failures;
    EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
    EXPECT_TRUE(r.item.bytes.empty());
    EXPECT_TRUE(r.sha256_out.empty());
    ASSERT_EQ(r.actions.size(), 1u);
    EXPECT_EQ(r.actions[0].action, "block");
    EXPECT_EQ(r.actions[0].code, cases[i].code) << r.actions[0].reason;
    EXPECT_EQ(r.actions[0].path, "c" + std::to_string(i) + ".txt");
    EXPECT_EQ(r.item.reason.code, cases[i].code);
  }
  EXPECT_EQ(pool->stats().failures, failures);
  EXPECT_EQ(pool->stats().items, cases.size());
}

TEST(WorkerPool, ReasonsNameTheSignalAndTheLimit) {
  FaultFixture f;
  auto pool = f.pool(f.options(1, 100));
  PipelineResult crash = pool->run_one(text_item("CRASH"));
  EXPECT_NE(crash.actions.at(0).reason.find("SIGSEGV"), std::string::npos) << crash.actions[0].reason;
  EXPECT_NE(crash.item.reason.ja.find("異常終了"), std::string::npos);
  PipelineResult loop = pool->run_one(text_item("LOOP"));
  const std::string limit = std::to_string(kTimeLimit.count() / 1000) + " seconds";
  EXPECT_NE(loop.actions.at(0).reason.find(limit), std::string::npos) << loop.actions[0].reason;
  if (!kAsan) {
    PipelineResult alloc = pool->run_one(text_item("ALLOC"));
    EXPECT_NE(alloc.actions.at(0).reason.find("128 MiB"), std::string::npos) << alloc.actions[0].reason;
  }
}

TEST(WorkerPool, SeccompAndNamespacesAreInForce) {
  FaultFixture f;
  auto pool = f.pool(f.options(1, 100));
  const SandboxReport& sb = pool->sandbox();
  EXPECT_TRUE(sb.layers & kLayerSeccomp);
  EXPECT_TRUE(sb.layers & kLayerNoNewPrivs);
  EXPECT_TRUE(sb.layers & kLayerNetNamespace);
  EXPECT_TRUE(sb.layers & kLayerLandlock);
  EXPECT_TRUE(sb.missing.empty());

  std::vector<pid_t> pids = pool->idle_worker_pids();
  ASSERT_EQ(pids.size(), 1u);
  const pid_t pid = pids[0];
  // What the kernel says about the worker, from outside.
  EXPECT_EQ(proc_status(pid, "Seccomp"), "2");  // SECCOMP_MODE_FILTER
  EXPECT_EQ(proc_status(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(proc_status(pid, "CapEff"), "0000000000000000");
  if (::geteuid() == 0) {
    EXPECT_EQ(proc_status(pid, "Uid").substr(0, 5), "65534");  // nobody
  }
  std::error_code ec;
  auto ours = fs::read_symlink("/proc/self/ns/net", ec);
  auto theirs = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/net", ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_NE(ours, theirs) << "the worker shares our network namespace";

  // And the socket call fails inside it: the worker is killed for trying.
  PipelineResult r = pool->run_one(text_item("SOCKET"));
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(code_of(r), "worker.seccomp");
  EXPECT_EQ(::kill(pid, 0), -1) << "the worker that tried is gone";
}

TEST(WorkerPool, ProbeSeesOnlyWhatTheSandboxAllows) {
  ::setenv("MUKAIKA_TEST_SECRET", "relay-password", 1);
  FaultFixture f;
  auto pool = f.pool(f.options(1, 100));
  PipelineResult r = pool->run_one(text_item("PROBE"));
  ::unsetenv("MUKAIKA_TEST_SECRET");
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << code_of(r);
  auto p = parse_probe(r.item.bytes);
  SCOPED_TRACE(r.item.bytes);
  EXPECT_EQ(p["seccomp"], "2");
  EXPECT_EQ(p["no_new_privs"], "1");
  EXPECT_EQ(p["cap_eff"], "0000000000000000");
  if (::geteuid() == 0) {
    EXPECT_EQ(p["uid"], "65534");
  }
  EXPECT_EQ(p["socket_unix"], "EPERM");             // seccomp: refused, not fatal
  EXPECT_EQ(p["read_etc_passwd"], "ok");            // on the read-only list
  EXPECT_EQ(p["read_etc_hostname"], "EACCES");      // Landlock: not on it
  EXPECT_EQ(p["read_proc_1_environ"], "EACCES");    // other processes
  EXPECT_EQ(p["read_samples"], "EACCES");           // the gateway's own files
  EXPECT_EQ(p["write_tmp"], "EACCES");
  EXPECT_EQ(p["write_dev_shm"], "EACCES");
  EXPECT_EQ(p["write_cwd"], "ok");                  // its private directory
  EXPECT_EQ(p["mkdir_cwd"], "ok");
  EXPECT_EQ(p["env_secret"], "absent");             // environment cleared
  EXPECT_EQ(p["env_home"], p["cwd"]);
  EXPECT_NE(p["cwd"].find("mukaika-workers-"), std::string::npos);
  EXPECT_FALSE(fs::exists("/tmp/mukaika-sandbox-probe"));
}

// a.7z (names encrypted too) with ok.txt and bad.txt (the scan marker),
// and its password; empty bytes when p7zip is missing.
Item encrypted_7z_item() {
  Item item;
  item.name = "a.7z";
  item.passphrases = {"SECRET"};
  const fs::path dir = fs::temp_directory_path() / ("mukaika-worker-7z-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "ok.txt") << "fine"; }
  { std::ofstream(dir / "bad.txt") << "INFECTED-TEST-MARKER"; }
  const std::string make = "cd '" + dir.string() + "' && " + sevenzip::kBinary +
                           " a -pSECRET -mhe=on a.7z ok.txt bad.txt >/dev/null 2>&1";
  if (std::system(make.c_str()) == 0) {
    std::ifstream archive(dir / "a.7z", std::ios::binary);
    item.bytes.assign(std::istreambuf_iterator<char>(archive), {});
  }
  fs::remove_all(dir);
  return item;
}

// Password-protected 7z: the worker starts p7zip's 7z, and nothing else.
// Seccomp lets execve() through only because Landlock confines it.
TEST(WorkerPool, OnlySevenZipRunsInsideTheSandbox) {
  FaultFixture f;
  auto pool = f.pool(f.options(1, 100));
  PipelineResult shell = pool->run_one(text_item("EXEC a shell"));
  ASSERT_EQ(shell.verdict, PipelineResult::Verdict::Sanitized) << code_of(shell);
  EXPECT_EQ(shell.item.bytes, "execve /bin/sh: EACCES");
  PipelineResult fork = pool->run_one(text_item("FORK a child"));
  EXPECT_EQ(code_of(fork), "worker.seccomp");

  Item item = encrypted_7z_item();
  if (item.bytes.empty()) GTEST_SKIP() << sevenzip::kBinary << " (p7zip-full) is not installed";
  PipelineResult r = pool->run_one(std::move(item));
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << code_of(r);
  bool blocked = false, kept = false;
  for (const auto& a : r.actions) {
    blocked = blocked || (a.path == "a.7z/bad.txt" && a.code == "av.infected");
    kept = kept || a.path == "a.7z/ok.txt";
  }
  EXPECT_TRUE(blocked && kept) << code_of(r);
  EXPECT_EQ(pool->stats().failures, 1u);  // the fork, not the 7z
}

TEST(WorkerPool, ThreadsWorkInsideTheSandbox) {
  FaultFixture f;
  auto pool = f.pool(f.options(1, 100));
  PipelineResult r = pool->run_one(text_item("THREADS"));
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << code_of(r) << " " << r.actions.back().reason;
  EXPECT_EQ(r.item.bytes.rfind("threads ", 0), 0u);
}

TEST(WorkerPool, ResultsComeBackInInputOrderFromParallelWorkers) {
  FaultFixture f;
  auto pool = f.pool(f.options(2, 100));
  std::vector<Item> items;
  const int sleeps[] = {400, 0, 300, 0, 0, 200, 0, 100};
  for (int i = 0; i < 8; ++i)
    items.push_back(text_item("SLEEP " + std::to_string(sleeps[i]) + " item " + std::to_string(i), "s" + std::to_string(i) + ".txt"));
  auto start = std::chrono::steady_clock::now();
  auto results = run_all(*pool, items);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(results.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[static_cast<std::size_t>(i)].item.name, "s" + std::to_string(i) + ".txt");
  // 1000 ms of sleeping on two workers.
  EXPECT_LT(took, std::chrono::milliseconds(950));
}

TEST(WorkerPool, RecyclesWorkersAfterNItemsAndAfterFailures) {
  FaultFixture f;
  auto pids = [&](int recycle_after, std::vector<std::string> contents) {
    auto pool = f.pool(f.options(1, recycle_after));
    std::vector<Item> items;
    for (const auto& c : contents) items.push_back(text_item(c));
    std::vector<std::string> out;
    for (const auto& r : run_all(*pool, items)) out.push_back(r.verdict == PipelineResult::Verdict::Blocked ? "-" : r.item.bytes);
    return out;
  };
  // Three items per worker.
  auto a = pids(3, {"PID", "PID", "PID", "PID", "PID", "PID", "PID"});
  EXPECT_EQ(a[0], a[1]);
  EXPECT_EQ(a[1], a[2]);
  EXPECT_NE(a[2], a[3]);
  EXPECT_EQ(a[3], a[5]);
  EXPECT_NE(a[5], a[6]);
  // A fresh worker for every item.
  auto b = pids(1, {"PID", "PID", "PID", "PID"});
  std::sort(b.begin(), b.end());
  EXPECT_EQ(std::unique(b.begin(), b.end()), b.end()) << "a single-use worker served twice";
  // A failure replaces the worker even when it could serve more.
  auto c = pids(100, {"PID", "CRASH", "PID"});
  EXPECT_EQ(c[1], "-");
  EXPECT_NE(c[0], c[2]);
}

TEST(WorkerPool, SkippedAndOversizedItemsNeedNoWorker) {
  FaultFixture f;
  WorkerOptions o = f.options(1, 100);
  o.max_item_bytes = 1000;
  auto pool = f.pool(o);
  std::vector<std::optional<PipelineResult>> got(3);
  pool->run(
      3,
      [&](std::size_t i) -> std::optional<Item> {
        if (i == 1) return std::nullopt;
        return text_item(i == 2 ? std::string(1001, 'a') : "fine");
      },
      [&](std::size_t i, std::optional<PipelineResult> r) { got[i] = std::move(r); });
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0]->verdict, PipelineResult::Verdict::Clean);
  EXPECT_FALSE(got[1]);
  ASSERT_TRUE(got[2]);
  EXPECT_EQ(got[2]->verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(code_of(*got[2]), "limits.item_bytes");
  EXPECT_EQ(pool->stats().items, 1u);  // only the first reached a worker
}

// The supervisor checks what a worker claims: a forged result is refused.
TEST(WorkerPool, ForgedRepliesAreRefused) {
  FaultFixture f;
  auto forge = [&](std::function<void(PipelineResult&)> edit) {
    Pipeline* p = f.pipeline.get();
    WorkerPool pool(f.options(1, 100), [p, edit](Item item) {
      PipelineResult r = p->run(std::move(item));
      edit(r);
      return r;
    });
    return pool.run_one(text_item("fine"));
  };
  PipelineResult traversal = forge([](PipelineResult& r) { r.item.name = "../../etc/cron.d/x"; });
  EXPECT_EQ(traversal.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(code_of(traversal), "worker.protocol");

  PipelineResult no_actions = forge([](PipelineResult& r) { r.actions.clear(); });
  EXPECT_EQ(code_of(no_actions), "worker.protocol");

  PipelineResult claims_hash = forge([](PipelineResult& r) { r.sha256_in = r.sha256_out = std::string(64, '0'); });
  EXPECT_EQ(claims_hash.verdict, PipelineResult::Verdict::Clean);
  EXPECT_EQ(claims_hash.sha256_in, sha256_hex("fine"));  // computed by the supervisor
}

// mukaika run as an ordinary user (systemd User=): no setuid, so the
// network namespace comes with a user namespace. Run as root, the test
// drops to nobody in a child first.
TEST(WorkerPool, WithoutRootTheWorkerGetsAUserNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "run as root to test dropping to an ordinary user";
  FaultFixture f;
  std::string base = (fs::temp_directory_path() / ("mukaika-nonroot-test-" + std::to_string(::getpid()))).string();
  fs::create_directories(base);
  ::chmod(base.c_str(), 0777);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No gtest assertions here: report through the exit status.
    int code = 0;
    try {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
        ::_exit(10);
      WorkerOptions o = f.options(1, 100);
      o.temp_base = base;
      auto pool = f.pool(o);
      const SandboxReport& sb = pool->sandbox();
      if (!(sb.layers & kLayerUserNamespace) || !(sb.layers & kLayerNetNamespace) || !(sb.layers & kLayerLandlock))
        code = 11;
      auto probe = parse_probe(pool->run_one(text_item("PROBE")).item.bytes);
      if (probe["seccomp"] != "2" || probe["write_tmp"] != "EACCES" || probe["cap_eff"] != "0000000000000000") code = 12;
      if (code_of(pool->run_one(text_item("SOCKET"))) != "worker.seccomp") code = 13;
    } catch (...) {
      code = 14;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  fs::remove_all(base);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: could not drop root, 11: layers missing, 12: probe, 13: socket, 14: error";
}

// Where unshare() and Landlock are refused (a container's seccomp profile,
// an old kernel): by default mukaika refuses to start; with
// require_full_sandbox = false it runs with what it has, and says what is
// missing. Simulated in a child with a filter like Docker's default profile.
TEST(WorkerPool, WithoutNamespacesAndLandlockItRefusesOrDegradesAsConfigured) {
  FaultFixture f;
  const Item sevenzip_item = encrypted_7z_item();
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
      if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0) != 0 ||
          seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) != 0 ||
          seccomp_load(ctx) != 0)
        ::_exit(20);
      seccomp_release(ctx);
      try {
        f.pool(f.options(1, 100));
        code = 21;  // started although the sandbox is incomplete
      } catch (const WorkerError&) {
      }
      WorkerOptions o = f.options(1, 100);
      o.require_full_sandbox = false;
      auto pool = f.pool(o);
      const SandboxReport& sb = pool->sandbox();
      if ((sb.layers & kLayerNetNamespace) || (sb.layers & kLayerLandlock) || sb.missing.size() != 2) code = 22;
      if (!(sb.layers & kLayerSeccomp)) code = 23;
      if (code_of(pool->run_one(text_item("SOCKET"))) != "worker.seccomp") code = 24;  // seccomp still holds
      if (pool->run_one(text_item("fine")).verdict != PipelineResult::Verdict::Clean) code = 25;
      // Without Landlock no program may start: execve kills, 7z is refused.
      if (code_of(pool->run_one(text_item("EXEC a shell"))) != "worker.seccomp") code = 27;
      if (!sevenzip_item.bytes.empty()) {
        PipelineResult r = pool->run_one(sevenzip_item);
        if (r.verdict != PipelineResult::Verdict::Blocked || code_of(r) != "archive.password_unsupported") code = 28;
      }
    } catch (...) {
      code = 26;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "21: started when it should refuse, 22: layers, 23: no seccomp, 24: socket, "
                                       "25: no service, 26: error, 27: execve did not kill, 28: 7z not refused";
}

TEST(WorkerPool, RefusesAMissingWorkerUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "the worker user matters only as root";
  FaultFixture f;
  WorkerOptions o = f.options();
  o.user = "no-such-user-mukaika";
  EXPECT_THROW(f.pool(o), WorkerError);
}

TEST(WorkerPool, LeavesNoWorkerDirectoriesBehind) {
  FaultFixture f;
  std::string base = (fs::temp_directory_path() / ("mukaika-pool-test-" + std::to_string(::getpid()))).string();
  fs::create_directories(base);
  {
    WorkerOptions o = f.options(2, 1);
    o.temp_base = base;
    auto pool = f.pool(o);
    run_all(*pool, {text_item("fine"), text_item("CRASH"), text_item("fine"), text_item("PROBE")});
    EXPECT_FALSE(fs::is_empty(base));  // the run's directory, while the pool lives
  }
  EXPECT_TRUE(fs::is_empty(base));
  fs::remove_all(base);
}

TEST(WorkerPool, SweepsDirectoriesOfDeadSupervisors) {
  FaultFixture f;
  std::string base = (fs::temp_directory_path() / ("mukaika-sweep-test-" + std::to_string(::getpid()))).string();
  fs::create_directories(base);
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const fs::path stale = fs::path(base) / ("mukaika-workers-" + std::to_string(dead) + "-AbCdEf");
  const fs::path alive = fs::path(base) / ("mukaika-workers-" + std::to_string(::getppid()) + "-AbCdEf");
  const fs::path other = fs::path(base) / "unrelated";
  for (const auto& d : {stale, alive, other}) {
    fs::create_directories(d / "w1");
    std::ofstream(d / "w1" / "clamav-1234.tmp") << "a copy of someone's attachment";
  }
  {
    WorkerOptions o = f.options(1, 100);
    o.temp_base = base;
    auto pool = f.pool(o);
  }
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  fs::remove_all(base);
}

// The real pipeline (libmagic, libclamav with its temp files, GMime,
// libxml2, the archive sanitizer...) gives the same results in a worker as
// in process.
TEST(WorkerPool, SameResultsAsInProcess) {
  SanitizerRegistry registry;
  register_builtin_sanitizers(registry);
  Config config = load_config(std::nullopt, registry);
  Policy policy(config, registry);
  ClamavOptions in_process;
  in_process.database_dir = MUKAIKA_TEST_SAMPLES "/clamav";
  in_process.temp_dir = fs::temp_directory_path().string();
  ClamavScanner local_scanner(in_process);
  ClamavOptions in_workers = in_process;
  in_workers.temp_dir = kWorkerEngineTempDir;
  ClamavScanner worker_scanner(in_workers);
  Pipeline local(policy, local_scanner, config.limits, config.language);
  Pipeline remote(policy, worker_scanner, config.limits, config.language);
  WorkerOptions o = worker_options(config);
  o.count = 2;
  WorkerPool pool(o, [&remote](Item item) { return remote.run(std::move(item)); });

  std::vector<std::string> paths;
  for (const char* dir : {MUKAIKA_TEST_SAMPLES "/mail", MUKAIKA_TEST_SAMPLES "/files"})
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() != ".py") paths.push_back(e.path().string());
  for (const char* name : {"clam.zip", "clam.exe", "clam.7z", "clam.mail", "clam.pdf", "clam_cache_emax.tgz"}) {
    std::string p = std::string("/usr/share/clamav-testfiles/") + name;
    if (fs::exists(p)) paths.push_back(p);
  }
  std::sort(paths.begin(), paths.end());
  ASSERT_GT(paths.size(), 10u);

  std::vector<Item> items;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    Item item;
    item.bytes = s.str();
    item.name = fs::path(p).filename().string();
    items.push_back(std::move(item));
  }
  std::vector<PipelineResult> remote_results = run_all(pool, items);
  ASSERT_EQ(remote_results.size(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    SCOPED_TRACE(paths[i]);
    PipelineResult a = local.run(items[i]);
    const PipelineResult& b = remote_results[i];
    EXPECT_EQ(a.verdict, b.verdict);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.detected_type, b.detected_type);
    EXPECT_EQ(a.item.name, b.item.name);
    EXPECT_EQ(a.item.virus, b.item.virus);
    EXPECT_EQ(a.sha256_in, b.sha256_in);
    EXPECT_EQ(a.item.bytes.size(), b.item.bytes.size());
    ASSERT_EQ(a.actions.size(), b.actions.size());
    for (std::size_t k = 0; k < a.actions.size(); ++k) {
      EXPECT_EQ(a.actions[k].code, b.actions[k].code);
      EXPECT_EQ(a.actions[k].path, b.actions[k].path);
      EXPECT_EQ(a.actions[k].virus, b.actions[k].virus);
    }
  }
}

// ---------------------------------------------------------------------------
// SanitizerService: the pool behind a socket, for the daemon's threads.

std::unique_ptr<SanitizerService> start_service(FaultFixture& f, WorkerOptions o) {
  Pipeline* p = f.pipeline.get();
  return std::make_unique<SanitizerService>(o, [p](Item item) { return p->run(std::move(item)); });
}

TEST(SanitizerService, ServesThreadsOfTheDaemonAndContainsCrashes) {
  FaultFixture f;
  auto service = start_service(f, f.options(1));  // before any thread, as the daemon does
  // From another thread: the pool lives in the service process, so the
  // daemon's threads do not keep it from forking workers.
  auto first = std::async(std::launch::async, [&] { return service->sanitize(text_item("hello\n")); }).get();
  EXPECT_EQ(first.verdict, PipelineResult::Verdict::Clean);
  EXPECT_EQ(first.item.bytes, "hello\n");
  EXPECT_EQ(first.sha256_in, first.sha256_out);
  EXPECT_EQ(first.sha256_in, sha256_hex("hello\n"));

  std::thread busy([] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
  auto crashed = service->sanitize(text_item("CRASH now\n"));
  EXPECT_EQ(crashed.verdict, PipelineResult::Verdict::Blocked);
  ASSERT_FALSE(crashed.actions.empty());
  EXPECT_EQ(crashed.actions.back().code, "worker.crashed");
  // The pool replaced the worker, from the single-threaded service.
  auto after = service->sanitize(text_item("still here\n"));
  EXPECT_EQ(after.verdict, PipelineResult::Verdict::Clean);
  busy.join();
}

TEST(SanitizerService, AServiceThatIsGoneMeansCouldNotDecide) {
  FaultFixture f;
  auto service = start_service(f, f.options(1));
  ASSERT_EQ(::kill(service->pid(), SIGKILL), 0);
  EXPECT_THROW(service->sanitize(text_item("hello\n")), WorkerError);
  // And stays so: requests and replies can no longer be paired.
  EXPECT_THROW(service->sanitize(text_item("hello\n")), WorkerError);
}

TEST(SanitizerService, ServesConcurrentCallsOnEveryWorkerAndRepliesAsEachFinishes) {
  FaultFixture f;
  auto service = start_service(f, f.options(2));
  // Two slow items from two threads: on two workers at once, the pair
  // takes about one item's time, not two.
  const auto t0 = std::chrono::steady_clock::now();
  auto a = std::async(std::launch::async, [&] { return service->sanitize(text_item("SLEEP 1000 a\n")); });
  auto b = std::async(std::launch::async, [&] { return service->sanitize(text_item("SLEEP 1000 b\n")); });
  const auto ra = a.get();
  const auto rb = b.get();
  const auto both = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ra.item.bytes, "SLEEP 1000 a\n");
  EXPECT_EQ(rb.item.bytes, "SLEEP 1000 b\n");
  EXPECT_EQ(ra.sha256_in, sha256_hex("SLEEP 1000 a\n"));
  EXPECT_EQ(rb.sha256_out, sha256_hex("SLEEP 1000 b\n"));
  EXPECT_LT(both, std::chrono::milliseconds(1800)) << "the two items were sanitized one after the other";

  // A quick item sent after a slow one comes back first: replies go out as
  // each item finishes, not in request order.
  std::atomic<bool> slow_done{false};
  auto slow = std::async(std::launch::async, [&] {
    auto r = service->sanitize(text_item("SLEEP 1500 slow\n"));
    slow_done = true;
    return r;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto quick = service->sanitize(text_item("quick\n"));
  EXPECT_FALSE(slow_done.load()) << "the quick item waited for the slow one";
  EXPECT_EQ(quick.item.bytes, "quick\n");
  EXPECT_EQ(slow.get().item.bytes, "SLEEP 1500 slow\n");
}

TEST(SanitizerService, ManyCallersEachGetTheirOwnResult) {
  FaultFixture f;
  auto service = start_service(f, f.options(2));
  constexpr int kThreads = 6, kEach = 5;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0}, blocked{0}, clean{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        // One caller's second item crashes its worker: only that item is blocked.
        const bool crash = t == 3 && i == 1;
        const std::string text = (crash ? "CRASH " : "") + std::string("item ") + std::to_string(t) + "." +
                                 std::to_string(i) + "\n";
        PipelineResult r = service->sanitize(text_item(text));
        if (crash) {
          if (r.verdict == PipelineResult::Verdict::Blocked && !r.actions.empty() &&
              r.actions.back().code == "worker.crashed")
            ++blocked;
          else
            ++wrong;
        } else if (r.verdict == PipelineResult::Verdict::Clean && r.item.bytes == text &&
                   r.sha256_in == sha256_hex(text)) {
          ++clean;
        } else {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(blocked.load(), 1);
  EXPECT_EQ(clean.load(), kThreads * kEach - 1);
}

TEST(SanitizerService, AServiceThatDiesUnderConcurrentCallsFailsEveryCaller) {
  FaultFixture f;
  auto service = start_service(f, f.options(2));
  std::vector<std::future<bool>> calls;
  for (int i = 0; i < 4; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] {
      try {
        service->sanitize(text_item("SLEEP 3000 " + std::to_string(i) + "\n"));
        return false;
      } catch (const WorkerError&) {
        return true;  // could not decide: the message stays for later
      }
    }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(::kill(service->pid(), SIGKILL), 0);
  for (auto& c : calls) EXPECT_TRUE(c.get());
  EXPECT_THROW(service->sanitize(text_item("hello\n")), WorkerError);
}

TEST(SanitizerService, StartFailureCarriesThePoolsMessage) {
  FaultFixture f;
  WorkerOptions o = f.options(1);
  o.user = "no-such-user-mukaika";
  try {
    start_service(f, o);
    ADD_FAILURE() << "started with a missing worker user";
  } catch (const WorkerError& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-user-mukaika"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mukaika
