// search_audit: filters over the JSON Lines audit log, newest first, bounded; CSV for Excel.
#include "http/audit_search.h"

#include <gtest/gtest.h>

#include <fstream>

namespace mukaika::http {
namespace {

namespace fs = std::filesystem;

class AuditSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = fs::temp_directory_path() / ("audit_search_test_" + std::to_string(::getpid()) + ".jsonl");
    std::ofstream out(path_);
    out << R"({"type":"message","queue_id":"q1","time":"2026-12-01T09:00:00.000+09:00","mail_from":"a@example.jp","recipients":["staff@city.lg.jp"],"message_id":"<m1@example.jp>","verdict":"sanitized","actions":{"actions":[]},"reason":""})" "\n"
        << "not json at all\n"
        << R"({"type":"message","queue_id":"q2","time":"2026-12-03T10:00:00.000+09:00","mail_from":"evil@example.com","recipients":["kacho@city.lg.jp","staff@city.lg.jp"],"message_id":"<m2@example.com>","verdict":"blocked","actions":{"actions":[{"action":"block","virus":"Eicar-Signature"}]},"reason":"ウイルス"})" "\n"
        << R"({"type":"delivery","queue_id":"q1","time":"2026-12-01T09:00:01.000+09:00","mail_from":"a@example.jp","recipient":"staff@city.lg.jp","reply":{"code":250,"text":"ok"},"outcome":"delivered"})" "\n"
        << R"({"type":"upload_result","id":"u1","time":"2026-12-05T11:00:00.000+09:00","uploader":"demo-uploader","recipient":"情報政策課","name":"見積書.pdf","verdict":"sanitized","actions":{"actions":[]}})" "\n"
        << R"({"type":"signin","time":"2026-12-06T08:00:00.000+09:00","account":"demo-staff","zone":"lgwan","client_address":"10.0.0.5","ok":false})" "\n";
  }
  void TearDown() override { fs::remove(path_); }
  fs::path path_;
};

TEST_F(AuditSearchTest, EverythingNewestFirstSkippingGarbage) {
  AuditResult r = search_audit(path_, {});
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.rows.front().type, "signin");
  EXPECT_EQ(r.rows.front().verdict, "failed");
  EXPECT_EQ(r.rows.back().id, "q1");
}

TEST_F(AuditSearchTest, Filters) {
  AuditQuery q;
  q.virus = "eicar";
  AuditResult r = search_audit(path_, q);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].id, "q2");
  EXPECT_EQ(r.rows[0].virus, "Eicar-Signature");
  EXPECT_EQ(r.rows[0].recipients, "kacho@city.lg.jp staff@city.lg.jp");

  q = {};
  q.from = "2026-12-02";
  q.to = "2026-12-05";
  r = search_audit(path_, q);
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].id, "u1");
  EXPECT_EQ(r.rows[1].id, "q2");

  q = {};
  q.sender = "A@EXAMPLE.JP";
  EXPECT_EQ(search_audit(path_, q).rows.size(), 2u);  // the message and its delivery
  q = {};
  q.message_id = "<m2@";
  EXPECT_EQ(search_audit(path_, q).rows.size(), 1u);
  q = {};
  q.verdict = "delivered";
  EXPECT_EQ(search_audit(path_, q).rows.size(), 1u);
  q = {};
  q.recipient = "情報政策課";
  EXPECT_EQ(search_audit(path_, q).rows.size(), 1u);
}

TEST_F(AuditSearchTest, BoundedAndSaysSo) {
  AuditQuery q;
  q.max = 2;
  AuditResult r = search_audit(path_, q);
  EXPECT_EQ(r.rows.size(), 2u);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.rows[0].type, "signin");  // the newest kept
}

TEST_F(AuditSearchTest, CsvForExcel) {
  AuditResult r = search_audit(path_, {});
  std::string csv = audit_csv(r.rows);
  EXPECT_EQ(csv.substr(0, 3), "\xEF\xBB\xBF");
  EXPECT_NE(csv.find("time,type,id,sender,recipients,message_id,verdict,virus,detail\r\n"), std::string::npos);
  EXPECT_NE(csv.find("見積書.pdf"), std::string::npos);
  EXPECT_NE(csv.find("<m2@example.com>"), std::string::npos);
  AuditRow tricky;
  tricky.detail = "a \"quoted\", name\r\nnext";
  EXPECT_NE(audit_csv({tricky}).find("\"a \"\"quoted\"\", name\r\nnext\"\r\n"), std::string::npos);
}

TEST(AuditSearch, ReleasesAndRetentionAreRows) {
  const fs::path path = fs::temp_directory_path() / ("audit_search_release_" + std::to_string(::getpid()) + ".jsonl");
  {
    std::ofstream out(path);
    out << R"({"type":"release.approved","id":"r1","time":"2026-12-07T10:00:00.000+09:00","subject":"mail:q1","name":"<m1@example.jp>","requester":"sato","by":"kacho","state":"approved","detail":"業務上必要","policy_exception":true})" "\n"
        << R"({"type":"quarantine_expired","time":"2026-12-08T00:00:00.000+09:00","count":3,"days":["2026-11-20","2026-11-21"],"keep_days":14})" "\n";
  }
  AuditResult r = search_audit(path, {});
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[1].type, "release.approved");
  EXPECT_EQ(r.rows[1].id, "r1");
  EXPECT_EQ(r.rows[1].sender, "kacho");
  EXPECT_EQ(r.rows[1].recipients, "sato");
  EXPECT_EQ(r.rows[1].verdict, "approved");
  EXPECT_EQ(r.rows[1].detail, "mail:q1 <m1@example.jp>: 業務上必要 [policy_exception]");
  EXPECT_EQ(r.rows[0].detail, "3: 2026-11-20 2026-11-21");
  AuditQuery q;
  q.sender = "kacho";  // who decided
  EXPECT_EQ(search_audit(path, q).rows.size(), 1u);
  EXPECT_NE(audit_csv(r.rows).find("release.approved,r1,kacho,sato"), std::string::npos);
  fs::remove(path);
}

TEST(AuditSearch, MissingLogIsEmpty) {
  EXPECT_TRUE(search_audit("/nonexistent/audit.jsonl", {}).rows.empty());
}

}  // namespace
}  // namespace mukaika::http
