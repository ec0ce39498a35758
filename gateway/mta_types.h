// Types shared by the MTA hop's parts: the SMTP server (gateway/smtp), the
// queue (gateway/queue: spool, quarantine, audit, queue manager) and
// delivery (gateway/relay: SMTP client to the next hop, local Maildir,
// bounces). Kept small and free of any library so that each part can be
// built and tested alone.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mukaika {

// The SMTP envelope as received: what the message is delivered by, which
// is not what its headers say.
struct Envelope {
  std::string client_address;           // peer IP of the Internet-side MTA
  std::string helo;                     // EHLO/HELO argument
  std::string mail_from;                // reverse-path without <>; "" for the null sender
  std::vector<std::string> recipients;  // forward-paths without <>
  bool smtputf8 = false;                // MAIL FROM ... SMTPUTF8
  bool eight_bit = false;               // MAIL FROM ... BODY=8BITMIME
  std::chrono::system_clock::time_point received{};
};

// One reply of an SMTP peer, or what stood for one (a connection failure
// is a temporary failure with code 0 and the reason in `text`).
struct SmtpReply {
  int code = 0;              // 250, 451, 550 ...; 0 = no reply (connection failed, timeout)
  std::string enhanced;      // "5.1.1", "" when the peer gave none
  std::string text;          // the reply text, lines joined with " / "

  bool ok() const { return code >= 200 && code < 300; }
  bool permanent() const { return code >= 500 && code < 600; }
  bool temporary() const { return !ok() && !permanent(); }  // 4xx and no reply
};

// What happened to one recipient in one delivery attempt.
struct RecipientResult {
  std::string recipient;
  SmtpReply reply;
};

// Delivers one sanitized message to the LGWAN side, for the envelope's
// recipients. Implementations: RelayClient (SMTP to relay.next_hop) and
// MaildirDelivery (no next hop: a local Maildir stands in for the LGWAN
// mail server). Never throws for a refusal or an unreachable peer; those
// are results. Must be safe to call from one thread at a time per object.
class Delivery {
 public:
  virtual ~Delivery() = default;
  // One result per recipient in `recipients`, in that order.
  virtual std::vector<RecipientResult> deliver(const Envelope& envelope, const std::vector<std::string>& recipients,
                                               const std::string& message) = 0;
  // For the audit log and errors: "smtp 10.0.0.5:25" or "maildir ./var/lgwan-maildir".
  virtual std::string describe() const = 0;
  // Called by the same thread when it has nothing to deliver for a while:
  // closes connections kept for reuse that have been idle too long.
  virtual void close_idle() {}
};

}  // namespace mukaika
