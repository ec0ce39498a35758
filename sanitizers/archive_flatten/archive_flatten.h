// archive.flatten: opens an archive (zip, 7z, rar, tar, cpio, lha/lzh, cab,
// iso9660, and gzip/bzip2/xz/... single-file streams) with libarchive and
// hands every member to the pipeline as a child, like a mail attachment.
//
// Promises:
// - Members are read from memory, never written to the gateway's disk, and
//   counted while they stream: per member (limits.max_item_bytes), per
//   archive (limits.max_total_bytes and an expansion ratio), member count
//   (limits.max_parts), wall clock (the deadline). A limit blocks the whole
//   archive with its reason; so does a member blocked by a limit or as a bomb
//   deeper down.
// - Zip entries whose data overlap (the "better zip bomb") and an archive
//   that contains itself are blocked before anything is delivered.
// - An archive with any encrypted member (PPAP) is blocked with a notice that
//   says how to get the original; process_with_passphrases() opens it once a
//   recipient supplies the password (zip through libarchive, 7z through
//   p7zip in a child process: sevenzip.h).
// - Member names are decoded (UTF-8 flag or valid UTF-8, else the fallback
//   charset, CP932 by default) and made safe per path component; links,
//   devices and directories never become members.
// - The output is a new zip (UTF-8 names, no encryption, regular files only,
//   already-compressed members stored) with the surviving members at their
//   safe paths and, when anything changed, a notice file listing each
//   member's fate. A single compressed
//   stream (x.csv.gz) yields the sanitized file itself. If nothing survives,
//   the archive is removed (or blocked when a member was blocked).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "sanitizer.h"

namespace mukaika {

struct ArchiveFlattenOptions {
  std::string fallback_charset = "cp932";   // member names without a UTF-8 flag that are not valid UTF-8
  std::uint64_t max_expansion_ratio = 100;  // expanded bytes per archive byte ...
  std::uint64_t ratio_floor_bytes = 10ull << 20;  // ... once more than this was expanded
  bool notice_file = true;                  // put a notice file into the output zip when anything changed
  int compression_level = 6;                // deflate level of the output zip, 0 = store everything
  // In a mail, deliver the surviving members as separate attachments
  // instead of one zip (ItemResult::parts); elsewhere the zip is delivered.
  bool output_attachments = false;
  // Container formats that are opened; anything else is blocked as
  // unsupported. "compressed" means a single gzip/bzip2/xz/... stream.
  std::vector<std::string> formats = {"zip", "7z", "rar", "tar", "cpio", "lha", "cab", "iso9660", "compressed"};
};

class ArchiveFlatten final : public Sanitizer {
 public:
  explicit ArchiveFlatten(ArchiveFlattenOptions options);

  std::string_view name() const override { return "archive.flatten"; }
  std::vector<Kind> handles() const override { return {Kind::Archive, Kind::DiskImage}; }
  Outcome process(const Item& item, Context& ctx) const override;
  Outcome reassemble(const Item& item, std::any& state, std::vector<ItemResult>& children,
                     Context& ctx) const override;

  // process() with passwords to try on encrypted members. The future "the
  // recipient types the password on the web page" flow calls this for the
  // quarantined original; everything else (limits, names, children) is
  // exactly as in process(). A wrong password blocks like no password.
  Outcome process_with_passphrases(const Item& item, Context& ctx,
                                   const std::vector<std::string>& passphrases) const;

 private:
  ArchiveFlattenOptions options_;
};

// Throws ConfigError for an unknown option or a bad value.
ArchiveFlattenOptions parse_archive_flatten_options(const toml::table& options);

std::unique_ptr<Sanitizer> make_archive_flatten(const toml::table& options);

}  // namespace mukaika
