// ReleaseDesk and the role checks of the release of originals: durable
// requests, infected originals never released, approvers never deciding
// their own requests, downloads only for the requester where policy says.
#include "http/release_desk.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "http/store_test.h"
#include "http/web_app.h"
#include "queue/durable_io.h"

namespace mukaika::http {
namespace {

namespace fs = std::filesystem;
using SysClock = std::chrono::system_clock;

AccountConfig account(const std::string& name, std::vector<std::string> roles, std::string department = "") {
  AccountConfig a;
  a.name = name;
  a.roles = std::move(roles);
  a.department = std::move(department);
  return a;
}

class ReleaseDeskTest : public StoreTest {
 protected:
  std::unique_ptr<ReleaseDesk> open(bool deliver_to_lgwan = false) {
    ReleaseDesk::Options o;
    o.download_hours = std::chrono::hours(24);
    o.deliver_to_lgwan = deliver_to_lgwan;
    o.clock = [this] { return now_; };
    return std::make_unique<ReleaseDesk>(dir_ / "releases", *audit_, o);
  }
  std::vector<nlohmann::json> audit_records() {
    std::vector<nlohmann::json> out;
    std::istringstream in(queue_detail::read_file(dir_ / "audit.jsonl"));
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  SysClock::time_point now_ = SysClock::now();
  const SubjectFacts clean_{"report.pdf", "sanitized", false};
  const SubjectFacts infected_{"eicar.zip", "blocked", true};
};

TEST_F(ReleaseDeskTest, RequestApproveDownloadExpireIsDurableAndAudited) {
  auto desk = open();
  ReleaseRequest r = desk->request("file:abc", "sato", "取引先の原本が必要", clean_);
  EXPECT_EQ(r.state, ReleaseState::Pending);
  EXPECT_TRUE(ReleaseDesk::valid_id(r.id));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "releases" / (r.id + ".json")));
  // Asking again while it is open gives the same request.
  EXPECT_EQ(desk->request("file:abc", "sato", "again", clean_).id, r.id);

  ReleaseRequest decided;
  EXPECT_EQ(desk->decide(r.id, "kacho", true, "業務上必要と認めます", clean_, &decided), ReleaseDesk::Outcome::Done);
  EXPECT_EQ(decided.state, ReleaseState::Approved);
  EXPECT_EQ(decided.expires, now_ + std::chrono::hours(24));
  EXPECT_FALSE(decided.policy_exception);
  // Decided once only.
  EXPECT_EQ(desk->decide(r.id, "kacho", false, "", clean_), ReleaseDesk::Outcome::NotPending);

  // A new desk on the same directory sees the same state (the file is the truth).
  auto again = open();
  auto found = again->find(r.id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->state, ReleaseState::Approved);
  EXPECT_EQ(found->decided_by, "kacho");

  again->record_download(r.id, "sato", "internet");
  EXPECT_EQ(again->find(r.id)->state, ReleaseState::Downloaded);
  EXPECT_EQ(again->find(r.id)->downloads, 1);
  EXPECT_EQ(again->expire(), 0u);
  now_ += std::chrono::hours(25);
  EXPECT_EQ(again->expire(), 1u);
  EXPECT_EQ(again->find(r.id)->state, ReleaseState::Expired);

  std::vector<std::string> types;
  for (const auto& j : audit_records()) {
    types.push_back(j["type"]);
    EXPECT_EQ(j["id"], r.id);
    EXPECT_EQ(j["subject"], "file:abc");
    EXPECT_EQ(j["policy_exception"], false);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"release.requested", "release.approved", "release.downloaded",
                                             "release.expired"}));
}

