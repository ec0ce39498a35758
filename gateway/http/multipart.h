// Streaming multipart/form-data (RFC 7578, RFC 2046 section 5.1) for the
// HTTP drop box, and the file names that come with uploads.
//
// Promises:
// - MultipartParser never holds an upload whole: it keeps at most one
//   boundary's worth of body bytes (plus one part's headers, bounded by
//   Limits) between feed() calls, whatever the chunk sizes, 1 byte included.
// - Bad input never throws and never crashes: the parser stops at the first
//   error, reports it as a MultipartError (English and Japanese texts via
//   error_text()), and ignores every later byte.
// - A part is whole only when on_part_end() is called for it. An upload cut
//   off mid-way (no closing "--boundary--") ends with finish() == false and
//   error() == Truncated; the open part gets no on_part_end().
// - Line ends: the delimiters between parts must be CRLF, as RFC 2046 says
//   (a bare LF before "--boundary" is part of the data, or the bytes of a
//   file would change). Inside a part's header block a bare LF is accepted
//   as a line end, for hand-written clients; that cannot alter any data.
// - Names in Content-Disposition are kept as sent (browsers send UTF-8 and
//   escape '"' as %22, which is not undone); filename*=UTF-8''... (RFC 5987)
//   wins over filename="...". They are hostile: pass them through
//   safe_upload_name() before showing or storing them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mukaika::http {

// The boundary parameter of a "multipart/form-data; boundary=..." header,
// quoted or not, parameter name in any case. nullopt when the media type is
// not multipart/form-data or the boundary is missing, empty, longer than 70
// characters or contains characters RFC 2046 does not allow.
std::optional<std::string> boundary_from_content_type(std::string_view content_type);

struct PartHeaders {
  std::string name;                     // the form field
  std::optional<std::string> filename;  // set for file parts (may be empty: no file chosen)
  std::string content_type;             // as sent; empty when absent (RFC 7578: text/plain)

  bool is_file() const { return filename.has_value(); }
};

// Receives the parts in order: begin, data (any number of pieces), end.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual void on_part_begin(const PartHeaders& part) = 0;
  virtual void on_part_data(std::string_view bytes) = 0;
  virtual void on_part_end() = 0;
};

enum class MultipartError : std::uint8_t {
  None,
  BadBoundary,                // the boundary given to the parser is not a valid one
  MalformedBoundaryLine,      // "--boundary" followed by something other than "--" or a line end
  HeaderTooLarge,             // a part's header block is over Limits::max_header_bytes
  TooManyHeaderLines,         // over Limits::max_header_lines
  MalformedHeader,            // a header line without ':' or an unparsable Content-Disposition
  MissingContentDisposition,  // a part without Content-Disposition
  NotFormData,                // Content-Disposition other than form-data
  MissingName,                // form-data without name=
  DuplicateHeader,            // two Content-Disposition or Content-Type headers, or a repeated parameter
  TooManyParts,               // over Limits::max_parts
  FieldsTooLarge,             // non-file fields together over Limits::max_field_bytes
  Truncated,                  // input ended before the closing boundary
  HandlerFailed,              // a handler callback threw (the exception is passed on)
};

struct ErrorText {
  std::string_view en;
  std::string_view ja;
};
ErrorText error_text(MultipartError error);

class MultipartParser {
 public:
  struct Limits {
    std::size_t max_parts = 1000;
    std::size_t max_header_bytes = 8 * 1024;  // per part, line ends included
    std::size_t max_header_lines = 32;        // per part
    std::size_t max_field_bytes = 1024 * 1024;  // all non-file parts' data together
    // File sizes are the handler's to limit (it sees every byte). A part
    // with filename="" counts as a file: a file input with nothing chosen.
  };

  // An invalid boundary leaves the parser failed with BadBoundary.
  MultipartParser(std::string_view boundary, MultipartHandler& handler);
  MultipartParser(std::string_view boundary, MultipartHandler& handler, Limits limits);

  // Any split of the body is fine. Ignored once failed, complete or finished.
  // Only a throwing handler makes feed() throw; the parser is then failed.
  void feed(std::string_view chunk);

  // End of input. True when the closing boundary was seen and nothing failed;
  // otherwise error() says why (Truncated when the body just stopped).
  bool finish();

  bool complete() const { return state_ == State::Done; }
  bool failed() const { return error_ != MultipartError::None; }
  MultipartError error() const { return error_; }
  std::size_t parts() const { return parts_; }

 private:
  enum class State : std::uint8_t { Preamble, AfterDelimiter, Headers, Body, Done, Failed };

  void run();
  bool after_delimiter();
  bool headers();
  bool body();
  bool header_line(std::string_view line);
  bool begin_part();
  void fail(MultipartError error);
  bool emit(std::string_view bytes);

  MultipartHandler& handler_;
  Limits limits_;
  std::string delimiter_;  // "\r\n--" + boundary
  std::string buffer_;     // bytes not yet handled
  State state_ = State::Preamble;
  MultipartError error_ = MultipartError::None;
  bool in_part_ = false;
  bool finished_ = false;
  std::size_t parts_ = 0;
  std::size_t field_bytes_ = 0;
  // The part whose headers are being read.
  std::size_t header_bytes_ = 0;
  std::size_t header_lines_ = 0;
  std::optional<std::string> disposition_;
  std::optional<std::string> content_type_;
  std::string last_header_;  // for obsolete folded lines
  PartHeaders part_;
};

// A client's file name made safe to show and to store: the last path
// component ('/' and '\'), no control characters or NUL, no bidi overrides
// or other invisible characters, no leading dots or spaces, no trailing dots
// or spaces, invalid UTF-8 replaced by U+FFFD, no Windows-reserved
// characters or device names, at most 255 bytes cut at a character boundary
// with the extension kept; "file" when nothing is left. The rules are
// safe_file_name()'s (sanitizers/file_name.h), the same as for attachments.
std::string safe_upload_name(std::string_view raw);

// A Content-Disposition value for a download (RFC 6266, RFC 5987):
//   attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>
// The fallback replaces non-ASCII bytes, controls, '"', '\' and '%' with '_'
// and keeps the extension. Pass a name from safe_upload_name().
std::string content_disposition_attachment(std::string_view utf8_name);

}  // namespace mukaika::http
