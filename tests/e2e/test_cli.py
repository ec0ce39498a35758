#!/usr/bin/env python3
"""End-to-end tests of the `mukaika` command line (sanitize, check-config).

Run by ctest (see CMakeLists.txt here), or by hand:

    MUKAIKA_BIN=build/gateway/mukaika python3 tests/e2e/test_cli.py [TestClass ...]

Environment:
    MUKAIKA_BIN                path of the mukaika binary (required)
    MUKAIKA_SAMPLES            the repository's samples/ folder (default: ../../samples from here)
    MUKAIKA_CLAMAV_TESTFILES   ClamAV's test files (default /usr/share/clamav-testfiles)
    MUKAIKA_CORPUS             hostile sample corpus (default: ../shared/corpus next to the repository)
    MUKAIKA_E2E_KEEP=1         keep the temporary output folders (their paths are printed)

Python 3 standard library only. The expected values for the sample mails live
next to the samples, in samples/mail/make_samples.py, which is imported here.
Tests that need ClamAV's test files or the corpus skip when those are missing.
"""

import base64
import email
import email.policy
import hashlib
import io
import json
import zipfile
import os
import re
import shutil
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
FILES_DIR = os.path.join(SAMPLES, "files")
SIGNATURES = os.path.join(SAMPLES, "clamav")
CLAMAV_TESTFILES = os.environ.get("MUKAIKA_CLAMAV_TESTFILES", "/usr/share/clamav-testfiles")
CORPUS = os.environ.get("MUKAIKA_CORPUS") or os.path.normpath(os.path.join(REPO, "..", "shared", "corpus"))
KEEP = os.environ.get("MUKAIKA_E2E_KEEP") == "1"

sys.dont_write_bytecode = True  # no __pycache__ in samples/mail
sys.path.insert(0, MAIL_DIR)
import make_samples as S  # noqa: E402  (expected values and payload builders)

EICAR = S.EICAR
TINY_PE = S.TINY_PE  # trips ClamAV's Heuristics.Broken.Executable
MINIMAL_PE = S.MINIMAL_PE  # a well-formed PE nothing flags

