// pdf_first_page_png: a small PNG of the first page, nothing for what cannot be rendered.
#include "pdf_rasterize/pdf_thumbnail.h"

#include <gtest/gtest.h>

#include "pdf_rasterize/sample_pdfs.h"

namespace mukaika {
namespace {

using pdf_samples::sized_pdf;

// Width and height from the PNG's IHDR chunk.
std::pair<int, int> png_size(const std::string& png) {
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned char>(png[at]) << 24) | (static_cast<unsigned char>(png[at + 1]) << 16) |
           (static_cast<unsigned char>(png[at + 2]) << 8) | static_cast<unsigned char>(png[at + 3]);
  };
  return {static_cast<int>(be32(16)), static_cast<int>(be32(20))};
}

TEST(PdfThumbnail, FirstPageFitsTheBox) {
  auto png = pdf_first_page_png(sized_pdf(595, 842), 240);  // A4 portrait
  ASSERT_TRUE(png);
  ASSERT_GT(png->size(), 24u);
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto [w, h] = png_size(*png);
  EXPECT_EQ(h, 240);
  EXPECT_NEAR(w, 170, 1);
  auto wide = pdf_first_page_png(sized_pdf(842, 595), 240);
  ASSERT_TRUE(wide);
  EXPECT_EQ(png_size(*wide).first, 240);
}

TEST(PdfThumbnail, NothingForWhatCannotBeRendered) {
  EXPECT_FALSE(pdf_first_page_png("not a pdf at all", 240));
  EXPECT_FALSE(pdf_first_page_png("", 240));
  EXPECT_FALSE(pdf_first_page_png(sized_pdf(595, 842), 0));
  // Truncated: Poppler may still reconstruct a page or give up; either way no crash.
  const std::string pdf = sized_pdf(595, 842);
  (void)pdf_first_page_png(pdf.substr(0, pdf.size() / 3), 240);
}

}  // namespace
}  // namespace mukaika
