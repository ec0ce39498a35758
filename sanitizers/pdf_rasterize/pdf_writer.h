// A streaming PDF writer for rasterized documents.
//
// Promises: the output holds, per page, one image at the page's size and
// optionally an invisible text layer (text render mode 3) in a glyphless
// font whose ToUnicode map gives the real characters, so search and copy
// work. Nothing else: no actions, links, annotations, forms, outlines,
// metadata, embedded files or JavaScript: the writer has no way to express
// them. Pages are written as they arrive; only object offsets and the
// character map stay in memory, so memory does not grow with the pixels of
// earlier pages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mukaika {

// A JPEG laid over part of a page (a photograph on a text page), at pixel
// position x, y (top-left origin) of the page image.
struct PageOverlay {
  int x = 0, y = 0, width = 0, height = 0;
  enum class Color { Gray, Rgb } color = Color::Gray;
  std::string data;  // JPEG
};

// One page's pixels, already compressed.
struct PageImage {
  enum class Color { Gray, Rgb, Indexed };
  enum class Filter { Flate, Dct };
  int width = 0;   // pixels
  int height = 0;  // pixels
  Color color = Color::Gray;
  int bits = 8;    // 1 (bilevel, 1 = white), 4 or 8 a sample
  Filter filter = Filter::Flate;
  std::string palette;  // Indexed: RGB triples, at most 256
  std::string data;
  std::vector<PageOverlay> overlays;  // drawn over the page image, in order

  // "bilevel", "gray4", "gray", "indexed4", "indexed", "rgb4", "rgb",
  // "gray-jpeg" or "rgb-jpeg"; "+jpeg" when photographs are laid over it.
  std::string encoding() const;
};

// A word of the text layer. Box in points, origin top-left of the page as
// displayed (rotation applied).
struct TextWord {
  std::u32string text;
  double x = 0, y = 0, width = 0, height = 0;
  int rotation = 0;  // reading direction: 0 right, 1 down, 2 left, 3 up
  bool space_after = false;
};

struct RasterPage {
  double width_pt = 0;   // page size as displayed
  double height_pt = 0;
  PageImage image;
  std::vector<TextWord> words;
};

// Where the PDF bytes go. write() may throw to stop the writer (an output
// limit); the writer then must not be used again.
class PdfSink {
 public:
  virtual ~PdfSink() = default;
  virtual void write(std::string_view bytes) = 0;
};

// Appends to a string, refusing to grow beyond `limit` bytes.
class StringSink : public PdfSink {
 public:
  class Full : public std::exception {
   public:
    const char* what() const noexcept override { return "output limit reached"; }
  };
  explicit StringSink(std::uint64_t limit) : limit_(limit) {}
  void write(std::string_view bytes) override;
  std::string& bytes() { return out_; }

 private:
  std::uint64_t limit_;
  std::string out_;
};

class PdfWriter {
 public:
  explicit PdfWriter(PdfSink& sink);
  ~PdfWriter();
  PdfWriter(const PdfWriter&) = delete;
  PdfWriter& operator=(const PdfWriter&) = delete;

  // Writes one page; returns the bytes it took (image, content, page).
  std::uint64_t add_page(const RasterPage& page);
  // Writes the page tree, the font (when any page had text), the catalog
  // and the cross-reference table.
  void finish();

  int pages() const { return static_cast<int>(page_objects_.size()); }
  std::uint64_t bytes_written() const { return offset_; }

 private:
  int new_object();
  void begin_object(int number);
  void write(std::string_view s);
  void write_stream_object(int number, const std::string& dict_entries, std::string_view data);
  std::string text_layer(const RasterPage& page);
  std::uint16_t cid_for(char32_t c);
  std::string deflate(std::string_view data);

  PdfSink& sink_;
  std::uint64_t offset_ = 0;
  std::vector<std::uint64_t> offsets_;  // by object number - 1; 0 = not written
  std::vector<int> page_objects_;
  std::unordered_map<char32_t, std::uint16_t> cids_;
  std::vector<char32_t> unicode_of_cid_;  // index = CID
  bool font_used_ = false;
  struct Compressor;
  std::unique_ptr<Compressor> compressor_;
};

// The glyphless TrueType font of the text layer: two empty glyphs, 500
// units wide. Exposed for tests.
std::string glyphless_truetype_font();

}  // namespace mukaika
