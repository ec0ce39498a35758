// pdf.rasterize: see pdf_rasterize.h for what it promises.
//
// Decisions a reviewer should know about:
// - Rendering is poppler-glib onto a cairo image surface, text extraction is
//   poppler-cpp's text_list(). poppler-cpp's own renderer uses Splash with a
//   new output device (and a new font engine) per page; on text pages it was
//   ten times slower than cairo here. text_list() gives words with boxes,
//   reading direction and writing mode, which poppler-glib does not.
// - Each worker thread loads its own documents from the same bytes (no
//   copy): Poppler objects are not thread-safe, separate documents are,
//   except for FreeType faces in the cairo renderer (see cairo_font_lock):
//   face creation and destruction are serialized, rendering, encoding and
//   text extraction run in parallel.
// - Pages are claimed in order and written in order; a worker may run at
//   most `window` pages ahead of the writer, so at most that many encoded
//   pages wait in memory, and only one page of raw pixels per thread exists.
// - A page larger than max_page_pixels at the configured resolution is
//   rendered at the resolution that fits (A0 drawings stay readable); below
//   min_dpi the document is blocked.
// - Annotation appearances (stamps, filled-in form values) are rendered, as
//   a viewer shows them; they end up as pixels.
// - An owner password ("no copying") does not stop the text layer: the
//   original's permissions cannot be carried over, and search is the point.
// - Poppler's error messages go to a per-thread collector (count and the
//   first one go into the report), never to stderr. Poppler routes messages
//   through one process-wide callback, installed by whichever of poppler-cpp
//   and poppler-glib opened the first document; both routes are caught.
#include "pdf_rasterize/pdf_rasterize.h"

#include "c_handle.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <cairo.h>
#include <dlfcn.h>
#include <ft2build.h>
#include FT_FREETYPE_H
// Full paths: poppler-cpp and poppler-glib both have a "poppler-document.h"
// and both include directories are on the path.
#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>
#include <poppler/glib/poppler.h>

#include "digest.h"
#include "file_name.h"
#include "pdf_rasterize/page_encoder.h"
#include "registry.h"

namespace mukaika {
namespace {

using Status = PdfRasterizeResult::Status;

// ---- RAII for GLib, cairo and Poppler handles ----

template <typename T>
using GPtr = Handle<T, g_object_unref>;
using GBytesPtr = Handle<GBytes, g_bytes_unref>;
using GErrorPtr = Handle<GError, g_error_free>;
using SurfacePtr = Handle<cairo_surface_t, cairo_surface_destroy>;
using CairoPtr = Handle<cairo_t, cairo_destroy>;

// ---- Poppler's messages ----

struct PopplerMessages {
  int count = 0;
  std::string first;
};
thread_local PopplerMessages* t_messages = nullptr;

void collect_poppler_message(const std::string& message, void*) {
  if (!t_messages) return;
  if (t_messages->count++ != 0) return;
  // One line of printable text for the report.
  std::string line;
  for (char c : message.substr(0, 200)) line += (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) ? ' ' : c;
  while (!line.empty() && line.back() == ' ') line.pop_back();
  t_messages->first = line;
}

void collect_glib_message(const gchar*, GLogLevelFlags, const gchar* message, gpointer) {
  collect_poppler_message(message ? message : "", nullptr);
}

class MessageScope {
 public:
  explicit MessageScope(PopplerMessages& m) : previous_(t_messages) {
    // Both routes: whichever library opened the process's first document
    // owns Poppler's callback (poppler-cpp: the debug function;
    // poppler-glib: g_log in the "Poppler" domain).
    static std::once_flag once;
    std::call_once(once, [] {
      poppler::set_debug_error_function(collect_poppler_message, nullptr);
      g_log_set_handler("Poppler", static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR),
                        collect_glib_message, nullptr);
    });
    t_messages = &m;
  }
  ~MessageScope() { t_messages = previous_; }
  MessageScope(const MessageScope&) = delete;
  MessageScope& operator=(const MessageScope&) = delete;

