// Image decoders and the SVG renderer; see image_codecs.h.
//
// Library choices, and why:
// - PNG: libpng's simplified API, JPEG: TurboJPEG. Both return errors; the
//   classic APIs longjmp, which skips C++ destructors.
// - GIF: giflib, record by record, so only the first frame is decoded (a
//   thousand-frame GIF costs one frame).
// - TIFF: libtiff from memory, with per-open error handlers (no stderr) and
//   a cap on any single allocation.
// - WebP: libwebp; animations through the demuxer, first frame only.
// - BMP: a small decoder here. The only Debian alternative is gdk-pixbuf,
//   whose BMP loader has a long CVE history; BMP is simple enough to read
//   with every offset checked.
// - SVG: librsvg (Rust since 2.4x, no scripting, no network).
#include "image_reencode/image_codecs.h"

#include "c_handle.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <cairo.h>
#include <gif_lib.h>
#include <librsvg/rsvg.h>
#include <png.h>
#include <tiffio.h>
#include <turbojpeg.h>
#include <webp/decode.h>
#include <webp/demux.h>

namespace mukaika {
namespace {

std::string fmt_size(std::uint64_t w, std::uint64_t h) { return std::to_string(w) + "×" + std::to_string(h); }

[[noreturn]] void broken(std::string_view format, const std::string& detail) {
  const std::string f(format);
  throw ImageRejected({"image.broken", f + " 画像が壊れていて読めないため遮断しました (" + detail + ")",
                       "blocked: the " + f + " image is broken and cannot be decoded (" + detail + ")"});
}

[[noreturn]] void unsupported(std::string_view format, const std::string& detail) {
  const std::string f(format);
  throw ImageRejected({"image.unsupported", f + " 画像のこの形式 (" + detail + ") には対応していないため削除しました",
                       "removed: this kind of " + f + " image (" + detail + ") is not supported"},
                      false);
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t le32(const unsigned char* p) {
  return (std::uint32_t{p[3]} << 24) | (std::uint32_t{p[2]} << 16) | (std::uint32_t{p[1]} << 8) | p[0];
}
std::uint16_t le16(const unsigned char* p) { return static_cast<std::uint16_t>((p[1] << 8) | p[0]); }

const unsigned char* ubytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// ---- EXIF orientation ----

// The Orientation tag (1-8) of an EXIF block ("Exif\0\0" + TIFF), or 1.
int exif_orientation(std::string_view exif) {
  if (exif.size() < 14 || exif.substr(0, 6) != std::string_view("Exif\0\0", 6)) return 1;
  std::string_view tiff = exif.substr(6);
  const unsigned char* t = ubytes(tiff);
  bool little;
  if (tiff.substr(0, 4) == std::string_view("II*\0", 4))
    little = true;
  else if (tiff.substr(0, 4) == std::string_view("MM\0*", 4))
    little = false;
  else
    return 1;
  auto u16 = [&](std::size_t off) { return little ? le16(t + off) : be16(t + off); };
  auto u32 = [&](std::size_t off) { return little ? le32(t + off) : be32(t + off); };
  const std::uint64_t ifd = u32(4);
  if (ifd + 2 > tiff.size()) return 1;
  const unsigned entries = u16(static_cast<std::size_t>(ifd));
  for (unsigned i = 0; i < entries; ++i) {
    const std::uint64_t e = ifd + 2 + 12ull * i;
    if (e + 12 > tiff.size()) return 1;
    if (u16(static_cast<std::size_t>(e)) == 0x0112 && u16(static_cast<std::size_t>(e + 2)) == 3) {
      const int v = u16(static_cast<std::size_t>(e + 8));
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

// Applies an EXIF orientation so the pixels look as a viewer would have
// shown them; the tag itself does not survive re-encoding.
Pixmap apply_orientation(const Pixmap& in, int orientation) {
  if (orientation <= 1 || orientation > 8) return in;
  const bool swap = orientation >= 5;
  const int w = in.width(), h = in.height(), c = in.channels();
  Pixmap out(swap ? h : w, swap ? w : h, in.format());
  for (int y = 0; y < h; ++y) {
    const unsigned char* src = in.row(y);
    for (int x = 0; x < w; ++x) {
      int ox = x, oy = y;
      switch (orientation) {
        case 2: ox = w - 1 - x; break;                  // mirrored
        case 3: ox = w - 1 - x; oy = h - 1 - y; break;  // upside down
        case 4: oy = h - 1 - y; break;
        case 5: ox = y; oy = x; break;                  // transposed
        case 6: ox = h - 1 - y; oy = x; break;          // rotate 90 clockwise
        case 7: ox = h - 1 - y; oy = w - 1 - x; break;
        case 8: ox = y; oy = w - 1 - x; break;          // rotate 90 counter-clockwise
        default: break;
      }
      std::memcpy(out.row(oy) + static_cast<std::size_t>(ox) * c, src + static_cast<std::size_t>(x) * c,
                  static_cast<std::size_t>(c));
    }
  }
  return out;
}

// ---- where a file really ends (for the polyglot note) ----

// End of the IEND chunk, or 0 when the chunk walk fails.
std::size_t png_end(std::string_view b) {
  std::size_t pos = 8;
  while (pos + 12 <= b.size()) {
    const std::uint64_t len = be32(ubytes(b) + pos);
    const std::string_view type = b.substr(pos + 4, 4);
    const std::uint64_t next = pos + 12 + len;
    if (next > b.size()) return 0;
    if (type == "IEND") return static_cast<std::size_t>(next);
    pos = static_cast<std::size_t>(next);
  }
  return 0;
}

// Walks JPEG segments and entropy-coded data to the EOI marker; also picks
// up the EXIF orientation. Returns the end offset, or 0 when it gets lost.
std::size_t jpeg_end(std::string_view b, int& orientation) {
  const unsigned char* p = ubytes(b);
  std::size_t pos = 2;
  while (pos + 4 <= b.size()) {
    if (p[pos] != 0xFF) return 0;
    const unsigned char marker = p[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return pos + 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    const std::size_t len = be16(p + pos + 2);
    if (len < 2 || pos + 2 + len > b.size()) return 0;
    if (marker == 0xE1 && orientation == 1) orientation = exif_orientation(b.substr(pos + 4, len - 2));
    pos += 2 + len;
    if (marker == 0xDA) {  // entropy-coded data runs to the next real marker
      while (pos + 1 < b.size()) {
        if (p[pos] == 0xFF && p[pos + 1] != 0x00 && !(p[pos + 1] >= 0xD0 && p[pos + 1] <= 0xD7)) break;
        ++pos;
      }
    }
  }
  return 0;
}

// ---- RAII for the C libraries ----

using TjHandle = Handle<void, tjDestroy>;

struct PngImageGuard {
  png_image* image;
  ~PngImageGuard() { png_image_free(image); }
};

struct GifCloser {
  void operator()(GifFileType* g) const {
    int error = 0;
    DGifCloseFile(g, &error);
  }
};
using GifPtr = std::unique_ptr<GifFileType, GifCloser>;

using TiffPtr = Handle<TIFF, TIFFClose>;
using TiffOptionsPtr = Handle<TIFFOpenOptions, TIFFOpenOptionsFree>;
using WebPAnimPtr = Handle<WebPAnimDecoder, WebPAnimDecoderDelete>;

template <typename T>
using GPtr = Handle<T, g_object_unref>;
using GErrorPtr = Handle<GError, g_error_free>;
using SurfacePtr = Handle<cairo_surface_t, cairo_surface_destroy>;
using CairoPtr = Handle<cairo_t, cairo_destroy>;

// Reading position over the input, for giflib and libtiff callbacks.
struct MemoryReader {
  std::string_view data;
  std::uint64_t pos = 0;
};

int gif_read(GifFileType* gif, GifByteType* out, int len) {
  auto* r = static_cast<MemoryReader*>(gif->UserData);
  if (len <= 0) return 0;
  const std::uint64_t n = std::min<std::uint64_t>(static_cast<std::uint64_t>(len), r->data.size() - r->pos);
  std::memcpy(out, r->data.data() + r->pos, n);
  r->pos += n;
  return static_cast<int>(n);
}

tmsize_t tiff_read(thandle_t h, void* buf, tmsize_t size) {
  auto* r = static_cast<MemoryReader*>(h);
  if (size <= 0 || r->pos >= r->data.size()) return 0;
  const std::uint64_t n = std::min<std::uint64_t>(static_cast<std::uint64_t>(size), r->data.size() - r->pos);
  std::memcpy(buf, r->data.data() + r->pos, n);
  r->pos += n;
  return static_cast<tmsize_t>(n);
}
tmsize_t tiff_write(thandle_t, void*, tmsize_t) { return -1; }
toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
  auto* r = static_cast<MemoryReader*>(h);
  std::uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? r->pos : r->data.size();
  if (off > std::numeric_limits<std::uint64_t>::max() - base) return static_cast<toff_t>(-1);
  r->pos = base + off;  // beyond the end is allowed; reads there return 0
  return r->pos;
}
int tiff_close(thandle_t) { return 0; }
toff_t tiff_size(thandle_t h) { return static_cast<MemoryReader*>(h)->data.size(); }
int tiff_map(thandle_t, void**, toff_t*) { return 0; }
void tiff_unmap(thandle_t, void*, toff_t) {}

// libtiff's messages go to the first error we keep, never to stderr.
int tiff_message(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  auto* first = static_cast<std::string*>(user);
  if (first && first->empty()) {
    char buf[256];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    *first = std::string(module ? module : "libtiff") + ": " + buf;
  }
  return 1;  // handled
}
int tiff_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }

}  // namespace

std::string_view to_string(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Gif: return "GIF";
    case ImageFormat::Bmp: return "BMP";
    case ImageFormat::Tiff: return "TIFF";
    case ImageFormat::Webp: return "WebP";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat sniff_image_format(std::string_view b) {
  auto starts = [&](std::string_view magic) { return b.substr(0, magic.size()) == magic; };
  if (starts("\x89PNG\r\n\x1a\n")) return ImageFormat::Png;
  if (starts("\xFF\xD8\xFF")) return ImageFormat::Jpeg;
  if (starts("GIF87a") || starts("GIF89a")) return ImageFormat::Gif;
  if (starts("BM") && b.size() >= 26) return ImageFormat::Bmp;
  if (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4)) ||
      starts(std::string_view("II+\0", 4)) || starts(std::string_view("MM\0+", 4)))
    return ImageFormat::Tiff;
  if (b.size() >= 12 && starts("RIFF") && b.substr(8, 4) == "WEBP") return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

ImageRejected::ImageRejected(Reason reason, bool block)
    : std::runtime_error(reason.en), reason_(std::move(reason)), block_(block) {}

void check_pixel_limit(std::uint64_t width, std::uint64_t height, std::uint64_t max_pixels, std::string_view what) {
  if (width == 0 || height == 0) broken(what, "size " + fmt_size(width, height));
  if (width > (1u << 30) || height > (1u << 30) || width * height > max_pixels) {
    const std::string w(what);
    throw ImageRejected({"image.pixels",
                         w + " 画像の大きさ (" + fmt_size(width, height) + " ピクセル) が上限 (" +
                             std::to_string(max_pixels) + " ピクセル) を超えるため遮断しました",
                         "blocked: the " + w + " image is " + fmt_size(width, height) + " pixels, over the limit of " +
                             std::to_string(max_pixels) + " pixels"});
  }
}

Pixmap decode_image(std::string_view bytes, ImageFormat format, std::uint64_t max_pixels, DecodeInfo& info) {
  switch (format) {
    case ImageFormat::Png: return decode_png(bytes, max_pixels, info);
    case ImageFormat::Jpeg: return decode_jpeg(bytes, max_pixels, info);
    case ImageFormat::Gif: return decode_gif(bytes, max_pixels, info);
    case ImageFormat::Bmp: return decode_bmp(bytes, max_pixels, info);
    case ImageFormat::Tiff: return decode_tiff(bytes, max_pixels, info);
    case ImageFormat::Webp: return decode_webp(bytes, max_pixels, info);
    case ImageFormat::Unknown: break;
  }
  unsupported("unknown", "not PNG, JPEG, GIF, BMP, TIFF or WebP");
}

// ---- PNG ----

Pixmap decode_png(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info) {
  // The IHDR size is checked before libpng sees the data: libpng's own
  // limit (1,000,000 columns) is far above any pixel budget.
  if (bytes.size() < 33 || bytes.substr(12, 4) != "IHDR") broken("PNG", "no IHDR chunk");
  check_pixel_limit(be32(ubytes(bytes) + 16), be32(ubytes(bytes) + 20), max_pixels, "PNG");

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  PngImageGuard guard{&image};
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) broken("PNG", image.message);
  check_pixel_limit(image.width, image.height, max_pixels, "PNG");
  const bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  PixelFormat pf = color ? (alpha ? PixelFormat::Rgba : PixelFormat::Rgb) : (alpha ? PixelFormat::GrayAlpha : PixelFormat::Gray);
  image.format = color ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  Pixmap p(static_cast<int>(image.width), static_cast<int>(image.height), pf);
  if (!png_image_finish_read(&image, nullptr, p.data(), static_cast<png_int_32>(p.stride()), nullptr))
    broken("PNG", image.message);
  const std::size_t end = png_end(bytes);
  if (end != 0 && end < bytes.size()) info.trailing_bytes = bytes.size() - end;
  return p;
}

// ---- JPEG ----

Pixmap decode_jpeg(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info) {
  TjHandle tj(tjInitDecompress());
  if (!tj) throw std::runtime_error("JPEG decoder could not start");
  const auto* data = ubytes(bytes);
  const auto size = static_cast<unsigned long>(bytes.size());
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, size, &w, &h, &subsamp, &colorspace) != 0)
    broken("JPEG", tjGetErrorStr2(tj.get()));
  check_pixel_limit(static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(h), max_pixels, "JPEG");