TEST_F(ReleaseDeskTest, TheExpiryThreadRecordsExpiredDownloadsOnItsOwn) {
  auto desk = open();
  ReleaseRequest r = desk->request("file:abc", "sato", "理由", clean_);
  ASSERT_EQ(desk->decide(r.id, "kacho", true, "", clean_), ReleaseDesk::Outcome::Done);
  now_ += std::chrono::hours(25);
  desk->start(std::chrono::seconds(3600), {});
  for (int i = 0; i < 200 && desk->find(r.id)->state != ReleaseState::Expired; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  desk->stop();
  EXPECT_EQ(desk->find(r.id)->state, ReleaseState::Expired);
  EXPECT_EQ(audit_records().back()["type"], "release.expired");
}

TEST_F(ReleaseDeskTest, AnInfectedOriginalIsRefusedAtOnceAndNeverApproved) {
  auto desk = open();
  ReleaseRequest r = desk->request("mail:q1", "sato", "見たい", infected_);
  EXPECT_EQ(r.state, ReleaseState::Refused);
  EXPECT_EQ(audit_records().back()["type"], "release.refused");

  // A record that says pending (made before the virus was known, or edited)
  // is still refused when the facts now say infected.
  ReleaseRequest p = desk->request("mail:q2", "sato", "見たい", clean_);
  EXPECT_EQ(desk->decide(p.id, "kacho", true, "ok", infected_), ReleaseDesk::Outcome::Infected);
  EXPECT_EQ(desk->find(p.id)->state, ReleaseState::Refused);
  EXPECT_FALSE(desk->find(p.id)->downloadable(now_));
  EXPECT_EQ(audit_records().back()["type"], "release.refused");
}

TEST_F(ReleaseDeskTest, AnApproverCannotApproveTheirOwnRequest) {
  auto desk = open();
  ReleaseRequest r = desk->request("file:abc", "kacho", "自分の分", clean_);
  EXPECT_EQ(desk->decide(r.id, "kacho", true, "", clean_), ReleaseDesk::Outcome::OwnRequest);
  EXPECT_EQ(desk->find(r.id)->state, ReleaseState::Pending);
  const auto kacho = account("kacho", {"recipient", "approver"});
  EXPECT_FALSE(may_decide(kacho, r));
  EXPECT_TRUE(may_decide(account("bucho", {"approver"}), r));
}

TEST_F(ReleaseDeskTest, AnAuditorCannotApprove) {
  auto desk = open();
  ReleaseRequest r = desk->request("file:abc", "sato", "理由", clean_);
  EXPECT_FALSE(may_decide(account("kansa", {"auditor"}), r));
  EXPECT_FALSE(may_decide(account("admin", {"administrator"}), r));
  EXPECT_FALSE(may_decide(account("suzuki", {"recipient"}), r));
}

TEST_F(ReleaseDeskTest, ARecipientCannotDownloadAnOriginalReleasedToSomeoneElse) {
  auto desk = open();
  ReleaseRequest r = desk->request("file:abc", "sato", "理由", clean_);
  ASSERT_EQ(desk->decide(r.id, "kacho", true, "", clean_, &r), ReleaseDesk::Outcome::Done);
  const auto sato = account("sato", {"recipient"});
  const auto suzuki = account("suzuki", {"recipient"});
  EXPECT_EQ(download_access(sato, r, false, false, now_), DownloadAccess::Allowed);
  EXPECT_EQ(download_access(suzuki, r, false, false, now_), DownloadAccess::NotFound);
  // Not on the LGWAN side while the policy keeps originals on the Internet side.
  EXPECT_EQ(download_access(sato, r, true, false, now_), DownloadAccess::NotFound);
  // After the download time: gone.
  EXPECT_EQ(download_access(sato, r, false, false, now_ + std::chrono::hours(25)), DownloadAccess::Gone);
  // A pending or rejected request gives nothing.
  ReleaseRequest q = desk->request("file:def", "sato", "理由", clean_);
  EXPECT_EQ(download_access(sato, q, false, false, now_), DownloadAccess::NotFound);
  ASSERT_EQ(desk->decide(q.id, "kacho", false, "不要", clean_, &q), ReleaseDesk::Outcome::Done);
  EXPECT_EQ(q.state, ReleaseState::Rejected);
  EXPECT_EQ(download_access(sato, q, false, false, now_), DownloadAccess::NotFound);
}

TEST_F(ReleaseDeskTest, DeliveryIntoTheLgwanZoneIsAPolicyException) {
  auto desk = open(true);
  ReleaseRequest r = desk->request("mail:q1", "sato", "理由", clean_);
  ASSERT_EQ(desk->decide(r.id, "kacho", true, "", clean_, &r), ReleaseDesk::Outcome::Done);
  EXPECT_TRUE(r.policy_exception);
  const auto sato = account("sato", {"recipient"});
  EXPECT_EQ(download_access(sato, r, true, true, now_), DownloadAccess::Allowed);
  EXPECT_EQ(download_access(sato, r, false, true, now_), DownloadAccess::NotFound);
  desk->record_download(r.id, "sato", "lgwan");
  const auto records = audit_records();
  EXPECT_EQ(records.back()["type"], "release.downloaded");
  EXPECT_EQ(records.back()["policy_exception"], true);
}

TEST(ReleaseAccess, ARecipientCannotSeeAnotherRecipientsItems) {
  DropItem item;
  item.recipient = "sato";
  EXPECT_TRUE(is_recipient_of_item(account("sato", {"recipient"}), item));
  EXPECT_FALSE(is_recipient_of_item(account("suzuki", {"recipient"}), item));
  EXPECT_FALSE(is_recipient_of_item(account("sato", {"auditor"}), item));  // the role, not only the name
  item.recipient = "情報政策課";
  EXPECT_TRUE(is_recipient_of_item(account("suzuki", {"recipient"}, "情報政策課"), item));
  EXPECT_FALSE(is_recipient_of_item(account("tanaka", {"recipient"}, "総務課"), item));

  AccountConfig sato = account("sato", {"recipient"});
  sato.mail = {"sato@city.example.lg.jp"};
  AccountConfig suzuki = account("suzuki", {"recipient"});
  suzuki.mail = {"suzuki@city.example.lg.jp"};
  const nlohmann::json kept = {{"recipients", {"sato@city.example.lg.jp"}}};
  EXPECT_TRUE(may_view_mail(sato, kept));
  EXPECT_FALSE(may_view_mail(suzuki, kept));
  EXPECT_FALSE(may_view_mail(account("kansa", {"auditor"}), kept));
  EXPECT_TRUE(may_view_mail(account("kacho", {"approver"}), kept));
}

TEST(ReleaseAccess, InfectedMeansAVirusNameOrTheInfectedCode) {
  EXPECT_FALSE(report_is_infected(nlohmann::json()));
  EXPECT_FALSE(report_is_infected({{"actions", {{{"action", "remove"}, {"code", "archive.encrypted"}}}}}));
  EXPECT_TRUE(report_is_infected({{"actions", {{{"action", "block"}, {"code", "av.infected"}}}}}));
  EXPECT_TRUE(report_is_infected({{"actions", {{{"action", "remove"}, {"virus", "Eicar-Signature"}}}}}));
}

}  // namespace
}  // namespace mukaika::http
