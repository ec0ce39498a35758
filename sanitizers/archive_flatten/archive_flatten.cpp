#include "archive_flatten/archive_flatten.h"

#include <algorithm>
#include <ctime>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "archive_flatten/archive_handles.h"
#include "archive_flatten/member_path.h"
#include "archive_flatten/sevenzip.h"
#include "archive_flatten/zip_layout.h"
#include "file_name.h"
#include "mime/charset.h"
#include "registry.h"

namespace mukaika {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// ---------------------------------------------------------------------------
// Which parts of libarchive may run.

using SupportFn = int (*)(struct archive*);

struct FormatSupport {
  const char* name;
  std::vector<SupportFn> enable;
};

// Listed one by one instead of archive_read_support_format_all(): "all"
// includes mtree, whose reader opens files named in the archive on the
// gateway's own disk. Zip is read through its central directory only (the
// seekable reader), which is what zip_layout checks for overlaps; a zip
// without one is corrupt and blocked.
const std::vector<FormatSupport>& container_formats() {
  static const std::vector<FormatSupport> formats{
      {"zip", {archive_read_support_format_zip_seekable}},
      {"7z", {archive_read_support_format_7zip}},
      {"rar", {archive_read_support_format_rar, archive_read_support_format_rar5}},
      {"tar", {archive_read_support_format_tar}},
      {"cpio", {archive_read_support_format_cpio}},
      {"lha", {archive_read_support_format_lha}},
      {"cab", {archive_read_support_format_cab}},
      {"iso9660", {archive_read_support_format_iso9660}},
  };
  return formats;
}

// Compression filters libarchive implements itself. A filter it was built
// without falls back to running an external program (and says so with
// ARCHIVE_WARN); the gateway must never spawn programs on hostile input, so
// only the filters that answer ARCHIVE_OK on a probe handle are enabled.
const std::vector<SupportFn>& native_filters() {
  static const std::vector<SupportFn> filters = [] {
    const SupportFn all[] = {archive_read_support_filter_gzip,     archive_read_support_filter_bzip2,
                             archive_read_support_filter_xz,       archive_read_support_filter_lzma,
                             archive_read_support_filter_lzip,     archive_read_support_filter_zstd,
                             archive_read_support_filter_lz4,      archive_read_support_filter_compress};
    std::vector<SupportFn> ok;
    arc::Reader probe = arc::new_reader();
    for (SupportFn f : all)
      if (f(probe.get()) == ARCHIVE_OK) ok.push_back(f);
    return ok;
  }();
  return filters;
}

bool allowed(const ArchiveFlattenOptions& o, std::string_view format) {
  return std::find(o.formats.begin(), o.formats.end(), format) != o.formats.end();
}

// libarchive's messages are English ASCII, but a few quote a member's name
// (iso9660's "out-of-order file"); they end up in notices, so anything but
// printable ASCII becomes '?' and the length is capped.
std::string error_of(struct archive* a) {
  const char* e = archive_error_string(a);
  if (!e || !*e) return "unknown libarchive error";
  std::string out;
  for (const char* p = e; *p && out.size() < 200; ++p) out += (*p >= 0x20 && *p < 0x7F) ? *p : '?';
  return out;
}

// `raw`: a single compressed stream (x.csv.gz), read as one member.
arc::Reader make_reader(const ArchiveFlattenOptions& o, bool raw, const std::vector<std::string>& passphrases) {
  arc::Reader a = arc::new_reader();
  for (SupportFn f : native_filters()) f(a.get());
  if (raw) {
    archive_read_support_format_raw(a.get());
  } else {
    for (const auto& f : container_formats())
      if (allowed(o, f.name))
        for (SupportFn enable : f.enable) enable(a.get());
    // LHA level-0/1 headers carry no charset and libarchive 3.6 fails hard
    // on non-ASCII bytes there unless told what they are.
    std::string charset = "lha:hdrcharset=" + charset::canonical(o.fallback_charset);
    if (allowed(o, "lha") && archive_read_set_options(a.get(), charset.c_str()) != ARCHIVE_OK)
      throw std::runtime_error("libarchive does not accept " + charset + ": " + error_of(a.get()));
  }
  for (const auto& p : passphrases)
    if (archive_read_add_passphrase(a.get(), p.c_str()) != ARCHIVE_OK) throw std::runtime_error(error_of(a.get()));
  return a;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

// libarchive has no error code for "encrypted": a 7z or RAR whose headers are
// encrypted fails to list with a message, and has_encrypted_entries says yes
// only for some formats. Both signals are used; the corpus tests pin them.
bool says_encrypted(struct archive* a) {
  if (archive_read_has_encrypted_entries(a) > 0) return true;
  const char* e = archive_error_string(a);
  if (!e) return false;
  std::string m = lower(e);
  return m.find("encrypt") != std::string::npos || m.find("passphrase") != std::string::npos ||
         m.find("password") != std::string::npos;
}

// ---------------------------------------------------------------------------
// Reasons, written where the decision is made (architecture.md, 7).

std::string n(std::uint64_t v) { return std::to_string(v); }

Reason reason_encrypted() {
  // "Held": with the LGWAN pages the recipient can type the password
  // (docs/ppap.md); the notice around this sentence links there.
  return {"archive.encrypted",
          "パスワード付きの圧縮ファイルのため中身を検査できず、保留しました (遮断)。原本はインターネット接続系で保管されています。"
          "パスワードが分かれば LGWAN 側の画面で入力して取り出せます。案内がない場合は情報システム担当にお問い合わせください",
          "held (blocked): the archive is password-protected, so its contents cannot be inspected. The original is kept "
          "on the Internet side; with the password you can open it on the LGWAN page, or ask your IT staff"};
}

Reason reason_wrong_password(const std::string& member) {
  return {"archive.wrong_password",
          "パスワードが合わないため「" + member + "」を開けず、圧縮ファイルを遮断しました。原本はインターネット接続系で保管されています",
          "blocked: the password does not open \"" + member + "\"; the original is kept on the Internet side"};
}

// libarchive 3.6 decrypts zip (ZipCrypto, WinZip AES) only; an encrypted
// 7z or RAR fails the same way with or without the right password, so
// "wrong password" would send the recipient guessing.
Reason reason_password_unsupported(struct archive* a, const std::string& member) {
  const int format = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
  if (format == ARCHIVE_FORMAT_ZIP) return reason_wrong_password(member);
  return {"archive.password_unsupported",
          "この形式 (7z、RAR など) のパスワード付き圧縮ファイルはゲートウェイで開けないため遮断しました。"
          "送信者に zip (AES) か別の方法で送り直すよう依頼してください",
          "blocked: password-protected archives of this format (7z, RAR, ...) cannot be opened by the gateway; "
          "ask the sender to send it again as a zip (AES) or another way"};
}

// 7z runs only where the sandbox can confine it (architecture.md 27).
Reason reason_sevenzip_unavailable() {
  return {"archive.password_unsupported",
          "パスワード付きの 7z ファイルを開くプログラム (p7zip) がこのゲートウェイで使えないため遮断しました "
          "(未導入か、サンドボックスの Landlock がないため)。情報システム担当にお問い合わせください",
          "blocked: the program that opens password-protected 7z archives (p7zip) cannot run on this gateway "
          "(not installed, or the sandbox lacks Landlock); ask your IT staff"};
}

Reason reason_link() {
  return {"archive.link", "リンク (別のファイルへの参照) のため除きました", "removed: a link to another file, not a file"};
}

Reason reason_unsupported(const std::string& detail) {
  return {"archive.unsupported", "圧縮ファイルの形式を読めないため遮断しました (" + detail + ")",
          "blocked: the archive format cannot be read (" + detail + ")"};
}

Reason reason_corrupt(const std::string& detail) {
  return {"archive.corrupt", "圧縮ファイルが壊れていて最後まで読めないため遮断しました (" + detail + ")",
          "blocked: the archive is damaged and cannot be read to the end (" + detail + ")"};
}

Reason reason_overlap(const std::string& detail) {
  return {"archive.overlapping_entries",
          "ZIP の中の複数のファイルが同じデータを重ねて指しているため遮断しました (圧縮爆弾の手口です。" + detail + ")",
          "blocked: zip entries overlap, the trick of an overlapping-entry zip bomb (" + detail + ")"};
}

Reason reason_self_reference(const std::string& member) {
  return {"archive.self_reference",
          "圧縮ファイルが自分自身 (「" + member + "」) を含んでいるため遮断しました (無限に展開される圧縮爆弾です)",
          "blocked: the archive contains itself (\"" + member + "\"), an endlessly nested archive bomb"};
}

Reason reason_member_too_large(const std::string& member, std::uint64_t limit) {
  return {"limits.item_bytes",
          "圧縮ファイルの中の「" + member + "」が展開後のサイズの上限 (" + n(limit) +
              " バイト) を超えるため、圧縮ファイル全体を遮断しました (圧縮爆弾の疑い)",
          "blocked: member \"" + member + "\" expands beyond " + n(limit) + " bytes (a possible archive bomb)"};
}

Reason reason_total(std::uint64_t limit) {
  return {"limits.total_bytes",
          "展開後の合計サイズが上限 (" + n(limit) + " バイト) を超えるため、圧縮ファイル全体を遮断しました (圧縮爆弾の疑い)",
          "blocked: the archive expands beyond " + n(limit) + " bytes in total (a possible archive bomb)"};
}

Reason reason_ratio(std::uint64_t ratio, std::uint64_t cap) {
  return {"limits.expansion_ratio",
          "展開後のサイズが圧縮ファイルの " + n(ratio) + " 倍 (" + n(cap) +
              " バイト) を超えるため遮断しました (圧縮爆弾の疑い)",
          "blocked: the archive expands to more than " + n(ratio) + " times its size (" + n(cap) +
              " bytes; a possible archive bomb)"};
}

Reason reason_parts(int limit) {
  return {"limits.parts", "圧縮ファイルの中のファイル数が上限 (" + std::to_string(limit) + ") を超えるため遮断しました",
          "blocked: the archive holds more than " + std::to_string(limit) + " files"};
}

Reason reason_time(const Limits& l) {
  return {"limits.time", "展開に時間がかかりすぎたため (上限 " + std::to_string(l.max_seconds.count()) + " 秒) 遮断しました",
          "blocked: opening the archive took longer than " + std::to_string(l.max_seconds.count()) + " seconds"};
}

// A member that a deeper limit or bomb check blocked makes this archive a
// bomb carrier: block all of it, with the inner reason.
bool is_bomb_code(const std::string& code) {
  return code.rfind("limits.", 0) == 0 || code == "archive.overlapping_entries" || code == "archive.self_reference";
}

// ---------------------------------------------------------------------------
// What process() hands to reassemble() (copyable, as std::any wants).

struct MemberInfo {
  std::string folder;  // safe folder inside the archive ("" at the top)
  std::string path;    // safe path as a child ("docs/a.txt"), for notices
  std::time_t mtime = 0;
  bool renamed = false;  // the name in the archive was not safe as it stood
};

struct DroppedMember {
  std::string path;
  Reason reason;
};

struct FlattenPlan {
  std::vector<MemberInfo> members;  // index-aligned with the children
  std::vector<DroppedMember> dropped;
  bool single_stream = false;  // x.gz: the output is the sanitized file itself
  bool from_zip = false;       // the input already was a zip (re-packing alone is cosmetic)
};

// Byte budgets for one archive, checked on every chunk as it streams.
class Budget {
 public:
  Budget(const Context& ctx, const ArchiveFlattenOptions& o, std::uint64_t archive_bytes) : ctx_(ctx) {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t by_ratio = o.max_expansion_ratio != 0 && archive_bytes > max / o.max_expansion_ratio
                                 ? max
                                 : archive_bytes * o.max_expansion_ratio;
    ratio_ = o.max_expansion_ratio;
    ratio_cap_ = std::max(by_ratio, o.ratio_floor_bytes);
  }

  // Before a member is read: its declared size, when the format states one,
  // fails fast (a 42.zip page claims 4 GiB honestly). Streaming still counts,
  // because a declared size may lie.
  std::optional<Reason> declared(const std::string& member, std::int64_t size) {
    if (size <= 0) return std::nullopt;
    const auto bytes = static_cast<std::uint64_t>(size);
    if (bytes > ctx_.limits.max_item_bytes) return reason_member_too_large(member, ctx_.limits.max_item_bytes);
    declared_total_ += bytes;
    if (declared_total_ > ratio_cap_ && ratio_cap_ < ctx_.limits.max_total_bytes) return reason_ratio(ratio_, ratio_cap_);
    if (declared_total_ > ctx_.limits.max_total_bytes) return reason_total(ctx_.limits.max_total_bytes);
    return std::nullopt;
  }

  std::optional<Reason> add(const std::string& member, std::uint64_t member_bytes, std::uint64_t chunk) {
    total_ += chunk;
    if (member_bytes > ctx_.limits.max_item_bytes) return reason_member_too_large(member, ctx_.limits.max_item_bytes);
    if (total_ > ratio_cap_ && ratio_cap_ < ctx_.limits.max_total_bytes) return reason_ratio(ratio_, ratio_cap_);
    if (total_ > ctx_.limits.max_total_bytes) return reason_total(ctx_.limits.max_total_bytes);
    return std::nullopt;
  }

 private:
  const Context& ctx_;
  std::uint64_t ratio_ = 0;
  std::uint64_t ratio_cap_ = 0;
  std::uint64_t total_ = 0;
  std::uint64_t declared_total_ = 0;
};

// Either a member's bytes or the reason it could not be had.
struct ReadResult {
  enum class Status { Ok, Verdict, Unreadable, Fatal };
  Status status = Status::Ok;
  Bytes bytes;
  Reason reason;      // for Verdict
  std::string error;  // for Unreadable/Fatal
};

ReadResult read_member(struct archive* a, const std::string& member, Budget& budget, const Context& ctx,
                       std::vector<char>& buffer) {
  ReadResult out;
  int chunks = 0;
  for (;;) {
    la_ssize_t got = archive_read_data(a, buffer.data(), buffer.size());
    if (got == 0) return out;
    if (got < 0) {
      out.status = got == ARCHIVE_FATAL ? ReadResult::Status::Fatal : ReadResult::Status::Unreadable;
      out.error = error_of(a);
      out.bytes.clear();
      return out;
    }
    const auto size = static_cast<std::uint64_t>(got);
    if (auto hit = budget.add(member, out.bytes.size() + size, size)) {
      out.status = ReadResult::Status::Verdict;
      out.reason = std::move(*hit);
      out.bytes.clear();
      return out;
    }
    out.bytes.append(buffer.data(), static_cast<std::size_t>(got));
    if (++chunks % 16 == 0 && ctx.past_deadline()) {
      out.status = ReadResult::Status::Verdict;
      out.reason = reason_time(ctx.limits);
      out.bytes.clear();
      return out;
    }
  }
}

// "report.csv.gz" -> "report.csv"; "data.bin" (no compression suffix) stays.
std::string strip_compression_suffix(const std::string& name) {
  static const char* const kSuffixes[] = {".gz", ".gzip", ".bz2", ".xz", ".lzma", ".lz", ".zst", ".z", ".lz4"};
  std::string l = lower(name);
  for (const char* s : kSuffixes) {
    std::string_view suffix(s);
    if (l.size() > suffix.size() && l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0)
      return name.substr(0, name.size() - suffix.size());
  }
  return name;
}

// "x.tar.gz", "x.tgz", "x.lzh" -> "x.zip".
std::string zip_name_for(const std::string& name) {
  static const char* const kCompound[] = {".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".tar.lz", ".tar.lzma", ".tar.z"};
  std::string l = lower(name);
  for (const char* s : kCompound) {
    std::string_view suffix(s);
    if (l.size() > suffix.size() && l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0)
      return name.substr(0, name.size() - suffix.size()) + ".zip";
  }
  if (l.size() > 4 && l.compare(l.size() - 4, 4, ".zip") == 0) return name;
  return replace_extension(name, "zip");
}

// "a, b, c, d, e ほか 3 件": notices name a few members, the audit has all.
std::string short_list(const std::vector<std::string>& names, bool ja) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5)
    out += ja ? " ほか " + std::to_string(names.size() - 5) + " 件" : " and " + std::to_string(names.size() - 5) + " more";
  return out;
}

std::string member_label(const ItemResult& c, const MemberInfo& m) {
  return m.path.empty() ? c.input_name : m.path;
}

// ---------------------------------------------------------------------------
// Writing the output zip.

struct ZipSink {
  Bytes out;
  std::uint64_t cap = 0;
  bool over = false;
};

la_ssize_t append_to_sink(struct archive*, void* client, const void* buffer, size_t length) {
  auto* sink = static_cast<ZipSink*>(client);
  if (sink->out.size() + length > sink->cap) {
    sink->over = true;
    return -1;
  }
  try {
    sink->out.append(static_cast<const char*>(buffer), length);
  } catch (...) {  // no exception may cross libarchive's C frames
    return -1;
  }
  return static_cast<la_ssize_t>(length);
}

// Output types that are compressed already: deflating them again costs CPU
// (the whole output is scanned again too) and saves nothing.
bool already_compressed(std::string_view type) {
  for (std::string_view p : {"image/jpeg", "image/png", "image/gif", "image/webp", "video/", "audio/", "application/zip",
                             "application/gzip", "application/x-7z-compressed", "application/x-xz",
                             "application/x-bzip2", "application/zstd", "application/pdf"})
    if (type.substr(0, p.size()) == p) return true;
  return false;
}

class ZipWriter {
 public:
  ZipWriter(std::uint64_t cap, int level) : writer_(arc::new_writer()), store_all_(level == 0) {
    sink_.cap = cap;
    struct archive* w = writer_.get();
    // UTF-8 names with the language-encoding flag (bit 11), and no block
    // padding after the end record.
    const std::string deflate_level = std::to_string(std::clamp(level, 1, 9));
    if (archive_write_set_format_zip(w) != ARCHIVE_OK ||
        archive_write_set_format_option(w, "zip", "hdrcharset", "UTF-8") != ARCHIVE_OK ||
        archive_write_set_format_option(w, "zip", "compression-level", deflate_level.c_str()) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w, 0) != ARCHIVE_OK ||
        archive_write_open2(w, &sink_, nullptr, append_to_sink, nullptr, nullptr) != ARCHIVE_OK)
      throw std::runtime_error("cannot start the output zip: " + error_of(w));
  }

