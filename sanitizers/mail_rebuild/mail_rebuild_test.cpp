// mail.rebuild on its own: what process() hands to the pipeline, and what
// reassemble() builds from the pipeline's results.
#include "mail_rebuild/mail_rebuild.h"

#include <gtest/gtest.h>

#include "mail_rebuild/gmime_handles.h"
#include "registry.h"
#include "test_support.h"

namespace mukaika {
namespace {

using testing::TestContext;

std::unique_ptr<Sanitizer> rebuild() { return make_mail_rebuild(toml::table{}); }

// What the pipeline would hand back for a child: delivered as is.
ItemResult delivered(const Item& c, ItemResult::Verdict v = ItemResult::Verdict::Clean) {
  ItemResult r;
  r.verdict = v;
  r.role = c.role;
  r.input_name = c.name;
  r.name = c.name;
  r.path = c.path;
  r.bytes = c.bytes;
  r.type = c.role == Role::Body ? "text/plain" : c.declared_type;
  r.charset = c.role == Role::Body ? "utf-8" : "";
  return r;
}

ItemResult dropped(const Item& c, ItemResult::Verdict v, Reason reason, std::string virus = {}) {
  ItemResult r = delivered(c, v);
  r.bytes.clear();
  r.reason = std::move(reason);
  r.virus = std::move(virus);
  return r;
}

// kMixed's children as the pipeline returns them: body and data.csv kept,
// tool.exe removed.
std::vector<ItemResult> exe_removed(const Outcome& o) {
  return {delivered(o.children[0]),
          dropped(o.children[1], ItemResult::Verdict::Removed,
                  {"policy.executable", "実行ファイルのため削除しました", "removed: executable program"}),
          delivered(o.children[2])};
}

// Re-reads the rebuilt message with GMime.
struct Parsed {
  gm::Ptr<GMimeMessage> msg;
  explicit Parsed(const std::string& bytes) {
    gm::ensure_initialized();
    gm::Ptr<GMimeStream> s(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
    gm::Ptr<GMimeParser> p(g_mime_parser_new_with_stream(s.get()));
    msg.reset(g_mime_parser_construct_message(p.get(), nullptr));
  }
  std::string header(const char* name) const {
    const char* v = g_mime_object_get_header(GMIME_OBJECT(msg.get()), name);
    return v ? v : "";
  }
  std::string body_text() const {
    GMimeObject* part = g_mime_message_get_mime_part(msg.get());
    if (GMIME_IS_MULTIPART(part)) part = g_mime_multipart_get_part(GMIME_MULTIPART(part), 0);
    gm::CharPtr t(g_mime_text_part_get_text(GMIME_TEXT_PART(part)));
    return t ? t.get() : "";
  }
  int attachment_count() const {
    GMimeObject* part = g_mime_message_get_mime_part(msg.get());
    return GMIME_IS_MULTIPART(part) ? g_mime_multipart_get_count(GMIME_MULTIPART(part)) - 1 : 0;
  }
  std::string attachment_name(int i) const {
    GMimeObject* part = g_mime_multipart_get_part(GMIME_MULTIPART(g_mime_message_get_mime_part(msg.get())), i + 1);
    const char* n = g_mime_part_get_filename(GMIME_PART(part));
    return n ? n : "";
  }
};

const char* kMixed =
    "Received: from evil.example by mx.example\r\n"
    "X-Mailer: Tracker 1.0\r\n"
    "From: \"Sato\" <sato@example.jp>\r\n"
    "To: soumu@city.example.lg.jp\r\n"
    "Subject: quarterly report\r\n"
    "Date: Mon, 4 Mar 2024 10:00:00 +0900\r\n"
    "Message-ID: <abc@example.jp>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Please see the attachments.\r\n"
    "--B\r\n"
    "Content-Type: application/octet-stream; name=\"tool.exe\"\r\n"
    "Content-Disposition: attachment; filename=\"tool.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA\r\n"
    "--B\r\n"
    "Content-Type: text/csv; name=\"data.csv\"\r\n"
    "Content-Disposition: attachment; filename=\"data.csv\"\r\n"
    "\r\n"
    "a,b\r\n1,2\r\n"
    "--B--\r\n";

TEST(MailRebuild, ProcessSplitsBodyAndAttachments) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes = kMixed;
  mail.name = "m.eml";
  mail.path = "m.eml";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Expand);
  ASSERT_EQ(o.children.size(), 3u);
  EXPECT_EQ(o.children[0].role, Role::Body);
  EXPECT_EQ(o.children[0].path, "body");
  EXPECT_EQ(o.children[0].bytes, "Please see the attachments.");  // the CRLF before a boundary is the boundary's
  EXPECT_EQ(o.children[1].role, Role::File);
  EXPECT_EQ(o.children[1].name, "tool.exe");
  EXPECT_EQ(o.children[1].bytes.substr(0, 2), "MZ");  // base64 decoded
  EXPECT_EQ(o.children[2].name, "data.csv");
  EXPECT_EQ(o.children[2].declared_type, "text/csv");
}

TEST(MailRebuild, ReassembleBuildsANewMessageWithNotice) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes = kMixed;
  mail.name = "m.eml";
  Outcome o = s->process(mail, t.ctx);
  std::vector<ItemResult> results = exe_removed(o);
  Outcome r = s->reassemble(mail, o.state, results, t.ctx);
  ASSERT_EQ(r.action, Outcome::Action::Replace);
  EXPECT_FALSE(r.cosmetic);
  EXPECT_EQ(r.type, "message/rfc822");

