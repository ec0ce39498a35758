// The worker's seccomp filter: an allow-list of what parsing and sanitizing
// in memory needs. Everything else kills the whole worker (SIGSYS), which
// the supervisor reports as worker.seccomp: a parser that suddenly wants
// execve() or connect() is under attack, and a dead worker cannot be talked
// into trying something else.
//
// A few calls are answered with an error instead, because libraries probe
// them harmlessly and cope with a refusal:
//   socket(AF_UNIX)  glibc's NSS asks nscd before reading /etc/passwd
//   ioctl()          isatty() and friends; no device is reachable anyway
//   clone3()         glibc tries it first and falls back to clone()
//   memfd_create()   memory outside the address-space limit
//
// To find which call killed a worker, run mukaika under `strace -f`: the
// last system call of the worker before "killed by SIGSYS" is the one.
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "worker/sandbox.h"

namespace mukaika {

namespace {

struct SeccompRelease {
  void operator()(void* ctx) const noexcept { seccomp_release(ctx); }
};
using SeccompFilter = std::unique_ptr<void, SeccompRelease>;

// One argument comparison; libseccomp's SCMP_A0() macros leave datum_b to
// the compiler, which clang warns about.
scmp_arg_cmp arg(unsigned index, scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) {
  scmp_arg_cmp c{};
  c.arg = index;
  c.op = op;
  c.datum_a = a;
  c.datum_b = b;
  return c;
}

class FilterBuilder {
 public:
  FilterBuilder() : ctx_(seccomp_init(SCMP_ACT_KILL_PROCESS)) {
    if (!ctx_) throw SandboxError("seccomp_init failed");
    // A system call made through another architecture's entry point (int
    // 0x80 on x86_64) would slip past rules written for this one.
    check(seccomp_attr_set(ctx_.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "bad-arch action");
  }

  void allow(int nr) { check(seccomp_rule_add(ctx_.get(), SCMP_ACT_ALLOW, nr, 0), name(nr)); }
  void allow_if(int nr, scmp_arg_cmp cmp) { check(seccomp_rule_add(ctx_.get(), SCMP_ACT_ALLOW, nr, 1, cmp), name(nr)); }
  void fail(int nr, int err) { check(seccomp_rule_add(ctx_.get(), SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), nr, 0), name(nr)); }
  void fail_if(int nr, int err, scmp_arg_cmp cmp) {
    check(seccomp_rule_add(ctx_.get(), SCMP_ACT_ERRNO(static_cast<std::uint32_t>(err)), nr, 1, cmp), name(nr));
  }

  void load() { check(seccomp_load(ctx_.get()), "seccomp_load"); }

 private:
  static std::string name(int nr) {
    char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    std::string s = n ? n : std::to_string(nr);
    std::free(n);
    return s;
  }
  static void check(int rc, const std::string& what) {
    if (rc < 0) throw SandboxError("seccomp: " + what + ": " + std::strerror(-rc));
  }
  SeccompFilter ctx_;
};

}  // namespace

void install_seccomp_filter(pid_t self, bool start_programs) {
  FilterBuilder f;

  // Memory. PROT_EXEC stays allowed: iconv loads its gconv modules with
  // dlopen() on first use.
  for (int nr : {SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect),
                 SCMP_SYS(madvise), SCMP_SYS(mincore)})
    f.allow(nr);

  // Threads (Poppler renders pages on several), never processes: clone()
  // only with CLONE_THREAD, so fork() and vfork() are out.
  f.allow_if(SCMP_SYS(clone), arg(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  f.fail(SCMP_SYS(clone3), ENOSYS);  // its flags sit in memory a filter cannot read
  for (int nr : {SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list), SCMP_SYS(rseq),
                 SCMP_SYS(set_tid_address), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid),
                 SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(exit), SCMP_SYS(exit_group),
                 SCMP_SYS(restart_syscall)})
    f.allow(nr);

