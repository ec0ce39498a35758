#include "worker/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "unique_fd.h"

namespace mukaika {

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void write_proc_file(const char* path, const std::string& text) {
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) throw SandboxError(errno_text(path));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw SandboxError(errno_text(path));
}

void set_limit(int resource, const char* name, rlim_t soft, rlim_t hard) {
  rlimit lim{soft, hard};
  if (::setrlimit(resource, &lim) != 0) throw SandboxError(errno_text(name));
}

// Virtual size now: the supervisor's heap, libclamav's signature database
// and the libraries, shared copy-on-write. The memory limit is what the
// worker may add to that, so it does not depend on the size of the database.
std::uint64_t current_address_space() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t pages = 0;
  if (!(statm >> pages)) throw SandboxError("cannot read /proc/self/statm");
  return pages * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Newer Landlock rights than Debian 12's <linux/landlock.h> (ABI 2) names.
// The kernel is asked which ABI it has and only rights it knows are used.
constexpr std::uint64_t kFsTruncate = 1ull << 14;    // ABI 3
constexpr std::uint64_t kFsIoctlDev = 1ull << 15;    // ABI 5
constexpr std::uint64_t kNetBindTcp = 1ull << 0;     // ABI 4
constexpr std::uint64_t kNetConnectTcp = 1ull << 1;  // ABI 4
constexpr std::uint64_t kScopeAbstractUnix = 1ull << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ull << 1;        // ABI 6

// struct landlock_ruleset_attr as of ABI 6; older kernels are handed the
// prefix they know (its size tells the kernel which fields are there).
struct RulesetAttr {
  std::uint64_t handled_access_fs;
  std::uint64_t handled_access_net;
  std::uint64_t scoped;
};

std::uint64_t fs_rights(int abi) {
  std::uint64_t all = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
                      LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                      LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                      LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) all |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) all |= kFsTruncate;
  if (abi >= 5) all |= kFsIoctlDev;
  return all;
}

void add_path_rule(int ruleset, const std::string& path, std::uint64_t dir_access, std::uint64_t file_access) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT || errno == ENOTDIR) return;  // not on this system: nothing to allow
    throw SandboxError(errno_text(("landlock: open " + path).c_str()));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw SandboxError(errno_text(("landlock: stat " + path).c_str()));
  landlock_path_beneath_attr rule{};
  // A rule on a file may only name rights that apply to files.
  rule.allowed_access = S_ISDIR(st.st_mode) ? dir_access : file_access;
  rule.parent_fd = fd.get();
  if (::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
    throw SandboxError(errno_text(("landlock: rule for " + path).c_str()));
}

}  // namespace

std::vector<std::string> default_read_only_paths() {
  return {
      // Libraries and their data: gconv modules loaded by iconv on first
      // use, fonts and Poppler data, zoneinfo, shared MIME info.
      "/usr", "/lib", "/lib64",
      "/etc/ld.so.cache",      // dlopen() of gconv and other modules
      "/etc/localtime",
      "/etc/locale.alias",     // /usr/share/locale/locale.alias links here (gettext)
      "/etc/fonts",            // fontconfig (Poppler)
      "/var/cache/fontconfig",
      "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",  // getpwuid() in GLib
      "/etc/ssl/openssl.cnf",  // read by OpenSSL on first use (SHA-256)
      "/sys/devices/system/cpu",  // std::thread::hardware_concurrency()
      "/dev/null", "/dev/urandom",
      "/proc/self",            // resolved at rule time: the worker's own entry only
  };
}

std::vector<std::string> default_executable_paths() {
  return {
      "/usr/lib/p7zip/7z",  // sevenzip::kBinary
      // execve() of a dynamic executable opens its interpreter for
      // execution too. Being able to run it directly adds nothing: a
      // worker can already map code of its own, under the same sandbox.
      "/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1",
  };
}

int install_landlock(const std::string& work_dir, const std::vector<std::string>& read_only_paths,
                     const std::vector<std::string>& executable_paths) {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) return 0;

  RulesetAttr attr{};
  attr.handled_access_fs = fs_rights(static_cast<int>(abi));
  std::size_t attr_size = sizeof(std::uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;  // handled, never allowed
    attr_size = 2 * sizeof(std::uint64_t);
  }
  if (abi >= 6) {
    // No signals to processes outside this worker (the supervisor, other
    // workers), no abstract unix sockets to connect to.
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    attr_size = sizeof(RulesetAttr);
  }
  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0)));
  if (!ruleset) throw SandboxError(errno_text("landlock_create_ruleset"));

  const std::uint64_t read_file = LANDLOCK_ACCESS_FS_READ_FILE;
  const std::uint64_t read_dir = read_file | LANDLOCK_ACCESS_FS_READ_DIR;
  for (const auto& p : read_only_paths) add_path_rule(ruleset.get(), p, read_dir, read_file);
  const std::uint64_t run_file = read_file | LANDLOCK_ACCESS_FS_EXECUTE;
  for (const auto& p : executable_paths) add_path_rule(ruleset.get(), p, run_file, run_file);

  // The worker's own directory: libclamav's per-scan directories and temp
  // files. No devices, fifos, sockets or symlinks, nothing executable.
  std::uint64_t rw_file = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
  if (abi >= 3) rw_file |= kFsTruncate;
  std::uint64_t rw_dir = rw_file | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                         LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG;
  if (abi >= 2) rw_dir |= LANDLOCK_ACCESS_FS_REFER;
  add_path_rule(ruleset.get(), work_dir, rw_dir, rw_file);

  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0)
    throw SandboxError(errno_text("landlock_restrict_self"));
  return static_cast<int>(abi);
}

