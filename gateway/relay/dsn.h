// Bounces (RFC 3464 delivery status notifications) and blocked-mail
// notices, built as complete RFC 5322 messages.
//
// Promises:
//  - Pure functions of their arguments (except a random part of the
//    Message-ID); no I/O, never throw on odd input.
//  - Output has CRLF line ends, no line longer than 998 octets, and is 7-bit
//    clean except where a recipient address itself is UTF-8 (SMTPUTF8 mail:
//    the report part is then message/global-delivery-status, RFC 6533).
//  - Text written by a peer or an attacker (diagnostics, subjects, header
//    values) is stripped of control characters and capped before use, so it
//    cannot inject header lines or MIME boundaries.
//  - Dates are written in JST (+0900), the zone of the people who read them,
//    whatever the process's TZ.
//  - A blocked notice never carries any of the blocked content: only the
//    envelope, the sender's From, the Subject, the Message-ID, the reason and
//    the queue id.
//
// Sending them is the caller's business: both go out with the null reverse
// path (MAIL FROM:<>). Never bounce a message whose sender is the null
// sender; if asked to anyway, make_bounce addresses postmaster@<hostname>.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "mta_types.h"

namespace mukaika {

struct BounceOptions {
  std::string hostname;         // this gateway's name: Reporting-MTA, MAILER-DAEMON@<hostname>
  std::string language = "ja";  // "ja": Japanese first; "en": English first
  std::chrono::system_clock::time_point now;
  std::string remote_mta;  // the next hop's host name or address for Remote-MTA; "" = none
};

// A multipart/report; report-type=delivery-status to the original sender,
// for the recipients in `failed` (each with the reply that failed it).
// `original_headers` is the header block of the original message (see
// message_headers()); it goes into a text/rfc822-headers part.
std::string make_bounce(const Envelope& original, const std::vector<RecipientResult>& failed,
                        const std::string& original_headers, const BounceOptions& o);

struct BlockedNotice {
  std::string queue_id;
  std::string subject;      // decoded (UTF-8) Subject of the blocked mail
  std::string from_header;  // decoded (UTF-8) From of the blocked mail
  std::string message_id;
  std::string reason_ja;  // 例: "ウイルスを検出しました (Eicar-Test-Signature)"
  std::string reason_en;  // e.g. "virus found (Eicar-Test-Signature)"
  std::string page_url;   // the LGWAN page of this mail (report, original request); "" = none
};

// A Japanese-first plain-text notice to a LGWAN-side `recipient` that a
// message for them was blocked, and that the original is kept on the
// Internet side.
std::string make_blocked_notice(const Envelope& original, const std::string& recipient, const BlockedNotice& n,
                                const BounceOptions& o);

// A mail this gateway writes to LGWAN-side staff (a decision on a request,
// the contents of a held archive once its password was given): bilingual
// text in the configured order, and the attachments, which the caller must
// have had sanitized. Attachment names are made header-safe and written as
// RFC 2231 UTF-8 parameters. A "message/rfc822" attachment goes unencoded
// (7bit or 8bit, as RFC 2046 requires) when its lines allow, else as
// application/octet-stream in base64.
struct GatewayMail {
  struct Attachment {
    std::string name;  // UTF-8
    std::string type;  // "application/pdf"; "" = application/octet-stream
    std::string bytes;
  };
  std::string recipient;             // envelope and To: address
  std::string subject_ja, subject_en;
  std::string body_ja, body_en;      // plain text, "\n" line ends
  std::vector<Attachment> attachments;
};
std::string make_gateway_mail(const GatewayMail& mail, const BounceOptions& o);

// The trace line this hop adds to every mail it relays (RFC 5321 4.4):
//   Received: from <helo> ([<client address>])
//   	by <hostname> (mukaika) with ESMTP id <queue_id>
//   	for <rcpt>; <date>           ("for" only with one recipient)
// ESMTPS/UTF8SMTP are not claimed: the sanitized mail is new. Peer text is
// cleaned and capped; the result ends in CRLF.
std::string make_received_header(const Envelope& envelope, const std::string& queue_id, const BounceOptions& o);

// The header block of `message`: everything up to the first empty line (not
// included), capped at `limit` bytes (cut at a line end), with CRLF line ends.
std::string message_headers(std::string_view message, std::size_t limit = 64 * 1024);

// Building blocks, exposed for tests.
std::string base64_encode(std::string_view data, std::size_t line_length = 76);  // lines end in CRLF
// An unstructured header value as RFC 2047 "B" encoded words in UTF-8 when
// it is not plain printable ASCII, folded so each line fits.
std::string encode_header_text(std::string_view utf8, std::size_t name_length);

}  // namespace mukaika