  const bool gray = colorspace == TJCS_GRAY;
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  Pixmap raw(w, h, gray ? PixelFormat::Gray : cmyk ? PixelFormat::Rgba : PixelFormat::Rgb);
  // LIMITSCANS refuses progressive JPEGs with an absurd number of scans,
  // which otherwise cost unbounded CPU for a small file.
  const int rc = tjDecompress2(tj.get(), data, size, raw.data(), w, static_cast<int>(raw.stride()), h,
                               gray ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_LIMITSCANS);
  // A warning (a truncated file, stray bytes) still gives pixels; what was
  // missing is gray. Those pixels are ours, so they may pass.
  if (rc != 0 && tjGetErrorCode(tj.get()) != TJERR_WARNING) broken("JPEG", tjGetErrorStr2(tj.get()));

  Pixmap p;
  if (cmyk) {
    // Adobe writes CMYK JPEGs inverted (APP14 "Adobe"); almost every CMYK
    // JPEG comes from Adobe software, so that is what we assume.
    const bool adobe = bytes.find("Adobe") != std::string_view::npos;
    p = Pixmap(w, h, PixelFormat::Rgb);
    for (int y = 0; y < h; ++y) {
      const unsigned char* in = raw.row(y);
      unsigned char* out = p.row(y);
      for (int x = 0; x < w; ++x) {
        unsigned c = in[4 * x], m = in[4 * x + 1], yy = in[4 * x + 2], k = in[4 * x + 3];
        if (!adobe) c = 255 - c, m = 255 - m, yy = 255 - yy, k = 255 - k;
        out[3 * x] = static_cast<unsigned char>(c * k / 255);
        out[3 * x + 1] = static_cast<unsigned char>(m * k / 255);
        out[3 * x + 2] = static_cast<unsigned char>(yy * k / 255);
      }
    }
  } else {
    p = std::move(raw);
  }
  int orientation = 1;
  const std::size_t end = jpeg_end(bytes, orientation);
  if (end != 0 && end < bytes.size()) info.trailing_bytes = bytes.size() - end;
  if (orientation != 1) {
    p = apply_orientation(p, orientation);
    info.orientation_applied = true;
  }
  return p;
}

// ---- GIF ----

Pixmap decode_gif(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info) {
  MemoryReader reader{bytes};
  int error = 0;
  GifPtr gif(DGifOpen(&reader, gif_read, &error));
  if (!gif) broken("GIF", GifErrorString(error) ? GifErrorString(error) : "cannot open");
  int transparent = -1;
  while (true) {
    GifRecordType type;
    if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) broken("GIF", "bad record");
    if (type == TERMINATE_RECORD_TYPE) broken("GIF", "no image in the file");
    if (type == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* ext = nullptr;
      if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) broken("GIF", "bad extension");
      if (code == GRAPHICS_EXT_FUNC_CODE && ext && ext[0] >= 4) {
        GraphicsControlBlock gcb;
        if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) transparent = gcb.TransparentColor;
      }
      while (ext) {
        if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) broken("GIF", "bad extension");
      }
      continue;
    }
    if (type != IMAGE_DESC_RECORD_TYPE) continue;
    if (DGifGetImageDesc(gif.get()) == GIF_ERROR) broken("GIF", "bad image descriptor");
    const GifImageDesc& d = gif->Image;
    const int fw = d.Width, fh = d.Height;
    // The canvas is the logical screen; a screen of 0x0 (seen in the wild)
    // means the frame's own size.
    const std::uint64_t cw = gif->SWidth > 0 ? gif->SWidth : fw, ch = gif->SHeight > 0 ? gif->SHeight : fh;
    check_pixel_limit(cw, ch, max_pixels, "GIF");
    check_pixel_limit(static_cast<std::uint64_t>(fw), static_cast<std::uint64_t>(fh), max_pixels, "GIF");
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (!map || !map->Colors || map->ColorCount <= 0) broken("GIF", "no colour table");
    std::vector<GifPixelType> indices(static_cast<std::size_t>(fw) * static_cast<std::size_t>(fh));
    if (d.Interlace) {
      static constexpr int start[] = {0, 4, 2, 1}, step[] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int y = start[pass]; y < fh; y += step[pass])
          if (DGifGetLine(gif.get(), &indices[static_cast<std::size_t>(y) * fw], fw) == GIF_ERROR)
            broken("GIF", "bad image data");
    } else {
      for (int y = 0; y < fh; ++y)
        if (DGifGetLine(gif.get(), &indices[static_cast<std::size_t>(y) * fw], fw) == GIF_ERROR)
          broken("GIF", "bad image data");
    }
    // Transparent canvas, first frame drawn at its offset (clipped).
    Pixmap p(static_cast<int>(cw), static_cast<int>(ch), PixelFormat::Rgba);
    for (int y = 0; y < fh; ++y) {
      const long cy = static_cast<long>(d.Top) + y;
      if (cy < 0 || cy >= static_cast<long>(ch)) continue;
      unsigned char* out = p.row(static_cast<int>(cy));
      for (int x = 0; x < fw; ++x) {
        const long cx = static_cast<long>(d.Left) + x;
        if (cx < 0 || cx >= static_cast<long>(cw)) continue;
        const int idx = indices[static_cast<std::size_t>(y) * fw + x];
        if (idx == transparent || idx >= map->ColorCount) continue;
        unsigned char* px = out + cx * 4;
        px[0] = map->Colors[idx].Red;
        px[1] = map->Colors[idx].Green;
        px[2] = map->Colors[idx].Blue;
        px[3] = 255;
      }
    }
    // Anything after the first frame is not decoded; say so when there is
    // another frame (a cheap look at the next record).
    GifRecordType next;
    if (DGifGetRecordType(gif.get(), &next) != GIF_ERROR && next != TERMINATE_RECORD_TYPE) info.more_frames = true;
    return p;
  }
}

