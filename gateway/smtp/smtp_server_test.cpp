// SmtpServer with real clients: Python's smtplib (Debian's /usr/bin/python3),
// swaks, Postfix's smtp-source, and raw sockets; the sink records what the
// queue would have received.
#include "smtp/smtp_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <utility>  // Boost 1.74 asio needs std::exchange declared first in C++20
#include <atomic>
#include <boost/asio.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace mukaika {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RecordingSink : public MessageSink {
 public:
  enum class Mode { Accept, TempFail, PermFail, Throw };

  SmtpAccept accept(const Envelope& envelope, std::string message) override {
    if (before_accept) before_accept(envelope);  // outside the lock: may block
    std::lock_guard lock(mutex_);
    switch (mode_) {
      case Mode::TempFail:
        return {SmtpAccept::Status::TempFail, {}, "Error: queue is busy"};
      case Mode::PermFail:
        return {SmtpAccept::Status::PermFail, {}, "Error: refused by policy"};
      case Mode::Throw:
        throw std::runtime_error("spool: No space left on device");
      case Mode::Accept:
        break;
    }
    messages_.push_back({envelope, std::move(message)});
    return {SmtpAccept::Status::Accepted, "Q" + std::to_string(messages_.size()), {}};
  }

  void set_mode(Mode m) {
    std::lock_guard lock(mutex_);
    mode_ = m;
  }
  std::vector<std::pair<Envelope, std::string>> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }

  std::function<void(const Envelope&)> before_accept;  // set before the server starts

 private:
  mutable std::mutex mutex_;
  Mode mode_ = Mode::Accept;
  std::vector<std::pair<Envelope, std::string>> messages_;
};

struct TempDir {
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mukaika-smtp-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream out(path / name, std::ios::binary);
    out << content;
    return path / name;
  }
  fs::path path;
};

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs a shell command, stdout and stderr together.
CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string port_of(const SmtpServer& server) {
  const auto e = server.local_endpoint();
  return e.substr(e.rfind(':') + 1);
}

SmtpServerOptions test_options() {
  SmtpServerOptions o;
  o.listen = "127.0.0.1:0";
  o.hostname = "mukaika.test";
  o.on_error = [](const std::string&) {};
  return o;
}

// A blocking line-oriented client for the cases no real MTA would produce.
class RawClient {
 public:
  explicit RawClient(const std::string& port) : socket_(io_) {
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(std::stoi(port)));
    socket_.connect(ep);
  }
  std::string read_line() {
    boost::system::error_code ec;
    boost::asio::read_until(socket_, buffer_, "\r\n", ec);
    if (ec && buffer_.size() == 0) return "<" + ec.message() + ">";
    std::istream in(&buffer_);
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  // Reads a multi-line reply, returns its last line.
  std::string read_reply() {
    std::string line;
    do line = read_line();
    while (line.size() > 3 && line[3] == '-');
    return line;
  }
  void send(const std::string& text) { boost::asio::write(socket_, boost::asio::buffer(text)); }
  bool closed_by_peer() {
    boost::system::error_code ec;
    char c;
    socket_.read_some(boost::asio::buffer(&c, 1), ec);
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::streambuf buffer_;
};

const std::string kPython = MUKAIKA_PYTHON;

// Sends each file given on the command line as one message in one session;
// prints "OK" or the error code per message. argv: port, tls(0/1), then
// triples of mail options (comma separated, "-" for none), recipient, file.
const char* kSendScript = R"PY(
import smtplib, ssl, sys
port, tls = int(sys.argv[1]), sys.argv[2] == "1"
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.example.jp")
if tls:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example.jp")
    print("TLS", s.sock.version())
args = sys.argv[3:]
for i in range(0, len(args), 3):
    opts = [] if args[i] == "-" else args[i].split(",")
    sender = "送信者@例え.jp" if "SMTPUTF8" in opts else "sender@example.jp"
    with open(args[i + 2], "rb") as f:
        data = f.read()
    try:
        s.sendmail(sender, [args[i + 1]], data, mail_options=opts)
        print("OK")
    except smtplib.SMTPResponseException as e:
        print("ERR", e.smtp_code, e.smtp_error.decode())
s.quit()
)PY";

class SmtpServerTest : public ::testing::Test {
 protected:
  std::string python_send(const SmtpServer& server, const std::vector<std::array<std::string, 3>>& mails,
                          bool tls = false) {
    const auto script = dir.write("send.py", kSendScript);
    std::string cmd = kPython + " " + script.string() + " " + port_of(server) + (tls ? " 1" : " 0");
    for (const auto& m : mails) cmd += " '" + m[0] + "' '" + m[1] + "' '" + m[2] + "'";
    const auto r = run(cmd);
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  }

