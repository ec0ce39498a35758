#include "relay/relay_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>

#include "unique_fd.h"

namespace mukaika {

namespace {

using Clock = std::chrono::steady_clock;

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

std::string errno_text(int e) { return std::strerror(e); }

long long seconds_of(std::chrono::milliseconds d) {
  return std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(d + std::chrono::milliseconds(999)).count());
}

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;
struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a
// closed connection; block it for this thread while OpenSSL writes, and
// swallow one that became pending, so a peer hanging up is a result, not
// the end of the process.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~SigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      timespec zero{0, 0};
      sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_{};
  bool was_pending_ = false;
};

bool is_ip_literal(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

SmtpReply no_reply(std::string text) { return SmtpReply{0, "", std::move(text)}; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "5.1.1 " at the start of a reply line, whose class agrees with the code.
std::size_t enhanced_length(std::string_view text, char reply_class) {
  std::size_t i = 0;
  if (text.size() < 5 || text[0] != reply_class || text[1] != '.') return 0;
  i = 2;
  std::size_t start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i == start || i - start > 3 || i >= text.size() || text[i] != '.') return 0;
  ++i;
  start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i == start || i - start > 3) return 0;
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// One SMTP session on a connected socket. Every operation has a deadline;
// the first failure is recorded in `failure` and every later operation
// fails at once, so the caller can write the dialogue straight down.
class Session {
 public:
  Session(UniqueFd fd, std::string peer, std::size_t max_reply)
      : fd_(std::move(fd)), peer_(std::move(peer)), max_reply_(max_reply) {}

  std::optional<SmtpReply> failure;

  bool send(std::string_view data, std::chrono::milliseconds block_timeout, std::string_view what) {
    if (failure) return false;
    // The deadline is per block written (RFC 5321 4.5.3.2.5), not for the
    // whole message: a slow but progressing peer is not a timeout.
    constexpr std::size_t kBlock = 64 * 1024;
    while (!data.empty()) {
      auto deadline = Clock::now() + block_timeout;
      std::size_t chunk = std::min(kBlock, data.size());
      while (chunk > 0) {
        short want = 0;
        std::string error;
        ssize_t n = io_write(data.data(), chunk, want, error);
        if (n > 0) {
          data.remove_prefix(static_cast<std::size_t>(n));
          chunk -= static_cast<std::size_t>(n);
          continue;
        }
        if (n < 0 && want != 0) {
          if (!wait(want, deadline)) {
            fail("timeout after " + std::to_string(seconds_of(block_timeout)) + " s sending " + std::string(what) +
                 " to " + peer_);
            return false;
          }
          continue;
        }
        fail("lost connection with " + peer_ + " while sending " + std::string(what) + ": " + error);
        return false;
      }
    }
    return true;
  }

  // Upgrades the connection after "220" to STARTTLS. Anything the peer sent
  // after that reply came in plain text and could be an injection
  // (CVE-2011-0411 style): refused.
  bool start_tls(SSL_CTX* ctx, const std::string& server_name, bool verify, std::chrono::milliseconds timeout) {
    if (failure) return false;
    if (!buffer_.empty()) {
      fail("protocol error: " + peer_ + " sent data after its STARTTLS reply");
      return false;
    }
    ERR_clear_error();
    ssl_.reset(SSL_new(ctx));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
      fail("TLS setup for " + peer_ + " failed: " + openssl_error());
      return false;
    }
    SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const bool ip = is_ip_literal(server_name);
    if (!ip) SSL_set_tlsext_host_name(ssl_.get(), server_name.c_str());
    if (verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
      int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                  : X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
      if (ok != 1) {
        fail("TLS setup for " + peer_ + " failed: bad server name \"" + server_name + "\"");
        return false;
      }
      SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER, nullptr);
    }
    auto deadline = Clock::now() + timeout;
    for (;;) {
      ERR_clear_error();
      int rc;
      {
        SigpipeBlock no_sigpipe;
        rc = SSL_connect(ssl_.get());
      }
      if (rc == 1) return true;
      int err = SSL_get_error(ssl_.get(), rc);
      short want = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (want == 0) {
        std::string why;
        long vr = SSL_get_verify_result(ssl_.get());
        if (verify && vr != X509_V_OK) why = std::string("certificate: ") + X509_verify_cert_error_string(vr);
        else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) why = "connection closed or reset";
        else why = openssl_error();
        ssl_.reset();
        fail("TLS handshake with " + peer_ + " failed: " + why);
        return false;
      }
      if (!wait(want, deadline)) {
        ssl_.reset();
        fail("timeout after " + std::to_string(seconds_of(timeout)) + " s in the TLS handshake with " + peer_);
        return false;
      }
    }
  }

  bool tls_active() const { return static_cast<bool>(ssl_); }

  // Reads one complete (possibly multi-line) reply.
  std::optional<SmtpReply> read_reply(std::chrono::milliseconds timeout, std::string_view what,
                                      std::string* raw_out = nullptr) {
    if (failure) return std::nullopt;
    auto deadline = Clock::now() + timeout;
    std::string raw;
    for (;;) {
      auto line = read_line(deadline, timeout, what);
      if (!line) return std::nullopt;
      raw += *line;
      raw += "\r\n";
      if (raw.size() > max_reply_) {
        fail("protocol error: reply to " + std::string(what) + " from " + peer_ + " longer than " +
             std::to_string(max_reply_) + " bytes");
        return std::nullopt;
      }
      if (line->size() < 3 || !is_digit((*line)[0]) || !is_digit((*line)[1]) || !is_digit((*line)[2]) ||
          (line->size() > 3 && (*line)[3] != ' ' && (*line)[3] != '-')) {
        fail("protocol error: malformed reply to " + std::string(what) + " from " + peer_ + ": \"" +
             line->substr(0, 200) + "\"");
        return std::nullopt;
      }
      if (line->size() == 3 || (*line)[3] == ' ') break;
    }
    SmtpReply reply;
    if (!parse_smtp_reply(raw, reply)) {
      fail("protocol error: inconsistent multi-line reply to " + std::string(what) + " from " + peer_);
      return std::nullopt;
    }
    if (raw_out) *raw_out = std::move(raw);
    return reply;
  }

  void fail(std::string text) {
    if (!failure) failure = no_reply(std::move(text));
  }

 private:
  bool wait(short events, Clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_.get(), events, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
      if (r > 0) return true;  // readable, writable, or an error that the next call reports
      if (r < 0 && errno != EINTR) return false;
    }
  }

  std::optional<std::string> read_line(Clock::time_point deadline, std::chrono::milliseconds timeout,
                                       std::string_view what) {
    for (;;) {
      auto eol = buffer_.find('\n');
      if (eol != std::string::npos) {
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buffer_.size() > max_reply_) {
        fail("protocol error: reply to " + std::string(what) + " from " + peer_ + " longer than " +
             std::to_string(max_reply_) + " bytes");
        return std::nullopt;
      }
      char buf[4096];
      short want = 0;
      std::string error;
      ssize_t n = io_read(buf, sizeof buf, want, error);
      if (n < 0 && want != 0) {
        if (!wait(want, deadline)) {
          fail("timeout after " + std::to_string(seconds_of(timeout)) + " s waiting for reply to " +
               std::string(what) + " from " + peer_);
          return std::nullopt;
        }
        continue;
      }
      if (n < 0) {
        fail("lost connection with " + peer_ + " while waiting for reply to " + std::string(what) + ": " + error);
        return std::nullopt;
      }
      if (n == 0) {
        fail("connection closed by " + peer_ + " while waiting for reply to " + std::string(what));
        return std::nullopt;
      }
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

  // > 0: bytes moved; 0: end of stream (reads only); < 0 with `want` set:
  // try again when poll() reports `want`; < 0 with `want` 0: an error.
  ssize_t io_read(char* buf, std::size_t len, short& want, std::string& error) {
    want = 0;
    if (ssl_) {
      ERR_clear_error();
      errno = 0;
      int n = SSL_read(ssl_.get(), buf, static_cast<int>(len));
      if (n > 0) return n;
      return ssl_result(n, want, error, true);
    }
    ssize_t n = ::recv(fd_.get(), buf, len, 0);
    if (n >= 0) return n;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) want = POLLIN;
    else error = errno_text(errno);
    return -1;
  }

  ssize_t io_write(const char* buf, std::size_t len, short& want, std::string& error) {
    want = 0;
    if (ssl_) {
      ERR_clear_error();
      errno = 0;
      int n;
      {
        SigpipeBlock no_sigpipe;
        n = SSL_write(ssl_.get(), buf, static_cast<int>(std::min<std::size_t>(len, 1 << 20)));
      }
      if (n > 0) return n;
      ssize_t r = ssl_result(n, want, error, false);
      return r == 0 ? -1 : r;
    }
    ssize_t n = ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) want = POLLOUT;
    else error = errno_text(errno);
    return -1;
  }

  ssize_t ssl_result(int rc, short& want, std::string& error, bool reading) {
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ) want = POLLIN;
    else if (err == SSL_ERROR_WANT_WRITE) want = POLLOUT;
    else if (err == SSL_ERROR_ZERO_RETURN && reading) return 0;
    else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      if (reading && errno == 0) return 0;  // closed without close_notify
      error = errno != 0 ? errno_text(errno) : "connection closed";
    } else {
      error = openssl_error();
    }
    return -1;
  }

  UniqueFd fd_;
  std::string peer_;
  std::size_t max_reply_;
  std::string buffer_;
  SslPtr ssl_;  // set after STARTTLS; freed before fd_ is closed
};

