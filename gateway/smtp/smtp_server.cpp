#include "smtp/smtp_server.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <utility>  // Boost 1.74 asio needs std::exchange declared first in C++20
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "smtp/smtp_session.h"

namespace mukaika {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// ---------------------------------------------------------------- IpNetwork

IpNetwork IpNetwork::parse(const std::string& text) {
  const auto fail = [&](const std::string& why) {
    return SmtpServerError("smtp.allowed_networks: \"" + text + "\" is not a network" + why);
  };
  IpNetwork n;
  const auto slash = text.find('/');
  const std::string address = text.substr(0, slash);
  if (inet_pton(AF_INET, address.c_str(), n.bytes_) == 1) {
    n.v6_ = false;
  } else if (inet_pton(AF_INET6, address.c_str(), n.bytes_) == 1) {
    n.v6_ = true;
  } else {
    throw fail(" (write it as 10.0.0.0/8 or 2001:db8::/32)");
  }
  const int max_prefix = n.v6_ ? 128 : 32;
  n.prefix_ = max_prefix;
  if (slash != std::string::npos) {
    const std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) throw fail("");
    n.prefix_ = std::stoi(p);
    if (n.prefix_ > max_prefix) throw fail("");
  }
  // Host bits set ("10.0.0.1/8") is most likely a typo: say so rather than guess.
  const int bytes = n.v6_ ? 16 : 4;
  for (int bit = n.prefix_; bit < bytes * 8; ++bit) {
    if (n.bytes_[bit / 8] & (0x80 >> (bit % 8))) throw fail(" (host bits are set after the prefix length)");
  }
  return n;
}

bool IpNetwork::contains(const std::string& address) const {
  unsigned char a[16] = {};
  bool v6 = false;
  if (inet_pton(AF_INET, address.c_str(), a) == 1) {
    v6 = false;
  } else if (inet_pton(AF_INET6, address.c_str(), a) == 1) {
    v6 = true;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!v6_ && std::memcmp(a, mapped, 12) == 0) {  // ::ffff:a.b.c.d on a dual-stack listener
      std::memmove(a, a + 12, 4);
      v6 = false;
    }
  } else {
    return false;
  }
  if (v6 != v6_) return false;
  for (int bit = 0; bit < prefix_; ++bit) {
    const unsigned char mask = 0x80 >> (bit % 8);
    if ((a[bit / 8] & mask) != (bytes_[bit / 8] & mask)) return false;
  }
  return true;
}

// ---------------------------------------------------------------- Impl

namespace {

class Connection;

std::string endpoint_text(const tcp::endpoint& ep) {
  auto address = ep.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) address = address.to_v6().to_v4();
  if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(ep.port());
  return address.to_string() + ":" + std::to_string(ep.port());
}

tcp::endpoint parse_listen(const std::string& listen) {
  const auto fail = [&] {
    return SmtpServerError("smtp.listen: \"" + listen +
                           "\" is not an address and port (write it as 127.0.0.1:2525 or [::1]:2525)");
  };
  std::string host, port;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find("]:");
    if (close == std::string::npos) throw fail();
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw fail();
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != std::string::npos) throw fail();
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) throw fail();
  const int p = std::stoi(port);
  if (p > 65535) throw fail();
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw fail();
  return tcp::endpoint(address, static_cast<unsigned short>(p));
}

}  // namespace

struct SmtpServer::Impl {
  Impl(SmtpServerOptions o, MessageSink& s) : options(std::move(o)), sink(s) {}

  void report(const std::string& message) const {
    if (options.on_error) {
      try {
        options.on_error(message);
      } catch (...) {
      }
    } else {
      std::fprintf(stderr, "mukaika smtp: %s\n", message.c_str());
    }
  }

  bool allowed(const std::string& address) const {
    for (const auto& n : networks)
      if (n.contains(address)) return true;
    return false;
  }

  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void connection_ended(std::uint64_t id) {
    std::lock_guard lock(mutex);
    live.erase(id);
    cv.notify_all();
  }

  SmtpServerOptions options;
  MessageSink& sink;
  std::string hostname;
  std::vector<IpNetwork> networks;
  std::string local;

  // Declared before the io objects: connections destroyed with the
  // io_context still report to them.
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> live;
  std::uint64_t next_id = 0;
  std::atomic<std::uint64_t> sessions{0}, accepted{0}, refused{0}, refused_clients{0};
  bool started = false;
  bool shut_down = false;

