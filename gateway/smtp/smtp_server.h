// SmtpServer: the SMTP listener of the MTA hop. The Internet-side MTA relays
// every inbound message here; each complete message goes to a MessageSink
// (the queue), and the client hears "250" only when the sink accepted it.
//
// Promises:
// - Lose nothing: "250 2.0.0 Ok: queued as <id>" is sent only after
//   MessageSink::accept() returned Accepted; an exception or TempFail is a
//   451, PermFail a 554. The message is passed byte-exact as received (dot-
//   stuffing removed, bare LF normalized to CRLF, see smtp_session.h); no
//   header is added here.
// - Bounded: max_sessions concurrent sessions (more: "421 4.3.2" and close),
//   command and DATA timeouts ("421 4.4.2"), max_message_bytes, max_recipients,
//   command and text line limits (SmtpSession).
// - Zones: only clients in allowed_networks may send; the others get
//   "554 5.7.1" and every command refused with 5.7.1.
// - The sink may block (fsync): it runs on a small separate thread pool, never
//   on the threads that serve the other sessions.
// - Errors that an operator can cause (bad address, port in use, unreadable
//   certificate) throw SmtpServerError from the constructor with a message
//   naming the setting.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mta_types.h"

namespace mukaika {

struct SmtpAccept {
  enum class Status { Accepted, TempFail, PermFail };
  Status status;
  std::string queue_id;  // for Accepted
  std::string text;      // reason for TempFail / PermFail
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // Called once per message after end of DATA. May block (the queue fsyncs).
  // Accepted -> "250 2.0.0 Ok: queued as <id>"; TempFail -> 451 4.3.0 <text>; PermFail -> 554 5.3.0 <text>.
  // An exception from accept() means TempFail (never a 250).
  // Called from several threads at once (one per concurrent message).
  virtual SmtpAccept accept(const Envelope& envelope, std::string message) = 0;
};

struct SmtpServerOptions {
  std::string listen = "127.0.0.1:2525";  // "host:port", "[v6]:port"; port 0 = any free port
  std::string hostname;                   // "" = gethostname
  std::vector<std::string> allowed_networks = {"127.0.0.0/8", "::1/128"};
  std::uint64_t max_message_bytes = 52428800;
  int max_recipients = 1000;
  std::chrono::seconds command_timeout{300};
  std::chrono::seconds data_timeout{600};
  int max_sessions = 500;
  int io_threads = 2;
  std::string tls_certificate, tls_key;  // both empty = no STARTTLS
  // Errors that do not end the server (accept() threw, accept on the listener
  // failed). Empty: written to stderr. Called from io or pool threads.
  std::function<void(const std::string&)> on_error;
};

class SmtpServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A network in CIDR notation ("10.0.0.0/8", "2001:db8::/32", "192.0.2.1").
// Exposed for tests.
class IpNetwork {
 public:
  // Throws SmtpServerError naming the text when it is not a network.
  static IpNetwork parse(const std::string& text);
  // `address` as text ("10.1.2.3", "::1", "::ffff:10.1.2.3" matches IPv4 networks).
  bool contains(const std::string& address) const;

 private:
  bool v6_ = false;
  unsigned char bytes_[16] = {};
  int prefix_ = 0;
};

class SmtpServer {
 public:
  // Parses options, binds and listens; throws SmtpServerError.
  SmtpServer(SmtpServerOptions options, MessageSink& sink);
  ~SmtpServer();  // shutdown(0s) if still running
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  std::string local_endpoint() const;  // "127.0.0.1:2525", "[::1]:2525"; the real port
  void start();                         // starts io_threads threads; returns
  void stop_accepting();                // closes the listener; sessions in flight continue
  // stop_accepting, let sessions end (QUIT / timeout) up to grace, then close
  // them with 421 4.3.2 and join the threads. Waits for sink calls in progress.
  void shutdown(std::chrono::seconds grace);

  struct Stats {
    std::uint64_t sessions;           // connections served (accepted by the listener and not over the limit)
    std::uint64_t messages_accepted;  // 250 after DATA
    std::uint64_t messages_refused;   // 4xx/5xx after DATA (sink refusal, exception, size, line length)
    std::uint64_t refused_clients;    // not in allowed_networks, or over max_sessions
  };
  Stats stats() const;

  struct Impl;  // implementation detail (smtp_server.cpp), public only for its connections

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mukaika
