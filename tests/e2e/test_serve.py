#!/usr/bin/env python3
"""End-to-end tests of `mukaika serve`, the MTA hop, with real SMTP peers.

A real client (Python's smtplib, Postfix's smtp-source) sends the sample
mails to `mukaika serve`; the sanitized mail arrives in the local Maildir or
at a real SMTP server standing for the LGWAN-side MTA (Python's aiosmtpd,
run as a separate process). Faults: the next hop down and coming back, 5xx
answers (bounces to the Internet side), SIGKILL of the daemon while mail is
in the spool, SIGTERM.

Environment: MUKAIKA_BIN (the binary), MUKAIKA_SAMPLES (samples/). Needs
python3-aiosmtpd (deploy/install-deps.sh); skips (exit 77) without it.
"""
import email
import email.policy
import glob
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("MUKAIKA_BIN", "")
SAMPLES = os.environ.get("MUKAIKA_SAMPLES") or os.path.join(REPO, "samples")
MAIL_DIR = os.path.join(SAMPLES, "mail")
SIGNATURES = os.path.join(SAMPLES, "clamav")
KEEP = os.environ.get("MUKAIKA_E2E_KEEP") == "1"

sys.dont_write_bytecode = True
sys.path.insert(0, MAIL_DIR)
import make_samples as S  # noqa: E402

try:
    import aiosmtpd  # noqa: F401
    HAVE_AIOSMTPD = True
except ImportError:
    HAVE_AIOSMTPD = False