// Non-blocking connect to each address in turn, within one overall deadline.
UniqueFd connect_to(const std::string& host, const std::string& port, std::chrono::milliseconds timeout,
                    std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &raw);
  if (rc != 0) {
    // AI_ADDRCONFIG hides ::1 and 127.0.0.1 on hosts with loopback only.
    hints.ai_flags = AI_NUMERICSERV;
    rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &raw);
  }
  if (rc != 0) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return {};
  }
  AddrInfoPtr list(raw);
  auto deadline = Clock::now() + timeout;
  error.clear();
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      error = std::string("socket: ") + errno_text(errno);
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS) {
      error = errno_text(errno);
      continue;
    }
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        error = "timeout after " + std::to_string(seconds_of(timeout)) + " s";
        return {};
      }
      pollfd p{fd.get(), POLLOUT, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
      if (soerr == 0) return fd;
      error = errno_text(soerr);
      break;
    }
  }
  if (error.empty()) error = "no address";
  return {};
}

// Ends a session politely; its outcome does not change any result.
void quit_session(Session& s, std::chrono::milliseconds timeout) {
  if (s.failure) return;
  if (s.send("QUIT\r\n", timeout, "QUIT")) s.read_reply(timeout, "QUIT");
}

PeerCapabilities parse_ehlo(const std::string& raw_lines) {
  PeerCapabilities caps;
  caps.esmtp = true;
  std::size_t pos = 0;
  bool first = true;
  while (pos < raw_lines.size()) {
    auto eol = raw_lines.find("\r\n", pos);
    if (eol == std::string::npos) eol = raw_lines.size();
    std::string line = raw_lines.substr(pos, eol - pos);
    pos = eol + 2;
    if (first) {  // the greeting line names the host, not an extension
      first = false;
      continue;
    }
    if (line.size() < 4) continue;
    std::string kw = line.substr(4);
    std::string upper = kw;
    std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
    auto word = upper.substr(0, upper.find(' '));
    if (word == "PIPELINING") caps.pipelining = true;
    else if (word == "8BITMIME") caps.eight_bit_mime = true;
    else if (word == "SMTPUTF8") caps.smtputf8 = true;
    else if (word == "STARTTLS") caps.starttls = true;
    else if (word == "SIZE") {
      caps.size_offered = true;
      auto sp = upper.find(' ');
      if (sp != std::string::npos) {
        try {
          caps.max_size = std::stoull(upper.substr(sp + 1));
        } catch (const std::exception&) {
          caps.max_size = 0;
        }
      }
    }
  }
  return caps;
}

}  // namespace

