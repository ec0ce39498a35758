// image.reencode: see image_reencode.h for what it promises.
//
// Decisions a reviewer should know about:
// - Output format follows the source: JPEG stays JPEG (photos), everything
//   else becomes PNG (lossless: screenshots, diagrams, scans). An opaque
//   image loses its alpha channel, a gray one stays gray: smaller files.
// - An image whose bytes are no format we read (ICO, HEIC, PSD, JPEG 2000 …)
//   is removed, like any unknown type; one that is broken or over the limit
//   is blocked.
// - ICC colour profiles are dropped with the rest of the metadata; pixels
//   are not converted. Wide-gamut photos may look slightly duller.
#include "image_reencode/image_reencode.h"

#include <stdexcept>
#include <string>

#include "file_name.h"
#include "image_reencode/image_codecs.h"
#include "image_reencode/pixels.h"
#include "registry.h"

namespace mukaika {
namespace {

bool all_gray(const Pixmap& p) {
  if (p.format() == PixelFormat::Gray || p.format() == PixelFormat::GrayAlpha) return true;
  const int c = p.channels();
  for (int y = 0; y < p.height(); ++y) {
    const unsigned char* r = p.row(y);
    for (int x = 0; x < p.width(); ++x, r += c)
      if (r[0] != r[1] || r[1] != r[2]) return false;
  }
  return true;
}

// The smallest lossless layout of the same pixels: drop an alpha channel
// that is opaque everywhere, and colour channels that are equal everywhere.
Pixmap compact(Pixmap p) {
  const bool opaque = fully_opaque(p);
  const bool gray = all_gray(p);
  const bool has_alpha = p.format() == PixelFormat::GrayAlpha || p.format() == PixelFormat::Rgba;
  const PixelFormat target = gray ? (opaque ? PixelFormat::Gray : PixelFormat::GrayAlpha)
                                  : (opaque ? PixelFormat::Rgb : PixelFormat::Rgba);
  if (target == p.format()) return p;
  Pixmap out(p.width(), p.height(), target);
  const int ic = p.channels(), oc = out.channels();
  const bool in_color = p.format() == PixelFormat::Rgb || p.format() == PixelFormat::Rgba;
  for (int y = 0; y < p.height(); ++y) {
    const unsigned char* in = p.row(y);
    unsigned char* o = out.row(y);
    for (int x = 0; x < p.width(); ++x, in += ic, o += oc) {
      if (oc <= 2) {
        o[0] = in[0];
      } else {
        o[0] = in[0];
        o[1] = in_color ? in[1] : in[0];
        o[2] = in_color ? in[2] : in[0];
      }
      if (oc == 2 || oc == 4) o[oc - 1] = has_alpha ? in[ic - 1] : 255;
    }
  }
  return out;
}

class ImageReencode : public Sanitizer {
 public:
  explicit ImageReencode(const ImageReencodeOptions& o) : options_(o) {}
  std::string_view name() const override { return "image.reencode"; }
  std::vector<Kind> handles() const override { return {Kind::Image, Kind::Svg}; }

  Outcome process(const Item& item, Context& ctx) const override {
    try {
      return item.kind == Kind::Svg ? svg(item, ctx) : raster(item, ctx);
    } catch (const ImageRejected& e) {
      return e.block() ? Outcome::block(e.reason()) : Outcome::remove(e.reason());
    }
  }

