#!/usr/bin/env python3
"""Checks of the deployment files in deploy/ (issue 6).

- deploy/mukaika.prod.toml passes `mukaika check-config` and is a production
  configuration (one address per zone, real signatures, full sandbox, the
  directories the unit may write).
- deploy/mukaika.service has the hardening keys, runs that configuration, may
  write exactly those directories, and its system call filter and namespace
  restriction still let the workers sandbox themselves.
- deploy/postfix/* send mail to the address mukaika listens on and let its
  bounces back in.
- As root: `mukaika serve` with the production configuration (moved to
  loopback and a temporary directory) runs as the user "mukaika" with only
  CAP_NET_BIND_SERVICE and no_new_privs, as the unit runs it, binds a port
  below 1024, and a message goes through the sandboxed workers.

Run by ctest (e2e_deploy), or by hand:

    MUKAIKA_BIN=build/gateway/mukaika python3 tests/e2e/test_deploy.py -v

Environment:
    MUKAIKA_BIN      the mukaika binary (required)
    MUKAIKA_SAMPLES  the repository's samples/ folder (default: ../../samples from here)

Python 3 standard library only (tomllib: Python 3.11, Debian 12). Tests that
need root (to create the users "mukaika" and "mukaika-worker" with useradd),
setpriv or systemd-analyze skip without them. Exit status 77 when every test
skipped (ctest SKIP_RETURN_CODE).
"""

import ipaddress
import os
import pwd
import re
import shlex
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("MUKAIKA_BIN", "")
SAMPLES = os.environ.get("MUKAIKA_SAMPLES") or os.path.join(REPO, "samples")
DEPLOY = os.path.join(REPO, "deploy")
PROD_TOML = os.path.join(DEPLOY, "mukaika.prod.toml")
UNIT = os.path.join(DEPLOY, "mukaika.service")
MAIN_CF = os.path.join(DEPLOY, "postfix", "main.cf.snippet")
TRANSPORT = os.path.join(DEPLOY, "postfix", "transport.example")
LGWAN_CF = os.path.join(DEPLOY, "postfix", "lgwan-side.cf.snippet")

SERVICE_USER = "mukaika"
# What the unit and the documentation promise.
UNIT_BINARY = "/usr/local/bin/mukaika"
UNIT_CONFIG = "/etc/mukaika/mukaika.toml"
STATE_ROOT = "/var/lib/mukaika"
LOG_ROOT = "/var/log/mukaika"

# System calls the daemon and its workers make that a SystemCallFilter must
# let through (gateway/worker/sandbox.cpp, sandbox_seccomp.cpp, worker_pool.cpp;
# the list was taken from `strace -f` of `mukaika serve` delivering mail).
REQUIRED_SYSCALLS = [
    "unshare", "capset", "capget", "prctl", "prlimit64", "setsid", "chdir",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp",
    "socketpair", "clone", "clone3", "wait4", "kill", "pidfd_open", "close_range",
    "socket", "bind", "listen", "accept", "connect", "sendmsg", "recvfrom",
    "openat", "rename", "renameat2", "fsync", "fdatasync", "flock", "mkdir", "rmdir", "unlink",
    "epoll_wait", "timerfd_create", "rt_sigtimedwait", "futex", "mmap", "mprotect",
]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_prod():
    if tomllib is None:
        raise unittest.SkipTest("tomllib needs Python 3.11")
    with open(PROD_TOML, "rb") as f:
        return tomllib.load(f)


def split_endpoint(endpoint):
    """"host:port" or "[v6]:port" -> (host, port)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def parse_unit(path):
    """[section] -> list of (key, value), in order; systemd allows repeated keys."""
    sections, current = {}, None
    lines = read(path).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        while line.endswith("\\") and i + 1 < len(lines):  # continuation
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            raise AssertionError("%s: not a key=value line: %r" % (path, line))
        current.append((key.strip(), value.strip()))
    return sections


def values(section, key):
    return [v for k, v in section if k == key]


def single(section, key):
    vs = values(section, key)
    if len(vs) != 1:
        raise AssertionError("%s: expected exactly one %s=, found %r" % (UNIT, key, vs))
    return vs[0]


def ensure_user(name):
    """The user exists, or is created (root only); SkipTest otherwise."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0 or not shutil.which("useradd"):
        raise unittest.SkipTest("user %r does not exist and cannot be created (needs root and useradd)" % name)
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                    "--shell", "/usr/sbin/nologin", name], check=True)
    CREATED_USERS.append(name)
    return pwd.getpwnam(name)


# Users this run created, removed again at the end: a test leaves the
# machine's accounts as it found them.
CREATED_USERS = []


