// Requests, replies and hellos between supervisor and worker: lossless round
// trips, and a decoder that refuses every reply a broken or compromised
// worker could make up.
#include "worker/worker_protocol.h"

#include <gtest/gtest.h>

#include "ipc/codec.h"

namespace mukaika::worker {
namespace {

PipelineResult sample_result() {
  PipelineResult r;
  r.verdict = PipelineResult::Verdict::Sanitized;
  r.item.verdict = ItemResult::Verdict::Sanitized;
  r.item.role = Role::File;
  r.item.input_name = "請求書.eml";
  r.item.path = "請求書.eml";
  r.item.detected_type = "message/rfc822";
  r.item.kind = Kind::Mail;
  r.item.bytes = std::string("From: a\r\n\r\nbody\0\xff", 18);
  r.item.type = "message/rfc822";
  r.item.name = "請求書.eml";
  r.item.charset = "utf-8";
  r.item.reason = {"mail.rebuilt", "作り直しました", "rebuilt"};
  r.detected_type = "message/rfc822";
  r.kind = Kind::Mail;
  r.actions = {{"請求書.eml/a.exe", "remove", "policy.executable", "実行ファイルを削除しました", ""},
               {"請求書.eml/b.zip", "block", "av.infected", "ウイルス", "Eicar-Test-Signature"},
               {"請求書.eml", "convert", "mail.rebuilt", "作り直しました", ""}};
  r.mail_subject = "請求書のご送付";
  r.mail_from = "経理部 <billing@example.com>";
  return r;
}

ReplyLimits limits() { return {1 << 20, 1000}; }

TEST(WorkerProtocol, ReplyRoundTripKeepsEveryField) {
  PipelineResult in = sample_result();
  PipelineResult out = decode_reply(encode_reply(in), limits());
  EXPECT_EQ(out.verdict, in.verdict);
  EXPECT_EQ(out.item.verdict, in.item.verdict);
  EXPECT_EQ(out.item.role, in.item.role);
  EXPECT_EQ(out.item.input_name, in.item.input_name);
  EXPECT_EQ(out.item.path, in.item.path);
  EXPECT_EQ(out.item.detected_type, in.item.detected_type);
  EXPECT_EQ(out.item.kind, in.item.kind);
  EXPECT_EQ(out.item.bytes, in.item.bytes);
  EXPECT_EQ(out.item.type, in.item.type);
  EXPECT_EQ(out.item.name, in.item.name);
  EXPECT_EQ(out.item.charset, in.item.charset);
  EXPECT_EQ(out.item.reason.code, in.item.reason.code);
  EXPECT_EQ(out.item.reason.ja, in.item.reason.ja);
  EXPECT_EQ(out.item.reason.en, in.item.reason.en);
  EXPECT_EQ(out.detected_type, in.detected_type);
  EXPECT_EQ(out.kind, in.kind);
  EXPECT_EQ(out.mail_subject, in.mail_subject);
  EXPECT_EQ(out.mail_from, in.mail_from);
  ASSERT_EQ(out.actions.size(), in.actions.size());
  for (std::size_t i = 0; i < in.actions.size(); ++i) {
    EXPECT_EQ(out.actions[i].path, in.actions[i].path);
    EXPECT_EQ(out.actions[i].action, in.actions[i].action);
    EXPECT_EQ(out.actions[i].code, in.actions[i].code);
    EXPECT_EQ(out.actions[i].reason, in.actions[i].reason);
    EXPECT_EQ(out.actions[i].virus, in.actions[i].virus);
  }
  // Hashes are the supervisor's to compute, never the worker's to claim.
  EXPECT_TRUE(out.sha256_in.empty());
  EXPECT_TRUE(out.sha256_out.empty());
}

TEST(WorkerProtocol, EveryTruncationIsRefused) {
  std::string wire = encode_reply(sample_result());
  for (std::size_t n = 0; n < wire.size(); ++n)
    EXPECT_THROW(decode_reply(std::string_view(wire).substr(0, n), limits()), ipc::ProtocolError) << "prefix " << n;
  EXPECT_THROW(decode_reply(wire + "x", limits()), ipc::ProtocolError);
}

TEST(WorkerProtocol, OutOfRangeEnumsAreRefused) {
  std::string wire = encode_reply(sample_result());
  for (std::size_t at : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    std::string bad = wire;
    bad[at] = '\x09';
    EXPECT_THROW(decode_reply(bad, limits()), ipc::ProtocolError) << "byte " << at;
  }
}

TEST(WorkerProtocol, TextMustBeUtf8) {
  PipelineResult r = sample_result();
  // encode_reply() repairs on the worker side...
  r.actions[0].reason = "bad \xff\xfe bytes";
  PipelineResult out = decode_reply(encode_reply(r), limits());
  EXPECT_EQ(out.actions[0].reason, "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  // ...so only a worker that bypasses it sends invalid text.
  std::string wire = encode_reply(sample_result());
  std::size_t at = wire.find("remove");
  ASSERT_NE(at, std::string::npos);
  wire[at] = '\xff';
  EXPECT_THROW(decode_reply(wire, limits()), ipc::ProtocolError);
}

TEST(WorkerProtocol, BlockedResultsCarryNoBytesAndVerdictsAgree) {
  PipelineResult blocked = sample_result();
  blocked.verdict = PipelineResult::Verdict::Blocked;
  blocked.item.verdict = ItemResult::Verdict::Blocked;
  // encode_reply() drops the bytes of a blocked result...
  EXPECT_TRUE(decode_reply(encode_reply(blocked), limits()).item.bytes.empty());
  // ...a hand-made reply that keeps them is refused.
  ipc::Writer w;
  w.u8(2);  // Blocked
  w.u8(3);  // item Blocked
  w.u8(0);
  for (int i = 0; i < 3; ++i) w.str("x");
  w.u8(0);
  w.str("leaked original");
  for (int i = 0; i < 8; ++i) w.str("x");
  w.u8(0);
  w.u64(1);
  for (int i = 0; i < 5; ++i) w.str("x");
  EXPECT_THROW(decode_reply(w.take(), limits()), ipc::ProtocolError);

  PipelineResult contradiction = sample_result();
  contradiction.item.verdict = ItemResult::Verdict::Removed;  // but top-level says sanitized
  EXPECT_THROW(decode_reply(encode_reply(contradiction), limits()), ipc::ProtocolError);
}

TEST(WorkerProtocol, LimitsOnOutputAndActions) {
  PipelineResult r = sample_result();
  EXPECT_THROW(decode_reply(encode_reply(r), {4, 1000}), ipc::ProtocolError);  // output larger than allowed
  EXPECT_THROW(decode_reply(encode_reply(r), {1 << 20, 2}), ipc::ProtocolError);
  r.actions.clear();
  EXPECT_THROW(decode_reply(encode_reply(r), limits()), ipc::ProtocolError);  // every result has an action
}

TEST(WorkerProtocol, RequestRoundTrip) {
  Item in;
  in.bytes = std::string("\0\x01binary", 8);
  in.name = "a.eml";
  in.declared_type = "message/rfc822";
  in.charset = "iso-2022-jp";
  in.path = "spool/123/a.eml";
  in.role = Role::Body;
  Item out = decode_request(encode_request(in), 100);
  EXPECT_EQ(out.bytes, in.bytes);
  EXPECT_EQ(out.name, in.name);
  EXPECT_EQ(out.declared_type, in.declared_type);
  EXPECT_EQ(out.charset, in.charset);
  EXPECT_EQ(out.path, in.path);
  EXPECT_EQ(out.role, in.role);
  EXPECT_THROW(decode_request(encode_request(in), 7), ipc::ProtocolError);  // larger than the item limit
}

TEST(WorkerProtocol, HelloRoundTrip) {
  Hello h;
  h.sandbox.layers = kLayerSeccomp | kLayerLandlock;
  h.sandbox.landlock_abi = 6;
  h.sandbox.uid = 65534;
  h.sandbox.missing = {"network namespace: unshare: Operation not permitted"};
  Hello out = decode_hello(encode_hello(h));
  EXPECT_EQ(out.sandbox.layers, h.sandbox.layers);
  EXPECT_EQ(out.sandbox.landlock_abi, 6);
  EXPECT_EQ(out.sandbox.uid, 65534u);
  EXPECT_EQ(out.sandbox.missing, h.sandbox.missing);
  std::string wire = encode_hello(h);
  wire[0] = 9;  // another protocol version
  EXPECT_THROW(decode_hello(wire), ipc::ProtocolError);
}

TEST(WorkerProtocol, RepairUtf8) {
  EXPECT_EQ(repair_utf8("日本語 ok"), "日本語 ok");
  EXPECT_EQ(repair_utf8("a\xe6\x97"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // cut-off character
  EXPECT_EQ(repair_utf8("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");     // overlong '/'
  EXPECT_EQ(repair_utf8("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

}  // namespace
}  // namespace mukaika::worker

namespace mukaika::worker {
namespace {

// PPAP: the passwords a recipient typed travel with the request, and only
// with it; a request without them is the same bytes as before.
TEST(WorkerProtocol, RequestCarriesPassphrases) {
  Item item;
  item.name = "見積書.zip";
  item.path = "見積書.zip";
  item.bytes = std::string("PK\3\4\0\xff", 6);
  item.passphrases = {"パスワード", std::string("a\0b", 3)};
  Item back = decode_request(encode_request(item), 1 << 20);
  EXPECT_EQ(back.passphrases, item.passphrases);
  EXPECT_EQ(back.bytes, item.bytes);
  EXPECT_EQ(back.name, item.name);

  item.passphrases.clear();
  const std::string plain = encode_request(item);
  EXPECT_TRUE(decode_request(plain, 1 << 20).passphrases.empty());
  EXPECT_EQ(plain.substr(4, 4), std::string(4, '\0'));  // no flags: what a version-1 peer sends

  // Too many, or too long: refused.
  item.passphrases.assign(kMaxPassphrases + 1, "x");
  EXPECT_THROW(decode_request(encode_request(item), 1 << 20), ipc::ProtocolError);
  item.passphrases = {std::string(kMaxPassphraseBytes + 1, 'x')};
  EXPECT_THROW(decode_request(encode_request(item), 1 << 20), ipc::ProtocolError);
}

}  // namespace
}  // namespace mukaika::worker