 private:
  PopplerMessages* previous_;
};

// ---- documents ----

// poppler-glib's cairo renderer keeps one FreeType library for all
// documents (a static in CairoOutputDev). FreeType requires creating and
// freeing faces on one library to be serialized; Poppler serializes them
// only per document, and a face is freed wherever the last reference to
// its cairo font goes (closing a document, destroying a cairo context,
// cairo's cache of recent fonts evicting one), in any thread. The FreeType
// functions at the end of this file take those calls from poppler and
// cairo and forward them under cairo_font_lock; glyph loading and drawing
// on distinct faces, all the rest, FreeType allows in parallel.
// Recursive: FreeType may call its own exported functions. Never
// destroyed: static destructors may free faces at exit.
std::recursive_mutex& cairo_font_lock() {
  static auto* m = new std::recursive_mutex;
  return *m;
}

std::atomic<std::uint64_t> g_locked_calls{0};  // for tests

// True when poppler's and cairo's FreeType calls reach those functions:
// the executable exports them (CMakeLists.txt). If not (another link),
// whole page renders and document closes hold render_lock() as before.
bool freetype_interposed() {
  static const bool yes = dlsym(RTLD_DEFAULT, "FT_New_Memory_Face") == reinterpret_cast<void*>(&FT_New_Memory_Face) &&
                          dlsym(RTLD_DEFAULT, "FT_New_Face") == reinterpret_cast<void*>(&FT_New_Face) &&
                          dlsym(RTLD_DEFAULT, "FT_Done_Face") == reinterpret_cast<void*>(&FT_Done_Face);
  return yes;
}

std::mutex& render_lock() {
  static std::mutex m;
  return m;
}

// Poppler creates process-wide colour profiles lazily, without a lock, in
// the first GfxState it makes (GfxState::sRGBProfile and XYZProfile in
// Poppler 22.12): until one page has been drawn in the process (rendered
// or its text extracted), drawing a page holds render_lock(). Without the
// FreeType wrappers, rendering always holds it.
std::atomic<bool> g_page_drawn{false};

class DrawLock {
 public:
  explicit DrawLock(bool renders_fonts) {
    if ((renders_fonts && !freetype_interposed()) || !g_page_drawn.load(std::memory_order_acquire))
      lock_ = std::unique_lock<std::mutex>(render_lock());
  }
  ~DrawLock() {
    if (lock_.owns_lock()) g_page_drawn.store(true, std::memory_order_release);
  }
  DrawLock(const DrawLock&) = delete;
  DrawLock& operator=(const DrawLock&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
};

struct DocumentUnref {
  void operator()(PopplerDocument* d) const {
    // Closing frees the document's fonts.
    std::unique_lock<std::mutex> lock;
    if (!freetype_interposed()) lock = std::unique_lock<std::mutex>(render_lock());
    g_object_unref(d);
  }
};
using DocumentPtr = std::unique_ptr<PopplerDocument, DocumentUnref>;

// poppler-glib converts the password it is given from UTF-8 to Latin-1
// (poppler_password_to_latin1) and, when that does not open the document,
// retries the UTF-8 bytes, the retry that crashes in 22.12. Each byte as its
// own Latin-1 character, in UTF-8, converts back to exactly these bytes, so
// the first try gets the bytes poppler-cpp has already shown to work.
std::string glib_password(const std::string& bytes) {
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xC0 | (b >> 6));
      out += static_cast<char>(0x80 | (b & 0x3F));
    }
  }
  return out;
}

// `password`: the bytes the security handler compares (see password_bytes).
DocumentPtr open_glib(std::string_view pdf, GErrorPtr& error, const std::string& password = {}) {
  // Static bytes: Poppler reads the caller's buffer, which outlives it.
  GBytesPtr bytes(g_bytes_new_static(pdf.data(), pdf.size()));
  GError* raw = nullptr;
  std::string converted = glib_password(password);
  DocumentPtr doc(poppler_document_new_from_bytes(bytes.get(), password.empty() ? nullptr : converted.c_str(), &raw));
  wipe(converted);
  error.reset(raw);
  return doc;
}

// What a typed (UTF-8) password may be as bytes in the PDF's security
// handler: AES-256 (R5, R6) takes UTF-8 as it is; RC4 and AES-128 (R2-R4)
// take PDFDocEncoding, which is Latin-1 for the letters people type, so a
// password with only Latin-1 letters is also tried in Latin-1. Japanese
// cannot be written in PDFDocEncoding: it opens R5/R6 only.
std::vector<std::string> password_bytes(const std::string& typed) {
  std::vector<std::string> out{typed};
  std::string latin1;
  for (std::size_t i = 0; i < typed.size(); ++i) {
    const auto b = static_cast<unsigned char>(typed[i]);
    if (b < 0x80) {
      latin1 += typed[i];
    } else if ((b == 0xC2 || b == 0xC3) && i + 1 < typed.size() &&
               (static_cast<unsigned char>(typed[i + 1]) & 0xC0) == 0x80) {
      latin1 += static_cast<char>(((b & 0x03) << 6) | (static_cast<unsigned char>(typed[++i]) & 0x3F));
    } else {
      return out;  // beyond Latin-1
    }
  }
  if (latin1 != typed) out.push_back(std::move(latin1));
  return out;
}

std::unique_ptr<poppler::document> open_cpp(std::string_view pdf, const std::string& password = {}) {
  if (pdf.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) return nullptr;
  // Either password opens a PDF; the recipient types whichever they were given.
  return std::unique_ptr<poppler::document>(
      poppler::document::load_from_raw_data(pdf.data(), static_cast<int>(pdf.size()), password, password));
}

