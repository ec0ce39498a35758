// PPAP in the drop box and for mail, with the worker replaced by a function
// that "opens" the original when it is given the right password: attempts
// counted durably and limited, the password never stored or audited, one
// delivery per mail, held attachments read from the kept summary.
#include <gtest/gtest.h>

#include <filesystem>

#include "http/drop_box.h"
#include "http/ppap_mail.h"
#include "http/store_test.h"
#include "queue/durable_io.h"

namespace mukaika::http {
namespace {

namespace fs = std::filesystem;
const std::string kRight = "right-Secret-9";

nlohmann::json report_with(const std::string& code) {
  return {{"verdict", "blocked"},
          {"actions", nlohmann::json::array({{{"action", "block"}, {"code", code}, {"path", "a.zip"}, {"reason", "r"}}})}};
}

SanitizedFile unlocked(const std::vector<std::string>& passphrases) {
  SanitizedFile f;
  if (passphrases.empty() || passphrases[0] != kRight) {
    f.verdict = "blocked";
    f.report = report_with("archive.wrong_password");
    return f;
  }
  f.verdict = "sanitized";
  f.bytes = "opened";
  f.name = "a.zip";
  f.type = "application/zip";
  f.report = {{"verdict", "sanitized"}, {"actions", nlohmann::json::array()}};
  return f;
}

class PpapTest : public StoreTest {
 protected:
  std::unique_ptr<DropBox> open_box() {
    DropBox::Options o;
    o.unlock = [](const std::string&, std::string, std::vector<std::string> p) { return unlocked(p); };
    // The first pass: no password, held.
    return std::make_unique<DropBox>(
        dir_ / "box", *audit_,
        [](const std::string&, const std::string&, std::string) {
          SanitizedFile f;
          f.verdict = "blocked";
          f.reason = "held";
          f.report = report_with("archive.encrypted");
          return f;
        },
        o);
  }
  std::string everything_on_disk() {
    std::string all;
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      if (e.is_regular_file()) all += queue_detail::read_file(e.path());
    return all;
  }
};

TEST_F(PpapTest, DropBoxCountsWrongPasswordsDurablyAndLocks) {
  std::string id;
  {
    auto box = open_box();
    auto up = box->begin_upload();
    up->write("PK encrypted");
    DropItem item;
    item.name = "a.zip";
    item.recipient = "demo-staff";
    id = box->commit(*up, item).id;
    box->process_pending();
    ASSERT_EQ(box->find(id)->held, "archive.encrypted");
    const auto wrong = box->try_password(id, {"nope-1"}, "demo-staff", "127.0.0.1", 3);
    EXPECT_EQ(wrong.result, DropBox::PasswordOutcome::Result::Wrong);
    EXPECT_EQ(wrong.attempts, 1);
    EXPECT_EQ(box->try_password(id, {"nope-2"}, "demo-staff", "127.0.0.1", 3).attempts, 2);
  }
  // Reopened (a restart): the count is still 2; the third wrong one locks.
  auto box = open_box();
  EXPECT_EQ(box->find(id)->password_attempts, 2);
  EXPECT_EQ(box->try_password(id, {"nope-3"}, "demo-staff", "127.0.0.1", 3).result,
            DropBox::PasswordOutcome::Result::Locked);
  EXPECT_EQ(box->try_password(id, {kRight}, "demo-staff", "127.0.0.1", 3).result,
            DropBox::PasswordOutcome::Result::Locked);
  EXPECT_EQ(box->find(id)->status, ItemStatus::Blocked);
  const std::string disk = everything_on_disk();
  for (const char* p : {"nope-1", "nope-2", "nope-3", "right-Secret-9"}) EXPECT_EQ(disk.find(p), std::string::npos) << p;
  EXPECT_NE(disk.find("\"type\":\"ppap.locked\""), std::string::npos);
}

TEST_F(PpapTest, DropBoxRightPasswordMakesTheItemDone) {
  auto box = open_box();
  auto up = box->begin_upload();
  up->write("PK encrypted");
  DropItem item;
  item.name = "a.zip";
  const std::string id = box->commit(*up, item).id;
  box->process_pending();
  EXPECT_EQ(box->try_password(id, {kRight}, "demo-staff", "127.0.0.1", 5).result,
            DropBox::PasswordOutcome::Result::Opened);
  const auto done = box->find(id);
  EXPECT_EQ(done->status, ItemStatus::Done);
  EXPECT_TRUE(done->held.empty());
  EXPECT_EQ(queue_detail::read_file(*box->output_path(id)), "opened");
  // Not held any more: nothing more to try.
  EXPECT_EQ(box->try_password(id, {kRight}, "demo-staff", "127.0.0.1", 5).result,
            DropBox::PasswordOutcome::Result::NotHeld);
  EXPECT_EQ(everything_on_disk().find(kRight), std::string::npos);
}

TEST_F(PpapTest, MailFollowUpIsSentOnceToTheRecipient) {
  Quarantine quarantine(dir_ / "quarantine", 14);
  Envelope env;
  env.mail_from = "sender@example.com";
  env.recipients = {"Staff@City.example.lg.jp"};
  quarantine.keep("Q1", "From: a\r\n\r\nbody", env, {{"verdict", "sanitized"}, {"message_id", "<m@x>"},
                                                      {"report", report_with("archive.encrypted")}});
  quarantine.keep("Q2", "From: a\r\n\r\nbody", env, {{"verdict", "clean"}, {"report", report_with("av.infected")}});
  ASSERT_EQ(held_attachments(*quarantine.summary("Q1")).size(), 1u);
  EXPECT_TRUE(held_attachments(*quarantine.summary("Q2")).empty());

  std::vector<std::pair<Envelope, std::string>> sent;
  std::vector<nlohmann::json> audit;
  MailPpap::Parts parts;
  parts.unlock = [](const std::string&, std::string, std::vector<std::string> p) {
    SanitizedFile f = unlocked(p);
    return MailUnlockResult{f.verdict, f.bytes, f.report, "", ""};
  };
  parts.follow_up = [](const std::string& rcpt, const std::string& id, const nlohmann::json&, const MailUnlockResult& r) {
    return "To: " + rcpt + "\r\nSubject: " + id + "\r\n\r\n" + r.message;
  };
  parts.send = [&](const Envelope& e, const std::string& m, const std::string&) {
    sent.emplace_back(e, m);
    return std::string("F1");
  };
  parts.audit = [&](const nlohmann::json& j) { audit.push_back(j); };
  MailPpap ppap(dir_ / "ppap", quarantine, parts, 5);

  EXPECT_EQ(ppap.try_password("Q1", {"wrong-one"}, "Staff@City.example.lg.jp", "demo-staff", "::1").result,
            MailPpap::Outcome::Result::Wrong);
  EXPECT_EQ(ppap.record("Q1", "staff@city.example.lg.jp").attempts, 1);
  const auto ok = ppap.try_password("Q1", {kRight}, "Staff@City.example.lg.jp", "demo-staff", "::1");
  EXPECT_EQ(ok.result, MailPpap::Outcome::Result::Delivered);
  EXPECT_EQ(ok.follow_up, "F1");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first.recipients, std::vector<std::string>{"Staff@City.example.lg.jp"});
  EXPECT_NE(sent[0].second.find("opened"), std::string::npos);
  EXPECT_EQ(ppap.record("Q1", "Staff@City.example.lg.jp").state, "delivered");
  // Once only.
  EXPECT_EQ(ppap.try_password("Q1", {kRight}, "Staff@City.example.lg.jp", "demo-staff", "::1").result,
            MailPpap::Outcome::Result::NotHeld);
  EXPECT_EQ(sent.size(), 1u);
  // A mail with nothing held, or unknown, or a path: not held.
  EXPECT_EQ(ppap.try_password("Q2", {kRight}, "x", "demo-staff", "::1").result, MailPpap::Outcome::Result::NotHeld);
  EXPECT_EQ(ppap.try_password("../Q1", {kRight}, "x", "demo-staff", "::1").result, MailPpap::Outcome::Result::NotHeld);

