// HttpServer over real sockets: limits, streaming bodies, interrupted and
// malformed requests, slow clients, the connection cap.
#include <utility>

#include "http/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

namespace mukaika::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Counts what its sinks received.
struct Recorder {
  std::mutex mutex;
  std::string received;
  int finished_complete = 0, finished_incomplete = 0;
};

class RecordingSink : public BodySink {
 public:
  explicit RecordingSink(Recorder& r) : r_(r) {}
  std::optional<Response> write(std::string_view piece) override {
    std::lock_guard<std::mutex> lock(r_.mutex);
    r_.received.append(piece);
    return std::nullopt;
  }
  Response finish(bool complete) override {
    std::lock_guard<std::mutex> lock(r_.mutex);
    (complete ? r_.finished_complete : r_.finished_incomplete)++;
    return Response::text(202, "stored " + std::to_string(r_.received.size()) + "\n");
  }

 private:
  Recorder& r_;
};

class TestApp : public Application {
 public:
  Recorder recorder;
  std::filesystem::path file;  // served at /file
  Decision decide(RequestHead& head) override {
    if (head.path == "/stream") return Decision::stream(1024 * 1024 * 8, std::make_unique<RecordingSink>(recorder));
    if (head.path == "/form") return Decision::read_body(16);
    if (head.path == "/hello") return Decision::respond(Response::text(200, "hello " + head.query_param("who") + "\n"));
    if (head.path == "/file" || head.path == "/missing") {
      Response r;
      r.file = head.path == "/file" ? file : std::filesystem::path(file.string() + ".gone");
      r.with("Content-Type", "application/octet-stream");
      return Decision::respond(std::move(r));
    }
    return Decision::respond(Response::text(404, "no\n"));
  }
  Response handle(RequestHead& head) override { return Response::text(200, "form:" + head.body + "\n"); }
  void finish_headers(const RequestHead&, Response& r) override { r.with("X-Content-Type-Options", "nosniff"); }
};

class HttpServerTest : public ::testing::Test {
 protected:
  void start(int max_connections = 8, int timeout_s = 5) {
    HttpServerOptions o;
    o.name = "http.test";
    o.listen = "127.0.0.1:0";
    o.max_connections = max_connections;
    o.request_timeout = std::chrono::seconds(timeout_s);
    server_ = std::make_unique<HttpServer>(o, app_);
    server_->start();
  }

  tcp::socket connect() {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    return s;
  }

  // Sends `request`, reads until the server closes.
  std::string exchange(const std::string& request) {
    auto s = connect();
    asio::write(s, asio::buffer(request));
    return read_all(s);
  }

  static std::string read_all(tcp::socket& s) {
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      out.append(buf, n);
      if (ec) break;
    }
    return out;
  }

  asio::io_context io_;
  TestApp app_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, AnswersAndAddsHeaders) {
  start();
  std::string r = exchange("GET /hello?who=%E5%90%8D+x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 200"), std::string::npos) << r;
  EXPECT_NE(r.find("hello 名 x"), std::string::npos) << r;
  EXPECT_NE(r.find("X-Content-Type-Options: nosniff"), std::string::npos) << r;
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequests) {
  start();
  auto s = connect();
  std::string two =
      "GET /hello?who=a HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?who=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(s, asio::buffer(two));
  std::string r = read_all(s);
  EXPECT_NE(r.find("hello a"), std::string::npos) << r;
  EXPECT_NE(r.find("hello b"), std::string::npos) << r;
}

