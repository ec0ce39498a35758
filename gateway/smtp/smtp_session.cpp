#include "smtp/smtp_session.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

namespace mukaika {
namespace {

constexpr std::size_t kCommandLineLimit = 512;  // RFC 5321 4.5.3.1.4, with CRLF
constexpr std::size_t kTextLineLimit = 1000;    // RFC 5321 4.5.3.1.6, with CRLF

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and out-of-range code points.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

bool is_atext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  if (std::isalnum(c)) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool valid_local_part(std::string_view local, bool utf8) {
  if (local.empty() || local.size() > 64) return false;
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return false;
    std::string_view body = local.substr(1, local.size() - 2);
    for (std::size_t i = 0; i < body.size(); ++i) {
      auto c = static_cast<unsigned char>(body[i]);
      if (c == '\\') {
        if (++i >= body.size()) return false;
        auto q = static_cast<unsigned char>(body[i]);
        if (q < 32 || q > 126) return false;
      } else if (c == '"') {
        return false;
      } else if (c >= 0x80) {
        if (!utf8) return false;
      } else if (c < 32 || c > 126) {
        return false;
      }
    }
    return true;
  }
  bool previous_dot = true;  // no leading dot
  for (unsigned char c : local) {
    if (c == '.') {
      if (previous_dot) return false;
      previous_dot = true;
    } else if (is_atext(c, utf8)) {
      previous_dot = false;
    } else {
      return false;
    }
  }
  return !previous_dot;  // no trailing dot
}

bool valid_domain(std::string_view domain, bool utf8) {
  if (domain.empty() || domain.size() > 255) return false;
  if (domain.front() == '[') {
    if (domain.back() != ']') return false;
    std::string literal(domain.substr(1, domain.size() - 2));
    unsigned char buf[16];
    if (istarts_with(literal, "IPv6:")) return inet_pton(AF_INET6, literal.c_str() + 5, buf) == 1;
    return inet_pton(AF_INET, literal.c_str(), buf) == 1;
  }
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string_view label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      if (c >= 0x80) {
        if (!utf8) return false;
      } else if (!std::isalnum(c) && c != '-') {
        return false;
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

// Splits "<path> params" after "FROM:" / "TO:". Returns false on bad syntax.
bool split_path(std::string_view arg, std::string_view& path, std::string_view& params) {
  arg = trim(arg);  // lenient: "MAIL FROM: <a@b>" is common
  if (arg.empty() || arg.front() != '<') return false;
  bool quoted = false;
  for (std::size_t i = 1; i < arg.size(); ++i) {
    char c = arg[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == '>' && !quoted) {
      path = arg.substr(1, i - 1);
      params = arg.substr(i + 1);
      if (!params.empty() && params.front() != ' ') return false;
      params = trim(params);
      // A source route (<@a,@b:user@c>) must be accepted and ignored (RFC 5321 4.1.2).
      if (!path.empty() && path.front() == '@') {
        auto colon = path.find(':');
        if (colon == std::string_view::npos) return false;
        path.remove_prefix(colon + 1);
      }
      return true;
    }
  }
  return false;
}

template <typename F>
void for_each_param(std::string_view params, F&& f) {
  while (!params.empty()) {
    auto space = params.find(' ');
    std::string_view p = params.substr(0, space);
    if (!p.empty()) f(p);
    if (space == std::string_view::npos) break;
    params.remove_prefix(space + 1);
  }
}

std::string one_line(std::string_view text) {
  std::string out;
  for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

}  // namespace

bool smtp_address_valid(std::string_view address, bool utf8) {
  if (iequals(address, "postmaster")) return true;
  if (utf8 && !valid_utf8(address)) return false;
  auto at = address.rfind('@');
  if (at == std::string_view::npos || address.size() > 254 + 64) return false;
  return valid_local_part(address.substr(0, at), utf8) && valid_domain(address.substr(at + 1), utf8);
}

SmtpSession::SmtpSession(SmtpSessionOptions options) : options_(std::move(options)) {
  envelope_.client_address = options_.client_address;
}

std::string SmtpSession::greeting() const {
  if (!options_.client_allowed)
    return "554 5.7.1 " + options_.hostname + " Client host [" + options_.client_address + "] not allowed\r\n";
  return "220 " + options_.hostname + " ESMTP mukaika\r\n";
}

void SmtpSession::receive(std::string_view bytes) { input_.append(bytes); }

std::string SmtpSession::take_output() { return std::exchange(output_, {}); }

std::string SmtpSession::take_message() { return std::exchange(message_, {}); }

std::uint64_t SmtpSession::take_refused_count() { return std::exchange(refused_, 0); }

void SmtpSession::reply(std::string_view text) {
  output_.append(text);
  output_.append("\r\n");
}

void SmtpSession::error_reply(std::string_view text) {
  reply(text);
  if (++errors_ >= options_.max_errors) close_with("421 4.7.0 " + options_.hostname + " Error: too many errors");
}

void SmtpSession::close_with(std::string_view text) {
  reply(text);
  state_ = State::Closed;
  input_.clear();
  input_pos_ = 0;
}

void SmtpSession::reset_transaction() {
  in_transaction_ = false;
  envelope_.mail_from.clear();
  envelope_.recipients.clear();
  envelope_.smtputf8 = false;
  envelope_.eight_bit = false;
  message_.clear();
  message_bytes_ = 0;
  oversize_ = false;
  line_too_long_ = false;
  previous_line_crlf_ = true;
}

SmtpSession::Event SmtpSession::process() {
  while (true) {
    switch (state_) {
      case State::Closed:
        return Event::Close;
      case State::WaitingForQueue:
        return Event::MessageReady;
      case State::WaitingForTls:
        return Event::StartTls;
      case State::Command:
      case State::Data:
        break;
    }
    const std::size_t limit = state_ == State::Data ? kTextLineLimit : kCommandLineLimit;
    const std::size_t lf = input_.find('\n', input_pos_);
    if (lf == std::string::npos) {
      // No line end yet: drop what can only be an over-long line, so that
      // the buffer stays bounded.
      if (input_.size() - input_pos_ >= limit) {
        if (!skipping_long_line_) {
          if (state_ == State::Data) {
            line_too_long_ = true;
            message_.clear();
          } else {
            error_reply("500 5.5.2 Error: line too long");
          }
        }
        skipping_long_line_ = true;
        input_pos_ = input_.size();
      }
      input_.erase(0, input_pos_);
      input_pos_ = 0;
      return Event::NeedInput;
    }
    std::string_view line(input_.data() + input_pos_, lf - input_pos_);  // without LF
    input_pos_ = lf + 1;
    const bool crlf = !line.empty() && line.back() == '\r';
    if (skipping_long_line_) {  // the tail of an over-long line
      skipping_long_line_ = false;
      previous_line_crlf_ = crlf;
      continue;
    }
    const bool too_long = line.size() + 1 > limit;
    if (crlf) line.remove_suffix(1);
    if (state_ == State::Command) {
      if (too_long) {
        error_reply("500 5.5.2 Error: line too long");
      } else {
        // Commands accept a bare LF too: only the data has a meaning to keep.
        command(line);
      }
    } else {
      if (too_long) {
        line_too_long_ = true;
        message_.clear();
        previous_line_crlf_ = crlf;
      } else {
        data_line(line, crlf);
      }
    }
  }
}

void SmtpSession::data_line(std::string_view line, bool crlf) {
  if (crlf && previous_line_crlf_ && line == ".") {
    end_of_data();
    return;
  }
  previous_line_crlf_ = crlf;
  if (line.size() > 1 && line.front() == '.') line.remove_prefix(1);  // dot-stuffing
  const std::uint64_t size = line.size() + 2;
  if (!oversize_ && message_bytes_ + size > options_.max_message_bytes) {
    oversize_ = true;
    std::string().swap(message_);  // give the memory back now
  }
  message_bytes_ += size;
  if (!oversize_ && !line_too_long_) {
    message_.append(line);
    message_.append("\r\n");
  }
}

void SmtpSession::end_of_data() {
  if (oversize_) {
    reply("552 5.3.4 Error: message exceeds fixed maximum message size of " +
          std::to_string(options_.max_message_bytes) + " bytes");
    ++refused_;
    reset_transaction();
    state_ = State::Command;
  } else if (line_too_long_) {
    reply("500 5.5.2 Error: message has a line longer than 1000 octets");
    ++refused_;
    reset_transaction();
    state_ = State::Command;
  } else {
    state_ = State::WaitingForQueue;
  }
}

void SmtpSession::message_result(Verdict verdict, const std::string& queue_id_or_reason) {
  if (state_ != State::WaitingForQueue) return;
  const std::string text = one_line(queue_id_or_reason);
  switch (verdict) {
    case Verdict::Accepted:
      reply("250 2.0.0 Ok: queued as " + text);
      break;
    case Verdict::TempFail:
      reply("451 4.3.0 " + (text.empty() ? std::string("Error: temporary failure, try again later") : text));
      break;
    case Verdict::PermFail:
      reply("554 5.3.0 " + (text.empty() ? std::string("Error: message refused") : text));
      break;
  }
  reset_transaction();
  state_ = State::Command;
}

void SmtpSession::tls_started() {
  tls_active_ = true;
  greeted_ = false;
  esmtp_ = false;
  envelope_.helo.clear();
  reset_transaction();
  input_.clear();
  input_pos_ = 0;
  skipping_long_line_ = false;
  if (state_ != State::Closed) state_ = State::Command;
}

void SmtpSession::timeout() {
  if (state_ == State::Closed) return;
  close_with("421 4.4.2 " + options_.hostname + " Error: timeout exceeded");
}

void SmtpSession::shutdown() {
  if (state_ == State::Closed) return;
  close_with("421 4.3.2 " + options_.hostname + " Service shutting down, closing connection");
}

void SmtpSession::command(std::string_view line) {
  const auto space = line.find(' ');
  const std::string_view verb = line.substr(0, space);
  const std::string_view arg = space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1));

  if (!options_.client_allowed) {
    if (iequals(verb, "QUIT")) {
      close_with("221 2.0.0 Bye");
    } else {
      error_reply("550 5.7.1 Client host [" + options_.client_address + "] not allowed");
    }
    return;
  }

  if (iequals(verb, "EHLO")) {
    cmd_ehlo(arg, true);
  } else if (iequals(verb, "HELO")) {
    cmd_ehlo(arg, false);
  } else if (iequals(verb, "MAIL")) {
    cmd_mail(arg);
  } else if (iequals(verb, "RCPT")) {
    cmd_rcpt(arg);
  } else if (iequals(verb, "DATA")) {
    cmd_data(arg);
  } else if (iequals(verb, "RSET")) {
    if (!arg.empty()) return error_reply("501 5.5.4 Syntax: RSET");
    reset_transaction();
    reply("250 2.0.0 Ok");
  } else if (iequals(verb, "NOOP")) {
    reply("250 2.0.0 Ok");
  } else if (iequals(verb, "QUIT")) {
    close_with("221 2.0.0 Bye");
  } else if (iequals(verb, "VRFY")) {
    if (arg.empty()) return error_reply("501 5.5.4 Syntax: VRFY address");
    reply("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
  } else if (iequals(verb, "EXPN")) {
    error_reply("502 5.5.1 Error: command not implemented");
  } else if (iequals(verb, "HELP")) {
    reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP" +
          std::string(options_.tls_available ? " STARTTLS" : ""));
  } else if (iequals(verb, "STARTTLS")) {
    if (!options_.tls_available) return error_reply("502 5.5.1 Error: command not implemented");
    if (tls_active_) return error_reply("503 5.5.1 Error: TLS already active");
    if (!arg.empty()) return error_reply("501 5.5.4 Syntax: STARTTLS");
    reply("220 2.0.0 Ready to start TLS");
    // Anything pipelined behind STARTTLS is plaintext injection: dropped.
    input_.clear();
    input_pos_ = 0;
    state_ = State::WaitingForTls;
  } else {
    error_reply("500 5.5.1 Error: command not recognized");
  }
}

void SmtpSession::cmd_ehlo(std::string_view arg, bool extended) {
  if (arg.empty()) return error_reply(extended ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
  reset_transaction();
  greeted_ = true;
  esmtp_ = extended;
  envelope_.helo = std::string(arg);
  if (!extended) return reply("250 " + options_.hostname);
  std::string r = "250-" + options_.hostname + "\r\n";
  r += "250-SIZE " + std::to_string(options_.max_message_bytes) + "\r\n";
  r += "250-8BITMIME\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n";
  if (options_.tls_available && !tls_active_) r += "250-STARTTLS\r\n";
  r += "250 SMTPUTF8";
  reply(r);
}

void SmtpSession::cmd_mail(std::string_view arg) {
  if (!greeted_) return error_reply("503 5.5.1 Error: send HELO/EHLO first");
  if (in_transaction_) return error_reply("503 5.5.1 Error: nested MAIL command");
  if (!istarts_with(arg, "FROM:")) return error_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
  std::string_view path, params;
  if (!split_path(arg.substr(5), path, params)) return error_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
  if (!params.empty() && !esmtp_) return error_reply("555 5.5.4 Error: parameters need EHLO");

  bool utf8 = false, eight_bit = false;
  std::string bad;
  std::string too_big;
  for_each_param(params, [&](std::string_view p) {
    if (!bad.empty() || !too_big.empty()) return;
    auto eq = p.find('=');
    std::string_view key = p.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : p.substr(eq + 1);
    if (iequals(key, "SIZE") && eq != std::string_view::npos) {
      std::uint64_t size = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), size);
      if (ec == std::errc::result_out_of_range) {
        too_big = "1";
      } else if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
        bad = "501 5.5.4 Bad SIZE parameter";
      } else if (size > options_.max_message_bytes) {
        too_big = "1";
      }
    } else if (iequals(key, "BODY") && eq != std::string_view::npos) {
      if (iequals(value, "8BITMIME")) {
        eight_bit = true;
      } else if (!iequals(value, "7BIT")) {
        bad = "501 5.5.4 Bad BODY parameter";
      }
    } else if (iequals(key, "SMTPUTF8") && eq == std::string_view::npos) {
      utf8 = true;
    } else {
      bad = "555 5.5.4 Unsupported option: " + std::string(p);
    }
  });
  if (!bad.empty()) return error_reply(bad);
  if (!too_big.empty()) {
    return reply("552 5.3.4 Error: message size exceeds fixed limit of " +
                 std::to_string(options_.max_message_bytes) + " bytes");
  }
  if (!path.empty() && !smtp_address_valid(path, utf8)) return error_reply("501 5.1.7 Bad sender address syntax");
  in_transaction_ = true;
  envelope_.mail_from = std::string(path);
  envelope_.smtputf8 = utf8;
  envelope_.eight_bit = eight_bit;
  reply("250 2.1.0 Ok");
}

