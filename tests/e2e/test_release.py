#!/usr/bin/env python3
"""End-to-end tests of the release of originals with approval (原本取り出し,
docs/release.md) against a real `mukaika serve` over HTTP and SMTP: a
recipient requests the original of an uploaded file or of a mail on the
LGWAN pages, an approver approves or rejects it, the requester downloads
it on the Internet-side page for a limited time; someone else's or an
expired one is refused; an infected original is never released;
release.deliver_to_lgwan puts the download on the LGWAN side and marks it
as a policy exception in the audit log.

Environment: MUKAIKA_BIN (the binary), MUKAIKA_SAMPLES (samples/).
"""
import email
import email.policy
import glob
import json
import os
import smtplib
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from test_dropbox import BIN, EICAR, SAMPLES, DropBoxCase  # noqa: E402
from test_serve import wait_for  # noqa: E402

MAIL = os.path.join(SAMPLES, "mail")

# The demo accounts, plus a second recipient and a recipient who is also an
# approver (passwords: the account names).
ACCOUNTS = """
[[accounts]]
name = "demo-uploader"
roles = ["uploader"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$VGPicalGimndP/8ULIGXeg$gklzgoNQtF512THs/r9gZgTSJcJWBt/mtJ6ZBKvnwKo"
[[accounts]]
name = "demo-staff"
roles = ["recipient"]
department = "情報政策課"
mail = ["staff@city.example.lg.jp"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$PuXOvfFX6oCTvGTeG1j7zA$/VYjApHWBW6ARvUpEFnGvLUonJSgH7Gbs/N6uzverPA"
[[accounts]]
name = "demo-auditor"
roles = ["auditor"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$wiLFPGHvaowF0B0pWx0z4A$Hx8lT5a3xfeRfZJLhycQmf1e6BWwIJ/Vc5XEvkRIL5w"
[[accounts]]
name = "demo-approver"
roles = ["approver"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$7axcy4udPaP82hUArqLcfQ$3hhswevH66sO88cMeCRF6mSputibpA/bDiXNutbgiX4"
[[accounts]]
name = "other-staff"
roles = ["recipient"]
mail = ["other@city.example.lg.jp"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$3d87/IcHPCfIzcYrbQKy2g$VS7nmNeMSjDpSunDoaZMEg1XXTaIDWTX0LAAhDCDb3E"
[[accounts]]
name = "kacho"
roles = ["recipient", "approver"]
mail = ["kacho@city.example.lg.jp"]
password_hash = "$argon2id$v=19$m=65536,t=2,p=1$m40INXFNppTzHFu4giNAgg$8evA8gMlhf4p/laD7YehrEqjXYI9Xbah9X5zhLgz2tk"
[[api_clients]]
name = "demo"
token_hash = "sha256:7c43ef5ae21d43ce2743f770c68e24def1a43ee2f416d2438410c8af7af2ff2c"
"""

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class ReleaseCase(DropBoxCase):
    def start_release(self, deliver_to_lgwan=False):
        self.start('[release]\ndir = "%s"\ndeliver_to_lgwan = %s\n%s'
                   % (self.path("releases"), "true" if deliver_to_lgwan else "false", ACCOUNTS))

    def inet_base(self):
        return "http://127.0.0.1:%d" % self.inet_port

    def sign_in(self, port, name, expect=303):
        r, page = self.request(port, "GET", "/signin", token=None)
        self.assertEqual(r.status, 200)
        pre = r.getheader("Set-Cookie").split(";")[0]
        csrf = page.decode().split('name="csrf" value="')[1].split('"')[0]
        form = urllib.parse.urlencode({"csrf": csrf, "name": name, "password": name})
        r, _ = self.request(port, "POST", "/signin", form, dict(FORM, Cookie=pre), token=None)
        self.assertEqual(r.status, expect, "sign-in of %s" % name)
        if expect != 303:
            return None
        cookie = [c.split(";")[0] for c in r.msg.get_all("Set-Cookie") if c.startswith("mk_session")][0]
        return {"cookie": cookie, "port": port, "home": r.getheader("Location")}

    def get(self, who, target):
        r, body = self.request(who["port"], "GET", target, headers={"Cookie": who["cookie"]}, token=None)
        return r, body

    def post(self, who, target, fields, csrf_from=None):
        _, page = self.get(who, csrf_from or who["home"])
        csrf = page.decode().split('<meta name="csrf" content="')[1].split('"')[0]
        form = urllib.parse.urlencode(dict(fields, csrf=csrf))
        return self.request(who["port"], "POST", target, form, dict(FORM, Cookie=who["cookie"]), token=None)

    def uploaded(self, name, data, recipient="demo-staff"):
        r, body = self.upload([(name, data, "application/octet-stream")], fields=[("recipient", recipient)])
        self.assertEqual(r.status, 202, body)
        item = self.wait_final(json.loads(body)["id"])
        return item

    def mailed(self, sample, rcpt="staff@city.example.lg.jp"):
        with open(os.path.join(MAIL, sample), "rb") as f:
            data = f.read()
        with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as s:
            s.sendmail("sender@example.com", [rcpt], data)
        rec = wait_for(lambda: next((a for a in self.audit() if a.get("type") == "message"
                                     and a.get("message_id", "") in data.decode("latin-1")
                                     and a.get("message_id")), None), 120, "the mail to be sanitized")
        return rec["queue_id"]

    def delivered(self, to):
        """Mails in the LGWAN Maildir for `to`: (subject, text of every text/plain part)."""
        out = []
        for f in glob.glob(self.path("maildir", "new", "*")):
            with open(f, "rb") as fh:
                m = email.message_from_binary_file(fh, policy=email.policy.default)
            if to not in str(m["To"]) and to not in str(m.get("Delivered-To", "")):
                continue
            text = "".join(p.get_content() for p in m.walk() if p.get_content_type() == "text/plain")
            out.append((str(m["Subject"]), text))
        return out

    def notices(self, to):
        """The gateway's own notices to `to` (their subjects say what was decided)."""
        return [n for n in self.delivered(to) if "原本の取り出し" in n[0]]

    def releases(self, type_):
        return [a for a in self.audit() if a.get("type") == type_]

    def request_id(self, subject):
        for f in glob.glob(self.path("releases", "*.json")):
            with open(f, encoding="utf-8") as fh:
                j = json.load(fh)
            if j["subject"] == subject:
                return j["id"]
        self.fail("no release request for " + subject)


