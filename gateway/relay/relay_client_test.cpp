// RelayClient against real peers: aiosmtpd (relay_peer.py), Postfix's
// smtp-sink, and plain sockets that misbehave on purpose.
#include "relay/relay_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "relay_test_support.h"
#include "unique_fd.h"

namespace mukaika {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::TempDir;

// A listening socket on 127.0.0.1 that the test drives by hand.
struct Listener {
  UniqueFd fd;
  int port = 0;
  Listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), 8), 0);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  std::string hop() const { return "127.0.0.1:" + std::to_string(port); }
};

RelayOptions fast_options(const std::string& hop) {
  RelayOptions o;
  o.next_hop = hop;
  o.helo_name = "mukaika.test";
  o.connect_timeout = 5s;
  o.greeting_timeout = o.helo_timeout = o.mail_timeout = o.rcpt_timeout = 10s;
  o.data_init_timeout = o.data_block_timeout = o.data_done_timeout = 10s;
  o.quit_timeout = 2s;
  return o;
}

Envelope envelope_from(const std::string& sender, std::vector<std::string> recipients) {
  Envelope e;
  e.client_address = "192.0.2.10";
  e.helo = "mx.example.com";
  e.mail_from = sender;
  e.recipients = std::move(recipients);
  e.received = std::chrono::system_clock::now();
  return e;
}

// relay_peer.py: aiosmtpd on a port of its own choosing.
class AiosmtpdPeer {
 public:
  explicit AiosmtpdPeer(bool smtputf8 = true, std::vector<std::string> extra = {})
      : child_(argv(smtputf8, std::move(extra))) {
    auto line = child_.read_line(20s);
    if (!line) throw std::runtime_error("relay_peer.py did not start");
    port_ = std::stoi(*line);
  }
  std::string hop() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string envelope(int n) const { return testing::read_file(dir() / (std::to_string(n) + ".json")); }
  std::string message(int n) const { return testing::read_file(dir() / (std::to_string(n) + ".eml")); }
  std::size_t stored() const { return testing::files_in(dir()).size(); }

 private:
  std::vector<std::string> argv(bool smtputf8, std::vector<std::string> extra) const {
    std::vector<std::string> a{MUKAIKA_RELAY_PYTHON, MUKAIKA_RELAY_PEER, dir_.path().string()};
    if (!smtputf8) a.push_back("--no-smtputf8");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  TempDir dir_;
  ChildProcess child_;
  int port_ = 0;
};

const std::string kSevenBit =
    "From: sender@example.com\r\n"
    "To: a@lg.example.jp\r\n"
    "Subject: dot stuffing\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    ".a line that starts with a dot\r\n"
    "..two dots\r\n"
    ".\r\n"
    "a lone dot above; the end.\r\n";

TEST(RelayClient, DeliversExactEnvelopeAndBytesToAiosmtpd) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 250) << r.reply.text;
    EXPECT_TRUE(r.reply.ok());
  }
  EXPECT_EQ(results[0].recipient, "a@lg.example.jp");
  EXPECT_EQ(results[1].recipient, "b@lg.example.jp");
  EXPECT_EQ(results[0].reply.enhanced, "2.0.0");
  EXPECT_EQ(peer.message(1), kSevenBit);  // dot-stuffing undone by the peer: the exact bytes
  std::string meta = peer.envelope(1);
  EXPECT_NE(meta.find("\"mail_from\": \"sender@example.com\""), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"rcpt_tos\": [\"a@lg.example.jp\", \"b@lg.example.jp\"]"), std::string::npos) << meta;
  EXPECT_NE(meta.find("\"helo\": \"mukaika.test\""), std::string::npos) << meta;
  EXPECT_EQ(meta.find("8BITMIME"), std::string::npos) << "7-bit mail is sent without BODY=8BITMIME: " << meta;
  EXPECT_NE(meta.find("SIZE="), std::string::npos) << meta;
  EXPECT_TRUE(client.last_capabilities().esmtp);
  EXPECT_TRUE(client.last_capabilities().smtputf8);
  EXPECT_EQ(client.describe(), "smtp " + peer.hop());
}

