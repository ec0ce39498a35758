// Picks and applies the encoding of one rendered page.
//
// Promises: from the pixels alone, a page becomes
//   - bilevel Flate (1 bit) when every pixel is pure black or white,
//   - grayscale Flate when no pixel has colour,
//   - a palette (Indexed, 4 or 8 bits) for coloured text and line art with
//     at most 256 colours at 16 levels a channel, RGB Flate beyond that,
//   - gray and RGB with 4 bits a sample for text and line art (16 levels
//     are invisible on anti-aliased edges), 8 where gradients would band,
//   - JPEG (grayscale or colour) when the page is a photograph or a scan,
// and a page with text and photographs is split: the photographs become
// JPEG images laid over a lossless page (a simple mixed raster), so text
// stays sharp and photos stay small. One encoder per thread: it keeps its
// buffers and its deflate state between pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "pdf_rasterize/pdf_writer.h"

namespace mukaika {

struct PageEncoding {
  int jpeg_quality = 80;
  int flate_level = 4;        // libdeflate 1-12 (6 is 2 % smaller and 10 % slower)
  // Every page as RGB Flate: what Dangerzone writes. Only for the
  // benchmark's baseline; never chosen by configuration.
  bool lossless_rgb = false;
  // Text and line art in 16 levels a channel (see page_encoder.cpp).
  bool allow_4bit = true;
  // Photographs on text pages as separate JPEG images.
  bool split_photos = true;
};

struct PageAnalysis {
  bool color = false;
  bool bilevel = false;
  bool photo = false;        // the whole page is encoded as JPEG
  bool four_bits = false;
  double tone_fraction = 0;  // share of pixels in smooth, photo-like gradients
  int area_levels = 0;       // gray levels covering areas: many means a gradient
  int photo_regions = 0;     // photographs encoded separately
};

class PageEncoder {
 public:
  explicit PageEncoder(const PageEncoding& encoding);
  ~PageEncoder();
  PageEncoder(const PageEncoder&) = delete;
  PageEncoder& operator=(const PageEncoder&) = delete;

  // `xrgb` is a cairo CAIRO_FORMAT_RGB24 image: 32 bits a pixel, native
  // endian 0x00RRGGBB, rows `stride` bytes apart. Photo regions are painted
  // white in it once encoded, so the caller's pixels change.
  PageImage encode(unsigned char* xrgb, std::size_t stride, int width, int height);
  const PageAnalysis& last_analysis() const { return analysis_; }

 private:
  struct Rect {
    int x0, y0, x1, y1;  // pixels, exclusive end
  };
  void analyze(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h);
  std::vector<Rect> photo_regions(std::size_t w, std::size_t h) const;
  void encode_flat(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h, PageImage& out);
  bool indexed(const unsigned char* xrgb, std::size_t stride, std::size_t w, std::size_t h, PageImage& out);
  std::string deflate(const unsigned char* data, std::size_t size);

  PageEncoding encoding_;
  PageAnalysis analysis_;
  std::vector<unsigned char> plane_;     // gray, RGB or palette indices, reused
  std::vector<std::uint16_t> block_tone_;   // per 32x32 block: photo-like pixels
  std::vector<std::uint16_t> block_color_;  // per 32x32 block: coloured pixels
  std::size_t blocks_x_ = 0, blocks_y_ = 0;
  std::uint64_t colored_ = 0;
  struct Deflater;
  std::unique_ptr<Deflater> deflater_;
};

}  // namespace mukaika