class UploadReleaseTests(ReleaseCase):
    def test_request_approve_download_on_the_internet_side_then_expire(self):
        self.start_release()
        original = "原本のデータ\r\n".encode("utf-8") + bytes(range(256))
        item = self.uploaded("原本.bin", original)
        self.assertIn(item["status"], ("done", "blocked"), item)

        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, page = self.get(staff, "/")
        self.assertEqual(r.status, 200)
        self.assertIn('action="/files/%s/release"' % item["id"], page.decode())
        # Without CSRF: refused, nothing recorded.
        r, _ = self.request(self.lgwan_port, "POST", "/files/%s/release" % item["id"],
                            urllib.parse.urlencode({"reason": "x"}), dict(FORM, Cookie=staff["cookie"]), token=None)
        self.assertEqual(r.status, 403)
        self.assertEqual(self.releases("release.requested"), [])
        # Someone else's item answers as if it did not exist.
        other = self.sign_in(self.lgwan_port, "other-staff")
        r, _ = self.post(other, "/files/%s/release" % item["id"], {"reason": "見たい"})
        self.assertEqual(r.status, 404)
        # The Internet side has no request route.
        r, _ = self.request(self.inet_port, "POST", "/files/%s/release" % item["id"], "", FORM, token=None)
        self.assertEqual(r.status, 404)
        # Nor any other page of the LGWAN side's release flow, signed in or not.
        inet_staff = self.sign_in(self.inet_port, "demo-staff")
        for target in ("/approvals", "/requests", "/mail/x"):
            r, _ = self.get(inet_staff, target)
            self.assertEqual(r.status, 404, target)

        r, _ = self.post(staff, "/files/%s/release" % item["id"], {"reason": "取引先との照合に原本が必要"})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/?release=pending")
        rid = self.request_id("file:" + item["id"])
        self.assertEqual(self.releases("release.requested")[-1]["id"], rid)
        r, page = self.get(staff, "/")
        self.assertIn("承認待ち", page.decode())

        # An auditor neither decides nor sees the mail pages; the approver does.
        auditor = self.sign_in(self.lgwan_port, "demo-auditor")
        r, _ = self.post(auditor, "/approvals/" + rid, {"decision": "approve"}, csrf_from="/audit")
        self.assertEqual(r.status, 403)
        approver = self.sign_in(self.lgwan_port, "demo-approver")
        self.assertEqual(approver["home"], "/approvals")
        r, page = self.get(approver, "/approvals")
        self.assertEqual(r.status, 200)
        self.assertIn('data-id="%s"' % rid, page.decode())
        self.assertIn("取引先との照合に原本が必要", page.decode())
        r, _ = self.post(approver, "/approvals/" + rid, {"decision": "approve", "comment": "業務上必要と認める"})
        self.assertEqual(r.status, 303)
        approved = self.releases("release.approved")[-1]
        self.assertEqual((approved["id"], approved["by"], approved["policy_exception"]), (rid, "demo-approver", False))
        r, _ = self.post(approver, "/approvals/" + rid, {"decision": "reject"})
        self.assertEqual(r.status, 409)  # decided once
        # The requester is told by mail (spooled, relayed to the LGWAN side), with where and until when.
        notice = wait_for(lambda: next((n for n in self.notices("staff@city.example.lg.jp")
                                        if "承認されました" in n[0]), None), 60, "the approval notice")
        self.assertIn(self.inet_base() + "/originals", notice[1])
        self.assertIn("業務上必要と認める", notice[1])
        self.assertIn("approved", notice[1])

        # Not on the LGWAN side (policy: Internet side).
        r, _ = self.get(staff, "/originals")
        self.assertEqual(r.status, 404)
        r, _ = self.get(staff, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 404)
        # The requester on the Internet side: listed and downloadable, as an attachment.
        inet = self.sign_in(self.inet_port, "demo-staff")
        self.assertEqual(inet["home"], "/originals")
        r, page = self.get(inet, "/originals")
        self.assertEqual(r.status, 200)
        self.assertIn("/originals/%s/content" % rid, page.decode())
        self.assertNotIn("取引先との照合", page.decode())  # the LGWAN request's text stays there
        # HEAD would be an unsent download: refused, not counted.
        r, _ = self.request(self.inet_port, "HEAD", "/originals/%s/content" % rid, headers={"Cookie": inet["cookie"]},
                            token=None)
        self.assertEqual(r.status, 405)
        r, data = self.get(inet, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 200)
        self.assertEqual(data, original)
        self.assertEqual(r.getheader("Content-Type"), "application/octet-stream")
        self.assertTrue(r.getheader("Content-Disposition").startswith("attachment"))
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        downloaded = self.releases("release.downloaded")
        self.assertEqual(len(downloaded), 1)
        self.assertEqual(downloaded[0]["by"], "demo-staff")
        # Someone else gets nothing; nor does the uploader.
        other_inet = self.sign_in(self.inet_port, "other-staff")
        r, _ = self.get(other_inet, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 404)
        uploader = self.sign_in(self.inet_port, "demo-uploader")
        r, _ = self.get(uploader, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 404)
        self.assertEqual(len(self.releases("release.downloaded")), 1)

        # The download time passes (the record's expiry moved into the past): 410 and audited.
        path = self.path("releases", rid + ".json")
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        j["expires_ms"] = int(time.time() * 1000) - 1000
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f)
        r, _ = self.get(inet, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 410)
        self.assertEqual(self.releases("release.expired")[-1]["id"], rid)

        # The auditor finds every step on the audit page and in the CSV.
        r, page = self.get(auditor, "/audit")
        text = page.decode()
        for t in ("release.requested", "release.approved", "release.downloaded", "release.expired"):
            self.assertIn(t, text)
        r, csv = self.get(auditor, "/audit.csv")
        self.assertEqual(r.status, 200)
        self.assertIn(("release.approved,%s,demo-approver,demo-staff" % rid).encode(), csv)

    def test_an_approver_cannot_approve_their_own_request(self):
        self.start_release()
        item = self.uploaded("own.txt", b"own\r\n", recipient="kacho")
        kacho = self.sign_in(self.lgwan_port, "kacho")
        r, _ = self.post(kacho, "/files/%s/release" % item["id"], {"reason": "自分で使う"})
        self.assertEqual(r.status, 303)
        rid = self.request_id("file:" + item["id"])
        r, page = self.get(kacho, "/approvals")
        self.assertIn("ご自身の申請は決裁できません", page.decode())
        r, _ = self.post(kacho, "/approvals/" + rid, {"decision": "approve"})
        self.assertEqual(r.status, 403)
        self.assertEqual(self.releases("release.approved"), [])

    def test_an_infected_upload_is_refused_at_once(self):
        self.start_release()
        item = self.uploaded("eicar.com", EICAR)
        self.assertEqual(item["status"], "blocked", item)
        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, _ = self.post(staff, "/files/%s/release" % item["id"], {"reason": "どうしても"})
        self.assertEqual(r.status, 303)
        self.assertEqual(r.getheader("Location"), "/?release=refused")
        refused = self.releases("release.refused")
        self.assertEqual(len(refused), 1)
        self.assertEqual(refused[0]["subject"], "file:" + item["id"])
        approver = self.sign_in(self.lgwan_port, "demo-approver")
        r, page = self.get(approver, "/approvals")
        self.assertNotIn(refused[0]["id"], page.decode().split('id="decided"')[0])  # not pending
        r, _ = self.post(approver, "/approvals/" + refused[0]["id"], {"decision": "approve"})
        self.assertEqual(r.status, 409)
        self.assertEqual(self.releases("release.approved"), [])


