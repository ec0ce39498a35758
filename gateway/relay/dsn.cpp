#include "relay/dsn.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <random>

namespace mukaika {

namespace {

using namespace std::string_literals;

constexpr std::size_t kMaxValue = 900;  // bytes of peer/attacker text kept per line; stays under 998

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned min;
  unsigned cp;
  if ((c & 0xE0) == 0xC0) n = 2, min = 0x80, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// One line of text fit for a message: valid UTF-8 (bad bytes become U+FFFD),
// control characters (line breaks included) become spaces, at most `max`
// bytes, cut at a character boundary.
std::string clean_text(std::string_view s, std::size_t max = kMaxValue) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_length(s, i);
    std::string_view piece;
    if (n == 0) {
      piece = "\xEF\xBF\xBD";
      n = 1;
    } else {
      piece = s.substr(i, n);
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (n == 1 && (c < 0x20 || c == 0x7f)) piece = " ";
    }
    if (out.size() + piece.size() > max) {
      out += "...";
      break;
    }
    out += piece;
    i += n;
  }
  return out;
}

// The same, in ASCII only (for the machine-readable delivery-status fields).
std::string clean_ascii(std::string_view s, std::size_t max = kMaxValue) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c < 0x20 || c >= 0x7f) ? (c >= 0x80 ? '?' : ' ') : static_cast<char>(c);
  }
  return out;
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Every line end as CRLF.
std::string crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out += s[i];
    }
  }
  return out;
}

// JST, fixed: the readers are in Japan and the output must not depend on TZ.
std::tm jst(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t) + 9 * 3600;
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm = jst(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0900", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string human_date_ja(std::chrono::system_clock::time_point t) {
  std::tm tm = jst(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d年%02d月%02d日 %02d:%02d:%02d (JST)", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string human_date_en(std::chrono::system_clock::time_point t) {
  std::tm tm = jst(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d +0900 (JST)", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string random_hex() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string host_of(const BounceOptions& o) {
  std::string h = clean_ascii(o.hostname, 255);
  h.erase(std::remove_if(h.begin(), h.end(), [](char c) { return c == ' ' || c == '<' || c == '>' || c == '@'; }),
          h.end());
  return h.empty() ? "localhost" : h;
}

std::string message_id(const BounceOptions& o) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(o.now.time_since_epoch()).count();
  return "<" + std::to_string(secs) + "." + random_hex() + "@" + host_of(o) + ">";
}

std::string address(std::string_view a) { return clean_text(a, 512); }

struct Bilingual {
  std::string ja, en;
};

std::string in_order(const BounceOptions& o, const Bilingual& b, std::string_view separator) {
  if (o.language == "en") return b.en + std::string(separator) + b.ja;
  return b.ja + std::string(separator) + b.en;
}

std::string diagnostic(const SmtpReply& r) {
  std::string s;
  if (r.code != 0) s = std::to_string(r.code) + " ";
  if (!r.enhanced.empty()) s += r.enhanced + " ";
  s += r.text;
  return s;
}

// Action: failed wants a 5.x.x status. A temporary reply that ends up in a
// bounce means the queue gave up (lifetime expired): keep its detail.
std::string final_status(const SmtpReply& r) {
  const std::string& e = r.enhanced;
  if (e.size() >= 5 && (e[0] == '5' || e[0] == '4') && e[1] == '.') return "5" + e.substr(1);
  if (r.permanent()) return "5.0.0";
  return "5.4.7";
}

}  // namespace

std::string base64_encode(std::string_view data, std::size_t line_length) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t col = 0;
  auto put = [&](char c) {
    out += c;
    if (line_length && ++col == line_length) {
      out += "\r\n";
      col = 0;
    }
  };
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    put(tbl[(v >> 18) & 63]);
    put(tbl[(v >> 12) & 63]);
    put(tbl[(v >> 6) & 63]);
    put(tbl[v & 63]);
  }
  if (i < data.size()) {
    unsigned v = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    put(tbl[(v >> 18) & 63]);
    put(tbl[(v >> 12) & 63]);
    put(i + 1 < data.size() ? tbl[(v >> 6) & 63] : '=');
    put('=');
  }
  if (line_length && col != 0) out += "\r\n";
  return out;
}

std::string encode_header_text(std::string_view utf8, std::size_t name_length) {
  std::string text = clean_text(utf8);
  bool plain = std::all_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  if (plain && text.find("=?") == std::string::npos && name_length + 2 + text.size() <= 76) return text;

  // RFC 2047: an encoded word is at most 75 characters and a line holding
  // one at most 76; words break at character boundaries only.
  std::string out;
  std::size_t used = name_length + 2;  // "Name: "
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t room = 76 - std::min<std::size_t>(used, 40) - 12;  // minus "=?UTF-8?B?" and "?="
    std::size_t max_bytes = room / 4 * 3;
    std::size_t end = i;
    while (end < text.size()) {
      std::size_t n = std::max<std::size_t>(1, utf8_length(text, end));
      if (end + n - i > max_bytes) break;
      end += n;
    }
    if (end == i) end = i + std::max<std::size_t>(1, utf8_length(text, i));
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(text.substr(i, end - i), 0) + "?=";
    used = 1;
    i = end;
  }
  return out;
}