  TempDir dir;
  RecordingSink sink;
};

TEST_F(SmtpServerTest, SmtplibMessagesArriveByteExact) {
  SmtpServer server(test_options(), sink);
  server.start();
  const std::string japanese =
      "From: sender@example.jp\r\nTo: user@example.jp\r\nSubject: =?UTF-8?B?44GK55+l44KJ44Gb?=\r\n"
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
      "市民の皆様へ\r\n無害化のテストです。\r\n";
  const std::string eight_bit =
      "From: sender@example.jp\r\nSubject: latin\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\n"
      "caf\xe9 \xff\xfe\r\n";
  const std::string dots = "Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n";
  const std::string utf8_envelope = "Subject: utf8\r\n\r\nこんにちは\r\n";
  const auto out = python_send(server, {{"BODY=8BITMIME", "user@example.jp", dir.write("ja.eml", japanese).string()},
                                        {"BODY=8BITMIME", "u2@example.jp", dir.write("8bit.eml", eight_bit).string()},
                                        {"-", "u3@example.jp", dir.write("dots.eml", dots).string()},
                                        {"SMTPUTF8,BODY=8BITMIME", "受信者@例え.jp",
                                         dir.write("utf8.eml", utf8_envelope).string()}});
  EXPECT_EQ(out, "OK\nOK\nOK\nOK\n");
  const auto got = sink.messages();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].second, japanese);
  EXPECT_EQ(got[1].second, eight_bit);
  EXPECT_EQ(got[2].second, dots);
  EXPECT_EQ(got[3].second, utf8_envelope);
  EXPECT_EQ(got[0].first.mail_from, "sender@example.jp");
  EXPECT_EQ(got[0].first.recipients, std::vector<std::string>{"user@example.jp"});
  EXPECT_EQ(got[0].first.helo, "client.example.jp");
  EXPECT_EQ(got[0].first.client_address, "127.0.0.1");
  EXPECT_TRUE(got[0].first.eight_bit);
  EXPECT_FALSE(got[2].first.eight_bit);
  EXPECT_TRUE(got[3].first.smtputf8);
  EXPECT_EQ(got[3].first.mail_from, "送信者@例え.jp");
  EXPECT_EQ(got[3].first.recipients, std::vector<std::string>{"受信者@例え.jp"});
  const auto age = std::chrono::system_clock::now() - got[0].first.received;
  EXPECT_TRUE(age >= 0s && age < 300s);
  server.shutdown(5s);
  EXPECT_EQ(server.stats().messages_accepted, 4u);
  EXPECT_EQ(server.stats().sessions, 1u);
}

TEST_F(SmtpServerTest, SwaksMessageArrivesByteExact) {
  SmtpServer server(test_options(), sink);
  server.start();
  const std::string data = "From: swaks@example.jp\r\nSubject: swaks\r\n\r\n.dot first\r\n日本語の本文\r\nend\r\n";
  // swaks sends its data, then CRLF.CRLF: the file has no last line end.
  const auto file = dir.write("swaks.eml", data.substr(0, data.size() - 2));
  const auto r = run(std::string(MUKAIKA_SWAKS) + " --server " + server.local_endpoint() +
                     " --from swaks@example.jp --to one@example.jp,two@example.jp --helo swaks.test --data @" +
                     file.string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("250 2.0.0 Ok: queued as Q1"), std::string::npos) << r.output;
  const auto got = sink.messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, data);
  EXPECT_EQ(got[0].first.recipients, (std::vector<std::string>{"one@example.jp", "two@example.jp"}));
  EXPECT_EQ(got[0].first.helo, "swaks.test");
}