bool parse_smtp_reply(const std::string& raw, SmtpReply& out) {
  out = SmtpReply{};
  std::string joined;
  std::string enhanced;
  int code = -1;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    auto eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) eol = raw.size();
    std::string_view line(raw.data() + pos, eol - pos);
    pos = eol + 2;
    if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) return false;
    int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (code >= 0 && c != code) return false;
    code = c;
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
    if (std::size_t n = enhanced_length(text, line[0])) {
      if (enhanced.empty()) enhanced = std::string(text.substr(0, n));
      text.remove_prefix(n);
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    }
    if (!joined.empty()) joined += " / ";
    joined += text;
  }
  if (code < 100 || code > 599) return false;
  out.code = code;
  out.enhanced = enhanced;
  out.text = joined;
  return true;
}

std::string smtp_data_block(const std::string& message) {
  std::string out;
  out.reserve(message.size() + message.size() / 50 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < message.size(); ++i) {
    char c = message[i];
    if (line_start && c == '.') out += '.';
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < message.size() && message[i + 1] == '\n') ++i;
      line_start = true;
    } else if (c == '\n') {
      out += "\r\n";
      line_start = true;
    } else {
      out += c;
      line_start = false;
    }
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

struct RelayClient::TlsContext {
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx;
};

// A session kept after a completed transaction, for the next message.
struct RelayClient::Connection {
  explicit Connection(Session&& s) : session(std::move(s)) {}
  Session session;
  PeerCapabilities caps;
  Clock::time_point last_used{};
  int messages = 0;  // transactions completed on it
};