  // False when the output grew past its cap; throws for anything else.
  bool add(const std::string& path, std::string_view data, std::time_t mtime, std::string_view type = {}) {
    struct archive* w = writer_.get();
    // The method is chosen per entry (these two calls are allowed between
    // entries; format options are not).
    const bool store = store_all_ || already_compressed(type);
    if ((store ? archive_write_zip_set_compression_store(w) : archive_write_zip_set_compression_deflate(w)) != ARCHIVE_OK)
      throw std::runtime_error("cannot choose the compression of " + path + ": " + error_of(w));
    arc::Entry entry = arc::new_entry();
    archive_entry_update_pathname_utf8(entry.get(), path.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
    // Zip's DOS time covers 1980-2107; anything outside (or unset) becomes now.
    const bool representable = mtime >= 315532800 && mtime < 4102444800;
    archive_entry_set_mtime(entry.get(), representable ? mtime : std::time(nullptr), 0);
    if (archive_write_header(w, entry.get()) != ARCHIVE_OK) return fail("header of " + path);
    std::size_t done = 0;
    while (done < data.size()) {
      la_ssize_t wrote = archive_write_data(w, data.data() + done, std::min(data.size() - done, kChunk));
      if (wrote <= 0) return fail("data of " + path);
      done += static_cast<std::size_t>(wrote);
    }
    if (archive_write_finish_entry(w) != ARCHIVE_OK) return fail("end of " + path);
    return true;
  }

  // The finished zip, or nullopt when it grew past its cap.
  std::optional<Bytes> finish() {
    if (archive_write_close(writer_.get()) != ARCHIVE_OK) {
      if (sink_.over) return std::nullopt;
      throw std::runtime_error("cannot finish the output zip: " + error_of(writer_.get()));
    }
    return std::move(sink_.out);
  }

 private:
  bool fail(const std::string& what) {
    if (sink_.over) return false;
    throw std::runtime_error("cannot write the output zip (" + what + "): " + error_of(writer_.get()));
  }

  ZipSink sink_;  // declared before writer_: the writer flushes into it when freed
  arc::Writer writer_;
  bool store_all_ = false;
};

void add_child(const Item& item, Context& ctx, FlattenPlan& plan, std::vector<Item>& children,
               archive_names::MemberPath where, Bytes bytes, std::time_t mtime) {
  if (where.changed && !plan.single_stream)
    ctx.report.note(item.path + "/" + where.full(), "note",
                    {"archive.name_changed",
                     "圧縮ファイルの中の名前を安全な形「" + where.full() + "」に変えました",
                     "the member's name was made safe: \"" + where.full() + "\""});
  Item child;
  child.bytes = std::move(bytes);
  child.name = where.base;
  child.path = where.full();
  child.role = Role::File;
  children.push_back(std::move(child));
  plan.members.push_back({where.folder, where.full(), mtime, where.changed && !plan.single_stream});
}

// The members are read: notes for the dropped ones, then expand (or remove
// or block when nothing is left).
Outcome finish_members(Context& ctx, const Item& item, FlattenPlan plan, std::vector<Item> children) {
  for (const auto& d : plan.dropped) ctx.report.note(item.path + "/" + d.path, "remove", d.reason);
  if (children.empty()) {
    if (plan.dropped.empty())
      return Outcome::remove({"archive.empty", "中にファイルのない圧縮ファイルのため削除しました",
                              "removed: the archive holds no files"});
    std::vector<std::string> names;
    bool uninspected = false;
    for (const auto& d : plan.dropped) {
      names.push_back(d.path);
      uninspected = uninspected || d.reason.code == "archive.member_unreadable";
    }
    const std::string ja = short_list(names, true), en = short_list(names, false);
    // A member we could not extract was never inspected: that is not a
    // policy removal but a failure to decide, so it blocks.
    if (uninspected)
      return Outcome::block({"archive.nothing_left",
                             "圧縮ファイルの中に展開して検査できるファイルがないため遮断しました (" + ja + ")",
                             "blocked: nothing in the archive could be extracted and inspected (" + en + ")"});
    return Outcome::remove({"archive.nothing_left", "圧縮ファイルの中に届けられるファイルがないため削除しました (" + ja + ")",
                            "removed: nothing in the archive can be delivered (" + en + ")"});
  }
  return Outcome::expand(std::move(children), std::move(plan));
}


// A password-protected 7z, opened by p7zip (sevenzip.h) with each password
// in turn. The listing is checked against the same limits as any archive
// before a byte is extracted; the members then take the same way as those
// libarchive reads.
Outcome open_encrypted_7z(const Item& item, Context& ctx, const ArchiveFlattenOptions& o,
                          const std::vector<std::string>& passphrases) {
  if (!sevenzip::usable()) return Outcome::block(reason_sevenzip_unavailable());
  const auto max_name = static_cast<std::size_t>(std::max(ctx.limits.max_name_chars, 8));
  const std::size_t max_entries = static_cast<std::size_t>(std::max(ctx.limits.max_parts, 1)) * 4;
  for (const auto& password : passphrases) {
    // 7z reads one line from stdin: a password with a line break cannot be given.
    if (password.empty() || password.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) continue;
    sevenzip::Listing listing = sevenzip::list(item.bytes, password, max_entries, ctx.deadline);
    if (listing.status == sevenzip::Status::WrongPassword) continue;
    if (listing.status == sevenzip::Status::TimedOut) return Outcome::block(reason_time(ctx.limits));
    if (listing.status == sevenzip::Status::TooMuch) return Outcome::block(reason_parts(ctx.limits.max_parts));
    if (listing.status != sevenzip::Status::Ok) return Outcome::block(reason_corrupt(listing.detail));

    Budget budget(ctx, o, item.bytes.size());
    std::vector<archive_names::MemberPath> names;
    int files = 0;
    for (std::size_t i = 0; i < listing.entries.size(); ++i) {
      const sevenzip::Entry& e = listing.entries[i];
      const std::string decoded =
          charset::is_valid_utf8(e.path) ? e.path : archive_names::decode(e.path, o.fallback_charset);
      names.push_back(archive_names::safe_path(decoded, max_name, "member-" + std::to_string(i + 1)));
      if (e.directory || e.link) continue;
      if (++files > ctx.limits.max_parts) return Outcome::block(reason_parts(ctx.limits.max_parts));
      if (e.size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return Outcome::block(reason_member_too_large(names.back().full(), ctx.limits.max_item_bytes));
      if (auto hit = budget.declared(names.back().full(), static_cast<std::int64_t>(e.size)))
        return Outcome::block(std::move(*hit));
    }

    sevenzip::Extraction data = sevenzip::extract(item.bytes, password, listing.entries, ctx.deadline);
    if (data.status == sevenzip::Status::WrongPassword) continue;
    if (data.status == sevenzip::Status::TimedOut) return Outcome::block(reason_time(ctx.limits));
    if (data.status != sevenzip::Status::Ok) return Outcome::block(reason_corrupt(data.detail));

    FlattenPlan plan;
    std::vector<Item> children;
    archive_names::UniquePaths paths;
    for (std::size_t i = 0; i < listing.entries.size(); ++i) {
      const sevenzip::Entry& e = listing.entries[i];
      if (e.directory) continue;
      const std::string shown = names[i].full();
      if (e.link) {
        plan.dropped.push_back({shown, reason_link()});
        continue;
      }
      Bytes bytes = std::move(data.files[i]);
      if (auto hit = budget.add(shown, bytes.size(), bytes.size())) return Outcome::block(std::move(*hit));
      if (bytes == item.bytes) return Outcome::block(reason_self_reference(shown));
      add_child(item, ctx, plan, children, paths.claim(std::move(names[i])), std::move(bytes), e.mtime);
    }
    return finish_members(ctx, item, std::move(plan), std::move(children));
  }
  return Outcome::block(reason_wrong_password(item.name));
}

}  // namespace

// ---------------------------------------------------------------------------

ArchiveFlatten::ArchiveFlatten(ArchiveFlattenOptions options) : options_(std::move(options)) {
  // Load the C.UTF-8 locale and probe libarchive's filters now, at start-up,
  // rather than in a sandboxed worker on the first hostile input; a missing
  // locale is then a start-up error, not a block of every archive.
  arc::Utf8ThreadLocale warm_up;
  (void)native_filters();
}

Outcome ArchiveFlatten::process(const Item& item, Context& ctx) const {
  return process_with_passphrases(item, ctx, ctx.passphrases);
}

Outcome ArchiveFlatten::process_with_passphrases(const Item& item, Context& ctx,
                                                 const std::vector<std::string>& passphrases) const {
  arc::Utf8ThreadLocale utf8_names;
  FlattenPlan plan;
  std::vector<Item> children;
  Budget budget(ctx, options_, item.bytes.size());
  std::vector<char> buffer(kChunk);

  arc::Reader reader = make_reader(options_, false, passphrases);
  if (archive_read_open_memory(reader.get(), item.bytes.data(), item.bytes.size()) < ARCHIVE_WARN) {
    const std::string why = error_of(reader.get());
    // Not a container libarchive (or this configuration) opens. It may still
    // be one compressed file: accept that only when a real decompression
    // filter recognised the bytes, or "raw" would take anything at all.
    if (!allowed(options_, "compressed")) return Outcome::block(reason_unsupported(why));
    reader = make_reader(options_, true, passphrases);
    if (archive_read_open_memory(reader.get(), item.bytes.data(), item.bytes.size()) < ARCHIVE_WARN ||
        archive_filter_count(reader.get()) < 2)
      return Outcome::block(reason_unsupported(why));
    plan.single_stream = true;
  }
  struct archive* a = reader.get();
  // libarchive cannot decrypt 7z: with a password, p7zip opens it.
  const bool encrypted_7z = !passphrases.empty() && sevenzip::has_signature(item.bytes);

  archive_names::UniquePaths paths;
  const auto max_name = static_cast<std::size_t>(std::max(ctx.limits.max_name_chars, 8));
  const std::uint64_t max_entries = static_cast<std::uint64_t>(std::max(ctx.limits.max_parts, 1)) * 4;
  std::uint64_t entries = 0;
  int files = 0;
  int retries = 0;
  bool layout_checked = false;

  for (;;) {
    if (ctx.past_deadline()) return Outcome::block(reason_time(ctx.limits));
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_RETRY) {
      if (++retries > 16) return Outcome::block(reason_corrupt(error_of(a)));
      continue;
    }
    if (r == ARCHIVE_FATAL) {
      if (says_encrypted(a) && encrypted_7z) return open_encrypted_7z(item, ctx, options_, passphrases);
      if (says_encrypted(a))
        return Outcome::block(passphrases.empty() ? reason_encrypted() : reason_password_unsupported(a, item.name));
      return Outcome::block(reason_corrupt(error_of(a)));
    }
    // Directories and links count too, so that a million empty folders
    // cannot keep the loop busy.
    if (++entries > max_entries) return Outcome::block(reason_parts(ctx.limits.max_parts));

    const int format = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    if (!layout_checked) {
      layout_checked = true;
      plan.from_zip = format == ARCHIVE_FORMAT_ZIP;
      if (plan.from_zip) {
        zip::LayoutCheck layout = zip::check_entry_layout(item.bytes);
        if (layout.status == zip::LayoutCheck::Status::Overlap) return Outcome::block(reason_overlap(layout.detail));
        if (layout.status == zip::LayoutCheck::Status::Malformed) return Outcome::block(reason_corrupt(layout.detail));
        if (layout.entries > max_entries) return Outcome::block(reason_parts(ctx.limits.max_parts));
      }
    }

    // The name: UTF-8 when libarchive can give it (UTF-8 flag, 7z, Joliet),
    // else the raw bytes decoded with the fallback charset.
    std::string decoded;
    if (plan.single_stream) {
      decoded = strip_compression_suffix(item.name);
    } else if (const char* utf8 = archive_entry_pathname_utf8(entry); utf8 && charset::is_valid_utf8(utf8)) {
      decoded = utf8;
    } else if (const char* raw = archive_entry_pathname(entry)) {
      decoded = archive_names::decode(raw, options_.fallback_charset);
    }
    archive_names::MemberPath where =
        archive_names::safe_path(decoded, max_name, "member-" + std::to_string(entries));
    const std::string shown = where.full();  // never the raw name: it may hold bidi or control characters

    if (r == ARCHIVE_FAILED) {
      plan.dropped.push_back({shown,
                              {"archive.member_unreadable", "読み取れないため除きました (" + error_of(a) + ")",
                               "removed: it could not be read (" + error_of(a) + ")"}});
      continue;
    }
    const bool encrypted = archive_entry_is_encrypted(entry) != 0;
    if (encrypted && passphrases.empty()) return Outcome::block(reason_encrypted());
    if (encrypted && encrypted_7z) return open_encrypted_7z(item, ctx, options_, passphrases);

    const mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) continue;  // folders live on in the paths of their files
    if (type == AE_IFLNK || archive_entry_hardlink(entry) != nullptr) {
      plan.dropped.push_back({shown, reason_link()});
      continue;
    }
    if (type != AE_IFREG && type != 0) {
      plan.dropped.push_back({shown,
                              {"archive.special_file", "デバイスなどの特殊なファイルのため除きました",
                               "removed: a device or other special file, not a file"}});
      continue;
    }
    if (++files > ctx.limits.max_parts) return Outcome::block(reason_parts(ctx.limits.max_parts));
    if (archive_entry_size_is_set(entry))
      if (auto hit = budget.declared(shown, archive_entry_size(entry))) return Outcome::block(std::move(*hit));

