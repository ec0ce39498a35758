// pdf.rasterize: a PDF becomes a new PDF of page images.
//
// Promises: every page is rendered to pixels (Poppler with cairo) and the
// output holds, per page, one image at the page's displayed size, encoded per
// page (bilevel, gray or RGB Flate for text and line art; JPEG for
// photographic pages), with an invisible text layer from Poppler's text
// extraction so that search and copy still work, Japanese included. Nothing
// of the original structure survives: no JavaScript, actions, links, forms,
// annotations (their appearance is in the pixels), embedded files, XFA,
// RichMedia, metadata, fonts or outlines.
//
// Bounded: pages per document, pixels per page (a huge page is rendered at
// a lower resolution, down to a floor), the deadline (checked between
// pages), output size. Pages are processed in parallel, one Poppler document
// per thread (Poppler documents are not thread-safe), at most a few pages in
// flight, written in order: memory does not grow with the page count.
//
// Verdicts: a PDF that needs a password to open is blocked (one with only
// an owner password, "no printing/copying", is rasterized); a PDF Poppler
// cannot open or render is blocked; anything else is rasterized.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "pdf_rasterize/pdf_writer.h"
#include "sanitizer.h"

namespace mukaika {

struct PdfRasterizeOptions {
  double dpi = 150;                          // rendering resolution
  bool text_layer = true;                    // invisible text for search and copy
  int jpeg_quality = 80;                     // photographic pages
  int max_pages = 500;                       // more pages: blocked
  std::uint64_t max_page_pixels = 36'000'000;  // A0 at 150 dpi; larger pages get a lower dpi
  double min_dpi = 36;                       // ... but not below this: blocked
  int threads = 0;                           // 0: one per core (at most 16)
  // Pixels in flight: a thread needs about 8 bytes a pixel of the largest
  // page; fewer threads run when that would exceed this (A0 drawings), so a
  // worker's memory limit is not hit by parallelism alone.
  std::uint64_t memory_budget = 512ull << 20;
  int flate_level = 4;                       // libdeflate level for Flate pages
  bool lossless_rgb = false;                 // benchmark baseline only (see PageEncoding)
};

struct PdfPageStats {
  double dpi = 0;
  int width_px = 0;
  int height_px = 0;
  std::string encoding;     // "gray", "rgb-jpeg", ...
  std::uint64_t bytes = 0;  // of this page in the output
  int words = 0;            // words in its text layer
  double tone_fraction = 0;  // measures of the page encoder (page_encoder.h)
  int area_levels = 0;
};

struct PdfRasterizeResult {
  enum class Status {
    Done,
    Encrypted,       // needs a user password
    WrongPassword,   // needs one, and none of control.passwords opens it
    Broken,          // Poppler cannot open or render it
    NoPages,
    TooManyPages,
    PageTooLarge,    // even at min_dpi over max_page_pixels
    PageNoSize,      // a page with (almost) no area
    TimeUp,
    OutputTooLarge,  // the sink refused more bytes
  };
  Status status = Status::Broken;
  std::string detail;          // for Broken: what Poppler said
  int page_count = 0;          // pages in the input
  int failed_page = 0;         // 1-based, for page-specific statuses
  std::vector<PdfPageStats> pages;
  int threads = 0;              // worker threads used
  std::uint64_t output_bytes = 0;
  bool text_truncated = false;  // the text layer hit the text limit
  bool javascript = false;      // the input had document JavaScript
  int attachments = 0;          // embedded files in the input
  int poppler_messages = 0;     // errors Poppler reported while reading
  std::string first_poppler_message;
};

struct PdfRasterizeControl {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::uint64_t max_text_bytes = 10u << 20;  // UTF-8 bytes of text in the text layer
  // PPAP: user (or owner) passwords to try on a PDF that needs one. Memory only.
  std::vector<std::string> passwords;
  std::string password;  // set by rasterize_pdf for its render threads: the one that opened it
};

// Renders `pdf` and writes the new PDF to `sink` as pages complete.
// Exceptions other than the sink's own mean an internal failure.
PdfRasterizeResult rasterize_pdf(std::string_view pdf, const PdfRasterizeOptions& options, PdfSink& sink,
                                 const PdfRasterizeControl& control = {});

// Whether pages render in parallel: the executable takes FreeType's face
// creation and destruction from poppler and cairo and serializes them
// (pdf_rasterize.cpp); otherwise page rendering is serialized.
bool pdf_render_parallel();
// FreeType calls that went through that lock so far (tests).
std::uint64_t pdf_freetype_locked_calls();

std::unique_ptr<Sanitizer> make_pdf_rasterize(const toml::table& options);
std::unique_ptr<Sanitizer> pdf_rasterize_sanitizer(const PdfRasterizeOptions& options);

}  // namespace mukaika