struct PagePlan {
  double width_pt = 0, height_pt = 0, dpi = 0;
  int width_px = 0, height_px = 0;
};

struct Failure {
  Status status = Status::Done;
  int page = 0;  // 1-based
  std::string detail;
};

// Size in pixels at `dpi`, or a failure. The resolution drops for pages
// over the pixel budget, never below min_dpi.
std::optional<Failure> plan_page(double w, double h, const PdfRasterizeOptions& o, int index, PagePlan& plan) {
  plan.width_pt = w;
  plan.height_pt = h;
  if (!std::isfinite(w) || !std::isfinite(h) || w < 1 || h < 1)
    return Failure{Status::PageNoSize, index + 1, {}};
  double dpi = o.dpi;
  auto pixels_at = [&](double d) {
    return std::ceil(w * d / 72.0) * std::ceil(h * d / 72.0);
  };
  // cairo draws at most 32767 pixels a side.
  auto fits = [&](double d) {
    return pixels_at(d) <= static_cast<double>(o.max_page_pixels) && std::ceil(std::max(w, h) * d / 72.0) <= 32767;
  };
  if (!fits(dpi)) {
    dpi = o.dpi * std::min(std::sqrt(static_cast<double>(o.max_page_pixels) / pixels_at(o.dpi)),
                           32767.0 / std::ceil(std::max(w, h) * o.dpi / 72.0));
    while (dpi >= o.min_dpi && !fits(dpi)) dpi *= 0.99;  // rounding up can overshoot
    if (dpi < o.min_dpi) return Failure{Status::PageTooLarge, index + 1, {}};
  }
  plan.dpi = dpi;
  plan.width_px = std::max(1, static_cast<int>(std::ceil(w * dpi / 72.0)));
  plan.height_px = std::max(1, static_cast<int>(std::ceil(h * dpi / 72.0)));
  return std::nullopt;
}

std::u32string to_utf32(const poppler::ustring& s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      out += 0x10000 + ((c - 0xD800) << 10) + (static_cast<char32_t>(s[i + 1]) - 0xDC00);
      ++i;
    } else {
      out += c;  // a lone surrogate is dropped by the writer
    }
  }
  return out;
}

std::size_t utf8_length(const std::u32string& s) {
  std::size_t n = 0;
  for (char32_t c : s) n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  return n;
}

struct DonePage {
  RasterPage page;
  PdfPageStats stats;
  std::size_t text_bytes = 0;
};

// Everything the workers and the writer share. Guarded by `mutex`.
struct Shared {
  std::mutex mutex;
  std::condition_variable changed;
  int pages = 0;
  int window = 1;
  int next_claim = 0;
  int next_write = 0;
  std::map<int, DonePage> done;
  bool stop = false;
  Failure failure;
  std::exception_ptr error;
  PopplerMessages messages;

  void fail(Failure f) {
    std::lock_guard<std::mutex> lock(mutex);
    if (failure.status == Status::Done) failure = std::move(f);
    stop = true;
    changed.notify_all();
  }
};

class Worker {
 public:
  Worker(std::string_view pdf, const PdfRasterizeOptions& options, const PdfRasterizeControl& control,
         const std::vector<PagePlan>& plans, Shared& shared)
      : pdf_(pdf), options_(options), control_(control), plans_(plans), shared_(shared),
        encoder_({options.jpeg_quality, options.flate_level, options.lossless_rgb, true, true}) {}

  void run() {
    PopplerMessages messages;
    try {
      MessageScope scope(messages);
      loop();
    } catch (...) {
      std::lock_guard<std::mutex> lock(shared_.mutex);
      if (!shared_.error) shared_.error = std::current_exception();
      shared_.stop = true;
      shared_.changed.notify_all();
    }
    std::lock_guard<std::mutex> lock(shared_.mutex);
    if (shared_.messages.count == 0) shared_.messages.first = messages.first;
    shared_.messages.count += messages.count;
  }

 private:
  void loop() {
    GErrorPtr error;
    DocumentPtr doc = open_glib(pdf_, error, control_.password);
    if (!doc) return shared_.fail({Status::Broken, 0, error ? error->message : "cannot open"});
    std::unique_ptr<poppler::document> text_doc;
    if (options_.text_layer) {
      text_doc = open_cpp(pdf_, control_.password);
      if (!text_doc || text_doc->is_locked()) return shared_.fail({Status::Broken, 0, "text extraction cannot open it"});
    }
    while (true) {
      int index;
      {
        std::unique_lock<std::mutex> lock(shared_.mutex);
        shared_.changed.wait(lock, [&] {
          return shared_.stop || shared_.next_claim >= shared_.pages ||
                 shared_.next_claim < shared_.next_write + shared_.window;
        });
        if (shared_.stop || shared_.next_claim >= shared_.pages) return;
        index = shared_.next_claim++;
      }
      if (std::chrono::steady_clock::now() > control_.deadline) return shared_.fail({Status::TimeUp, index + 1, {}});
      DonePage done;
      if (auto f = render(*doc, text_doc.get(), index, done)) return shared_.fail(std::move(*f));
      std::lock_guard<std::mutex> lock(shared_.mutex);
      shared_.done.emplace(index, std::move(done));
      shared_.changed.notify_all();
    }
  }

