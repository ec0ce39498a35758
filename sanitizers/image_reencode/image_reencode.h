// image.reencode: images are decoded to pixels and written again.
//
// Promises: the output is a new PNG or JPEG made from the decoded pixels
// only. Nothing else of the input survives: no EXIF/XMP/IPTC/ICC metadata,
// no comments or text chunks, no bytes after the image's end (a ZIP or
// script appended to make a polyglot), no further animation frames or TIFF
// pages. PNG, GIF, BMP, TIFF and WebP become PNG (lossless); JPEG becomes
// JPEG at the configured quality (re-encoding JPEG as PNG would make photos
// five times larger). An EXIF orientation is applied to the pixels, so a
// phone photo still shows upright. An image over the pixel limit is blocked
// before its pixels are decoded (decompression bombs).
//
// SVG is never passed as SVG: it is rendered with librsvg to PNG, with no
// base URL (so no file or URL is loaded) and no scripting (librsvg has
// none); or, with svg = "remove", removed.
#pragma once

#include <cstdint>
#include <memory>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

struct ImageReencodeOptions {
  int jpeg_quality = 85;                   // JPEG sources are written again at this quality
  std::uint64_t max_pixels = 40'000'000;   // width x height of any image (and of a rendered SVG)
  bool render_svg = true;                  // false: SVGs are removed
  int svg_size = 1024;                     // longer side of an SVG that states no size
};

std::unique_ptr<Sanitizer> make_image_reencode(const toml::table& options);
std::unique_ptr<Sanitizer> image_reencode_sanitizer(const ImageReencodeOptions& options);

}  // namespace mukaika