TEST_F(SmtpServerTest, ClientOutsideAllowedNetworksIsRefused) {
  auto o = test_options();
  o.allowed_networks = {"10.0.0.0/8"};
  SmtpServer server(o, sink);
  server.start();
  const auto script = dir.write("refused.py", R"PY(
import smtplib, sys
try:
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
    print("CONNECTED")
except smtplib.SMTPConnectError as e:
    print("REFUSED", e.smtp_code, e.smtp_error.decode())
)PY");
  const auto r = run(kPython + " " + script.string() + " " + port_of(server));
  EXPECT_EQ(r.output.substr(0, 18), "REFUSED 554 5.7.1 ") << r.output;
  EXPECT_NE(r.output.find("not allowed"), std::string::npos) << r.output;
  // A client that goes on anyway gets 5.7.1 for each command.
  const auto swaks = run(std::string(MUKAIKA_SWAKS) + " --server " + server.local_endpoint() +
                         " --from a@example.jp --to b@example.jp");
  EXPECT_NE(swaks.status, 0);
  EXPECT_NE(swaks.output.find("5.7.1"), std::string::npos) << swaks.output;
  RawClient raw(port_of(server));
  EXPECT_EQ(raw.read_line().substr(0, 9), "554 5.7.1");
  raw.send("MAIL FROM:<a@example.jp>\r\n");
  EXPECT_EQ(raw.read_line().substr(0, 9), "550 5.7.1");
  raw.send("RCPT TO:<b@example.jp>\r\n");
  EXPECT_EQ(raw.read_line().substr(0, 9), "550 5.7.1");
  raw.send("QUIT\r\n");
  EXPECT_EQ(raw.read_line().substr(0, 3), "221");
  EXPECT_TRUE(sink.messages().empty());
  EXPECT_GE(server.stats().refused_clients, 3u);
}

TEST_F(SmtpServerTest, TempFailAndExceptionGive451AndTheRetryArrives) {
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  auto o = test_options();
  o.on_error = [&](const std::string& e) {
    std::lock_guard lock(errors_mutex);
    errors.push_back(e);
  };
  SmtpServer server(o, sink);
  server.start();
  const auto msg = dir.write("m.eml", "Subject: retry\r\n\r\nbody\r\n").string();
  sink.set_mode(RecordingSink::Mode::TempFail);
  EXPECT_EQ(python_send(server, {{"-", "a@example.jp", msg}}), "ERR 451 4.3.0 Error: queue is busy\n");
  sink.set_mode(RecordingSink::Mode::Throw);
  EXPECT_EQ(python_send(server, {{"-", "a@example.jp", msg}}),
            "ERR 451 4.3.0 Error: local error in processing, try again later\n");
  sink.set_mode(RecordingSink::Mode::PermFail);
  EXPECT_EQ(python_send(server, {{"-", "a@example.jp", msg}}), "ERR 554 5.3.0 Error: refused by policy\n");
  EXPECT_TRUE(sink.messages().empty());
  sink.set_mode(RecordingSink::Mode::Accept);  // the client's retry
  EXPECT_EQ(python_send(server, {{"-", "a@example.jp", msg}}), "OK\n");
  EXPECT_EQ(sink.messages().size(), 1u);
  server.shutdown(5s);
  EXPECT_EQ(server.stats().messages_refused, 3u);
  std::lock_guard lock(errors_mutex);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("No space left on device"), std::string::npos) << errors[0];
}

TEST_F(SmtpServerTest, OversizeMessageIsRefusedAndTheSessionGoesOn) {
  auto o = test_options();
  o.max_message_bytes = 100000;
  SmtpServer server(o, sink);
  server.start();
  // smtplib announces SIZE=, so the first refusal comes at MAIL; the raw
  // DATA path (no SIZE=) is refused after the end of data.
  std::string body;
  for (int i = 0; i < 3000; ++i) body += std::string(98, 'y') + "\r\n";  // 300000 bytes
  const auto script = dir.write("size.py", R"PY(
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
s.ehlo("c.example.jp")
print(s.mail("a@example.jp")[0], s.rcpt("b@example.jp")[0])
print(*s.data(open(sys.argv[2], "rb").read()))
s.rset()
print(s.mail("a@example.jp", ["SIZE=200000"])[0])
s.rset()
print(s.mail("a@example.jp")[0], s.rcpt("b@example.jp")[0])
print(s.data(b"Subject: small\r\n\r\nsmall\r\n")[0])
s.quit()
)PY");
  const auto file = dir.write("huge.eml", "Subject: huge\r\n\r\n" + body);
  const auto r = run(kPython + " " + script.string() + " " + port_of(server) + " " + file.string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output,
            "250 250\n552 b'5.3.4 Error: message exceeds fixed maximum message size of 100000 bytes'\n552\n250 250\n250\n");
  const auto got = sink.messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "Subject: small\r\n\r\nsmall\r\n");
}

