// The directory of an OLE2 compound file (CFB: .doc, .xls, .ppt, .msi),
// read without trusting it.
//
// Promises: reads only inside `bytes`; follows sector chains with cycle and
// length limits; never throws for hostile input — it returns std::nullopt
// when the bytes are not a readable compound file. Only names and types are
// returned: enough to tell an encrypted or macro-carrying legacy document
// from a plain one without parsing the document itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mukaika::ole {

struct DirectoryEntry {
  std::string name;  // UTF-8 (names are UTF-16LE on disk; control chars shown as \xNN)
  enum class Type : std::uint8_t { Empty = 0, Storage = 1, Stream = 2, Root = 5, Other = 255 } type = Type::Other;
  std::uint64_t size = 0;
};

// The directory entries in file order, or nullopt when `bytes` is not a
// well-formed compound file (bad signature, sector size, broken chains).
std::optional<std::vector<DirectoryEntry>> read_directory(std::string_view bytes);

bool has_entry(const std::vector<DirectoryEntry>& entries, std::string_view name);

}  // namespace mukaika::ole