def tearDownModule():
    for name in reversed(CREATED_USERS):
        subprocess.run(["userdel", name], stderr=subprocess.DEVNULL)


class ProdConfigTests(unittest.TestCase):
    def test_check_config_passes(self):
        cfg = load_prod()
        ensure_user(cfg["workers"]["user"])
        run = subprocess.run([BIN, "check-config", PROD_TOML], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 0, "check-config failed:\n" + run.stdout + run.stderr)
        self.assertIn("OK", run.stdout)

    def test_is_a_production_configuration(self):
        cfg = load_prod()
        smtp, relay = cfg["smtp"], cfg["relay"]
        host, port = split_endpoint(smtp["listen"])
        listen = ipaddress.ip_address(host)
        self.assertFalse(listen.is_unspecified or listen.is_loopback,
                         "smtp.listen must be the Internet-zone address, not %s" % host)
        self.assertEqual(port, 25)
        nets = [ipaddress.ip_network(n) for n in smtp["allowed_networks"]]
        self.assertTrue(nets, "smtp.allowed_networks is empty")
        for n in nets:
            self.assertGreaterEqual(n.prefixlen, 24, "allowed_networks must name the Internet-side MTA, not %s" % n)
        # The bounce hop is the Internet-side MTA, the one allowed to send.
        bounce_host, _ = split_endpoint(relay["bounce_hop"])
        self.assertTrue(any(ipaddress.ip_address(bounce_host) in n for n in nets),
                        "relay.bounce_hop %s is not in smtp.allowed_networks" % bounce_host)
        # The next hop is on the other side: not the Internet-side MTA, not us.
        next_host, _ = split_endpoint(relay["next_hop"])
        self.assertNotEqual(next_host, host)
        self.assertFalse(any(ipaddress.ip_address(next_host) in n for n in nets),
                         "relay.next_hop %s is in the Internet-side allowed_networks" % next_host)
        self.assertEqual(cfg["antivirus"]["database"], "/var/lib/clamav")
        self.assertTrue(cfg["antivirus"]["required"])
        self.assertTrue(cfg["workers"]["require_full_sandbox"])
        self.assertNotIn(cfg["workers"]["user"], ("root", SERVICE_USER))
        for path in (cfg["spool"]["dir"], cfg["quarantine"]["dir"], relay["maildir"]):
            self.assertTrue(path.startswith(STATE_ROOT + "/"), path)
        self.assertTrue(cfg["audit"]["log"].startswith(LOG_ROOT + "/"), cfg["audit"]["log"])