TEST_F(SmtpServerTest, TwoHundredConcurrentSessionsDeliverEveryMessage) {
  SmtpServer server(test_options(), sink);
  server.start();
  const auto r = run(std::string(MUKAIKA_SMTP_SOURCE) + " -s 200 -m 400 -l 1000 -f sender@example.jp -t rcpt@example.jp " +
                     server.local_endpoint());
  EXPECT_EQ(r.status, 0) << r.output;
  // The last replies may still be on their way to smtp-source when it exits;
  // the sink has seen them before the 250 was sent.
  const auto got = sink.messages();
  EXPECT_EQ(got.size(), 400u) << r.output;
  for (const auto& [envelope, message] : got) {
    EXPECT_EQ(envelope.recipients, std::vector<std::string>{"rcpt@example.jp"});
    EXPECT_GE(message.size(), 1000u);
  }
  server.shutdown(10s);
  EXPECT_EQ(server.stats().messages_accepted, 400u);
}

TEST_F(SmtpServerTest, SilentClientGets421AfterTheCommandTimeout) {
  auto o = test_options();
  o.command_timeout = 1s;
  SmtpServer server(o, sink);
  server.start();
  RawClient raw(port_of(server));
  EXPECT_EQ(raw.read_line().substr(0, 3), "220");
  EXPECT_EQ(raw.read_line(), "421 4.4.2 mukaika.test Error: timeout exceeded");
  EXPECT_TRUE(raw.closed_by_peer());
}

TEST_F(SmtpServerTest, ShutdownDuringASessionEndsItWith421) {
  SmtpServer server(test_options(), sink);
  server.start();
  RawClient raw(port_of(server));
  EXPECT_EQ(raw.read_line().substr(0, 3), "220");
  raw.send("EHLO c.example.jp\r\nMAIL FROM:<a@example.jp>\r\n");
  EXPECT_EQ(raw.read_reply(), "250 SMTPUTF8");
  EXPECT_EQ(raw.read_line(), "250 2.1.0 Ok");
  std::thread stopper([&] { server.shutdown(1s); });
  EXPECT_EQ(raw.read_line(), "421 4.3.2 mukaika.test Service shutting down, closing connection");
  EXPECT_TRUE(raw.closed_by_peer());
  stopper.join();
  // The listener is gone too.
  EXPECT_THROW(RawClient{port_of(server)}, boost::system::system_error);
}

TEST_F(SmtpServerTest, SilentClientInDataGets421AfterTheDataTimeout) {
  auto o = test_options();
  o.data_timeout = 1s;
  SmtpServer server(o, sink);
  server.start();
  RawClient raw(port_of(server));
  EXPECT_EQ(raw.read_line().substr(0, 3), "220");
  raw.send("HELO c.example.jp\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\nSubject: half\r\n");
  EXPECT_EQ(raw.read_line(), "250 mukaika.test");
  EXPECT_EQ(raw.read_line(), "250 2.1.0 Ok");
  EXPECT_EQ(raw.read_line(), "250 2.1.5 Ok");
  EXPECT_EQ(raw.read_line().substr(0, 3), "354");
  EXPECT_EQ(raw.read_line(), "421 4.4.2 mukaika.test Error: timeout exceeded");
  EXPECT_TRUE(raw.closed_by_peer());
  EXPECT_TRUE(sink.messages().empty());  // half a message is no message
}

TEST_F(SmtpServerTest, PipelinedTransactionInOneWriteWithBareLf) {
  SmtpServer server(test_options(), sink);
  server.start();
  RawClient raw(port_of(server));
  EXPECT_EQ(raw.read_line().substr(0, 3), "220");
  raw.send("EHLO c.example.jp\r\nMAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\n"
           "DATA\r\nSubject: bare\nlone\rcr\r\n..stuffed\r\n.\r\nQUIT\r\n");
  EXPECT_EQ(raw.read_reply(), "250 SMTPUTF8");
  EXPECT_EQ(raw.read_line(), "250 2.1.0 Ok");
  EXPECT_EQ(raw.read_line(), "250 2.1.5 Ok");
  EXPECT_EQ(raw.read_line(), "250 2.1.5 Ok");
  EXPECT_EQ(raw.read_line().substr(0, 3), "354");
  EXPECT_EQ(raw.read_line(), "250 2.0.0 Ok: queued as Q1");
  EXPECT_EQ(raw.read_line(), "221 2.0.0 Bye");
  const auto got = sink.messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, "Subject: bare\r\nlone\rcr\r\n.stuffed\r\n");
  EXPECT_EQ(got[0].first.mail_from, "");
  EXPECT_EQ(got[0].first.recipients, (std::vector<std::string>{"a@example.jp", "b@example.jp"}));
}

