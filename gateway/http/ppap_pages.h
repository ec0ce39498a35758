// The PPAP pages (LGWAN side): a held file's or mail's password form. The
// password typed is never written back into a page (no value attribute, no
// echo in messages); autocomplete is off so browsers do not keep it.
#pragma once

#include <string>
#include <vector>

#include "http/drop_box.h"
#include "http/pages.h"
#include "http/ppap_mail.h"

namespace mukaika::http::pages {

// What to say above the form after an attempt ("" for none).
struct PpapMessage {
  std::string error;   // wrong password, locked, busy, ...
  std::string notice;  // opened, delivered
  int fields = 1;      // password fields the form shows (1..kMaxPasswords)
};
// Passwords one attempt may carry (the worker request's limit), and their
// length.
inline constexpr int kMaxPasswords = 8;
inline constexpr std::size_t kMaxPasswordBytes = 1024;

std::string file_password(Lang t, const std::string& who, const std::string& csrf, const DropItem& item,
                          int max_attempts, const PpapMessage& message);

struct MailPpapView {
  std::string queue_id;
  std::string mail_from;
  std::string received;
  std::vector<HeldAttachment> held;
  MailPpap::Record record;
  int max_attempts = 0;
};
// A recipient's state of a held mail (MailPpap::state_of) as the inbox and
// the mail page say it.
std::string mail_ppap_state_label(Lang t, const std::string& state);

// The inbox's table of the signed-in recipient's mails with held
// attachments: their state and links to the mail and its password page.
std::string held_mails(Lang t, const std::vector<MailPpap::HeldMail>& mails);

std::string mail_password(Lang t, const std::string& who, const std::string& csrf, const MailPpapView& mail,
                          const PpapMessage& message);

}  // namespace mukaika::http::pages
