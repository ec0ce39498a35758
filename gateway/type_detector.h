// TypeDetector: what an item really is, from its bytes.
//
// libmagic reads the bytes; the declared MIME type and the file name are
// evidence that can only make the verdict stricter, never laxer: a file
// named ".js" that libmagic calls text is a script; an executable named
// ".pdf" is a disguise and is blocked. One detector per thread (a magic_t
// is not thread-safe).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sanitizer.h"

namespace mukaika {

struct TypeVerdict {
  std::string detected_type;  // MIME type from libmagic (or our mail sniff)
  Kind kind = Kind::Unknown;
  // Set when the name or declared type claims something the bytes are not,
  // in a way that matters (an executable posing as a document).
  bool disguised = false;
  std::string claimed;        // what the name/declared type claimed, for the reason
};

// Kind implied by a MIME type alone (no bytes), Unknown when it says nothing.
Kind kind_from_mime(std::string_view mime);
// Kind implied by a file name's extension, Unknown when it says nothing.
Kind kind_from_extension(std::string_view name);
// Lower-case extension without the dot ("" when none).
std::string extension_of(std::string_view name);
// Heuristic for RFC 5322 messages and mboxes that libmagic calls text/plain.
bool looks_like_mail(std::string_view bytes);

class TypeDetector {
 public:
  // Throws std::runtime_error when libmagic's database cannot be loaded.
  TypeDetector();
  ~TypeDetector();
  TypeDetector(const TypeDetector&) = delete;
  TypeDetector& operator=(const TypeDetector&) = delete;

  // MIME type libmagic gives for the bytes.
  std::string mime_of(std::string_view bytes);
  TypeVerdict classify(std::string_view bytes, std::string_view name, std::string_view declared_type);

 private:
  struct Magic;
  std::unique_ptr<Magic> magic_;
};

}  // namespace mukaika
