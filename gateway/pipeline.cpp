#include "pipeline.h"

#include <exception>

#include "digest.h"
#include "file_name.h"

namespace mukaika {

namespace {

bool is_container(Kind k) { return k == Kind::Mail || k == Kind::Archive; }

}  // namespace

std::string_view to_string(PipelineResult::Verdict v) {
  switch (v) {
    case PipelineResult::Verdict::Clean:
      return "clean";
    case PipelineResult::Verdict::Sanitized:
      return "sanitized";
    case PipelineResult::Verdict::Blocked:
      break;
  }
  return "blocked";
}

// Per-input state: budgets, the audit trail and the Context sanitizers see.
struct Pipeline::Run : ReportSink {
  Run(const Pipeline& p)
      : pipeline(p),
        ctx{p.limits_, p.scanner_, *this, p.language_, std::chrono::steady_clock::now() + p.limits_.max_seconds} {}

  void note(const std::string& path, const std::string& action, const Reason& reason) override {
    actions.push_back({path, action, reason.code, reason.text(pipeline.language_), {}});
  }
  void describe_mail(const std::string& path, const std::string& subject, const std::string& from) override {
    if (path != top_path || described) return;
    described = true;
    mail_subject = subject;
    mail_from = from;
  }
  void record(const std::string& path, const char* action, const Reason& reason, const std::string& virus = {}) {
    actions.push_back({path, action, reason.code, reason.text(pipeline.language_), virus});
  }