  std::optional<Failure> render(PopplerDocument& doc, poppler::document* text_doc, int index, DonePage& done) {
    const PagePlan& plan = plans_[static_cast<std::size_t>(index)];
    GPtr<PopplerPage> page(poppler_document_get_page(&doc, index));
    if (!page) return Failure{Status::Broken, index + 1, "the page cannot be read"};

    if (!surface_ || surface_width_ != plan.width_px || surface_height_ != plan.height_px) {
      surface_.reset();  // free the old pixels before allocating new ones
      surface_.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, plan.width_px, plan.height_px));
      if (cairo_surface_status(surface_.get()) != CAIRO_STATUS_SUCCESS)
        throw std::runtime_error("cairo: cannot allocate " + std::to_string(plan.width_px) + "x" +
                                 std::to_string(plan.height_px) + " pixels");
      surface_width_ = plan.width_px;
      surface_height_ = plan.height_px;
    }
    {
      // The whole life of the cairo context is inside the lock (when there
      // is one): destroying it can release the last reference to a font.
      DrawLock lock(true);
      CairoPtr cr(cairo_create(surface_.get()));
      cairo_set_source_rgb(cr.get(), 1, 1, 1);
      cairo_paint(cr.get());
      cairo_scale(cr.get(), plan.width_px / plan.width_pt, plan.height_px / plan.height_pt);
      poppler_page_render(page.get(), cr.get());
      if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS)
        return Failure{Status::Broken, index + 1, cairo_status_to_string(cairo_status(cr.get()))};
    }
    cairo_surface_flush(surface_.get());
    done.page.width_pt = plan.width_pt;
    done.page.height_pt = plan.height_pt;
    done.page.image = encoder_.encode(cairo_image_surface_get_data(surface_.get()),
                                      static_cast<std::size_t>(cairo_image_surface_get_stride(surface_.get())),
                                      plan.width_px, plan.height_px);
    cairo_surface_mark_dirty(surface_.get());  // the encoder painted photo regions white
    done.stats.dpi = plan.dpi;
    done.stats.width_px = plan.width_px;
    done.stats.height_px = plan.height_px;
    done.stats.encoding = done.page.image.encoding();
    done.stats.tone_fraction = encoder_.last_analysis().tone_fraction;
    done.stats.area_levels = encoder_.last_analysis().area_levels;

    if (text_doc) {
      std::unique_ptr<poppler::page> text_page(text_doc->create_page(index));
      if (text_page) {
        std::vector<poppler::text_box> boxes;
        {
          DrawLock lock(false);
          boxes = text_page->text_list(poppler::page::text_list_include_font);
        }
        for (const poppler::text_box& box : boxes) {
          TextWord w;
          w.text = to_utf32(box.text());
          const poppler::rectf r = box.bbox();
          w.x = r.x(), w.y = r.y(), w.width = r.width(), w.height = r.height();
          w.rotation = box.rotation();
          w.space_after = box.has_space_after();
          done.text_bytes += utf8_length(w.text);
          // A page's text beyond the whole document's budget would be
          // dropped anyway; stop collecting it.
          if (done.text_bytes > control_.max_text_bytes) break;
          done.page.words.push_back(std::move(w));
        }
      }
    }
    done.stats.words = static_cast<int>(done.page.words.size());
    return std::nullopt;
  }

  std::string_view pdf_;
  const PdfRasterizeOptions& options_;
  const PdfRasterizeControl& control_;
  const std::vector<PagePlan>& plans_;
  Shared& shared_;
  PageEncoder encoder_;
  SurfacePtr surface_;
  int surface_width_ = 0, surface_height_ = 0;
};

// Stops and joins the workers however the writer leaves.
class WorkerGroup {
 public:
  explicit WorkerGroup(Shared& shared) : shared_(shared) {}
  ~WorkerGroup() {
    {
      std::lock_guard<std::mutex> lock(shared_.mutex);
      shared_.stop = true;
      shared_.changed.notify_all();
    }
    for (auto& t : threads_) t.join();
  }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  void start(std::unique_ptr<Worker> worker) {
    Worker* w = worker.get();
    workers_.push_back(std::move(worker));
    threads_.emplace_back([w] { w->run(); });
  }