RelayClient::~RelayClient() {
  if (cached_) quit_session(cached_->session, options_.quit_timeout);
}

RelayClient::RelayClient(RelayOptions options) : options_(std::move(options)) {
  const std::string& hop = options_.next_hop;
  if (hop.empty()) throw RelayConfigError("relay.next_hop is empty");
  if (hop.front() == '[') {
    auto close = hop.find(']');
    if (close == std::string::npos) throw RelayConfigError("relay.next_hop \"" + hop + "\": missing ']'");
    host_ = hop.substr(1, close - 1);
    if (close + 1 == hop.size()) port_ = "25";
    else if (hop[close + 1] == ':') port_ = hop.substr(close + 2);
    else throw RelayConfigError("relay.next_hop \"" + hop + "\": expected ':' after ']'");
  } else if (std::count(hop.begin(), hop.end(), ':') > 1) {
    host_ = hop;  // a bare IPv6 literal; write [addr]:port for another port
    port_ = "25";
  } else if (auto colon = hop.find(':'); colon != std::string::npos) {
    host_ = hop.substr(0, colon);
    port_ = hop.substr(colon + 1);
  } else {
    host_ = hop;
    port_ = "25";
  }
  bool numeric = !port_.empty() && port_.size() <= 5 && std::all_of(port_.begin(), port_.end(), is_digit);
  if (host_.empty() || !numeric || std::stoi(port_) < 1 || std::stoi(port_) > 65535)
    throw RelayConfigError("relay.next_hop \"" + hop + "\": expected host:port with a port from 1 to 65535");
  init_tls();
}

void RelayClient::init_tls() {
  if (options_.tls == RelayTls::off) return;
  tls_ = std::make_unique<TlsContext>();
  ERR_clear_error();
  tls_->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!tls_->ctx) throw RelayConfigError("relay TLS: " + openssl_error());
  SSL_CTX_set_min_proto_version(tls_->ctx.get(), TLS1_2_VERSION);
  if (options_.tls == RelayTls::verify) {
    int ok = options_.tls_ca_file.empty()
                 ? SSL_CTX_set_default_verify_paths(tls_->ctx.get())
                 : SSL_CTX_load_verify_locations(tls_->ctx.get(), options_.tls_ca_file.c_str(), nullptr);
    if (ok != 1)
      throw RelayConfigError("relay TLS: cannot load CA certificates " +
                             (options_.tls_ca_file.empty() ? std::string("(system store)") : options_.tls_ca_file) +
                             ": " + openssl_error());
  }
}

std::string RelayClient::describe() const { return "smtp " + options_.next_hop; }

