#!/usr/bin/env python3
"""End-to-end test of `mukaika serve` behind a real Postfix (issue 6).

A throwaway Postfix instance stands for the Internet-side MTA: its own
config_directory, queue_directory and data_directory under a temporary
directory, an smtpd on a free loopback port, and a transport map that sends
everything for city.example.lg.jp to mukaika serve. mukaika's next hop is an
aiosmtpd server standing for the LGWAN-side MTA (test_serve.Peer). The sample
mails go in at the Postfix port with smtplib and must arrive sanitized, with
the envelope Postfix passed on.

The system Postfix (/etc/postfix, /var/spool/postfix) is never touched:
every postfix command runs with `-c <temp>/etc`. tearDown stops the instance
(`postfix stop`, `postfix abort` if that fails) and waits until its master
process is gone.

Environment: MUKAIKA_BIN (the binary), MUKAIKA_SAMPLES (samples/). Needs root
(Postfix's master starts as root and drops to mail_owner), the postfix
package (its `postfix` command, daemons and the `postfix` user) and
python3-aiosmtpd. Exits 77 (skipped) when any of them is missing or when
Postfix cannot be started here, with the reason on stderr.
MUKAIKA_E2E_KEEP=1 keeps the temporary directory (Postfix's maillog, mukaika's
log and audit log) for inspection.
"""
import email
import email.policy
import glob
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_serve as T  # noqa: E402  (Peer, wait_for, free_port, samples)

S = T.S
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
DOMAIN = "city.example.lg.jp"


