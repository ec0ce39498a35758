// DropBox: durable uploads, fail-closed processing, recovery after a crash.
#include "http/drop_box.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "http/store_test.h"
#include "queue/durable_io.h"

namespace mukaika::http {
namespace {

namespace fs = std::filesystem;

class DropBoxTest : public StoreTest {
 protected:
  std::unique_ptr<DropBox> open(FileSanitizer f, DropBox::Options o = {}) {
    o.retry_delay = std::chrono::seconds(0);
    return std::make_unique<DropBox>(dir_ / "box", *audit_, std::move(f), o);
  }

  static SanitizedFile upper(const std::string&, const std::string& name, std::string bytes) {
    for (char& c : bytes) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    SanitizedFile f;
    f.verdict = "sanitized";
    f.bytes = bytes;
    f.name = name;
    f.type = "text/plain";
    f.report = {{"actions", nlohmann::json::array({{{"action", "convert"}, {"reason", "upper-cased"}}})}};
    return f;
  }

  DropItem put(DropBox& box, const std::string& bytes, const std::string& name = "a.txt") {
    auto up = box.begin_upload();
    up->write(bytes.substr(0, bytes.size() / 2));
    up->write(bytes.substr(bytes.size() / 2));
    DropItem item;
    item.name = name;
    item.uploader = "alice";
    item.recipient = "情報政策課";
    return box.commit(*up, item);
  }