  std::vector<std::string> results;
  for (const auto& a : audit) {
    EXPECT_EQ(a.dump().find(kRight), std::string::npos);
    EXPECT_EQ(a.dump().find("wrong-one"), std::string::npos);
    if (a["type"] == "ppap.attempt") results.push_back(a["result"]);
    EXPECT_EQ(a["passwords"], 1);  // how many, never which
  }
  EXPECT_EQ(results, (std::vector<std::string>{"wrong", "ok"}));
  EXPECT_EQ(everything_on_disk().find(kRight), std::string::npos);
}

TEST_F(PpapTest, MailEveryRecipientGetsTheirOwnAndLocksAreTheirOwn) {
  Quarantine quarantine(dir_ / "quarantine", 14);
  Envelope env;
  env.mail_from = "sender@example.com";
  env.recipients = {"a@city.example.lg.jp", "B@City.example.lg.jp", "c@city.example.lg.jp"};
  quarantine.keep("Q3", "From: a\r\n\r\nbody", env, {{"verdict", "sanitized"}, {"report", report_with("archive.encrypted")}});

  std::vector<Envelope> sent;
  std::vector<nlohmann::json> audit;
  int next = 0;
  auto parts = [&] {
    MailPpap::Parts p;
    p.unlock = [](const std::string&, std::string, std::vector<std::string> pw) {
      SanitizedFile f = unlocked(pw);
      return MailUnlockResult{f.verdict, f.bytes, f.report, "", ""};
    };
    p.follow_up = [](const std::string& rcpt, const std::string&, const nlohmann::json&, const MailUnlockResult& r) {
      return "To: " + rcpt + "\r\n\r\n" + r.message;
    };
    p.send = [&](const Envelope& e, const std::string&, const std::string&) {
      sent.push_back(e);
      return "F" + std::to_string(++next);
    };
    p.audit = [&](const nlohmann::json& j) { audit.push_back(j); };
    return p;
  };
  using R = MailPpap::Outcome::Result;
  {
    MailPpap ppap(dir_ / "ppap", quarantine, parts(), 2);
    // c locks itself out.
    EXPECT_EQ(ppap.try_password("Q3", {"nope"}, "c@city.example.lg.jp", "c", "::1").result, R::Wrong);
    EXPECT_EQ(ppap.try_password("Q3", {"nope"}, "c@city.example.lg.jp", "c", "::1").result, R::Locked);
    // a opens it; b has tried nothing and is neither locked nor served.
    const auto a = ppap.try_password("Q3", {kRight}, "a@city.example.lg.jp", "a", "::1");
    EXPECT_EQ(a.result, R::Delivered);
    EXPECT_EQ(ppap.record("Q3", "b@city.example.lg.jp").state, "held");
    EXPECT_EQ(ppap.record("Q3", "b@city.example.lg.jp").attempts, 0);
    // Someone not among the recipients gets nothing.
    EXPECT_EQ(ppap.try_password("Q3", {kRight}, "d@city.example.lg.jp", "d", "::1").result, R::NotHeld);
  }
  // After a restart: a stays delivered (once only), c stays locked, b opens it for themselves.
  MailPpap ppap(dir_ / "ppap", quarantine, parts(), 2);
  EXPECT_EQ(MailPpap::state_of(ppap.record("Q3", "A@city.example.lg.jp")), "delivered");
  EXPECT_EQ(MailPpap::state_of(ppap.record("Q3", "c@city.example.lg.jp")), "locked");
  EXPECT_EQ(ppap.try_password("Q3", {kRight}, "c@city.example.lg.jp", "c", "::1").result, R::Locked);
  EXPECT_EQ(ppap.try_password("Q3", {kRight}, "a@city.example.lg.jp", "a", "::1").result, R::NotHeld);
  const auto b = ppap.try_password("Q3", {kRight}, "B@City.example.lg.jp", "b", "::1");
  EXPECT_EQ(b.result, R::Delivered);
  EXPECT_EQ(b.follow_up, "F2");
  EXPECT_EQ(ppap.record("Q3", "b@city.example.lg.jp").follow_up, "F2");
  EXPECT_EQ(ppap.record("Q3", "a@city.example.lg.jp").follow_up, "F1");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].recipients, std::vector<std::string>{"a@city.example.lg.jp"});
  EXPECT_EQ(sent[1].recipients, std::vector<std::string>{"B@City.example.lg.jp"});
  // The audit names the recipient of every attempt, lock and delivery.
  std::vector<std::string> delivered_to, locked;
  for (const auto& r : audit) {
    if (r["type"] == "ppap.delivered") delivered_to.push_back(r["recipient"]);
    if (r["type"] == "ppap.locked") locked.push_back(r["recipient"]);
  }
  EXPECT_EQ(delivered_to, (std::vector<std::string>{"a@city.example.lg.jp", "B@City.example.lg.jp"}));
  EXPECT_EQ(locked, std::vector<std::string>{"c@city.example.lg.jp"});
}

