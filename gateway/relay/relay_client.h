// RelayClient: delivers a sanitized message to the LGWAN-side MTA (the
// configured next hop) over SMTP.
//
// Promises:
//  - Never hangs: the connect, every write and every reply is bounded by a
//    timeout (RFC 5321 4.5.3.2 defaults, shortened by tests), and a reply
//    longer than `max_reply_bytes` is a protocol error.
//  - Never throws for a refusal or an unreachable peer: those are results,
//    one RecipientResult per recipient, in order. A connection failure, a
//    timeout, a protocol error, any non-2xx greeting or EHLO/HELO failure, or
//    a 4xx at MAIL/DATA is temporary for every recipient still pending (code
//    0 and the reason in the text when the peer gave no reply). A 5xx at MAIL
//    or DATA is permanent for every recipient still pending; a reply to RCPT
//    concerns that recipient only.
//  - Never corrupts a message: 8-bit data to a peer without 8BITMIME, an
//    SMTPUTF8 envelope to a peer without SMTPUTF8, or a message above the
//    peer's SIZE is a permanent failure with a clear text, not a downgrade.
//  - Sends the body with CRLF line ends and dot-stuffing; uses PIPELINING
//    (RFC 2920) when offered; falls back from EHLO to HELO on 5xx.
//  - Reuses the connection for consecutive messages, as Postfix's connection
//    cache does: after a completed transaction (the reply to the final dot,
//    whatever its code) the session is kept; the next deliver() sends RSET
//    and, when that is answered 2xx, goes on without a new greeting. A
//    stale or refusing session is closed and the message goes over a new
//    connection, so reuse never turns into a failure. After any error, and
//    on every other path, the session ends with QUIT as before. Kept
//    sessions are closed after reuse_idle_timeout (close_idle(), the next
//    deliver(), or the destructor).
//  - One thread at a time (the Delivery contract): the kept session is not
//    shared.
//
// The constructor throws RelayConfigError for a next hop that cannot be
// parsed (a configuration error, not a delivery result).
//
// STARTTLS (OpenSSL) by RelayOptions::tls: off, may (when offered, no
// certificate check), encrypt (required, no certificate check), verify
// (required, certificate valid for the host). A failed handshake defers
// (temporary) in every mode.
// TODO: in `may` mode, retry in plain text after a failed handshake, as
// Postfix does; today the message waits until TLS works or tls = off.
// TODO: name resolution uses getaddrinfo(), which is bounded by resolv.conf's
// timeout/attempts rather than by `connect_timeout`; configure an IP literal
// for a strict bound.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mta_types.h"

namespace mukaika {

class RelayConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class RelayTls { off, may, encrypt, verify };

struct RelayOptions {
  // "host:port", "[2001:db8::1]:25", "192.0.2.1:2525", "mail.lg.jp" (port 25).
  std::string next_hop;
  std::string helo_name = "mukaika";  // our name in EHLO/HELO
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds greeting_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds helo_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds mail_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds rcpt_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds data_init_timeout{std::chrono::seconds(120)};
  std::chrono::milliseconds data_block_timeout{std::chrono::seconds(180)};  // per block written
  std::chrono::milliseconds data_done_timeout{std::chrono::seconds(600)};   // reply to the final dot
  std::chrono::milliseconds quit_timeout{std::chrono::seconds(10)};         // QUIT's reply is not awaited longer
  std::chrono::milliseconds rset_timeout{std::chrono::seconds(20)};        // before reusing a connection
  // Connection reuse: a connection whose last transaction completed is kept
  // for the next message (RSET first) until it has been idle this long
  // (close_idle(), or found so at the next delivery) or has carried
  // reuse_max_messages. 0 = a new connection for every message.
  std::chrono::milliseconds reuse_idle_timeout{std::chrono::seconds(2)};
  int reuse_max_messages = 100;
  std::size_t max_reply_bytes = 64 * 1024;
  bool use_pipelining = true;  // when the peer offers it
  RelayTls tls = RelayTls::off;
  std::string tls_ca_file;      // verify: PEM bundle; "" = the system store
  std::string tls_server_name;  // verify: name the certificate must carry; "" = the next hop's host
};

// What the peer offered in its EHLO reply (for tests and the audit log).
struct PeerCapabilities {
  bool esmtp = false;  // EHLO accepted (false: HELO)
  bool pipelining = false;
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool starttls = false;
  bool tls_active = false;  // the session was upgraded with STARTTLS
  bool size_offered = false;
  unsigned long long max_size = 0;  // 0 = no limit announced
};

class RelayClient : public Delivery {
 public:
  explicit RelayClient(RelayOptions options);
  ~RelayClient() override;
  RelayClient(const RelayClient&) = delete;
  RelayClient& operator=(const RelayClient&) = delete;

  std::vector<RecipientResult> deliver(const Envelope& envelope, const std::vector<std::string>& recipients,
                                       const std::string& message) override;
  std::string describe() const override;  // "smtp <host:port>"
  void close_idle() override;

  // The capabilities seen in the last session that got that far.
  const PeerCapabilities& last_capabilities() const { return last_capabilities_; }
  // For tests: how many times a session was kept for the next message.
  std::uint64_t sessions_kept() const { return reused_sessions_; }

 private:
  struct Connection;  // a session kept for reuse
  std::unique_ptr<Connection> take_cached();
  void keep(std::unique_ptr<Connection> c);

  std::unique_ptr<Connection> cached_;
  std::uint64_t reused_sessions_ = 0;
  RelayOptions options_;
  std::string host_;
  std::string port_;
  PeerCapabilities last_capabilities_;
  void init_tls();
  struct TlsContext;  // OpenSSL's SSL_CTX, kept out of this header
  std::unique_ptr<TlsContext> tls_;
};

// Parses one SMTP reply from `raw` (one or more CRLF-terminated lines, all
// with the same code). Exposed for tests. Returns false when `raw` is not a
// well-formed reply.
bool parse_smtp_reply(const std::string& raw, SmtpReply& out);

// The message as it goes on the wire after DATA: CRLF line ends (bare LF
// and bare CR become CRLF), lines starting with "." doubled, a final CRLF,
// then ".\r\n". Exposed for tests.
std::string smtp_data_block(const std::string& message);

}  // namespace mukaika