 private:
  Outcome raster(const Item& item, Context& ctx) const {
    const ImageFormat format = sniff_image_format(item.bytes);
    if (format == ImageFormat::Unknown) {
      const std::string type = item.detected_type.empty() ? "unknown" : item.detected_type;
      return Outcome::remove({"image.unsupported",
                              "この形式の画像 (" + type + ") は再エンコードできないため削除しました",
                              "removed: images of this type (" + type + ") cannot be re-encoded"});
    }
    DecodeInfo info;
    Pixmap pixels = decode_image(item.bytes, format, options_.max_pixels, info);
    const std::string fname(to_string(format));
    if (info.trailing_bytes > 0)
      ctx.report.note(item.path, "note",
                      {"image.trailing_data",
                       "画像の終わりの後ろに付いていた " + std::to_string(info.trailing_bytes) + " バイトのデータを削除しました",
                       "removed " + std::to_string(info.trailing_bytes) + " bytes appended after the end of the image"});
    if (info.more_frames)
      ctx.report.note(item.path, "note",
                      {"image.first_frame", "アニメーションまたは複数ページの画像のうち最初の 1 枚だけを残しました",
                       "kept only the first frame (or page) of an animated or multi-page image"});
    if (info.orientation_applied)
      ctx.report.note(item.path, "note",
                      {"image.orientation", "EXIF の回転情報を画素に反映しました",
                       "applied the EXIF orientation to the pixels"});

    std::string bytes, type, ext;
    if (format == ImageFormat::Jpeg) {
      bytes = encode_jpeg(flatten_alpha(pixels), options_.jpeg_quality);
      type = "image/jpeg";
      ext = "jpg";
    } else {
      bytes = encode_png(compact(std::move(pixels)));
      type = "image/png";
      ext = "png";
    }
    const std::string out_ext = ext == "png" ? "PNG" : "JPEG";
    return Outcome::replace(
        std::move(bytes), type, replace_extension(item.name, ext),
        {"image.reencoded",
         fname + " 画像を画素から " + out_ext + " に作り直しました (メタデータ・付加データは削除)",
         fname + " image rebuilt from its pixels as " + out_ext + " (metadata and anything else removed)"});
  }

  Outcome svg(const Item& item, Context&) const {
    if (!options_.render_svg)
      return Outcome::remove({"image.svg_removed",
                              "SVG 画像はスクリプトを含みうるため削除しました (画像化は無効)",
                              "removed: SVG image (may contain scripts; rendering is disabled)"});
    Pixmap pixels = render_svg(item.bytes, options_.max_pixels, options_.svg_size);
    return Outcome::replace(encode_png(compact(std::move(pixels))), "image/png", replace_extension(item.name, "png"),
                            {"image.svg_rendered",
                             "SVG 画像を PNG 画像に変換しました (スクリプト・外部参照は無効)",
                             "SVG image converted to PNG (scripts and external references ignored)"});
  }

  ImageReencodeOptions options_;
};

}  // namespace

std::unique_ptr<Sanitizer> image_reencode_sanitizer(const ImageReencodeOptions& options) {
  return std::make_unique<ImageReencode>(options);
}

std::unique_ptr<Sanitizer> make_image_reencode(const toml::table& table) {
  ImageReencodeOptions o;
  auto integer = [](const toml::node& node, std::string_view key, std::int64_t lo, std::int64_t hi) {
    const auto* value = node.as_integer();
    if (value == nullptr || value->get() < lo || value->get() > hi)
      throw ConfigError("image.reencode: option \"" + std::string(key) + "\" must be an integer from " +
                        std::to_string(lo) + " to " + std::to_string(hi));
    return value->get();
  };
  for (const auto& [key, node] : table) {
    const std::string_view k = key.str();
    if (k == "jpeg_quality") {
      o.jpeg_quality = static_cast<int>(integer(node, k, 30, 100));
    } else if (k == "max_pixels") {
      o.max_pixels = static_cast<std::uint64_t>(integer(node, k, 1, 1'000'000'000));
    } else if (k == "svg_size") {
      o.svg_size = static_cast<int>(integer(node, k, 16, 16384));
    } else if (k == "svg") {
      const auto* value = node.as_string();
      if (value == nullptr || (value->get() != "render" && value->get() != "remove"))
        throw ConfigError("image.reencode: option \"svg\" must be \"render\" or \"remove\"");
      o.render_svg = value->get() == "render";
    } else {
      throw ConfigError("image.reencode: unknown option \"" + std::string(k) +
                        "\" (known: jpeg_quality, max_pixels, svg, svg_size)");
    }
  }
  return image_reencode_sanitizer(o);
}

}  // namespace mukaika