void arm_cpu_limit(std::uint64_t seconds) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_CPU, &lim) != 0) return;
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return;
  rlim_t used = static_cast<rlim_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1);
  rlim_t soft = used + static_cast<rlim_t>(seconds);
  if (lim.rlim_max != RLIM_INFINITY && soft > lim.rlim_max) soft = lim.rlim_max;
  lim.rlim_cur = soft;
  ::setrlimit(RLIMIT_CPU, &lim);
}

SandboxReport enter_sandbox(const SandboxSpec& spec) {
  SandboxReport report;
  const bool root = ::geteuid() == 0;
  auto missing = [&](const std::string& what) {
    if (spec.require_full) throw SandboxError(what);
    report.missing.push_back(what);
  };

  // 1. Namespaces. As root the network namespace needs no user namespace;
  // without root it is the only way to get one.
  if (root) {
    if (::unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0)
      report.layers |= kLayerNetNamespace | kLayerIpcNamespace;
    else
      missing(errno_text("network namespace: unshare(CLONE_NEWNET)"));
  } else {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) == 0) {
      // Map only ourselves, so files we create in the work dir have an owner.
      // A process that changed its uid without exec is not dumpable, and
      // its /proc/self files then belong to root: writable again for this
      // moment (no input has been read yet; step 5 turns it off for good).
      ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
      write_proc_file("/proc/self/setgroups", "deny");
      write_proc_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n");
      write_proc_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
      report.layers |= kLayerUserNamespace | kLayerNetNamespace | kLayerIpcNamespace;
    } else {
      missing(errno_text("network namespace: unshare(CLONE_NEWUSER|CLONE_NEWNET)"));
    }
  }

  // 2. The private directory.
  if (::chdir(spec.work_dir.c_str()) != 0) throw SandboxError(errno_text(("chdir " + spec.work_dir).c_str()));

  // 3. Resource limits.
  set_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, 0);
  set_limit(RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 0, 0);
  set_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", spec.max_open_files, spec.max_open_files);
  if (spec.max_file_bytes > 0) set_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", spec.max_file_bytes, spec.max_file_bytes);
  if (spec.cpu_seconds_hard > 0) set_limit(RLIMIT_CPU, "RLIMIT_CPU", spec.cpu_seconds_hard, spec.cpu_seconds_hard);
  if (spec.memory_bytes > 0) {
    const std::uint64_t as = current_address_space() + spec.memory_bytes;
    set_limit(RLIMIT_AS, "RLIMIT_AS", as, as);
  }
  report.layers |= kLayerRlimits;

  // 4. No privileges.
  if (root) {
    if (!spec.uid || !spec.gid || *spec.uid == 0)
      throw SandboxError("started as root but no unprivileged worker user was given");
    if (::setgroups(0, nullptr) != 0) throw SandboxError(errno_text("setgroups"));
    if (::setresgid(*spec.gid, *spec.gid, *spec.gid) != 0) throw SandboxError(errno_text("setresgid"));
    if (::setresuid(*spec.uid, *spec.uid, *spec.uid) != 0) throw SandboxError(errno_text("setresuid"));
    // Paranoia: the way back must be closed.
    if (::setresuid(0, 0, 0) == 0) throw SandboxError("could regain root after dropping it");
  } else {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0) throw SandboxError(errno_text("capset"));
  }
  {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0) throw SandboxError(errno_text("capget"));
    if (data[0].effective || data[1].effective || data[0].permitted || data[1].permitted)
      throw SandboxError("capabilities remain after dropping privileges");
  }
  report.layers |= kLayerUnprivileged;
  report.uid = ::getuid();

  // 5.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) throw SandboxError(errno_text("PR_SET_DUMPABLE"));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw SandboxError(errno_text("PR_SET_NO_NEW_PRIVS"));
  report.layers |= kLayerNoNewPrivs;

  // 6.
  report.landlock_abi = install_landlock(spec.work_dir, spec.read_only_paths, spec.executable_paths);
  if (report.landlock_abi > 0)
    report.layers |= kLayerLandlock;
  else
    missing("Landlock: not supported by this kernel (needs Linux 5.13 with CONFIG_SECURITY_LANDLOCK and landlock in lsm=); "
            "without it no program may start, so password-protected 7z archives cannot be opened");

  // 7.
  install_seccomp_filter(::getpid(), report.landlock_abi > 0 && !spec.executable_paths.empty());
  report.layers |= kLayerSeccomp;
  return report;
}

}  // namespace mukaika