class MailReleaseTests(ReleaseCase):
    def test_mail_page_request_and_rejection(self):
        self.start_release()
        qid = self.mailed("html-only.eml")
        # The sanitized mail's notice links to this page.
        link = "http://127.0.0.1:%d/mail/%s" % (self.lgwan_port, qid)
        wait_for(lambda: any(link in text for _, text in self.delivered("staff@city.example.lg.jp")), 60,
                 "the sanitized mail with the link to its page")
        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, page = self.get(staff, "/mail/" + qid)
        self.assertEqual(r.status, 200)
        text = page.decode()
        self.assertIn("sender@example.com", text)
        self.assertIn("【情報政策課】システム停", text)  # the Subject, decoded by the worker
        self.assertIn('action="/mail/%s/release"' % qid, text)
        # Not this account's mail, not an auditor's page: 404.
        for name in ("other-staff", "demo-auditor"):
            who = self.sign_in(self.lgwan_port, name)
            r, _ = self.get(who, "/mail/" + qid)
            self.assertEqual(r.status, 404, name)
        r, _ = self.request(self.inet_port, "GET", "/mail/" + qid, token=None)
        self.assertEqual(r.status, 404)

        r, _ = self.post(staff, "/mail/%s/release" % qid, {"reason": "添付の原本確認"})
        self.assertEqual(r.status, 303)
        rid = self.request_id("mail:" + qid)
        approver = self.sign_in(self.lgwan_port, "demo-approver")
        r, page = self.get(approver, "/mail/" + qid)
        self.assertEqual(r.status, 200)  # approvers read the report
        r, page = self.get(approver, "/approvals")
        self.assertIn("【情報政策課】システム停", page.decode())  # the request is named by the Subject
        r, _ = self.post(approver, "/approvals/" + rid, {"decision": "reject", "comment": "差出人に再送を依頼してください"})
        self.assertEqual(r.status, 303)
        self.assertEqual(self.releases("release.rejected")[-1]["detail"], "差出人に再送を依頼してください")
        notice = wait_for(lambda: next((n for n in self.notices("staff@city.example.lg.jp")
                                        if "却下されました" in n[0]), None), 60, "the rejection notice")
        self.assertIn("差出人に再送を依頼してください", notice[1])
        r, page = self.get(staff, "/requests")
        self.assertIn("却下", page.decode())
        self.assertIn("差出人に再送を依頼してください", page.decode())
        inet = self.sign_in(self.inet_port, "demo-staff")
        r, _ = self.get(inet, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 404)

    def test_mail_original_approved_is_the_kept_original(self):
        self.start_release()
        qid = self.mailed("utf8-plain.eml")
        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, _ = self.post(staff, "/mail/%s/release" % qid, {"reason": "原本確認"})
        rid = self.request_id("mail:" + qid)
        approver = self.sign_in(self.lgwan_port, "demo-approver")
        r, _ = self.post(approver, "/approvals/" + rid, {"decision": "approve"})
        self.assertEqual(r.status, 303)
        inet = self.sign_in(self.inet_port, "demo-staff")
        r, data = self.get(inet, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 200)
        kept = glob.glob(self.path("quarantine", "*", qid + ".eml"))
        with open(kept[0], "rb") as f:
            self.assertEqual(data, f.read())
        self.assertIn(qid + ".eml", r.getheader("Content-Disposition"))

    def test_an_infected_mail_is_never_released(self):
        self.start_release()
        qid = self.mailed("eicar-attachment.eml")
        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, page = self.get(staff, "/mail/" + qid)
        self.assertEqual(r.status, 200)
        self.assertIn("ウイルス", page.decode())
        r, _ = self.post(staff, "/mail/%s/release" % qid, {"reason": "確認したい"})
        self.assertEqual(r.getheader("Location"), "/mail/%s?release=refused" % qid)
        self.assertEqual(len(self.releases("release.refused")), 1)
        self.assertEqual(self.releases("release.requested"), [])


