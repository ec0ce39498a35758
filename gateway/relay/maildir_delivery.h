// MaildirDelivery: when no next hop is configured, a local Maildir stands
// in for the LGWAN-side mail server (development, demos, tests).
//
// Promises:
//  - The constructor creates <dir>/tmp, new and cur (and <dir> itself) or
//    throws MaildirError naming the path and the system's reason.
//  - deliver() writes one copy per recipient, with "Delivered-To: <rcpt>"
//    prepended, the Maildir way: a unique name, written in tmp/, fsync'd,
//    renamed into new/, new/ fsync'd. A file in new/ is always complete and
//    durable; a failed write leaves nothing in new/ (nor in tmp/).
//  - A full disk or any I/O error is a temporary result for that recipient
//    (451 4.3.0 with the errno text), never an exception.
//  - The message bytes are kept as they are (CRLF line ends included).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "mta_types.h"

namespace mukaika {

class MaildirError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class MaildirDelivery : public Delivery {
 public:
  explicit MaildirDelivery(std::filesystem::path dir = "./var/lgwan-maildir");

  std::vector<RecipientResult> deliver(const Envelope& envelope, const std::vector<std::string>& recipients,
                                       const std::string& message) override;
  std::string describe() const override;  // "maildir <dir>"

  const std::filesystem::path& directory() const { return dir_; }

 private:
  SmtpReply deliver_one(const std::string& recipient, const std::string& message);
  std::string unique_name();

  std::filesystem::path dir_;
  std::string hostname_;
};

}  // namespace mukaika