 private:
  Shared& shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

// Bytes a worker thread holds for a page: the cairo surface (4 a pixel),
// the gray plane (1), an RGB or packed copy (up to 3).
constexpr std::uint64_t kBytesPerPixel = 8;

int thread_count(const PdfRasterizeOptions& o, const std::vector<PagePlan>& plans) {
  int n = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  std::uint64_t largest = 1;
  for (const PagePlan& p : plans)
    largest = std::max(largest, static_cast<std::uint64_t>(p.width_px) * static_cast<std::uint64_t>(p.height_px));
  const auto affordable = static_cast<int>(std::min<std::uint64_t>(16, o.memory_budget / (kBytesPerPixel * largest)));
  return std::clamp(std::min({n, static_cast<int>(plans.size()), affordable}), 1, 16);
}

}  // namespace

PdfRasterizeResult rasterize_pdf(std::string_view pdf, const PdfRasterizeOptions& options, PdfSink& sink,
                                 const PdfRasterizeControl& control) {
  PdfRasterizeResult result;
  PopplerMessages messages;
  MessageScope scope(messages);
  auto finish = [&](Status s) {
    result.status = s;
    result.poppler_messages += messages.count;
    if (result.first_poppler_message.empty()) result.first_poppler_message = messages.first;
    return result;
  };

  // The writer's thread opens the document first: encryption, page count,
  // page sizes, all before any pixel is rendered.
  GErrorPtr error;
  DocumentPtr doc = open_glib(pdf, error);
  // PPAP: the recipient's passwords, tried in turn; the render threads open
  // their documents with the one that worked. Each is tried with poppler-cpp
  // first (it takes the bytes as they are, and a wrong one is just locked):
  // poppler-glib 22.12 crashes when a password it is given does not open
  // the document (its retry in poppler_document_new_from_bytes), so only
  // bytes known to open it are handed to it (open_glib).
  PdfRasterizeControl opened = control;
  // A copy of the passwords, and the one that opened the document: wiped
  // however this returns, like the caller's.
  struct WipeOnReturn {
    PdfRasterizeControl& c;
    ~WipeOnReturn() {
      wipe_passphrases(c.passwords);
      wipe(c.password);
    }
  } wipe_opened{opened};
  for (std::size_t i = 0; !doc && i < control.passwords.size() && error &&
                          g_error_matches(error.get(), POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED);
       ++i) {
    std::vector<std::string> candidates = password_bytes(control.passwords[i]);
    for (const std::string& p : candidates) {
      auto probe = open_cpp(pdf, p);
      if (!probe || probe->is_locked()) continue;
      error.reset();
      doc = open_glib(pdf, error, p);
      if (doc) opened.password = p;
      break;
    }
    wipe_passphrases(candidates);
  }
  if (!doc) {
    if (error && g_error_matches(error.get(), POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
      return finish(control.passwords.empty() ? Status::Encrypted : Status::WrongPassword);
    result.detail = error ? error->message : "cannot open";
    return finish(Status::Broken);
  }
  result.page_count = poppler_document_get_n_pages(doc.get());
  result.javascript = poppler_document_has_javascript(doc.get());
  result.attachments = static_cast<int>(poppler_document_get_n_attachments(doc.get()));
  if (result.page_count <= 0) return finish(Status::NoPages);
  if (result.page_count > options.max_pages) return finish(Status::TooManyPages);

  std::vector<PagePlan> plans(static_cast<std::size_t>(result.page_count));
  for (int i = 0; i < result.page_count; ++i) {
    GPtr<PopplerPage> page(poppler_document_get_page(doc.get(), i));
    if (!page) {
      result.failed_page = i + 1;
      result.detail = "page " + std::to_string(i + 1) + " cannot be read";
      return finish(Status::Broken);
    }
    double w = 0, h = 0;
    poppler_page_get_size(page.get(), &w, &h);  // as displayed: /Rotate applied
    if (auto f = plan_page(w, h, options, i, plans[static_cast<std::size_t>(i)])) {
      result.failed_page = f->page;
      return finish(f->status);
    }
  }
  doc.reset();

  Shared shared;
  shared.pages = result.page_count;
  const int threads = thread_count(options, plans);
  result.threads = threads;
  shared.window = 2 * threads;
  PdfWriter writer(sink);
  std::uint64_t text_bytes = 0;
  {
    WorkerGroup group(shared);
    for (int t = 0; t < threads; ++t)
      group.start(std::make_unique<Worker>(pdf, options, opened, plans, shared));
    try {
      for (int i = 0; i < result.page_count; ++i) {
        DonePage done;
        {
          std::unique_lock<std::mutex> lock(shared.mutex);
          shared.changed.wait(lock, [&] { return shared.stop || shared.done.count(i) != 0; });
          auto it = shared.done.find(i);
          if (it == shared.done.end()) break;  // a worker failed or timed out
          done = std::move(it->second);
          shared.done.erase(it);
          shared.next_write = i + 1;
          shared.changed.notify_all();
        }
        // The text budget is spent in page order, so the result does not
        // depend on which thread finished first.
        if (text_bytes + done.text_bytes > control.max_text_bytes) {
          if (!done.page.words.empty()) result.text_truncated = true;
          done.page.words.clear();
          done.stats.words = 0;
          text_bytes = control.max_text_bytes;
        } else {
          text_bytes += done.text_bytes;
        }
        done.stats.bytes = writer.add_page(done.page);
        result.pages.push_back(std::move(done.stats));
      }
    } catch (const StringSink::Full&) {
      shared.fail({Status::OutputTooLarge, static_cast<int>(result.pages.size()) + 1, {}});
    }
  }  // workers joined here
  if (shared.error) std::rethrow_exception(shared.error);
  result.poppler_messages += shared.messages.count;
  if (result.first_poppler_message.empty()) result.first_poppler_message = shared.messages.first;
  if (shared.failure.status != Status::Done) {
    result.failed_page = shared.failure.page;
    result.detail = shared.failure.detail;
    return finish(shared.failure.status);
  }
  try {
    writer.finish();
  } catch (const StringSink::Full&) {
    return finish(Status::OutputTooLarge);
  }
  result.output_bytes = writer.bytes_written();
  return finish(Status::Done);
}

// ---- the sanitizer ----

namespace {

bool looks_like_pdf(std::string_view bytes) {
  // Readers accept the header anywhere in the first KiB.
  return bytes.substr(0, 1024).find("%PDF-") != std::string_view::npos;
}

std::string pdf_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot != std::string::npos && dot + 4 == name.size()) {
    std::string ext = name.substr(dot + 1);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == "pdf") return name;
  }
  return replace_extension(name, "pdf");
}

