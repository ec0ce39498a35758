// Helper of the PDF rasterizing benchmark (tests/bench/pdf/run.sh).
//
//   pdf_bench make OUT.pdf PAGES
//       writes the benchmark document: two text pages (Latin, Japanese,
//       line art) for every photographic page.
//   pdf_bench rasterize IN.pdf OUT.pdf [--baseline] [--threads N] [--dpi D] [--per-page]
//       runs mukaika's rasterizer with the output streamed to a file, as the
//       gateway does; --baseline writes every page as lossless RGB Flate
//       (what Dangerzone writes) for the size comparison. Prints one line of
//       "key=value" results.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "pdf_rasterize/pdf_rasterize.h"
#include "pdf_rasterize/sample_pdfs.h"

namespace {

class FileSink : public mukaika::PdfSink {
 public:
  explicit FileSink(const std::string& path) : out_(path, std::ios::binary) {
    if (!out_) throw std::runtime_error("cannot write " + path);
  }
  void write(std::string_view bytes) override { out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); }

 private:
  std::ofstream out_;
};

int usage() {
  std::cerr << "usage: pdf_bench make OUT.pdf PAGES\n"
               "       pdf_bench rasterize IN.pdf OUT.pdf [--baseline] [--threads N] [--dpi D] [--per-page]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string command = argv[1];
  try {
    if (command == "make") {
      const int pages = std::atoi(argv[3]);
      if (pages <= 0) return usage();
      std::ofstream(argv[2], std::ios::binary) << mukaika::pdf_samples::bench_pdf(pages);
      return 0;
    }
    if (command != "rasterize") return usage();
    mukaika::PdfRasterizeOptions options;
    options.max_pages = 100000;
    bool per_page = false;
    for (int i = 4; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--baseline") {
        options.lossless_rgb = true;
        options.text_layer = false;  // Dangerzone without OCR has none
      } else if (a == "--threads" && i + 1 < argc) {
        options.threads = std::atoi(argv[++i]);
      } else if (a == "--dpi" && i + 1 < argc) {
        options.dpi = std::atof(argv[++i]);
      } else if (a == "--per-page") {
        per_page = true;
      } else {
        return usage();
      }
    }
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string pdf = buffer.str();
    FileSink sink(argv[3]);
    const auto start = std::chrono::steady_clock::now();
    const auto r = mukaika::rasterize_pdf(pdf, options, sink);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r.status != mukaika::PdfRasterizeResult::Status::Done) {
      std::cerr << "pdf_bench: rasterizing failed (status " << static_cast<int>(r.status) << ", " << r.detail << ")\n";
      return 1;
    }
    std::map<std::string, int> encodings;
    for (const auto& p : r.pages) ++encodings[p.encoding];
    std::printf("pages=%d seconds=%.3f pages_per_second=%.2f input_bytes=%zu output_bytes=%llu bytes_per_page=%llu",
                r.page_count, seconds, r.page_count / seconds, pdf.size(),
                static_cast<unsigned long long>(r.output_bytes),
                static_cast<unsigned long long>(r.output_bytes / static_cast<unsigned>(r.page_count)));
    // Whether pages rendered in parallel, and how often FreeType's lock was taken.
    std::printf(" render_parallel=%d freetype_locked_calls=%llu", mukaika::pdf_render_parallel() ? 1 : 0,
                static_cast<unsigned long long>(mukaika::pdf_freetype_locked_calls()));
    for (const auto& [e, n] : encodings) std::printf(" %s=%d", e.c_str(), n);
    std::printf("\n");
    if (per_page)
      for (std::size_t i = 0; i < r.pages.size(); ++i)
        std::printf("page %zu: %s %llu bytes, %d words, tone %.3f levels %d\n", i + 1, r.pages[i].encoding.c_str(),
                    static_cast<unsigned long long>(r.pages[i].bytes), r.pages[i].words, r.pages[i].tone_fraction, r.pages[i].area_levels);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "pdf_bench: " << e.what() << "\n";
    return 1;
  }
}
