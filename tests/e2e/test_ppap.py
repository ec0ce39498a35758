#!/usr/bin/env python3
"""End-to-end tests of PPAP (issue 8): password-protected zips and PDFs are
held; the recipient types the password on the LGWAN page; the real daemon
opens them in its sandboxed workers and delivers the sanitized contents, to
the inbox (drop box) or as a follow-up mail through the queue (SMTP).
Wrong passwords are counted and limited; the password is never written to
disk, to the audit log or to the daemon's output.

Fixtures are made here: `zip -P` (ZipCrypto), `7z -tzip -mem=AES256` (AES),
`7z -p` (7z), `qpdf --encrypt` (PDF). Missing tools skip (77).

Environment: MUKAIKA_BIN (the binary), MUKAIKA_SAMPLES (samples/).
"""
import email
import email.policy
import glob
import io
import json
import os
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
import zipfile
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from test_dropbox import DropBoxCase, FILES  # noqa: E402
from test_serve import wait_for  # noqa: E402

MARKER = "MUKAIKA-PPAP-CONTENT 見積書の本文"
# Unique per run, so that finding it anywhere means this run wrote it.
PASSWORD = "Pp-" + secrets.token_hex(8)
PASSWORD2 = "Second-" + secrets.token_hex(8)  # another attachment, another password
WRONG = "not-the-" + secrets.token_hex(4)
# AES-256 PDFs take UTF-8 passwords (docs/ppap.md).
PASSWORD_JA = "合言葉-" + secrets.token_hex(4)


def tool(name):
    return shutil.which(name) is not None


def make_fixture(kind, workdir, PASSWORD=PASSWORD):  # noqa: N803 (the module's PASSWORD by default)
    """Bytes of an encrypted file holding MARKER, protected with PASSWORD."""
    src = os.path.join(workdir, "見積書.txt")
    with open(src, "w", encoding="utf-8") as f:
        f.write(MARKER + "\n")
    out = os.path.join(workdir, "out-" + kind)
    if kind == "zipcrypto":
        subprocess.run(["zip", "-q", "-j", "-P", PASSWORD, out + ".zip", src], check=True)
        out += ".zip"
    elif kind == "aes":
        subprocess.run(["7z", "a", "-tzip", "-mem=AES256", "-p" + PASSWORD, out + ".zip", src], check=True,
                       stdout=subprocess.DEVNULL)
        out += ".zip"
    elif kind == "7z":
        subprocess.run(["7z", "a", "-mhe=on", "-p" + PASSWORD, out + ".7z", src], check=True, stdout=subprocess.DEVNULL)
        out += ".7z"
    elif kind == "pdf-ja":
        subprocess.run(["qpdf", "--encrypt", PASSWORD_JA, "owner-" + PASSWORD, "256", "--",
                        os.path.join(FILES, "active-content.pdf"), out + ".pdf"], check=True)
        out += ".pdf"
    elif kind == "pdf":
        subprocess.run(["qpdf", "--encrypt", PASSWORD, "owner-" + PASSWORD, "256", "--",
                        os.path.join(FILES, "active-content.pdf"), out + ".pdf"], check=True)
        out += ".pdf"
    with open(out, "rb") as f:
        data = f.read()
    os.remove(out)
    os.remove(src)
    return data