TEST(RelayClient, LineEndsBecomeCrlfAndAFinalCrlfIsAdded) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("", {"a@lg.example.jp"});  // the null sender too
  auto results = client.deliver(env, env.recipients, "Subject: lf\n\n.dot\nno final newline");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_EQ(peer.message(1), "Subject: lf\r\n\r\n.dot\r\nno final newline\r\n");
  EXPECT_NE(peer.envelope(1).find("\"mail_from\": \"\""), std::string::npos) << peer.envelope(1);
}

TEST(RelayClient, JapaneseUtf8WithSmtputf8) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("送信者@例え.jp", {"受信者@lg.example.jp"});
  env.smtputf8 = true;
  env.eight_bit = true;
  const std::string message =
      "From: 送信者@例え.jp\r\nTo: 受信者@lg.example.jp\r\nSubject: 会議のご案内\r\n"
      "Content-Type: text/plain; charset=UTF-8\r\n\r\n各位\r\n.来週の会議について\r\n";
  auto results = client.deliver(env, env.recipients, message);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_EQ(peer.message(1), message);
  std::string meta = peer.envelope(1);
  EXPECT_NE(meta.find("\"mail_from\": \"送信者@例え.jp\""), std::string::npos) << meta;
  EXPECT_NE(meta.find("受信者@lg.example.jp"), std::string::npos) << meta;
  EXPECT_NE(meta.find("SMTPUTF8"), std::string::npos) << meta;
  EXPECT_NE(meta.find("BODY=8BITMIME"), std::string::npos) << meta;
}

TEST(RelayClient, LargeEightBitMessageGoesWithBody8bitmime) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});  // eight_bit not set: the bytes decide
  std::string message = "Subject: big\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n";
  for (int i = 0; i < 20000; ++i) message += (i % 7 == 0 ? "." : "") + std::to_string(i) + " 無害化のテスト行\r\n";
  ASSERT_GT(message.size(), 400'000u);
  auto results = client.deliver(env, env.recipients, message);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_TRUE(peer.message(1) == message) << "the bytes that arrived differ";
  EXPECT_NE(peer.envelope(1).find("BODY=8BITMIME"), std::string::npos) << peer.envelope(1);
  EXPECT_EQ(peer.envelope(1).find("SMTPUTF8"), std::string::npos) << peer.envelope(1);
}

TEST(RelayClient, Smtputf8ToAPeerWithoutItIsPermanent567) {
  AiosmtpdPeer peer(/*smtputf8=*/false);
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("送信者@例え.jp", {"a@lg.example.jp", "b@lg.example.jp"});
  env.smtputf8 = true;
  auto results = client.deliver(env, env.recipients, "Subject: x\r\n\r\nbody\r\n");
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.reply.permanent());
    EXPECT_EQ(r.reply.enhanced, "5.6.7");
    EXPECT_NE(r.reply.text.find("SMTPUTF8"), std::string::npos);
  }
  EXPECT_EQ(peer.stored(), 0u);
}

TEST(RelayClient, MixedRecipientResults) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"ok@lg.example.jp", "reject-x@lg.example.jp", "temp-y@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].reply.code, 250);
  EXPECT_EQ(results[1].recipient, "reject-x@lg.example.jp");
  EXPECT_EQ(results[1].reply.code, 550);
  EXPECT_EQ(results[1].reply.enhanced, "5.1.1");
  EXPECT_TRUE(results[1].reply.permanent());
  EXPECT_NE(results[1].reply.text.find("no such user"), std::string::npos);
  EXPECT_EQ(results[2].reply.code, 451);
  EXPECT_EQ(results[2].reply.enhanced, "4.2.0");
  EXPECT_TRUE(results[2].reply.temporary());
  EXPECT_NE(peer.envelope(1).find("\"rcpt_tos\": [\"ok@lg.example.jp\"]"), std::string::npos) << peer.envelope(1);
}

TEST(RelayClient, AddressesThatWouldInjectCommandsAreNeverSent) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {});
  auto results = client.deliver(env, {"ok@lg.example.jp", "x@lg.example.jp>\r\nRCPT TO:<evil@example.com"}, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_EQ(results[1].reply.code, 553);
  EXPECT_TRUE(results[1].reply.permanent());
  EXPECT_EQ(peer.envelope(1).find("evil"), std::string::npos) << peer.envelope(1);

  env.mail_from = "a@example.com>\r\nRSET";
  results = client.deliver(env, {"ok@lg.example.jp"}, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 553);
  EXPECT_EQ(results[0].reply.enhanced, "5.1.7");
}

