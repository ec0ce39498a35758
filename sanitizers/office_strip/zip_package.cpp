#include "office_strip/zip_package.h"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <unordered_set>

namespace mukaika::office_strip {
namespace {

struct ReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ReadPtr = std::unique_ptr<archive, ReadDeleter>;

struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using WritePtr = std::unique_ptr<archive, WriteDeleter>;

struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryDeleter>;

std::string error_of(archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

la_ssize_t append_to_string(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// 1980-01-01 00:00 UTC, the earliest zip date: what Office writes, and it
// keeps the output independent of the clock (same input, same bytes).
constexpr time_t kZipEpoch = 315532800;

}  // namespace

ZipReadResult read_zip(std::string_view bytes, const ZipLimits& limits) {
  ZipReadResult result;
  ReadPtr a(archive_read_new());
  if (!a) throw std::runtime_error("libarchive: out of memory");
  archive_read_support_format_zip_seekable(a.get());
  if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK) {
    result.detail = error_of(a.get());
    return result;
  }
  auto fail = [&](ZipReadResult::Status status, std::string detail) {
    result.status = status;
    result.detail = std::move(detail);
    result.members.clear();
    return std::move(result);
  };
  std::unordered_set<std::string> seen;
  std::uint64_t total = 0;
  std::size_t count = 0;
  std::array<char, 64 * 1024> buffer{};
  while (true) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail(ZipReadResult::Status::NotZip, error_of(a.get()));
    const char* utf8 = archive_entry_pathname_utf8(entry);
    const char* raw = archive_entry_pathname(entry);
    std::string name = utf8 ? utf8 : (raw ? raw : "");
    if (++count > limits.max_members) return fail(ZipReadResult::Status::TooManyMembers, name);
    if (limits.deadline && std::chrono::steady_clock::now() > *limits.deadline)
      return fail(ZipReadResult::Status::Time, name);
    if (archive_entry_is_encrypted(entry)) return fail(ZipReadResult::Status::Encrypted, name);
    if (archive_entry_filetype(entry) == AE_IFDIR || (!name.empty() && name.back() == '/')) continue;
    if (!seen.insert(ascii_lower(name)).second) return fail(ZipReadResult::Status::DuplicateName, name);
    ZipMember member;
    member.name = name;
    while (true) {
      la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n == 0) break;
      if (n < 0) return fail(ZipReadResult::Status::NotZip, name + ": " + error_of(a.get()));
      member.data.append(buffer.data(), static_cast<std::size_t>(n));
      total += static_cast<std::uint64_t>(n);
      if (member.data.size() > limits.max_member_bytes) return fail(ZipReadResult::Status::MemberTooLarge, name);
      if (total > limits.max_total_bytes) return fail(ZipReadResult::Status::TotalTooLarge, name);
    }
    result.members.push_back(std::move(member));
  }
  result.status = ZipReadResult::Status::Ok;
  return result;
}

std::string write_zip(const std::vector<ZipOutMember>& members) {
  std::string out;
  WritePtr a(archive_write_new());
  if (!a) throw std::runtime_error("libarchive: out of memory");
  if (archive_write_set_format_zip(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open2(a.get(), &out, nullptr, append_to_string, nullptr, nullptr) != ARCHIVE_OK)
    throw std::runtime_error("libarchive: cannot start a zip archive: " + error_of(a.get()));
  for (const ZipOutMember& m : members) {
    if (m.store)
      archive_write_zip_set_compression_store(a.get());
    else
      archive_write_zip_set_compression_deflate(a.get());
    EntryPtr entry(archive_entry_new());
    if (!entry) throw std::runtime_error("libarchive: out of memory");
    archive_entry_set_pathname_utf8(entry.get(), m.name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(m.data.size()));
    archive_entry_set_mtime(entry.get(), kZipEpoch, 0);
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK)
      throw std::runtime_error("libarchive: cannot write " + m.name + ": " + error_of(a.get()));
    std::size_t done = 0;
    while (done < m.data.size()) {
      la_ssize_t n = archive_write_data(a.get(), m.data.data() + done, m.data.size() - done);
      if (n <= 0) throw std::runtime_error("libarchive: cannot write " + m.name + ": " + error_of(a.get()));
      done += static_cast<std::size_t>(n);
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    throw std::runtime_error("libarchive: cannot finish the zip archive: " + error_of(a.get()));
  return out;
}

}  // namespace mukaika::office_strip
