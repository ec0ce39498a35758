#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it

#include "http/http_server.h"

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

#include "ascii.h"
#include "unique_fd.h"

namespace mukaika::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr std::size_t kHeaderLimit = 16 * 1024;
constexpr std::size_t kReadPiece = 64 * 1024;


std::pair<std::string, std::string> split_endpoint(const std::string& listen, const std::string& name) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) throw HttpServerError(name + ".listen must be \"host:port\" (is \"" + listen + "\")");
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, port};
}

}  // namespace

// ---------------------------------------------------------------- helpers

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

const std::string* RequestHead::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::string RequestHead::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    auto eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq), true) == name)
      return eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return "";
}

std::string RequestHead::cookie(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k != "cookie") continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view item = rest.substr(0, semi);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      auto eq = item.find('=');
      if (eq != std::string_view::npos && item.substr(0, eq) == name) return std::string(item.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
  }
  return "";
}

Response Response::text(int status, std::string body, std::string type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Content-Type", std::move(type));
  return r;
}

Response Response::json(int status, const std::string& json_text) {
  return text(status, json_text + "\n", "application/json; charset=utf-8");
}

Response Response::redirect(std::string location) {
  Response r;
  r.status = 303;
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

// ---------------------------------------------------------------- server

struct HttpServer::Impl {
  HttpServerOptions options;
  Application& app;
  asio::io_context ioc;
  std::optional<asio::ssl::context> ssl;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::condition_variable idle;
  unsigned short bound_port = 0;
  std::string bound_address;

  Impl(HttpServerOptions o, Application& a) : options(std::move(o)), app(a) {}

  asio::thread_pool blocking{4};  // request endings that may block; see serve()

  awaitable<void> accept_loop();
  // Runs `work` on the blocking pool; the calling coroutine resumes on its
  // own strand when it is done.
  template <class Work>
  awaitable<void> run_blocking(Work&& work);
  template <class Stream>
  awaitable<void> serve(Stream& stream, beast::tcp_stream& tcp, std::string client, bool tls);
  awaitable<void> connection(tcp::socket socket);
};

namespace {

// Writes `head` and then `body` (either may be empty). Every write of a
// response goes through this one Asio operation per stream type: each of
// Beast's message writers instantiated over the TLS stream cost this file
// tens of seconds of compile time, and the bytes are the same.
template <class Stream>
awaitable<void> write_all(Stream& stream, std::string_view head, std::string_view body, beast::error_code& ec) {
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head.data(), head.size()),
                                                  asio::buffer(body.data(), body.size())};
  co_await asio::async_write(stream, buffers, asio::redirect_error(use_awaitable, ec));
}

// The status line and header fields of a response whose body has `length`
// bytes, as Beast formats them.
std::string response_head(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                          std::uint64_t length, bool keep_alive) {
  bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(status), 11};
  for (const auto& [k, v] : headers) res.insert(k, v);
  res.content_length(length);
  res.keep_alive(keep_alive);
  std::ostringstream out;
  out << res.base();
  return std::move(out).str();
}