    ReadResult data = read_member(a, shown, budget, ctx, buffer);
    switch (data.status) {
      case ReadResult::Status::Ok:
        break;
      case ReadResult::Status::Verdict:
        return Outcome::block(std::move(data.reason));
      case ReadResult::Status::Fatal:
      case ReadResult::Status::Unreadable:
        if (says_encrypted(a) && encrypted_7z) return open_encrypted_7z(item, ctx, options_, passphrases);
        if (encrypted || says_encrypted(a)) return Outcome::block(reason_password_unsupported(a, shown));
        if (data.status == ReadResult::Status::Fatal) return Outcome::block(reason_corrupt(data.error));
        plan.dropped.push_back({shown,
                                {"archive.member_unreadable", "展開できないため除きました (" + data.error + ")",
                                 "removed: it could not be extracted (" + data.error + ")"}});
        continue;
    }
    if (data.bytes.size() == item.bytes.size() && data.bytes == item.bytes)
      return Outcome::block(reason_self_reference(shown));

    add_child(item, ctx, plan, children, paths.claim(std::move(where)), std::move(data.bytes),
              archive_entry_mtime_is_set(entry) ? archive_entry_mtime(entry) : 0);
    if (plan.single_stream) break;  // raw has one member by definition
  }
  return finish_members(ctx, item, std::move(plan), std::move(children));
}