PEER = r'''
import json, os, sys, time
from aiosmtpd.controller import Controller

out_dir, port_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 no such user here"
        if os.path.exists(os.path.join(out_dir, "TEMPFAIL")):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = "%.6f-%d" % (time.time(), os.getpid())
        with open(os.path.join(out_dir, name + ".eml"), "wb") as f:
            f.write(envelope.original_content)
        # The envelope last, and by rename: a .json means the mail is complete.
        with open(os.path.join(out_dir, name + ".json.tmp"), "w") as f:
            json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos}, f)
        os.rename(os.path.join(out_dir, name + ".json.tmp"), os.path.join(out_dir, name + ".json"))
        return "250 2.0.0 stored"

c = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False)
c.start()
with open(port_file + ".tmp", "w") as f:
    f.write(str(port))
os.rename(port_file + ".tmp", port_file)
try:
    while True:
        time.sleep(3600)
finally:
    c.stop()
'''


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Peer:
    """An aiosmtpd server in its own process, storing what it receives."""

    def __init__(self, tmp, name, port=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        port_file = os.path.join(tmp, name + ".port")
        # aiosmtpd's Controller cannot listen on port 0.
        self.proc = subprocess.Popen([sys.executable, "-c", PEER, self.dir, port_file, str(port or free_port())],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.port = int(wait_for(lambda: os.path.exists(port_file) and read_text(port_file), 20, name + " to listen"))

    def tempfail(self, on):
        flag = os.path.join(self.dir, "TEMPFAIL")
        if on:
            open(flag, "w").close()
        elif os.path.exists(flag):
            os.remove(flag)

    def received(self):
        out = []
        for p in sorted(glob.glob(os.path.join(self.dir, "*.json"))):
            with open(p) as f:
                env = json.load(f)
            with open(p[:-5] + ".eml", "rb") as f:
                data = f.read()
            out.append((env, data))
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@unittest.skipUnless(HAVE_AIOSMTPD, "python3-aiosmtpd is missing (deploy/install-deps.sh installs it)")
class ServeCase(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mukaika-serve-")
        self.daemon = None
        self.peers = []
        self.port = free_port()

    def tearDown(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        for p in self.peers:
            p.stop()
        if getattr(self, "log", None):
            self.log.close()
        if KEEP:
            print("kept", self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def peer(self, name, port=None):
        p = Peer(self.tmp, name, port)
        self.peers.append(p)
        return p

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def config(self, next_hop="", bounce_hop="", extra="", lgwan_http='listen = ""\n'):
        text = ('[antivirus]\ndatabase = "%s"\n'
                '[smtp]\nlisten = "127.0.0.1:%d"\ncommand_timeout_seconds = 30\n'
                '[relay]\nnext_hop = "%s"\nbounce_hop = "%s"\nmaildir = "%s"\nretry_min_s = 1\nretry_max_s = 2\n'
                'timeout_seconds = 10\n'
                '[spool]\ndir = "%s"\n[quarantine]\ndir = "%s"\n[audit]\nlog = "%s"\n'
                # The drop box has its own tests (test_dropbox.py); off here, so
                # that parallel tests do not compete for its default ports.
                '[http.internet]\nlisten = ""\n[http.lgwan]\n%s'
                % (SIGNATURES, self.port, next_hop, bounce_hop, self.path("maildir"), self.path("spool"),
                   self.path("quarantine"), self.path("audit.jsonl"), lgwan_http)) + extra
        path = self.path("mukaika.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def start(self, config):
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.path("daemon.log"), "ab")
        self.daemon = subprocess.Popen([BIN, "serve", "--config", config], stdout=self.log, stderr=subprocess.STDOUT,
                                       cwd=self.tmp)

        def listening():
            if self.daemon.poll() is not None:
                raise AssertionError("mukaika serve exited with %s:\n%s" % (self.daemon.returncode, self.daemon_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(listening, 60, "mukaika serve to listen")

    def daemon_log(self):
        with open(self.path("daemon.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send(self, data, sender="sender@example.com", rcpts=("staff@city.example.lg.jp",)):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo("internet-mta.example")
            reply = s.sendmail(sender, list(rcpts), data)
            self.assertEqual(reply, {})

    def sample(self, name):
        with open(os.path.join(MAIL_DIR, name), "rb") as f:
            return f.read()

    def maildir(self):
        return sorted(glob.glob(self.path("maildir", "new", "*")))

    def audit(self):
        if not os.path.exists(self.path("audit.jsonl")):
            return []
        with open(self.path("audit.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def queue(self, *args):
        proc = subprocess.run([BIN, "queue", "--config", self.path("mukaika.toml")] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.tmp, timeout=60)
        return proc


class MaildirTests(ServeCase):

    def test_samples_arrive_sanitized_in_the_maildir_and_originals_are_kept(self):
        self.start(self.config())
        names = ["iso2022jp-ms-ext.eml", "many-attachments.eml", "html-only.eml"]
        for n in names:
            self.send(self.sample(n))
        files = wait_for(lambda: len(self.maildir()) >= len(names) and self.maildir(), 120, "delivery to the Maildir")
        self.assertEqual(len(files), len(names))
        subjects = set()
        for f in files:
            with open(f, "rb") as fh:
                data = fh.read()
            self.assertTrue(data.startswith(b"Delivered-To: staff@city.example.lg.jp\r\n"), data[:80])
            # This hop's trace line (RFC 5321 4.4) on top of the sanitized mail.
            self.assertRegex(data[:400], rb"\r\nReceived: from internet-mta\.example \(\[127\.0\.0\.1\]\)\r\n\tby \S+ "
                                         rb"\(mukaika\) with ESMTP id [0-9a-f]+\r\n\tfor <staff@city\.example\.lg\.jp>; ")
            msg = email.message_from_bytes(data, policy=email.policy.default)
            self.assertTrue(msg["X-Mukaika-Sanitized"].startswith("mukaika; "), msg["X-Mukaika-Sanitized"])
            subjects.add(str(msg["Subject"]))
            self.assertNotIn(S.MINIMAL_PE, data)
        self.assertEqual(subjects, {S.SUBJECTS[n] for n in names})
        # 原本保管: every original, byte for byte.
        kept = glob.glob(self.path("quarantine", "*", "*.eml"))
        originals = sorted(read_bytes(p) for p in kept)
        self.assertEqual(originals, sorted(self.sample(n) for n in names))
        # Accountable: one record per message with its envelope and verdict.
        records = self.audit()
        self.assertTrue(records, "empty audit log")
        text = json.dumps(records, ensure_ascii=False)
        self.assertIn("sender@example.com", text)
        self.assertIn("staff@city.example.lg.jp", text)

    def test_infected_mail_is_not_delivered_and_the_recipient_is_told(self):
        self.start(self.config())
        self.send(self.sample("eicar-body.eml"))
        files = wait_for(self.maildir, 120, "the notice in the Maildir")
        with open(files[0], "rb") as f:
            data = f.read()
        self.assertNotIn(S.EICAR, data)
        msg = email.message_from_bytes(data, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("遮断", body)
        self.assertEqual(len(glob.glob(self.path("quarantine", "*", "*.eml"))), 1)

    def test_notices_link_to_the_mail_page_on_the_lgwan_side(self):
        # With LGWAN pages, a recipient reaches a mail's report, the original
        # request and the password form from the notice (issue 8).
        self.start(self.config(lgwan_http='listen = "127.0.0.1:0"\npublic_url = "https://mukaika.lgwan.example"\n'))
        self.send(self.sample("eicar-attachment.eml"))  # sanitized, with a notice at the top
        self.send(self.sample("eicar-body.eml"))        # blocked: a notice mail instead
        files = wait_for(lambda: len(self.maildir()) >= 2 and self.maildir(), 120, "both mails in the Maildir")
        ids = {a["message_id"]: a["queue_id"] for a in self.audit() if a.get("type") == "message"}
        bodies = []
        for f in files:
            with open(f, "rb") as fh:
                msg = email.message_from_bytes(fh.read(), policy=email.policy.default)
            bodies.append(msg.get_body(preferencelist=("plain",)).get_content())
        self.assertEqual(len(ids), 2, ids)
        for queue_id in ids.values():
            link = "https://mukaika.lgwan.example/mail/" + queue_id
            self.assertEqual(sum(link in b for b in bodies), 1, (link, bodies))
        # The blocked-mail notice names the mail as its reader knows it.
        notice = [b for b in bodies if "受付番号" in b]
        self.assertEqual(len(notice), 1, bodies)
        self.assertIn("件名:        " + S.SUBJECTS["eicar-body.eml"], notice[0])
        self.assertIn("差出人:      情報政策課 <jouhou@city.example.jp>", notice[0])

    def test_mail_over_the_item_limit_is_blocked_and_sanitizing_goes_on(self):
        # smtp.max_message_bytes (50 MiB) above limits.max_item_bytes (1 MiB):
        # such a mail used to overrun the sanitizer service's frame limit and
        # stop all sanitizing until a restart.
        self.start(self.config(extra="[limits]\nmax_item_bytes = 1048576\n"))
        big = (b"From: a@example.jp\r\nTo: staff@city.example.lg.jp\r\nSubject: big\r\n"
               b"Message-ID: <big@example.jp>\r\n\r\n" + (b"x" * 76 + b"\r\n") * 135000)  # ~10 MiB: over the limit plus the frame slack
        self.send(big)
        self.send(self.sample("utf8-plain.eml"))
        files = wait_for(lambda: len(self.maildir()) >= 2 and self.maildir(), 120, "the notice and the small mail")
        time.sleep(0.5)
        self.assertEqual(len(self.maildir()), 2)
        records = [a for a in self.audit() if a.get("type") == "message"]
        verdicts = sorted(a["verdict"] for a in records)
        self.assertEqual(len(records), 2)
        self.assertIn("blocked", verdicts)
        self.assertTrue(any(a["verdict"] != "blocked" for a in records), verdicts)
        blocked = [a for a in records if a["verdict"] == "blocked"][0]
        self.assertEqual(blocked["message_id"], "<big@example.jp>")

    def test_queue_lists_and_sigterm_exits_cleanly(self):
        self.start(self.config())
        self.send(self.sample("utf8-plain.eml"))
        wait_for(self.maildir, 120, "delivery")
        proc = self.queue()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace"))
        self.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(self.daemon.wait(timeout=60), 0, self.daemon_log())

    def test_port_in_use_is_a_clear_start_up_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", self.port))
            s.listen()
            proc = subprocess.run([BIN, "serve", "--config", self.config()], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=self.tmp, timeout=60)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("127.0.0.1:%d" % self.port, proc.stderr.decode("utf-8", "replace"))

    def test_kill_9_loses_nothing_that_got_250(self):
        # The next hop refuses for now: mail waits in the spool.
        hop = self.peer("lgwan")
        hop.tempfail(True)
        cfg = self.config(next_hop="127.0.0.1:%d" % hop.port)
        self.start(cfg)
        for i in range(5):
            self.send(self.sample("utf8-plain.eml"))
        # One more, killed in the middle of DATA: never acknowledged, so it
        # must not be delivered either.
        half = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        half.sendall(b"EHLO internet-mta.example\r\nMAIL FROM:<sender@example.com>\r\n"
                     b"RCPT TO:<staff@city.example.lg.jp>\r\nDATA\r\n")
        wait_for(lambda: b"354" in half.recv(65536), 30, "354")
        half.sendall(b"Subject: half\r\n\r\nnever finished\r\n")
        time.sleep(1)
        self.daemon.kill()
        self.daemon.wait()
        half.close()
        hop.tempfail(False)
        self.start(cfg)
        got = wait_for(lambda: len(hop.received()) >= 5 and hop.received(), 120, "delivery after restart")
        time.sleep(2)  # anything more would show up now
        got = hop.received()
        self.assertEqual(len(got), 5)
        self.assertEqual(os.listdir(self.path("spool", "tmp")), [])
        ids = [email.message_from_bytes(d, policy=email.policy.default)["Message-ID"] for _, d in got]
        self.assertEqual(len(set(ids)), 1)  # the same sample five times


class DiskFullTests(ServeCase):

    def test_spool_disk_full_is_a_4xx_and_nothing_is_lost(self):
        spool = self.path("spool")
        os.makedirs(spool)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", spool],
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("cannot mount a tmpfs here (needs root)")
        try:
            self.start(self.config())
            big = (b"From: a@example.com\r\nTo: staff@city.example.lg.jp\r\nSubject: big\r\n"
                   b"Message-ID: <big@example.com>\r\n\r\n" + b"x" * 76 + b"\r\n") * 8000
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
                with self.assertRaises(smtplib.SMTPDataError) as err:
                    s.sendmail("a@example.com", ["staff@city.example.lg.jp"], big)
                self.assertEqual(err.exception.smtp_code // 100, 4, err.exception)
            # A message that fits still goes through, and arrives.
            self.send(self.sample("utf8-plain.eml"))
            wait_for(self.maildir, 120, "delivery after the refused one")
            self.assertEqual(len(self.maildir()), 1)
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=60)
        finally:
            if self.daemon and self.daemon.poll() is None:
                self.daemon.kill()
                self.daemon.wait()
            subprocess.run(["umount", spool])


class RelayTests(ServeCase):

    def test_next_hop_gets_the_original_envelope(self):
        hop = self.peer("lgwan")
        self.start(self.config(next_hop="127.0.0.1:%d" % hop.port))
        self.send(self.sample("cp932-shift-jis-label.eml"), sender="a@example.com",
                  rcpts=("x@city.example.lg.jp", "y@city.example.lg.jp"))
        got = wait_for(hop.received, 120, "delivery to the next hop")
        env, data = got[0]
        self.assertEqual(env["from"], "a@example.com")
        self.assertEqual(sorted(env["to"]), ["x@city.example.lg.jp", "y@city.example.lg.jp"])
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(str(msg["Subject"]), S.SUBJECTS["cp932-shift-jis-label.eml"])

    def test_next_hop_down_then_back(self):
        port = free_port()
        self.start(self.config(next_hop="127.0.0.1:%d" % port))
        self.send(self.sample("utf8-plain.eml"))
        time.sleep(2)  # at least one failed attempt
        # Not lost: in the queue, deferred.
        proc = self.queue()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace"))
        self.assertIn("sender@example.com", proc.stdout.decode("utf-8", "replace"))
        # Bring the next hop up on that port.
        late = self.peer("late", port)
        wait_for(late.received, 120, "delivery once the next hop is back")

    def test_5xx_bounces_to_the_sender_through_the_internet_side(self):
        hop = self.peer("lgwan")
        internet = self.peer("internet")
        self.start(self.config(next_hop="127.0.0.1:%d" % hop.port, bounce_hop="127.0.0.1:%d" % internet.port))
        self.send(self.sample("utf8-plain.eml"), sender="sender@example.com", rcpts=("reject-me@city.example.lg.jp",))
        got = wait_for(internet.received, 120, "the bounce")
        env, data = got[0]
        self.assertIn(env["from"], ("", "<>"))  # aiosmtpd shows the null sender as "<>"
        self.assertEqual(env["to"], ["sender@example.com"])
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertIn("delivery-status", msg["Content-Type"])
        self.assertEqual(hop.received(), [])


class PostfixTests(ServeCase):
    """smtp-source (Postfix's load generator) against mukaika serve."""

    @unittest.skipUnless(shutil.which("smtp-source") or os.path.exists("/usr/sbin/smtp-source"), "no smtp-source")
    def test_smtp_source_many_sessions(self):
        hop = self.peer("lgwan")
        self.start(self.config(next_hop="127.0.0.1:%d" % hop.port))
        tool = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
        # 200 sessions at once (the number), 400 mails.
        proc = subprocess.run([tool, "-s", "200", "-m", "400", "-f", "load@example.com", "-t", "staff@city.example.lg.jp",
                               "127.0.0.1:%d" % self.port], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        got = wait_for(lambda: len(hop.received()) >= 400 and hop.received(), 500, "400 deliveries")
        time.sleep(1)
        self.assertEqual(len(hop.received()), 400)


if __name__ == "__main__":
    if not BIN:
        print("MUKAIKA_BIN is not set", file=sys.stderr)
        sys.exit(2)
    if not HAVE_AIOSMTPD:
        print("python3-aiosmtpd is missing: skipped", file=sys.stderr)
        sys.exit(77)
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
