// The sanitizer plug-in interface.
//
// A sanitizer takes one item (bytes plus what is known about them) and says
// what becomes of it: keep it, replace it with new bytes, expand it into
// children that the pipeline sanitizes one by one (and then hands back for
// reassembly), remove it, or block it. Each outcome carries a reason in
// Japanese and English, because every action ends up in the recipient's
// notice and in the audit record.
//
// Verdicts are results, not exceptions: "this attachment is an executable"
// is Outcome::remove(...). An exception thrown out of process() or
// reassemble() means "could not decide"; the pipeline then blocks the item
// (fail closed) and records the exception's message.
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mukaika {

// Bytes are kept in std::string: contiguous, owning, cheap to move.
using Bytes = std::string;

enum class Language { Ja, En };

// Where an item sits: a text part that forms a mail body, or a file
// (attachment, archive member, command-line input, upload).
enum class Role { File, Body };

// What an item is, decided by the pipeline from the bytes (libmagic) with the
// declared type and file name as evidence. Policy is written in these terms.
enum class Kind {
  Empty,
  Text,
  Html,
  Xml,
  Mail,
  Pdf,
  Image,
  Svg,
  Archive,
  Office,        // OOXML: docx, xlsx, pptx and their macro/template forms
  OfficeLegacy,  // OLE2 compound files: doc, xls, ppt
  Rtf,
  OpenDocument,
  Encrypted,     // password-protected documents that cannot be inspected
  Executable,
  Script,
  Shortcut,
  DiskImage,
  Unknown,
};

std::string_view to_string(Kind kind);
// Returns false when `name` is not a kind's name.
bool kind_from_string(std::string_view name, Kind& out);
const std::vector<Kind>& all_kinds();

// Why something happened, for people. `code` is stable (for machines and
// tests); `ja` and `en` are full sentences.
struct Reason {
  std::string code;
  std::string ja;
  std::string en;

  const std::string& text(Language lang) const { return lang == Language::En ? en : ja; }
};

struct Item {
  Bytes bytes;
  std::string name;           // file name as declared (UTF-8, already made safe)
  std::string declared_type;  // MIME type as declared, lower case, no parameters
  std::string charset;        // declared charset of text, lower case, may be empty
  std::string detected_type;  // MIME type from the bytes (set by the pipeline)
  Kind kind = Kind::Unknown;  // set by the pipeline
  Role role = Role::File;
  int depth = 0;              // 0 for a top-level input
  std::string path;           // where it sits, e.g. "mail.eml/請求書.zip/a.txt"
  // PPAP: passwords a recipient typed for this input (top level only; the
  // pipeline moves them into the Context). Never logged, never written.
  std::vector<std::string> passphrases;
};

// What became of a child after the pipeline processed it; handed to
// Sanitizer::reassemble().
struct ItemResult {
  enum class Verdict { Clean, Sanitized, Removed, Blocked };
  Verdict verdict = Verdict::Blocked;
  Role role = Role::File;
  std::string input_name;     // the (safe) name it arrived with
  std::string path;
  std::string detected_type;
  Kind kind = Kind::Unknown;
  Bytes bytes;                // output, when Clean or Sanitized
  std::string type;           // MIME type of the output
  std::string name;           // file name of the output (extension may differ)
  std::string charset;        // charset of a text output ("utf-8"), else empty
  Reason reason;              // why it was converted, removed or blocked
  std::string virus;          // signature name, when the scanner found one
  // Set by a container sanitizer configured to deliver its survivors one by
  // one (archive.flatten with output = "attachments"): where the output can
  // hold several files (a mail), these go instead of `bytes`; where it
  // cannot (a command-line or uploaded file), `bytes` does. Each was
  // processed by the pipeline like any other item. Not sent between worker
  // and supervisor: only the mail that uses them sees them.
  std::vector<ItemResult> parts;

  bool delivered() const { return verdict == Verdict::Clean || verdict == Verdict::Sanitized; }
};

class Outcome {
 public:
  enum class Action { Keep, Replace, Expand, Remove, Block };

  static Outcome keep(Reason reason = {});
  // New bytes. `cosmetic` marks a change that does not alter what a person
  // sees (charset or line-ending normalisation): the verdict stays "clean".
  static Outcome replace(Bytes bytes, std::string type, std::string name, Reason reason,
                         bool cosmetic = false);
  // Children to sanitize first. `state` is handed back to reassemble().
  static Outcome expand(std::vector<Item> children, std::any state, Reason reason = {});
  static Outcome remove(Reason reason);
  static Outcome block(Reason reason);

  Action action = Action::Block;
  Reason reason;
  Bytes bytes;
  std::string type;
  std::string name;
  std::string charset;  // optional, for text outputs
  bool cosmetic = false;
  std::vector<Item> children;
  std::any state;
  std::vector<ItemResult> parts;  // with Replace: see ItemResult::parts
};

// Answer of the antivirus engine. Error means "could not scan": fail closed.
struct ScanResult {
  enum class Status { Clean, Infected, Error };
  Status status = Status::Error;
  std::string detail;  // signature name, or what went wrong
};

class Scanner {
 public:
  virtual ~Scanner() = default;
  // Must be safe to call from several threads at once.
  virtual ScanResult scan(std::string_view bytes, std::string_view name) const = 0;
};

struct Limits {
  std::uint64_t max_item_bytes = 50ull << 20;    // any single item or output
  std::uint64_t max_total_bytes = 200ull << 20;  // everything expanded from one input
  int max_depth = 8;                             // nesting of containers
  int max_parts = 500;                           // items expanded from one input
  std::chrono::seconds max_seconds{120};         // wall clock for one input
  std::uint64_t max_text_bytes = 10ull << 20;    // converted text of one item
  int max_name_chars = 120;                      // file names, in characters
};

// Extra detail a sanitizer wants in the audit trail (beyond the one action
// the pipeline records per item), e.g. "S/MIME signature dropped".
class ReportSink {
 public:
  virtual ~ReportSink() = default;
  virtual void note(const std::string& path, const std::string& action, const Reason& reason) = 0;
  // A mail's decoded Subject and From (UTF-8), for the notices people get
  // about it when it is blocked. Only the top-level mail's are kept.
  virtual void describe_mail(const std::string& path, const std::string& subject, const std::string& from) {
    (void)path, (void)subject, (void)from;
  }
};

struct Context {
  const Limits& limits;
  const Scanner& scanner;
  ReportSink& report;
  Language language = Language::Ja;
  std::chrono::steady_clock::time_point deadline;
  // PPAP: passwords to try on encrypted archives and PDFs anywhere in this
  // input (Item::passphrases of the top-level item). Empty: none given.
  std::vector<std::string> passphrases = {};

  bool past_deadline() const { return std::chrono::steady_clock::now() > deadline; }
};

class Sanitizer {
 public:
  virtual ~Sanitizer() = default;
  virtual std::string_view name() const = 0;
  // The kinds this sanitizer accepts; configuration that maps another kind to
  // it is refused at start-up.
  virtual std::vector<Kind> handles() const = 0;
  virtual Outcome process(const Item& item, Context& ctx) const = 0;
  // Called after the children of an Expand outcome went through the
  // pipeline; returns Replace, Remove or Block. The default blocks, so a
  // sanitizer that expands must override it.
  virtual Outcome reassemble(const Item& item, std::any& state, std::vector<ItemResult>& children,
                             Context& ctx) const;
};

}  // namespace mukaika
