// Page encoding choice; see page_encoder.h.
//
// "Photographic" is measured, not guessed from the PDF: a pixel is "tone"
// when it differs from its left neighbour by a small, non-zero step. Photos
// and scans are full of such steps; text, even anti-aliased, and line art
// are flat areas with a few sharp edges. Counted per 32x32 block (5 mm at
// 150 dpi): a block is photographic when over a fifth of it is tone. Text
// blocks stay under 10 % even with dense small Japanese text; photo blocks
// measure 30-50 %. Connected photographic blocks make a photo region.
// The thresholds were set on the benchmark pages and the exefilter/strelka
// corpus PDFs.
#include "pdf_rasterize/page_encoder.h"

#include "c_handle.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <libdeflate.h>
#include <turbojpeg.h>

namespace mukaika {
namespace {

constexpr int kToneStep = 24;          // largest neighbour step that counts as "smooth"
constexpr int kColorTolerance = 6;     // channel spread below this is gray (JPEG chroma noise)
constexpr int kColorPixels = 16;       // fewer coloured pixels than this: noise, not colour
constexpr int kFineStep = 3;           // neighbour steps this small: a flat or slowly changing area
constexpr double kAreaShare = 1.0 / 2000;  // a level "covers an area" above this share of the page
constexpr int kGradientLevels = 8;     // this many area levels: a gradient
constexpr int kBlock = 32;             // photo detection block, pixels
constexpr double kPhotoBlock = 0.2;    // tone share that makes a block photographic
constexpr double kMinRegion = 0.01;    // smaller photo regions (icons) stay in the lossless page
constexpr double kWholePage = 0.6;     // photo regions covering more: the page is a photo or scan
constexpr std::size_t kMaxRegions = 16;

// 8 bits to 4, rounding; 0 and 255 stay exact (PDF decodes n to n*17).
unsigned to4(unsigned v) { return (v * 15 + 127) / 255; }

using TjHandle = Handle<void, tjDestroy>;
using TjBuffer = Handle<unsigned char, tjFree>;

// cairo's RGB24 in memory: B G R X on little-endian machines.
constexpr int kPixelFormat = std::endian::native == std::endian::little ? TJPF_BGRX : TJPF_XRGB;

std::string jpeg(const unsigned char* pixels, int width, int pitch, int height, int format, int quality) {
  TjHandle tj(tjInitCompress());
  if (!tj) throw std::runtime_error("JPEG encoder could not start");
  unsigned char* raw = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj.get(), pixels, width, pitch, height, format, &raw, &size,
                             format == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
  TjBuffer buffer(raw);
  if (rc != 0) throw std::runtime_error(std::string("JPEG encoding failed: ") + tjGetErrorStr2(tj.get()));
  return std::string(reinterpret_cast<const char*>(buffer.get()), size);
}

// cairo's RGB24 rows (B G R X in memory) as packed R G B.
void to_rgb(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h,
            std::vector<unsigned char>& rgb) {
  rgb.resize(w * h * 3);
  for (std::size_t y = 0; y < h; ++y) {
    const auto* in = reinterpret_cast<const std::uint32_t*>(xrgb + y * stride);
    unsigned char* o = rgb.data() + y * w * 3;
    for (std::size_t x = 0; x < w; ++x) {
      o[3 * x] = static_cast<unsigned char>(in[x] >> 16);
      o[3 * x + 1] = static_cast<unsigned char>(in[x] >> 8);
      o[3 * x + 2] = static_cast<unsigned char>(in[x]);
    }
  }
}

}  // namespace

struct PageEncoder::Deflater {
  libdeflate_compressor* c;
  explicit Deflater(int level) : c(libdeflate_alloc_compressor(level)) {
    if (!c) throw std::runtime_error("libdeflate: cannot allocate a compressor");
  }
  ~Deflater() { libdeflate_free_compressor(c); }
};

PageEncoder::PageEncoder(const PageEncoding& encoding)
    : encoding_(encoding), deflater_(std::make_unique<Deflater>(encoding.flate_level)) {}

PageEncoder::~PageEncoder() = default;

std::string PageEncoder::deflate(const unsigned char* data, std::size_t size) {
  // The bound is allocated but only touched as far as written.
  std::string out(libdeflate_zlib_compress_bound(deflater_->c, size), '\0');
  const std::size_t n = libdeflate_zlib_compress(deflater_->c, data, size, out.data(), out.size());
  if (n == 0) throw std::runtime_error("deflate failed");
  out.resize(n);
  return out;
}

// One pass: gray plane, colour, black/white, tone and gradient measures,
// per-block tone and colour counts.
void PageEncoder::analyze(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h) {
  analysis_ = {};
  plane_.resize(w * h);
  blocks_x_ = (w + kBlock - 1) / kBlock;
  blocks_y_ = (h + kBlock - 1) / kBlock;
  block_tone_.assign(blocks_x_ * blocks_y_, 0);
  block_color_.assign(blocks_x_ * blocks_y_, 0);
  std::uint64_t tone = 0;
  colored_ = 0;
  std::array<std::uint32_t, 256> smooth{};  // levels of pixels in flat or slowly changing areas
  bool bilevel = true;
  for (std::size_t y = 0; y < h; ++y) {
    const auto* in = reinterpret_cast<const std::uint32_t*>(xrgb + y * stride);
    unsigned char* g = plane_.data() + y * w;
    const unsigned char* up = y > 0 ? g - w : nullptr;
    std::uint16_t* tone_row = block_tone_.data() + (y / kBlock) * blocks_x_;
    std::uint16_t* color_row = block_color_.data() + (y / kBlock) * blocks_x_;
    // The first pixel of a row has no left neighbour: it only sets `left`.
    std::uint32_t previous = 0xFFFFFFFFu;  // no pixel has this value (the top byte is masked off)
    int left = -1;
    bool left_colored = false;
    for (std::size_t x = 0; x < w; ++x) {
      const std::uint32_t px = in[x] & 0xFFFFFFu;
      int v;
      if (px == previous) {
        // A run of one colour (mostly white paper): no step to the left,
        // the same gray and colour as the left neighbour. Handled a run at
        // a time: this loop is most of the encoder's time on text pages.
        std::size_t end = x + 1;
        while (end < w && (in[end] & 0xFFFFFFu) == previous) ++end;
        v = left;
        std::memset(g + x, v, end - x);
        if (left_colored) {
          colored_ += end - x;
          for (std::size_t i = x; i < end; ++i) ++color_row[i / kBlock];
        }
        if (up && v != 0 && v != 255)
          for (std::size_t i = x; i < end; ++i) {
            const int vstep = v > up[i] ? v - up[i] : up[i] - v;
            if (vstep <= kFineStep) ++smooth[static_cast<std::size_t>(v)];
          }
        x = end - 1;
        continue;
      } else {
        const int r = static_cast<int>(px >> 16), gr = static_cast<int>((px >> 8) & 0xFF), b = static_cast<int>(px & 0xFF);
        const int hi = std::max(r, std::max(gr, b)), lo = std::min(r, std::min(gr, b));
        left_colored = hi - lo > kColorTolerance;
        if (left_colored) {
          ++colored_;
          ++color_row[x / kBlock];
        }
        // Weights sum to 256, so an exact gray maps to itself.
        v = (r * 77 + gr * 150 + b * 29 + 128) >> 8;
        g[x] = static_cast<unsigned char>(v);
        if (v != 0 && v != 255) bilevel = false;
        if (left >= 0) {
          const int step = v > left ? v - left : left - v;
          if (step != 0 && step <= kToneStep && up) {
            ++tone;
            ++tone_row[x / kBlock];
          }
          if (step > kFineStep) {  // an edge: not part of a smooth area
            previous = px;
            left = v;
            continue;
          }
        }
        previous = px;
        left = v;
      }
      // Black and white are never "area levels"; skipping them here keeps
      // the common case (paper) free of histogram traffic.
      if (up && v != 0 && v != 255) {
        const int vstep = v > up[x] ? v - up[x] : up[x] - v;
        if (vstep <= kFineStep) ++smooth[static_cast<std::size_t>(v)];
      }
    }
  }
  const double total = static_cast<double>(w * h);
  analysis_.color = colored_ >= kColorPixels;
  analysis_.bilevel = bilevel && !analysis_.color;
  analysis_.tone_fraction = static_cast<double>(tone) / total;
  // Gray levels that cover a real area (not anti-aliasing, which is thin)
  // outside black and white: a flat tint has one or two, a gradient many.
  for (std::size_t v = 1; v < 255; ++v)
    if (smooth[v] > total * kAreaShare) ++analysis_.area_levels;
  // 16 levels are invisible on anti-aliased text, line art and flat tints,
  // but would band a gradient (a slide background): that keeps 8 bits.
  analysis_.four_bits = !analysis_.bilevel && encoding_.allow_4bit && analysis_.area_levels < kGradientLevels;
}

// Connected photographic blocks, as rectangles (overlapping ones merged).
std::vector<PageEncoder::Rect> PageEncoder::photo_regions(std::size_t w, std::size_t h) const {
  std::vector<Rect> rects;
  std::vector<char> seen(block_tone_.size(), 0);
  auto photographic = [&](std::size_t bx, std::size_t by) {
    const std::size_t bw = std::min<std::size_t>(kBlock, w - bx * kBlock), bh = std::min<std::size_t>(kBlock, h - by * kBlock);
    return block_tone_[by * blocks_x_ + bx] > kPhotoBlock * static_cast<double>(bw * bh);
  };
  std::vector<std::size_t> stack;
  for (std::size_t start = 0; start < block_tone_.size(); ++start) {
    if (seen[start] || !photographic(start % blocks_x_, start / blocks_x_)) continue;
    Rect r{static_cast<int>(blocks_x_), static_cast<int>(blocks_y_), 0, 0};  // in blocks for now
    seen[start] = 1;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      const std::size_t bx = i % blocks_x_, by = i / blocks_x_;
      r.x0 = std::min(r.x0, static_cast<int>(bx)), r.y0 = std::min(r.y0, static_cast<int>(by));
      r.x1 = std::max(r.x1, static_cast<int>(bx) + 1), r.y1 = std::max(r.y1, static_cast<int>(by) + 1);
      // 8-connected: a photo's low-detail blocks (sky) still link its parts.
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const long nx = static_cast<long>(bx) + dx, ny = static_cast<long>(by) + dy;
          if (nx < 0 || ny < 0 || nx >= static_cast<long>(blocks_x_) || ny >= static_cast<long>(blocks_y_)) continue;
          const std::size_t n = static_cast<std::size_t>(ny) * blocks_x_ + static_cast<std::size_t>(nx);
          if (!seen[n] && photographic(static_cast<std::size_t>(nx), static_cast<std::size_t>(ny))) {
            seen[n] = 1;
            stack.push_back(n);
          }
        }
    }
    rects.push_back(r);
    if (rects.size() > 4 * kMaxRegions) return {Rect{0, 0, static_cast<int>(w), static_cast<int>(h)}};  // scattered
  }
  // Merge rectangles that overlap or touch, until none do.
  for (bool merged = true; merged;) {
    merged = false;
    for (std::size_t i = 0; i < rects.size() && !merged; ++i)
      for (std::size_t j = i + 1; j < rects.size() && !merged; ++j) {
        Rect& a = rects[i];
        const Rect& b = rects[j];
        if (a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1) {
          a = {std::min(a.x0, b.x0), std::min(a.y0, b.y0), std::max(a.x1, b.x1), std::max(a.y1, b.y1)};
          rects.erase(rects.begin() + static_cast<std::ptrdiff_t>(j));
          merged = true;
        }
      }
  }
  // To pixels; drop small ones (icons, bullets stay lossless).
  std::vector<Rect> out;
  const double page = static_cast<double>(w * h);
  for (const Rect& r : rects) {
    Rect p{r.x0 * kBlock, r.y0 * kBlock, std::min(r.x1 * kBlock, static_cast<int>(w)), std::min(r.y1 * kBlock, static_cast<int>(h))};
    if (static_cast<double>(p.x1 - p.x0) * (p.y1 - p.y0) >= kMinRegion * page) out.push_back(p);
  }
  if (out.size() > kMaxRegions) return {Rect{0, 0, static_cast<int>(w), static_cast<int>(h)}};
  return out;
}