TEST(RelayClient, AllRecipientsRejectedSendsNoData) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"reject-a@lg.example.jp", "temp-b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reply.code, 550);
  EXPECT_EQ(results[1].reply.code, 451);
  EXPECT_EQ(peer.stored(), 0u);
}

TEST(RelayClient, MailFromRefusals) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("reject-me@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 550);
    EXPECT_EQ(r.reply.enhanced, "5.7.1");
  }
  env.mail_from = "temp-me@example.com";
  results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_TRUE(r.reply.temporary());
  }
  EXPECT_EQ(peer.stored(), 0u);
}

TEST(RelayClient, RefusalAfterTheFinalDotIsPermanentForAcceptedRecipients) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"datafail-a@lg.example.jp", "reject-b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reply.code, 554);
  EXPECT_EQ(results[0].reply.enhanced, "5.6.0");
  EXPECT_EQ(results[1].reply.code, 550);
}

TEST(RelayClient, NextHopDownIsTemporaryForEveryRecipient) {
  // Bound but not listening: the port stays ours, and connecting is refused.
  UniqueFd bound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(bound.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ::getsockname(bound.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const std::string hop = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  RelayClient client(fast_options(hop));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 0);
    EXPECT_TRUE(r.reply.temporary());
    EXPECT_EQ(r.reply.text, "connect to " + hop + ": Connection refused");
  }
}

TEST(RelayClient, SilentPeerTimesOutWithinTheShortenedTimeout) {
  Listener silent;  // accepts in the kernel's backlog, never says a word
  auto o = fast_options(silent.hop());
  o.greeting_timeout = 1s;
  RelayClient client(o);
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto start = std::chrono::steady_clock::now();
  auto results = client.deliver(env, env.recipients, kSevenBit);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 5s);
  EXPECT_GE(took, 900ms);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 0);
    EXPECT_TRUE(r.reply.temporary());
    EXPECT_NE(r.reply.text.find("timeout"), std::string::npos) << r.reply.text;
    EXPECT_NE(r.reply.text.find("greeting"), std::string::npos) << r.reply.text;
  }
}

// A hand-driven peer for the first connection: sends replies[0] at once,
// then each next reply after reading one command line (after a 354, after
// reading the whole message up to the final dot). After the last reply it
// reads one more line and hangs up, or with `hold`, stays silent until the
// client hangs up.
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::vector<std::string> replies, bool hold = false)
      : thread_([this, hold, replies = std::move(replies)] {
          UniqueFd c(::accept4(listener_.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
          if (!c) return;
          auto read_line = [&](std::string& line) {
            line.clear();
            char ch;
            while (::recv(c.get(), &ch, 1, 0) == 1) {
              if (ch == '\n') return true;
              line += ch;
            }
            return false;
          };
          std::string line;
          for (std::size_t i = 0; i <= replies.size(); ++i) {
            if (i > 0) {
              if (!read_line(line)) return;
              if (replies[i - 1].rfind("354", 0) == 0)
                while (line != ".\r" && read_line(line)) {}
            }
            if (i == replies.size()) {
              while (hold && read_line(line)) {}
              return;
            }
            std::string_view r = replies[i];
            while (!r.empty()) {
              ssize_t n = ::send(c.get(), r.data(), r.size(), MSG_NOSIGNAL);
              if (n <= 0) return;
              r.remove_prefix(static_cast<std::size_t>(n));
            }
          }
        }) {}
  ~ScriptedPeer() { thread_.join(); }
  std::string hop() const { return listener_.hop(); }

 private:
  Listener listener_;
  std::thread thread_;
};

TEST(RelayClient, Greeting421IsTemporary) {
  ScriptedPeer peer({"421 4.3.2 Service not available, closing channel\r\n"});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 421);
    EXPECT_EQ(r.reply.enhanced, "4.3.2");
    EXPECT_TRUE(r.reply.temporary());
  }
}

TEST(RelayClient, Greeting554IsStillTemporary) {
  ScriptedPeer peer({"554 5.7.1 go away\r\n"});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].reply.temporary());
  EXPECT_NE(results[0].reply.text.find("554 go away"), std::string::npos) << results[0].reply.text;
}