class PdfRasterize : public Sanitizer {
 public:
  explicit PdfRasterize(const PdfRasterizeOptions& o) : options_(o) {}
  std::string_view name() const override { return "pdf.rasterize"; }
  // Office, RTF and OpenDocument: as the last step after a converter that
  // produced PDF (the bytes are checked, the kind is the original's).
  std::vector<Kind> handles() const override {
    return {Kind::Pdf, Kind::Office, Kind::OfficeLegacy, Kind::OpenDocument, Kind::Rtf};
  }

  Outcome process(const Item& item, Context& ctx) const override {
    if (!looks_like_pdf(item.bytes))
      return Outcome::block({"pdf.not_pdf", "PDF の画像化に渡されたデータが PDF ではないため遮断しました",
                             "blocked: the data given to PDF rasterizing is not a PDF"});
    StringSink sink(ctx.limits.max_item_bytes);
    PdfRasterizeControl control;
    control.deadline = ctx.deadline;
    control.max_text_bytes = ctx.limits.max_text_bytes;
    control.passwords = ctx.passphrases;
    PdfRasterizeResult r = rasterize_pdf(item.bytes, options_, sink, control);
    wipe_passphrases(control.passwords);

    if (r.poppler_messages > 0)
      ctx.report.note(item.path, "note",
                      {"pdf.parse_problems",
                       "PDF の読み取り中に " + std::to_string(r.poppler_messages) + " 件の問題が報告されました (最初: " +
                           r.first_poppler_message + ")",
                       "the PDF reader reported " + std::to_string(r.poppler_messages) + " problems (first: " +
                           r.first_poppler_message + ")"});
    if (r.status != Status::Done) return Outcome::block(verdict(r, ctx));

    std::map<std::string, int> encodings;
    int words = 0;
    bool reduced = false;
    for (const auto& p : r.pages) {
      ++encodings[p.encoding];
      words += p.words;
      reduced = reduced || p.dpi + 0.5 < options_.dpi;
    }
    const std::string n = std::to_string(r.page_count);
    // Per page, up to a hundred (the audit line must stay readable).
    std::string per_page;
    for (std::size_t i = 0; i < r.pages.size() && i < 100; ++i)
      per_page += (i ? " " : "") + std::to_string(i + 1) + ":" + r.pages[i].encoding + "/" +
                  std::to_string(r.pages[i].bytes);
    if (r.pages.size() > 100) per_page += " …";
    std::string mix;
    for (const auto& [e, count] : encodings) mix += (mix.empty() ? "" : ", ") + e + " " + std::to_string(count);
    ctx.report.note(item.path, "note",
                    {"pdf.pages",
                     "入力 " + std::to_string(item.bytes.size()) + " バイト (1 ページ平均 " +
                         std::to_string(item.bytes.size() / static_cast<std::size_t>(r.page_count)) + ")、出力 " +
                         std::to_string(r.output_bytes) + " バイト (1 ページ平均 " +
                         std::to_string(r.output_bytes / static_cast<std::uint64_t>(r.page_count)) + ")、符号化: " +
                         mix + "。ページ別 (符号化/バイト): " + per_page,
                     "input " + std::to_string(item.bytes.size()) + " bytes (" +
                         std::to_string(item.bytes.size() / static_cast<std::size_t>(r.page_count)) +
                         " per page), output " + std::to_string(r.output_bytes) + " bytes (" +
                         std::to_string(r.output_bytes / static_cast<std::uint64_t>(r.page_count)) +
                         " per page), encodings: " + mix + ". Per page (encoding/bytes): " + per_page});
    if (r.javascript || r.attachments > 0) {
      std::string ja, en;
      if (r.javascript) ja += "JavaScript", en += "JavaScript";
      if (r.attachments > 0) {
        ja += std::string(ja.empty() ? "" : "・") + "埋め込みファイル " + std::to_string(r.attachments) + " 件";
        en += std::string(en.empty() ? "" : " and ") + std::to_string(r.attachments) + " embedded file(s)";
      }
      ctx.report.note(item.path, "note",
                      {"pdf.active_removed",
                       "PDF に含まれていた " + ja + (r.attachments > 0 ? "" : " ") + "を削除しました",
                       "removed " + en + " found in the PDF"});
    }
    if (reduced)
      ctx.report.note(item.path, "note",
                      {"pdf.reduced_dpi", "大きすぎるページは画素数の上限に収まる解像度で画像化しました",
                       "pages too large for the pixel limit were rendered at a lower resolution"});
    if (r.text_truncated)
      ctx.report.note(item.path, "note",
                      {"pdf.text_truncated", "検索用テキストが上限を超えたため、後半のページには付けていません",
                       "the searchable text reached its limit; later pages have none"});

    const bool searchable = words > 0;
    Reason reason{"pdf.rasterized",
                  "PDF を画像化しました (" + n + "ページ" + (searchable ? "、テキスト検索可" : "") + ")",
                  "PDF rasterized (" + n + (r.page_count == 1 ? " page" : " pages") +
                      (searchable ? ", searchable text" : "") + ")"};
    return Outcome::replace(std::move(sink.bytes()), "application/pdf", pdf_name(item.name), std::move(reason));
  }

