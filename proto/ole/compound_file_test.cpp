#include "ole/compound_file.h"

#include <gtest/gtest.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mukaika::ole {
namespace {

const std::filesystem::path kCorpus = "/work/shared/corpus/oletools";
const std::filesystem::path kClamav = "/usr/share/clamav-testfiles";

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The smallest valid compound file: header, one FAT sector, one directory
// sector holding the root entry.
std::string minimal_cfb() {
  std::string b(512 * 3, '\0');
  const unsigned char sig[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
  std::memcpy(b.data(), sig, 8);
  b[0x1A] = 0x3E;  // minor/major version
  b[0x1C] = static_cast<char>(0xFE);
  b[0x1D] = static_cast<char>(0xFF);
  b[0x1E] = 9;     // 512-byte sectors
  b[0x20] = 6;
  b[0x2C] = 1;     // one FAT sector
  b[0x30] = 1;     // directory starts at sector 1
  for (int i = 0; i < 4; ++i) b[0x44 + i] = static_cast<char>(0xFE);  // no DIFAT
  b[0x4C] = 0;     // FAT is sector 0
  for (int i = 0x50; i < 512; ++i) b[i] = static_cast<char>(0xFF);
  // FAT (sector 0 at offset 512): sector 0 = FAT, sector 1 = end of chain.
  std::size_t fat = 512;
  const unsigned char fatsect[4] = {0xFD, 0xFF, 0xFF, 0xFF}, eoc[4] = {0xFE, 0xFF, 0xFF, 0xFF};
  std::memcpy(b.data() + fat, fatsect, 4);
  std::memcpy(b.data() + fat + 4, eoc, 4);
  for (std::size_t i = 8; i < 512; ++i) b[fat + i] = static_cast<char>(0xFF);
  // Directory (sector 1 at offset 1024): "Root Entry".
  std::size_t dir = 1024;
  const char* name = "Root Entry";
  for (int i = 0; name[i]; ++i) b[dir + i * 2] = name[i];
  b[dir + 0x40] = 22;
  b[dir + 0x42] = 5;
  return b;
}

TEST(CompoundFile, MinimalFileHasRoot) {
  auto d = read_directory(minimal_cfb());
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].name, "Root Entry");
}

TEST(CompoundFile, RejectsNonCfbAndTruncation) {
  EXPECT_FALSE(read_directory("hello"));
  EXPECT_FALSE(read_directory(std::string(600, 'x')));
  std::string b = minimal_cfb();
  EXPECT_FALSE(read_directory(b.substr(0, 1000)));  // directory sector missing
}

TEST(CompoundFile, RejectsLoopingChains) {
  std::string b = minimal_cfb();
  b[512 + 4] = 1;  // sector 1 -> sector 1
  b[512 + 5] = b[512 + 6] = b[512 + 7] = 0;
  EXPECT_FALSE(read_directory(b));
}

TEST(CompoundFile, SurvivesEveryTruncationAndByteFlip) {
  std::string b = minimal_cfb();
  for (std::size_t n = 0; n < b.size(); n += 7) (void)read_directory(b.substr(0, n));
  for (std::size_t i = 0; i < 0x200; ++i) {
    std::string c = b;
    c[i] = static_cast<char>(c[i] ^ 0xFF);
    (void)read_directory(c);
  }
}

TEST(CompoundFile, RealDocuments) {
  if (!std::filesystem::exists(kCorpus)) GTEST_SKIP() << kCorpus << " missing (../shared/corpus)";
  auto ppt = read_directory(read(kCorpus / "encrypted/encrypted.ppt"));
  ASSERT_TRUE(ppt);
  EXPECT_TRUE(has_entry(*ppt, "EncryptedSummary"));
  auto vba = read_directory(read(kCorpus / "olevba/sample_with_vba.ppt"));
  ASSERT_TRUE(vba);
  EXPECT_FALSE(has_entry(*vba, "EncryptedSummary"));
  EXPECT_TRUE(has_entry(*vba, "PowerPoint Document"));
  auto doc = read_directory(read(kCorpus / "msodde/harmless-clean.doc"));
  ASSERT_TRUE(doc);
  EXPECT_TRUE(has_entry(*doc, "WordDocument"));
}

TEST(CompoundFile, ClamavOleDocument) {
  if (!std::filesystem::exists(kClamav / "clam.ole.doc")) GTEST_SKIP() << "clamav-testfiles missing";
  auto d = read_directory(read(kClamav / "clam.ole.doc"));
  ASSERT_TRUE(d);
  EXPECT_GT(d->size(), 1u);
}

}  // namespace
}  // namespace mukaika::ole