  Parsed p(r.bytes);
  ASSERT_TRUE(p.msg);
  EXPECT_EQ(p.header("Received"), "");
  EXPECT_EQ(p.header("X-Mailer"), "");
  EXPECT_EQ(p.header("Subject"), "quarterly report");
  EXPECT_EQ(p.header("Message-ID"), "<abc@example.jp>");
  EXPECT_NE(p.header("From").find("sato@example.jp"), std::string::npos);
  EXPECT_NE(p.header("X-Mukaika-Sanitized").find("removed=1"), std::string::npos);
  EXPECT_EQ(p.header("X-Mukaika-Original-SHA256").size(), 64u);
  std::string body = p.body_text();
  EXPECT_EQ(body.rfind("【無害化通知】", 0), 0u) << body;
  EXPECT_NE(body.find("・添付「tool.exe」: 実行ファイルのため削除しました"), std::string::npos) << body;
  EXPECT_NE(body.find("Please see the attachments."), std::string::npos);
  ASSERT_EQ(p.attachment_count(), 1);
  EXPECT_EQ(p.attachment_name(0), "data.csv");
  // CRLF throughout: the output goes to SMTP and Windows mail clients.
  EXPECT_EQ(r.bytes.find("\n"), r.bytes.find("\r\n") + 1);
}

TEST(MailRebuild, NoticeLinksToTheMailPage) {
  TestContext t;
  auto s = make_mail_rebuild(toml::table{{"page_url", "https://mukaika.lgwan.example/mail/{id}"}});
  for (const auto& [name, link] : std::vector<std::pair<std::string, std::string>>{
           {"0123abcd_Q-1.eml", "https://mukaika.lgwan.example/mail/0123abcd_Q-1"},
           {"../etc.eml", ""},  // not a queue id: no link
       }) {
    Item mail;
    mail.bytes = kMixed;
    mail.name = name;
    Outcome o = s->process(mail, t.ctx);
    std::vector<ItemResult> results = exe_removed(o);
    Outcome r = s->reassemble(mail, o.state, results, t.ctx);
    const std::string body = Parsed(r.bytes).body_text();
    if (link.empty()) {
      EXPECT_EQ(body.find("https://"), std::string::npos) << body;
      EXPECT_NE(body.find("情報システム担当にお問い合わせください"), std::string::npos) << body;
    } else {
      EXPECT_NE(body.find("パスワード入力はこちら:\n  " + link + "\n"), std::string::npos) << body;
    }
  }
  // [ppap] enabled = false: the page takes no password, and the notice does not promise one.
  auto no_ppap = make_mail_rebuild(toml::table{{"page_url", "https://mukaika.lgwan.example/mail/{id}"}, {"ppap", false}});
  Item mail;
  mail.bytes = kMixed;
  mail.name = "Q2.eml";
  Outcome o = no_ppap->process(mail, t.ctx);
  std::vector<ItemResult> results = exe_removed(o);
  const std::string body = Parsed(no_ppap->reassemble(mail, o.state, results, t.ctx).bytes).body_text();
  EXPECT_NE(body.find("原本の申請はこちら:\n  https://mukaika.lgwan.example/mail/Q2\n"), std::string::npos) << body;
  EXPECT_EQ(body.find("パスワード"), std::string::npos) << body;
  EXPECT_THROW(make_mail_rebuild(toml::table{{"ppap", "yes"}}), ConfigError);
  EXPECT_THROW(make_mail_rebuild(toml::table{{"page_url", "https://x.example/mail/"}}), ConfigError);  // no {id}
  EXPECT_THROW(make_mail_rebuild(toml::table{{"page_url", "javascript:alert(1)/{id}"}}), ConfigError);
}