class UnitFileTests(unittest.TestCase):
    def setUp(self):
        self.unit = parse_unit(UNIT)
        self.service = self.unit["Service"]

    def test_runs_the_production_configuration_as_its_own_user(self):
        argv = shlex.split(single(self.service, "ExecStart"))
        self.assertEqual(argv[:2], [UNIT_BINARY, "serve"])
        self.assertEqual(argv[argv.index("--config") + 1], UNIT_CONFIG)
        self.assertEqual(single(self.service, "User"), SERVICE_USER)

    def test_hardening_keys(self):
        expected = {
            "ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
            "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
            "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "TimeoutStopSec": "60",
            "Restart": "on-failure", "ProtectHome": "yes",
        }
        for key, value in expected.items():
            self.assertEqual(single(self.service, key), value, key)
        self.assertTrue(int(single(self.service, "LimitNOFILE")) >= 1024)
        self.assertNotIn("User", [k for k, _ in self.unit.get("Unit", [])])
        self.assertEqual(values(self.service, "PrivateUsers"), [], "PrivateUsers= breaks binding port 25")

    def test_writes_only_the_configured_directories(self):
        cfg = load_prod()
        paths = set()
        for v in values(self.service, "ReadWritePaths"):
            paths.update(p.lstrip("-+") for p in v.split())
        want = {cfg["spool"]["dir"], cfg["quarantine"]["dir"], cfg["relay"]["maildir"],
                os.path.dirname(cfg["audit"]["log"])}
        self.assertEqual(paths, want)
        for key in ("StateDirectory", "LogsDirectory", "CacheDirectory", "RuntimeDirectory", "ReadWriteDirectories"):
            self.assertEqual(values(self.service, key), [], key + "= would add writable paths")

    def test_the_workers_may_create_their_namespaces(self):
        allowed = set()
        for v in values(self.service, "RestrictNamespaces"):
            if v in ("yes", "true"):
                self.fail("RestrictNamespaces=yes forbids the workers' user and network namespaces")
            if v in ("no", "false", ""):
                allowed = {"user", "net", "ipc", "mnt", "pid", "uts", "cgroup"}
            elif v.startswith("~"):
                allowed = {"user", "net", "ipc", "mnt", "pid", "uts", "cgroup"} - set(v[1:].split())
            else:
                allowed |= set(v.split())
        if values(self.service, "RestrictNamespaces"):
            self.assertTrue({"user", "net", "ipc"} <= allowed, "RestrictNamespaces allows only %s" % sorted(allowed))

    def test_the_system_call_filter_lets_the_workers_sandbox_themselves(self):
        filters = values(self.service, "SystemCallFilter")
        if not filters:
            return
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed: cannot expand the filter's groups")
        cache = {}

        def expand(name):
            if not name.startswith("@"):
                return {name}
            if name not in cache:
                out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True)
                self.assertEqual(out.returncode, 0, "unknown group %s: %s" % (name, out.stderr))
                s = set()
                for line in out.stdout.splitlines()[1:]:
                    t = line.strip()
                    if t and not t.startswith("#"):
                        s |= expand(t)
                cache[name] = s
            return cache[name]

        # systemd.exec(5): the first line decides allow- or deny-list; later
        # lines of the same kind add, of the other kind remove, in order.
        allow_list = not filters[0].startswith("~")
        chosen = set()
        for f in filters:
            deny = f.startswith("~")
            names = set()
            for n in f.lstrip("~").split():
                names |= expand(n)
            if deny != (not allow_list):
                chosen -= names
            else:
                chosen |= names
        if allow_list:
            missing = [c for c in REQUIRED_SYSCALLS if c not in chosen]
        else:
            missing = [c for c in REQUIRED_SYSCALLS if c in chosen]
        self.assertEqual(missing, [], "SystemCallFilter blocks system calls the workers need")

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        tmp = tempfile.mkdtemp(prefix="mukaika-unit-")
        try:
            # /usr/local/bin/mukaika need not exist here: verify the unit with
            # the binary under test in its place.
            text = read(UNIT).replace("ExecStart=" + UNIT_BINARY, "ExecStart=" + os.path.abspath(BIN))
            path = os.path.join(tmp, "mukaika.service")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            run = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertNotIn("Unknown key", run.stderr)
            self.assertNotIn("Unknown lvalue", run.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class PostfixSnippetTests(unittest.TestCase):
    def setUp(self):
        self.listen_host, self.listen_port = split_endpoint(load_prod()["smtp"]["listen"])

    @staticmethod
    def main_cf(path):
        params = {}
        for line in read(path).splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, sep, value = line.partition("=")
            if sep:
                params[key.strip()] = value.strip()
        return params

    def test_transport_points_at_smtp_listen(self):
        entries = [l.split() for l in read(TRANSPORT).splitlines() if l.strip() and not l.startswith("#")]
        self.assertTrue(entries, "no entries in " + TRANSPORT)
        domains = set()
        for domain, nexthop in entries:
            self.assertEqual(nexthop, "smtp:[%s]:%d" % (self.listen_host, self.listen_port), domain)
            domains.add(domain)
        relay_domains = {d.strip() for d in re.split(r"[,\s]+", self.main_cf(MAIN_CF)["relay_domains"]) if d.strip()}
        self.assertEqual(domains, relay_domains, "transport entries and relay_domains differ")

    def test_main_cf_routes_through_the_transport_map_and_takes_the_bounces_back(self):
        p = self.main_cf(MAIN_CF)
        self.assertEqual(p["transport_maps"], "hash:/etc/postfix/transport")
        nets = [ipaddress.ip_network(n.strip("[]").replace("]/", "/"), strict=False)
                for n in re.split(r"[,\s]+", p["mynetworks"]) if n]
        self.assertTrue(any(ipaddress.ip_address(self.listen_host) in n for n in nets),
                        "mynetworks must contain mukaika's address %s (its bounces)" % self.listen_host)
        self.assertIn("permit_mynetworks", p.get("smtpd_relay_restrictions", "permit_mynetworks"))
        limit = int(p["message_size_limit"])
        self.assertLessEqual(limit, load_prod()["smtp"]["max_message_bytes"])

    def test_lgwan_side_accepts_only_the_gateway(self):
        text = read(LGWAN_CF)
        self.assertRegex(text, r"(?m)^smtpd_client_restrictions = check_client_access cidr:\S+, reject$")
        next_host, _ = split_endpoint(load_prod()["relay"]["next_hop"])
        self.assertIn(next_host, text)


class ServiceUserSmokeTests(unittest.TestCase):
    """`mukaika serve` as the unit runs it: user mukaika, CAP_NET_BIND_SERVICE only, no_new_privs."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (to switch to the user %r)" % SERVICE_USER)
        if not shutil.which("setpriv"):
            self.skipTest("setpriv (util-linux) is not installed")
        self.cfg = load_prod()
        self.user = ensure_user(SERVICE_USER)
        ensure_user(self.cfg["workers"]["user"])
        self.tmp = tempfile.mkdtemp(prefix="mukaika-deploy-")
        os.chmod(self.tmp, 0o755)
        self.proc = None
        self.out = None

    def tearDown(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "out", None):
            self.out.close()
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    @staticmethod
    def free_privileged_port():
        for port in range(700, 1000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue
        raise unittest.SkipTest("no free port below 1024 on 127.0.0.1")

    def config(self, port):
        """The production file with loopback addresses and directories in self.tmp."""
        text = read(PROD_TOML)
        state, log = os.path.join(self.tmp, "lib"), os.path.join(self.tmp, "log")
        swaps = [
            ('listen = "%s"' % self.cfg["smtp"]["listen"], 'listen = "127.0.0.1:%d"' % port),
            ("allowed_networks = %s" % re.search(r"(?m)^allowed_networks = (.*?)\s*(#|$)", text).group(1),
             'allowed_networks = ["127.0.0.0/8"]'),
            ('next_hop = "%s"' % self.cfg["relay"]["next_hop"], 'next_hop = ""'),  # the Maildir stands in
            ('bounce_hop = "%s"' % self.cfg["relay"]["bounce_hop"], 'bounce_hop = ""'),
            ('database = "/var/lib/clamav"', 'database = "%s"' % os.path.join(SAMPLES, "clamav")),
            ('"' + STATE_ROOT + "/", '"' + state + "/"),
            ('"' + LOG_ROOT + "/", '"' + log + "/"),
        ]
        for old, new in swaps:
            self.assertIn(old, text)
            text = text.replace(old, new)
        for d in (state, log):
            os.mkdir(d, 0o750)
        for d in ("spool", "quarantine", "maildir"):
            os.mkdir(os.path.join(state, d), 0o750)
        for root, dirs, _ in os.walk(self.tmp):
            for d in dirs:
                os.chown(os.path.join(root, d), self.user.pw_uid, self.user.pw_gid)
        path = os.path.join(self.tmp, "mukaika.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path, state, log

    def test_serve_runs_unprivileged_and_sanitizes_in_sandboxed_workers(self):
        port = self.free_privileged_port()
        path, state, log = self.config(port)
        argv = ["setpriv", "--reuid=" + SERVICE_USER, "--regid=" + SERVICE_USER, "--init-groups",
                "--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service",
                "--bounding-set=-all,+net_bind_service", "--no-new-privs",
                os.path.abspath(BIN), "serve", "--config", path]
        out = self.out = open(os.path.join(self.tmp, "serve.out"), "w+")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                out.seek(0)
                self.fail("mukaika serve exited with %d:\n%s" % (self.proc.returncode, out.read()))
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail("mukaika serve did not listen on port %d" % port)
                time.sleep(0.2)
        msg = ("From: sender@example.com\r\nTo: user@example.lg.jp\r\nSubject: deploy test\r\n"
               "Message-ID: <deploy-smoke@example.com>\r\n\r\nhello\r\n")
        with smtp:
            smtp.sendmail("sender@example.com", ["user@example.lg.jp"], msg)
        # Delivered into the Maildir, audited.
        new = os.path.join(state, "maildir", "new")
        deadline = time.monotonic() + 60
        while not (os.path.isdir(new) and os.listdir(new)):
            if time.monotonic() > deadline:
                out.seek(0)
                self.fail("nothing delivered within 60 s:\n" + out.read())
            time.sleep(0.2)
        with open(os.path.join(log, "audit.jsonl"), encoding="utf-8") as f:
            audit = f.read()
        self.assertIn('"message_id":"<deploy-smoke@example.com>"', audit)
        self.assertIn('"outcome":"delivered"', audit)
        # Everything the daemon wrote belongs to the service user.
        for root, dirs, files in os.walk(self.tmp):
            for name in dirs + files:
                p = os.path.join(root, name)
                if p.startswith(state) or p.startswith(log):
                    self.assertEqual(os.lstat(p).st_uid, self.user.pw_uid, p)
        self.proc.terminate()
        self.assertEqual(self.proc.wait(60), 0)


def main():
    argv = [sys.argv[0]] + sys.argv[1:]
    if not BIN or not os.access(BIN, os.X_OK):
        print("MUKAIKA_BIN must name the mukaika binary (is %r)" % BIN, file=sys.stderr)
        return 2
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    result = prog.result
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        return 77  # all skipped: ctest SKIP_RETURN_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
