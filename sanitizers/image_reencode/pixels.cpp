// Pixmap and the PNG/JPEG encoders; see pixels.h.
//
// libpng's simplified API and the TurboJPEG API are used on purpose: both
// report errors as return values. The classic libpng/libjpeg APIs report
// errors by longjmp, which would jump over C++ destructors.
#include "image_reencode/pixels.h"

#include "c_handle.h"

#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include <png.h>
#include <turbojpeg.h>

namespace mukaika {
namespace {

using TjHandle = Handle<void, tjDestroy>;
using TjBuffer = Handle<unsigned char, tjFree>;

}  // namespace

int channels_of(PixelFormat format) {
  switch (format) {
    case PixelFormat::Gray:
      return 1;
    case PixelFormat::GrayAlpha:
      return 2;
    case PixelFormat::Rgb:
      return 3;
    case PixelFormat::Rgba:
      return 4;
  }
  return 1;
}

Pixmap::Pixmap(int width, int height, PixelFormat format) : width_(width), height_(height), format_(format) {
  if (width < 0 || height < 0) throw std::length_error("negative image size");
  const auto bytes = static_cast<unsigned __int128>(width) * static_cast<unsigned>(height) *
                     static_cast<unsigned>(channels_of(format));
  if (bytes > std::numeric_limits<std::size_t>::max() / 2 || width > (1 << 30) || height > (1 << 30))
    throw std::length_error("image too large");
  data_.assign(static_cast<std::size_t>(bytes), 0);
}

bool fully_opaque(const Pixmap& p) {
  if (p.format() != PixelFormat::GrayAlpha && p.format() != PixelFormat::Rgba) return true;
  const int c = p.channels();
  const unsigned char* d = p.data();
  for (std::size_t i = static_cast<std::size_t>(c - 1); i < p.size(); i += static_cast<std::size_t>(c))
    if (d[i] != 255) return false;
  return true;
}

Pixmap flatten_alpha(const Pixmap& p) {
  if (p.format() == PixelFormat::Gray || p.format() == PixelFormat::Rgb) return p;
  const bool gray = p.format() == PixelFormat::GrayAlpha;
  Pixmap out(p.width(), p.height(), gray ? PixelFormat::Gray : PixelFormat::Rgb);
  const int in_c = p.channels(), out_c = out.channels();
  for (int y = 0; y < p.height(); ++y) {
    const unsigned char* in = p.row(y);
    unsigned char* o = out.row(y);
    for (int x = 0; x < p.width(); ++x) {
      const unsigned a = in[x * in_c + in_c - 1];
      for (int k = 0; k < out_c; ++k)
        o[x * out_c + k] = static_cast<unsigned char>((in[x * in_c + k] * a + 255 * (255 - a) + 127) / 255);
    }
  }
  return out;
}

std::string encode_png(const Pixmap& p) {
  if (p.empty()) throw std::invalid_argument("encode_png: empty image");
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(p.width());
  image.height = static_cast<png_uint_32>(p.height());
  switch (p.format()) {
    case PixelFormat::Gray:
      image.format = PNG_FORMAT_GRAY;
      break;
    case PixelFormat::GrayAlpha:
      image.format = PNG_FORMAT_GA;
      break;
    case PixelFormat::Rgb:
      image.format = PNG_FORMAT_RGB;
      break;
    case PixelFormat::Rgba:
      image.format = PNG_FORMAT_RGBA;
      break;
  }
  const auto stride = static_cast<png_int_32>(p.stride());
  png_alloc_size_t size = 0;
  // First call measures, second writes.
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, p.data(), stride, nullptr))
    throw std::runtime_error(std::string("PNG encoding failed: ") + image.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, p.data(), stride, nullptr))
    throw std::runtime_error(std::string("PNG encoding failed: ") + image.message);
  out.resize(size);
  return out;
}

std::string encode_jpeg(const Pixmap& p, int quality) {
  if (p.empty()) throw std::invalid_argument("encode_jpeg: empty image");
  if (p.format() != PixelFormat::Gray && p.format() != PixelFormat::Rgb)
    throw std::invalid_argument("encode_jpeg: flatten alpha first");
  TjHandle tj(tjInitCompress());
  if (!tj) throw std::runtime_error("JPEG encoder could not start");
  const bool gray = p.format() == PixelFormat::Gray;
  unsigned char* raw = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(tj.get(), p.data(), p.width(), static_cast<int>(p.stride()), p.height(),
                             gray ? TJPF_GRAY : TJPF_RGB, &raw, &size, gray ? TJSAMP_GRAY : TJSAMP_420,
                             quality < 1 ? 1 : quality > 100 ? 100 : quality, 0);
  TjBuffer buffer(raw);
  if (rc != 0) throw std::runtime_error(std::string("JPEG encoding failed: ") + tjGetErrorStr2(tj.get()));
  return std::string(reinterpret_cast<const char*>(buffer.get()), size);
}

}  // namespace mukaika