// Sends `r` for `head`; false when the connection is to be closed. A file
// goes out in pieces read as they are sent, never whole in memory. HEAD
// gets the fields of the answer to GET and no body (RFC 9110 9.3.2).
template <class Stream>
awaitable<bool> send(Stream& stream, beast::tcp_stream& tcp, Application& app, const RequestHead& head, Response r,
                     bool keep_alive, std::chrono::seconds timeout) {
  app.finish_headers(head, r);
  beast::error_code ec;
  keep_alive = keep_alive && !r.close;
  tcp.expires_after(timeout * 10);  // renewed for each piece of a file: progress is what matters
  const bool head_only = head.method == "HEAD";
  // Named, not temporaries: what a co_await reads stays in the frame.
  if (!r.file) {
    const std::string fields = response_head(r.status, r.headers, r.body.size(), keep_alive);
    co_await write_all(stream, fields, head_only ? std::string_view() : std::string_view(r.body), ec);
    co_return !ec && keep_alive;
  }
  UniqueFd file(::open(r.file->c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!file || ::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    const Response err = Response::text(500, "the file cannot be read\n");
    const std::string fields = response_head(err.status, err.headers, err.body.size(), false);
    co_await write_all(stream, fields, err.body, ec);
    co_return false;
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  const std::string fields = response_head(r.status, r.headers, size, keep_alive);
  co_await write_all(stream, fields, {}, ec);
  if (ec || head_only) co_return !ec && keep_alive;
  std::string piece(kReadPiece, '\0');
  for (std::uint64_t sent = 0; sent < size;) {
    const ssize_t n = ::read(file.get(), piece.data(), std::min<std::uint64_t>(piece.size(), size - sent));
    if (n < 0 && errno == EINTR) continue;
    // The length is promised already: a file that shrank or cannot be read
    // any more can only end the connection, so the client sees it short.
    if (n <= 0) co_return false;
    tcp.expires_after(timeout * 10);
    co_await write_all(stream, {}, std::string_view(piece.data(), static_cast<std::size_t>(n)), ec);
    if (ec) co_return false;
    sent += static_cast<std::uint64_t>(n);
  }
  co_return keep_alive;
}

Response simple(int status, std::string_view text_ja_en) {
  Response r = Response::text(status, std::string(text_ja_en) + "\n");
  r.close = true;
  return r;
}

}  // namespace

template <class Work>
awaitable<void> HttpServer::Impl::run_blocking(Work&& work) {
  auto strand = co_await asio::this_coro::executor;
  // A timer that never expires, cancelled from the strand once the work is
  // done: the cancellation cannot run before the wait starts (same strand).
  asio::steady_timer done(strand, asio::steady_timer::time_point::max());
  asio::post(blocking, [&] {
    work();
    asio::post(strand, [&] { done.cancel(); });
  });
  beast::error_code ec;
  co_await done.async_wait(asio::redirect_error(use_awaitable, ec));
}

template <class Stream>
awaitable<void> HttpServer::Impl::serve(Stream& stream, beast::tcp_stream& tcp, std::string client, bool tls) {
  beast::flat_buffer buffer;
  const auto timeout = options.request_timeout;
  std::string piece(kReadPiece, '\0');
  for (;;) {
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // the Application's limit applies, below
    beast::error_code ec;
    tcp.expires_after(timeout);
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    RequestHead head;
    head.client_address = client;
    head.tls = tls;
    if (ec) {
      if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
          ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
        co_return;
      // Malformed: say so and close.
      head.method = "GET";
      co_await send(stream, tcp, app, head, simple(400, "リクエストが正しくありません / bad request (" + ec.message() + ")"),
                    false, timeout);
      co_return;
    }
    auto& req = parser.get();
    head.method = std::string(req.method_string());
    head.target = std::string(req.target());
    auto qmark = head.target.find('?');
    head.path = percent_decode(std::string_view(head.target).substr(0, qmark));
    if (qmark != std::string::npos) head.query = head.target.substr(qmark + 1);
    for (const auto& f : req) head.headers.emplace_back(ascii_lower(std::string_view(f.name_string().data(), f.name_string().size())), std::string(f.value()));
    if (auto len = parser.content_length()) head.content_length = *len;
    head.has_body = !parser.is_done();
    const bool keep_alive = req.keep_alive() && !stopping;

    Decision decision;
    try {
      decision = app.decide(head);
    } catch (const std::exception& e) {
      decision = Decision::respond(simple(500, std::string("内部エラー / internal error: ") + e.what()));
    }
    if (decision.kind == Decision::Kind::Respond) {
      // A body we will not read would be taken for the next request.
      if (head.has_body) decision.response.close = true;
      if (!co_await send(stream, tcp, app, head, std::move(decision.response), keep_alive, timeout)) co_return;
      continue;
    }
    if (head.content_length && *head.content_length > decision.max_body) {
      co_await send(stream, tcp, app, head,
                    simple(413, "大きすぎます / request body too large (limit " + std::to_string(decision.max_body) +
                                    " bytes)"),
                    false, timeout);
      co_return;
    }
    if (const std::string* expect = head.header("expect"); expect && ascii_lower(*expect) == "100-continue") {
      tcp.expires_after(timeout);
      co_await write_all(stream, "HTTP/1.1 100 Continue\r\n\r\n", {}, ec);
      if (ec) co_return;
    }
    std::uint64_t received = 0;
    bool complete = true;
    std::optional<Response> early;
    while (!parser.is_done()) {
      req.body().data = piece.data();
      req.body().size = piece.size();
      tcp.expires_after(timeout);
      co_await bhttp::async_read_some(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      const std::size_t n = piece.size() - req.body().size;
      if (ec) {
        complete = false;
        break;
      }
      received += n;
      if (received > decision.max_body) {
        early = simple(413, "大きすぎます / request body too large (limit " + std::to_string(decision.max_body) + " bytes)");
        break;
      }
      if (n == 0) continue;
      if (decision.kind == Decision::Kind::ReadBody) {
        head.body.append(piece.data(), n);
      } else {
        try {
          early = decision.sink->write(std::string_view(piece.data(), n));
        } catch (const std::exception& e) {
          early = simple(500, std::string("内部エラー / internal error: ") + e.what());
        }
        if (early) {
          early->close = true;
          break;
        }
      }
    }
    if (!early && decision.kind == Decision::Kind::ReadBody && !complete) co_return;
    // What ends a request may block (fsync of an upload, Argon2id of a
    // sign-in): it runs on the blocking pool, not on the threads that serve
    // the other connections.
    Response response;
    co_await run_blocking([&] {
      try {
        if (early) {
          if (decision.sink) decision.sink->finish(false);  // what it stored is dropped
          response = std::move(*early);
          response.close = true;
        } else if (decision.kind == Decision::Kind::ReadBody) {
          response = app.handle(head);
        } else {
          response = decision.sink->finish(complete);
          if (!complete) response.close = true;
        }
      } catch (const std::exception& e) {
        response = simple(500, std::string("内部エラー / internal error: ") + e.what());
      }
      decision.sink.reset();
    });
    if (!complete && ec != beast::error::timeout && ec) co_return;  // nobody to answer
    if (!co_await send(stream, tcp, app, head, std::move(response), keep_alive, timeout)) co_return;
  }
}

awaitable<void> HttpServer::Impl::connection(tcp::socket socket) {
  beast::error_code ec;
  const std::string client = socket.remote_endpoint(ec).address().to_string();
  if (ssl) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *ssl);
    beast::get_lowest_layer(stream).expires_after(options.request_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    co_await serve(stream, beast::get_lowest_layer(stream), client, true);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
  } else {
    beast::tcp_stream stream(std::move(socket));
    co_await serve(stream, stream, client, false);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    // Lingering close, as nginx does: a client may still be sending what we
    // refused (a huge header, an oversize body). Closing with its bytes
    // unread makes the kernel reset the connection, which can destroy our
    // answer before the client reads it. Read and drop for a moment first.
    stream.expires_after(std::chrono::seconds(1));
    char sink[4096];
    for (std::size_t drained = 0; drained < (1u << 20);) {
      const std::size_t n =
          co_await stream.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      drained += n;
    }
  }
}

awaitable<void> HttpServer::Impl::accept_loop() {
  for (;;) {
    tcp::socket socket(asio::make_strand(ioc));
    beast::error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(use_awaitable, ec));
    if (stopping || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors and the like: wait a moment rather than spin.
      asio::steady_timer t(ioc, std::chrono::milliseconds(100));
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (connections.load() >= options.max_connections) {
      // Over the limit: a best-effort answer that cannot block this thread.
      static const std::string busy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n"
          "Connection: close\r\nContent-Length: 58\r\n\r\n混み合っています / too many connections, try again\n";
      socket.non_blocking(true, ec);
      socket.write_some(asio::buffer(busy), ec);
      socket.close(ec);
      continue;
    }
    ++connections;
    auto executor = socket.get_executor();
    asio::co_spawn(executor, connection(std::move(socket)), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::cerr << "mukaika: " << options.name << ": connection: " << ex.what() << "\n";
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      --connections;
      idle.notify_all();
    });
  }
}

