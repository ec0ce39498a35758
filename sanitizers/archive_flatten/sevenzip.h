// p7zip's 7z binary, run as a child process to open password-protected 7z
// archives, which libarchive 3.6 cannot decrypt (docs/ppap.md,
// architecture.md 27).
//
// Promises:
// - Only /usr/lib/p7zip/7z runs, only on the 7z format (-t7z), in a minimal
//   environment (LC_ALL=C.UTF-8), with no file descriptor of the caller
//   but its three pipes. In the worker it inherits every sandbox layer; the
//   worker allows it only when Landlock confines execve to this binary.
// - The password goes to 7z's stdin (a pipe filled and closed before the
//   child exists), never on its command line or into a file. The caller's
//   copies are the caller's to wipe.
// - The encrypted archive is written to $TMPDIR (the worker's private
//   directory) for as long as 7z runs, and removed afterwards.
// - Bounded: the listing's output is capped, extraction reads exactly the
//   listed sizes and kills 7z on one byte more, and a deadline kills it;
//   the child is always reaped.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace mukaika::sevenzip {

inline constexpr const char* kBinary = "/usr/lib/p7zip/7z";

// Whether this process may run 7z. False until the worker turns it on,
// once its sandbox confines execve (Landlock); otherwise an encrypted 7z is
// "unsupported" (tests that run sanitizers in-process turn it on).
void set_allowed(bool allowed);
bool allowed();
// The binary is installed and allowed.
bool usable();

// "7z\xBC\xAF\x27\x1C"
bool has_signature(std::string_view bytes);

struct Entry {
  std::string path;  // UTF-8, as 7z lists it (unchecked: the caller makes it safe)
  std::uint64_t size = 0;
  std::time_t mtime = 0;
  bool directory = false;
  bool link = false;  // its bytes (the target) are in the stream; never a member
};

enum class Status {
  Ok,
  WrongPassword,  // 7z said so ("Wrong password?")
  Failed,         // anything else 7z could not do; `detail` says what
  TooMuch,        // more output than allowed or listed
  TimedOut,
};

struct Listing {
  Status status = Status::Failed;
  std::vector<Entry> entries;
  std::string detail;
};

struct Extraction {
  Status status = Status::Failed;
  std::vector<std::string> files;  // index-aligned with the listing's entries (empty for directories)
  std::string detail;
};

// Lists `archive` with `password` (needed when the header is encrypted).
// At most `max_entries` entries, else TooMuch.
Listing list(std::string_view archive, const std::string& password, std::size_t max_entries,
             std::chrono::steady_clock::time_point deadline);

// Extracts every entry of `listing` (7z x -so: all files in archive order,
// one stream) and splits the stream by the listed sizes.
Extraction extract(std::string_view archive, const std::string& password, const std::vector<Entry>& listing,
                   std::chrono::steady_clock::time_point deadline);

}  // namespace mukaika::sevenzip