PageImage PageEncoder::encode(unsigned char* xrgb, std::size_t stride, int width, int height) {
  if (width <= 0 || height <= 0) throw std::invalid_argument("PageEncoder: empty page");
  const std::size_t w = static_cast<std::size_t>(width), h = static_cast<std::size_t>(height);
  PageImage out;
  out.width = width;
  out.height = height;

  if (encoding_.lossless_rgb) {
    analysis_ = {};
    to_rgb(xrgb, stride, w, h, plane_);
    out.color = PageImage::Color::Rgb;
    out.data = deflate(plane_.data(), plane_.size());
    return out;
  }

  analyze(xrgb, stride, w, h);
  std::vector<Rect> regions;
  if (!analysis_.bilevel) regions = photo_regions(w, h);
  std::uint64_t photo_area = 0;
  for (const Rect& r : regions) photo_area += static_cast<std::uint64_t>(r.x1 - r.x0) * static_cast<std::uint64_t>(r.y1 - r.y0);

  if (static_cast<double>(photo_area) > kWholePage * static_cast<double>(w * h) || (!encoding_.split_photos && !regions.empty())) {
    // A photograph or a scan: the whole page as one JPEG.
    analysis_.photo = true;
    out.filter = PageImage::Filter::Dct;
    if (analysis_.color) {
      out.color = PageImage::Color::Rgb;
      out.data = jpeg(xrgb, width, static_cast<int>(stride), height, kPixelFormat, encoding_.jpeg_quality);
    } else {
      out.data = jpeg(plane_.data(), width, width, height, TJPF_GRAY, encoding_.jpeg_quality);
    }
    return out;
  }
  if (regions.empty()) {
    encode_flat(xrgb, stride, w, h, out);
    return out;
  }

  // Mixed: each photo region becomes a JPEG overlay, then is painted white
  // and the rest is encoded losslessly.
  for (const Rect& r : regions) {
    PageOverlay overlay;
    overlay.x = r.x0, overlay.y = r.y0, overlay.width = r.x1 - r.x0, overlay.height = r.y1 - r.y0;
    std::uint64_t colored = 0;
    for (int by = r.y0 / kBlock; by < (r.y1 + kBlock - 1) / kBlock; ++by)
      for (int bx = r.x0 / kBlock; bx < (r.x1 + kBlock - 1) / kBlock; ++bx)
        colored += block_color_[static_cast<std::size_t>(by) * blocks_x_ + static_cast<std::size_t>(bx)];
    if (colored >= kColorPixels) {
      overlay.color = PageOverlay::Color::Rgb;
      overlay.data = jpeg(xrgb + static_cast<std::size_t>(r.y0) * stride + static_cast<std::size_t>(r.x0) * 4,
                          overlay.width, static_cast<int>(stride), overlay.height, kPixelFormat, encoding_.jpeg_quality);
    } else {
      overlay.data = jpeg(plane_.data() + static_cast<std::size_t>(r.y0) * w + static_cast<std::size_t>(r.x0),
                          overlay.width, width, overlay.height, TJPF_GRAY, encoding_.jpeg_quality);
    }
    out.overlays.push_back(std::move(overlay));
  }
  for (const Rect& r : regions)
    for (int y = r.y0; y < r.y1; ++y) {
      auto* row = reinterpret_cast<std::uint32_t*>(xrgb + static_cast<std::size_t>(y) * stride);
      std::fill(row + r.x0, row + r.x1, 0x00FFFFFFu);
    }
  const PageAnalysis whole = analysis_;
  analyze(xrgb, stride, w, h);  // the rest, without the photographs
  encode_flat(xrgb, stride, w, h, out);
  analysis_.tone_fraction = whole.tone_fraction;
  analysis_.photo_regions = static_cast<int>(regions.size());
  return out;
}