Outcome ArchiveFlatten::reassemble(const Item& item, std::any& state, std::vector<ItemResult>& children,
                                   Context& ctx) const {
  auto& plan = std::any_cast<FlattenPlan&>(state);
  if (children.size() != plan.members.size())
    throw std::logic_error("archive.flatten: " + std::to_string(children.size()) + " results for " +
                           std::to_string(plan.members.size()) + " members");
  const bool ja = ctx.language == Language::Ja;

  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    if (c.verdict == ItemResult::Verdict::Blocked && is_bomb_code(c.reason.code)) {
      const std::string who = member_label(c, plan.members[i]);
      return Outcome::block({c.reason.code, "圧縮ファイルの中の「" + who + "」が遮断されたため、全体を遮断しました: " + c.reason.ja,
                             "blocked: member \"" + who + "\" was blocked: " + c.reason.en});
    }
  }

  if (plan.single_stream) {
    auto& c = children.front();
    if (c.delivered()) {
      Outcome o = Outcome::replace(std::move(c.bytes), c.type, c.name,
                                   {"archive.decompressed", "圧縮を解いて、中のファイル「" + c.name + "」を無害化しました",
                                    "decompressed; the file inside (\"" + c.name + "\") was sanitized"});
      o.charset = c.charset;
      return o;
    }
    Reason r{"archive.nothing_left", "圧縮を解いた中のファイル「" + c.input_name + "」: " + c.reason.ja,
             "the file inside (\"" + c.input_name + "\"): " + c.reason.en};
    return c.verdict == ItemResult::Verdict::Blocked ? Outcome::block(std::move(r)) : Outcome::remove(std::move(r));
  }

  // Each member's fate, for the notice file, the reason and the audit.
  struct Line {
    std::string path;
    std::string text;
  };
  std::vector<Line> lines;
  int kept = 0, converted = 0, removed = 0, blocked = 0;
  std::vector<std::string> gone;  // removed or blocked, for the short reason
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    const std::string who = member_label(c, plan.members[i]);
    switch (c.verdict) {
      case ItemResult::Verdict::Clean:
        ++kept;
        if (c.name != c.input_name)
          lines.push_back({who, ja ? "ファイル名を「" + c.name + "」に変更しました" : "renamed to \"" + c.name + "\""});
        else if (plan.members[i].renamed)
          lines.push_back({who, ja ? "圧縮ファイルの中の名前を安全な形に変えました" : "its name in the archive was made safe"});
        break;
      case ItemResult::Verdict::Sanitized:
        ++converted;
        lines.push_back({who, c.reason.text(ctx.language)});
        break;
      case ItemResult::Verdict::Removed:
        ++removed;
        gone.push_back(who);
        lines.push_back({who, c.reason.text(ctx.language)});
        break;
      case ItemResult::Verdict::Blocked:
        ++blocked;
        gone.push_back(who);
        lines.push_back({who, c.reason.text(ctx.language)});
        break;
    }
  }
  for (const auto& d : plan.dropped) {
    ++removed;
    gone.push_back(d.path);
    lines.push_back({d.path, d.reason.text(ctx.language)});
  }
  const std::string gone_ja = short_list(gone, true), gone_en = short_list(gone, false);

  if (kept + converted == 0) {
    Reason r{"archive.nothing_left",
             "圧縮ファイルの中のファイルがすべて削除または遮断されたため、圧縮ファイルごと" +
                 std::string(blocked ? "遮断" : "削除") + "しました (" + gone_ja + ")",
             std::string(blocked ? "blocked" : "removed") + ": every file in the archive was removed or blocked (" +
                 gone_en + ")"};
    return blocked ? Outcome::block(std::move(r)) : Outcome::remove(std::move(r));
  }

  const bool changed = !lines.empty() || !plan.from_zip;
  arc::Utf8ThreadLocale utf8_names;  // the writer converts names through the locale too
  ZipWriter zip(ctx.limits.max_item_bytes, options_.compression_level);
  archive_names::UniquePaths out_paths;
  const auto max_name = static_cast<std::size_t>(std::max(ctx.limits.max_name_chars, 8));
  if (options_.notice_file && !lines.empty()) {
    std::string notice = "\xEF\xBB\xBF";  // BOM: Notepad on older Windows guesses CP932 without it
    notice += ja ? "【無害化通知】\r\n圧縮ファイル「" + item.name +
                       "」は、LGWAN 接続系へ届ける前に展開して中身を無害化し、この ZIP ファイルに作り直しました。\r\n"
                 : "[Sanitizing notice]\r\nThe archive \"" + item.name +
                       "\" was opened, its contents sanitized and repacked as this zip before delivery to the LGWAN zone.\r\n";
    for (const auto& l : lines) notice += "・" + l.path + ": " + l.text + "\r\n";
    notice += ja ? "原本はインターネット接続系で保管されています。必要な場合は情報システム担当にお問い合わせください。\r\n"
                 : "The original is kept on the Internet side; ask your IT staff if you need it.\r\n";
    archive_names::MemberPath at = out_paths.claim({"", ja ? "無害化通知.txt" : "sanitizing-notice.txt", false});
    if (!zip.add(at.full(), notice, std::time(nullptr))) return Outcome::block(reason_member_too_large(at.full(), ctx.limits.max_item_bytes));
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto& c = children[i];
    if (!c.delivered()) continue;
    archive_names::MemberPath at{plan.members[i].folder, safe_file_name(c.name, max_name, "member"), false};
    at = out_paths.claim(std::move(at));
    if (!zip.add(at.full(), c.bytes, plan.members[i].mtime, c.type))
      return Outcome::block({"limits.item_bytes",
                             "作り直した ZIP ファイルがサイズの上限 (" + n(ctx.limits.max_item_bytes) + " バイト) を超えるため遮断しました",
                             "blocked: the rebuilt zip is larger than " + n(ctx.limits.max_item_bytes) + " bytes"});
  }
  std::optional<Bytes> out = zip.finish();
  if (!out)
    return Outcome::block({"limits.item_bytes",
                           "作り直した ZIP ファイルがサイズの上限 (" + n(ctx.limits.max_item_bytes) + " バイト) を超えるため遮断しました",
                           "blocked: the rebuilt zip is larger than " + n(ctx.limits.max_item_bytes) + " bytes"});

  const std::string counts_ja = "そのまま " + std::to_string(kept) + " 件, 変換 " + std::to_string(converted) + " 件, 削除 " +
                                std::to_string(removed) + " 件, 遮断 " + std::to_string(blocked) + " 件";
  const std::string counts_en = std::to_string(kept) + " kept, " + std::to_string(converted) + " converted, " +
                                std::to_string(removed) + " removed, " + std::to_string(blocked) + " blocked";
  // With output = "attachments" a mail says how the files arrive (mail.rebuild).
  const bool repack = !options_.output_attachments;
  Reason reason;
  if (!changed) {
    reason = {"archive.repacked",
              std::string(repack ? "圧縮ファイルを展開して検査し、ZIP ファイルに作り直しました" : "圧縮ファイルを展開して検査しました") +
                  " (内容の変更なし, " + counts_ja + ")",
              std::string(repack ? "archive opened, checked and repacked as a zip" : "archive opened and checked") +
                  " (content unchanged, " + counts_en + ")"};
  } else {
    reason = {"archive.flattened",
              std::string(repack ? "圧縮ファイルを展開して中身を無害化し、ZIP ファイルに作り直しました"
                                 : "圧縮ファイルを展開して中身を無害化しました") +
                  " (" + counts_ja + (gone_ja.empty() ? "" : ": 除いたもの " + gone_ja) + ")",
              std::string(repack ? "archive opened, its contents sanitized and repacked as a zip"
                                 : "archive opened and its contents sanitized") +
                  " (" + counts_en + (gone_en.empty() ? "" : "; left out: " + gone_en) + ")"};
  }
  Outcome o = Outcome::replace(std::move(*out), "application/zip", zip_name_for(item.name), std::move(reason), !changed);
  if (options_.output_attachments) {
    // The survivors one by one, for a mail; the zip stays the output where
    // only one file can go. Folder names would be lost in a flat list of
    // attachments, so names are made unique by the usual " (2)".
    archive_names::UniquePaths part_names;
    for (auto& c : children) {
      if (!c.delivered()) continue;
      c.name = part_names.claim({"", safe_file_name(c.name, max_name, "member"), false}).full();
      c.parts.clear();  // one level: a nested archive goes as its zip
      o.parts.push_back(std::move(c));
    }
  }
  return o;
}