HttpServer::HttpServer(HttpServerOptions options, Application& app)
    : impl_(std::make_unique<Impl>(std::move(options), app)) {
  Impl& i = *impl_;
  const std::string& name = i.options.name;
  if (i.options.io_threads < 1) throw HttpServerError(name + ": io_threads must be at least 1");
  if (!i.options.tls_certificate.empty() || !i.options.tls_key.empty()) {
    i.ssl.emplace(asio::ssl::context::tls_server);
    i.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    i.ssl->use_certificate_chain_file(i.options.tls_certificate, ec);
    if (ec)
      throw HttpServerError(name + ".tls_certificate: cannot use \"" + i.options.tls_certificate + "\": " + ec.message());
    i.ssl->use_private_key_file(i.options.tls_key, asio::ssl::context::pem, ec);
    if (ec) throw HttpServerError(name + ".tls_key: cannot use \"" + i.options.tls_key + "\": " + ec.message());
  }
  auto [host, port] = split_endpoint(i.options.listen, name);
  beast::error_code ec;
  tcp::resolver resolver(i.ioc);
  auto results = resolver.resolve(host, port, tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    throw HttpServerError(name + ".listen: cannot use \"" + i.options.listen + "\": " + (ec ? ec.message() : "no address"));
  const tcp::endpoint endpoint = results.begin()->endpoint();
  i.acceptor.open(endpoint.protocol(), ec);
  if (!ec) i.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) i.acceptor.bind(endpoint, ec);
  if (!ec) i.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw HttpServerError(name + ".listen: cannot listen on " + i.options.listen + ": " + ec.message() +
                          (ec == asio::error::address_in_use ? " (another program uses this port)" : ""));
  i.bound_port = i.acceptor.local_endpoint().port();
  i.bound_address = i.acceptor.local_endpoint().address().to_string();
}