TEST(MailRebuild, NothingChangedMeansNoNoticeAndCosmetic) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes = "From: a@example.jp\r\nTo: b@example.jp\r\nSubject: hi\r\n\r\nplain words\r\n";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.children.size(), 1u);
  std::vector<ItemResult> results{delivered(o.children[0])};
  Outcome r = s->reassemble(mail, o.state, results, t.ctx);
  EXPECT_TRUE(r.cosmetic);
  Parsed p(r.bytes);
  EXPECT_EQ(p.body_text().find("無害化通知"), std::string::npos);
  EXPECT_NE(p.header("X-Mukaika-Sanitized").find("clean"), std::string::npos);
}

TEST(MailRebuild, InfectedBodyBlocksTheWholeMessage) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes = "From: a@example.jp\r\nSubject: hi\r\n\r\nbad body\r\n";
  Outcome o = s->process(mail, t.ctx);
  std::vector<ItemResult> results{
      dropped(o.children[0], ItemResult::Verdict::Blocked, {"av.infected", "ウイルス", "virus"}, "Eicar-Test-Signature")};
  Outcome r = s->reassemble(mail, o.state, results, t.ctx);
  EXPECT_EQ(r.action, Outcome::Action::Block);
  EXPECT_EQ(r.reason.code, "mail.body_infected");
  EXPECT_NE(r.reason.ja.find("Eicar-Test-Signature"), std::string::npos);
}

TEST(MailRebuild, AlternativeKeepsOnePlainBody) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes =
      "From: a@example.jp\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative; boundary=A\r\n\r\n"
      "--A\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
      "--A\r\nContent-Type: text/html\r\n\r\n<p>html <script>x()</script>version</p>\r\n"
      "--A--\r\n";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.children.size(), 1u);
  EXPECT_EQ(o.children[0].declared_type, "text/plain");
  EXPECT_EQ(o.children[0].bytes, "plain version");
}

TEST(MailRebuild, HtmlOnlyAlternativeChoosesHtml) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes =
      "From: a@example.jp\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative; boundary=A\r\n\r\n"
      "--A\r\nContent-Type: text/plain\r\n\r\n\r\n"
      "--A\r\nContent-Type: text/html\r\n\r\n<p>only html</p>\r\n"
      "--A--\r\n";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.children.size(), 1u);
  EXPECT_EQ(o.children[0].declared_type, "text/html");
  EXPECT_EQ(o.children[0].role, Role::Body);
}

TEST(MailRebuild, NestedMessageIsFlattenedAsQuote) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes =
      "From: a@example.jp\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=M\r\n\r\n"
      "--M\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
      "--M\r\nContent-Type: message/rfc822\r\n\r\n"
      "From: inner@example.com\r\nSubject: inner subject\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=N\r\n\r\n"
      "--N\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
      "--N\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nnotes\r\n"
      "--N--\r\n"
      "--M--\r\n";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.children.size(), 3u);
  EXPECT_EQ(o.children[1].path, "message-1/body");
  EXPECT_EQ(o.children[2].path, "message-1/notes.txt");
  std::vector<ItemResult> results;
  for (const auto& c : o.children) results.push_back(delivered(c));
  Outcome r = s->reassemble(mail, o.state, results, t.ctx);
  Parsed p(r.bytes);
  std::string body = p.body_text();
  EXPECT_NE(body.find("see below"), std::string::npos);
  EXPECT_NE(body.find("> From: inner@example.com"), std::string::npos) << body;
  EXPECT_NE(body.find("> Subject: inner subject"), std::string::npos);
  EXPECT_NE(body.find("> inner body"), std::string::npos);
  ASSERT_EQ(p.attachment_count(), 1);
  EXPECT_EQ(p.attachment_name(0), "notes.txt");
}

