#include "pdf_rasterize/pdf_thumbnail.h"

#include <cairo.h>
#include <poppler.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "c_handle.h"

namespace mukaika {

namespace {

template <typename T>
using GPtr = Handle<T, g_object_unref>;
using GBytesPtr = Handle<GBytes, g_bytes_unref>;
using GErrorPtr = Handle<GError, g_error_free>;
using SurfacePtr = Handle<cairo_surface_t, cairo_surface_destroy>;
using CairoPtr = Handle<cairo_t, cairo_destroy>;

cairo_status_t append(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

std::optional<std::string> pdf_first_page_png(std::string_view pdf, int max_side_px) {
  if (max_side_px < 16 || max_side_px > 2000) return std::nullopt;
  GBytesPtr bytes(g_bytes_new_static(pdf.data(), pdf.size()));
  GError* raw = nullptr;
  GPtr<PopplerDocument> doc(poppler_document_new_from_bytes(bytes.get(), nullptr, &raw));
  GErrorPtr error(raw);
  if (!doc || poppler_document_get_n_pages(doc.get()) < 1) return std::nullopt;
  GPtr<PopplerPage> page(poppler_document_get_page(doc.get(), 0));
  if (!page) return std::nullopt;
  double w_pt = 0, h_pt = 0;
  poppler_page_get_size(page.get(), &w_pt, &h_pt);
  if (!(w_pt > 0 && h_pt > 0) || !std::isfinite(w_pt) || !std::isfinite(h_pt)) return std::nullopt;
  const double scale = std::min(max_side_px / std::max(w_pt, h_pt), 150.0 / 72.0);
  const int w = std::max(1, static_cast<int>(std::lround(w_pt * scale)));
  const int h = std::max(1, static_cast<int>(std::lround(h_pt * scale)));
  std::string png;
  {
    SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h));
    if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) return std::nullopt;
    {
      CairoPtr cr(cairo_create(surface.get()));
      cairo_set_source_rgb(cr.get(), 1, 1, 1);
      cairo_paint(cr.get());
      cairo_scale(cr.get(), w / w_pt, h / h_pt);
      poppler_page_render(page.get(), cr.get());
      if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) return std::nullopt;
    }
    cairo_surface_flush(surface.get());
    if (cairo_surface_write_to_png_stream(surface.get(), append, &png) != CAIRO_STATUS_SUCCESS) return std::nullopt;
  }
  return png;
}

}  // namespace mukaika
