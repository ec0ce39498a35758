#!/usr/bin/env python3
"""End-to-end tests of pdf.rasterize and image.reencode through the mukaika
command line (default policy, sandboxed workers, the bundled test virus
signatures), on the samples made by samples/files/make_pdf_image_samples.py.

    MUKAIKA_BIN=build/gateway/mukaika python3 sanitizers/pdf_rasterize/cli_e2e_test.py

Python standard library only; uses pdftotext (poppler-utils) to read the
text layer when it is installed and skips those checks otherwise.
"""

import base64
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ.get("MUKAIKA_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SAMPLES = os.environ.get("MUKAIKA_SAMPLES") or os.path.join(REPO, "samples")
FILES = os.path.join(SAMPLES, "files")
SIGNATURES = os.path.join(SAMPLES, "clamav")

ACTIVE = [b"JavaScript", b"/JS", b"OpenAction", b"/AA", b"Launch", b"/URI", b"/Annots", b"EmbeddedFile",
          b"/AcroForm", b"/Metadata", b"/Outlines", b"/Names", b"payload.exe", b"cmd.exe", b"evil.example"]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def page_count(pdf):
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def pdftotext(pdf_path):
    if not shutil.which("pdftotext"):
        return None
    proc = subprocess.run(["pdftotext", "-enc", "UTF-8", pdf_path, "-"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    return proc.stdout.decode("utf-8")


class CliCase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not BIN or not os.access(BIN, os.X_OK):
            raise unittest.SkipTest("MUKAIKA_BIN is not set")
        cls.tmp = tempfile.mkdtemp(prefix="mukaika-pdf-e2e-")
        cls.config = os.path.join(cls.tmp, "mukaika.toml")
        with open(cls.config, "w", encoding="utf-8") as f:
            f.write('[antivirus]\ndatabase = "%s"\n' % SIGNATURES)
        cls.runs = 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sanitize(self, inputs):
        type(self).runs += 1
        out = os.path.join(self.tmp, "out-%d" % type(self).runs)
        report = os.path.join(self.tmp, "report-%d.json" % type(self).runs)
        proc = subprocess.run([BIN, "sanitize", "--config", self.config, "--out", out, "--report", report, "--"] +
                              inputs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertGreaterEqual(proc.returncode, 0, proc.stderr.decode("utf-8", "replace"))
        with open(report, encoding="utf-8") as f:
            items = {it["input"]: it for it in json.load(f)["items"]}
        return proc.returncode, items

    def item(self, name, run_items):
        return run_items[os.path.join(FILES, name)]

    def codes(self, item):
        return [a["code"] for a in item["actions"]]

    def output(self, item):
        self.assertIsNotNone(item["output"], item)
        return read(item["output"])


class PdfTests(CliCase):

    def test_active_content_pdf_is_rasterized_with_its_pages_and_without_its_actions(self):
        src = read(os.path.join(FILES, "active-content.pdf"))
        for name in (b"JavaScript", b"OpenAction", b"Launch", b"/URI", b"EmbeddedFile"):
            self.assertIn(name, src)
        rc, items = self.sanitize([os.path.join(FILES, "active-content.pdf")])
        self.assertEqual(rc, 0)
        it = self.item("active-content.pdf", items)
        self.assertEqual(it["verdict"], "sanitized", it)
        self.assertIn("pdf.rasterized", self.codes(it))
        self.assertIn("pdf.active_removed", self.codes(it))
        out = self.output(it)
        self.assertTrue(out.startswith(b"%PDF-"))
        for name in ACTIVE:
            self.assertNotIn(name, out, name)
        self.assertEqual(page_count(out), 3)
        text = pdftotext(it["output"])
        if text is not None:
            for n in (1, 2, 3):
                self.assertIn("Page %d" % n, text)

    def test_password_protected_pdf_is_blocked(self):
        rc, items = self.sanitize([os.path.join(FILES, "password.pdf")])
        self.assertEqual(rc, 1)
        it = self.item("password.pdf", items)
        self.assertEqual(it["verdict"], "blocked")
        self.assertIn("pdf.encrypted", self.codes(it))
        self.assertIsNone(it["output"])

    def test_japanese_text_stays_searchable(self):
        names = ["japanese-cid.pdf", "japanese-vertical.pdf"]
        rc, items = self.sanitize([os.path.join(FILES, n) for n in names])
        self.assertEqual(rc, 0)
        for n in names:
            with self.subTest(file=n):
                it = self.item(n, items)
                self.assertEqual(it["verdict"], "sanitized", it)
                self.assertNotIn(b"Ryumin", self.output(it))
                text = pdftotext(it["output"])
                if text is None:
                    self.skipTest("pdftotext is not installed")
                self.assertIn("請求書の送付について", text)

    def test_pdf_attachment_in_mail_is_rasterized(self):
        pdf = read(os.path.join(FILES, "active-content.pdf"))
        png = read(os.path.join(FILES, "polyglot-zip.png"))
        mail = ("From: sender@example.jp\r\nTo: staff@example.lg.jp\r\nSubject: report\r\n"
                "Date: Mon, 1 Apr 2024 09:00:00 +0900\r\nMessage-ID: <pdf-e2e@example.jp>\r\nMIME-Version: 1.0\r\n"
                "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\nSee the attachments.\r\n--b\r\n"
                "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                ).encode("ascii") + base64.encodebytes(pdf).replace(b"\n", b"\r\n") + (
                "--b\r\nContent-Type: image/png; name=\"photo.png\"\r\n"
                "Content-Disposition: attachment; filename=\"photo.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                ).encode("ascii") + base64.encodebytes(png).replace(b"\n", b"\r\n") + b"--b--\r\n"
        path = os.path.join(self.tmp, "with-attachments.eml")
        with open(path, "wb") as f:
            f.write(mail)
        rc, items = self.sanitize([path])
        self.assertEqual(rc, 0)
        it = items[path]
        codes = {a["path"]: a["code"] for a in it["actions"] if a["action"] == "convert"}
        self.assertEqual(codes.get("with-attachments.eml/report.pdf"), "pdf.rasterized", it["actions"])
        self.assertEqual(codes.get("with-attachments.eml/photo.png"), "image.reencoded", it["actions"])
        msg = email.message_from_bytes(self.output(it), policy=email.policy.default)
        parts = {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()}
        self.assertEqual(sorted(parts), ["photo.png", "report.pdf"])
        ctype, rasterized = parts["report.pdf"]
        self.assertEqual(ctype, "application/pdf")
        self.assertEqual(page_count(rasterized), 3)
        for name in ACTIVE:
            self.assertNotIn(name, rasterized, name)
        ctype, photo = parts["photo.png"]
        self.assertEqual(ctype, "image/png")
        self.assertNotIn(b"PK\x03\x04", photo)


class ImageTests(CliCase):

    def test_png_with_zip_appended_loses_the_zip(self):
        src = read(os.path.join(FILES, "polyglot-zip.png"))
        self.assertIn(b"PK\x03\x04", src)
        rc, items = self.sanitize([os.path.join(FILES, "polyglot-zip.png")])
        self.assertEqual(rc, 0)
        it = self.item("polyglot-zip.png", items)
        self.assertEqual(it["verdict"], "sanitized")
        self.assertIn("image.reencoded", self.codes(it))
        self.assertIn("image.trailing_data", self.codes(it))
        out = self.output(it)
        self.assertTrue(out.startswith(b"\x89PNG\r\n\x1a\n"))
        self.assertNotIn(b"PK\x03\x04", out)
        self.assertNotIn(b"WScript", out)
        self.assertTrue(out.endswith(b"IEND\xaeB`\x82"))

    def test_svg_with_script_never_comes_out_as_svg(self):
        rc, items = self.sanitize([os.path.join(FILES, "script.svg")])
        self.assertEqual(rc, 0)
        it = self.item("script.svg", items)
        self.assertEqual(it["verdict"], "sanitized")
        self.assertIn("image.svg_rendered", self.codes(it))
        self.assertEqual(os.path.basename(it["output"]), "script.png")
        out = self.output(it)
        self.assertTrue(out.startswith(b"\x89PNG"))
        for s in (b"<svg", b"script", b"evil.example", b"passwd"):
            self.assertNotIn(s, out)

    def test_40000_by_40000_png_header_is_refused(self):
        rc, items = self.sanitize([os.path.join(FILES, "pixel-bomb.png")])
        self.assertEqual(rc, 1)
        it = self.item("pixel-bomb.png", items)
        self.assertEqual(it["verdict"], "blocked")
        self.assertIn("image.pixels", self.codes(it))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
