// mail.rebuild: an RFC 5322 message, however broken, becomes a new, simple
// message built from sanitized parts; the original tree is never edited.
//
// Promises: the output has only the headers people need (From, To, Cc,
// Reply-To, Subject, Date, Message-ID, In-Reply-To, References), re-encoded
// as UTF-8; one text/plain UTF-8 body that starts with a notice of what was
// converted, removed or blocked; the sanitized attachments; nested
// message/rfc822 parts flattened (their headers and text quoted in the body,
// their attachments sanitized like top-level ones); an X-Mukaika-Sanitized
// summary and the original's SHA-256. If the body text itself is infected or
// blocked, the whole message is blocked.
#pragma once

#include <memory>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

std::unique_ptr<Sanitizer> make_mail_rebuild(const toml::table& options);

}  // namespace mukaika