  std::optional<asio::ssl::context> tls;  // outlives the streams that use it
  asio::io_context ioc;
  tcp::acceptor acceptor{asio::make_strand(ioc)};
  asio::steady_timer accept_retry{acceptor.get_executor()};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  // Declared after ioc: destroyed (joined) first, so that its handlers can
  // still post to connection strands.
  asio::thread_pool blocking{2};
};

namespace {

// One client connection; all its handlers run on its strand (the socket's
// executor), so the session needs no lock.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(SmtpServer::Impl& server, std::uint64_t id, tcp::socket socket, std::string client, bool allowed)
      : server_(server),
        id_(id),
        executor_(socket.get_executor()),
        socket_(std::move(socket)),
        timer_(executor_),
        session_(SmtpSessionOptions{server.hostname, client, allowed, server.options.max_message_bytes,
                                    server.options.max_recipients, 20, server.tls.has_value()}) {}

  ~Connection() { server_.connection_ended(id_); }

  void begin() {
    asio::post(executor_, [self = shared_from_this()] {
      self->write(self->session_.greeting(), [self] { self->do_read(); });
    });
  }

  // From SmtpServer::shutdown(): end the session with 421 4.3.2 at the next
  // point where that can be said.
  void force_close() {
    asio::post(executor_, [self = shared_from_this()] {
      self->shutting_down_ = true;
      if (self->reading_) self->cancel_io();
      // Writing or waiting for the sink: checked when that completes.
    });
  }

 private:
  tcp::socket::lowest_layer_type& lowest() { return tls_ ? tls_->lowest_layer() : socket_.lowest_layer(); }

  void cancel_io() {
    error_code ignored;
    lowest().cancel(ignored);
  }

