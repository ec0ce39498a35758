// MaildirDelivery on a real file system, including a full one (tmpfs).
#include "relay/maildir_delivery.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "relay_test_support.h"

namespace mukaika {
namespace {

using testing::TempDir;

Envelope envelope_for(std::vector<std::string> recipients) {
  Envelope e;
  e.mail_from = "sender@example.com";
  e.recipients = std::move(recipients);
  return e;
}

const std::string kMessage = "From: sender@example.com\r\nSubject: hello\r\n\r\nbody\r\n";

TEST(MaildirDelivery, CreatesTheMaildirAndDeliversOneCopyPerRecipient) {
  TempDir tmp;
  const auto dir = tmp.path() / "var" / "lgwan-maildir";
  MaildirDelivery maildir(dir);
  EXPECT_EQ(maildir.describe(), "maildir " + dir.string());
  for (const char* sub : {"tmp", "new", "cur"}) EXPECT_TRUE(std::filesystem::is_directory(dir / sub)) << sub;

  auto env = envelope_for({"a@lg.example.jp", "b@lg.example.jp"});
  auto results = maildir.deliver(env, env.recipients, kMessage);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 250) << r.reply.text;
    EXPECT_TRUE(r.reply.ok());
  }
  auto files = testing::files_in(dir / "new");
  ASSERT_EQ(files.size(), 2u);
  std::vector<std::string> contents;
  for (const auto& f : files) contents.push_back(testing::read_file(f));
  std::sort(contents.begin(), contents.end());
  EXPECT_EQ(contents[0], "Delivered-To: a@lg.example.jp\r\n" + kMessage);
  EXPECT_EQ(contents[1], "Delivered-To: b@lg.example.jp\r\n" + kMessage);
  EXPECT_TRUE(testing::files_in(dir / "tmp").empty());
  EXPECT_TRUE(testing::files_in(dir / "cur").empty());
  EXPECT_NE(files[0].filename(), files[1].filename());
}

TEST(MaildirDelivery, ConstructionFailsWithAClearError) {
  TempDir tmp;
  testing::write_file(tmp.path() / "file", "not a directory");
  try {
    MaildirDelivery maildir(tmp.path() / "file" / "maildir");
    FAIL() << "expected MaildirError";
  } catch (const MaildirError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find((tmp.path() / "file").string()), std::string::npos) << what;
    EXPECT_NE(what.find("Not a directory"), std::string::npos) << what;
  }
}

TEST(MaildirDelivery, ControlCharactersInARecipientAreRefused) {
  TempDir tmp;
  MaildirDelivery maildir(tmp.path() / "md");
  auto results = maildir.deliver(envelope_for({}), {"a@lg.example.jp\r\nBcc: x@example.com"}, kMessage);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].reply.permanent());
  EXPECT_TRUE(testing::files_in(tmp.path() / "md" / "new").empty());
}

// A tmpfs of 16 KiB; unmounted at the end.
class SmallTmpfs {
 public:
  SmallTmpfs() {
    mounted_ = ::mount("tmpfs", tmp_.path().c_str(), "tmpfs", 0, "size=16k") == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(tmp_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::filesystem::path& path() const { return tmp_.path(); }

 private:
  TempDir tmp_;
  bool mounted_ = false;
};

TEST(MaildirDelivery, FullDiskIsTemporaryAndLeavesNothing) {
  SmallTmpfs fs;
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)";
  MaildirDelivery maildir(fs.path() / "md");
  auto env = envelope_for({"a@lg.example.jp", "b@lg.example.jp"});
  const std::string big = "Subject: big\r\n\r\n" + std::string(64 * 1024, 'x') + "\r\n";
  auto results = maildir.deliver(env, env.recipients, big);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_EQ(r.reply.enhanced, "4.3.0");
    EXPECT_TRUE(r.reply.temporary());
    EXPECT_NE(r.reply.text.find("No space left on device"), std::string::npos) << r.reply.text;
  }
  EXPECT_TRUE(testing::files_in(fs.path() / "md" / "new").empty());
  EXPECT_TRUE(testing::files_in(fs.path() / "md" / "tmp").empty());

  // A small message still fits: the failure left no debris behind.
  auto ok = maildir.deliver(env, {"a@lg.example.jp"}, kMessage);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].reply.code, 250) << ok[0].reply.text;
}

TEST(MaildirDelivery, ReadOnlyFileSystemIsTemporary) {
  SmallTmpfs fs;
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)";
  MaildirDelivery maildir(fs.path() / "md");
  if (::mount("tmpfs", fs.path().c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=16k") != 0)
    GTEST_SKIP() << "cannot remount read-only";
  auto results = maildir.deliver(envelope_for({}), {"a@lg.example.jp"}, kMessage);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_NE(results[0].reply.text.find("Read-only file system"), std::string::npos) << results[0].reply.text;
  EXPECT_TRUE(testing::files_in(fs.path() / "md" / "new").empty());
}

}  // namespace
}  // namespace mukaika
