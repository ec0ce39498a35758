// Decoders for the raster formats image.reencode accepts, and the SVG
// renderer. Each decoder reads the image size first and refuses, before
// allocating anything, an image over the pixel limit (decompression bombs).
//
// A decoder either returns pixels or throws ImageRejected, whose Reason says
// in Japanese and English why (too many pixels, broken, unsupported). Other
// exceptions mean an internal failure.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "image_reencode/pixels.h"
#include "sanitizer.h"

namespace mukaika {

enum class ImageFormat { Png, Jpeg, Gif, Bmp, Tiff, Webp, Unknown };

std::string_view to_string(ImageFormat format);
// From the magic bytes only.
ImageFormat sniff_image_format(std::string_view bytes);

class ImageRejected : public std::runtime_error {
 public:
  // `block`: true blocks the item (over a limit, broken data); false removes
  // it (a variant of a format we do not read, like any unknown type).
  explicit ImageRejected(Reason reason, bool block = true);
  const Reason& reason() const { return reason_; }
  bool block() const { return block_; }

 private:
  Reason reason_;
  bool block_;
};

// What a decoder learnt besides the pixels, for the report.
struct DecodeInfo {
  std::uint64_t trailing_bytes = 0;  // bytes after the end of the image (polyglots)
  bool more_frames = false;          // animation or multi-page: only the first was kept
  bool orientation_applied = false;  // EXIF orientation turned into pixels
};

// Throws ImageRejected when width*height > max_pixels, naming the size.
void check_pixel_limit(std::uint64_t width, std::uint64_t height, std::uint64_t max_pixels, std::string_view what);

Pixmap decode_image(std::string_view bytes, ImageFormat format, std::uint64_t max_pixels, DecodeInfo& info);

Pixmap decode_png(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);
Pixmap decode_jpeg(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);
Pixmap decode_gif(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);
Pixmap decode_bmp(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);
Pixmap decode_tiff(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);
Pixmap decode_webp(std::string_view bytes, std::uint64_t max_pixels, DecodeInfo& info);

// Renders SVG (or gzip-compressed SVGZ) with librsvg to pixels (RGBA). No
// base URL is given, so librsvg loads no file and no URL: only data: URLs
// inside the document are honoured. Scripts are never run (librsvg has no
// script engine). The size is the SVG's own, scaled down to fit max_pixels;
// an SVG without a size gets `default_size` on its longer side.
Pixmap render_svg(std::string_view bytes, std::uint64_t max_pixels, int default_size = 1024);

}  // namespace mukaika