// Bodies of 200 KiB: several of the server's 64 KiB pieces, and a last
// piece that is not full.
std::string patterned(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST_F(HttpServerTest, FilesGoOutWholeAndHeadGetsOnlyTheFields) {
  const std::string content = patterned(200 * 1024 + 17);
  app_.file = std::filesystem::path(::testing::TempDir()) / "http_server_test_file.bin";
  {
    std::ofstream out(app_.file, std::ios::binary | std::ios::trunc);
    out << content;
  }
  start();
  auto s = connect();
  // GET, then HEAD of the file and of a text, then a close: one connection.
  asio::write(s, asio::buffer(std::string("GET /file HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "HEAD /hello?who=a HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /hello?who=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  const std::string r = read_all(s);
  const std::string get_head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                               "X-Content-Type-Options: nosniff\r\nContent-Length: " +
                               std::to_string(content.size()) + "\r\n\r\n";
  ASSERT_EQ(r.substr(0, get_head.size()), get_head) << r.substr(0, 300);
  EXPECT_TRUE(r.compare(get_head.size(), content.size(), content) == 0) << "the file's bytes";
  std::string rest = r.substr(get_head.size() + content.size());
  // HEAD: the same fields, no body; the next answer follows at once.
  ASSERT_EQ(rest.substr(0, get_head.size()), get_head) << rest.substr(0, 300);
  rest = rest.substr(get_head.size());
  EXPECT_EQ(rest.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << rest;
  const auto text_end = rest.find("\r\n\r\n");
  ASSERT_NE(text_end, std::string::npos);
  EXPECT_NE(rest.find("Content-Length: 8\r\n"), std::string::npos) << rest;  // "hello a\n", not sent
  rest = rest.substr(text_end + 4);
  EXPECT_EQ(rest.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "HEAD sent a body: " << rest;
  EXPECT_NE(rest.find("Connection: close\r\n"), std::string::npos) << rest;
  EXPECT_TRUE(rest.ends_with("\r\n\r\nhello b\n")) << rest;

  // A file that cannot be opened: 500, and the connection ends.
  const std::string missing = exchange("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(missing.rfind("HTTP/1.1 500", 0), 0u) << missing;
  EXPECT_NE(missing.find("Connection: close\r\n"), std::string::npos) << missing;
  std::filesystem::remove(app_.file);
}

TEST_F(HttpServerTest, StreamsALargeBodyInPieces) {
  start();
  std::string body(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  std::string r = exchange("POST /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_NE(r.find("HTTP/1.1 202"), std::string::npos) << r.substr(0, 200);
  std::lock_guard<std::mutex> lock(app_.recorder.mutex);
  EXPECT_EQ(app_.recorder.received, body);
  EXPECT_EQ(app_.recorder.finished_complete, 1);
}

TEST_F(HttpServerTest, ChunkedBodyArrivesWhole) {
  start();
  std::string r = exchange(
      "POST /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 202"), std::string::npos) << r;
  std::lock_guard<std::mutex> lock(app_.recorder.mutex);
  EXPECT_EQ(app_.recorder.received, "hello world");
}

TEST_F(HttpServerTest, OversizeContentLengthIsRefusedBeforeReading) {
  start();
  // 2 GB announced, nothing sent: the answer must come at once.
  std::string r = exchange("POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
  std::lock_guard<std::mutex> lock(app_.recorder.mutex);
  EXPECT_TRUE(app_.recorder.received.empty());
}

TEST_F(HttpServerTest, OversizeChunkedBodyIsCutOff) {
  start();
  auto s = connect();
  asio::write(s, asio::buffer(std::string(
                     "POST /form HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n")));
  std::string r = read_all(s);
  EXPECT_NE(r.find("HTTP/1.1 413"), std::string::npos) << r;
}

TEST_F(HttpServerTest, InterruptedUploadIsReportedIncomplete) {
  start();
  {
    auto s = connect();
    asio::write(s, asio::buffer(std::string("POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n") +
                                std::string(5000, 'x')));
    s.close();
  }
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard<std::mutex> lock(app_.recorder.mutex);
      if (app_.recorder.finished_incomplete) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard<std::mutex> lock(app_.recorder.mutex);
  EXPECT_EQ(app_.recorder.finished_incomplete, 1);
  EXPECT_EQ(app_.recorder.finished_complete, 0);
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  start();
  std::string r = exchange("GARBAGE\x01\x02 / HTTP/9.9\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r;
  // The server still serves.
  EXPECT_NE(exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("200"), std::string::npos);
}

TEST_F(HttpServerTest, HugeHeaderIsRefused) {
  start();
  std::string r = exchange("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  EXPECT_NE(r.find("HTTP/1.1 400"), std::string::npos) << r.substr(0, 200);
}

TEST_F(HttpServerTest, SlowClientIsCutOff) {
  start(8, 1);
  auto s = connect();
  asio::write(s, asio::buffer(std::string("GET /hello HTTP/1.1\r\n")));  // and then nothing
  const auto t0 = std::chrono::steady_clock::now();
  std::string r = read_all(s);  // returns when the server closes
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
}

TEST_F(HttpServerTest, ConnectionsOverTheCapGet503) {
  start(2);
  auto a = connect();
  auto b = connect();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string r = exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.find("503"), std::string::npos) << r;
  a.close();
  b.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(exchange("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").find("200"), std::string::npos);
}

TEST_F(HttpServerTest, PortInUseIsAClearError) {
  start();
  HttpServerOptions o;
  o.name = "http.lgwan";
  o.listen = "127.0.0.1:" + std::to_string(server_->port());
  try {
    HttpServer second(o, app_);
    FAIL() << "a second listener on the same port";
  } catch (const HttpServerError& e) {
    EXPECT_NE(std::string(e.what()).find("http.lgwan.listen"), std::string::npos) << e.what();
  }
}

TEST(PercentDecode, DecodesAndLeavesBrokenEscapes) {
  EXPECT_EQ(percent_decode("%E5%90%8D"), "名");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
}

}  // namespace
}  // namespace mukaika::http
