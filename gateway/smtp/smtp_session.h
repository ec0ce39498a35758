// SmtpSession: the server side of one SMTP (RFC 5321) conversation as a pure
// state machine, without any I/O, clock or thread, so that every rule can be
// unit-tested by feeding bytes and reading the replies.
//
// Promises:
// - Every reply carries a reply code and an enhanced status code (RFC 3463),
//   except where RFC 2034 section 3 has none: the 220 greeting, the EHLO/HELO
//   response and the 354 intermediate reply. The refusal greeting (554 5.7.1)
//   has one.
// - Bounded: a command line is at most 512 octets with CRLF (longer:
//   "500 5.5.2" and the rest of the line is skipped); a text line of DATA is at
//   most 1000 octets with CRLF (longer: the message is refused at its end with
//   "500 5.5.2"); a message never buffers more than max_message_bytes (larger:
//   the rest is read and discarded, then "552 5.3.4", and the session goes
//   on). The unprocessed input buffer holds at most one partial line plus what
//   the caller fed in one receive().
// - Lose nothing: a message is only reported as complete (MessageReady) after
//   the end-of-data line; the reply to it comes from message_result(), which
//   the caller fills from the durable queue. The session never says 250 to
//   DATA on its own.
// - DATA line ends: CRLF is the line end. A bare LF is accepted as a line end
//   too (senders that do this exist) and the stored message gets CRLF there, so
//   that the queue and the next hop see canonical SMTP text. A lone CR (not
//   followed by LF) is kept as data. The end of data is only "." on a line of
//   its own that ends with CRLF and follows a CRLF (or the DATA reply): a "."
//   line with a bare LF is kept as data ("." stays "."), so that "\n.\n" can
//   not end a message early (SMTP smuggling).
// - Dot-stuffing is removed: a data line that starts with "." loses that dot.
// - Zones / access: a client that is not allowed gets "554 5.7.1" as greeting
//   and "550 5.7.1" to every command but QUIT; no message is ever accepted.
// - Too many errors (max_errors replies of 4xx/5xx to bad commands) ends the
//   session with "421 4.7.0".
// - After STARTTLS, all input that was pipelined behind it is discarded
//   (RFC 3207 section 4.2, command injection) and the state starts over.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mta_types.h"

namespace mukaika {

struct SmtpSessionOptions {
  std::string hostname = "localhost";    // our name, in the greeting and EHLO
  std::string client_address;            // for the envelope and refusals
  bool client_allowed = true;            // false: refuse everything with 5.7.1
  std::uint64_t max_message_bytes = 52428800;
  int max_recipients = 1000;
  int max_errors = 20;
  bool tls_available = false;            // advertise and allow STARTTLS
};

class SmtpSession {
 public:
  // Why process() stopped.
  enum class Event {
    NeedInput,     // send output(), then feed more bytes
    MessageReady,  // send output(), hand envelope()/take_message() to the queue, then call message_result()
    StartTls,      // send output() (the 220), do the TLS handshake, then call tls_started()
    Close,         // send output(), then close the connection
  };

  explicit SmtpSession(SmtpSessionOptions options);

  // The first reply: 220, or 554 5.7.1 for a client that is not allowed.
  std::string greeting() const;

  // Appends received bytes; nothing is processed until process().
  void receive(std::string_view bytes);

  // Processes buffered input until more input is needed, a message is
  // complete, STARTTLS was accepted, or the session ends. Replies are
  // appended to the output.
  Event process();

  // Replies produced so far; taking them clears the output.
  std::string take_output();

  // True while reading message text (the caller uses the DATA timeout).
  bool in_data() const { return state_ == State::Data; }

  // After MessageReady: the envelope (received is left to the caller) and
  // the message text, CRLF line ends, dot-stuffing removed.
  const Envelope& envelope() const { return envelope_; }
  std::string take_message();

  // The queue's answer for the message of the last MessageReady:
  // code 250/451/554 etc. are produced from it; the transaction is reset.
  enum class Verdict { Accepted, TempFail, PermFail };
  void message_result(Verdict verdict, const std::string& queue_id_or_reason);

  // The TLS handshake succeeded: start over (RFC 3207), drop buffered input.
  void tls_started();

  // The caller timed out waiting for input: adds 421 4.4.2, session closes.
  void timeout();
  // The server is going down: adds 421 4.3.2, session closes.
  void shutdown();

  bool closed() const { return state_ == State::Closed; }
  bool tls_active() const { return tls_active_; }
  // Messages refused by the session itself (size, line length) since the
  // last call; for the server's statistics.
  std::uint64_t take_refused_count();

 private:
  enum class State { Command, Data, WaitingForQueue, WaitingForTls, Closed };

  void command(std::string_view line);
  void data_line(std::string_view line, bool crlf);
  void end_of_data();
  void reply(std::string_view text);  // one reply, CRLF added
  void error_reply(std::string_view text);  // a reply that counts as an error
  void reset_transaction();
  void close_with(std::string_view text);

  void cmd_ehlo(std::string_view arg, bool extended);
  void cmd_mail(std::string_view arg);
  void cmd_rcpt(std::string_view arg);
  void cmd_data(std::string_view arg);

  SmtpSessionOptions options_;
  State state_ = State::Command;
  std::string input_;
  std::size_t input_pos_ = 0;   // processed prefix of input_
  std::string output_;
  bool skipping_long_line_ = false;  // rest of an over-long line is dropped

  // Session
  bool greeted_ = false;
  bool esmtp_ = false;
  bool tls_active_ = false;
  int errors_ = 0;
  std::uint64_t refused_ = 0;

  // Transaction
  bool in_transaction_ = false;
  Envelope envelope_;
  std::string message_;
  std::uint64_t message_bytes_ = 0;   // stored + discarded, after unstuffing
  bool oversize_ = false;
  bool line_too_long_ = false;
  bool previous_line_crlf_ = true;     // for the end-of-data rule
};

// Address checks, exposed for tests. `address` is without <>.
// Accepts local@domain (dot-atom or quoted local part, domain name or
// address literal) and "postmaster"; UTF-8 only when utf8 is true.
bool smtp_address_valid(std::string_view address, bool utf8);

}  // namespace mukaika