std::vector<RecipientResult> RelayClient::deliver(const Envelope& envelope,
                                                  const std::vector<std::string>& recipients,
                                                  const std::string& message) {
  const std::string peer = options_.next_hop;
  std::vector<std::optional<SmtpReply>> final_reply(recipients.size());

  auto finish = [&](const std::optional<SmtpReply>& for_pending) {
    std::vector<RecipientResult> out;
    out.reserve(recipients.size());
    for (std::size_t i = 0; i < recipients.size(); ++i) {
      SmtpReply r = final_reply[i] ? *final_reply[i]
                                   : for_pending.value_or(no_reply("internal error: no result for recipient"));
      out.push_back(RecipientResult{recipients[i], std::move(r)});
    }
    return out;
  };
  if (recipients.empty()) return {};

  // An address goes between <> on a command line: a line break or a '>'
  // in it would be a command injection. The SMTP server never accepts one;
  // refuse anyway rather than send it.
  auto bad_address = [](const std::string& a) {
    return std::any_of(a.begin(), a.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u < 0x20 || u == 0x7f || c == '<' || c == '>';
    });
  };
  if (bad_address(envelope.mail_from))
    return finish(SmtpReply{553, "5.1.7", "sender address contains a control character or angle bracket"});
  std::vector<std::size_t> todo;  // indices of the recipients to send
  for (std::size_t i = 0; i < recipients.size(); ++i) {
    if (bad_address(recipients[i]))
      final_reply[i] = SmtpReply{553, "5.1.3", "recipient address contains a control character or angle bracket"};
    else
      todo.push_back(i);
  }
  if (todo.empty()) return finish(std::nullopt);

  // The connection of the previous message, when it is still good (RSET
  // answered), or a new one.
  std::unique_ptr<Connection> conn = take_cached();
  const bool reused = static_cast<bool>(conn);
  if (!conn) {
    std::string error;
    UniqueFd fd = connect_to(host_, port_, options_.connect_timeout, error);
    if (!fd) return finish(no_reply("connect to " + peer + ": " + error));
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn = std::make_unique<Connection>(Session(std::move(fd), peer, options_.max_reply_bytes));
  }
  Session& s = conn->session;
  // Ends the session politely; its outcome does not change any result.
  auto quit = [&] { quit_session(s, options_.quit_timeout); };
  // A reply from the peer that is not what we wanted, for every pending
  // recipient: 5xx stays permanent; anything else (4xx, or a 2xx/3xx where
  // it makes no sense) is temporary, so nothing is lost.
  auto as_failure = [&](SmtpReply r, std::string_view stage) {
    if (!r.permanent() && !(r.code >= 400 && r.code < 500)) {
      r.text = "unexpected reply to " + std::string(stage) + " from " + peer + ": " + std::to_string(r.code) +
               " " + r.text;
      r.code = 0;
      r.enhanced.clear();
    }
    return r;
  };

  PeerCapabilities caps = conn->caps;
  if (!reused) {
    auto greeting = s.read_reply(options_.greeting_timeout, "greeting");
    if (!greeting) return finish(s.failure);
    if (!greeting->ok()) {
      // A refusal to talk is about the peer's state, not this message: even
      // a 5xx greeting defers.
      SmtpReply r = *greeting;
      if (!(r.code >= 400 && r.code < 500)) {
        r.text = "next hop " + peer + " refused to talk: " + std::to_string(r.code) + " " + r.text;
        r.code = 0;
        r.enhanced.clear();
      }
      quit();
      return finish(r);
    }

    std::optional<SmtpReply> refused;
    // EHLO, falling back to HELO on 5xx. False: `refused` (or s.failure) says why.
    auto hello = [&](bool allow_helo) {
      s.send("EHLO " + options_.helo_name + "\r\n", options_.helo_timeout, "EHLO");
      std::string ehlo_raw;
      auto ehlo = s.read_reply(options_.helo_timeout, "EHLO", &ehlo_raw);
      if (!ehlo) return false;
      if (ehlo->ok()) {
        caps = parse_ehlo(ehlo_raw);
        return true;
      }
      if (ehlo->permanent() && allow_helo) {
        caps = PeerCapabilities{};
        s.send("HELO " + options_.helo_name + "\r\n", options_.helo_timeout, "HELO");
        auto helo = s.read_reply(options_.helo_timeout, "HELO");
        if (!helo) return false;
        if (helo->ok()) return true;
        ehlo = helo;
      }
      // Our greeting refused is about the peer's setup, not this message: defer.
      SmtpReply r = *ehlo;
      r.text = "next hop " + peer + " refused EHLO/HELO: " + std::to_string(r.code) + " " + r.text;
      r.code = 0;
      r.enhanced.clear();
      refused = r;
      return false;
    };
    if (!hello(true)) {
      quit();
      return finish(refused ? refused : s.failure);
    }

    if (options_.tls != RelayTls::off) {
      const bool required = options_.tls != RelayTls::may;
      bool upgrade = caps.starttls;
      if (upgrade) {
        s.send("STARTTLS\r\n", options_.helo_timeout, "STARTTLS");
        auto st = s.read_reply(options_.helo_timeout, "STARTTLS");
        if (!st) return finish(s.failure);
        if (st->code != 220) {
          upgrade = false;
          if (required) {
            quit();
            return finish(no_reply("next hop " + peer + " refused STARTTLS: " + std::to_string(st->code) + " " +
                                   st->text));
          }
        }
      } else if (required) {
        quit();
        return finish(no_reply("next hop " + peer + " does not offer STARTTLS, which relay.tls requires"));
      }
      if (upgrade) {
        const bool verify = options_.tls == RelayTls::verify;
        const std::string name = options_.tls_server_name.empty() ? host_ : options_.tls_server_name;
        if (!s.start_tls(tls_->ctx.get(), name, verify, options_.helo_timeout)) return finish(s.failure);
        // RFC 3207: forget everything learnt before TLS and ask again.
        if (!hello(false)) {
          quit();
          return finish(refused ? refused : s.failure);
        }
        caps.tls_active = true;
      }
    }
    conn->caps = caps;
    last_capabilities_ = caps;
  }  // a new connection

  // Refuse what would have to be changed in transit to get through.
  const bool eight = has_8bit(message);
  if (envelope.smtputf8 && !caps.smtputf8) {
    quit();
    return finish(SmtpReply{550, "5.6.7",
                            "next hop " + peer + " does not support SMTPUTF8, which this message needs"});
  }
  if (eight && !caps.eight_bit_mime) {
    quit();
    return finish(SmtpReply{554, "5.6.3",
                            "message contains 8-bit data and next hop " + peer +
                                " does not support 8BITMIME; not converted, to avoid corrupting it"});
  }
  std::string data = smtp_data_block(message);
  const auto size = data.size() - 3;  // without the final dot line
  if (caps.size_offered && caps.max_size > 0 && size > caps.max_size) {
    quit();
    return finish(SmtpReply{552, "5.3.4",
                            "message size " + std::to_string(size) + " exceeds the limit of next hop " + peer + " (" +
                                std::to_string(caps.max_size) + ")"});
  }

  std::string mail = "MAIL FROM:<" + envelope.mail_from + ">";
  if (caps.size_offered) mail += " SIZE=" + std::to_string(size);
  if ((eight || envelope.eight_bit) && caps.eight_bit_mime) mail += " BODY=8BITMIME";
  if (envelope.smtputf8) mail += " SMTPUTF8";
  mail += "\r\n";

  const bool pipelining = caps.pipelining && options_.use_pipelining;
  std::vector<std::size_t> accepted;
  std::optional<SmtpReply> data_reply;

  if (pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one go, replies in order.
    std::string batch = mail;
    for (std::size_t i : todo) batch += "RCPT TO:<" + recipients[i] + ">\r\n";
    batch += "DATA\r\n";
    s.send(batch, options_.mail_timeout, "MAIL FROM/RCPT TO/DATA");
    auto mail_reply = s.read_reply(options_.mail_timeout, "MAIL FROM");
    if (!mail_reply) return finish(s.failure);
    for (std::size_t i : todo) {
      auto rr = s.read_reply(options_.rcpt_timeout, "RCPT TO");
      if (!rr) return finish(s.failure);
      if (!mail_reply->ok()) continue;  // the RCPT replies mean nothing then
      if (rr->ok()) accepted.push_back(i);
      else final_reply[i] = as_failure(*rr, "RCPT TO");
    }
    data_reply = s.read_reply(options_.data_init_timeout, "DATA");
    if (!data_reply) return finish(s.failure);
    if (!mail_reply->ok()) {
      if (data_reply->code == 354) s.send(".\r\n", options_.data_block_timeout, "end of data");
      if (data_reply->code == 354) s.read_reply(options_.data_done_timeout, "end of data");
      quit();
      return finish(as_failure(*mail_reply, "MAIL FROM"));
    }
    if (accepted.empty()) {
      // Every RCPT failed; a server that still says 354 gets an empty message
      // ended at once (RFC 2920 3.1), which it must not deliver.
      if (data_reply->code == 354) {
        s.send(".\r\n", options_.data_block_timeout, "end of data");
        s.read_reply(options_.data_done_timeout, "end of data");
      }
      quit();
      return finish(no_reply("no recipient accepted"));
    }
  } else {
    s.send(mail, options_.mail_timeout, "MAIL FROM");
    auto mail_reply = s.read_reply(options_.mail_timeout, "MAIL FROM");
    if (!mail_reply) return finish(s.failure);
    if (!mail_reply->ok()) {
      quit();
      return finish(as_failure(*mail_reply, "MAIL FROM"));
    }
    for (std::size_t i : todo) {
      s.send("RCPT TO:<" + recipients[i] + ">\r\n", options_.rcpt_timeout, "RCPT TO");
      auto rr = s.read_reply(options_.rcpt_timeout, "RCPT TO");
      if (!rr) return finish(s.failure);
      if (rr->ok()) accepted.push_back(i);
      else final_reply[i] = as_failure(*rr, "RCPT TO");
    }
    if (accepted.empty()) {
      quit();
      return finish(no_reply("no recipient accepted"));
    }
    s.send("DATA\r\n", options_.data_init_timeout, "DATA");
    data_reply = s.read_reply(options_.data_init_timeout, "DATA");
    if (!data_reply) return finish(s.failure);
  }

  if (data_reply->code != 354) {
    quit();
    return finish(as_failure(*data_reply, "DATA"));
  }
  s.send(data, options_.data_block_timeout, "message content");
  auto done = s.read_reply(options_.data_done_timeout, "end of data");
  // No reply to the final dot is temporary: the peer may have kept the
  // message, and a duplicate is better than a loss.
  if (!done) return finish(s.failure);
  SmtpReply outcome = done->ok() ? *done : as_failure(*done, "end of data");
  for (std::size_t i : accepted) final_reply[i] = outcome;
  keep(std::move(conn));  // a transaction completed: the session is in step
  return finish(outcome);
}