class LgwanDeliveryTests(ReleaseCase):
    def test_deliver_to_lgwan_is_a_policy_exception(self):
        self.start_release(deliver_to_lgwan=True)
        item = self.uploaded("data.bin", b"\x00original bytes\xff")
        staff = self.sign_in(self.lgwan_port, "demo-staff")
        r, _ = self.post(staff, "/files/%s/release" % item["id"], {"reason": "LGWAN 側で必要"})
        rid = self.request_id("file:" + item["id"])
        approver = self.sign_in(self.lgwan_port, "demo-approver")
        r, _ = self.post(approver, "/approvals/" + rid, {"decision": "approve"})
        self.assertEqual(r.status, 303)
        self.assertTrue(self.releases("release.approved")[-1]["policy_exception"])
        # Not on the Internet side now: recipients do not even sign in there.
        self.sign_in(self.inet_port, "demo-staff", expect=403)
        r, _ = self.request(self.inet_port, "GET", "/originals/%s/content" % rid, token=None)
        self.assertEqual(r.status, 404)
        r, page = self.get(staff, "/originals")
        self.assertEqual(r.status, 200)
        r, data = self.get(staff, "/originals/%s/content" % rid)
        self.assertEqual(r.status, 200)
        self.assertEqual(data, b"\x00original bytes\xff")
        downloaded = self.releases("release.downloaded")[-1]
        self.assertTrue(downloaded["policy_exception"])
        self.assertEqual(downloaded["detail"], "lgwan")


if __name__ == "__main__":
    if not BIN:
        print("MUKAIKA_BIN is not set", file=sys.stderr)
        sys.exit(2)
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