std::string message_headers(std::string_view message, std::size_t limit) {
  std::size_t end = message.size();
  for (std::size_t pos = 0; pos < message.size();) {
    auto eol = message.find('\n', pos);
    std::string_view line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.empty() || line == "\r") {
      end = pos;
      break;
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  std::string_view block = message.substr(0, end);
  if (block.size() > limit) {
    block = block.substr(0, limit);
    auto last = block.rfind('\n');
    block = last == std::string_view::npos ? std::string_view{} : block.substr(0, last + 1);
  }
  std::string out = crlf(block);
  if (!out.empty() && out.back() != '\n') out += "\r\n";
  return out;
}

std::string make_bounce(const Envelope& original, const std::vector<RecipientResult>& failed,
                        const std::string& original_headers, const BounceOptions& o) {
  const std::string host = host_of(o);
  const auto arrival = original.received.time_since_epoch().count() != 0 ? original.received : o.now;

  bool utf8_addresses = false;
  for (const auto& f : failed) utf8_addresses |= !is_ascii(f.recipient);

  // Human-readable part.
  std::string list_ja, list_en;
  for (const auto& f : failed) {
    std::string why = clean_text(diagnostic(f.reply));
    list_ja += "  宛先: " + address(f.recipient) + "\n  理由: " + why + "\n\n";
    list_en += "  Recipient: " + address(f.recipient) + "\n  Reason:    " + why + "\n\n";
  }
  std::string sender = original.mail_from.empty() ? "(null sender)" : address(original.mail_from);
  Bilingual text;
  text.ja = "これは " + host +
            " の無害化ゲートウェイ (mukaika) からの自動通知です。\n\n"
            "お送りいただいたメールを、次の宛先に配送できませんでした。\n\n" +
            list_ja + "  送信者:   " + sender + "\n  受付日時: " + human_date_ja(arrival) +
            "\n\n元のメールのヘッダーを添付します。\n";
  text.en = "This is the mukaika sanitizing gateway at host " + host +
            ".\n\nYour message could not be delivered to the following recipients.\n\n" + list_en +
            "  Sender:   " + sender + "\n  Received: " + human_date_en(arrival) +
            "\n\nThe headers of your message are attached.\n";
  std::string body_text = crlf(in_order(o, text, "\n----------------------------------------\n\n"));

  // Machine-readable part (RFC 3464 2.2, 2.3).
  std::string status = "Reporting-MTA: dns; " + host + "\r\nArrival-Date: " + rfc5322_date(arrival) + "\r\n";
  for (const auto& f : failed) {
    status += "\r\n";
    if (utf8_addresses) status += "Final-Recipient: utf-8; " + address(f.recipient) + "\r\n";
    else status += "Final-Recipient: rfc822; " + clean_ascii(f.recipient, 512) + "\r\n";
    status += "Action: failed\r\nStatus: " + final_status(f.reply) + "\r\n";
    if (f.reply.code != 0) {
      if (!o.remote_mta.empty()) status += "Remote-MTA: dns; " + clean_ascii(o.remote_mta, 255) + "\r\n";
      status += "Diagnostic-Code: smtp; " + clean_ascii(diagnostic(f.reply)) + "\r\n";
    } else {
      // No reply from a peer: say what happened in our own words.
      status += "Diagnostic-Code: X-mukaika; " + clean_ascii(f.reply.text) + "\r\n";
    }
  }

  std::string headers = message_headers(original_headers);
  bool headers_7bit = is_ascii(headers);
  for (std::size_t pos = 0, eol; headers_7bit && (eol = headers.find("\r\n", pos)) != std::string::npos; pos = eol + 2)
    headers_7bit = eol - pos <= 998;

  std::string boundary;
  do {
    boundary = "=_mukaika_report_" + random_hex();
  } while (headers.find(boundary) != std::string::npos || status.find(boundary) != std::string::npos);

  Bilingual subject{"配送できませんでした", "Undelivered Mail Returned to Sender"};
  std::string to = original.mail_from.empty() ? "postmaster@" + host : address(original.mail_from);

  std::string m;
  m += "From: \"Mail Delivery System (mukaika)\" <MAILER-DAEMON@" + host + ">\r\n";
  m += "To: <" + to + ">\r\n";
  m += "Subject: " + encode_header_text(in_order(o, subject, " / "), 7) + "\r\n";
  m += "Date: " + rfc5322_date(o.now) + "\r\n";
  m += "Message-ID: " + message_id(o) + "\r\n";
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
  m += "\r\n";
  m += "This is a MIME-encapsulated delivery status notification.\r\n\r\n";
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n";
  m += "Content-Description: Notification\r\n\r\n";
  m += base64_encode(body_text);
  m += "\r\n--" + boundary + "\r\n";
  m += utf8_addresses ? "Content-Type: message/global-delivery-status\r\n"
                      : "Content-Type: message/delivery-status\r\n";
  m += "Content-Description: Delivery report\r\n\r\n";
  m += status;
  m += "\r\n--" + boundary + "\r\n";
  m += "Content-Type: text/rfc822-headers\r\n";
  m += "Content-Description: Undelivered message headers\r\n";
  if (headers_7bit) {
    m += "\r\n" + headers;
  } else {
    m += "Content-Transfer-Encoding: base64\r\n\r\n" + base64_encode(headers);
  }
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

std::string make_blocked_notice(const Envelope& original, const std::string& recipient, const BlockedNotice& n,
                                const BounceOptions& o) {
  const std::string host = host_of(o);
  const auto received = original.received.time_since_epoch().count() != 0 ? original.received : o.now;
  auto or_none_ja = [](const std::string& s) { return s.empty() ? "(なし)"s : clean_text(s, 300); };
  auto or_none_en = [](const std::string& s) { return s.empty() ? "(none)"s : clean_text(s, 300); };
  const std::string sender = original.mail_from.empty() ? "<>" : "<" + address(original.mail_from) + ">";

  Bilingual text;
  text.ja = "あなた宛てのメールを、安全のため無害化ゲートウェイ (mukaika) で止めました。\n"
            "このメールの本文と添付ファイルはお届けしていません。\n\n"
            "  差出人:      " + or_none_ja(n.from_header) + "\n" +
            "  送信元アドレス: " + sender + "\n" +
            "  件名:        " + or_none_ja(n.subject) + "\n" +
            "  Message-ID:  " + or_none_ja(n.message_id) + "\n" +
            "  受信日時:    " + human_date_ja(received) + "\n" +
            "  理由:        " + or_none_ja(n.reason_ja) + "\n" +
            "  受付番号:    " + or_none_ja(n.queue_id) + "\n\n" +
            "原本はインターネット接続系で保管されています。必要な場合は情報システム担当にお問い合わせください。\n"
            "お問い合わせの際は上記の受付番号をお伝えください。\n" +
            (n.page_url.empty() ? ""s : "このメールの詳細と原本の申請: " + clean_text(n.page_url, 500) + "\n");
  text.en = "A message addressed to you was blocked by the mukaika sanitizing gateway.\n"
            "Its body and attachments have not been delivered.\n\n"
            "  From:            " + or_none_en(n.from_header) + "\n" +
            "  Envelope sender: " + sender + "\n" +
            "  Subject:         " + or_none_en(n.subject) + "\n" +
            "  Message-ID:      " + or_none_en(n.message_id) + "\n" +
            "  Received:        " + human_date_en(received) + "\n" +
            "  Reason:          " + or_none_en(n.reason_en) + "\n" +
            "  Queue ID:        " + or_none_en(n.queue_id) + "\n\n" +
            "The original is kept in the quarantine on the Internet side. If you need it,\n"
            "contact your information systems staff and quote the queue ID above.\n" +
            (n.page_url.empty() ? ""s : "Details and a request for the original: " + clean_text(n.page_url, 500) + "\n");
  std::string body = crlf(in_order(o, text, "\n----------------------------------------\n\n") +
                          "\n-- \nmukaika (" + host + ")\n");

  Bilingual subject{"【無害化】メールを止めました", "A message for you was blocked"};
  std::string m;
  m += "From: \"mukaika\" <MAILER-DAEMON@" + host + ">\r\n";
  m += "To: <" + address(recipient) + ">\r\n";
  m += "Subject: " + encode_header_text(in_order(o, subject, " / "), 7) + "\r\n";
  m += "Date: " + rfc5322_date(o.now) + "\r\n";
  m += "Message-ID: " + message_id(o) + "\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += "Content-Transfer-Encoding: base64\r\n";
  m += "\r\n";
  m += base64_encode(body);
  return m;
}

// "7bit" or "8bit" when `mail` can be carried unencoded in a MIME part
// delimited by `boundary`: CRLF line ends only, lines of at most 998
// octets (RFC 5322), no NUL, no line starting with the boundary; "" when it
// cannot.
static std::string unencoded_mail_encoding(std::string_view mail, const std::string& boundary) {
  bool eight = false;
  std::size_t line = 0;
  for (std::size_t i = 0; i < mail.size(); ++i) {
    const unsigned char c = mail[i];
    if (c == '\0') return "";
    if (c == '\r') {
      if (i + 1 >= mail.size() || mail[i + 1] != '\n') return "";
      ++i;
      if (mail.compare(i + 1, boundary.size() + 2, "--" + boundary) == 0) return "";
      line = 0;
      continue;
    }
    if (c == '\n' || ++line > 998) return "";
    eight = eight || c >= 0x80;
  }
  if (mail.compare(0, boundary.size() + 2, "--" + boundary) == 0) return "";
  return eight ? "8bit" : "7bit";
}

std::string make_gateway_mail(const GatewayMail& mail, const BounceOptions& o) {
  const std::string host = host_of(o);
  Bilingual text{mail.body_ja, mail.body_en};
  const std::string body = crlf(in_order(o, text, "\n----------------------------------------\n\n") +
                                "\n-- \nmukaika (" + host + ")\n");
  Bilingual subject{clean_text(mail.subject_ja, 200), clean_text(mail.subject_en, 200)};
  std::string m;
  m += "From: \"mukaika\" <MAILER-DAEMON@" + host + ">\r\n";
  m += "To: <" + address(mail.recipient) + ">\r\n";
  m += "Subject: " + encode_header_text(in_order(o, subject, " / "), 7) + "\r\n";
  m += "Date: " + rfc5322_date(o.now) + "\r\n";
  m += "Message-ID: " + message_id(o) + "\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  const auto text_part = [&] {
    return "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
           base64_encode(body);
  };
  if (mail.attachments.empty()) return m + text_part();
  const std::string boundary = "=_mukaika_" + random_hex() + random_hex();
  m += "Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n";
  m += "--" + boundary + "\r\n" + text_part();
  for (const auto& a : mail.attachments) {
    // A media type is token/token; anything else becomes octet-stream.
    std::string type = a.type;
    const bool type_ok = !type.empty() && type.size() < 128 && std::count(type.begin(), type.end(), '/') == 1 &&
                         std::all_of(type.begin(), type.end(), [](unsigned char c) {
                           return std::isalnum(c) || c == '/' || c == '-' || c == '+' || c == '.' || c == '_';
                         });
    if (!type_ok) type = "application/octet-stream";
    // RFC 2231: filename*=UTF-8''<percent-encoded>, folded by the encoder
    // of nothing: names are capped so the line stays short.
    std::string name = clean_text(a.name.empty() ? "attachment" : a.name, 150);
    std::string encoded;
    for (unsigned char c : name) {
      if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
        encoded += static_cast<char>(c);
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        encoded += buf;
      }
    }
    // A mail attached as a mail (message/rfc822) may not be base64 (RFC
    // 2046, 5.2.1): it goes as it is, 7bit or 8bit, when its lines allow;
    // otherwise as an opaque file.
    std::string encoding = "base64";
    if (type == "message/rfc822") {
      encoding = unencoded_mail_encoding(a.bytes, boundary);
      if (encoding.empty()) type = "application/octet-stream", encoding = "base64";
    }
    m += "\r\n--" + boundary + "\r\n";
    m += "Content-Type: " + type + "\r\n";
    m += "Content-Disposition: attachment;\r\n filename*=UTF-8''" + encoded + "\r\n";
    m += "Content-Transfer-Encoding: " + encoding + "\r\n\r\n";
    if (encoding == "base64") {
      m += base64_encode(a.bytes);
    } else {
      m += a.bytes;
      if (a.bytes.size() < 2 || a.bytes.compare(a.bytes.size() - 2, 2, "\r\n") != 0) m += "\r\n";
    }
  }
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

std::string make_received_header(const Envelope& envelope, const std::string& queue_id, const BounceOptions& o) {
  // Only what a header may hold: no spaces, parentheses or brackets from the
  // peer (they would change what the line says), capped.
  const auto token = [](std::string_view s, std::size_t max) {
    std::string out;
    for (char c : clean_ascii(s, max))
      if (c != ' ' && c != '(' && c != ')' && c != '[' && c != ']' && c != ';' && c != '<' && c != '>') out += c;
    return out.empty() ? std::string("unknown") : out;
  };
  std::string address = token(envelope.client_address, 64);
  if (address.find(':') != std::string::npos && address.rfind("IPv6:", 0) != 0) address = "IPv6:" + address;
  const auto when = envelope.received.time_since_epoch().count() != 0 ? envelope.received : o.now;
  std::string h = "Received: from " + token(envelope.helo, 255) + " ([" + address + "])\r\n\tby " + host_of(o) +
                  " (mukaika) with ESMTP id " + token(queue_id, 64) + "\r\n\t";
  if (envelope.recipients.size() == 1) h += "for <" + token(envelope.recipients.front(), 256) + ">";
  h += "; " + rfc5322_date(when) + "\r\n";
  return h;
}

}  // namespace mukaika
