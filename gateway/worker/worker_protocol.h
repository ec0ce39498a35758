// What the supervisor and a worker say to each other, on top of the framing
// in proto/ipc:
//
//   worker -> supervisor  Hello    once, after the sandbox is in force: which
//                                  layers are, and what is missing
//   supervisor -> worker  Request  one item: name, declared type, charset,
//                                  path, role, flags, bytes, and with the
//                                  passphrases flag the PPAP passwords a
//                                  recipient typed (memory only, never logged)
//   worker -> supervisor  Reply    the PipelineResult: verdict, output bytes,
//                                  name, type, detected type, kind, virus,
//                                  every action record
//
// The worker is untrusted once it has read an item, so decode_reply() checks
// everything it takes: enum ranges, lengths, UTF-8 in every text field, a
// blocked result carrying no bytes. The SHA-256 values of the audit record
// are not part of the reply: the supervisor computes them itself from the
// bytes it sent and the bytes it got back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline.h"
#include "worker/sandbox.h"

namespace mukaika::worker {

constexpr std::uint32_t kProtocolVersion = 1;
// Request flag: a list of passphrases follows the bytes (PPAP).
constexpr std::uint32_t kRequestPassphrases = 1;
constexpr std::uint32_t kMaxPassphrases = 8;
constexpr std::uint64_t kMaxPassphraseBytes = 1024;

struct Hello {
  std::uint32_t version = kProtocolVersion;
  SandboxReport sandbox;
};

std::string encode_hello(const Hello& hello);
Hello decode_hello(std::string_view payload);  // throws ipc::ProtocolError

std::string encode_request(const Item& item);
Item decode_request(std::string_view payload, std::uint64_t max_item_bytes);

struct ReplyLimits {
  std::uint64_t max_output_bytes = 0;  // limits.max_item_bytes
  std::uint64_t max_actions = 0;
};

// The worker repairs text that is not valid UTF-8 (an exception message
// with raw bytes in it) before it encodes, so that only a broken or
// compromised worker ever sends what decode_reply() refuses.
std::string encode_reply(const PipelineResult& result);
PipelineResult decode_reply(std::string_view payload, const ReplyLimits& limits);

// Invalid sequences become U+FFFD.
std::string repair_utf8(std::string_view s);

}  // namespace mukaika::worker
