#include "worker/worker_protocol.h"

#include "ipc/codec.h"
#include "mime/charset.h"

namespace mukaika::worker {

namespace {

using ipc::ProtocolError;

// Generous bounds for text fields; the point is that a hostile worker cannot
// make the supervisor allocate or log without limit.
constexpr std::uint64_t kMaxShortText = 4096;     // names, types, codes
constexpr std::uint64_t kMaxPathText = 64 * 1024;  // item paths
constexpr std::uint64_t kMaxReasonText = 64 * 1024;
constexpr std::uint32_t kMaxMissing = 32;

std::string text(ipc::Reader& r, std::uint64_t max, const char* field) {
  std::string s = r.str(max);
  if (!charset::is_valid_utf8(s)) throw ProtocolError(std::string(field) + " is not valid UTF-8");
  return s;
}

template <typename E>
E enum_value(ipc::Reader& r, E last, const char* field) {
  std::uint8_t v = r.u8();
  if (v > static_cast<std::uint8_t>(last)) throw ProtocolError(std::string(field) + " out of range: " + std::to_string(v));
  return static_cast<E>(v);
}

Kind kind_value(ipc::Reader& r) {
  std::uint8_t v = r.u8();
  if (v > static_cast<std::uint8_t>(Kind::Unknown)) throw ProtocolError("kind out of range: " + std::to_string(v));
  return static_cast<Kind>(v);
}

void put_text(ipc::Writer& w, std::string_view s) { w.str(repair_utf8(s)); }

}  // namespace

std::string repair_utf8(std::string_view s) {
  if (charset::is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len > 0 && i + len <= s.size() && charset::is_valid_utf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string encode_hello(const Hello& hello) {
  ipc::Writer w;
  w.u32(hello.version);
  w.u32(hello.sandbox.layers);
  w.u32(static_cast<std::uint32_t>(hello.sandbox.landlock_abi));
  w.u32(static_cast<std::uint32_t>(hello.sandbox.uid));
  w.u32(static_cast<std::uint32_t>(hello.sandbox.missing.size()));
  for (const auto& m : hello.sandbox.missing) put_text(w, m.substr(0, kMaxReasonText));
  return w.take();
}

Hello decode_hello(std::string_view payload) {
  ipc::Reader r(payload);
  Hello h;
  h.version = r.u32();
  if (h.version != kProtocolVersion)
    throw ProtocolError("worker speaks protocol version " + std::to_string(h.version) + ", expected " +
                        std::to_string(kProtocolVersion));
  h.sandbox.layers = r.u32();
  h.sandbox.landlock_abi = static_cast<int>(r.u32());
  h.sandbox.uid = static_cast<uid_t>(r.u32());
  std::uint32_t n = r.u32();
  if (n > kMaxMissing) throw ProtocolError("too many sandbox notes: " + std::to_string(n));
  for (std::uint32_t i = 0; i < n; ++i) h.sandbox.missing.push_back(text(r, kMaxReasonText, "sandbox note"));
  r.finish();
  return h;
}

std::string encode_request(const Item& item) {
  ipc::Writer w;
  w.u32(kProtocolVersion);
  w.u32(item.passphrases.empty() ? 0 : kRequestPassphrases);
  w.str(item.name);
  w.str(item.declared_type);
  w.str(item.charset);
  w.str(item.path);
  w.u8(static_cast<std::uint8_t>(item.role));
  w.str(item.bytes);
  if (!item.passphrases.empty()) {
    w.u32(static_cast<std::uint32_t>(item.passphrases.size()));
    for (const auto& p : item.passphrases) w.str(p);
  }
  return w.take();
}

Item decode_request(std::string_view payload, std::uint64_t max_item_bytes) {
  ipc::Reader r(payload);
  std::uint32_t version = r.u32();
  if (version != kProtocolVersion) throw ProtocolError("request of protocol version " + std::to_string(version));
  std::uint32_t flags = r.u32();
  if ((flags & ~kRequestPassphrases) != 0) throw ProtocolError("unknown request flags " + std::to_string(flags));
  Item item;
  // The supervisor is trusted, but the request still says nothing the worker
  // takes on faith beyond its length limits.
  item.name = r.str(kMaxPathText);
  item.declared_type = r.str(kMaxShortText);
  item.charset = r.str(kMaxShortText);
  item.path = r.str(kMaxPathText);
  item.role = enum_value(r, Role::Body, "role");
  item.bytes = r.str(max_item_bytes);
  if (flags & kRequestPassphrases) {
    const std::uint32_t n = r.u32();
    if (n == 0 || n > kMaxPassphrases) throw ProtocolError("request with " + std::to_string(n) + " passphrases");
    for (std::uint32_t i = 0; i < n; ++i) item.passphrases.push_back(r.str(kMaxPassphraseBytes));
  }
  r.finish();
  return item;
}

std::string encode_reply(const PipelineResult& result) {
  ipc::Writer w;
  w.u8(static_cast<std::uint8_t>(result.verdict));
  const ItemResult& it = result.item;
  w.u8(static_cast<std::uint8_t>(it.verdict));
  w.u8(static_cast<std::uint8_t>(it.role));
  put_text(w, it.input_name);
  put_text(w, it.path);
  put_text(w, it.detected_type);
  w.u8(static_cast<std::uint8_t>(it.kind));
  w.str(result.verdict == PipelineResult::Verdict::Blocked ? std::string_view() : std::string_view(it.bytes));
  put_text(w, it.type);
  put_text(w, it.name);
  put_text(w, it.charset);
  put_text(w, it.reason.code);
  put_text(w, it.reason.ja);
  put_text(w, it.reason.en);
  put_text(w, it.virus);
  put_text(w, result.detected_type);
  w.u8(static_cast<std::uint8_t>(result.kind));
  w.u64(result.actions.size());
  for (const auto& a : result.actions) {
    put_text(w, a.path);
    put_text(w, a.action);
    put_text(w, a.code);
    put_text(w, a.reason);
    put_text(w, a.virus);
  }
  put_text(w, result.mail_subject);
  put_text(w, result.mail_from);
  return w.take();
}

PipelineResult decode_reply(std::string_view payload, const ReplyLimits& limits) {
  ipc::Reader r(payload);
  PipelineResult out;
  out.verdict = enum_value(r, PipelineResult::Verdict::Blocked, "verdict");
  ItemResult& it = out.item;
  it.verdict = enum_value(r, ItemResult::Verdict::Blocked, "item verdict");
  it.role = enum_value(r, Role::Body, "role");
  it.input_name = text(r, kMaxShortText, "input name");
  it.path = text(r, kMaxPathText, "path");
  it.detected_type = text(r, kMaxShortText, "detected type");
  it.kind = kind_value(r);
  it.bytes = r.str(limits.max_output_bytes);
  it.type = text(r, kMaxShortText, "output type");
  it.name = text(r, kMaxShortText, "output name");
  it.charset = text(r, kMaxShortText, "charset");
  it.reason.code = text(r, kMaxShortText, "reason code");
  it.reason.ja = text(r, kMaxReasonText, "reason");
  it.reason.en = text(r, kMaxReasonText, "reason");
  it.virus = text(r, kMaxShortText, "virus name");
  out.detected_type = text(r, kMaxShortText, "detected type");
  out.kind = kind_value(r);
  std::uint64_t n = r.u64();
  if (n > limits.max_actions) throw ProtocolError("reply carries " + std::to_string(n) + " action records, more than " +
                                                  std::to_string(limits.max_actions));
  out.actions.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) {
    ActionRecord a;
    a.path = text(r, kMaxPathText, "action path");
    a.action = text(r, kMaxShortText, "action");
    a.code = text(r, kMaxShortText, "action code");
    a.reason = text(r, kMaxReasonText, "action reason");
    a.virus = text(r, kMaxShortText, "action virus name");
    out.actions.push_back(std::move(a));
  }
  out.mail_subject = text(r, kMaxReasonText, "mail subject");
  out.mail_from = text(r, kMaxReasonText, "mail from");
  r.finish();
  // Consistency: what is not delivered carries no bytes, and the top-level
  // verdict follows the item's (Pipeline::run).
  const bool delivered = out.verdict != PipelineResult::Verdict::Blocked;
  if (!delivered && !it.bytes.empty()) throw ProtocolError("a blocked result carries output bytes");
  if (delivered != it.delivered()) throw ProtocolError("top-level verdict contradicts the item's verdict");
  if (delivered && it.name.empty()) throw ProtocolError("a delivered result has no output name");
  if (out.actions.empty()) throw ProtocolError("reply has no action record");
  return out;
}

}  // namespace mukaika::worker
