// SmtpSession: the protocol rules, fed bytes directly (no network).
#include "smtp/smtp_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/smtp_server.h"

namespace mukaika {
namespace {

using Event = SmtpSession::Event;

struct Driver {
  explicit Driver(SmtpSessionOptions o = {}) : session(std::move(o)) { out = session.greeting(); }
  Event feed(std::string_view bytes) {
    session.receive(bytes);
    const Event e = session.process();
    out += session.take_output();
    return e;
  }
  // The replies so far, one string per line, and forget them.
  std::vector<std::string> lines() {
    std::vector<std::string> result;
    std::size_t start = 0;
    while (start < out.size()) {
      const auto end = out.find("\r\n", start);
      EXPECT_NE(end, std::string::npos) << "reply without CRLF: " << out;
      if (end == std::string::npos) break;
      result.push_back(out.substr(start, end - start));
      start = end + 2;
    }
    out.clear();
    return result;
  }
  std::string last() {
    auto l = lines();
    return l.empty() ? std::string() : l.back();
  }
  SmtpSession session;
  std::string out;
};

SmtpSessionOptions options() {
  SmtpSessionOptions o;
  o.hostname = "mx.test";
  o.client_address = "127.0.0.1";
  o.max_message_bytes = 10000;
  o.max_recipients = 3;
  return o;
}

// A driver past EHLO and MAIL/RCPT.
Driver in_transaction(SmtpSessionOptions o = options()) {
  Driver d(std::move(o));
  d.feed("EHLO client.test\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\n");
  d.lines();
  return d;
}

TEST(SmtpSessionTest, GreetingAndEhloAdvertiseExtensions) {
  Driver d(options());
  EXPECT_EQ(d.last(), "220 mx.test ESMTP mukaika");
  EXPECT_EQ(d.feed("EHLO client.test\r\n"), Event::NeedInput);
  const std::vector<std::string> expected = {"250-mx.test",           "250-SIZE 10000",          "250-8BITMIME",
                                             "250-PIPELINING",        "250-ENHANCEDSTATUSCODES", "250 SMTPUTF8"};
  EXPECT_EQ(d.lines(), expected);
  d.feed("HELO client.test\r\n");
  EXPECT_EQ(d.last(), "250 mx.test");
}

TEST(SmtpSessionTest, StartTlsAdvertisedOnlyWhenConfigured) {
  auto o = options();
  o.tls_available = true;
  Driver d(o);
  d.feed("EHLO c\r\n");
  auto l = d.lines();
  EXPECT_NE(std::find(l.begin(), l.end(), "250-STARTTLS"), l.end());
  Driver plain(options());
  plain.feed("EHLO c\r\nSTARTTLS\r\n");
  l = plain.lines();
  EXPECT_EQ(std::find(l.begin(), l.end(), "250-STARTTLS"), l.end());
  EXPECT_EQ(l.back().substr(0, 9), "502 5.5.1");
}

TEST(SmtpSessionTest, StartTlsDropsPipelinedInputAndStartsOver) {
  auto o = options();
  o.tls_available = true;
  Driver d(o);
  d.feed("EHLO c\r\n");
  d.lines();
  EXPECT_EQ(d.feed("STARTTLS\r\nMAIL FROM:<injected@example.jp>\r\n"), Event::StartTls);
  EXPECT_EQ(d.lines(), std::vector<std::string>{"220 2.0.0 Ready to start TLS"});
  d.session.tls_started();
  EXPECT_TRUE(d.session.tls_active());
  // The injected MAIL is gone, and EHLO is needed again.
  EXPECT_EQ(d.feed("MAIL FROM:<a@example.jp>\r\n"), Event::NeedInput);
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  d.feed("EHLO c\r\n");
  auto l = d.lines();
  EXPECT_EQ(std::find(l.begin(), l.end(), "250-STARTTLS"), l.end());
  d.feed("STARTTLS\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
}

TEST(SmtpSessionTest, OneMessageEndToEnd) {
  Driver d(options());
  d.feed("EHLO client.test\r\n");
  d.lines();
  d.feed("MAIL FROM:<a@example.jp> BODY=8BITMIME\r\n");
  EXPECT_EQ(d.last(), "250 2.1.0 Ok");
  d.feed("RCPT TO:<b@example.jp>\r\n");
  EXPECT_EQ(d.last(), "250 2.1.5 Ok");
  d.feed("RCPT TO:<c@example.jp>\r\n");
  EXPECT_EQ(d.last(), "250 2.1.5 Ok");
  d.feed("DATA\r\n");
  EXPECT_EQ(d.last(), "354 End data with <CR><LF>.<CR><LF>");
  EXPECT_TRUE(d.session.in_data());
  EXPECT_EQ(d.feed("Subject: hi\r\n\r\nbody\r\n"), Event::NeedInput);
  EXPECT_EQ(d.feed(".\r\n"), Event::MessageReady);
  EXPECT_TRUE(d.lines().empty());  // no 250 before the queue said so
  const Envelope& e = d.session.envelope();
  EXPECT_EQ(e.client_address, "127.0.0.1");
  EXPECT_EQ(e.helo, "client.test");
  EXPECT_EQ(e.mail_from, "a@example.jp");
  EXPECT_EQ(e.recipients, (std::vector<std::string>{"b@example.jp", "c@example.jp"}));
  EXPECT_TRUE(e.eight_bit);
  EXPECT_FALSE(e.smtputf8);
  EXPECT_EQ(d.session.take_message(), "Subject: hi\r\n\r\nbody\r\n");
  d.session.message_result(SmtpSession::Verdict::Accepted, "Q123");
  EXPECT_EQ(d.feed(""), Event::NeedInput);
  EXPECT_EQ(d.last(), "250 2.0.0 Ok: queued as Q123");
  // The transaction is over: a new MAIL is fine, DATA without it is not.
  d.feed("DATA\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  EXPECT_EQ(d.feed("QUIT\r\n"), Event::Close);
  EXPECT_EQ(d.last(), "221 2.0.0 Bye");
}

TEST(SmtpSessionTest, QueueRefusalsAndReplyTextCannotInjectLines) {
  for (auto [verdict, prefix] : {std::pair{SmtpSession::Verdict::TempFail, "451 4.3.0 "},
                                 std::pair{SmtpSession::Verdict::PermFail, "554 5.3.0 "}}) {
    Driver d = in_transaction();
    EXPECT_EQ(d.feed("DATA\r\nx\r\n.\r\n"), Event::MessageReady);
    d.lines();
    d.session.message_result(verdict, "disk full\r\n250 fake");
    d.feed("");
    auto l = d.lines();
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0], std::string(prefix) + "disk full  250 fake");
  }
}

TEST(SmtpSessionTest, PipelinedTransactionInOneWrite) {
  Driver d(options());
  d.lines();
  EXPECT_EQ(d.feed("EHLO c\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\nline\r\n.\r\n"
                   "MAIL FROM:<>\r\nRCPT TO:<c@example.jp>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n"),
            Event::MessageReady);
  auto l = d.lines();
  ASSERT_GE(l.size(), 4u);
  EXPECT_EQ(l[l.size() - 3], "250 2.1.0 Ok");
  EXPECT_EQ(l[l.size() - 2], "250 2.1.5 Ok");
  EXPECT_EQ(l[l.size() - 1], "354 End data with <CR><LF>.<CR><LF>");
  EXPECT_EQ(d.session.take_message(), "line\r\n");
  d.session.message_result(SmtpSession::Verdict::Accepted, "Q1");
  EXPECT_EQ(d.feed(""), Event::MessageReady);
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"250 2.0.0 Ok: queued as Q1", "250 2.1.0 Ok", "250 2.1.5 Ok",
                                                 "354 End data with <CR><LF>.<CR><LF>"}));
  EXPECT_EQ(d.session.envelope().mail_from, "");  // null sender
  EXPECT_EQ(d.session.take_message(), "second\r\n");
  d.session.message_result(SmtpSession::Verdict::Accepted, "Q2");
  EXPECT_EQ(d.feed(""), Event::Close);
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"250 2.0.0 Ok: queued as Q2", "221 2.0.0 Bye"}));
}