class PpapCase(DropBoxCase):
    @classmethod
    def setUpClass(cls):
        for t in ("zip", "7z", "qpdf"):
            if not tool(t):
                raise unittest.SkipTest(t + " is not installed (deploy/install-deps.sh)")

    def fixture(self, kind, password=PASSWORD):
        d = tempfile.mkdtemp(prefix="mukaika-ppap-fixture-")
        try:
            return make_fixture(kind, d, password)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def sign_in_staff(self, name="demo-staff"):
        r, page = self.request(self.lgwan_port, "GET", "/signin", token=None)
        pre = r.getheader("Set-Cookie").split(";")[0]
        csrf = page.decode().split('name="csrf" value="')[1].split('"')[0]
        form = urllib.parse.urlencode({"csrf": csrf, "name": name, "password": name})
        r, _ = self.request(self.lgwan_port, "POST", "/signin", form,
                            {"Cookie": pre, "Content-Type": "application/x-www-form-urlencoded"}, token=None)
        self.assertEqual(r.status, 303)
        return [c.split(";")[0] for c in r.msg.get_all("Set-Cookie") if c.startswith("mk_session")][0]

    def page(self, session, target):
        r, body = self.request(self.lgwan_port, "GET", target, headers={"Cookie": session}, token=None)
        return r, body.decode("utf-8")

    def post_password(self, session, target, password, csrf=None, extra=()):
        """`password`: one, or a list (one field each, one attempt)."""
        if csrf is None:
            _, page = self.page(session, target)
            csrf = page.split('<meta name="csrf" content="')[1].split('"')[0]
        passwords = [password] if isinstance(password, str) else password
        form = urllib.parse.urlencode([("csrf", csrf)] + [("password", p) for p in passwords] + list(extra))
        r, body = self.request(self.lgwan_port, "POST", target, form,
                               {"Cookie": session, "Content-Type": "application/x-www-form-urlencoded"}, token=None)
        return r, body.decode("utf-8")

    def upload_held(self, kind, name):
        r, data = self.upload([(name, self.fixture(kind), "application/octet-stream")], fields=[("recipient", "demo-staff")])
        self.assertEqual(r.status, 202, data)
        file_id = json.loads(data)["id"]
        item = self.wait_final(file_id)
        self.assertEqual(item["status"], "blocked", item)
        return file_id, item

    def assert_password_nowhere(self):
        """The password is in no file under the test directory (var: spool,
        quarantine, drop box, Maildir, the audit log) nor in the daemon's output."""
        needles = [PASSWORD.encode(), PASSWORD2.encode(), PASSWORD_JA.encode()]
        for root, _, files in os.walk(self.tmp):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                for needle in needles:
                    self.assertNotIn(needle, data, os.path.join(root, f))

    def ppap_records(self):
        return [a for a in self.audit() if a.get("type", "").startswith("ppap.")]


