// The sandbox a worker enters before it reads a single byte of input.
//
// enter_sandbox() runs in the freshly forked worker, in this order (each step
// needs the privileges the next one drops):
//
//   1. new network and IPC namespaces (no interface but a downed loopback, no
//      shared System V IPC); as non-root, inside a new user namespace
//   2. chdir to the worker's private, empty directory (libclamav's temp files
//      go here: the engine's temp dir is the relative path ".")
//   3. resource limits: address space (what it inherited plus memory_bytes),
//      CPU seconds, open files, file size, no core dumps
//   4. as root: setgroups(), setresgid() and setresuid() to the worker user,
//      which drops every capability; as non-root: capset() to nothing
//   5. not dumpable (other processes of the same user cannot read its memory
//      through /proc or ptrace), PR_SET_NO_NEW_PRIVS
//   6. Landlock (when the kernel has it): read-only access to the system's
//      libraries and data, read-write access to its own directory only, no
//      TCP, no signals to processes outside the sandbox; execute only on
//      p7zip's 7z and the ELF interpreter it needs
//   7. the seccomp filter (sandbox_seccomp.cpp), last, because every step
//      above needs a system call the filter denies. Starting 7z (clone,
//      execve, wait) is allowed only when Landlock is in force, because
//      Landlock alone decides which file execve() may run (architecture.md
//      27); without it the worker can start no program at all.
//
// Seccomp, no-new-privs, the resource limits and the user change are never
// optional: a failure throws SandboxError and the worker exits without
// serving. Namespaces and Landlock depend on the kernel and on where mukaika
// runs (a container may refuse unshare()); when `require_full` is false their
// absence is reported in SandboxReport::missing instead.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mukaika {

class SandboxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Layers, as bits, for the worker's hello and the tests.
enum SandboxLayer : std::uint32_t {
  kLayerNetNamespace = 1u << 0,
  kLayerIpcNamespace = 1u << 1,
  kLayerUserNamespace = 1u << 2,  // only when not started as root
  kLayerUnprivileged = 1u << 3,   // runs without any capability
  kLayerNoNewPrivs = 1u << 4,
  kLayerRlimits = 1u << 5,
  kLayerLandlock = 1u << 6,
  kLayerSeccomp = 1u << 7,
};

// p7zip's 7z (password-protected 7z archives, sevenzip.h) and the dynamic
// loader the kernel opens to start it.
std::vector<std::string> default_executable_paths();

struct SandboxSpec {
  std::string work_dir;                  // private, writable; becomes the cwd
  std::uint64_t memory_bytes = 1ull << 30;  // address space beyond what was inherited; 0 = unlimited
  std::uint64_t cpu_seconds_hard = 0;    // RLIMIT_CPU hard limit for the worker's life; 0 = unlimited
  std::uint64_t max_file_bytes = 0;      // RLIMIT_FSIZE; 0 = unlimited
  std::uint64_t max_open_files = 256;    // RLIMIT_NOFILE: fonts, temp files, a few threads' worth
  std::optional<uid_t> uid;              // when started as root: the user to become
  std::optional<gid_t> gid;
  bool require_full = true;              // namespaces and Landlock must be in force
  // Read-only for the worker when Landlock is in force. Paths that do not
  // exist are skipped.
  std::vector<std::string> read_only_paths;
  // Executable (and readable) for the worker when Landlock is in force;
  // nothing else is. Paths that do not exist are skipped.
  std::vector<std::string> executable_paths = default_executable_paths();
};

// The read-only paths the built-in sanitizers need (libraries loaded on
// demand, fonts, locale and charset tables, the CPU count, the worker's own
// /proc entry).
std::vector<std::string> default_read_only_paths();

struct SandboxReport {
  std::uint32_t layers = 0;  // SandboxLayer bits in force
  int landlock_abi = 0;      // 0: none
  uid_t uid = 0;             // as the kernel sees it outside the namespaces
  std::vector<std::string> missing;  // layers that could not be had, and why
};

// Runs in the worker. Throws SandboxError when a mandatory layer fails, or
// an optional one fails while spec.require_full is set.
SandboxReport enter_sandbox(const SandboxSpec& spec);

// The seccomp filter alone (step 7), for enter_sandbox() and the tests.
// `self` is the worker's pid: kill() and tgkill() may only target it.
// `start_programs`: clone() of a child process, execve() and wait4(), and
// signals through a pidfd only (what running 7z needs); only ever true when
// Landlock confines execve.
void install_seccomp_filter(pid_t self, bool start_programs = false);

// The Landlock ruleset alone (step 6); returns the ABI in force (0 when the
// kernel has no Landlock: nothing was restricted).
int install_landlock(const std::string& work_dir, const std::vector<std::string>& read_only_paths,
                     const std::vector<std::string>& executable_paths = {});

// Re-arms the per-item CPU limit: the soft RLIMIT_CPU becomes the CPU time
// used so far plus `seconds` (SIGXCPU when exceeded). Called by the worker
// before each item; it can never exceed the hard limit set at entry.
void arm_cpu_limit(std::uint64_t seconds);

}  // namespace mukaika