  void arm_timer(std::chrono::seconds timeout) {
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](error_code ec) {
      if (ec || generation != self->timer_generation_ || self->closed_) return;
      if (self->reading_) {
        self->timed_out_ = true;
        self->cancel_io();  // on_read then says 421 4.4.2
      } else {
        self->close();  // a peer that does not read our reply: no point in saying more
      }
    });
  }

  void disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
  }

  void do_read() {
    if (closed_) return;
    if (shutting_down_) {
      session_.shutdown();
      return pump();
    }
    arm_timer(session_.in_data() ? server_.options.data_timeout : server_.options.command_timeout);
    reading_ = true;
    auto handler = [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); };
    if (tls_) {
      tls_->async_read_some(asio::buffer(buffer_), std::move(handler));
    } else {
      socket_.async_read_some(asio::buffer(buffer_), std::move(handler));
    }
  }

  void on_read(error_code ec, std::size_t n) {
    reading_ = false;
    disarm_timer();
    if (n > 0) session_.receive(std::string_view(buffer_.data(), n));
    if (!ec) timed_out_ = false;  // the data won the race against the timer
    if (ec) {
      if (timed_out_) {
        session_.timeout();
      } else if (shutting_down_) {
        session_.shutdown();
      } else {
        return close();  // the client went away
      }
    }
    pump();
  }

  void pump() {
    if (closed_) return;
    const auto event = session_.process();
    server_.refused += session_.take_refused_count();
    std::string out = session_.take_output();
    auto self = shared_from_this();
    switch (event) {
      case SmtpSession::Event::NeedInput:
        return write(std::move(out), [self] { self->do_read(); });
      case SmtpSession::Event::MessageReady:
        return write(std::move(out), [self] { self->deliver(); });
      case SmtpSession::Event::StartTls:
        return write(std::move(out), [self] { self->handshake(); });
      case SmtpSession::Event::Close:
        return write(std::move(out), [self] { self->close(); });
    }
  }

  template <typename Next>
  void write(std::string text, Next next) {
    if (closed_) return;
    if (text.empty()) return next();
    out_ = std::move(text);
    arm_timer(server_.options.command_timeout);
    auto handler = [self = shared_from_this(), next = std::move(next)](error_code ec, std::size_t) mutable {
      self->disarm_timer();
      if (ec) return self->close();
      next();
    };
    if (tls_) {
      asio::async_write(*tls_, asio::buffer(out_), std::move(handler));
    } else {
      asio::async_write(socket_, asio::buffer(out_), std::move(handler));
    }
  }

  // The sink may block on fsync: run it on the blocking pool and come back
  // to this connection's strand with the answer.
  void deliver() {
    Envelope envelope = session_.envelope();
    envelope.received = std::chrono::system_clock::now();
    // A Received: header is not added here: the queue keeps the message
    // byte-exact as received. The lead may add one when relaying.
    std::string message = session_.take_message();
    asio::post(server_.blocking, [self = shared_from_this(), envelope = std::move(envelope),
                                  message = std::move(message)]() mutable {
      SmtpAccept result{SmtpAccept::Status::TempFail, {}, {}};
      try {
        result = self->server_.sink.accept(envelope, std::move(message));
      } catch (const std::exception& e) {
        self->server_.report("queue refused a message from " + envelope.client_address + ": " + e.what());
        result = {SmtpAccept::Status::TempFail, {}, "Error: local error in processing, try again later"};
      } catch (...) {
        self->server_.report("queue refused a message from " + envelope.client_address + ": unknown exception");
        result = {SmtpAccept::Status::TempFail, {}, "Error: local error in processing, try again later"};
      }
      asio::post(self->executor_, [self, result = std::move(result)] { self->on_accepted(result); });
    });
  }

  void on_accepted(const SmtpAccept& result) {
    switch (result.status) {
      case SmtpAccept::Status::Accepted:
        ++server_.accepted;
        session_.message_result(SmtpSession::Verdict::Accepted, result.queue_id);
        break;
      case SmtpAccept::Status::TempFail:
        ++server_.refused;
        session_.message_result(SmtpSession::Verdict::TempFail, result.text);
        break;
      case SmtpAccept::Status::PermFail:
        ++server_.refused;
        session_.message_result(SmtpSession::Verdict::PermFail, result.text);
        break;
    }
    if (shutting_down_) session_.shutdown();
    pump();
  }

  void handshake() {
    if (closed_) return;
    tls_.emplace(std::move(socket_), *server_.tls);
    arm_timer(server_.options.command_timeout);
    tls_->async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](error_code ec) {
      self->disarm_timer();
      if (ec) return self->close();
      self->session_.tls_started();
      self->do_read();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    disarm_timer();
    error_code ignored;
    lowest().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close(ignored);
  }

  SmtpServer::Impl& server_;
  std::uint64_t id_;
  asio::any_io_executor executor_;
  tcp::socket socket_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  SmtpSession session_;
  std::array<char, 65536> buffer_;
  std::string out_;
  bool reading_ = false;
  bool timed_out_ = false;
  bool shutting_down_ = false;
  bool closed_ = false;
};

}  // namespace

void SmtpServer::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc),
                        [this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void SmtpServer::Impl::on_accept(error_code ec, tcp::socket socket) {
  if (!acceptor.is_open()) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // EMFILE and the like: say so, and try again a little later rather than spin.
    report("accept on " + local + " failed: " + ec.message());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](error_code e) {
      if (!e && acceptor.is_open()) do_accept();
    });
    return;
  }
  error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  if (peer_ec) {  // already gone
    do_accept();
    return;
  }
  auto address = peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) address = address.to_v6().to_v4();
  const std::string client = address.to_string();

  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mutex);
    if (live.size() < static_cast<std::size_t>(options.max_sessions)) {
      const auto id = next_id++;
      connection = std::make_shared<Connection>(*this, id, std::move(socket), client, allowed(client));
      live.emplace(id, connection);
    }
  }
  if (connection) {
    ++sessions;
    if (!allowed(client)) ++refused_clients;
    connection->begin();
  } else {
    // Over the limit: a best-effort one-line reply that cannot block this thread.
    ++refused_clients;
    const std::string text = "421 4.3.2 " + hostname + " Error: too many sessions, try again later\r\n";
    error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(text), ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }
  do_accept();
}

// ---------------------------------------------------------------- SmtpServer