void SmtpSession::cmd_rcpt(std::string_view arg) {
  if (!in_transaction_) return error_reply("503 5.5.1 Error: need MAIL command");
  if (!istarts_with(arg, "TO:")) return error_reply("501 5.5.4 Syntax: RCPT TO:<address>");
  std::string_view path, params;
  if (!split_path(arg.substr(3), path, params)) return error_reply("501 5.5.4 Syntax: RCPT TO:<address>");
  if (!params.empty()) return error_reply("555 5.5.4 Unsupported option: " + std::string(params));
  if (path.empty() || !smtp_address_valid(path, envelope_.smtputf8))
    return error_reply("501 5.1.3 Bad recipient address syntax");
  if (envelope_.recipients.size() >= static_cast<std::size_t>(std::max(options_.max_recipients, 0)))
    return reply("452 4.5.3 Error: too many recipients");
  envelope_.recipients.emplace_back(path);
  reply("250 2.1.5 Ok");
}

void SmtpSession::cmd_data(std::string_view arg) {
  if (!arg.empty()) return error_reply("501 5.5.4 Syntax: DATA");
  if (!in_transaction_) return error_reply("503 5.5.1 Error: need MAIL command");
  if (envelope_.recipients.empty()) return error_reply("503 5.5.1 Error: need RCPT command");
  reply("354 End data with <CR><LF>.<CR><LF>");
  state_ = State::Data;
  message_.clear();
  message_bytes_ = 0;
  previous_line_crlf_ = true;
}

}  // namespace mukaika