 private:
  Reason verdict(const PdfRasterizeResult& r, const Context& ctx) const {
    const std::string page = std::to_string(r.failed_page);
    switch (r.status) {
      case Status::Encrypted:
        return {"pdf.encrypted",
                "パスワードで保護された PDF のため中身を検査できず、保留しました (遮断)。原本はインターネット接続系で保管されています。"
                "パスワードが分かれば LGWAN 側の画面で入力して取り出せます",
                "held (blocked): the PDF is password-protected, so its content cannot be inspected; with the password "
                "you can open it on the LGWAN page; the original is kept "
                "on the Internet side"};
      case Status::WrongPassword:
        return {"pdf.wrong_password",
                "パスワードが合わないため PDF を開けず遮断しました。原本はインターネット接続系で保管されています",
                "blocked: the password does not open the PDF; the original is kept on the Internet side"};
      case Status::NoPages:
        return {"pdf.broken", "PDF にページがないため遮断しました", "blocked: the PDF has no pages"};
      case Status::TooManyPages:
        return {"pdf.pages_limit",
                "PDF のページ数 (" + std::to_string(r.page_count) + ") が上限 (" + std::to_string(options_.max_pages) +
                    ") を超えるため遮断しました",
                "blocked: the PDF has " + std::to_string(r.page_count) + " pages, more than the limit of " +
                    std::to_string(options_.max_pages)};
      case Status::PageTooLarge:
        return {"pdf.page_pixels", page + " ページ目が大きすぎて画素数の上限内で画像化できないため遮断しました",
                "blocked: page " + page + " is too large to render within the pixel limit"};
      case Status::PageNoSize:
        return {"pdf.page_size", page + " ページ目に大きさがないため遮断しました",
                "blocked: page " + page + " has no size"};
      case Status::TimeUp:
        return {"limits.time",
                "処理時間の上限 (" + std::to_string(ctx.limits.max_seconds.count()) + " 秒) を超えたため遮断しました (" +
                    page + " ページ目)",
                "blocked: processing took longer than " + std::to_string(ctx.limits.max_seconds.count()) +
                    " seconds (at page " + page + ")"};
      case Status::OutputTooLarge:
        return {"limits.item_bytes", "画像化した PDF が大きさの上限を超えたため遮断しました",
                "blocked: the rasterized PDF is larger than the limit"};
      case Status::Broken:
      case Status::Done:
        break;
    }
    return {"pdf.broken", "PDF が壊れていて表示できないため遮断しました (" + r.detail + ")",
            "blocked: the PDF is broken and cannot be rendered (" + r.detail + ")"};
  }

  PdfRasterizeOptions options_;
};

}  // namespace

std::unique_ptr<Sanitizer> pdf_rasterize_sanitizer(const PdfRasterizeOptions& options) {
  return std::make_unique<PdfRasterize>(options);
}