TEST_F(PpapTest, MailsWithHeldAttachmentsAreListedForTheirRecipients) {
  Quarantine quarantine(dir_ / "quarantine", 14);
  auto keep = [&](const std::string& id, std::vector<std::string> to, const std::string& code, int hours_ago) {
    Envelope env;
    env.mail_from = "sender@example.com";
    env.recipients = std::move(to);
    env.received = std::chrono::system_clock::now() - std::chrono::hours(hours_ago);
    quarantine.keep(id, "From: a\r\n\r\nbody", env,
                    {{"verdict", "sanitized"}, {"subject", "件名 " + id}, {"report", report_with(code)}});
  };
  keep("Q5", {"A@city.example.lg.jp", "b@city.example.lg.jp"}, "archive.encrypted", 30);
  keep("Q6", {"b@city.example.lg.jp"}, "pdf.encrypted", 1);
  keep("Q7", {"a@city.example.lg.jp"}, "av.infected", 1);  // nothing held
  MailPpap::Parts parts;
  parts.unlock = [](const std::string&, std::string, std::vector<std::string> p) {
    SanitizedFile f = unlocked(p);
    return MailUnlockResult{f.verdict, f.bytes, f.report, "", ""};
  };
  parts.follow_up = [](const std::string&, const std::string&, const nlohmann::json&, const MailUnlockResult& r) {
    return r.message;
  };
  parts.send = [](const Envelope&, const std::string&, const std::string&) { return std::string("F"); };
  MailPpap ppap(dir_ / "ppap", quarantine, parts, 5);
  auto ids = [](const std::vector<MailPpap::HeldMail>& list) {
    std::vector<std::string> out;
    for (const auto& m : list) out.push_back(m.queue_id + ":" + m.recipient + ":" + MailPpap::state_of(m.record));
    return out;
  };
  EXPECT_EQ(ids(ppap.held_for({"a@city.example.lg.jp"})), std::vector<std::string>{"Q5:A@city.example.lg.jp:held"});
  EXPECT_EQ(ids(ppap.held_for({"b@city.example.lg.jp"})),
            (std::vector<std::string>{"Q6:b@city.example.lg.jp:held", "Q5:b@city.example.lg.jp:held"}));
  EXPECT_EQ(ppap.held_for({"b@city.example.lg.jp"})[0].subject, "件名 Q6");
  EXPECT_TRUE(ppap.held_for({"nobody@city.example.lg.jp"}).empty());
  // A mail kept since, and the state after a recipient opened one: seen on the next look.
  keep("Q8", {"a@city.example.lg.jp"}, "archive.encrypted", 0);
  ASSERT_EQ(ppap.try_password("Q5", {kRight}, "a@city.example.lg.jp", "a", "::1").result,
            MailPpap::Outcome::Result::Delivered);
  EXPECT_EQ(ids(ppap.held_for({"a@city.example.lg.jp"})),
            (std::vector<std::string>{"Q8:a@city.example.lg.jp:held", "Q5:A@city.example.lg.jp:delivered"}));
  EXPECT_EQ(ids(ppap.held_for({"b@city.example.lg.jp"}))[1], "Q5:b@city.example.lg.jp:held");
}

TEST_F(PpapTest, MailRecordFromBeforeRecipientsCountsForEveryone) {
  Quarantine quarantine(dir_ / "quarantine", 14);
  fs::create_directories(dir_ / "ppap");
  queue_detail::replace_file_durable(dir_ / "ppap", "Q4.json",
                                     R"({"state":"delivered","attempts":1,"locked":false,"delivered_to":"A@x.jp"})");
  MailPpap ppap(dir_ / "ppap", quarantine, {}, 5);
  EXPECT_EQ(ppap.record("Q4", "a@x.jp").state, "delivered");
  EXPECT_EQ(ppap.record("Q4", "b@x.jp").state, "held");
  EXPECT_EQ(ppap.record("Q4", "b@x.jp").attempts, 1);
}

}  // namespace
}  // namespace mukaika::http