// Coloured text and line art rarely use more than a few dozen colours once
// each channel has 16 levels: a palette of at most 256 is then half the size
// of packed RGB. Returns false when there are more colours.
bool PageEncoder::indexed(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h,
                          PageImage& out) {
  std::array<std::int16_t, 4096> slot;
  slot.fill(-1);
  std::string palette;
  plane_.resize(w * h);
  for (std::size_t y = 0; y < h; ++y) {
    const auto* in = reinterpret_cast<const std::uint32_t*>(xrgb + y * stride);
    unsigned char* o = plane_.data() + y * w;
    std::uint32_t previous = 0xFFFFFFFFu;
    unsigned char index = 0;
    for (std::size_t x = 0; x < w; ++x) {
      const std::uint32_t px = in[x] & 0xFFFFFFu;
      if (px != previous) {  // runs of one colour reuse the index
        previous = px;
        const unsigned r = to4(px >> 16), g = to4((px >> 8) & 0xFF), b = to4(px & 0xFF);
        std::int16_t& s = slot[(r << 8) | (g << 4) | b];
        if (s < 0) {
          if (palette.size() == 256 * 3) return false;
          s = static_cast<std::int16_t>(palette.size() / 3);
          for (unsigned c : {r, g, b}) palette += static_cast<char>(c * 17);
        }
        index = static_cast<unsigned char>(s);
      }
      o[x] = index;
    }
  }
  out.color = PageImage::Color::Indexed;
  out.palette = std::move(palette);
  if (out.palette.size() <= 16 * 3) {
    const std::size_t row_bytes = (w + 1) / 2;
    std::vector<unsigned char> nibbles(row_bytes * h, 0);
    for (std::size_t y = 0; y < h; ++y) {
      const unsigned char* in = plane_.data() + y * w;
      unsigned char* o = nibbles.data() + y * row_bytes;
      for (std::size_t x = 0; x < w; ++x) o[x >> 1] = static_cast<unsigned char>(o[x >> 1] | (in[x] << ((x & 1) ? 0 : 4)));
    }
    out.bits = 4;
    out.data = deflate(nibbles.data(), nibbles.size());
  } else {
    out.bits = 8;
    out.data = deflate(plane_.data(), w * h);
  }
  return true;
}