  // Signals, and only to itself (abort(), a thread's cancellation).
  for (int nr : {SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack)})
    f.allow(nr);
  f.allow_if(SCMP_SYS(kill), arg(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(self)));
  f.allow_if(SCMP_SYS(tgkill), arg(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(self)));

  // Time.
  for (int nr : {SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
                 SCMP_SYS(gettimeofday), SCMP_SYS(time)})
    f.allow(nr);

  // Files. Which paths can be opened, and which written, is Landlock's job
  // (seccomp cannot see paths): read-only system files, read-write only in
  // the worker's own directory.
  for (int nr : {SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
                 SCMP_SYS(pwrite64), SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
                 SCMP_SYS(statx), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(openat), SCMP_SYS(open),
                 SCMP_SYS(getdents64), SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
                 SCMP_SYS(ftruncate), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(fadvise64), SCMP_SYS(access),
                 SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
                 SCMP_SYS(getcwd), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir), SCMP_SYS(unlink),
                 SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(umask),
                 SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(pipe2), SCMP_SYS(eventfd2),
                 // fontconfig asks whether a font directory is on a network
                 // file system before it trusts its cache.
                 SCMP_SYS(statfs), SCMP_SYS(fstatfs)})
    f.allow(nr);
  // libclamav chmod()s its scan directories to 0700 before removing them.
  // Owner-only modes, nothing setuid or shared: Landlock does not govern
  // file modes, and as the worker user chmod() reaches only its own files.
  constexpr scmp_datum_t kNotOwnerOnly = 07077;
  f.allow_if(SCMP_SYS(chmod), arg(1, SCMP_CMP_MASKED_EQ, kNotOwnerOnly, 0));
  f.allow_if(SCMP_SYS(fchmod), arg(1, SCMP_CMP_MASKED_EQ, kNotOwnerOnly, 0));
  f.allow_if(SCMP_SYS(fchmodat), arg(2, SCMP_CMP_MASKED_EQ, kNotOwnerOnly, 0));
  // Replies go out with sendmsg(MSG_NOSIGNAL) on the socket the worker was
  // handed; it cannot make another.
  f.allow(SCMP_SYS(sendmsg));

  // Who and where it is, what it used.
  for (int nr : {SCMP_SYS(getrandom), SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(getrusage), SCMP_SYS(times),
                 SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getresuid),
                 SCMP_SYS(getresgid), SCMP_SYS(getgroups), SCMP_SYS(getrlimit)})
    f.allow(nr);
  // Its own limits only (the per-item CPU limit is re-armed this way); a
  // process without CAP_SYS_RESOURCE can never raise a hard limit.
  f.allow_if(SCMP_SYS(prlimit64), arg(0, SCMP_CMP_EQ, 0));

  // Naming threads; any other prctl() (PR_SET_DUMPABLE, PR_SET_SECCOMP,
  // PR_SET_PTRACER...) kills.
  f.allow_if(SCMP_SYS(prctl), arg(0, SCMP_CMP_EQ, PR_SET_NAME));
  f.allow_if(SCMP_SYS(prctl), arg(0, SCMP_CMP_EQ, PR_GET_NAME));
  f.allow_if(SCMP_SYS(prctl), arg(0, SCMP_CMP_EQ, PR_GET_DUMPABLE));
  // Harmless probes, refused.
  f.fail(SCMP_SYS(ioctl), ENOTTY);
  f.fail_if(SCMP_SYS(socket), EPERM, arg(0, SCMP_CMP_EQ, AF_UNIX));
  f.fail(SCMP_SYS(memfd_create), ENOSYS);

  if (start_programs) {
    // 7z for password-protected 7z archives (sevenzip.cpp), only when
    // Landlock makes it the one file execve() can run. A child process
    // (no namespaces), and signals only through the pidfd clone() returned
    // for it: pidfd_open() stays denied, and Landlock keeps other processes'
    // /proc directories out of reach.
    // Only a clone() that asks for a pidfd, as sevenzip.cpp does: fork()
    // and vfork() elsewhere still kill.
    constexpr scmp_datum_t kChecked = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                      CLONE_NEWPID | CLONE_NEWNET | CLONE_THREAD | CLONE_VM | CLONE_PIDFD;
    f.allow_if(SCMP_SYS(clone), arg(0, SCMP_CMP_MASKED_EQ, kChecked, CLONE_PIDFD));
    for (int nr : {SCMP_SYS(execve), SCMP_SYS(wait4), SCMP_SYS(pidfd_send_signal), SCMP_SYS(close_range), SCMP_SYS(setsid)})
      f.allow(nr);
#if defined(__x86_64__)
    f.allow(SCMP_SYS(arch_prctl));  // 7z itself: glibc's start-up sets its thread pointer
#endif
    // 7z dies with the worker, though it left the worker's process group.
    f.allow_if(SCMP_SYS(prctl), arg(0, SCMP_CMP_EQ, PR_SET_PDEATHSIG));
  }

  // Everything else — socket() for any network family, connect, bind,
  // execve, ptrace, fork, mount, unshare, setns, bpf, io_uring, keyctl,
  // process_vm_*, perf_event_open, setuid... — kills the worker.
  f.load();
}

}  // namespace mukaika