std::unique_ptr<Sanitizer> make_pdf_rasterize(const toml::table& table) {
  PdfRasterizeOptions o;
  auto integer = [](const toml::node& node, std::string_view key, std::int64_t lo, std::int64_t hi) {
    const auto* value = node.as_integer();
    if (value == nullptr || value->get() < lo || value->get() > hi)
      throw ConfigError("pdf.rasterize: option \"" + std::string(key) + "\" must be an integer from " +
                        std::to_string(lo) + " to " + std::to_string(hi));
    return value->get();
  };
  for (const auto& [key, node] : table) {
    const std::string_view k = key.str();
    if (k == "dpi") {
      o.dpi = static_cast<double>(integer(node, k, 50, 600));
    } else if (k == "text_layer") {
      const auto* value = node.as_boolean();
      if (value == nullptr) throw ConfigError("pdf.rasterize: option \"text_layer\" must be true or false");
      o.text_layer = value->get();
    } else if (k == "jpeg_quality") {
      o.jpeg_quality = static_cast<int>(integer(node, k, 30, 100));
    } else if (k == "max_pages") {
      o.max_pages = static_cast<int>(integer(node, k, 1, 100000));
    } else if (k == "max_page_pixels") {
      o.max_page_pixels = static_cast<std::uint64_t>(integer(node, k, 100000, 400'000'000));
    } else if (k == "threads") {
      o.threads = static_cast<int>(integer(node, k, 0, 16));
    } else {
      throw ConfigError("pdf.rasterize: unknown option \"" + std::string(k) +
                        "\" (known: dpi, text_layer, jpeg_quality, max_pages, max_page_pixels, threads)");
    }
  }
  if (o.min_dpi > o.dpi) o.min_dpi = o.dpi;
  return pdf_rasterize_sanitizer(o);
}

std::uint64_t pdf_freetype_locked_calls() { return g_locked_calls.load(); }

bool pdf_render_parallel() { return freetype_interposed(); }

}  // namespace mukaika

// ---- FreeType face creation and destruction (see cairo_font_lock) ----
//
// The executable's definitions come before libfreetype's in the dynamic
// lookup, so poppler's and cairo's calls land here; each forwards to the
// next definition (libfreetype's) under the lock.

namespace {

template <typename F>
F next_freetype(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (!f) {
    std::fprintf(stderr, "mukaika: FreeType has no %s\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

// Held by each function below.
class FreeTypeLock {
 public:
  FreeTypeLock() : lock_(mukaika::cairo_font_lock()) { mukaika::g_locked_calls.fetch_add(1, std::memory_order_relaxed); }

 private:
  std::lock_guard<std::recursive_mutex> lock_;
};

}  // namespace

extern "C" {

FT_Error FT_New_Face(FT_Library library, const char* path, FT_Long face_index, FT_Face* face) {
  static const auto next = next_freetype<decltype(&FT_New_Face)>("FT_New_Face");
  FreeTypeLock lock;
  return next(library, path, face_index, face);
}

FT_Error FT_New_Memory_Face(FT_Library library, const FT_Byte* data, FT_Long size, FT_Long face_index, FT_Face* face) {
  static const auto next = next_freetype<decltype(&FT_New_Memory_Face)>("FT_New_Memory_Face");
  FreeTypeLock lock;
  return next(library, data, size, face_index, face);
}

FT_Error FT_Open_Face(FT_Library library, const FT_Open_Args* args, FT_Long face_index, FT_Face* face) {
  static const auto next = next_freetype<decltype(&FT_Open_Face)>("FT_Open_Face");
  FreeTypeLock lock;
  return next(library, args, face_index, face);
}

// The face's reference count is a plain integer that FT_Done_Face lowers.
FT_Error FT_Reference_Face(FT_Face face) {
  static const auto next = next_freetype<decltype(&FT_Reference_Face)>("FT_Reference_Face");
  FreeTypeLock lock;
  return next(face);
}

FT_Error FT_Done_Face(FT_Face face) {
  static const auto next = next_freetype<decltype(&FT_Done_Face)>("FT_Done_Face");
  FreeTypeLock lock;
  return next(face);
}

// Poppler maps a new font's codes to glyphs itself, outside cairo's lock
// on the face, and shares the face of a font file on this machine (a font
// the PDF does not embed) between all documents: keep its lookups apart.
FT_UInt FT_Get_Name_Index(FT_Face face, const FT_String* glyph_name) {
  static const auto next = next_freetype<decltype(&FT_Get_Name_Index)>("FT_Get_Name_Index");
  FreeTypeLock lock;
  return next(face, glyph_name);
}

FT_UInt FT_Get_Char_Index(FT_Face face, FT_ULong charcode) {
  static const auto next = next_freetype<decltype(&FT_Get_Char_Index)>("FT_Get_Char_Index");
  FreeTypeLock lock;
  return next(face, charcode);
}

}  // extern "C"
