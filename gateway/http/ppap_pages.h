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
};

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
std::string mail_password(Lang t, const std::string& who, const std::string& csrf, const MailPpapView& mail,
                          const PpapMessage& message);

}  // namespace mukaika::http::pages