TEST(RelayClient, OverlongReplyIsATemporaryProtocolError) {
  std::string huge;
  for (int i = 0; i < 2000; ++i) huge += "220-" + std::string(60, 'x') + "\r\n";
  huge += "220 ready\r\n";
  ScriptedPeer peer({huge});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 0);
  EXPECT_NE(results[0].reply.text.find("longer than 65536 bytes"), std::string::npos) << results[0].reply.text;
}

TEST(RelayClient, FallsBackToHeloAndWaitsForEachReply) {
  ScriptedPeer peer({"220 old.example ready\r\n", "502 5.5.1 EHLO not implemented\r\n", "250 old.example\r\n",
                     "250 ok\r\n", "250 ok\r\n", "354 go ahead\r\n", "250 queued\r\n", "221 bye\r\n"});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, "Subject: x\r\n\r\nhi\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_FALSE(client.last_capabilities().esmtp);
  EXPECT_EQ(results[0].reply.text, "queued");
}

TEST(RelayClient, EightBitToAPeerWithout8bitmimeIsPermanent) {
  ScriptedPeer peer({"220 ready\r\n", "250-seven.example\r\n250 SIZE 1000000\r\n", "221 bye\r\n"});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, "Subject: x\r\n\r\n日本語\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 554);
  EXPECT_EQ(results[0].reply.enhanced, "5.6.3");
  EXPECT_NE(results[0].reply.text.find("8BITMIME"), std::string::npos);
}

TEST(RelayClient, MessageAboveThePeersSizeIsPermanent) {
  ScriptedPeer peer({"220 ready\r\n", "250-small.example\r\n250 SIZE 100\r\n", "221 bye\r\n"});
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, "Subject: x\r\n\r\n" + std::string(200, 'a') + "\r\n");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 552);
  EXPECT_EQ(results[0].reply.enhanced, "5.3.4");
}

TEST(RelayClient, NoReplyToTheFinalDotIsATemporaryTimeout) {
  ScriptedPeer peer({"220 ready\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n", "354 go ahead\r\n"},
                    /*hold=*/true);
  auto o = fast_options(peer.hop());
  o.data_done_timeout = 1s;
  RelayClient client(o);
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto start = std::chrono::steady_clock::now();
  auto results = client.deliver(env, env.recipients, kSevenBit);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 0);
  EXPECT_TRUE(results[0].reply.temporary());
  EXPECT_NE(results[0].reply.text.find("timeout after 1 s waiting for reply to end of data"), std::string::npos)
      << results[0].reply.text;
}

TEST(RelayClient, PeerClosingAfterMailIsTemporary) {
  ScriptedPeer peer({"220 ready\r\n", "250 fine\r\n"});  // then hangs up after MAIL
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 0);
    EXPECT_NE(r.reply.text.find("connection closed"), std::string::npos) << r.reply.text;
  }
}

// The client's port of the connection that carried a message (relay_peer.py
// writes it as "peer_port": N).
int peer_port_of(const std::string& envelope_json) {
  const std::string key = "\"peer_port\": ";
  auto pos = envelope_json.find(key);
  if (pos == std::string::npos) return -1;
  return std::atoi(envelope_json.c_str() + pos + key.size());
}

