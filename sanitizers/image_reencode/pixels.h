// Pixels and the two encoders everything in mukaika writes images with.
//
// A Pixmap is 8-bit samples, rows packed without padding. Decoders fill one,
// encoders write PNG (lossless) or JPEG from one: the bytes that leave are
// always produced here from pixels, never copied from an input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mukaika {

enum class PixelFormat { Gray, GrayAlpha, Rgb, Rgba };

int channels_of(PixelFormat format);

class Pixmap {
 public:
  Pixmap() = default;
  // Allocates width*height pixels (zeroed). Throws std::length_error for a
  // size that does not fit; callers check their pixel limit before this.
  Pixmap(int width, int height, PixelFormat format);

  int width() const { return width_; }
  int height() const { return height_; }
  PixelFormat format() const { return format_; }
  int channels() const { return channels_of(format_); }
  std::size_t stride() const { return static_cast<std::size_t>(width_) * static_cast<std::size_t>(channels()); }
  bool empty() const { return width_ == 0 || height_ == 0; }

  unsigned char* data() { return data_.data(); }
  const unsigned char* data() const { return data_.data(); }
  std::size_t size() const { return data_.size(); }
  unsigned char* row(int y) { return data_.data() + static_cast<std::size_t>(y) * stride(); }
  const unsigned char* row(int y) const { return data_.data() + static_cast<std::size_t>(y) * stride(); }

 private:
  int width_ = 0;
  int height_ = 0;
  PixelFormat format_ = PixelFormat::Gray;
  std::vector<unsigned char> data_;
};

// True when every alpha sample is 255 (or the format has no alpha).
bool fully_opaque(const Pixmap& p);
// The same pixels without the alpha channel (composited onto white).
Pixmap flatten_alpha(const Pixmap& p);

// Lossless PNG (libpng), no ancillary chunks at all. Any format.
std::string encode_png(const Pixmap& p);
// Baseline JPEG (libjpeg-turbo), quality 1-100, 4:2:0 for colour. Gray or
// Rgb only (callers flatten alpha first).
std::string encode_jpeg(const Pixmap& p, int quality);

}  // namespace mukaika
