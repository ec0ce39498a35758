// Pipeline: one input in, one verdict out.
//
//   limits -> detect type -> scan -> policy chain (keep | replace | expand
//   -> children recurse -> reassemble | remove | block) -> rescan output
//
// Promises: nothing leaves with verdict clean or sanitized unless every part
// of it went through a sanitizer chain and its output was scanned clean. A
// limit, a scanner error, an exception from a sanitizer, a disguised type or
// a container flagged by the scanner where no part could be blamed blocks
// the item (fail closed). Every item, down to archive members, gets an
// action record. One Pipeline per thread (it owns a libmagic handle); the
// Policy and Scanner it refers to are shared read-only.
#pragma once

#include <string>
#include <vector>

#include "policy.h"
#include "sanitizer.h"
#include "type_detector.h"

namespace mukaika {

struct ActionRecord {
  std::string path;
  std::string action;  // keep, convert, remove, block, note
  std::string code;    // stable reason code
  std::string reason;  // in the configured language
  std::string virus;   // signature name when the scanner found one
};

struct PipelineResult {
  enum class Verdict { Clean, Sanitized, Blocked };
  Verdict verdict = Verdict::Blocked;
  ItemResult item;                    // the top-level result (output bytes, name, type)
  std::vector<ActionRecord> actions;  // everything that happened, in order
  std::string sha256_in;
  std::string sha256_out;             // empty when blocked
  std::string detected_type;
  Kind kind = Kind::Unknown;
  // A mail's decoded Subject and From (ReportSink::describe_mail), for
  // notices; empty for anything else.
  std::string mail_subject, mail_from;
};

std::string_view to_string(PipelineResult::Verdict v);

class Pipeline {
 public:
  Pipeline(const Policy& policy, const Scanner& scanner, const Limits& limits, Language language);

  // `input.name` is the input's file name (made safe here), `input.path`
  // what to call it in the report. Never throws for anything the input
  // contains; std::bad_alloc and the like propagate.
  PipelineResult run(Item input);

 private:
  struct Run;
  ItemResult process(Item item, Run& run);

  const Policy& policy_;
  const Scanner& scanner_;
  const Limits& limits_;
  Language language_;
  TypeDetector detector_;
};

}  // namespace mukaika