ALLOWED_ACTIONS = {"keep", "convert", "remove", "block", "note"}
VERDICTS = {"clean", "sanitized", "blocked"}
# Headers a rebuilt mail may carry; everything else must have been dropped.
ALLOWED_HEADERS = {
    "from", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
    "x-mukaika-sanitized", "x-mukaika-original-sha256", "mime-version", "content-type",
    "content-transfer-encoding",
}
DROPPED_HEADERS = ["Received", "X-Mailer", "X-Originating-IP", "Return-Path", "DKIM-Signature", "List-Unsubscribe"]
ENCODED_WORD_RE = re.compile(rb"=\?([^?\s]+)\?[bBqQ]\?[^?\s]*\?=")
SUMMARY_RE = re.compile(r"^mukaika; (sanitized|clean); converted=(\d+); removed=(\d+); blocked=(\d+)$")
NOTICE_JA = "【無害化通知】"
NOTICE_EN = "[Sanitizing notice]"
SEPARATOR = "-" * 64
NESTED_MARK_JA = "---------- 添付されていたメール ----------"
# Characters that must never reach a file name: path separators, controls,
# bidi and zero-width characters.
BAD_NAME_CHARS = set("/\\\r\n\t\x00") | {chr(c) for c in range(0x20)} | {chr(0x7F)} | set(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\u061c")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------
# Running mukaika
# ---------------------------------------------------------------------------


class Run:
    """One `mukaika sanitize` invocation and what it left behind."""

    def __init__(self, proc, out_dir, report_path, inputs):
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.out_dir = out_dir
        self.inputs = inputs
        self.report = None
        if report_path and os.path.exists(report_path):
            with open(report_path, "rb") as f:
                self.report = json.loads(f.read().decode("utf-8"))

    def describe(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.stdout, self.stderr)

    def items(self):
        return self.report["items"] if self.report else []

    def item(self, input_path):
        for it in self.items():
            if it["input"] == input_path:
                return it
        raise AssertionError("no report item for %s in %s" % (input_path, [i["input"] for i in self.items()]))

    def output_files(self):
        if not os.path.isdir(self.out_dir):
            return []
        return sorted(os.listdir(self.out_dir))


def run_bin(args, timeout=120):
    if not BIN:
        raise unittest.SkipTest("MUKAIKA_BIN is not set")
    return subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


class MukaikaCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mukaika-e2e-")
        self.config = self.write_config('[antivirus]\ndatabase = "%s"\n' % SIGNATURES.replace("\\", "\\\\"))

    def tearDown(self):
        if KEEP:
            print("\n[kept %s]" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def write_config(self, text, name="mukaika.toml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def write(self, name, data):
        path = os.path.join(self.tmp, "in", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def sanitize(self, inputs, config="default-test", out=None, extra=(), report=True, timeout=120):
        """Runs sanitize with the bundled test signatures (deterministic virus
        names whatever /var/lib/clamav holds) unless config is given."""
        self.runs = getattr(self, "runs", 0) + 1
        out = out or os.path.join(self.tmp, "out-%d" % self.runs)
        report_path = os.path.join(self.tmp, "report-%d.json" % self.runs) if report else None
        args = ["sanitize"]
        if config == "default-test":
            config = self.config
        if config:
            args += ["--config", config]
        args += ["--out", out]
        if report_path:
            args += ["--report", report_path]
        args += list(extra)
        args += ["--"] + list(inputs)
        proc = run_bin(args, timeout=timeout)
        run = Run(proc, out, report_path, inputs)
        self.assertGreaterEqual(run.rc, 0, "mukaika died from a signal\n" + run.describe())
        return run

    # ---- checks shared by many tests ----

    def check_report_item(self, run, item, input_path):
        """The report item's shape, hashes and paths."""
        data = read(input_path)
        self.assertIn(item["verdict"], VERDICTS, item)
        self.assertEqual(item["sha256_in"], sha256(data))
        self.assertIsInstance(item["detected_type"], str)
        self.assertIsInstance(item["kind"], str)
        for a in item["actions"]:
            self.assertTrue(a["code"], a)
            self.assertTrue(a["reason"], a)
        if item["verdict"] == "blocked":
            self.assertIsNone(item["output"], item)
            self.assertIsNone(item["sha256_out"], item)
        else:
            self.assertIsNotNone(item["output"], item)
            self.assertTrue(os.path.isfile(item["output"]), item["output"])
            self.assertEqual(os.path.dirname(os.path.abspath(item["output"])), os.path.abspath(run.out_dir))
            self.assertEqual(item["sha256_out"], sha256(read(item["output"])))

    def check_report_conventions(self, item, input_path):
        """action is one of keep|convert|remove|block|note; every path is the
        input's name or starts with "<input name>/"."""
        base = os.path.basename(input_path)
        for a in item["actions"]:
            self.assertIn(a["action"], ALLOWED_ACTIONS, "action outside the documented set: %r" % a)
            self.assertTrue(a["path"] == base or a["path"].startswith(base + "/"),
                            "action path %r does not start with the input name %r: %r" % (a["path"], base, a))

    def codes(self, item, action=None):
        return [a["code"] for a in item["actions"] if action is None or a["action"] == action]

    def action_at(self, item, path):
        found = [a for a in item["actions"] if a["path"] == path]
        self.assertTrue(found, "no action at %r; paths: %r" % (path, [a["path"] for a in item["actions"]]))
        return found[-1]

    def output_mail(self, item, input_path):
        """Parses the output mail and checks what every rebuilt mail must be."""
        raw = read(item["output"])
        return OutputMail(self, raw, read(input_path))


class OutputMail:
    """A rebuilt mail, parsed with the email package, with the invariants
    every output mail must satisfy checked on construction."""

    def __init__(self, case, raw, original):
        self.raw = raw
        t = case
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)
        t.assertFalse(self.msg.defects, "the output mail has defects: %r" % self.msg.defects)
        # CRLF line ends throughout.
        t.assertNotIn(b"\n", raw.replace(b"\r\n", b""), "bare LF in the output mail")
        t.assertNotIn(b"\r", raw.replace(b"\r\n", b""), "bare CR in the output mail")
        # Header block: ASCII only, UTF-8 encoded words only, known headers only.
        head = raw.split(b"\r\n\r\n", 1)[0]
        t.assertTrue(all(c < 0x80 for c in head), "8-bit bytes in the output headers")
        for cs in ENCODED_WORD_RE.findall(head):
            t.assertEqual(cs.lower(), b"utf-8", "encoded word in %r, not UTF-8" % cs)
        names = [k.lower() for k in self.msg.keys()]
        for n in names:
            t.assertIn(n, ALLOWED_HEADERS, "header %r should have been dropped" % n)
        for h in DROPPED_HEADERS:
            t.assertIsNone(self.msg[h], "%s survived" % h)
        # Summary and hash headers.
        t.assertEqual(names.count("x-mukaika-sanitized"), 1)
        m = SUMMARY_RE.match(str(self.msg["X-Mukaika-Sanitized"]))
        t.assertIsNotNone(m, "X-Mukaika-Sanitized: %r" % self.msg["X-Mukaika-Sanitized"])
        self.state = m.group(1)
        self.converted, self.removed, self.blocked = (int(m.group(i)) for i in (2, 3, 4))
        t.assertEqual(str(self.msg["X-Mukaika-Original-SHA256"]), sha256(original))
        for h in ("Subject", "From", "To", "Cc", "Reply-To"):
            try:
                value = self.msg[h]
            except Exception as e:  # the email package could not parse it
                raw_value = re.search(rb"(?im)^%s:(.*(?:\r\n[ \t].*)*)" % h.encode(), head)
                t.fail("the output's %s header does not parse (%s: %s): %r"
                       % (h, type(e).__name__, e, raw_value.group(0) if raw_value else None))
            if value is not None:
                t.assertNotIn("\ufffd", str(value), "U+FFFD in %s" % h)
                t.assertNotIn("\x1b", str(value), "raw ESC in %s" % h)
        # Structure: one text/plain body, then attachments in a multipart/mixed.
        if self.msg.is_multipart():
            t.assertEqual(self.msg.get_content_type(), "multipart/mixed")
            parts = list(self.msg.iter_parts())
            self.body_part, self.attachment_parts = parts[0], parts[1:]
        else:
            self.body_part, self.attachment_parts = self.msg, []
        t.assertEqual(self.body_part.get_content_type(), "text/plain")
        t.assertIsNone(self.body_part.get_filename())
        self.body = self.body_part.get_content()
        if any(ord(c) > 0x7F for c in self.body):
            t.assertEqual(self.body_part.get_content_charset(), "utf-8")
        t.assertNotIn("\ufffd", self.body, "U+FFFD in the body")
        self.lines = [l.rstrip() for l in self.body.splitlines()]
        self.attachments = []
        self.rfc822_encodings = []
        self._as_octets = None
        for p in self.attachment_parts:
            name = p.get_filename()
            t.assertIsNotNone(name, "attachment without a name: %r" % p)
            t.assertEqual(p.get_content_disposition(), "attachment")
            bad = [c for c in name if c in BAD_NAME_CHARS]
            t.assertFalse(bad, "unsafe characters %r in attachment name %r" % (bad, name))
            t.assertNotIn("\ufffd", name)
            if p.get_content_type() == "message/rfc822":
                # A mail attached as a file comes back rebuilt. RFC 2046 5.2.1
                # allows message/rfc822 no encoding but 7bit, 8bit, binary;
                # the encoding is recorded here and asserted by
                # assert_rfc822_attachments_readable(), so that the other
                # checks still run.
                cte = (p.get("Content-Transfer-Encoding") or "7bit").lower()
                self.rfc822_encodings.append((name, cte))
                if cte in ("7bit", "8bit", "binary"):
                    # Re-serialised by the email package: ask for CRLF, as
                    # the outer mail's raw bytes (checked above) have.
                    inner = p.get_payload(0).as_bytes(policy=p.policy.clone(linesep="\r\n", max_line_length=None))
                else:
                    inner = self.undecoded_attachment(len(self.attachments))
                self.attachments.append((name, inner, p))
                continue
            t.assertFalse(p.is_multipart(), "nested multipart in the output")
            self.attachments.append((name, p.get_payload(decode=True), p))
        self.names = [n for n, _, _ in self.attachments]
        # The notice: present exactly when something changed, one line per change.
        self.notice = self.notice_lines()
        if self.state == "clean":
            t.assertEqual((self.converted, self.removed, self.blocked), (0, 0, 0))
            t.assertFalse(self.body.startswith(NOTICE_JA) or self.body.startswith(NOTICE_EN),
                          "notice in a clean mail")
        else:
            t.assertTrue(self.body.startswith(NOTICE_JA) or self.body.startswith(NOTICE_EN),
                         "no notice at the top of a sanitized mail:\n" + self.body[:300])
            t.assertEqual(len(self.notice), self.converted + self.removed + self.blocked,
                          "notice lines %r vs %r" % (self.notice, self.msg["X-Mukaika-Sanitized"]))

    def undecoded_attachment(self, index):
        """The bytes of attachment `index` decoded by its transfer encoding,
        whatever its content type says."""
        if self._as_octets is None:
            raw = re.sub(rb"(?i)content-type: message/rfc822", b"Content-Type: application/octet-stream", self.raw)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self._as_octets = list(msg.iter_parts())[1:]
        return self._as_octets[index].get_payload(decode=True)

    def assert_rfc822_attachments_readable(self, t):
        for name, cte in self.rfc822_encodings:
            t.assertIn(cte, ("7bit", "8bit", "binary"), "attachment %r: message/rfc822 with Content-Transfer-Encoding "
                       "%s, which RFC 2046 5.2.1 forbids; mail readers cannot open it" % (name, cte))

    def notice_lines(self):
        if not (self.body.startswith(NOTICE_JA) or self.body.startswith(NOTICE_EN)):
            return []
        out = []
        for line in self.lines[1:]:
            if line == SEPARATOR:
                break
            if line.startswith("・"):
                out.append(line[1:])
        return out

    def text_after_notice(self):
        if SEPARATOR in self.lines:
            return self.lines[self.lines.index(SEPARATOR) + 1:]
        return self.lines

    def attachment(self, name):
        for n, data, part in self.attachments:
            if n == name:
                return data, part
        raise AssertionError("no attachment %r; have %r" % (name, self.names))


# What issue 4 says must be gone from a disarmed document: macro projects,
# ActiveX, OLE objects and packages, external relationships, attached
# templates, custom UI, XLM macro sheets, DDE, RTF objects.
OFFICE_FORBIDDEN_NAMES = re.compile(r"vbaProject|vbaData|activeX|oleObject|embeddings/|customUI|macrosheet|"
                                    r"externalLink|attachedTemplate|^Basic/|^Scripts/|^Object ", re.I)
OFFICE_FORBIDDEN_TEXT = [b'TargetMode="External"', b"attachedTemplate", b"ddeLink", b"DDEAUTO", b"xm:macrosheet",
                         b"script:event-listener", b"office:event-listeners"]


def assert_no_active_office_content(t, label, output, data):
    """A delivered Office, OpenDocument or RTF output carries none of the
    active content the corpus is full of."""
    if output.lower().endswith(".rtf"):
        # "\\objdata" is the text "\objdata" (an escaped backslash); only
        # an odd run of backslashes makes a control word.
        for m in re.finditer(rb"(\\+)(objdata|object|objclass|bin)(?![a-z])", data):
            t.assertEqual(len(m.group(1)) % 2, 0, "%s: control word %r survived in %s" % (label, m.group(0), output))
        return
    t.assertTrue(output.lower().endswith((".docx", ".xlsx", ".pptx", ".dotx", ".xltx", ".potx", ".ppsx",
                                          ".odt", ".ods", ".odp", ".odg", ".ott", ".ots", ".otp")),
                 "%s: macro-enabled or odd extension on output %s" % (label, output))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            t.assertFalse(OFFICE_FORBIDDEN_NAMES.search(info.filename), "%s: part %s survived" % (label, info.filename))
            body = z.read(info)
            for marker in OFFICE_FORBIDDEN_TEXT:
                t.assertNotIn(marker, body, "%s: %r survived in %s" % (label, marker, info.filename))
            if info.filename.endswith(".xml") and b"instrText" in body:
                t.assertNotRegex(body, rb"instrText[^>]*>\s*(DDE|DDEAUTO|INCLUDETEXT|INCLUDEPICTURE)\b",
                                 "%s: a field that reaches outside survived in %s" % (label, info.filename))


PDF_FORBIDDEN_NAMES = re.compile(rb"/(JavaScript|JS|OpenAction|AA|Launch|URI|GoToR|GoToE|SubmitForm|ImportData|"
                                 rb"EmbeddedFile|EmbeddedFiles|RichMedia|XFA|AcroForm|Annots|Outlines|Metadata)\b")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_inert_pdf(t, label, data):
    """A delivered PDF is pages of pixels (and invisible text): none of the
    names that make a PDF act appear outside its content streams."""
    t.assertTrue(data.startswith(b"%PDF-"), "%s: not a PDF" % label)
    outside_streams = re.sub(rb"stream\r?\n.*?endstream", b"", data, flags=re.S)
    m = PDF_FORBIDDEN_NAMES.search(outside_streams)
    t.assertIsNone(m, "%s: %r survived" % (label, m and m.group(0)))


def assert_inert_image(t, label, data):
    """A delivered image is a PNG or JPEG written from pixels: no metadata,
    nothing after its end."""
    if data.startswith(PNG_SIGNATURE):
        pos, chunks = 8, []
        while pos + 8 <= len(data):
            n = int.from_bytes(data[pos:pos + 4], "big")
            kind = data[pos + 4:pos + 8]
            chunks.append(kind)
            pos += 12 + n
            if kind == b"IEND":
                break
        t.assertEqual(chunks[-1:], [b"IEND"], "%s: PNG without an end" % label)
        t.assertEqual(pos, len(data), "%s: bytes after the PNG's end" % label)
        for kind in chunks:
            t.assertNotIn(kind, (b"tEXt", b"zTXt", b"iTXt", b"eXIf"), "%s: PNG chunk %r kept" % (label, kind))
    elif data.startswith(b"\xff\xd8\xff"):
        t.assertTrue(data.endswith(b"\xff\xd9"), "%s: bytes after the JPEG's end" % label)
        # Segments before the scan: tables and frame only (APP0 JFIF at most);
        # APP1..APP15 (EXIF, XMP, ICC, ...) and COM carry what is not pixels.
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xDA:
                break
            t.assertIn(marker, (0xE0, 0xDB, 0xC0, 0xC1, 0xC2, 0xC4, 0xDD),
                       "%s: JPEG segment 0x%02X kept" % (label, marker))
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        t.assertEqual(data[pos:pos + 2], b"\xff\xda", "%s: JPEG without a scan" % label)
    else:
        t.fail("%s: image delivered as neither PNG nor JPEG: %r" % (label, data[:8]))


def assert_inert_file(t, label, name, data, depth=0):
    """What mukaika delivers is text, a rebuilt document, pixels, or a zip of
    those; checked by what the bytes are, whatever the name says."""
    lower = name.lower()
    if data.startswith(b"%PDF-"):
        assert_inert_pdf(t, label, data)
    elif data.startswith(PNG_SIGNATURE) or data.startswith(b"\xff\xd8\xff"):
        t.assertTrue(lower.endswith((".png", ".jpg", ".jpeg")), "%s: image named %s" % (label, name))
        assert_inert_image(t, label, data)
    elif data.startswith(b"PK\x03\x04") and lower.endswith(".zip"):
        t.assertLess(depth, 8, "%s: zips nested too deep" % label)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                t.assertEqual(info.flag_bits & 1, 0, "%s: encrypted member %s" % (label, info.filename))
                t.assertFalse(info.filename.startswith("/") or ".." in info.filename.split("/"),
                              "%s: unsafe member name %r" % (label, info.filename))
                if not info.is_dir():
                    assert_inert_file(t, "%s/%s" % (label, info.filename), info.filename, z.read(info), depth + 1)
    elif data.startswith(b"PK\x03\x04") or lower.endswith(".rtf"):
        assert_no_active_office_content(t, label, name, data)
    elif lower.endswith(".eml"):
        t.assertIn(b"X-Mukaika-Sanitized:", data, "%s: mail not rebuilt" % label)
    else:
        data.decode("utf-8")


def mail_with_attachment(text, name, ctype, data):
    """A plain mail (the many-attachments sample's headers) with one text
    line and one base64 attachment named with RFC 2231."""
    return (S.common_head("many-attachments.eml").encode("ascii") +
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\n"
            b"--=_b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + text.encode("ascii") + b"\r\n"
            b"--=_b\r\nContent-Type: " + ctype.encode("ascii") + b"\r\n"
            b"Content-Disposition: attachment; filename*=UTF-8''" + S.pct(name.encode("utf-8")).encode("ascii") + b"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(data).replace(b"\n", b"\r\n") + b"--=_b--\r\n")


B64_BLOCK_RE = re.compile(rb"(?:^[A-Za-z0-9+/]{4,}={0,2}\r?\n)+", re.M)


def decoded_forms(label, data, depth=0):
    """data, its MIME parts decoded, and every base64 block in it decoded,
    recursively (a rebuilt mail can sit base64-encoded inside another)."""
    out = [(label, data)]
    if depth > 3:
        return out
    if data[:2000].count(b":") >= 2:
        try:
            msg = email.message_from_bytes(data, policy=email.policy.default)
            for i, p in enumerate(msg.walk()):
                if not p.is_multipart():
                    out.append(("%s#part%d" % (label, i), p.get_payload(decode=True) or b""))
        except Exception:  # not a mail after all
            pass
    for i, m in enumerate(B64_BLOCK_RE.finditer(data)):
        try:
            decoded = base64.b64decode(re.sub(rb"\s", b"", m.group(0)), validate=False)
        except Exception:
            continue
        if len(decoded) >= 16:
            out += decoded_forms("%s#b64-%d" % (label, i), decoded, depth + 1)
    return out


def blobs_of_output(out_dir):
    """Raw bytes of every output file, its decoded parts and base64 blocks."""
    blobs = []
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        blobs += decoded_forms(name, read(os.path.join(out_dir, name)))
    return blobs


def is_subsequence(needles, haystack):
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


def eicar_forms():
    return [EICAR, base64.b64encode(EICAR), EICAR[:40]]


def pe_forms():
    return [TINY_PE, MINIMAL_PE, base64.b64encode(TINY_PE)[:200], base64.b64encode(MINIMAL_PE)[:200]]


# ---------------------------------------------------------------------------
# The samples themselves
# ---------------------------------------------------------------------------


class SampleGeneratorTests(unittest.TestCase):
    """The committed samples are what make_samples.py generates."""

    def test_committed_samples_match_the_generator(self):
        for folder, table in ((MAIL_DIR, S.SAMPLES), (FILES_DIR, S.FILES)):
            for name, fn in sorted(table.items()):
                with self.subTest(sample=name):
                    path = os.path.join(folder, name)
                    self.assertTrue(os.path.isfile(path), "%s missing: run samples/mail/make_samples.py" % path)
                    self.assertEqual(read(path), fn(), "%s is stale: run samples/mail/make_samples.py" % path)
        self.assertEqual(sorted(n for n in os.listdir(MAIL_DIR) if n.endswith(".eml")), sorted(S.SAMPLES))

    def test_japanese_encodings_agree_with_iconv(self):
        if not shutil.which("iconv"):
            self.skipTest("no iconv")
        text = "①㈱㍻髙﨑～ｶﾅ"
        proc = subprocess.run(["iconv", "-f", "CP932", "-t", "UTF-8"], input=S.cp932(text), stdout=subprocess.PIPE)
        self.assertEqual(proc.stdout.decode("utf-8"), text)
        self.assertEqual(S.cp932("髙"), b"\xfb\xfc")  # IBM extension row, as Windows writes it
        self.assertEqual(S.iso2022jp("①㈱㍻髙"), b"\x1b$B\x2d\x21\x2d\x6a\x2d\x5f\x7c\x62\x1b(B")
        raw = read(os.path.join(MAIL_DIR, "iso2022jp-ms-ext.eml"))
        self.assertIn(b"\x1b$B-!", raw)  # ① really is in the sample as JIS row 13


# ---------------------------------------------------------------------------
# Sample mails
# ---------------------------------------------------------------------------


class MailSampleTests(MukaikaCase):
    """Each sample in samples/mail sanitized on its own: exact subjects,
    names, body text, notice lines, report codes."""

    def run_sample(self, name, expect_rc=0, config="default-test"):
        path = os.path.join(MAIL_DIR, name)
        self.assertTrue(os.path.isfile(path), "%s missing: run samples/mail/make_samples.py" % path)
        run = self.sanitize([path], config=config)
        self.assertIsNotNone(run.report, run.describe())
        item = run.item(path)
        self.assertEqual(run.rc, expect_rc, run.describe() + "--- report\n" + json.dumps(item, ensure_ascii=False, indent=1))
        self.check_report_item(run, item, path)
        for name_, data in blobs_of_output(run.out_dir):
            for form in eicar_forms():
                self.assertNotIn(form, data, "EICAR in %s" % name_)
            for form in pe_forms():
                self.assertNotIn(form, data, "the PE bytes in %s" % name_)
        for f in run.output_files():
            self.assertFalse(set(f) & BAD_NAME_CHARS, "unsafe output file name %r" % f)
            self.assertFalse(f.endswith(".tmp-mukaika"), "temporary file left behind: %r" % f)
        mail = None
        if item["verdict"] != "blocked":
            self.assertEqual(run.output_files(), [name])
            self.assertEqual(item["kind"], "mail")
            mail = self.output_mail(item, path)
        else:
            self.assertEqual(run.output_files(), [], "a blocked input wrote something")
        return run, item, mail

    def assert_from(self, mail, display, address, header="From"):
        addrs = mail.msg[header].addresses
        self.assertEqual(len(addrs), 1, mail.msg[header])
        self.assertEqual(addrs[0].display_name, display)
        self.assertEqual(addrs[0].addr_spec, address)

    def assert_body_lines(self, mail, expected):
        for line in expected:
            self.assertIn(line, mail.lines, "body line missing: %r\nbody:\n%s" % (line, mail.body))

    # ---- one test per sample ----

    def test_iso2022jp_ms_ext(self):
        name = "iso2022jp-ms-ext.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        for ch in "①㈱㍻髙":
            self.assertIn(ch, str(mail.msg["Subject"]))
        self.assert_from(mail, *S.FROM[name])
        self.assert_from(mail, "霞市役所 建設課", "kensetsu@city.example.jp", "To")
        self.assert_body_lines(mail, S.BODY_LINES[name])
        self.assertEqual(str(mail.msg["Message-ID"]), "<20241001101200.4F2A@takahashi-kensetsu.example.jp>")
        self.assertEqual(mail.msg["Date"].datetime.isoformat(), "2024-10-01T10:12:00+09:00")
        self.assertEqual(item["verdict"], "clean")
        self.assertEqual(mail.state, "clean")
        self.assertEqual(mail.attachments, [])
        self.assertEqual(self.action_at(item, name + "/body")["code"], "text.utf8")
        self.assertEqual(self.action_at(item, name)["code"], "mail.rebuilt_clean")

    def test_cp932_shift_jis_label(self):
        name = "cp932-shift-jis-label.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        self.assertIn("\uff5e", str(mail.msg["Subject"]), "～ must be FULLWIDTH TILDE (CP932), not WAVE DASH")
        self.assert_from(mail, *S.FROM[name])
        self.assert_from(mail, *S.CP932_RAW_TO, header="To")
        self.assert_body_lines(mail, S.BODY_LINES[name])
        self.assertNotIn("\u301c", mail.body, "0x8160 read as JIS WAVE DASH instead of CP932 FULLWIDTH TILDE")
        self.assertEqual(mail.state, "clean")
        self.assertEqual(self.action_at(item, name + "/body")["code"], "text.utf8")

    def test_utf8_plain(self):
        name = "utf8-plain.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        self.assert_from(mail, *S.FROM[name])
        self.assert_from(mail, "霞市 市民課", "shimin@city.example.jp", "To")
        self.assert_from(mail, "髙島 次郎", "takashima@example.jp", "Cc")
        self.assert_from(mail, "𠮷野 花子（自宅）", "hanako.yoshino@home.example.jp", "Reply-To")
        self.assertEqual(str(mail.msg["In-Reply-To"]).strip(), "<reply-parent.1@city.example.jp>")
        self.assertEqual(str(mail.msg["References"]).split(),
                         ["<thread-root.0@city.example.jp>", "<reply-parent.1@city.example.jp>"])
        self.assert_body_lines(mail, S.BODY_LINES[name])
        self.assertEqual(item["verdict"], "clean")
        self.assertEqual(str(mail.msg["X-Mukaika-Sanitized"]), "mukaika; clean; converted=0; removed=0; blocked=0")
        self.assertEqual(self.action_at(item, name + "/body")["code"], "text.kept")

    def test_html_only(self):
        name = "html-only.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized")
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        text = "\n".join(mail.text_after_notice())
        for s in S.HTML_EXPECT_PRESENT:
            self.assertIn(s, text, "missing %r in:\n%s" % (s, text))
        for s in S.HTML_EXPECT_ABSENT:
            self.assertNotIn(s, mail.body, "%r survived the HTML conversion:\n%s" % (s, mail.body))
        for cells in S.HTML_TABLE_ROWS:
            rows = [l for l in mail.lines if all(c in l for c in cells)]
            self.assertEqual(len(rows), 1, "table row %r not on one line:\n%s" % (cells, text))
            self.assertLess(rows[0].index(cells[0]), rows[0].index(cells[1]))
        list_lines = [l for l in mail.lines if "財務会計システム" in l or "文書管理システム" in l]
        self.assertEqual(len(list_lines), 2, "list items must be on separate lines")
        link = [l for l in mail.lines if "市のお知らせページ" in l][0]
        self.assertIn("https://www.city.example.jp/jouhou/koushin.html", link, "link target not next to its text")
        body = self.action_at(item, name + "/body")
        self.assertEqual((body["action"], body["code"]), ("convert", "html.to_text"))
        self.assertEqual(mail.notice, ["本文: " + body["reason"]])
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (1, 0, 0))

    def test_alternative_keeps_plain(self):
        name = "alternative.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        self.assert_body_lines(mail, S.BODY_LINES[name])
        self.assertNotIn("HTML-PART-MARKER", mail.body)
        self.assertEqual(mail.attachments, [])
        self.assertEqual([a["path"] for a in item["actions"] if a["path"].startswith(name + "/")], [name + "/body"])
        self.assertEqual(item["verdict"], "clean")

    def test_eicar_body_blocks_the_mail(self):
        name = "eicar-body.eml"
        run, item, mail = self.run_sample(name, expect_rc=1)
        self.assertEqual(item["verdict"], "blocked")
        self.assertIn("eicar", item.get("virus", "").lower())
        top = self.action_at(item, name)
        self.assertEqual((top["action"], top["code"]), ("block", "mail.body_infected"))
        self.assertIn("eicar", top.get("virus", "").lower())
        body = self.action_at(item, name + "/body")
        self.assertEqual((body["action"], body["code"]), ("block", "av.infected"))
        self.assertIn("[blocked] ", run.stdout)

    def test_eicar_attachment_named_and_rest_delivered(self):
        name = "eicar-attachment.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized")
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        for att in ("eicar.com", "eicar.txt"):
            a = self.action_at(item, name + "/" + att)
            self.assertEqual((a["action"], a["code"]), ("block", "av.infected"), a)
            self.assertIn("eicar", a.get("virus", "").lower())
            line = [l for l in mail.notice if l.startswith("添付「%s」: " % att)]
            self.assertEqual(len(line), 1, mail.notice)
            self.assertIn(a["virus"], line[0], "the notice must name the virus")
        kept_name, kept_text = S.EICAR_ATTACHMENT_KEPT
        self.assertEqual(mail.names, [kept_name])
        self.assertEqual(mail.attachment(kept_name)[0].decode("utf-8"), kept_text)
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (0, 0, 2))
        self.assert_body_lines(mail, ["ウイルス対策の試験です。添付ファイルのうち2つは試験用のウイルス文字列です。"])

    def test_exe_named_pdf_is_a_disguise(self):
        name = "exe-named-pdf.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized", "the disguised attachment should be blocked and the "
                         "rest of the mail delivered; report: %s" % json.dumps(item, ensure_ascii=False))
        a = self.action_at(item, name + "/請求書.pdf")
        self.assertEqual((a["action"], a["code"]), ("block", "type.disguised"))
        self.assertEqual(mail.names, [])
        self.assertEqual(len(mail.notice), 1)
        self.assertTrue(mail.notice[0].startswith("添付「請求書.pdf」: "), mail.notice)
        self.assertIn("偽装", mail.notice[0])
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (0, 0, 1))
        self.assert_body_lines(mail, ["請求書を送付いたします。"])

    def test_disguised_exe_without_av_hit_is_blocked_rest_delivered(self):
        # The same as exe-named-pdf.eml with a well-formed PE the scanner does
        # not flag: isolates the disguise rule from the scanner.
        src = read(os.path.join(MAIL_DIR, "exe-named-pdf.eml"))
        data = src.replace(base64.encodebytes(TINY_PE).replace(b"\n", b"\r\n"),
                           base64.encodebytes(MINIMAL_PE).replace(b"\n", b"\r\n"))
        self.assertNotEqual(data, src)
        path = self.write("exe-named-pdf-2.eml", data)
        run = self.sanitize([path])
        self.assertEqual(run.rc, 0, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        self.assertEqual(item["verdict"], "sanitized")
        a = self.action_at(item, "exe-named-pdf-2.eml/請求書.pdf")
        self.assertEqual((a["action"], a["code"]), ("block", "type.disguised"))
        mail = self.output_mail(item, path)
        self.assertEqual(mail.names, [])
        self.assertEqual(len(mail.notice), 1)
        self.assertTrue(mail.notice[0].startswith("添付「請求書.pdf」: "), mail.notice)
        for fname, blob in blobs_of_output(run.out_dir):
            self.assertNotIn(MINIMAL_PE, blob, fname)

    def test_bidi_filename(self):
        name = "bidi-filename.eml"
        run, item, mail = self.run_sample(name)
        expected_names = [n for _, n, _ in S.BIDI_ATTACHMENTS if n]
        self.assertEqual(mail.names, expected_names)
        for n in expected_names:
            self.assertTrue(mail.attachment(n)[0].startswith(b"harmless text file"))
        removed = [l for l in mail.notice if l.startswith("添付「invoicefdp.exe」: ")]
        self.assertEqual(len(removed), 1, mail.notice)
        for ch in "\u202e\u200b\u2066":
            self.assertNotIn(ch, mail.body)
            self.assertNotIn(ch.encode("utf-8"), mail.raw)
        self.assertIn("policy.executable", self.codes(item, "remove"))

    def test_report_paths_carry_no_bidi_or_control_characters(self):
        # The report is read by people (log viewers, SIEM): a U+202E or a CR LF
        # in a path makes "invoice<RLO>fdp.exe" display as "invoiceexe.pdf" or
        # forges a line. Paths should use the safe names the mail uses.
        for name in ("bidi-filename.eml", "crlf-filename.eml"):
            with self.subTest(sample=name):
                run, item, mail = self.run_sample(name)
                for a in item["actions"]:
                    bad = [c for c in a["path"] if c in BAD_NAME_CHARS - {"/"}]
                    self.assertFalse(bad, "report path %r carries %r" % (a["path"], bad))

    def test_crlf_filename_and_subject_cannot_inject_headers(self):
        name = "crlf-filename.eml"
        run, item, mail = self.run_sample(name)
        for part in mail.msg.walk():
            for h in ("X-Evil", "X-Evil2", "Bcc"):
                self.assertIsNone(part[h], "header %s was injected" % h)
        self.assertIsNone(re.search(rb"\r\n(X-Evil2?|Bcc):", mail.raw), "injected header line in the output")
        subject = str(mail.msg["Subject"])
        self.assertTrue(subject.startswith("【重要】お知らせ"), subject)
        self.assertNotIn("\r", subject)
        self.assertNotIn("\n", subject)
        self.assertEqual(len(mail.names), 2, mail.names)
        for n, prefix in zip(mail.names, ("a.txt", "b.txt")):
            self.assertTrue(n.startswith(prefix), n)
            self.assertTrue(n.endswith(".txt"), n)
            self.assertNotIn(":", n)
            self.assertNotIn("<", n)
        self.assertEqual(mail.attachment(mail.names[0])[0], b"first harmless text\r\n")
        self.assertEqual(mail.attachment(mail.names[1])[0], b"second harmless text\r\n")

    def test_broken_mime_is_recovered(self):
        name = "broken-mime.eml"
        run, item, mail = self.run_sample(name)
        self.assertIn(S.BROKEN_BODY_MARKER, mail.lines)
        # The part after the last (never closed) boundary still arrives.
        last_name, last_text = S.BROKEN_LAST
        self.assertIn(last_name, mail.names)
        self.assertEqual(mail.attachment(last_name)[0].decode("utf-8"), last_text)
        # The damaged base64 part is either recovered as text or accounted for.
        if "data.txt" in mail.names:
            self.assertTrue(mail.attachment("data.txt")[0].startswith(b"data file with damaged base64"))
        else:
            self.assertIn(name + "/data.txt", [a["path"] for a in item["actions"]])
        subject = str(mail.msg["Subject"])
        self.assertNotIn("\x1b", subject, "raw ISO-2022-JP escape in the subject")
        self.assertNotIn("\ufffd", subject)

    def test_nested_rfc822_is_flattened(self):
        name = "nested-rfc822.eml"
        inner = S.NESTED_INNER
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized")
        self.assertEqual(str(mail.msg["Subject"]), S.SUBJECTS[name])
        self.assert_from(mail, *S.FROM[name])
        expected = [
            S.BODY_LINES[name][0],
            NESTED_MARK_JA,
            "> From: %s <%s>" % inner["from"],
            "> Date: %s" % inner["date"],
            "> To: 霞市 総務課 <soumu@city.example.jp>",
            "> Subject: %s" % inner["subject"],
        ] + ["> " + l for l in inner["body"]]
        self.assertTrue(is_subsequence(expected, mail.lines),
                        "expected lines in order:\n%s\nbody:\n%s" % ("\n".join(expected), mail.body))
        self.assertEqual(mail.names, [inner["text_name"]])
        self.assertEqual(mail.attachment(inner["text_name"])[0].decode("utf-8"), inner["text_content"])
        vbs = self.action_at(item, name + "/message-1/" + inner["vbs_name"])
        self.assertEqual((vbs["action"], vbs["code"]), ("remove", "policy.script"))
        self.assertEqual(self.action_at(item, name + "/message-1/" + inner["text_name"])["code"], "text.utf8")
        self.assertIn(name + "/message-1/body", [a["path"] for a in item["actions"]])
        self.assertEqual(mail.notice, ["添付「%s」: %s" % (inner["vbs_name"], vbs["reason"])])
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (0, 1, 0))

    def test_rfc2231_names(self):
        name = "rfc2231-names.eml"
        run, item, mail = self.run_sample(name)
        expected = [n for n, _ in S.RFC2231_ATTACHMENTS]
        self.assertEqual(mail.names, expected)
        for n, content in S.RFC2231_ATTACHMENTS:
            self.assertEqual(mail.attachment(n)[0].decode("ascii"), content, n)
        self.assertEqual(item["verdict"], "clean")
        # Non-ASCII names go out as RFC 2231 UTF-8 (filename*=utf-8''...).
        self.assertRegex(mail.raw.decode("ascii"), r"(?i)filename\*(0\*)?=utf-8''")

    def test_csv_cp932_gets_utf8_with_bom(self):
        name = "csv-cp932.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(mail.names, ["職員名簿.csv", "施設一覧.csv"])
        for fname, rows in (("職員名簿.csv", S.CSV_ROWS), ("施設一覧.csv", S.CSV2_ROWS)):
            data, part = mail.attachment(fname)
            self.assertTrue(data.startswith(b"\xef\xbb\xbf"), "%s has no UTF-8 BOM: %r" % (fname, data[:8]))
            text = data[3:].decode("utf-8")
            self.assertEqual(text.replace("\r\n", "\n").rstrip("\n").split("\n"), rows)
            self.assertEqual(part.get_content_type(), "text/csv")
            self.assertEqual(part.get_content_charset(), "utf-8")
            self.assertEqual(self.action_at(item, name + "/" + fname)["code"], "text.utf8")
        self.assertIn("山﨑", mail.attachment("職員名簿.csv")[0].decode("utf-8-sig"))
        self.assertIn("ｻﾄｳ ｼﾞﾛｳ", mail.attachment("職員名簿.csv")[0].decode("utf-8-sig"))

    def test_signed_signature_removed_content_kept(self):
        name = "signed.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized")
        sig = self.action_at(item, name + "/signature")
        self.assertEqual((sig["action"], sig["code"]), ("remove", "mail.signature"))
        self.assertEqual(mail.names, [S.SIGNED_KEPT[0]])
        self.assertEqual(mail.attachment(S.SIGNED_KEPT[0])[0].decode("utf-8"), S.SIGNED_KEPT[1])
        self.assertNotIn("smime.p7s", mail.names)
        self.assertIn(sig["reason"], mail.notice)
        self.assert_body_lines(mail, ["入札公告を送付します。本メールには電子署名が付いています。"])
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (0, 1, 0))

    def test_many_attachments_each_handled_with_its_reason(self):
        name = "many-attachments.eml"
        run, item, mail = self.run_sample(name)
        self.assertEqual(item["verdict"], "sanitized")
        self.assertEqual(mail.names, [d for _, _, _, d in S.MANY_ATTACHMENTS if d])
        self.assertEqual(mail.attachment("議事録.txt")[0].decode("utf-8"), S.MANY_TEXT)
        for fname, action, code, delivered in S.MANY_ATTACHMENTS:
            with self.subTest(attachment=fname):
                a = self.action_at(item, name + "/" + fname)
                self.assertEqual((a["action"], a["code"]), (action, code), a)
                if delivered and delivered != fname:
                    self.assertIn("添付「%s」: ファイル名を「%s」に変更しました" % (fname, delivered), mail.notice)
                elif action != "keep":
                    self.assertIn("添付「%s」: %s" % (fname, a["reason"]), mail.notice)
                else:
                    self.assertNotIn("添付「%s」" % fname, mail.notice)
        # What came out is what the report says: pixels, not the originals.
        png = mail.attachment("写真.png")[0]
        assert_inert_image(self, "写真.png", png)
        self.assertTrue(png.startswith(PNG_SIGNATURE), png[:16])
        assert_inert_pdf(self, "案内.pdf", mail.attachment("案内.pdf")[0])
        with zipfile.ZipFile(io.BytesIO(mail.attachment("資料一式.zip")[0])) as z:
            self.assertEqual(z.namelist(), ["readme.txt"])
        n_removed = sum(1 for _, a, _, _ in S.MANY_ATTACHMENTS if a == "remove")
        n_converted = sum(1 for f, a, _, d in S.MANY_ATTACHMENTS if a == "convert" or (d and d != f))
        self.assertEqual((mail.converted, mail.removed, mail.blocked), (n_converted, n_removed, 0))

    def test_plain_body_starting_with_sp_is_kept(self):
        # libmagic calls any text starting with "SP" HP-GL plotter data; a
        # text/plain body must still be delivered as the body.
        name = "sp-prefix-body.eml"
        run, item, mail = self.run_sample(name)
        self.assert_body_lines(mail, S.BODY_LINES[name])
        body = self.action_at(item, name + "/body")
        self.assertIn(body["action"], ("keep", "convert"), body)

    # ---- all samples at once ----

    def test_all_samples_in_one_run(self):
        names = sorted(n for n in os.listdir(MAIL_DIR) if n.endswith(".eml"))
        self.assertGreaterEqual(len(names), 17)
        paths = [os.path.join(MAIL_DIR, n) for n in names]
        run = self.sanitize(paths)
        self.assertIn(run.rc, (0, 1), run.describe())
        self.assertEqual(len(run.items()), len(paths))
        blocked = [it["input"] for it in run.items() if it["verdict"] == "blocked"]
        self.assertEqual(run.rc, 1 if blocked else 0)
        self.assertIn(os.path.join(MAIL_DIR, "eicar-body.eml"), blocked)
        for p in paths:
            it = run.item(p)
            self.check_report_item(run, it, p)
            if it["verdict"] != "blocked":
                self.output_mail(it, p)
        self.assertEqual(sorted(run.output_files()),
                         sorted(os.path.basename(it["output"]) for it in run.items() if it["output"]))
        for fname, data in blobs_of_output(run.out_dir):
            self.assertNotIn(EICAR, data, fname)
            self.assertNotIn(TINY_PE, data, fname)
            self.assertNotIn(MINIMAL_PE, data, fname)
        summary = run.stdout.strip().splitlines()[-1]
        self.assertIn("遮断 %d 件" % len(blocked), summary)

    def test_report_conventions(self):
        # The documented report format: action is keep|convert|remove|block|note
        # and every path is "<input>" or "<input>/...".
        paths = sorted(os.path.join(MAIL_DIR, n) for n in os.listdir(MAIL_DIR) if n.endswith(".eml"))
        paths += sorted(os.path.join(FILES_DIR, n) for n in os.listdir(FILES_DIR))
        run = self.sanitize(paths)
        for p in paths:
            with self.subTest(input=os.path.relpath(p, SAMPLES)):
                self.check_report_conventions(run.item(p), p)

    def test_archive_members_as_separate_attachments(self):
        # [sanitizer."archive.flatten"] output = "attachments": in a mail, what
        # survives of a zip arrives as attachments of its own; a zip given on
        # the command line still comes out as one zip.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("議事録.txt", S.MANY_TEXT.encode("utf-8"))
            z.writestr("資料/議事録.txt", "別の議事録\r\n".encode("utf-8"))
            z.writestr("資料/setup.exe", MINIMAL_PE)
        archive = buf.getvalue()
        mail = mail_with_attachment("Files attached.", "会議資料.zip", "application/zip", archive)
        mail_path = self.write("split.eml", mail)
        zip_path = self.write("会議資料.zip", archive)
        cfg = self.write_config('[antivirus]\ndatabase = "%s"\n[sanitizer."archive.flatten"]\noutput = "attachments"\n'
                                % SIGNATURES, "split.toml")
        run = self.sanitize([mail_path, zip_path], config=cfg)
        self.assertEqual(run.rc, 0, run.describe())
        item = run.item(mail_path)
        self.check_report_item(run, item, mail_path)
        out = self.output_mail(item, mail_path)
        self.assertEqual(sorted(out.names), ["議事録 (2).txt", "議事録.txt"])
        self.assertEqual(out.attachment("議事録.txt")[0].decode("utf-8"), S.MANY_TEXT)
        self.assertEqual(out.attachment("議事録 (2).txt")[0].decode("utf-8"), "別の議事録\r\n")
        self.assertIn("添付「会議資料.zip」: 圧縮ファイルを展開して中身を無害化しました (そのまま 2 件, 変換 0 件, 削除 1 件, "
                      "遮断 0 件: 除いたもの 資料/setup.exe)。中のファイル 2 件を、それぞれ添付ファイルとして届けます", out.notice)
        self.assertEqual(self.action_at(item, "split.eml/会議資料.zip/資料/setup.exe")["code"], "policy.executable")
        self.assertEqual(out.converted, 1)
        for fname, blob in blobs_of_output(run.out_dir):
            self.assertNotIn(MINIMAL_PE, blob, fname)
        # One file in, one file out: the zip.
        top = run.item(zip_path)
        with zipfile.ZipFile(io.BytesIO(read(top["output"]))) as z:
            self.assertEqual(sorted(z.namelist()), ["無害化通知.txt", "議事録.txt", "資料/議事録.txt"])

    def test_attached_eml_file_is_rebuilt_and_readable(self):
        # A mail saved as .eml and attached as a file (application/octet-stream,
        # not message/rfc822) is rebuilt like any mail and attached again.
        inner = read(os.path.join(MAIL_DIR, "many-attachments.eml"))
        mail = mail_with_attachment("Forwarding the mail below.", "転送メール.eml", "application/octet-stream", inner)
        path = self.write("forward-as-file.eml", mail)
        run = self.sanitize([path])
        self.assertEqual(run.rc, 0, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        out = self.output_mail(item, path)
        self.assertEqual(out.names, ["転送メール.eml"])
        a = self.action_at(item, "forward-as-file.eml/転送メール.eml")
        self.assertEqual((a["action"], a["code"]), ("convert", "mail.rebuilt"))
        self.assertEqual(self.action_at(item, "forward-as-file.eml/転送メール.eml/setup.exe")["code"], "policy.executable")
        attached = OutputMail(self, out.attachment("転送メール.eml")[0], inner)
        self.assertEqual(attached.names, [d for _, _, _, d in S.MANY_ATTACHMENTS if d])
        for fname, blob in blobs_of_output(run.out_dir):
            self.assertNotIn(MINIMAL_PE, blob, fname)
        out.assert_rfc822_attachments_readable(self)
        # What a mail reader sees: the attachment parsed as a message.
        part = out.attachment("転送メール.eml")[1]
        self.assertEqual(str(part.get_payload(0)["Subject"]), S.SUBJECTS["many-attachments.eml"])

    def test_output_encoded_words_within_rfc2047_length(self):
        # RFC 2047 section 2: an encoded-word may not be more than 75
        # characters long; header lines should stay within 78 (RFC 5322 2.1.1).
        for name in ("iso2022jp-ms-ext.eml", "cp932-shift-jis-label.eml", "nested-rfc822.eml"):
            with self.subTest(sample=name):
                run, item, mail = self.run_sample(name)
                head = mail.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
                for word in re.findall(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=", head):
                    self.assertLessEqual(len(word), 75, "encoded word of %d characters: %s" % (len(word), word))
                for line in head.split("\r\n"):
                    self.assertLessEqual(len(line), 998, line)


class EnglishNoticeTests(MukaikaCase):

    def test_language_en(self):
        cfg = self.write_config('language = "en"\n[antivirus]\ndatabase = "%s"\n' % SIGNATURES, "en.toml")
        path = os.path.join(MAIL_DIR, "many-attachments.eml")
        run = self.sanitize([path], config=cfg)
        self.assertEqual(run.rc, 0, run.describe())
        item = run.item(path)
        mail = self.output_mail(item, path)
        self.assertTrue(mail.body.startswith(NOTICE_EN), mail.body[:200])
        self.assertNotIn(NOTICE_JA, mail.body)
        self.assertIn('attachment "setup.exe": removed: executable program', mail.notice)
        self.assertIn('attachment "ページ.html": removed: HTML file (may contain scripts)', mail.notice)
        for a in item["actions"]:
            self.assertTrue(all(ord(c) < 0x3000 or a["path"].find(c) >= 0 for c in a["reason"]),
                            "Japanese in an English reason: %r" % a)
        self.assertIn("result: ", run.stdout)
        # Nested messages are introduced in English too.
        path2 = os.path.join(MAIL_DIR, "nested-rfc822.eml")
        run2 = self.sanitize([path2], config=cfg)
        mail2 = self.output_mail(run2.item(path2), path2)
        self.assertIn("---------- Attached message ----------", mail2.lines)
        self.assertNotIn(NESTED_MARK_JA, mail2.lines)


# ---------------------------------------------------------------------------
# Files and the command line
# ---------------------------------------------------------------------------


class FileTests(MukaikaCase):
    """Top-level files (not mails)."""

    def run_file(self, path, expect_rc):
        run = self.sanitize([path])
        self.assertEqual(run.rc, expect_rc, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        return run, item

    def test_cp932_text_becomes_utf8(self):
        path = os.path.join(FILES_DIR, "cp932-memo.txt")
        run, item = self.run_file(path, 0)
        self.assertEqual(run.output_files(), ["cp932-memo.txt"])
        self.assertEqual(read(item["output"]).decode("utf-8"), S.FILE_TEXT_CP932)
        self.assertEqual(item["kind"], "text")
        self.assertIn("text.utf8", self.codes(item))

    def test_utf8_csv_gets_bom(self):
        path = os.path.join(FILES_DIR, "meibo-utf8.csv")
        run, item = self.run_file(path, 0)
        self.assertEqual(read(item["output"]), b"\xef\xbb\xbf" + S.FILE_CSV_UTF8.encode("utf-8"))

    def test_ascii_text_unchanged(self):
        path = os.path.join(FILES_DIR, "readme.txt")
        run, item = self.run_file(path, 0)
        self.assertEqual(item["verdict"], "clean")
        self.assertEqual(read(item["output"]), read(path))
        self.assertEqual(item["sha256_out"], item["sha256_in"])

    def test_text_with_other_extension_gets_txt(self):
        path = os.path.join(FILES_DIR, "settings.ini")
        run, item = self.run_file(path, 0)
        self.assertEqual(run.output_files(), ["settings.ini.txt"])
        self.assertEqual(read(item["output"]), read(path))

    def test_js_text_file_is_blocked_as_script(self):
        # The default policy removes scripts; a removed top-level input is blocked.
        path = os.path.join(FILES_DIR, "script.js")
        run, item = self.run_file(path, 1)
        self.assertEqual(item["verdict"], "blocked")
        self.assertEqual(item["kind"], "script")
        self.assertIn("policy.script", self.codes(item))
        self.assertEqual(run.output_files(), [])

    def test_html_file_is_blocked(self):
        path = os.path.join(FILES_DIR, "notice.html")
        run, item = self.run_file(path, 1)
        self.assertIn("policy.html", self.codes(item))
        self.assertEqual(run.output_files(), [])

    def test_exe_named_pdf_file_is_blocked_as_disguise(self):
        path = self.write("請求書.pdf", TINY_PE)
        run, item = self.run_file(path, 1)
        self.assertEqual(item["verdict"], "blocked")
        self.assertEqual(item["kind"], "executable")
        self.assertIn("type.disguised", self.codes(item, "block"))
        self.assertEqual(run.output_files(), [])

    def test_eicar_file_is_blocked_and_named(self):
        path = self.write("eicar.txt", EICAR)
        run, item = self.run_file(path, 1)
        self.assertIn("av.infected", self.codes(item, "block"))
        self.assertIn("eicar", item.get("virus", "").lower())
        self.assertEqual(run.output_files(), [])

    def test_eicar_inside_a_text_file_is_blocked(self):
        path = self.write("memo.txt", "議事録\r\n".encode("utf-8") + EICAR + b"\r\n")
        run, item = self.run_file(path, 1)
        self.assertIn("av.infected", self.codes(item, "block"))

    def test_same_name_twice_does_not_overwrite(self):
        a = self.write("a/memo.txt", b"first\r\n")
        b = self.write("b/memo.txt", b"second\r\n")
        run = self.sanitize([a, b])
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.output_files(), ["memo-2.txt", "memo.txt"])
        self.assertEqual(read(run.item(a)["output"]), b"first\r\n")
        self.assertEqual(read(run.item(b)["output"]), b"second\r\n")

    def test_unsafe_input_name_is_made_safe(self):
        path = self.write("CON.txt", b"device name\r\n")
        run = self.sanitize([path])
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.output_files(), ["_CON.txt"])
        long_name = "議事録_" + "a" * 200 + ".txt"  # 217 characters, 225 bytes
        path2 = self.write(long_name, b"long name\r\n")
        run2 = self.sanitize([path2])
        self.assertEqual(run2.rc, 0, run2.describe())
        [out] = run2.output_files()
        self.assertTrue(out.endswith(".txt"), out)
        self.assertTrue(out.startswith("議事録_aaa"), out)
        self.assertEqual(len(out), 120)
        lead = self.write(".hidden.txt", b"leading dot\r\n")
        run3 = self.sanitize([lead])
        self.assertEqual(run3.output_files(), ["hidden.txt"])


class CliTests(MukaikaCase):
    """Exit statuses, messages, check-config."""

    def test_exit_0_for_a_clean_set(self):
        inputs = [os.path.join(FILES_DIR, "readme.txt"), os.path.join(MAIL_DIR, "utf8-plain.eml"),
                  os.path.join(MAIL_DIR, "many-attachments.eml")]
        run = self.sanitize(inputs)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.output_files(), ["many-attachments.eml", "readme.txt", "utf8-plain.eml"])
        for p in inputs[1:]:
            self.output_mail(run.item(p), p)
        self.assertIn("結果: 無害 2 件, 無害化 1 件, 遮断 0 件", run.stdout)

    def test_exit_1_when_something_is_blocked_and_the_rest_is_written(self):
        ok = os.path.join(FILES_DIR, "readme.txt")
        bad = os.path.join(FILES_DIR, "notice.html")
        run = self.sanitize([ok, bad])
        self.assertEqual(run.rc, 1, run.describe())
        self.assertEqual(run.output_files(), ["readme.txt"])
        self.assertEqual(run.item(bad)["verdict"], "blocked")
        self.assertEqual(run.item(ok)["verdict"], "clean")

    def test_exit_2_for_a_missing_input(self):
        missing = os.path.join(self.tmp, "does-not-exist.eml")
        run = self.sanitize([missing])
        self.assertEqual(run.rc, 2, run.describe())
        self.assertIn(missing, run.stderr)

    def test_exit_2_for_an_unknown_option(self):
        proc = run_bin(["sanitize", "--frobnicate", "--out", os.path.join(self.tmp, "o"),
                        os.path.join(FILES_DIR, "readme.txt")])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--frobnicate", proc.stderr.decode("utf-8"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "o", "readme.txt")))

    def test_exit_2_without_out(self):
        proc = run_bin(["sanitize", os.path.join(FILES_DIR, "readme.txt")])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--out", proc.stderr.decode("utf-8"))

    def test_exit_2_without_inputs_or_command(self):
        self.assertEqual(run_bin(["sanitize", "--out", os.path.join(self.tmp, "o")]).returncode, 2)
        self.assertEqual(run_bin([]).returncode, 2)
        self.assertEqual(run_bin(["frobnicate"]).returncode, 2)
        self.assertEqual(run_bin(["--help"]).returncode, 0)

    def test_exit_2_for_a_bad_config_naming_file_and_line(self):
        cfg = self.write_config('language = "ja"\n[limits]\nmax_depth = "deep"\n', "bad.toml")
        run = self.sanitize([os.path.join(FILES_DIR, "readme.txt")], config=cfg)
        self.assertEqual(run.rc, 2, run.describe())
        self.assertIn(cfg + ":3:", run.stderr)
        self.assertIn("max_depth", run.stderr)
        self.assertEqual(run.output_files(), [])

    def test_exit_2_for_a_config_syntax_error(self):
        cfg = self.write_config('language = "ja"\n\n[limits\nmax_depth = 3\n', "syntax.toml")
        run = self.sanitize([os.path.join(FILES_DIR, "readme.txt")], config=cfg)
        self.assertEqual(run.rc, 2, run.describe())
        self.assertIn(cfg + ":3:", run.stderr)

    def test_exit_2_for_a_missing_config(self):
        cfg = os.path.join(self.tmp, "nope.toml")
        run = self.sanitize([os.path.join(FILES_DIR, "readme.txt")], config=cfg)
        self.assertEqual(run.rc, 2, run.describe())
        self.assertIn(cfg, run.stderr)

    def test_check_config_good(self):
        cfg = self.write_config('language = "en"\n[limits]\nmax_depth = 4\n[policy.file]\npdf = ["block"]\n', "good.toml")
        proc = run_bin(["check-config", cfg])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("OK", proc.stdout.decode("utf-8"))

    def test_check_config_lists_every_problem_with_its_line(self):
        text = ("language = \"fr\"\n"              # 1
                "colour = \"blue\"\n"              # 2
                "[limits]\n"                       # 3
                "max_depth = 0\n"                  # 4
                "max_parts = \"many\"\n"           # 5
                "[policy.file]\n"                  # 6
                "pdf = [\"pdf.sparkle\"]\n"      # 7
                "text = [\"html.to_text\"]\n")     # 8
        cfg = self.write_config(text, "problems.toml")
        proc = run_bin(["check-config", cfg])
        err = proc.stderr.decode("utf-8")
        self.assertEqual(proc.returncode, 2, err)
        for line, word in ((1, "language"), (2, "colour"), (4, "max_depth"), (5, "max_parts"), (7, "pdf.sparkle"),
                           (8, "html.to_text")):
            hits = [l for l in err.splitlines() if l.startswith("%s:%d:" % (cfg, line))]
            self.assertTrue(hits and any(word in h for h in hits), "no problem reported at line %d (%s):\n%s"
                            % (line, word, err))
        self.assertIn("6 problems", err)

    def test_check_config_missing_file(self):
        proc = run_bin(["check-config", os.path.join(self.tmp, "missing.toml")])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("missing.toml", proc.stderr.decode("utf-8"))

    def test_default_uses_bundled_signatures_with_a_warning(self):
        if os.path.isdir("/var/lib/clamav") and os.listdir("/var/lib/clamav"):
            self.skipTest("/var/lib/clamav holds a database; the bundled-signature fallback is not used")
        path = self.write("eicar.com", EICAR)
        run = self.sanitize([path], config=None)
        self.assertEqual(run.rc, 1, run.describe())
        self.assertIn("/var/lib/clamav", run.stderr)
        self.assertIn(os.path.basename(os.path.dirname(SIGNATURES)) + "/clamav", run.stderr)
        self.assertIn("av.infected", self.codes(run.item(path)))

    def test_refuses_to_run_without_a_loadable_database(self):
        empty = os.path.join(self.tmp, "empty-db")
        os.makedirs(empty, exist_ok=True)
        cfg = self.write("nodb.toml", ('[antivirus]\ndatabase = "%s"\n' % empty).encode("utf-8"))
        out = os.path.join(self.tmp, "nodb-out")
        proc = run_bin(["sanitize", "--config", cfg, "--out", out, os.path.join(FILES_DIR, "readme.txt")])
        err = proc.stderr.decode("utf-8")
        self.assertEqual(proc.returncode, 2, err)
        self.assertIn(empty, err)            # names the directory
        self.assertIn("freshclam", err)      # and says what to do
        self.assertFalse(os.path.exists(os.path.join(out, "readme.txt")), "ran without a scanner")

    def test_running_without_a_scanner_needs_explicit_configuration(self):
        empty = os.path.join(self.tmp, "empty-db2")
        os.makedirs(empty, exist_ok=True)
        cfg = self.write("noav.toml", ('[antivirus]\ndatabase = "%s"\nrequired = false\n' % empty).encode("utf-8"))
        out = os.path.join(self.tmp, "noav-out")
        proc = run_bin(["sanitize", "--config", cfg, "--out", out, os.path.join(FILES_DIR, "readme.txt")])
        err = proc.stderr.decode("utf-8")
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("antivirus.required = false", err)  # the warning says why it runs unprotected
        self.assertTrue(os.path.exists(os.path.join(out, "readme.txt")))

    def test_report_to_unwritable_place_is_exit_2(self):
        proc = run_bin(["sanitize", "--config", self.config, "--out", os.path.join(self.tmp, "o"), "--report",
                        os.path.join(self.tmp, "no-such-dir", "r.json"), os.path.join(FILES_DIR, "readme.txt")])
        self.assertEqual(proc.returncode, 2, proc.stderr)


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def many_part_mail(n):
    boundary = "=_many_parts"
    out = ["From: test@example.jp", "To: soumu@city.example.jp", "Subject: many parts",
           "Date: Tue, 8 Oct 2024 09:00:00 +0900", "MIME-Version: 1.0",
           'Content-Type: multipart/mixed; boundary="%s"' % boundary, "",
           "--" + boundary, "Content-Type: text/plain; charset=us-ascii", "", "body with many attachments"]
    for i in range(1, n):
        out += ["--" + boundary, "Content-Type: text/plain; charset=us-ascii",
                'Content-Disposition: attachment; filename="file-%03d.txt"' % i, "", "attachment %d" % i]
    out += ["--" + boundary + "--", ""]
    return "\r\n".join(out).encode("ascii")


