// HttpServer: one HTTP(S) listener of one zone (Boost.Beast, C++20
// coroutines on a small thread pool, one strand per connection).
//
// Promises:
// - Bounded: at most max_connections at once (more get "503" and are
//   closed); the request head is limited to 16 KiB; every read must make
//   progress within request_timeout (slow clients are cut off); a body is
//   read only as far as the Application allows: a Content-Length over the
//   limit is answered 413 without reading the body, and a chunked body is
//   cut off at the limit. Nothing is buffered whole unless the Application
//   asked for a small buffered body.
// - Streaming: a BodySink gets the body in pieces as it arrives; if the
//   client goes away or stalls, the sink is told (finish(false)) and
//   nothing it stored is served.
// - Malformed HTTP gets "400" and the connection is closed; no request can
//   crash or hang the server.
// - Errors an operator can cause (bad address, port in use, unreadable
//   certificate) throw HttpServerError from the constructor, naming the
//   setting.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mukaika::http {

class HttpServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A request's head, as the Application sees it.
struct RequestHead {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query
  std::string path;    // percent-decoded path without the query
  std::string query;   // raw query string (after '?')
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::optional<std::uint64_t> content_length;  // none: chunked or no body
  bool has_body = false;
  std::string client_address;
  bool tls = false;
  std::string body;  // filled for Decision::read_body

  const std::string* header(std::string_view lowercase_name) const;
  std::string query_param(std::string_view name) const;  // percent-decoded; "" when absent
  std::string cookie(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Type etc.
  std::string body;
  std::optional<std::filesystem::path> file;  // serve this file instead of body
  bool close = false;                          // close the connection after it

  static Response text(int status, std::string body, std::string type = "text/plain; charset=utf-8");
  static Response json(int status, const std::string& json_text);
  static Response redirect(std::string location);  // 303 See Other
  Response& with(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// Gets a request body in pieces as it arrives.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A piece of the body. A Response ends the request early (the rest is
  // not read and the connection is closed after it).
  virtual std::optional<Response> write(std::string_view piece) = 0;
  // complete: the whole body arrived. When false the client went away or
  // timed out; the response is sent if the connection still works.
  virtual Response finish(bool complete) = 0;
};

// What to do with a request once its head is known.
struct Decision {
  enum class Kind { Respond, ReadBody, Stream };
  Kind kind = Kind::Respond;
  Response response;                  // Respond
  std::uint64_t max_body = 0;         // ReadBody and Stream: larger -> 413
  std::unique_ptr<BodySink> sink;     // Stream

  static Decision respond(Response r) {
    Decision d;
    d.response = std::move(r);
    return d;
  }
  static Decision read_body(std::uint64_t max) {
    Decision d;
    d.kind = Kind::ReadBody;
    d.max_body = max;
    return d;
  }
  static Decision stream(std::uint64_t max, std::unique_ptr<BodySink> sink) {
    Decision d;
    d.kind = Kind::Stream;
    d.max_body = max;
    d.sink = std::move(sink);
    return d;
  }
};

class Application {
 public:
  virtual ~Application() = default;
  // Called on the connection's strand for each request head. May block briefly.
  virtual Decision decide(RequestHead& head) = 0;
  // For Decision::read_body: the head with `body` filled.
  virtual Response handle(RequestHead& head) = 0;
  // Added to every response (security headers).
  virtual void finish_headers(const RequestHead& head, Response& response) = 0;
};

struct HttpServerOptions {
  std::string name = "http";  // for errors: "http.internet"
  std::string listen = "127.0.0.1:8080";  // "host:port", "[v6]:port"; port 0 = any free port
  std::string tls_certificate, tls_key;   // both set: HTTPS only
  int max_connections = 256;
  std::chrono::seconds request_timeout{60};
  int io_threads = 2;
};

class HttpServer {
 public:
  // Binds and listens (throws HttpServerError); serves after start().
  HttpServer(HttpServerOptions options, Application& app);
  ~HttpServer();  // shutdown()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();
  // Stops accepting, closes connections after their current request, waits.
  void shutdown();
  std::string local_endpoint() const;  // "127.0.0.1:8080"
  unsigned short port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-decoding of a URL component ('+' is a space only in forms).
std::string percent_decode(std::string_view s, bool plus_is_space = false);

}  // namespace mukaika::http
