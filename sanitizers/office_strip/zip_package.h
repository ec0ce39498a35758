// Zip containers of Office documents (OOXML, OpenDocument), read from and
// written to memory with libarchive.
//
// Promises: reading never holds more than the limits allow, counted while
// decompressing (declared sizes are not trusted); a member over a limit, an
// encrypted member, two members whose names differ only in case (OPC part
// names are case-insensitive, so a reader could pick either) or a damaged
// archive is an error with a reason, never a partial result. The central
// directory is read (the seekable reader), as Office and LibreOffice do, so
// members hidden between local headers are not seen and not kept.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ascii.h"

namespace mukaika::office_strip {

struct ZipMember {
  std::string name;  // as stored (UTF-8), e.g. "word/document.xml"
  std::string data;
};

struct ZipLimits {
  std::size_t max_members = 2000;
  std::uint64_t max_member_bytes = 50ull << 20;
  std::uint64_t max_total_bytes = 200ull << 20;
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

struct ZipReadResult {
  enum class Status { Ok, NotZip, TooManyMembers, MemberTooLarge, TotalTooLarge, Encrypted, DuplicateName, Time };
  Status status = Status::NotZip;
  std::string detail;  // the member concerned, or libarchive's message
  std::vector<ZipMember> members;  // in archive order; directories left out
};

ZipReadResult read_zip(std::string_view bytes, const ZipLimits& limits);

struct ZipOutMember {
  std::string name;
  std::string_view data;
  bool store = false;  // no compression (ODF's "mimetype" must be stored)
};

// A new archive holding exactly `members`, in order. Throws
// std::runtime_error when libarchive fails (out of memory): "could not decide".
std::string write_zip(const std::vector<ZipOutMember>& members);

// ASCII lower case: OPC compares part names case-insensitively.
using ::mukaika::ascii_lower;

}  // namespace mukaika::office_strip