// Lossless (Flate) encodings; analyze() must have run on these pixels.
void PageEncoder::encode_flat(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h,
                              PageImage& out) {
  if (analysis_.bilevel) {
    // 1 bit a pixel, rows padded to a byte; in DeviceGray 1 is white.
    const std::size_t row_bytes = (w + 7) / 8;
    std::vector<unsigned char> bits(row_bytes * h, 0);
    for (std::size_t y = 0; y < h; ++y) {
      const unsigned char* g = plane_.data() + y * w;
      unsigned char* o = bits.data() + y * row_bytes;
      for (std::size_t x = 0; x < w; ++x)
        if (g[x]) o[x >> 3] = static_cast<unsigned char>(o[x >> 3] | (0x80 >> (x & 7)));
    }
    out.bits = 1;
    out.data = deflate(bits.data(), bits.size());
    return;
  }
  if (!analysis_.color && analysis_.four_bits) {
    const std::size_t row_bytes = (w + 1) / 2;
    std::vector<unsigned char> nibbles(row_bytes * h, 0);
    for (std::size_t y = 0; y < h; ++y) {
      const unsigned char* g = plane_.data() + y * w;
      unsigned char* o = nibbles.data() + y * row_bytes;
      for (std::size_t x = 0; x < w; ++x) o[x >> 1] = static_cast<unsigned char>(o[x >> 1] | (to4(g[x]) << ((x & 1) ? 0 : 4)));
    }
    out.bits = 4;
    out.data = deflate(nibbles.data(), nibbles.size());
    return;
  }
  if (!analysis_.color) {
    out.data = deflate(plane_.data(), w * h);
    return;
  }
  out.color = PageImage::Color::Rgb;
  if (analysis_.four_bits && indexed(xrgb, stride, w, h, out)) return;
  if (analysis_.four_bits) {
    // Three samples of 4 bits a pixel, packed across byte boundaries.
    const std::size_t row_bytes = (w * 3 + 1) / 2;
    std::vector<unsigned char> nibbles(row_bytes * h, 0);
    for (std::size_t y = 0; y < h; ++y) {
      const auto* in = reinterpret_cast<const std::uint32_t*>(xrgb + y * stride);
      unsigned char* o = nibbles.data() + y * row_bytes;
      std::size_t n = 0;
      for (std::size_t x = 0; x < w; ++x)
        for (int shift : {16, 8, 0}) {
          o[n >> 1] = static_cast<unsigned char>(o[n >> 1] | (to4((in[x] >> shift) & 0xFF) << ((n & 1) ? 0 : 4)));
          ++n;
        }
    }
    out.bits = 4;
    out.data = deflate(nibbles.data(), nibbles.size());
    return;
  }
  to_rgb(xrgb, stride, w, h, plane_);
  out.data = deflate(plane_.data(), plane_.size());
}

}  // namespace mukaika