// ---- BMP ----

Pixmap decode_bmp(std::string_view b, std::uint64_t max_pixels, DecodeInfo& info) {
  const unsigned char* p = ubytes(b);
  if (b.size() < 26) broken("BMP", "too short");
  const std::uint32_t pixel_offset = le32(p + 10);
  const std::uint32_t header = le32(p + 14);
  std::int64_t width = 0, height = 0;
  unsigned bpp = 0, compression = 0, colors_used = 0;
  std::uint32_t masks[4] = {0, 0, 0, 0};
  bool has_masks = false;
  std::size_t palette_at = 14 + header;
  unsigned palette_entry = 4;
  if (header == 12) {  // OS/2 BITMAPCOREHEADER
    width = le16(p + 18);
    height = le16(p + 20);
    bpp = le16(p + 24);
    palette_entry = 3;
  } else if (header >= 40 && header <= 124) {
    if (b.size() < 14 + header) broken("BMP", "truncated header");
    width = static_cast<std::int32_t>(le32(p + 18));
    height = static_cast<std::int32_t>(le32(p + 22));
    bpp = le16(p + 28);
    compression = le32(p + 30);
    colors_used = le32(p + 46);
    if (compression == 3 || compression == 6) {
      // Masks follow a 40-byte header, or are part of a larger one.
      const std::size_t at = 14 + 40;
      const unsigned count = compression == 6 || header >= 56 ? 4 : 3;
      if (b.size() < at + 4 * count) broken("BMP", "truncated masks");
      for (unsigned i = 0; i < count; ++i) masks[i] = le32(p + at + 4 * i);
      if (header == 40) palette_at += 4 * count;
      has_masks = true;
    }
  } else {
    unsupported("BMP", "header of " + std::to_string(header) + " bytes");
  }
  if (compression != 0 && compression != 3 && compression != 6)
    unsupported("BMP", "compression " + std::to_string(compression) + " (RLE, JPEG or PNG inside BMP)");
  if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
    unsupported("BMP", std::to_string(bpp) + " bits per pixel");
  const bool top_down = height < 0;
  const std::uint64_t w = static_cast<std::uint64_t>(width < 0 ? 0 : width);
  const std::uint64_t h = static_cast<std::uint64_t>(height < 0 ? -height : height);
  check_pixel_limit(w, h, max_pixels, "BMP");

  std::vector<std::array<unsigned char, 3>> palette;
  if (bpp <= 8) {
    const std::uint64_t entries = colors_used != 0 && colors_used <= (1u << bpp) ? colors_used : (1u << bpp);
    if (palette_at + entries * palette_entry > b.size()) broken("BMP", "truncated colour table");
    for (std::uint64_t i = 0; i < entries; ++i) {
      const unsigned char* e = p + palette_at + i * palette_entry;
      palette.push_back({e[2], e[1], e[0]});
    }
  }
  if (!has_masks) {
    if (bpp == 16) masks[0] = 0x7C00, masks[1] = 0x03E0, masks[2] = 0x001F;
    if (bpp == 32) masks[0] = 0x00FF0000, masks[1] = 0x0000FF00, masks[2] = 0x000000FF;
  }
  const std::uint64_t stride = ((w * bpp + 31) / 32) * 4;
  if (pixel_offset > b.size() || stride * h > b.size() - pixel_offset) broken("BMP", "pixel data truncated");

  // A mask to 8 bits: shift down to its lowest bit, scale its width to 255.
  struct Field {
    std::uint32_t mask = 0;
    int shift = 0;
    std::uint32_t max = 0;
    unsigned char get(std::uint32_t v) const {
      return max == 0 ? 0 : static_cast<unsigned char>(((v & mask) >> shift) * 255u / max);
    }
  };
  Field f[4];
  for (int i = 0; i < 4; ++i) {
    f[i].mask = masks[i];
    if (!masks[i]) continue;
    while (!((masks[i] >> f[i].shift) & 1)) ++f[i].shift;
    f[i].max = masks[i] >> f[i].shift;
  }
  const bool alpha_field = masks[3] != 0 && bpp == 32;
  Pixmap out(static_cast<int>(w), static_cast<int>(h), alpha_field ? PixelFormat::Rgba : PixelFormat::Rgb);
  bool any_alpha = false;
  for (std::uint64_t row = 0; row < h; ++row) {
    const unsigned char* src = p + pixel_offset + row * stride;
    unsigned char* dst = out.row(static_cast<int>(top_down ? row : h - 1 - row));
    const int c = out.channels();
    for (std::uint64_t x = 0; x < w; ++x) {
      unsigned char* px = dst + x * c;
      if (bpp <= 8) {
        const unsigned per_byte = 8 / bpp;
        const unsigned byte = src[x / per_byte];
        const unsigned shift = (per_byte - 1 - x % per_byte) * bpp;
        const unsigned idx = (byte >> shift) & ((1u << bpp) - 1);
        if (idx < palette.size()) std::memcpy(px, palette[idx].data(), 3);
      } else if (bpp == 24) {
        px[0] = src[3 * x + 2], px[1] = src[3 * x + 1], px[2] = src[3 * x];
      } else {
        const std::uint32_t v = bpp == 16 ? le16(src + 2 * x) : le32(src + 4 * x);
        px[0] = f[0].get(v), px[1] = f[1].get(v), px[2] = f[2].get(v);
        if (alpha_field) {
          px[3] = f[3].get(v);
          any_alpha = any_alpha || px[3] != 0;
        }
      }
    }
  }
  // Many writers leave the alpha byte zero and mean "opaque".
  if (alpha_field && !any_alpha)
    for (int y = 0; y < out.height(); ++y)
      for (int x = 0; x < out.width(); ++x) out.row(y)[4 * x + 3] = 255;
  (void)info;
  return out;
}