TEST(MailRebuild, SignatureIsDroppedAndNoted) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.path = "s.eml";
  mail.bytes =
      "From: a@example.jp\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=S\r\n\r\n"
      "--S\r\nContent-Type: text/plain\r\n\r\nsigned words\r\n"
      "--S\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\r\nMIIB\r\n"
      "--S--\r\n";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.children.size(), 1u);
  bool noted = false;
  for (const auto& n : t.report.notes) noted = noted || n.reason.code == "mail.signature";
  EXPECT_TRUE(noted);
}

TEST(MailRebuild, GarbageBecomesOneTextBody) {
  TestContext t;
  auto s = rebuild();
  Item mail;
  mail.bytes = "\x01\x02 not a mail at all";
  Outcome o = s->process(mail, t.ctx);
  ASSERT_EQ(o.action, Outcome::Action::Expand);
  ASSERT_EQ(o.children.size(), 1u);
  EXPECT_EQ(o.children[0].role, Role::Body);
}

TEST(MailRebuild, PartLimit) {
  TestContext t;
  t.limits.max_parts = 3;
  auto s = rebuild();
  std::string m = "From: a@example.jp\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n";
  for (int i = 0; i < 5; ++i) m += "--P\r\nContent-Type: text/plain; name=a" + std::to_string(i) + ".txt\r\n\r\nx\r\n";
  m += "--P--\r\n";
  Item mail;
  mail.bytes = m;
  Outcome o = s->process(mail, t.ctx);
  EXPECT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "limits.parts");
}

TEST(MailRebuild, DepthLimit) {
  TestContext t;
  t.limits.max_depth = 3;
  auto s = rebuild();
  std::string head = "From: a@example.jp\r\nSubject: deep\r\nMIME-Version: 1.0\r\n";
  std::string m = head;
  for (int i = 0; i < 10; ++i) m += "Content-Type: multipart/mixed; boundary=D" + std::to_string(i) + "\r\n\r\n--D" + std::to_string(i) + "\r\n";
  m += "Content-Type: text/plain\r\n\r\ndeep\r\n";
  for (int i = 9; i >= 0; --i) m += "--D" + std::to_string(i) + "--\r\n";
  Item mail;
  mail.bytes = m;
  Outcome o = s->process(mail, t.ctx);
  EXPECT_EQ(o.action, Outcome::Action::Block);
  EXPECT_EQ(o.reason.code, "limits.depth");
}

TEST(MailRebuild, EnglishNotice) {
  TestContext t(Language::En);
  auto s = rebuild();
  Item mail;
  mail.bytes = kMixed;
  Outcome o = s->process(mail, t.ctx);
  std::vector<ItemResult> results{
      delivered(o.children[0]),
      dropped(o.children[1], ItemResult::Verdict::Removed, {"policy.executable", "実行ファイル", "removed: executable program"}),
      delivered(o.children[2])};
  Outcome r = s->reassemble(mail, o.state, results, t.ctx);
  std::string body = Parsed(r.bytes).body_text();
  EXPECT_EQ(body.rfind("[Sanitizing notice]", 0), 0u);
  EXPECT_NE(body.find("attachment \"tool.exe\": removed: executable program"), std::string::npos);
}

TEST(MailRebuild, OptionsAreChecked) {
  EXPECT_THROW(make_mail_rebuild(toml::table{{"colour", true}}), ConfigError);
  EXPECT_THROW(make_mail_rebuild(toml::table{{"notice", "yes"}}), ConfigError);
  EXPECT_NO_THROW(make_mail_rebuild(toml::table{{"notice", false}}));
}

}  // namespace
}  // namespace mukaika