TEST_F(SmtpServerTest, BlockingSinkDoesNotStallOtherSessions) {
  // One io thread: if accept() ran on it, the second session could not be served.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  std::atomic<bool> first{true};
  sink.before_accept = [&](const Envelope&) {
    if (first.exchange(false)) {
      entered.set_value();
      released.wait_for(60s);
    }
  };
  auto o = test_options();
  o.io_threads = 1;
  SmtpServer server(o, sink);
  server.start();
  RawClient slow(port_of(server));
  EXPECT_EQ(slow.read_line().substr(0, 3), "220");
  slow.send("HELO c\r\nMAIL FROM:<a@example.jp>\r\nRCPT TO:<b@example.jp>\r\nDATA\r\nx\r\n.\r\n");
  ASSERT_EQ(entered.get_future().wait_for(60s), std::future_status::ready);
  RawClient other(port_of(server));
  EXPECT_EQ(other.read_line().substr(0, 3), "220");
  other.send("NOOP\r\n");
  EXPECT_EQ(other.read_line(), "250 2.0.0 Ok");
  release.set_value();
  for (int i = 0; i < 4; ++i) slow.read_line();
  EXPECT_EQ(slow.read_line(), "250 2.0.0 Ok: queued as Q1");
}

TEST_F(SmtpServerTest, SessionsOverTheLimitGet421) {
  auto o = test_options();
  o.max_sessions = 1;
  SmtpServer server(o, sink);
  server.start();
  RawClient first(port_of(server));
  EXPECT_EQ(first.read_line().substr(0, 3), "220");
  RawClient second(port_of(server));
  EXPECT_EQ(second.read_line().substr(0, 9), "421 4.3.2");
  first.send("NOOP\r\n");
  EXPECT_EQ(first.read_line(), "250 2.0.0 Ok");
}

TEST_F(SmtpServerTest, PortInUseSaysSo) {
  SmtpServer first(test_options(), sink);
  auto o = test_options();
  o.listen = first.local_endpoint();
  try {
    SmtpServer second(o, sink);
    ADD_FAILURE() << "second server on " << o.listen;
  } catch (const SmtpServerError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + o.listen + ": Address already in use");
  }
}

TEST_F(SmtpServerTest, BadOptionsAreNamed) {
  auto o = test_options();
  o.allowed_networks = {"10.0.0.0/33"};
  EXPECT_THROW(
      try { SmtpServer s(o, sink); } catch (const SmtpServerError& e) {
        EXPECT_EQ(std::string(e.what()), "smtp.allowed_networks: \"10.0.0.0/33\" is not a network");
        throw;
      },
      SmtpServerError);
  o = test_options();
  o.listen = "localhost";
  EXPECT_THROW(SmtpServer(o, sink), SmtpServerError);
  o = test_options();
  o.tls_certificate = (dir.path / "missing.pem").string();
  o.tls_key = o.tls_certificate;
  try {
    SmtpServer s(o, sink);
    ADD_FAILURE();
  } catch (const SmtpServerError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read TLS certificate " + o.tls_certificate), std::string::npos)
        << e.what();
  }
}

TEST_F(SmtpServerTest, StartTlsWithSmtplib) {
  const auto gen = run("cd " + dir.path.string() +
                       " && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1"
                       " -keyout k.pem -out c.pem");
  ASSERT_EQ(gen.status, 0) << gen.output;
  auto o = test_options();
  o.tls_certificate = (dir.path / "c.pem").string();
  o.tls_key = (dir.path / "k.pem").string();
  SmtpServer server(o, sink);
  server.start();
  const std::string data = "Subject: tls\r\n\r\n暗号化された本文\r\n.dot\r\n";
  const auto out = python_send(server, {{"BODY=8BITMIME", "a@example.jp", dir.write("tls.eml", data).string()}}, true);
  EXPECT_EQ(out.substr(0, 4), "TLS ") << out;
  EXPECT_NE(out.find("\nOK\n"), std::string::npos) << out;
  // swaks --tls needs Net::SSLeay (libnet-ssleay-perl), not installed here:
  // smtplib is the TLS client.
  EXPECT_EQ(python_send(server, {{"-", "b@example.jp", dir.write("t2.eml", data).string()}}, true).substr(0, 4), "TLS ");
  const auto got = sink.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].second, data);
  EXPECT_EQ(got[1].second, data);
}

}  // namespace
}  // namespace mukaika