std::unique_ptr<RelayClient::Connection> RelayClient::take_cached() {
  std::unique_ptr<Connection> c = std::move(cached_);
  if (!c) return nullptr;
  if (Clock::now() - c->last_used >= options_.reuse_idle_timeout) {
    quit_session(c->session, options_.quit_timeout);
    return nullptr;
  }
  // RFC 5321 4.1.1.5: a clean slate, and proof that the peer is still there.
  // A peer that closed the idle connection fails here, not in the
  // transaction: the message then goes over a new connection.
  c->session.send("RSET\r\n", options_.rset_timeout, "RSET");
  auto reply = c->session.read_reply(options_.rset_timeout, "RSET");
  if (!reply || !reply->ok()) {
    quit_session(c->session, options_.quit_timeout);
    return nullptr;
  }
  return c;
}

void RelayClient::keep(std::unique_ptr<Connection> c) {
  ++c->messages;
  if (c->session.failure || options_.reuse_idle_timeout <= std::chrono::milliseconds(0) ||
      c->messages >= options_.reuse_max_messages) {
    quit_session(c->session, options_.quit_timeout);
    return;
  }
  c->last_used = Clock::now();
  ++reused_sessions_;
  cached_ = std::move(c);
}

void RelayClient::close_idle() {
  if (cached_ && Clock::now() - cached_->last_used >= options_.reuse_idle_timeout) {
    quit_session(cached_->session, options_.quit_timeout);
    cached_.reset();
  }
}

}  // namespace mukaika