SmtpServer::SmtpServer(SmtpServerOptions options, MessageSink& sink)
    : impl_(std::make_unique<Impl>(std::move(options), sink)) {
  auto& o = impl_->options;
  if (o.io_threads < 1) throw SmtpServerError("smtp.io_threads must be at least 1");
  if (o.max_sessions < 1) throw SmtpServerError("smtp.max_sessions must be at least 1");
  if (o.max_recipients < 1) throw SmtpServerError("smtp.max_recipients must be at least 1");
  if (o.max_message_bytes == 0) throw SmtpServerError("smtp.max_message_bytes must be more than 0");
  if (o.command_timeout.count() <= 0 || o.data_timeout.count() <= 0)
    throw SmtpServerError("smtp.command_timeout and smtp.data_timeout must be more than 0 seconds");
  for (const auto& n : o.allowed_networks) impl_->networks.push_back(IpNetwork::parse(n));

  impl_->hostname = o.hostname;
  if (impl_->hostname.empty()) {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0')
      throw SmtpServerError("smtp.hostname is empty and gethostname failed: set smtp.hostname");
    impl_->hostname = name;
  }
  if (impl_->hostname.find_first_of(" \r\n") != std::string::npos)
    throw SmtpServerError("smtp.hostname: \"" + impl_->hostname + "\" contains spaces or line breaks");

  if (o.tls_certificate.empty() != o.tls_key.empty())
    throw SmtpServerError("smtp.tls_certificate and smtp.tls_key: set both (STARTTLS) or neither");
  if (!o.tls_certificate.empty()) {
    auto& tls = impl_->tls.emplace(asio::ssl::context::tls_server);
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                    asio::ssl::context::single_dh_use);
    error_code ec;
    tls.use_certificate_chain_file(o.tls_certificate, ec);
    if (ec) throw SmtpServerError("cannot read TLS certificate " + o.tls_certificate + ": " + ec.message());
    tls.use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
    if (ec) throw SmtpServerError("cannot read TLS key " + o.tls_key + ": " + ec.message());
  }

  const auto endpoint = parse_listen(o.listen);
  auto& acceptor = impl_->acceptor;
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw SmtpServerError("cannot listen on " + o.listen + ": " + ec.message());
  impl_->local = endpoint_text(acceptor.local_endpoint());
}

SmtpServer::~SmtpServer() {
  try {
    shutdown(std::chrono::seconds(0));
  } catch (...) {
  }
}

std::string SmtpServer::local_endpoint() const { return impl_->local; }

void SmtpServer::start() {
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.started || impl.shut_down) return;
    impl.started = true;
  }
  impl.work.emplace(impl.ioc.get_executor());
  asio::post(impl.acceptor.get_executor(), [&impl] { impl.do_accept(); });
  for (int i = 0; i < impl.options.io_threads; ++i) {
    impl.threads.emplace_back([&impl] {
      for (;;) {
        try {
          impl.ioc.run();
          return;
        } catch (const std::exception& e) {
          impl.report(std::string("io thread: ") + e.what());
        }
      }
    });
  }
}

void SmtpServer::stop_accepting() {
  auto& impl = *impl_;
  const auto close = [&impl] {
    error_code ignored;
    impl.acceptor.close(ignored);
    impl.accept_retry.cancel();
  };
  bool running;
  {
    std::lock_guard lock(impl.mutex);
    running = impl.started && !impl.ioc.stopped();
  }
  if (!running) return close();
  // The acceptor belongs to its strand: close it there.
  std::promise<void> done;
  asio::post(impl.acceptor.get_executor(), [&] {
    close();
    done.set_value();
  });
  done.get_future().wait();
}

void SmtpServer::shutdown(std::chrono::seconds grace) {
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.shut_down) return;
    impl.shut_down = true;
  }
  stop_accepting();
  std::unique_lock lock(impl.mutex);
  impl.cv.wait_for(lock, grace, [&] { return impl.live.empty(); });
  if (!impl.live.empty()) {
    std::vector<std::weak_ptr<Connection>> remaining;
    for (auto& [id, weak] : impl.live) remaining.push_back(weak);
    lock.unlock();
    for (auto& weak : remaining)
      if (auto c = weak.lock()) c->force_close();
    remaining.clear();
    lock.lock();
    // Room for the 421 to be written and for sink calls in flight to end.
    impl.cv.wait_for(lock, std::chrono::seconds(10), [&] { return impl.live.empty(); });
  }
  lock.unlock();
  impl.blocking.join();  // no sink call outlives the server
  impl.work.reset();
  impl.ioc.stop();
  for (auto& t : impl.threads) t.join();
  impl.threads.clear();
}

SmtpServer::Stats SmtpServer::stats() const {
  return Stats{impl_->sessions.load(), impl_->accepted.load(), impl_->refused.load(), impl_->refused_clients.load()};
}

}  // namespace mukaika