TEST(RelayClient, ReusesTheConnectionForConsecutiveMessages) {
  AiosmtpdPeer peer;
  RelayClient client(fast_options(peer.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  ASSERT_EQ(client.deliver(env, env.recipients, kSevenBit).at(0).reply.code, 250);
  // A refused recipient in the second transaction: RSET before the third
  // leaves nothing of it behind.
  auto mixed = envelope_from("sender@example.com", {"b@lg.example.jp", "reject-c@lg.example.jp"});
  auto results = client.deliver(mixed, mixed.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].reply.code, 250);
  EXPECT_EQ(results[1].reply.code, 550);
  auto third = envelope_from("other@example.com", {"d@lg.example.jp"});
  ASSERT_EQ(client.deliver(third, third.recipients, kSevenBit).at(0).reply.code, 250);
  EXPECT_EQ(client.sessions_kept(), 3u);
  ASSERT_EQ(peer.stored(), 6u);  // .eml and .json each
  const int port = peer_port_of(peer.envelope(1));
  EXPECT_EQ(peer_port_of(peer.envelope(2)), port) << "a new connection for the second message";
  EXPECT_EQ(peer_port_of(peer.envelope(3)), port) << "a new connection for the third message";
  EXPECT_NE(peer.envelope(2).find("\"rcpt_tos\": [\"b@lg.example.jp\"]"), std::string::npos) << peer.envelope(2);
  EXPECT_NE(peer.envelope(3).find("\"mail_from\": \"other@example.com\""), std::string::npos) << peer.envelope(3);
  EXPECT_NE(peer.envelope(3).find("\"rcpt_tos\": [\"d@lg.example.jp\"]"), std::string::npos) << peer.envelope(3);
}

TEST(RelayClient, AnIdleConnectionIsClosedAndTheNextMessageOpensANewOne) {
  AiosmtpdPeer peer;
  RelayOptions o = fast_options(peer.hop());
  o.reuse_idle_timeout = 200ms;
  RelayClient client(o);
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  ASSERT_EQ(client.deliver(env, env.recipients, kSevenBit).at(0).reply.code, 250);
  std::this_thread::sleep_for(300ms);
  client.close_idle();
  ASSERT_EQ(client.deliver(env, env.recipients, kSevenBit).at(0).reply.code, 250);
  EXPECT_NE(peer_port_of(peer.envelope(1)), peer_port_of(peer.envelope(2)));

  // Reuse off: a connection per message.
  o.reuse_idle_timeout = 0ms;
  RelayClient single(o);
  ASSERT_EQ(single.deliver(env, env.recipients, kSevenBit).at(0).reply.code, 250);
  ASSERT_EQ(single.deliver(env, env.recipients, kSevenBit).at(0).reply.code, 250);
  EXPECT_NE(peer_port_of(peer.envelope(3)), peer_port_of(peer.envelope(4)));
  EXPECT_EQ(single.sessions_kept(), 0u);
}

// A peer that hangs up a kept connection (its idle timeout): the next
// message notices at RSET and goes over a new connection, not deferred.
TEST(RelayClient, AKeptConnectionThePeerClosedIsReplacedNotAFailure) {
  Listener listener;
  std::atomic<int> connections{0}, delivered{0};
  std::thread server([&] {
    for (int n = 0; n < 2; ++n) {
      UniqueFd c(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) return;
      ++connections;
      auto say = [&](std::string_view r) { ::send(c.get(), r.data(), r.size(), MSG_NOSIGNAL); };
      auto read_line = [&](std::string& line) {
        line.clear();
        char ch;
        while (::recv(c.get(), &ch, 1, 0) == 1) {
          if (ch == '\n') return true;
          line += ch;
        }
        return false;
      };
      say("220 ready\r\n");
      std::string line;
      while (read_line(line)) {
        if (line.rfind("EHLO", 0) == 0) say("250-hello\r\n250 8BITMIME\r\n");
        else if (line.rfind("MAIL", 0) == 0 || line.rfind("RCPT", 0) == 0 || line.rfind("RSET", 0) == 0)
          say("250 ok\r\n");
        else if (line.rfind("DATA", 0) == 0) {
          say("354 go\r\n");
          while (read_line(line) && line != ".\r") {}
          say("250 queued\r\n");
          ++delivered;
          if (n == 0) break;  // hang up after the first message, without a word
        } else if (line.rfind("QUIT", 0) == 0) {
          say("221 bye\r\n");
          break;
        }
      }
    }
  });
  {
    RelayClient client(fast_options(listener.hop()));
    auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
    auto first = client.deliver(env, env.recipients, kSevenBit);
    EXPECT_EQ(first.at(0).reply.code, 250) << first.at(0).reply.text;
    std::this_thread::sleep_for(100ms);  // the hang-up arrives
    auto second = client.deliver(env, env.recipients, kSevenBit);
    EXPECT_EQ(second.at(0).reply.code, 250) << second.at(0).reply.text;
  }  // the destructor ends the kept session with QUIT
  server.join();
  EXPECT_EQ(connections.load(), 2);
  EXPECT_EQ(delivered.load(), 2);
}

// Postfix's smtp-sink: offers PIPELINING, so this also covers the pipelined path.
class SmtpSink {
 public:
  explicit SmtpSink(std::vector<std::string> extra = {}) {
    ::chmod(dir_.path().c_str(), 0777);  // it writes as nobody
    port_ = testing::free_port();
    std::vector<std::string> argv{MUKAIKA_SMTP_SINK, "-u", "nobody", "-d", (dir_.path() / "%M.").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("127.0.0.1:" + std::to_string(port_));
    argv.push_back("10");
    child_ = std::make_unique<ChildProcess>(argv, false);
    if (!testing::wait_for_port(port_, 10s)) throw std::runtime_error("smtp-sink did not start");
  }
  std::string hop() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::filesystem::path> dumps() const { return testing::files_in(dir_.path()); }

 private:
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

bool have_smtp_sink() { return std::string(MUKAIKA_SMTP_SINK).size() > 0 && ::access(MUKAIKA_SMTP_SINK, X_OK) == 0; }

TEST(RelayClient, DeliversToSmtpSinkWithPipelining) {
  if (!have_smtp_sink()) GTEST_SKIP() << "smtp-sink (postfix) not installed";
  SmtpSink sink;
  RelayClient client(fast_options(sink.hop()));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.reply.code, 250) << r.reply.text;
  EXPECT_TRUE(client.last_capabilities().pipelining);
  std::vector<std::filesystem::path> dumps;
  for (int i = 0; i < 50 && dumps.empty(); ++i) {
    dumps = sink.dumps();
    if (dumps.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(dumps.size(), 1u);
  std::string dump = testing::read_file(dumps[0]);
  EXPECT_NE(dump.find("X-Mail-Args: <sender@example.com>\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("X-Rcpt-Args: <a@lg.example.jp>\nX-Rcpt-Args: <b@lg.example.jp>\n"), std::string::npos) << dump;
  // smtp-sink writes its dumps with LF line ends, dot-unstuffed.
  std::string lf = kSevenBit;
  for (std::size_t p; (p = lf.find("\r\n")) != std::string::npos;) lf.erase(p, 1);
  EXPECT_NE(dump.find(lf), std::string::npos) << dump;
}

TEST(RelayClient, SmtpSinkRejectingRcptIsPermanentAndSoftMailIsTemporary) {
  if (!have_smtp_sink()) GTEST_SKIP() << "smtp-sink (postfix) not installed";
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  {
    SmtpSink sink({"-f", "RCPT"});
    RelayClient client(fast_options(sink.hop()));
    auto results = client.deliver(env, env.recipients, kSevenBit);
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) EXPECT_TRUE(r.reply.permanent()) << r.reply.code << " " << r.reply.text;
  }
  {
    SmtpSink sink({"-r", "MAIL"});
    RelayClient client(fast_options(sink.hop()));
    auto results = client.deliver(env, env.recipients, kSevenBit);
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
      EXPECT_GE(r.reply.code, 400) << r.reply.text;
      EXPECT_TRUE(r.reply.temporary()) << r.reply.code << " " << r.reply.text;
    }
  }
}

TEST(RelayClient, ParsesMultiLineRepliesAndEnhancedCodes) {
  SmtpReply r;
  ASSERT_TRUE(parse_smtp_reply("550-5.1.1 first line\r\n550 5.1.1 second line\r\n", r));
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.1.1");
  EXPECT_EQ(r.text, "first line / second line");
  ASSERT_TRUE(parse_smtp_reply("250 ok\r\n", r));
  EXPECT_EQ(r.enhanced, "");
  ASSERT_TRUE(parse_smtp_reply("451 5.1.1 class disagrees\r\n", r));
  EXPECT_EQ(r.enhanced, "") << "an enhanced code of another class is text";
  EXPECT_FALSE(parse_smtp_reply("250-a\r\n251 b\r\n", r));
  EXPECT_FALSE(parse_smtp_reply("hello\r\n", r));
}

TEST(RelayClient, DataBlockDotStuffsAndEndsWithDot) {
  EXPECT_EQ(smtp_data_block("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
  EXPECT_EQ(smtp_data_block(".\n"), "..\r\n.\r\n");
  EXPECT_EQ(smtp_data_block("x"), "x\r\n.\r\n");
  EXPECT_EQ(smtp_data_block(""), ".\r\n");
  EXPECT_EQ(smtp_data_block("a\rb"), "a\r\nb\r\n.\r\n");
}

TEST(RelayClient, NextHopParsing) {
  EXPECT_EQ(RelayClient(fast_options("[::1]:2525")).describe(), "smtp [::1]:2525");
  EXPECT_NO_THROW(RelayClient(fast_options("mail.lg.example.jp")));
  EXPECT_THROW(RelayClient(fast_options("")), RelayConfigError);
  EXPECT_THROW(RelayClient(fast_options("host:0")), RelayConfigError);
  EXPECT_THROW(RelayClient(fast_options("host:99999")), RelayConfigError);
  EXPECT_THROW(RelayClient(fast_options("host:smtp")), RelayConfigError);
  EXPECT_THROW(RelayClient(fast_options("[::1")), RelayConfigError);
}

TEST(RelayClient, Ipv6LiteralNextHop) {
  UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) GTEST_SKIP() << "no IPv6 loopback";
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin6_port);
  // Bound, nothing listens: refused, but over IPv6.
  RelayClient client(fast_options("[::1]:" + std::to_string(port)));
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.text, "connect to [::1]:" + std::to_string(port) + ": Connection refused");
}

// A self-signed certificate for 127.0.0.1 and localhost, made by openssl(1).
struct TestCertificate {
  TempDir dir;
  std::string cert = (dir.path() / "cert.pem").string();
  std::string key = (dir.path() / "key.pem").string();
  bool made = testing::run({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"},
                           nullptr, /*quiet=*/true) == 0;
};

TEST(RelayClient, StartTlsVerifiedAgainstTheConfiguredCa) {
  TestCertificate c;
  ASSERT_TRUE(c.made) << "openssl req failed";
  AiosmtpdPeer peer(true, {"--tls", c.cert, c.key});
  auto o = fast_options(peer.hop());
  o.tls = RelayTls::verify;
  o.tls_ca_file = c.cert;
  RelayClient client(o);
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_TRUE(client.last_capabilities().tls_active);
  EXPECT_NE(peer.envelope(1).find("\"tls\": true"), std::string::npos) << peer.envelope(1);
  EXPECT_EQ(peer.message(1), kSevenBit);
}

TEST(RelayClient, StartTlsWithAnUntrustedCertificateIsTemporary) {
  TestCertificate c;
  ASSERT_TRUE(c.made) << "openssl req failed";
  TestCertificate other;
  ASSERT_TRUE(other.made);
  AiosmtpdPeer peer(true, {"--tls", c.cert, c.key});
  auto o = fast_options(peer.hop());
  o.tls = RelayTls::verify;
  o.tls_ca_file = other.cert;  // a different CA: must not be trusted
  RelayClient client(o);
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp", "b@lg.example.jp"});
  auto results = client.deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 0);
    EXPECT_NE(r.reply.text.find("TLS handshake with " + peer.hop() + " failed: certificate"), std::string::npos)
        << r.reply.text;
  }
  EXPECT_EQ(peer.stored(), 0u);

  // `encrypt` does not check the certificate, only that the link is encrypted.
  o.tls = RelayTls::encrypt;
  RelayClient unverified(o);
  results = unverified.deliver(env, env.recipients, kSevenBit);
  for (const auto& r : results) EXPECT_EQ(r.reply.code, 250) << r.reply.text;
  EXPECT_NE(peer.envelope(1).find("\"tls\": true"), std::string::npos) << peer.envelope(1);
}

TEST(RelayClient, TlsRequiredButNotOfferedIsTemporaryAndMayGoesPlain) {
  AiosmtpdPeer peer;  // no STARTTLS
  auto o = fast_options(peer.hop());
  o.tls = RelayTls::encrypt;
  auto env = envelope_from("sender@example.com", {"a@lg.example.jp"});
  auto results = RelayClient(o).deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].reply.temporary());
  EXPECT_NE(results[0].reply.text.find("does not offer STARTTLS"), std::string::npos) << results[0].reply.text;
  EXPECT_EQ(peer.stored(), 0u);

  o.tls = RelayTls::may;
  results = RelayClient(o).deliver(env, env.recipients, kSevenBit);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_NE(peer.envelope(1).find("\"tls\": false"), std::string::npos) << peer.envelope(1);
}

TEST(RelayClient, MissingCaFileIsAConfigurationError) {
  auto o = fast_options("127.0.0.1:25");
  o.tls = RelayTls::verify;
  o.tls_ca_file = "/nonexistent/ca.pem";
  EXPECT_THROW(RelayClient{o}, RelayConfigError);
}

}  // namespace
}  // namespace mukaika
