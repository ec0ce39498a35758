// Bounces and notices, checked with Python's email package as an
// independent parser (/usr/bin/python3), and by hand.
#include "relay/dsn.h"

#include <gtest/gtest.h>

#include "relay_test_support.h"

namespace mukaika {
namespace {

using namespace std::chrono_literals;

// Runs a Python `script` on `message` (its path is argv[1]); what it printed.
std::string run_python(const std::string& script, const std::string& message) {
  testing::TempDir tmp;
  testing::write_file(tmp.path() / "m.eml", message);
  testing::write_file(tmp.path() / "script.py", script);
  std::string out;
  const int rc =
      testing::run({MUKAIKA_RELAY_PYTHON, (tmp.path() / "script.py").string(), (tmp.path() / "m.eml").string()}, &out);
  EXPECT_EQ(rc, 0) << out;
  return out;
}

// Parses `message` with Python's email package and prints what a reader
// would see, one fact per line.
std::string python_view(const std::string& message) {
  testing::TempDir tmp;
  testing::write_file(tmp.path() / "m.eml", message);
  testing::write_file(tmp.path() / "view.py", R"PY(
import sys, email, email.policy
raw = open(sys.argv[1], 'rb').read()
m = email.message_from_bytes(raw, policy=email.policy.default)
print('type:', m.get_content_type())
print('report-type:', m.get_param('report-type'))
for h in ('From', 'To', 'Subject', 'Auto-Submitted', 'Date', 'Message-ID'):
    print(h + ':', m[h])
print('defects:', len(m.defects))
for part in m.walk():
    if part is m and m.is_multipart(): continue
    ct = part.get_content_type()
    print('part:', ct)
    if ct == 'text/plain':
        print(part.get_content())
    elif ct in ('message/delivery-status', 'message/global-delivery-status'):
        for block in part.get_payload():
            for k, v in block.items():
                print('  ' + k + ': ' + str(v))
            print('  --')
    elif ct == 'text/rfc822-headers':
        print(part.get_payload(decode=True).decode('utf-8', 'replace'))
)PY");
  std::string out;
  int rc = testing::run({MUKAIKA_RELAY_PYTHON, (tmp.path() / "view.py").string(), (tmp.path() / "m.eml").string()},
                        &out);
  EXPECT_EQ(rc, 0) << out;
  return out;
}

void expect_wellformed(const std::string& m) {
  std::size_t pos = 0;
  while (pos < m.size()) {
    auto eol = m.find('\n', pos);
    ASSERT_NE(eol, std::string::npos) << "last line has no line end";
    ASSERT_GT(eol, pos) << "bare LF at " << pos;
    EXPECT_EQ(m[eol - 1], '\r') << "bare LF at " << eol;
    EXPECT_LE(eol - pos - 1, 998u);
    pos = eol + 1;
  }
}

bool is_7bit(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

const std::string kOriginal =
    "Received: from mx.example.com by mukaika\r\n"
    "From: Sender <sender@example.com>\r\n"
    "To: a@lg.example.jp, b@lg.example.jp\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <orig-1@example.com>\r\n"
    "\r\n"
    "SECRET BODY TEXT that must not be in a bounce\r\n";

BounceOptions options(std::string language = "ja") {
  BounceOptions o;
  o.hostname = "mukaika.city.example.lg.jp";
  o.language = std::move(language);
  o.now = std::chrono::system_clock::from_time_t(1796000000);  // 2026-11-30 ... UTC
  o.remote_mta = "10.0.0.5";
  return o;
}

Envelope original_envelope() {
  Envelope e;
  e.mail_from = "sender@example.com";
  e.recipients = {"a@lg.example.jp", "b@lg.example.jp"};
  e.received = std::chrono::system_clock::from_time_t(1796000000 - 3600);
  return e;
}

TEST(Dsn, MessageHeadersStopsAtTheFirstEmptyLine) {
  EXPECT_EQ(message_headers(kOriginal),
            "Received: from mx.example.com by mukaika\r\nFrom: Sender <sender@example.com>\r\n"
            "To: a@lg.example.jp, b@lg.example.jp\r\nSubject: quarterly report\r\n"
            "Message-ID: <orig-1@example.com>\r\n");
  EXPECT_EQ(message_headers("A: 1\nB: 2\n\nbody\n"), "A: 1\r\nB: 2\r\n");
  EXPECT_EQ(message_headers("A: no body"), "A: no body\r\n");
  std::string many;
  for (int i = 0; i < 10000; ++i) many += "X-Filler: " + std::to_string(i) + "\r\n";
  std::string capped = message_headers(many, 1000);
  EXPECT_LE(capped.size(), 1000u);
  EXPECT_EQ(capped.substr(capped.size() - 2), "\r\n");
}

TEST(Dsn, BounceIsAMultipartReportWithThreeParts) {
  std::vector<RecipientResult> failed{
      {"a@lg.example.jp", SmtpReply{550, "5.1.1", "no such user: a@lg.example.jp"}},
      {"b@lg.example.jp", SmtpReply{0, "", "connect to 10.0.0.5:25: Connection refused"}},
  };
  std::string bounce = make_bounce(original_envelope(), failed, message_headers(kOriginal), options());
  expect_wellformed(bounce);
  EXPECT_TRUE(is_7bit(bounce));
  EXPECT_EQ(bounce.find("SECRET BODY"), std::string::npos);

  std::string v = python_view(bounce);
  EXPECT_NE(v.find("type: multipart/report\n"), std::string::npos) << v;
  EXPECT_NE(v.find("report-type: delivery-status\n"), std::string::npos) << v;
  EXPECT_NE(v.find("From: \"Mail Delivery System (mukaika)\" <MAILER-DAEMON@mukaika.city.example.lg.jp>"),
            std::string::npos) << v;
  EXPECT_NE(v.find("To: sender@example.com\n"), std::string::npos) << v;
  EXPECT_NE(v.find("Subject: 配送できませんでした / Undelivered Mail Returned to Sender\n"), std::string::npos) << v;
  EXPECT_NE(v.find("Auto-Submitted: auto-replied\n"), std::string::npos) << v;
  EXPECT_NE(v.find("Date: Mon, 30 Nov 2026"), std::string::npos) << v;
  EXPECT_NE(v.find("+0900"), std::string::npos) << v;
  EXPECT_NE(v.find("Message-ID: <1796000000."), std::string::npos) << v;
  EXPECT_NE(v.find("defects: 0\n"), std::string::npos) << v;

  auto p1 = v.find("part: text/plain");
  auto p2 = v.find("part: message/delivery-status");
  auto p3 = v.find("part: text/rfc822-headers");
  ASSERT_NE(p1, std::string::npos) << v;
  ASSERT_NE(p2, std::string::npos) << v;
  ASSERT_NE(p3, std::string::npos) << v;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);

  // Japanese first, then English.
  auto ja = v.find("お送りいただいたメールを、次の宛先に配送できませんでした。");
  auto en = v.find("Your message could not be delivered");
  ASSERT_NE(ja, std::string::npos) << v;
  ASSERT_NE(en, std::string::npos) << v;
  EXPECT_LT(ja, en);
  EXPECT_NE(v.find("理由: 550 5.1.1 no such user: a@lg.example.jp"), std::string::npos) << v;

  EXPECT_NE(v.find("  Reporting-MTA: dns; mukaika.city.example.lg.jp\n"), std::string::npos) << v;
  EXPECT_NE(v.find("  Arrival-Date: "), std::string::npos) << v;
  EXPECT_NE(v.find("  Final-Recipient: rfc822; a@lg.example.jp\n  Action: failed\n  Status: 5.1.1\n"
                   "  Remote-MTA: dns; 10.0.0.5\n"
                   "  Diagnostic-Code: smtp; 550 5.1.1 no such user: a@lg.example.jp\n"),
            std::string::npos) << v;
  EXPECT_NE(v.find("  Final-Recipient: rfc822; b@lg.example.jp\n  Action: failed\n  Status: 5.4.7\n"
                   "  Diagnostic-Code: X-mukaika; connect to 10.0.0.5:25: Connection refused\n"),
            std::string::npos) << v;

  EXPECT_NE(v.find("Subject: quarterly report\r\nMessage-ID: <orig-1@example.com>"), std::string::npos) << v;
}

TEST(Dsn, EnglishFirstWhenAsked) {
  std::vector<RecipientResult> failed{{"a@lg.example.jp", SmtpReply{552, "5.3.4", "too big"}}};
  std::string v = python_view(make_bounce(original_envelope(), failed, message_headers(kOriginal), options("en")));
  EXPECT_NE(v.find("Subject: Undelivered Mail Returned to Sender / 配送できませんでした\n"), std::string::npos) << v;
  EXPECT_LT(v.find("Your message could not be delivered"), v.find("お送りいただいたメール"));
}

TEST(Dsn, HostileDiagnosticsCannotInjectLinesOrBoundaries) {
  std::vector<RecipientResult> failed{
      {"a@lg.example.jp", SmtpReply{550, "5.7.1", "bad\r\nX-Injected: yes\r\n--=_mukaika_report_0\r\n"}}};
  std::string bounce = make_bounce(original_envelope(), failed, "Subject: \xff\xfe raw 8-bit\r\n", options());
  expect_wellformed(bounce);
  EXPECT_TRUE(is_7bit(bounce)) << "8-bit original headers go base64";
  EXPECT_EQ(bounce.find("\r\nX-Injected"), std::string::npos);
  std::string v = python_view(bounce);
  EXPECT_NE(v.find("defects: 0\n"), std::string::npos) << v;
  EXPECT_NE(v.find("part: text/rfc822-headers"), std::string::npos) << v;
}

TEST(Dsn, Utf8RecipientsUseGlobalDeliveryStatus) {
  std::vector<RecipientResult> failed{{"受信者@lg.example.jp", SmtpReply{550, "5.1.1", "unknown"}}};
  std::string v = python_view(make_bounce(original_envelope(), failed, message_headers(kOriginal), options()));
  EXPECT_NE(v.find("part: message/global-delivery-status"), std::string::npos) << v;
}

TEST(Dsn, NullSenderBounceGoesToPostmaster) {
  Envelope e = original_envelope();
  e.mail_from.clear();
  std::string bounce = make_bounce(e, {{"a@lg.example.jp", SmtpReply{550, "5.1.1", "x"}}}, "", options());
  EXPECT_NE(bounce.find("To: <postmaster@mukaika.city.example.lg.jp>\r\n"), std::string::npos);
}

TEST(Dsn, BlockedNoticeSaysWhyAndCarriesNoContent) {
  BlockedNotice n;
  n.queue_id = "Q20261130-0001";
  n.subject = "請求書のご送付";
  n.from_header = "経理部 <billing@example.com>";
  n.message_id = "<orig-1@example.com>";
  n.reason_ja = "ウイルスを検出しました (Eicar-Test-Signature)";
  n.reason_en = "virus found (Eicar-Test-Signature)";
  std::string notice = make_blocked_notice(original_envelope(), "a@lg.example.jp", n, options());
  expect_wellformed(notice);
  EXPECT_TRUE(is_7bit(notice));
  EXPECT_NE(notice.find("Auto-Submitted: auto-generated\r\n"), std::string::npos);
  EXPECT_NE(notice.find("Content-Type: text/plain; charset=UTF-8\r\n"), std::string::npos);
  EXPECT_NE(notice.find("Content-Transfer-Encoding: base64\r\n"), std::string::npos);
  EXPECT_NE(notice.find("Subject: =?UTF-8?B?"), std::string::npos);
  EXPECT_EQ(notice.find("SECRET BODY"), std::string::npos);
  EXPECT_EQ(notice.find("X5O!P%@AP"), std::string::npos);

  std::string v = python_view(notice);
  EXPECT_NE(v.find("type: text/plain\n"), std::string::npos) << v;
  EXPECT_NE(v.find("To: a@lg.example.jp\n"), std::string::npos) << v;
  EXPECT_NE(v.find("Subject: 【無害化】メールを止めました / A message for you was blocked\n"), std::string::npos) << v;
  EXPECT_NE(v.find("defects: 0\n"), std::string::npos) << v;
  for (const char* s : {"ウイルスを検出しました (Eicar-Test-Signature)", "virus found (Eicar-Test-Signature)",
                        "Q20261130-0001", "請求書のご送付", "経理部 <billing@example.com>", "<sender@example.com>",
                        "<orig-1@example.com>",
                        "原本はインターネット接続系で保管されています。必要な場合は情報システム担当にお問い合わせください。",
                        "2026年11月30日"}) {
    EXPECT_NE(v.find(s), std::string::npos) << s << "\n" << v;
  }
  EXPECT_LT(v.find("原本は"), v.find("The original is kept"));
}

TEST(Dsn, BlockedNoticeLinksToTheMailPageWhenGiven) {
  BlockedNotice n;
  n.queue_id = "Q1";
  n.page_url = "https://mukaika.lgwan.example/mail/Q1";
  std::string v = python_view(make_blocked_notice(original_envelope(), "a@lg.example.jp", n, options()));
  EXPECT_NE(v.find("このメールの詳細と原本の申請: https://mukaika.lgwan.example/mail/Q1"), std::string::npos) << v;
  EXPECT_NE(v.find("Details and a request for the original: https://mukaika.lgwan.example/mail/Q1"), std::string::npos)
      << v;
}

TEST(Dsn, ReceivedHeaderTracesTheHopAndCannotBeInjected) {
  Envelope e = original_envelope();
  e.helo = "mx.example.com";
  e.client_address = "192.0.2.25";
  e.recipients = {"a@lg.example.jp"};
  EXPECT_EQ(make_received_header(e, "0006abc", options()),
            "Received: from mx.example.com ([192.0.2.25])\r\n\tby mukaika.city.example.lg.jp (mukaika) with ESMTP id "
            "0006abc\r\n\tfor <a@lg.example.jp>; Mon, 30 Nov 2026 08:53:20 +0900\r\n");
  e.helo = "evil\r\nBcc: x@example.com (fake) [1.2.3.4]";
  e.client_address = "2001:db8::1";
  e.recipients = {"a@lg.example.jp", "b@lg.example.jp"};
  const std::string h = make_received_header(e, "q", options());
  expect_wellformed(h);
  EXPECT_EQ(h.find("\r\nBcc"), std::string::npos) << h;
  EXPECT_NE(h.find("([IPv6:2001:db8::1])"), std::string::npos) << h;
  EXPECT_EQ(h.find("for <"), std::string::npos) << h;  // two recipients: none named
}

TEST(Dsn, GatewayMailCarriesTextAndAttachments) {
  GatewayMail g;
  g.recipient = "a@lg.example.jp";
  g.subject_ja = "【無害化】パスワード付きファイルの中身";
  g.subject_en = "Contents of a protected file\r\nBcc: evil@example.com";  // cannot inject a header
  g.body_ja = "中身をお届けします。";
  g.body_en = "Here are the contents.";
  g.attachments = {{"見積書.pdf", "application/pdf", std::string("%PDF-1.4\n\0\xff", 12)},
                   {"a\"b\r\nX-Evil: 1.txt", "text/plain; evil=1", "text"}};
  const std::string m = make_gateway_mail(g, options());
  expect_wellformed(m);
  EXPECT_TRUE(is_7bit(m));
  EXPECT_EQ(m.find("\r\nBcc:"), std::string::npos);
  EXPECT_EQ(m.find("\r\nX-Evil:"), std::string::npos);
  std::string v = python_view(m);
  EXPECT_NE(v.find("type: multipart/mixed\n"), std::string::npos) << v;
  EXPECT_NE(v.find("defects: 0\n"), std::string::npos) << v;
  EXPECT_NE(v.find("part: application/pdf\n"), std::string::npos) << v;
  EXPECT_NE(v.find("part: application/octet-stream\n"), std::string::npos) << v;  // the odd type
  EXPECT_NE(v.find("中身をお届けします。"), std::string::npos) << v;
  EXPECT_LT(v.find("中身を"), v.find("Here are"));
  // The attachment comes back byte-exact under its UTF-8 name.
  const std::string out = run_python(R"PY(
import sys, email, email.policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)
for a in m.iter_attachments():
    print(a.get_filename(), a.get_payload(decode=True).hex())
)PY", m);
  EXPECT_NE(out.find("見積書.pdf 255044462d312e340a00ff"), std::string::npos) << out;
}

TEST(Dsn, GatewayMailAttachesAMailAsAMailWhenItsLinesAllow) {
  // A sanitized mail (8-bit text in it) goes unencoded as message/rfc822,
  // which RFC 2046 requires and mail programs open as a mail.
  const std::string inner =
      "From: sender@example.com\r\nSubject: =?UTF-8?B?6KaL56mN5pu4?=\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain; charset=UTF-8\r\n"
      "Content-Transfer-Encoding: 8bit\r\n\r\n見積書です。\r\n--in\r\nContent-Type: text/plain; name=\"a.txt\"\r\n"
      "Content-Disposition: attachment; filename=\"a.txt\"\r\n\r\nMEMBER TEXT\r\n--in--\r\n";
  GatewayMail g;
  g.recipient = "a@lg.example.jp";
  g.subject_ja = "開きました";
  g.subject_en = "Opened";
  g.attachments = {{"Q1.eml", "message/rfc822", inner}};
  const std::string m = make_gateway_mail(g, options());
  expect_wellformed(m);
  EXPECT_NE(m.find("Content-Type: message/rfc822\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Content-Transfer-Encoding: 8bit\r\n\r\nFrom: sender@example.com\r\n"), std::string::npos) << m;
  const std::string out = run_python(R"PY(
import sys, email, email.policy
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)
print('defects:', len(m.defects))
for a in m.iter_attachments():
    print('attachment:', a.get_content_type(), a.get_filename())
    inner = a.get_content()
    print('inner from:', inner['From'])
    for p in inner.iter_attachments():
        print('inner attachment:', p.get_filename(), p.get_content().strip())
)PY", m);
  EXPECT_NE(out.find("defects: 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("attachment: message/rfc822 Q1.eml\n"), std::string::npos) << out;
  EXPECT_NE(out.find("inner from: sender@example.com\n"), std::string::npos) << out;
  EXPECT_NE(out.find("inner attachment: a.txt MEMBER TEXT\n"), std::string::npos) << out;

  // 7-bit only: 7bit. A long line, a bare LF, a NUL: an opaque file in base64.
  g.attachments = {{"Q2.eml", "message/rfc822", "Subject: x\r\n\r\nplain\r\n"}};
  EXPECT_NE(make_gateway_mail(g, options()).find("message/rfc822\r\nContent-Disposition: attachment;\r\n "
                                                  "filename*=UTF-8''Q2.eml\r\nContent-Transfer-Encoding: 7bit\r\n"),
            std::string::npos);
  for (const std::string& bad : {"Subject: x\r\n\r\n" + std::string(1200, 'a') + "\r\n", std::string("Subject: x\n\nbare\n"),
                                std::string("Subject: x\r\n\r\n\0\r\n", 17)}) {
    g.attachments = {{"Q3.eml", "message/rfc822", bad}};
    const std::string fallback = make_gateway_mail(g, options());
    expect_wellformed(fallback);
    EXPECT_EQ(fallback.find("message/rfc822"), std::string::npos);
    EXPECT_NE(fallback.find("Content-Type: application/octet-stream\r\n"), std::string::npos);
  }
}

TEST(Dsn, EncodedWordsStayWithinLimitsAndSplitOnCharacters) {
  std::string long_ja;
  for (int i = 0; i < 40; ++i) long_ja += "無害化";
  std::string h = "Subject: " + encode_header_text(long_ja, 7);
  std::size_t pos = 0;
  while (pos < h.size()) {
    auto eol = h.find("\r\n", pos);
    if (eol == std::string::npos) eol = h.size();
    EXPECT_LE(eol - pos, 76u) << h.substr(pos, eol - pos);
    pos = eol + 2;
  }
  std::string v = python_view("Subject: " + encode_header_text(long_ja, 7) + "\r\n\r\n");
  EXPECT_NE(v.find("Subject: " + long_ja + "\n"), std::string::npos) << v;
  EXPECT_EQ(encode_header_text("plain ascii", 7), "plain ascii");
  EXPECT_EQ(base64_encode("abcd", 0), "YWJjZA==");
}

}  // namespace
}  // namespace mukaika