def deep_multipart_mail(levels):
    lines = ["From: test@example.jp", "To: soumu@city.example.jp", "Subject: deep", "MIME-Version: 1.0"]
    for i in range(levels):
        lines += ['Content-Type: multipart/mixed; boundary="b%d"' % i, "", "--b%d" % i]
    lines += ["Content-Type: text/plain", "", "deep body"]
    for i in reversed(range(levels)):
        lines += ["--b%d--" % i]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def deep_rfc822_mail(levels):
    msg = b"From: inner@example.jp\r\nSubject: level %d\r\n\r\ninnermost body\r\n" % levels
    for i in reversed(range(levels)):
        msg = (b"From: level%d@example.jp\r\nTo: soumu@city.example.jp\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: message/rfc822\r\n\r\n" % (i, i)) + msg
    return msg


class LimitTests(MukaikaCase):

    def test_200_parts_within_default_limit(self):
        path = self.write("many-parts.eml", many_part_mail(200))
        t0 = time.monotonic()
        run = self.sanitize([path])
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(run.rc, 0, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        mail = self.output_mail(item, path)
        self.assertEqual(len(mail.names), 199)
        self.assertEqual(mail.names[0], "file-001.txt")
        self.assertEqual(mail.attachment("file-199.txt")[0], b"attachment 199")

    def test_200_parts_over_a_lower_limit_is_blocked(self):
        cfg = self.write_config('[limits]\nmax_parts = 50\n[antivirus]\ndatabase = "%s"\n' % SIGNATURES, "parts.toml")
        path = self.write("many-parts.eml", many_part_mail(200))
        run = self.sanitize([path], config=cfg)
        self.assertEqual(run.rc, 1, run.describe())
        item = run.item(path)
        self.assertEqual(item["verdict"], "blocked")
        self.assertIn("limits.parts", self.codes(item, "block"))
        self.assertEqual(run.output_files(), [])

    def assert_blocked_for_depth(self, item, allow_scanner_limit):
        self.assertEqual(item["verdict"], "blocked", "nesting beyond max_depth = 8 must block")
        codes = self.codes(item, "block")
        ok = [c for c in codes if c.startswith("limits.")]
        if allow_scanner_limit:
            # ClamAV's own recursion limit (antivirus.max_recursion = 16) may
            # stop first: blocked as "could not scan completely".
            ok += [a["code"] for a in item["actions"] if a["code"] == "av.error" and "Limits" in a["reason"]]
        self.assertTrue(ok, item)

    def test_20_levels_of_multipart(self):
        path = self.write("deep-multipart.eml", deep_multipart_mail(20))
        t0 = time.monotonic()
        run = self.sanitize([path])
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(run.rc, 1, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        self.assert_blocked_for_depth(item, allow_scanner_limit=True)
        self.assertEqual(run.output_files(), [])

    def test_20_levels_of_message_rfc822(self):
        path = self.write("deep-rfc822.eml", deep_rfc822_mail(20))
        run = self.sanitize([path])
        self.assertEqual(run.rc, 1, run.describe())
        item = run.item(path)
        self.check_report_item(run, item, path)
        self.assert_blocked_for_depth(item, allow_scanner_limit=True)

    def test_12_levels_are_blocked_by_mukaika_depth_limit(self):
        # Deeper than max_depth but within ClamAV's recursion limit: the
        # reason must be mukaika's own limits.depth.
        for maker in (deep_multipart_mail, deep_rfc822_mail):
            with self.subTest(kind=maker.__name__):
                path = self.write(maker.__name__ + "-12.eml", maker(12))
                run = self.sanitize([path])
                self.assertEqual(run.rc, 1, run.describe())
                item = run.item(path)
                self.assertEqual(item["verdict"], "blocked")
                self.assertIn("limits.depth", self.codes(item, "block"))

    def test_max_depth_from_config(self):
        cfg = self.write_config('[limits]\nmax_depth = 2\n[antivirus]\ndatabase = "%s"\n' % SIGNATURES, "depth.toml")
        path = self.write("nested-3.eml", deep_rfc822_mail(3))
        run = self.sanitize([path], config=cfg)
        self.assertEqual(run.rc, 1, run.describe())
        self.assertIn("limits.depth", self.codes(run.item(path), "block"))

    def test_nesting_within_limit_is_delivered(self):
        path = self.write("nested-3.eml", deep_rfc822_mail(3))
        run = self.sanitize([path])
        self.assertEqual(run.rc, 0, run.describe())
        mail = self.output_mail(run.item(path), path)
        self.assertIn("> > > innermost body", mail.lines)


# ---------------------------------------------------------------------------
# ClamAV's test files
# ---------------------------------------------------------------------------


def clamav_testfiles():
    if not os.path.isdir(CLAMAV_TESTFILES):
        return []
    return sorted(os.path.join(CLAMAV_TESTFILES, f) for f in os.listdir(CLAMAV_TESTFILES)
                  if os.path.isfile(os.path.join(CLAMAV_TESTFILES, f)))


def wrap_as_attachment(path):
    name = os.path.basename(path)
    data = read(path)
    b64 = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    return ("From: =?UTF-8?B?5aSW6YOo?= <outside@example.com>\r\n"
            "To: soumu@city.example.jp\r\n"
            "Subject: test file %s\r\n"
            "Date: Wed, 9 Oct 2024 10:00:00 +0900\r\n"
            "Message-ID: <clamav-%s@example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"=_wrap\"\r\n\r\n"
            "--=_wrap\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            "Please see the attached file.\r\n"
            "--=_wrap\r\nContent-Type: application/octet-stream; name=\"%s\"\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s"
            "--=_wrap--\r\n" % (name, name, name, name, b64)).encode("ascii")


@unittest.skipUnless(os.path.isdir(CLAMAV_TESTFILES), CLAMAV_TESTFILES + " is missing (apt-get install clamav-testfiles)")
class ClamavTestfileTests(MukaikaCase):

    def setUp(self):
        super().setUp()
        self.files = clamav_testfiles()
        self.clam_exe = read(os.path.join(CLAMAV_TESTFILES, "clam.exe"))

    def assert_nothing_of(self, out_dir, originals):
        for fname, data in blobs_of_output(out_dir):
            self.assertNotIn(self.clam_exe, data, "clam.exe bytes in %s" % fname)
            for label, orig in originals:
                if len(orig) >= 64:
                    self.assertNotIn(orig, data, "%s bytes in %s" % (label, fname))

    def test_every_testfile_as_a_file(self):
        self.assertGreaterEqual(len(self.files), 40)
        run = self.sanitize(self.files)
        self.assertEqual(run.rc, 1, run.describe())
        table = []
        for path in self.files:
            it = run.item(path)
            with self.subTest(file=os.path.basename(path)):
                self.check_report_item(run, it, path)
                blocks = [a for a in it["actions"] if a["action"] in ("block", "remove")]
                named = it.get("virus") or next((a.get("virus") for a in blocks if a.get("virus")), "")
                table.append((os.path.basename(path), it["verdict"], it["kind"],
                              ",".join(sorted({a["code"] for a in blocks})), named))
                if it["kind"] == "mail" and it["verdict"] == "sanitized":
                    # A mail carrying the test virus is delivered without it,
                    # with the virus named (contract: infected attachment).
                    self.assertTrue(any(a["code"] == "av.infected" and a.get("virus") for a in blocks), it)
                    OutputMail(self, read(it["output"]), read(path))
                else:
                    self.assertEqual(it["verdict"], "blocked", it)
                    self.assertIsNone(it["output"])
        outputs = run.output_files()
        self.assertEqual(sorted(outputs), sorted(os.path.basename(it["output"]) for it in run.items() if it["output"]))
        self.assert_nothing_of(run.out_dir, [(os.path.basename(p), read(p)) for p in self.files])
        print_table("ClamAV test files sanitized as files", ("file", "verdict", "kind", "codes", "virus"), table)

    def test_every_testfile_as_an_attachment(self):
        mails = [self.write(os.path.basename(p) + ".eml", wrap_as_attachment(p)) for p in self.files]
        run = self.sanitize(mails)
        self.assertIn(run.rc, (0, 1), run.describe())
        table = []
        for src, path in zip(self.files, mails):
            name = os.path.basename(src)
            mail_name = os.path.basename(path)
            it = run.item(path)
            with self.subTest(file=name):
                self.check_report_item(run, it, path)
                att_path = mail_name + "/" + name
                att = [a for a in it["actions"] if a["path"] == att_path]
                inner = [a for a in it["actions"] if a["path"].startswith(att_path + "/")]
                if not att:
                    # The whole mail may be stopped before it is opened (the
                    # scanner could not finish): nothing is delivered.
                    self.assertEqual(it["verdict"], "blocked", it)
                    top = self.action_at(it, mail_name)
                    self.assertEqual(top["action"], "block")
                    table.append((name, it["verdict"], "-", top["code"], it.get("virus", ""), "whole mail blocked"))
                    continue
                a = att[-1]
                if a["action"] == "convert":
                    # A mail attached as a file is rebuilt like any mail: the
                    # infected part inside must be named and blocked.
                    self.assertEqual(a["code"], "mail.rebuilt", a)
                    named = [x for x in inner if x["action"] == "block" and x.get("virus")]
                    self.assertTrue(named, "rebuilt %s without naming the virus inside: %r" % (name, inner))
                    how = "rebuilt; inner part named by scanner"
                    virus = named[0]["virus"]
                else:
                    self.assertIn(a["action"], ("block", "remove"), a)
                    how = "named by scanner" if a.get("virus") else "removed by policy"
                    virus = a.get("virus", "")
                table.append((name, it["verdict"], a["action"], a["code"], virus, how))
                if it["verdict"] != "blocked":
                    mail = self.output_mail(it, path)
                    if a["action"] == "convert":
                        self.assertEqual(mail.names, [name])
                        OutputMail(self, mail.attachments[0][1], read(src))
                        with self.subTest(check="message/rfc822 encoding"):
                            mail.assert_rfc822_attachments_readable(self)
                    else:
                        self.assertEqual(mail.names, [], "the attachment survived")
                    self.assertIn("Please see the attached file.", mail.lines)
        self.assert_nothing_of(run.out_dir, [(os.path.basename(p), read(p)) for p in self.files])
        print_table("ClamAV test files attached to a mail", ("file", "mail", "action", "code", "virus", "how"), table)


def print_table(title, header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    out = ["", "== " + title + " =="]
    for r in [header] + rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print("\n".join(out), file=sys.stderr)


# ---------------------------------------------------------------------------
# Corpus sweep
# ---------------------------------------------------------------------------


def corpus_files():
    out = []
    for root, dirs, files in os.walk(CORPUS):
        dirs.sort()
        for f in sorted(files):
            if root == CORPUS and f in ("README.md", "SHA256SUMS"):
                continue
            out.append(os.path.join(root, f))
    return out


@unittest.skipUnless(os.path.isdir(CORPUS), CORPUS + " is missing")
class CorpusTests(MukaikaCase):

    def test_sweep(self):
        files = corpus_files()
        self.assertGreater(len(files), 0)
        run = self.sanitize(files, timeout=300)
        self.assertIn(run.rc, (0, 1), run.describe())
        self.assertEqual(len(run.items()), len(files))
        for path in files:
            it = run.item(path)
            rel = os.path.relpath(path, CORPUS)
            with self.subTest(file=rel):
                self.check_report_item(run, it, path)
                if it["verdict"] == "blocked":
                    continue
                data = read(it["output"])
                if it["kind"] == "empty":
                    self.assertEqual(data, b"", "a non-empty output for an empty input")
                    continue
                self.assertIn(it["kind"], ("text", "mail", "office", "opendocument", "rtf", "pdf", "image", "archive"),
                              "delivered kind %s" % it["kind"])
                if it["kind"] == "mail":
                    mail = OutputMail(self, data, read(path))
                    for n, payload, part in mail.attachments:
                        ctype = part.get_content_type()
                        if ctype == "message/rfc822":
                            self.assertIn(b"X-Mukaika-Sanitized:", payload, "attached mail %r not rebuilt" % n)
                            with self.subTest(check="message/rfc822 encoding"):
                                mail.assert_rfc822_attachments_readable(self)
                        else:
                            self.assertNotIn(ctype, ("application/octet-stream", "text/html", "image/svg+xml"),
                                             "attachment %r delivered as %s" % (n, ctype))
                            assert_inert_file(self, "%s/%s" % (rel, n), n, payload)
                else:
                    assert_inert_file(self, rel, it["output"], data)

    def test_report_conventions(self):
        files = corpus_files()
        run = self.sanitize(files, timeout=300)
        for path in files:
            with self.subTest(file=os.path.relpath(path, CORPUS)):
                self.check_report_conventions(run.item(path), path)

    def test_mail_bodies_are_never_removed_as_files(self):
        # A text/plain or text/html body is the message; it is converted or,
        # if infected, blocks the mail - never silently removed by file policy.
        files = [f for f in corpus_files() if f.endswith(".eml")]
        if not files:
            self.skipTest("no .eml in the corpus")
        run = self.sanitize(files)
        for path in files:
            it = run.item(path)
            with self.subTest(file=os.path.relpath(path, CORPUS)):
                for a in it["actions"]:
                    if re.search(r"/body(-\d+)?$", a["path"]):
                        self.assertNotEqual(a["action"], "remove", a)

    def test_encrypted_office_is_blocked_as_encrypted(self):
        folder = os.path.join(CORPUS, "oletools", "encrypted")
        if not os.path.isdir(folder):
            self.skipTest("no oletools/encrypted")
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        run = self.sanitize(files)
        self.assertEqual(run.rc, 1, run.describe())
        for path in files:
            it = run.item(path)
            with self.subTest(file=os.path.basename(path)):
                self.assertEqual(it["verdict"], "blocked")
                self.assertIn("policy.encrypted", self.codes(it, "block"),
                              "kind %s, codes %s" % (it["kind"], self.codes(it)))
        # Attached to a mail: blocked (not merely removed), the mail delivered.
        src = os.path.join(folder, "encrypted.docx")
        mail_path = self.write("encrypted-docx.eml", wrap_as_attachment(src))
        run2 = self.sanitize([mail_path])
        self.assertEqual(run2.rc, 0, run2.describe())
        a = self.action_at(run2.item(mail_path), "encrypted-docx.eml/encrypted.docx")
        self.assertEqual((a["action"], a["code"]), ("block", "policy.encrypted"))


# ---------------------------------------------------------------------------


def main():
    argv = [sys.argv[0]] + sys.argv[1:]
    if not BIN or not os.access(BIN, os.X_OK):
        print("MUKAIKA_BIN must name the mukaika binary (is %r)" % BIN, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    result = prog.result
    print("e2e: %d tests, %d failures, %d errors, %d skipped in %.1f s"
          % (result.testsRun, len(result.failures), len(result.errors), len(result.skipped), time.monotonic() - t0),
          file=sys.stderr)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        return 77  # all skipped: ctest SKIP_RETURN_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