// ---------------------------------------------------------------------------

ArchiveFlattenOptions parse_archive_flatten_options(const toml::table& options) {
  ArchiveFlattenOptions o;
  for (const auto& [key, value] : options) {
    std::string k(key.str());
    if (k == "fallback_charset") {
      o.fallback_charset = charset_option(value, k);
    } else if (k == "max_expansion_ratio") {
      auto v = value.value<std::int64_t>();
      if (!v || *v < 1 || *v > 100000) throw ConfigError("max_expansion_ratio must be an integer from 1 to 100000");
      o.max_expansion_ratio = static_cast<std::uint64_t>(*v);
    } else if (k == "ratio_floor_bytes") {
      auto v = value.value<std::int64_t>();
      if (!v || *v < 0) throw ConfigError("ratio_floor_bytes must be a non-negative integer");
      o.ratio_floor_bytes = static_cast<std::uint64_t>(*v);
    } else if (k == "compression_level") {
      auto v = value.value<std::int64_t>();
      if (!v || *v < 0 || *v > 9) throw ConfigError("compression_level must be an integer from 0 (store) to 9");
      o.compression_level = static_cast<int>(*v);
    } else if (k == "output") {
      auto v = value.value<std::string>();
      if (!v || (*v != "zip" && *v != "attachments"))
        throw ConfigError("output must be \"zip\" (one rebuilt zip) or \"attachments\" (in a mail, each file as its own attachment)");
      o.output_attachments = *v == "attachments";
    } else if (k == "notice_file") {
      auto v = value.value<bool>();
      if (!v) throw ConfigError("notice_file must be true or false");
      o.notice_file = *v;
    } else if (k == "formats") {
      const toml::array* list = value.as_array();
      if (!list) throw ConfigError("formats must be a list, e.g. [\"zip\", \"7z\", \"lha\"]");
      std::string known;
      for (const auto& f : container_formats()) known += std::string(known.empty() ? "" : ", ") + f.name;
      known += ", compressed";
      o.formats.clear();
      for (const auto& element : *list) {
        auto name = element.value<std::string>();
        bool ok = name && (*name == "compressed" || std::any_of(container_formats().begin(), container_formats().end(),
                                                                 [&](const FormatSupport& f) { return *name == f.name; }));
        if (!ok) throw ConfigError("formats: unknown format (known: " + known + ")");
        o.formats.push_back(*name);
      }
    } else {
      throw ConfigError("unknown option \"" + k +
                        "\" (known: fallback_charset, max_expansion_ratio, ratio_floor_bytes, notice_file, formats, "
                        "compression_level, output)");
    }
  }
  return o;
}

std::unique_ptr<Sanitizer> make_archive_flatten(const toml::table& options) {
  return std::make_unique<ArchiveFlatten>(parse_archive_flatten_options(options));
}

}  // namespace mukaika