HttpServer::~HttpServer() { shutdown(); }

void HttpServer::start() {
  Impl& i = *impl_;
  asio::co_spawn(i.ioc, i.accept_loop(), [&i](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "mukaika: " << i.options.name << ": accept: " << ex.what() << "\n";
    }
  });
  for (int n = 0; n < i.options.io_threads; ++n)
    i.threads.emplace_back([&i] {
      for (;;) {
        try {
          i.ioc.run();
          return;
        } catch (const std::exception& e) {
          std::cerr << "mukaika: " << i.options.name << ": io thread: " << e.what() << "\n";
        }
      }
    });
}

void HttpServer::shutdown() {
  Impl& i = *impl_;
  if (i.stopping.exchange(true)) {
    for (auto& t : i.threads)
      if (t.joinable()) t.join();
    return;
  }
  asio::post(i.ioc, [&i] {
    beast::error_code ec;
    i.acceptor.close(ec);
  });
  {
    // Connections end after their current request; give them a while.
    std::unique_lock<std::mutex> lock(i.mutex);
    i.idle.wait_for(lock, std::chrono::seconds(10), [&] { return i.connections.load() == 0; });
  }
  i.ioc.stop();
  for (auto& t : i.threads)
    if (t.joinable()) t.join();
  i.threads.clear();
  i.blocking.join();
}

std::string HttpServer::local_endpoint() const {
  const std::string& a = impl_->bound_address;
  return (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" + std::to_string(impl_->bound_port);
}

unsigned short HttpServer::port() const { return impl_->bound_port; }

}  // namespace mukaika::http