// ---- TIFF ----

Pixmap decode_tiff(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info) {
  MemoryReader reader{bytes};
  std::string first_error;
  TiffOptionsPtr options(TIFFOpenOptionsAlloc());
  if (!options) throw std::runtime_error("libtiff options");
  TIFFOpenOptionsSetErrorHandlerExtR(options.get(), tiff_message, &first_error);
  TIFFOpenOptionsSetWarningHandlerExtR(options.get(), tiff_warning, nullptr);
  // No single allocation beyond what the pixel budget allows (RGBA), plus
  // slack for tables; a hostile strip size cannot ask for more.
  const std::uint64_t cap = std::min<std::uint64_t>(max_pixels * 4 + (16u << 20), std::numeric_limits<tmsize_t>::max());
  TIFFOpenOptionsSetMaxSingleMemAlloc(options.get(), static_cast<tmsize_t>(cap));
  TiffPtr tif(TIFFClientOpenExt("image.tif", "rm", &reader, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                                tiff_map, tiff_unmap, options.get()));
  if (!tif) broken("TIFF", first_error.empty() ? "cannot open" : first_error);
  std::uint32_t w = 0, h = 0;
  if (!TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h))
    broken("TIFF", "no image size");
  check_pixel_limit(w, h, max_pixels, "TIFF");
  std::vector<std::uint32_t> raster(static_cast<std::size_t>(w) * h);
  char message[1024] = "";
  if (!TIFFRGBAImageOK(tif.get(), message)) unsupported("TIFF", message);
  if (!TIFFReadRGBAImageOriented(tif.get(), w, h, raster.data(), ORIENTATION_TOPLEFT, 0))
    broken("TIFF", first_error.empty() ? "cannot decode" : first_error);
  Pixmap p(static_cast<int>(w), static_cast<int>(h), PixelFormat::Rgba);
  for (std::uint32_t y = 0; y < h; ++y) {
    unsigned char* out = p.row(static_cast<int>(y));
    for (std::uint32_t x = 0; x < w; ++x) {
      const std::uint32_t v = raster[static_cast<std::size_t>(y) * w + x];
      out[4 * x] = static_cast<unsigned char>(TIFFGetR(v));
      out[4 * x + 1] = static_cast<unsigned char>(TIFFGetG(v));
      out[4 * x + 2] = static_cast<unsigned char>(TIFFGetB(v));
      out[4 * x + 3] = static_cast<unsigned char>(TIFFGetA(v));
    }
  }
  // Known limit: with associated (premultiplied) alpha, libtiff returns
  // premultiplied samples, stored here as if straight: semi-transparent
  // pixels come out a little darker. Opaque TIFFs (nearly all) are exact.
  if (TIFFReadDirectory(tif.get())) info.more_frames = true;
  return p;
}