class DropBoxPpapTests(PpapCase):
    def test_zipcrypto_and_aes_zip_wrong_then_right_password(self):
        self.start()
        session = self.sign_in_staff()
        for kind in ("zipcrypto", "aes"):
            with self.subTest(kind=kind):
                file_id, item = self.upload_held(kind, "見積書-%s.zip" % kind)
                self.assertIn("archive.encrypted", [a.get("code") for a in item["report"]["actions"]])
                r, inbox = self.page(session, "/")
                self.assertIn('href="/files/%s/password"' % file_id, inbox)
                r, page = self.page(session, "/files/%s/password" % file_id)
                self.assertEqual(r.status, 200)
                self.assertIn('type="password"', page)
                r, page = self.post_password(session, "/files/%s/password" % file_id, WRONG)
                self.assertEqual(r.status, 422, page)
                self.assertIn("パスワードが違います", page)
                self.assertIn("1 回目", page)
                self.assertNotIn(WRONG, page)  # never echoed
                r, _ = self.post_password(session, "/files/%s/password" % file_id, PASSWORD)
                self.assertEqual(r.status, 303)
                item = self.status(file_id)
                self.assertEqual(item["status"], "done", item)
                r, out = self.request(self.lgwan_port, "GET", "/api/v1/files/%s/content" % file_id)
                self.assertEqual(r.status, 200)
                with zipfile.ZipFile(io.BytesIO(out)) as z:
                    self.assertFalse(any(i.flag_bits & 1 for i in z.infolist()))  # no longer encrypted
                    texts = [z.read(n).decode("utf-8", "replace") for n in z.namelist()]
                self.assertTrue(any(MARKER in t for t in texts), texts)
        attempts = [a for a in self.ppap_records() if a["type"] == "ppap.attempt"]
        self.assertEqual([a["result"] for a in attempts], ["wrong", "ok", "wrong", "ok"])
        self.assertTrue(all(a["actor"] == "demo-staff" for a in attempts))
        self.assertEqual(len([a for a in self.ppap_records() if a["type"] == "ppap.delivered"]), 2)
        self.assert_password_nowhere()

    def test_pdf_with_a_user_password(self):
        self.start()
        session = self.sign_in_staff()
        file_id, item = self.upload_held("pdf", "請求書.pdf")
        self.assertIn("pdf.encrypted", [a.get("code") for a in item["report"]["actions"]])
        r, page = self.post_password(session, "/files/%s/password" % file_id, WRONG)
        self.assertEqual(r.status, 422, page)
        r, _ = self.post_password(session, "/files/%s/password" % file_id, PASSWORD)
        self.assertEqual(r.status, 303)
        item = self.status(file_id)
        self.assertEqual(item["status"], "done", item)
        self.assertIn("pdf.rasterized", [a.get("code") for a in item["report"]["actions"]])
        r, out = self.request(self.lgwan_port, "GET", "/api/v1/files/%s/content" % file_id)
        self.assertTrue(out.startswith(b"%PDF-"))
        self.assertNotIn(b"/Encrypt", out)
        # A Japanese password (AES-256: UTF-8).
        file_id, _ = self.upload_held("pdf-ja", "請求書-ja.pdf")
        r, _ = self.post_password(session, "/files/%s/password" % file_id, PASSWORD_JA)
        self.assertEqual(r.status, 303)
        self.assertEqual(self.status(file_id)["status"], "done")
        self.assert_password_nowhere()

    def test_attempts_are_limited_and_survive_a_restart(self):
        self.start(extra="[ppap]\nmax_attempts = 3\n")
        session = self.sign_in_staff()
        file_id, _ = self.upload_held("zipcrypto", "a.zip")
        target = "/files/%s/password" % file_id
        self.assertEqual(self.post_password(session, target, WRONG)[0].status, 422)
        self.assertEqual(self.post_password(session, target, WRONG)[0].status, 422)
        # A restart does not reset the count (meta.json keeps it).
        self.daemon.terminate()
        self.daemon.wait(30)
        self.log.close()
        self.start(extra="[ppap]\nmax_attempts = 3\n")
        session = self.sign_in_staff()
        r, page = self.post_password(session, target, WRONG)
        self.assertEqual(r.status, 423, page)
        # Locked: even the right password does not open it now.
        r, page = self.post_password(session, target, PASSWORD)
        self.assertEqual(r.status, 423, page)
        self.assertEqual(self.status(file_id)["status"], "blocked")
        types = [a["type"] for a in self.ppap_records()]
        self.assertEqual(types.count("ppap.attempt"), 3)
        self.assertEqual(types.count("ppap.locked"), 1)
        with open(self.path("dropbox", "items", file_id, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        self.assertEqual(meta["password_attempts"], 3)
        self.assertTrue(meta["password_locked"])
        self.assert_password_nowhere()

    def test_7z_with_encrypted_names_wrong_then_right_password(self):
        """p7zip opens it in a sandboxed worker (libarchive cannot)."""
        self.start()
        session = self.sign_in_staff()
        file_id, item = self.upload_held("7z", "資料.7z")
        self.assertIn("archive.encrypted", [a.get("code") for a in item["report"]["actions"]])
        r, page = self.post_password(session, "/files/%s/password" % file_id, WRONG)
        self.assertEqual(r.status, 422, page)
        r, _ = self.post_password(session, "/files/%s/password" % file_id, PASSWORD)
        self.assertEqual(r.status, 303)
        item = self.status(file_id)
        self.assertEqual(item["status"], "done", item)
        r, out = self.request(self.lgwan_port, "GET", "/api/v1/files/%s/content" % file_id)
        self.assertEqual(r.status, 200)
        with zipfile.ZipFile(io.BytesIO(out)) as z:
            self.assertIn("見積書.txt", z.namelist())
            self.assertIn(MARKER, z.read("見積書.txt").decode("utf-8"))
        self.assertEqual([a["result"] for a in self.ppap_records() if a["type"] == "ppap.attempt"], ["wrong", "ok"])
        self.assert_password_nowhere()

    def test_only_the_recipient_and_with_csrf(self):
        self.start()
        session = self.sign_in_staff()
        file_id, _ = self.upload_held("zipcrypto", "a.zip")
        target = "/files/%s/password" % file_id
        r, _ = self.request(self.lgwan_port, "GET", target, token=None)
        self.assertEqual(r.status, 303)  # not signed in: to the sign-in page
        r, _ = self.request(self.inet_port, "GET", target, token=None)
        self.assertEqual(r.status, 404)  # not a route of the Internet zone
        r, page = self.post_password(session, target, PASSWORD, csrf="forged")
        self.assertEqual(r.status, 403)
        self.assertEqual(self.status(file_id)["status"], "blocked")
        # Someone else's item: 404 (an upload to the department is also the staff's; use another account).
        r, data = self.upload([("b.zip", self.fixture("zipcrypto"), "application/zip")], fields=[("recipient", "")])
        other = json.loads(data)["id"]
        self.wait_final(other)
        r, _ = self.page(session, "/files/%s/password" % other)
        self.assertEqual(r.status, 404)


class MailPpapTests(PpapCase):
    def send_mail(self, attachment, name, ctype, more=()):
        """`more`: further (bytes, name, type) attachments."""
        msg = EmailMessage()
        msg["From"] = "sender@example.com"
        msg["To"] = "staff@city.example.lg.jp"
        msg["Subject"] = "見積書の送付"
        msg["Message-ID"] = "<ppap-%s@example.com>" % secrets.token_hex(4)
        msg.set_content("見積書を送ります。パスワードは別のメールで送ります。")
        for data, filename, content_type in [(attachment, name, ctype)] + list(more):
            maintype, subtype = content_type.split("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.sendmail("sender@example.com", ["staff@city.example.lg.jp"], msg.as_bytes())
        return msg["Message-ID"]

    def maildir(self):
        return sorted(glob.glob(self.path("maildir", "new", "*")))

    def first_notice(self):
        """The first mail's queue id and the text of its notice, which links to its page."""
        wait_for(lambda: len(self.maildir()) >= 1, 120, "the sanitized mail in the Maildir")
        queue_id = [a["queue_id"] for a in self.audit() if a.get("type") == "message"][0]
        with open(self.maildir()[0], "rb") as f:
            first = email.message_from_bytes(f.read(), policy=email.policy.default)
        notice = first.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("https://mukaika.lgwan.example/mail/" + queue_id, notice)
        return queue_id, notice

    def inbox(self, session):
        r, page = self.page(session, "/")
        self.assertEqual(r.status, 200)
        return page

    def test_held_zips_in_a_mail_are_sent_as_a_follow_up(self):
        """Two zips with different passwords: both typed in one attempt; the
        follow-up carries the re-sanitized mail as a mail (message/rfc822);
        the inbox lists the mail with its state."""
        self.start(lgwan_keys='public_url = "https://mukaika.lgwan.example/"\n')
        message_id = self.send_mail(self.fixture("aes"), "見積書.zip", "application/zip",
                                    more=[(self.fixture("zipcrypto", PASSWORD2), "請求書.zip", "application/zip")])
        queue_id, notice = self.first_notice()
        self.assertIn("パスワード入力", notice)

        session = self.sign_in_staff()
        # The inbox lists the mail as held, with its password page.
        inbox = self.inbox(session)
        self.assertIn('<tr data-queue-id="%s" data-state="held">' % queue_id, inbox)
        self.assertIn('href="/mail/%s/password"' % queue_id, inbox)
        # The notice's link leads to the mail's page, which leads on to the password.
        r, page = self.page(session, "/mail/%s" % queue_id)
        self.assertEqual(r.status, 200, page)
        self.assertIn('href="/mail/%s/password"' % queue_id, page)
        self.assertIn("見積書.zip", page)
        target = "/mail/%s/password" % queue_id
        r, page = self.page(session, target)
        self.assertEqual(r.status, 200, page)
        self.assertIn("請求書.zip", page)
        self.assertIn('id="ppap-add"', page)
        # One password opens one zip only: a wrong attempt, naming the other.
        r, page = self.post_password(session, target, PASSWORD)
        self.assertEqual(r.status, 422, page)
        self.assertIn("1 回目", page)
        self.assertIn("請求書.zip", page.split('id="ppap-error"')[1].split("</p>")[0])
        # "Add another password" without script: the page again, one more field, nothing tried.
        r, page = self.post_password(session, target, [], extra=[("fields", "1"), ("add", "1")])
        self.assertEqual(r.status, 200, page)
        self.assertIn('id="ppap-password-2"', page)
        self.assertNotIn('id="ppap-password-3"', page)
        # Both passwords in one attempt.
        r, page = self.post_password(session, target, [PASSWORD, PASSWORD2], extra=[("fields", "2")])
        self.assertEqual(r.status, 200, page)
        self.assertIn('id="ppap-delivered"', page)
        # Delivered once: the form is gone.
        self.assertNotIn('id="ppap-password"', page)
        r, inbox = self.page(session, "/")
        self.assertIn('<tr data-queue-id="%s" data-state="delivered">' % queue_id, inbox)
        r, page = self.page(session, "/mail/%s" % queue_id)
        self.assertIn('id="held-state" data-state="delivered"', page)
        self.assertNotIn('href="/mail/%s/password"' % queue_id, page)

        files = wait_for(lambda: len(self.maildir()) >= 2 and self.maildir(), 120, "the follow-up mail")
        with open(files[1] if files[0] == self.maildir()[0] else files[0], "rb") as f:
            follow = email.message_from_bytes(f.read(), policy=email.policy.default)
        self.assertIn(queue_id, str(follow["Subject"]))
        text = follow.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("開いたもの", text)
        self.assertIn("請求書.zip", text)
        # The sanitized mail arrives as a mail, not base64 (RFC 2046), which
        # mail programs open with its attachments one by one.
        emls = [p for p in follow.iter_attachments() if (p.get_filename() or "").endswith(".eml")]
        self.assertEqual(len(emls), 1)
        self.assertEqual(emls[0].get_content_type(), "message/rfc822")
        self.assertIn(emls[0]["Content-Transfer-Encoding"], ("7bit", "8bit"))
        inner = emls[0].get_content()
        self.assertEqual(inner["Message-ID"], message_id)
        opened = 0
        for part in inner.walk():
            data = part.get_payload(decode=True) or b""
            if data.startswith(b"PK"):
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    opened += any(MARKER in z.read(n).decode("utf-8", "replace") for n in z.namelist())
            elif MARKER.encode() in data:
                opened += 1
        self.assertEqual(opened, 2, "both held zips' members are in the follow-up")

        records = self.ppap_records()
        attempts = [a for a in records if a["type"] == "ppap.attempt"]
        self.assertEqual([(a["result"], a["passwords"]) for a in attempts], [("wrong", 1), ("ok", 2)])
        delivered = [a for a in records if a["type"] == "ppap.delivered"]
        self.assertEqual(len(delivered), 1)
        self.assertEqual(delivered[0]["to"], "staff@city.example.lg.jp")
        self.assertEqual(delivered[0]["recipient"], "staff@city.example.lg.jp")
        self.assertEqual(delivered[0]["message_id"], message_id)
        with open(self.path("dropbox", "ppap", queue_id + ".json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["recipients"]["staff@city.example.lg.jp"]["state"], "delivered")
        # The auditors' page and its CSV list every attempt (and never a password).
        auditor = self.sign_in_staff("demo-auditor")
        r, page = self.page(auditor, "/audit")
        self.assertEqual(r.status, 200)
        self.assertIn("ppap.attempt", page)
        self.assertIn("ppap.delivered", page)
        r, csv = self.page(auditor, "/audit.csv")
        rows = [line for line in csv.splitlines() if ",ppap." in line]
        self.assertEqual(len([x for x in rows if ",ppap.attempt," in x]), 2, rows)
        self.assertTrue(any(",wrong," in x for x in rows) and any(",ok," in x for x in rows), rows)
        self.assertTrue(all("demo-staff" in x and queue_id in x for x in rows), rows)
        self.assert_password_nowhere()

    def test_mail_attempts_are_limited_and_others_get_404(self):
        self.start(extra="[ppap]\nmax_attempts = 2\n")
        self.send_mail(self.fixture("zipcrypto"), "a.zip", "application/zip")
        wait_for(lambda: len(self.maildir()) >= 1, 120, "the sanitized mail")
        queue_id = [a["queue_id"] for a in self.audit() if a.get("type") == "message"][0]
        session = self.sign_in_staff()
        target = "/mail/%s/password" % queue_id
        self.assertEqual(self.post_password(session, target, WRONG)[0].status, 422)
        r, page = self.post_password(session, target, WRONG)
        self.assertEqual(r.status, 423, page)
        r, page = self.page(session, target)
        self.assertIn('id="ppap-locked"', page)
        self.assertEqual([a["type"] for a in self.ppap_records()].count("ppap.locked"), 1)
        # An unknown or unrelated mail is 404, as is a path in the id.
        self.assertEqual(self.page(session, "/mail/nonexistent/password")[0].status, 404)
        self.assertEqual(self.page(session, "/mail/..%2f..%2fetc/password")[0].status, 404)


    def test_disabled_offers_no_password_anywhere(self):
        """[ppap] enabled = false: no password link in the inbox or on the
        mail page, no promise of one in the notice, and the pages are 404."""
        self.start(extra="[ppap]\nenabled = false\n", lgwan_keys='public_url = "https://mukaika.lgwan.example/"\n')
        file_id, _ = self.upload_held("zipcrypto", "a.zip")
        self.send_mail(self.fixture("zipcrypto"), "b.zip", "application/zip")
        queue_id, notice = self.first_notice()
        self.assertNotIn("パスワード入力", notice)
        inbox = self.inbox(self.sign_in_staff())
        self.assertIn('data-id="%s"' % file_id, inbox)
        self.assertNotIn("/password", inbox)
        self.assertNotIn('id="held-mails"', inbox)
        session = self.sign_in_staff()
        r, page = self.page(session, "/mail/%s" % queue_id)
        self.assertEqual(r.status, 200)
        self.assertNotIn("/password", page)
        self.assertEqual(self.page(session, "/files/%s/password" % file_id)[0].status, 404)
        self.assertEqual(self.page(session, "/mail/%s/password" % queue_id)[0].status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