def postfix_problem():
    """Why Postfix cannot run here, or "" when it should."""
    if os.geteuid() != 0:
        return "not root: Postfix's master must start as root"
    for tool in (POSTFIX, POSTCONF):
        if not os.access(tool, os.X_OK):
            return "%s is missing (apt-get install postfix)" % tool
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no 'postfix' user (mail_owner)"
    proc = subprocess.run([POSTCONF, "-d", "-h", "daemon_directory"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    daemons = proc.stdout.decode().strip()
    if proc.returncode != 0 or not os.access(os.path.join(daemons, "master"), os.X_OK):
        return "Postfix's daemons are missing (daemon_directory %r)" % daemons
    return ""


# The instance's configuration and its start and stop, shared with the
# benchmark (tests/bench/mta/run.sh).
INSTANCE = os.path.join(T.REPO, "tests", "support", "postfix_instance.sh")


class PostfixInstance:
    """A Postfix with its own directories under base, relaying DOMAIN to next_hop."""

    def __init__(self, base, port, next_hop):
        self.base, self.port, self.next_hop = base, port, next_hop
        self.etc = os.path.join(base, "etc")
        self.started = False

    def instance(self, *args):
        return subprocess.run(["bash", INSTANCE] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120)

    def postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.etc] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)

    def maillog(self):
        try:
            with open(os.path.join(self.base, "maillog"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        """"" when listening, else why not."""
        proc = self.instance("start", self.base, str(self.port), self.next_hop)
        self.started = True  # whatever start got to, stop undoes it
        if proc.returncode != 0:
            return "%s\n%s" % (proc.stdout.decode("utf-8", "replace"), self.maillog())
        return ""

    def stop(self):
        if self.started:
            self.instance("stop", self.base)
            self.started = False

    def queue_ids(self):
        """Messages still in this instance's queue."""
        out = []
        for sub in ("incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.base, "queue", sub)):
                out.extend(files)
        return out


PROBLEM = postfix_problem()


@unittest.skipUnless(T.HAVE_AIOSMTPD, "python3-aiosmtpd is missing (deploy/install-deps.sh installs it)")
@unittest.skipIf(PROBLEM, PROBLEM)
class PostfixHopTests(T.ServeCase):
    """Internet → Postfix → mukaika serve → LGWAN peer."""

    def setUp(self):
        super().setUp()
        self.pf = None
        try:
            self.hop = self.peer("lgwan")
            self.start(self.config(next_hop="127.0.0.1:%d" % self.hop.port))
            self.pf = PostfixInstance(self.path("postfix"), T.free_port(), "127.0.0.1:%d" % self.port)
            why = self.pf.start()
        except BaseException:
            self.tearDown()  # unittest does not call it when setUp fails
            raise
        if why:
            self.tearDown()
            self.skipTest("cannot start a Postfix instance here: " + why)

    def tearDown(self):
        if self.pf:
            self.pf.stop()
            self.pf = None
        super().tearDown()

    def submit(self, data, sender, rcpts):
        with smtplib.SMTP("127.0.0.1", self.pf.port, timeout=30) as s:
            s.ehlo("mx.example.jp")
            self.assertEqual(s.sendmail(sender, list(rcpts), data), {})

    def wait_received(self, n):
        def enough():
            got = self.hop.received()
            return len(got) >= n and got
        try:
            return T.wait_for(enough, 180, "%d mails at the LGWAN peer" % n)
        except AssertionError as e:
            raise AssertionError("%s\n--- Postfix maillog ---\n%s\n--- mukaika ---\n%s"
                                 % (e, self.pf.maillog()[-4000:], self.daemon_log()[-4000:]))

    def test_samples_through_postfix_arrive_sanitized_with_the_envelope(self):
        sends = [
            ("iso2022jp-ms-ext.eml", "bounce@mx.example.jp", ["kensetsu@%s" % DOMAIN]),
            ("many-attachments.eml", "jouhou@mx.example.jp", ["soumu@%s" % DOMAIN, "jouhou@%s" % DOMAIN]),
            ("eicar-attachment.eml", "jouhou@mx.example.jp", ["soumu@%s" % DOMAIN]),
            ("cp932-shift-jis-label.eml", "a@mx.example.jp", ["x@%s" % DOMAIN, "y@%s" % DOMAIN, "z@%s" % DOMAIN]),
            ("html-only.eml", "", ["staff@%s" % DOMAIN]),  # the null sender (a bounce from outside)
        ]
        for name, sender, rcpts in sends:
            self.submit(self.sample(name), sender, rcpts)
        got = self.wait_received(len(sends))
        time.sleep(1)  # anything more (a duplicate) would show up now
        got = self.hop.received()
        self.assertEqual(len(got), len(sends), [e for e, _ in got])

        by_subject = {}
        for env, data in got:
            msg = email.message_from_bytes(data, policy=email.policy.default)
            by_subject[str(msg["Subject"])] = (env, data, msg)
        self.assertEqual(set(by_subject), {S.SUBJECTS[n] for n, _, _ in sends})
        for name, sender, rcpts in sends:
            env, data, msg = by_subject[S.SUBJECTS[name]]
            # The envelope Postfix passed on, unchanged by mukaika.
            self.assertIn(env["from"], (sender, "<%s>" % sender), name)  # aiosmtpd: "<>" for the null sender
            self.assertEqual(sorted(env["to"]), sorted(rcpts), name)
            self.assertTrue(str(msg["X-Mukaika-Sanitized"]).startswith("mukaika; "), (name, msg["X-Mukaika-Sanitized"]))
            self.assertNotIn(S.EICAR, data, name)
            self.assertNotIn(S.MINIMAL_PE, data, name)

        # eicar-attachment.eml: the two test viruses are gone, the rest is there.
        _, _, msg = by_subject[S.SUBJECTS["eicar-attachment.eml"]]
        names = [p.get_filename() for p in msg.iter_attachments() if p.get_filename()]
        kept_name, _ = S.EICAR_ATTACHMENT_KEPT
        self.assertIn(kept_name, names)
        self.assertNotIn("eicar.com", names)

        # 原本保管: each original as Postfix handed it over (its Received line
        # in front of the sample's own headers).
        kept = [T.read_bytes(p) for p in glob.glob(self.path("quarantine", "*", "*.eml"))]
        self.assertEqual(len(kept), len(sends))
        for name, _, _ in sends:
            sample = self.sample(name)
            body = sample[sample.index(b"\r\n\r\n"):]
            self.assertTrue(any(body in k and b"internet-mta.example" in k for k in kept), name)

        # Postfix's queue is empty: everything was handed over with a 250.
        self.assertEqual(self.pf.queue_ids(), [])
        self.assertIn("status=sent", self.pf.maillog())

    def test_mukaika_down_postfix_queues_then_delivers(self):
        # mukaika stops; Postfix keeps the mail (4xx / connection refused) and
        # delivers it once mukaika is back.
        self.daemon.terminate()
        self.daemon.wait(timeout=60)
        self.submit(self.sample("utf8-plain.eml"), "sender@mx.example.jp", ["staff@%s" % DOMAIN])
        try:
            T.wait_for(lambda: "status=deferred" in self.pf.maillog(), 60, "Postfix to defer the mail")
        except AssertionError as e:
            raise AssertionError("%s\n--- Postfix maillog ---\n%s" % (e, self.pf.maillog()[-4000:]))
        self.assertEqual(self.hop.received(), [])
        self.start(self.path("mukaika.toml"))
        # What an operator does after an outage; without it Postfix retries
        # on its own after the backoff (1-2 s here).
        self.pf.postfix("flush")
        env, data = self.wait_received(1)[0]
        self.assertEqual(env["to"], ["staff@%s" % DOMAIN])
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), S.SUBJECTS["utf8-plain.eml"])
        self.assertTrue(str(msg["X-Mukaika-Sanitized"]).startswith("mukaika; "))
        T.wait_for(lambda: not self.pf.queue_ids(), 30, "Postfix's queue to empty")


def main():
    if not T.BIN:
        print("MUKAIKA_BIN is not set", file=sys.stderr)
        return 2
    if not T.HAVE_AIOSMTPD:
        print("python3-aiosmtpd is missing: skipped", file=sys.stderr)
        return 77
    if PROBLEM:
        print("cannot run Postfix here (%s): skipped" % PROBLEM, file=sys.stderr)
        return 77
    prog = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False)
    r = prog.result
    if not r.wasSuccessful():
        return 1
    if r.testsRun and len(r.skipped) == r.testsRun:
        print("every test was skipped (see the reasons above): exit 77", file=sys.stderr)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