TEST(SmtpSessionTest, ByteByByteFeedingGivesTheSameResult) {
  Driver d(options());
  const std::string all = "EHLO c\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n..dot\r\nx\r\n.\r\n";
  Event e = Event::NeedInput;
  for (char c : all) e = d.feed(std::string_view(&c, 1));
  EXPECT_EQ(e, Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), ".dot\r\nx\r\n");
}

TEST(SmtpSessionTest, DotStuffingIsRemoved) {
  Driver d = in_transaction();
  EXPECT_EQ(d.feed("DATA\r\n..\r\n...two\r\n.x\r\n a.\r\n.\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), ".\r\n..two\r\nx\r\n a.\r\n");
}

TEST(SmtpSessionTest, BareLfIsNormalizedAndLoneCrKept) {
  Driver d = in_transaction();
  EXPECT_EQ(d.feed("DATA\r\nSubject: a\nfoo\rbar\r\n\nend\r\n.\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), "Subject: a\r\nfoo\rbar\r\n\r\nend\r\n");
}

TEST(SmtpSessionTest, BareLfDotDoesNotEndData) {
  // "\n.\n" and "\n.\r\n" are not the end of data (SMTP smuggling): kept as text.
  Driver d = in_transaction();
  EXPECT_EQ(d.feed("DATA\r\na\n.\nMAIL FROM:<x@example.jp>\r\nb\n.\r\nc\r\n"), Event::NeedInput);
  EXPECT_EQ(d.feed(".\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), "a\r\n.\r\nMAIL FROM:<x@example.jp>\r\nb\r\n.\r\nc\r\n");
}

TEST(SmtpSessionTest, CommandLineLimit) {
  Driver d(options());
  d.lines();
  const std::string ok = "NOOP " + std::string(505, 'x') + "\r\n";  // 512 with CRLF
  ASSERT_EQ(ok.size(), 512u);
  d.feed(ok);
  EXPECT_EQ(d.last(), "250 2.0.0 Ok");
  d.feed("NOOP " + std::string(506, 'x') + "\r\n");
  EXPECT_EQ(d.last(), "500 5.5.2 Error: line too long");
  // A long line that arrives in pieces is dropped as it comes, then the
  // session goes on.
  for (int i = 0; i < 100; ++i) d.feed(std::string(1000, 'y'));
  d.feed("\r\nNOOP\r\n");
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"500 5.5.2 Error: line too long", "250 2.0.0 Ok"}));
}

TEST(SmtpSessionTest, TextLineLimit) {
  Driver d = in_transaction();
  const std::string line998(998, 'a');
  EXPECT_EQ(d.feed("DATA\r\n" + line998 + "\r\n.\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), line998 + "\r\n");
  d.session.message_result(SmtpSession::Verdict::Accepted, "Q");
  d.feed("MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\n");
  d.lines();
  EXPECT_EQ(d.feed("DATA\r\n" + std::string(999, 'a') + "\r\nmore\r\n.\r\n"), Event::NeedInput);
  EXPECT_EQ(d.last(), "500 5.5.2 Error: message has a line longer than 1000 octets");
  EXPECT_EQ(d.session.take_refused_count(), 1u);
  EXPECT_FALSE(d.session.in_data());
}

TEST(SmtpSessionTest, SizeParameterCheckedAtMail) {
  Driver d(options());
  d.feed("EHLO c\r\n");
  d.lines();
  d.feed("MAIL FROM:<a@example.jp> SIZE=10001\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "552 5.3.4");
  d.feed("MAIL FROM:<a@example.jp> SIZE=99999999999999999999999\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "552 5.3.4");
  d.feed("MAIL FROM:<a@example.jp> SIZE=abc\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("MAIL FROM:<a@example.jp> SIZE=10000\r\n");
  EXPECT_EQ(d.last(), "250 2.1.0 Ok");
}

TEST(SmtpSessionTest, OversizeMessageIsReadToTheEndThenRefused) {
  Driver d = in_transaction();
  d.feed("DATA\r\n");
  d.lines();
  const std::string line(98, 'z');
  for (int i = 0; i < 500; ++i) EXPECT_EQ(d.feed(line + "\r\n"), Event::NeedInput);  // 50000 > 10000
  EXPECT_TRUE(d.session.take_message().size() <= 10000u);  // never buffered beyond the limit
  EXPECT_EQ(d.feed(".\r\n"), Event::NeedInput);
  EXPECT_EQ(d.last(), "552 5.3.4 Error: message exceeds fixed maximum message size of 10000 bytes");
  EXPECT_EQ(d.session.take_refused_count(), 1u);
  // The session survives for the next message.
  EXPECT_EQ(d.feed("MAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\nsmall\r\n.\r\n"),
            Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), "small\r\n");
}

TEST(SmtpSessionTest, MessageOfExactlyTheLimitIsAccepted) {
  auto o = options();
  o.max_message_bytes = 10;
  Driver d = in_transaction(o);
  EXPECT_EQ(d.feed("DATA\r\n12345678\r\n.\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.take_message(), "12345678\r\n");
}

TEST(SmtpSessionTest, TooManyRecipients) {
  Driver d = in_transaction();  // one already
  d.feed("RCPT TO:<c@example.jp>\r\nRCPT TO:<d@example.jp>\r\nRCPT TO:<e@example.jp>\r\n");
  auto l = d.lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[1], "250 2.1.5 Ok");
  EXPECT_EQ(l[2], "452 4.5.3 Error: too many recipients");
  EXPECT_EQ(d.feed("DATA\r\nx\r\n.\r\n"), Event::MessageReady);
  EXPECT_EQ(d.session.envelope().recipients.size(), 3u);
}

TEST(SmtpSessionTest, BadSequence) {
  Driver d(options());
  d.lines();
  d.feed("MAIL FROM:<a@example.jp>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  d.feed("EHLO c\r\nRCPT TO:<b@example.jp>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  d.feed("DATA\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  d.feed("MAIL FROM:<a@example.jp>\r\nDATA\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "503 5.5.1");
  d.feed("MAIL FROM:<a@example.jp>\r\n");
  EXPECT_EQ(d.last(), "503 5.5.1 Error: nested MAIL command");
  d.feed("RSET\r\nMAIL FROM:<a@example.jp>\r\n");
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"250 2.0.0 Ok", "250 2.1.0 Ok"}));
}

TEST(SmtpSessionTest, SyntaxErrorsAndUnknownCommands) {
  Driver d(options());
  d.lines();
  d.feed("EHLO\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("EHLO c\r\nMAIL FROM:a@example.jp\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("MAIL TO:<a@example.jp>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("MAIL FROM:<a@@example.jp>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.1.7");
  d.feed("MAIL FROM:<a@example.jp> FOO=bar\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "555 5.5.4");
  d.feed("MAIL FROM:<a@example.jp>\r\nRCPT TO:<>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.1.3");
  d.feed("RCPT TO:<not an address>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.1.3");
  d.feed("DATA now\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("FOO\r\n");
  EXPECT_EQ(d.last(), "500 5.5.1 Error: command not recognized");
  d.feed("\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "500 5.5.1");
  // Lenient forms real MTAs send.
  d.feed("RSET\r\nmail from: <a@example.jp>\r\nrcpt to:<Postmaster>\r\nRCPT TO:<@relay.test:c@example.jp>\r\n");
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"250 2.0.0 Ok", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.1.5 Ok"}));
  EXPECT_EQ(d.session.envelope().recipients, (std::vector<std::string>{"Postmaster", "c@example.jp"}));
}

TEST(SmtpSessionTest, HeloDoesNotTakeEsmtpParameters) {
  Driver d(options());
  d.feed("HELO c\r\nMAIL FROM:<a@example.jp> BODY=8BITMIME\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "555 5.5.4");
}

TEST(SmtpSessionTest, Smtputf8AddressesOnlyWithSmtputf8) {
  Driver d(options());
  d.feed("EHLO c\r\nMAIL FROM:<送信者@例え.jp>\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.1.7");
  d.feed("MAIL FROM:<送信者@例え.jp> SMTPUTF8 BODY=8BITMIME\r\nRCPT TO:<受信者@例え.jp>\r\nDATA\r\n");
  EXPECT_EQ(d.lines(), (std::vector<std::string>{"250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"}));
  EXPECT_EQ(d.feed("本文\r\n.\r\n"), Event::MessageReady);
  EXPECT_TRUE(d.session.envelope().smtputf8);
  EXPECT_EQ(d.session.envelope().mail_from, "送信者@例え.jp");
  EXPECT_EQ(d.session.envelope().recipients.at(0), "受信者@例え.jp");
  EXPECT_EQ(d.session.take_message(), "本文\r\n");
}

TEST(SmtpSessionTest, OtherCommands) {
  Driver d(options());
  d.lines();
  d.feed("VRFY someone\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "252 2.0.0");
  d.feed("VRFY\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
  d.feed("HELP\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "214 2.0.0");
  d.feed("NOOP\r\n");
  EXPECT_EQ(d.last(), "250 2.0.0 Ok");
  d.feed("EXPN list\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "502 5.5.1");
  d.feed("RSET x\r\n");
  EXPECT_EQ(d.last().substr(0, 9), "501 5.5.4");
}

TEST(SmtpSessionTest, TooManyErrorsCloses) {
  auto o = options();
  o.max_errors = 5;
  Driver d(o);
  d.lines();
  EXPECT_EQ(d.feed("A\r\nB\r\nC\r\nD\r\n"), Event::NeedInput);
  EXPECT_EQ(d.feed("E\r\nNOOP\r\n"), Event::Close);
  auto l = d.lines();
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l.back(), "421 4.7.0 mx.test Error: too many errors");
  EXPECT_TRUE(d.session.closed());
}

TEST(SmtpSessionTest, ClientNotAllowedIsRefusedWith571) {
  auto o = options();
  o.client_allowed = false;
  o.client_address = "192.0.2.7";
  Driver d(o);
  EXPECT_EQ(d.last(), "554 5.7.1 mx.test Client host [192.0.2.7] not allowed");
  d.feed("EHLO c\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\n");
  for (const auto& l : d.lines()) EXPECT_EQ(l.substr(0, 9), "550 5.7.1") << l;
  EXPECT_EQ(d.feed("QUIT\r\n"), Event::Close);
  EXPECT_EQ(d.last(), "221 2.0.0 Bye");
}

TEST(SmtpSessionTest, TimeoutAndShutdownSay421) {
  Driver d(options());
  d.lines();
  d.session.timeout();
  d.out += d.session.take_output();
  EXPECT_EQ(d.last(), "421 4.4.2 mx.test Error: timeout exceeded");
  EXPECT_EQ(d.feed("NOOP\r\n"), Event::Close);
  EXPECT_TRUE(d.lines().empty());
  Driver s(options());
  s.lines();
  s.session.shutdown();
  s.out += s.session.take_output();
  EXPECT_EQ(s.last().substr(0, 9), "421 4.3.2");
}

TEST(SmtpAddressTest, Syntax) {
  EXPECT_TRUE(smtp_address_valid("a@example.jp", false));
  EXPECT_TRUE(smtp_address_valid("first.last+tag@sub.example.jp", false));
  EXPECT_TRUE(smtp_address_valid("\"quoted local\"@example.jp", false));
  EXPECT_TRUE(smtp_address_valid("a@[192.0.2.1]", false));
  EXPECT_TRUE(smtp_address_valid("a@[IPv6:2001:db8::1]", false));
  EXPECT_TRUE(smtp_address_valid("postmaster", false));
  EXPECT_TRUE(smtp_address_valid("利用者@例え.jp", true));
  EXPECT_FALSE(smtp_address_valid("利用者@例え.jp", false));
  EXPECT_FALSE(smtp_address_valid("\xff\xfe@example.jp", true));  // not UTF-8
  EXPECT_FALSE(smtp_address_valid("", false));
  EXPECT_FALSE(smtp_address_valid("a", false));
  EXPECT_FALSE(smtp_address_valid("@example.jp", false));
  EXPECT_FALSE(smtp_address_valid("a@", false));
  EXPECT_FALSE(smtp_address_valid(".a@example.jp", false));
  EXPECT_FALSE(smtp_address_valid("a..b@example.jp", false));
  EXPECT_FALSE(smtp_address_valid("a b@example.jp", false));
  EXPECT_FALSE(smtp_address_valid("a@-example.jp", false));
  EXPECT_FALSE(smtp_address_valid("a@example..jp", false));
  EXPECT_FALSE(smtp_address_valid("a@[300.0.0.1]", false));
  EXPECT_FALSE(smtp_address_valid(std::string(65, 'a') + "@example.jp", false));
}

TEST(SmtpNetworkTest, CidrParsingAndMatching) {
  const auto v4 = IpNetwork::parse("10.0.0.0/8");
  EXPECT_TRUE(v4.contains("10.1.2.3"));
  EXPECT_TRUE(v4.contains("::ffff:10.1.2.3"));
  EXPECT_FALSE(v4.contains("11.0.0.1"));
  EXPECT_FALSE(v4.contains("::1"));
  const auto v6 = IpNetwork::parse("2001:db8::/32");
  EXPECT_TRUE(v6.contains("2001:db8:1::5"));
  EXPECT_FALSE(v6.contains("2001:db9::1"));
  EXPECT_FALSE(v6.contains("10.0.0.1"));
  EXPECT_TRUE(IpNetwork::parse("192.0.2.1").contains("192.0.2.1"));
  EXPECT_FALSE(IpNetwork::parse("192.0.2.1").contains("192.0.2.2"));
  EXPECT_TRUE(IpNetwork::parse("0.0.0.0/0").contains("203.0.113.9"));
  EXPECT_TRUE(IpNetwork::parse("172.16.0.0/12").contains("172.31.255.255"));
  EXPECT_FALSE(IpNetwork::parse("172.16.0.0/12").contains("172.32.0.0"));
  EXPECT_TRUE(IpNetwork::parse("::1/128").contains("::1"));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0/8", "host/8", "10.0.0.1/8", "::1/129", "10.0.0.0/-1"}) {
    try {
      IpNetwork::parse(bad);
      ADD_FAILURE() << bad << " parsed";
    } catch (const SmtpServerError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\" is not a network"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace mukaika