  std::string audit_text() { return queue_detail::read_file(dir_ / "audit.jsonl"); }

};

TEST_F(DropBoxTest, CommittedUploadIsDurableAndQueued) {
  auto box = open(upper);
  DropItem item = put(*box, "hello world");
  EXPECT_TRUE(DropBox::valid_id(item.id));
  EXPECT_EQ(item.status, ItemStatus::Queued);
  EXPECT_EQ(item.size, 11u);
  EXPECT_EQ(item.sha256, queue_detail::sha256_hex("hello world"));
  EXPECT_TRUE(fs::exists(dir_ / "box" / "items" / item.id / "meta.json"));
  EXPECT_EQ(queue_detail::read_file(dir_ / "box" / "items" / item.id / "original"), "hello world");
  EXPECT_TRUE(fs::is_empty(dir_ / "box" / "tmp"));
  EXPECT_NE(audit_text().find("\"type\":\"upload\""), std::string::npos);
  // Not served before it is sanitized.
  EXPECT_FALSE(box->output_path(item.id));
}

TEST_F(DropBoxTest, UncommittedUploadLeavesNothing) {
  auto box = open(upper);
  {
    auto up = box->begin_upload();
    up->write("half of a file");
  }  // the client went away
  EXPECT_TRUE(fs::is_empty(dir_ / "box" / "tmp"));
  EXPECT_TRUE(fs::is_empty(dir_ / "box" / "items"));
  EXPECT_TRUE(box->list(nullptr).empty());
}

TEST_F(DropBoxTest, SanitizedOutputIsServedOnlyWhenDone) {
  auto box = open(upper);
  DropItem item = put(*box, "hello");
  box->process_pending();
  auto done = box->find(item.id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, ItemStatus::Done);
  EXPECT_EQ(done->verdict, "sanitized");
  auto path = box->output_path(item.id);
  ASSERT_TRUE(path);
  EXPECT_EQ(queue_detail::read_file(*path), "HELLO");
  EXPECT_EQ(done->sha256_output, "");  // as the sanitizer said (none given here)
  EXPECT_NE(audit_text().find("\"type\":\"upload_result\""), std::string::npos);
  auto s = box->stats();
  EXPECT_EQ(s.by_verdict["sanitized"], 1u);
  EXPECT_EQ(s.seconds.size(), 1u);
}

TEST_F(DropBoxTest, BlockedItemHasNoOutput) {
  auto box = open([](const std::string&, const std::string&, std::string) {
    SanitizedFile f;
    f.verdict = "blocked";
    f.reason = "ウイルスを検出しました";
    f.reason_en = "a virus was found";
    return f;
  });
  DropItem item = put(*box, "X5O!P%@AP");
  box->process_pending();
  auto b = box->find(item.id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, ItemStatus::Blocked);
  EXPECT_EQ(b->reason_en, "a virus was found");
  EXPECT_FALSE(box->output_path(item.id));
  EXPECT_FALSE(fs::exists(dir_ / "box" / "items" / item.id / "output"));
}

TEST_F(DropBoxTest, OriginalOverTheLimitIsBlockedUnread) {
  // Never read into memory nor sent to the sanitizer (its frame limit).
  std::atomic<int> calls{0};
  DropBox::Options o;
  o.max_file_bytes = 10;
  auto box = open(
      [&](const std::string& id, const std::string& name, std::string bytes) {
        ++calls;
        return upper(id, name, std::move(bytes));
      },
      o);
  DropItem big = put(*box, "eleven byte");
  DropItem small = put(*box, "ten bytes!", "b.txt");
  box->process_pending();
  auto b = box->find(big.id);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, ItemStatus::Blocked);
  EXPECT_EQ(b->reason_en, "blocked: larger than 10 bytes");
  EXPECT_EQ(b->report["actions"][0]["code"], "limits.item_bytes");
  EXPECT_FALSE(box->output_path(big.id));
  EXPECT_EQ(box->find(small.id)->status, ItemStatus::Done);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(DropBoxTest, UndecidedIsRetriedThenFailedNeverPassed) {
  std::atomic<int> calls{0};
  DropBox::Options o;
  o.max_attempts = 3;
  auto box = open(
      [&](const std::string&, const std::string&, std::string) -> SanitizedFile {
        ++calls;
        throw std::runtime_error("the sanitizer service is gone");
      },
      o);
  DropItem item = put(*box, "data");
  box->process_pending();  // retry_delay 0: all attempts in one pass
  EXPECT_EQ(calls.load(), 3);
  auto f = box->find(item.id);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->status, ItemStatus::Failed);
  EXPECT_NE(f->reason_en.find("the sanitizer service is gone"), std::string::npos);
  EXPECT_FALSE(box->output_path(item.id));
}

TEST_F(DropBoxTest, CrashWhileProcessingIsTakenUpAgain) {
  std::string id;
  {
    auto box = open(upper);
    id = put(*box, "abc").id;
    // What a crash mid-sanitizing leaves: status processing on disk.
    auto meta = nlohmann::json::parse(queue_detail::read_file(dir_ / "box" / "items" / id / "meta.json"));
    meta["status"] = "processing";
    queue_detail::replace_file_durable(dir_ / "box" / "items" / id, "meta.json", meta.dump());
    // And an upload that never got its 202.
    auto up = box->begin_upload();
    up->write("partial");
    fs::create_directories(dir_ / "box" / "tmp" / "leftover");
  }
  auto box = open(upper);
  EXPECT_TRUE(fs::is_empty(dir_ / "box" / "tmp"));
  ASSERT_TRUE(box->find(id));
  EXPECT_EQ(box->find(id)->status, ItemStatus::Queued);
  box->process_pending();
  EXPECT_EQ(box->find(id)->status, ItemStatus::Done);
  EXPECT_EQ(queue_detail::read_file(*box->output_path(id)), "ABC");
}

TEST_F(DropBoxTest, OneStoreOneProcess) {
  auto box = open(upper);
  EXPECT_THROW(open(upper), DropBoxError);
}

TEST_F(DropBoxTest, ThreadProcessesWhatArrives) {
  auto box = open(upper);
  box->start();
  DropItem item = put(*box, "thread");
  for (int i = 0; i < 200 && box->find(item.id)->status != ItemStatus::Done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(box->find(item.id)->status, ItemStatus::Done);
  box->stop();
}

TEST_F(DropBoxTest, ExpiryRemovesOldItemsAndRecordsIt) {
  DropBox::Options o;
  o.keep_days = 1;
  auto box = open(upper, o);
  DropItem item = put(*box, "old");
  box->process_pending();
  EXPECT_EQ(box->expire(std::chrono::system_clock::now()), 0u);
  EXPECT_EQ(box->expire(std::chrono::system_clock::now() + std::chrono::hours(25)), 1u);
  EXPECT_FALSE(box->find(item.id));
  EXPECT_FALSE(fs::exists(dir_ / "box" / "items" / item.id));
  EXPECT_NE(audit_text().find("upload_expired"), std::string::npos);
  // One record for the run: how many originals, of which day.
  const std::string day = queue_detail::iso8601_local(item.received).substr(0, 10);
  EXPECT_NE(audit_text().find(R"("count":1,"days":[")" + day + R"("])"), std::string::npos) << audit_text();
}

TEST_F(DropBoxTest, ListFiltersNewestFirstAndPickUpIsRecorded) {
  auto box = open(upper);
  DropItem a = put(*box, "a", "a.txt");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  DropItem b = put(*box, "b", "b.txt");
  auto all = box->list(nullptr);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, b.id);
  auto only_a = box->list([&](const DropItem& i) { return i.name == "a.txt"; });
  ASSERT_EQ(only_a.size(), 1u);
  box->mark_picked_up(a.id, "staff");
  EXPECT_TRUE(box->find(a.id)->picked_up);
  EXPECT_NE(audit_text().find("upload_picked_up"), std::string::npos);
}

}  // namespace
}  // namespace mukaika::http