// ---- WebP ----

Pixmap decode_webp(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info) {
  const auto* data = ubytes(bytes);
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK) broken("WebP", "bad header");
  check_pixel_limit(static_cast<std::uint64_t>(features.width), static_cast<std::uint64_t>(features.height), max_pixels,
                    "WebP");
  if (features.has_animation) {
    WebPData webp{data, bytes.size()};
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) throw std::runtime_error("libwebp version mismatch");
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPAnimPtr dec(WebPAnimDecoderNew(&webp, &options));
    if (!dec) broken("WebP", "bad animation");
    WebPAnimInfo anim;
    if (!WebPAnimDecoderGetInfo(dec.get(), &anim)) broken("WebP", "bad animation");
    check_pixel_limit(anim.canvas_width, anim.canvas_height, max_pixels, "WebP");
    std::uint8_t* frame = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(dec.get(), &frame, &timestamp) || !frame) broken("WebP", "no frame");
    Pixmap p(static_cast<int>(anim.canvas_width), static_cast<int>(anim.canvas_height), PixelFormat::Rgba);
    std::memcpy(p.data(), frame, p.size());
    info.more_frames = anim.frame_count > 1;
    return p;
  }
  Pixmap p(features.width, features.height, features.has_alpha ? PixelFormat::Rgba : PixelFormat::Rgb);
  const bool ok = features.has_alpha
                      ? WebPDecodeRGBAInto(data, bytes.size(), p.data(), p.size(), static_cast<int>(p.stride())) != nullptr
                      : WebPDecodeRGBInto(data, bytes.size(), p.data(), p.size(), static_cast<int>(p.stride())) != nullptr;
  if (!ok) broken("WebP", "cannot decode");
  return p;
}