  const Pipeline& pipeline;
  Context ctx;
  std::vector<ActionRecord> actions;
  int parts = 0;
  std::uint64_t total_bytes = 0;
  int infected_found = 0;  // items the scanner flagged, anywhere below
  std::string top_path;    // the input's path: describe_mail() counts there only
  bool described = false;
  std::string mail_subject, mail_from;
};

Pipeline::Pipeline(const Policy& policy, const Scanner& scanner, const Limits& limits, Language language)
    : policy_(policy), scanner_(scanner), limits_(limits), language_(language) {}

PipelineResult Pipeline::run(Item input) {
  Run run(*this);
  PipelineResult out;
  out.sha256_in = sha256_hex(input.bytes);
  input.name = safe_file_name(input.name, static_cast<std::size_t>(limits_.max_name_chars), "input");
  if (input.path.empty()) input.path = input.name;
  input.depth = 0;
  run.top_path = input.path;
  run.ctx.passphrases = std::move(input.passphrases);
  input.passphrases.clear();
  out.item = process(std::move(input), run);
  wipe_passphrases(run.ctx.passphrases);
  out.mail_subject = std::move(run.mail_subject);
  out.mail_from = std::move(run.mail_from);
  out.detected_type = out.item.detected_type;
  out.kind = out.item.kind;
  out.actions = std::move(run.actions);
  switch (out.item.verdict) {
    case ItemResult::Verdict::Clean:
      out.verdict = PipelineResult::Verdict::Clean;
      break;
    case ItemResult::Verdict::Sanitized:
      out.verdict = PipelineResult::Verdict::Sanitized;
      break;
    default:
      // A top-level input that policy removes writes nothing: for the caller
      // that is a block.
      out.verdict = PipelineResult::Verdict::Blocked;
  }
  if (out.verdict != PipelineResult::Verdict::Blocked) out.sha256_out = sha256_hex(out.item.bytes);
  return out;
}

ItemResult Pipeline::process(Item item, Run& run) {
  ItemResult r;
  r.role = item.role;
  r.input_name = item.name;
  r.path = item.path;
  r.name = item.name;

  auto finish = [&](ItemResult::Verdict v, Reason reason, const char* action) {
    r.verdict = v;
    r.reason = std::move(reason);
    if (v == ItemResult::Verdict::Removed || v == ItemResult::Verdict::Blocked) r.bytes.clear();
    run.record(r.path, action, r.reason, r.virus);
    return r;
  };
  auto block = [&](Reason reason) { return finish(ItemResult::Verdict::Blocked, std::move(reason), "block"); };

  // Limits first: nothing is parsed that is over them.
  if (item.depth > 0) {
    ++run.parts;
    run.total_bytes += item.bytes.size();
    if (run.parts > limits_.max_parts)
      return block({"limits.parts", "部品の数が上限 (" + std::to_string(limits_.max_parts) + ") を超えたため遮断しました",
                    "blocked: more than " + std::to_string(limits_.max_parts) + " parts"});
    if (run.total_bytes > limits_.max_total_bytes)
      return block({"limits.total_bytes", "展開後の合計サイズが上限 (" + std::to_string(limits_.max_total_bytes) + " バイト) を超えたため遮断しました",
                    "blocked: expanded content exceeds " + std::to_string(limits_.max_total_bytes) + " bytes"});
  }
  if (item.depth > limits_.max_depth)
    return block({"limits.depth", "入れ子が深すぎる (上限 " + std::to_string(limits_.max_depth) + ") ため遮断しました",
                  "blocked: nested deeper than " + std::to_string(limits_.max_depth)});
  if (item.bytes.size() > limits_.max_item_bytes)
    return block({"limits.item_bytes", "サイズが上限 (" + std::to_string(limits_.max_item_bytes) + " バイト) を超えたため遮断しました",
                  "blocked: larger than " + std::to_string(limits_.max_item_bytes) + " bytes"});
  if (run.ctx.past_deadline())
    return block({"limits.time", "処理時間の上限 (" + std::to_string(limits_.max_seconds.count()) + " 秒) を超えたため遮断しました",
                  "blocked: processing took longer than " + std::to_string(limits_.max_seconds.count()) + " seconds"});

  TypeVerdict type = detector_.classify(item.bytes, item.name, item.declared_type);
  item.detected_type = type.detected_type;
  item.kind = type.kind;
  r.detected_type = type.detected_type;
  r.kind = type.kind;
  r.type = type.detected_type;

  if (item.bytes.empty()) {
    r.verdict = ItemResult::Verdict::Clean;
    run.record(r.path, "keep", {"empty", "空のファイルのためそのまま残しました", "kept: empty file"});
    return r;
  }
  const std::vector<Step>& chain = policy_.chain(item.role, item.kind);

  ScanResult scan = scanner_.scan(item.bytes, item.name);
  if (scan.status == ScanResult::Status::Error)
    return block({"av.error", "ウイルス検査を完了できなかったため遮断しました (" + scan.detail + ")",
                  "blocked: the virus scan could not complete (" + scan.detail + ")"});
  bool flagged_container = false;
  int infected_before = run.infected_found;
  if (scan.status == ScanResult::Status::Infected) {
    r.virus = scan.detail;
    ++run.infected_found;
    // A mail or archive is opened so the infected part can be named and the
    // rest delivered; anything else is blocked outright.
    if (is_container(item.kind) && !chain.empty() && chain.front().type == Step::Type::Run) {
      flagged_container = true;
    } else {
      // Both facts matter to the reader: the disguise is what they would
      // have been fooled by, the signature is what the scanner saw.
      if (type.disguised)
        return block({"type.disguised",
                      "名前や申告された種類 (" + type.claimed + ") と中身 (" + std::string(to_string(type.kind)) +
                          ") が一致しない偽装の疑いがあり、ウイルス「" + scan.detail + "」も検出したため遮断しました",
                      "blocked: claims to be " + type.claimed + " but is " + std::string(to_string(type.kind)) +
                          ", and virus \"" + scan.detail + "\" was found"});
      return block({"av.infected", "ウイルス「" + scan.detail + "」を検出したため遮断しました",
                    "blocked: virus \"" + scan.detail + "\" found"});
    }
  }
  // After the scan, so that a disguised executable the scanner also flags is
  // blamed by name (and a container holding it is not blocked as unlocated).
  if (type.disguised)
    return block({"type.disguised",
                  "名前や申告された種類 (" + type.claimed + ") と中身 (" + std::string(to_string(type.kind)) +
                      ", " + type.detected_type + ") が一致しないため、偽装の疑いで遮断しました",
                  "blocked: the name or declared type says " + type.claimed + " but the content is " +
                      std::string(to_string(type.kind)) + " (" + type.detected_type + "), a likely disguise"});


  bool changed = false;
  bool cosmetic_only = true;
  Reason last_reason{"kept", "変更なしでそのまま残しました", "kept unchanged"};
  Item current = item;
  std::vector<ItemResult> parts;  // the last replacing step's, if it split its output

  auto apply_replace = [&](Outcome& o) {
    current.bytes = std::move(o.bytes);
    parts = std::move(o.parts);
    if (!o.type.empty()) current.detected_type = o.type;
    if (!o.name.empty()) current.name = o.name;
    current.charset = o.charset;
    changed = true;
    if (!o.cosmetic) cosmetic_only = false;
    if (!o.reason.code.empty()) last_reason = o.reason;
  };

  for (const Step& step : chain) {
    if (step.type == Step::Type::Remove)
      return finish(ItemResult::Verdict::Removed, Policy::removal_reason(item.kind), "remove");
    if (step.type == Step::Type::Block) return block(Policy::block_reason(item.kind));

    const Sanitizer& s = *step.sanitizer;
    Outcome o;
    try {
      o = s.process(current, run.ctx);
    } catch (const std::exception& e) {
      return block({"internal.error", std::string(s.name()) + " の処理中にエラーが発生したため遮断しました: " + e.what(),
                    "blocked: " + std::string(s.name()) + " failed: " + e.what()});
    }
    if (o.action == Outcome::Action::Expand) {
      std::vector<ItemResult> results;
      results.reserve(o.children.size());
      int index = 0;
      for (Item& child : o.children) {
        ++index;
        child.depth = current.depth + 1;
        if (child.role == Role::File)
          child.name = safe_file_name(child.name, static_cast<std::size_t>(limits_.max_name_chars),
                                      "attachment-" + std::to_string(index));
        // Paths reach reports and notices: each segment gets the same
        // treatment as a file name (no bidi, control or separator tricks).
        std::string label;
        std::string_view raw = child.path.empty() ? std::string_view(child.name) : std::string_view(child.path);
        std::size_t start = 0;
        while (start <= raw.size()) {
          std::size_t slash = raw.find('/', start);
          std::string_view seg = raw.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
          if (!seg.empty())
            label += (label.empty() ? "" : "/") +
                     safe_file_name(seg, static_cast<std::size_t>(limits_.max_name_chars), "part");
          if (slash == std::string_view::npos) break;
          start = slash + 1;
        }
        if (label.empty()) label = "part-" + std::to_string(index);
        child.path = current.path + "/" + label;
        results.push_back(process(std::move(child), run));
      }
      try {
        o = s.reassemble(current, o.state, results, run.ctx);
      } catch (const std::exception& e) {
        return block({"internal.error", std::string(s.name()) + " の組み立て中にエラーが発生したため遮断しました: " + e.what(),
                      "blocked: " + std::string(s.name()) + " failed to reassemble: " + e.what()});
      }
      if (o.action == Outcome::Action::Expand || o.action == Outcome::Action::Keep)
        return block({"internal.reassemble", std::string(s.name()) + " が組み立て結果を返さなかったため遮断しました",
                      "blocked: " + std::string(s.name()) + " returned no reassembled result"});
    }
    switch (o.action) {
      case Outcome::Action::Keep:
        if (!o.reason.code.empty()) last_reason = o.reason;
        break;
      case Outcome::Action::Replace:
        apply_replace(o);
        break;
      case Outcome::Action::Remove:
        return finish(ItemResult::Verdict::Removed, std::move(o.reason), "remove");
      case Outcome::Action::Block:
        return block(std::move(o.reason));
      case Outcome::Action::Expand:
        break;  // handled above
    }
    if (current.bytes.size() > limits_.max_item_bytes)
      return block({"limits.item_bytes", "変換後のサイズが上限を超えたため遮断しました",
                    "blocked: the converted output is larger than the limit"});
  }

  if (flagged_container && run.infected_found == infected_before + 1)
    return block({"av.unlocated", "ウイルス「" + scan.detail + "」を検出しましたが、どの部分かを特定できないため全体を遮断しました",
                  "blocked: virus \"" + scan.detail + "\" found, but no single part could be blamed"});

  if (changed) {
    ScanResult out_scan = scanner_.scan(current.bytes, current.name);
    if (out_scan.status != ScanResult::Status::Clean) {
      r.virus = out_scan.detail;
      return block({"av.output", "無害化後のデータがウイルス検査を通過しなかったため遮断しました (" + out_scan.detail + ")",
                    "blocked: the sanitized output did not pass the virus scan (" + out_scan.detail + ")"});
    }
  }

  r.bytes = std::move(current.bytes);
  r.type = current.detected_type;
  // A converter may lengthen a name (".txt" appended): the limit applies to
  // what leaves, too.
  r.name = item.role == Role::File
               ? safe_file_name(current.name, static_cast<std::size_t>(limits_.max_name_chars), item.name)
               : current.name;
  r.charset = current.charset;
  r.parts = std::move(parts);
  bool sanitized = changed && !cosmetic_only;
  return finish(sanitized ? ItemResult::Verdict::Sanitized : ItemResult::Verdict::Clean, last_reason,
                sanitized ? "convert" : "keep");
}

}  // namespace mukaika