// ---- SVG ----

Pixmap render_svg(std::string_view bytes, std::uint64_t max_pixels, int default_size) {
  GPtr<GInputStream> stream(g_memory_input_stream_new_from_data(bytes.data(), static_cast<gssize>(bytes.size()), nullptr));
  GError* raw_error = nullptr;
  // base_file = nullptr: librsvg then refuses every reference that is not a
  // data: URL (files, http, relative paths), and XInclude with them.
  GPtr<RsvgHandle> handle(
      rsvg_handle_new_from_stream_sync(stream.get(), nullptr, RSVG_HANDLE_FLAGS_NONE, nullptr, &raw_error));
  GErrorPtr error(raw_error);
  if (!handle) broken("SVG", error ? error->message : "cannot parse");

  double w = 0, h = 0;
  if (!rsvg_handle_get_intrinsic_size_in_pixels(handle.get(), &w, &h) || !(w > 0) || !(h > 0)) {
    // No absolute size: use the viewBox's aspect ratio at the default size.
    gboolean has_w, has_h, has_vb;
    RsvgLength lw, lh;
    RsvgRectangle vb;
    rsvg_handle_get_intrinsic_dimensions(handle.get(), &has_w, &lw, &has_h, &lh, &has_vb, &vb);
    const double aspect = has_vb && vb.width > 0 && vb.height > 0 ? vb.width / vb.height : 4.0 / 3.0;
    w = aspect >= 1 ? default_size : default_size * aspect;
    h = aspect >= 1 ? default_size / aspect : default_size;
  }
  if (!std::isfinite(w) || !std::isfinite(h)) broken("SVG", "size is not a number");
  // A vector image can be drawn at any size: scale down to the pixel budget
  // rather than refusing.
  const double pixels = w * h;
  if (pixels > static_cast<double>(max_pixels)) {
    const double s = std::sqrt(static_cast<double>(max_pixels) / pixels);
    w *= s;
    h *= s;
  }
  const int iw = std::max(1, static_cast<int>(std::floor(w))), ih = std::max(1, static_cast<int>(std::floor(h)));
  check_pixel_limit(static_cast<std::uint64_t>(iw), static_cast<std::uint64_t>(ih), max_pixels, "SVG");

  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, iw, ih));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) throw std::runtime_error("cairo: out of memory");
  {
    CairoPtr cr(cairo_create(surface.get()));
    RsvgRectangle viewport{0, 0, static_cast<double>(iw), static_cast<double>(ih)};
    GError* render_error = nullptr;
    const bool ok = rsvg_handle_render_document(handle.get(), cr.get(), &viewport, &render_error);
    GErrorPtr re(render_error);
    if (!ok) broken("SVG", re ? re->message : "cannot render");
  }
  cairo_surface_flush(surface.get());
  const unsigned char* data = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  Pixmap p(iw, ih, PixelFormat::Rgba);
  for (int y = 0; y < ih; ++y) {
    const auto* in = reinterpret_cast<const std::uint32_t*>(data + static_cast<std::ptrdiff_t>(y) * stride);
    unsigned char* out = p.row(y);
    for (int x = 0; x < iw; ++x) {
      const std::uint32_t v = in[x];  // premultiplied ARGB in native order
      const unsigned a = v >> 24;
      auto un = [a](unsigned c) { return static_cast<unsigned char>(a == 0 ? 0 : std::min(255u, (c * 255 + a / 2) / a)); };
      out[4 * x] = un((v >> 16) & 0xFF);
      out[4 * x + 1] = un((v >> 8) & 0xFF);
      out[4 * x + 2] = un(v & 0xFF);
      out[4 * x + 3] = static_cast<unsigned char>(a);
    }
  }
  return p;
}

}  // namespace mukaika
