#include "type_detector.h"

#include "ole/compound_file.h"

#include <magic.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "ascii.h"

namespace mukaika {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

struct MimeKind {
  std::string_view mime;
  Kind kind;
};

// Exact MIME types; prefixes are handled in kind_from_mime().
constexpr std::array kMimeKinds{
    MimeKind{"message/rfc822", Kind::Mail},
    MimeKind{"message/news", Kind::Mail},
    MimeKind{"application/mbox", Kind::Mail},
    MimeKind{"text/plain", Kind::Text},
    MimeKind{"text/csv", Kind::Text},
    MimeKind{"text/tab-separated-values", Kind::Text},
    MimeKind{"text/html", Kind::Html},
    MimeKind{"application/xhtml+xml", Kind::Html},
    MimeKind{"text/xml", Kind::Xml},
    MimeKind{"application/xml", Kind::Xml},
    MimeKind{"text/rtf", Kind::Rtf},
    MimeKind{"application/rtf", Kind::Rtf},
    MimeKind{"application/pdf", Kind::Pdf},
    MimeKind{"image/svg+xml", Kind::Svg},
    MimeKind{"application/zip", Kind::Archive},
    MimeKind{"application/x-zip-compressed", Kind::Archive},
    MimeKind{"application/x-7z-compressed", Kind::Archive},
    MimeKind{"application/x-rar", Kind::Archive},
    MimeKind{"application/x-rar-compressed", Kind::Archive},
    MimeKind{"application/vnd.rar", Kind::Archive},
    MimeKind{"application/x-tar", Kind::Archive},
    MimeKind{"application/gzip", Kind::Archive},
    MimeKind{"application/x-gzip", Kind::Archive},
    MimeKind{"application/x-bzip2", Kind::Archive},
    MimeKind{"application/x-xz", Kind::Archive},
    MimeKind{"application/x-lzma", Kind::Archive},
    MimeKind{"application/x-lzip", Kind::Archive},
    MimeKind{"application/zstd", Kind::Archive},
    MimeKind{"application/x-compress", Kind::Archive},
    MimeKind{"application/x-lzh-compressed", Kind::Archive},
    MimeKind{"application/x-lha", Kind::Archive},
    MimeKind{"application/x-arj", Kind::Archive},
    MimeKind{"application/x-cpio", Kind::Archive},
    MimeKind{"application/vnd.ms-cab-compressed", Kind::Archive},
    MimeKind{"application/x-ms-compress-szdd", Kind::Archive},
    MimeKind{"application/java-archive", Kind::Executable},
    MimeKind{"application/msword", Kind::OfficeLegacy},
    MimeKind{"application/vnd.ms-excel", Kind::OfficeLegacy},
    MimeKind{"application/vnd.ms-powerpoint", Kind::OfficeLegacy},
    MimeKind{"application/x-ole-storage", Kind::OfficeLegacy},
    MimeKind{"application/cdfv2", Kind::OfficeLegacy},
    MimeKind{"application/x-sylk", Kind::OfficeLegacy},
    MimeKind{"application/encrypted", Kind::Encrypted},
    MimeKind{"application/x-dosexec", Kind::Executable},
    MimeKind{"application/vnd.microsoft.portable-executable", Kind::Executable},
    MimeKind{"application/x-executable", Kind::Executable},
    MimeKind{"application/x-sharedlib", Kind::Executable},
    MimeKind{"application/x-pie-executable", Kind::Executable},
    MimeKind{"application/x-mach-binary", Kind::Executable},
    MimeKind{"application/x-msdownload", Kind::Executable},
    MimeKind{"application/x-msdos-program", Kind::Executable},
    MimeKind{"application/x-msi", Kind::Executable},
    MimeKind{"application/x-ms-installer", Kind::Executable},
    MimeKind{"application/x-java-applet", Kind::Executable},
    MimeKind{"application/vnd.android.package-archive", Kind::Executable},
    MimeKind{"application/vnd.ms-htmlhelp", Kind::Executable},
    MimeKind{"application/vnd.symbian.install", Kind::Executable},
    MimeKind{"application/x-shellscript", Kind::Script},
    MimeKind{"application/javascript", Kind::Script},
    MimeKind{"application/x-javascript", Kind::Script},
    MimeKind{"text/javascript", Kind::Script},
    MimeKind{"text/vbscript", Kind::Script},
    MimeKind{"text/x-shellscript", Kind::Script},
    MimeKind{"text/x-msdos-batch", Kind::Script},
    MimeKind{"text/x-python", Kind::Script},
    MimeKind{"text/x-script.python", Kind::Script},
    MimeKind{"text/x-perl", Kind::Script},
    MimeKind{"text/x-php", Kind::Script},
    MimeKind{"text/x-ruby", Kind::Script},
    MimeKind{"text/x-tcl", Kind::Script},
    MimeKind{"text/x-lua", Kind::Script},
    MimeKind{"text/x-awk", Kind::Script},
    MimeKind{"application/x-powershell", Kind::Script},
    MimeKind{"application/hta", Kind::Script},
    MimeKind{"application/x-ms-shortcut", Kind::Shortcut},
    MimeKind{"application/x-mswinurl", Kind::Shortcut},
    MimeKind{"application/x-iso9660-image", Kind::DiskImage},
    MimeKind{"application/x-raw-disk-image", Kind::DiskImage},
    MimeKind{"application/x-vhd", Kind::DiskImage},
    MimeKind{"application/x-vhdx", Kind::DiskImage},
    MimeKind{"application/x-qemu-disk", Kind::DiskImage},
    MimeKind{"application/x-virtualbox-vdi", Kind::DiskImage},
    MimeKind{"application/x-vmdk", Kind::DiskImage},
    MimeKind{"application/x-apple-diskimage", Kind::DiskImage},
    MimeKind{"application/x-udf-image", Kind::DiskImage},
    MimeKind{"application/x-empty", Kind::Empty},
    MimeKind{"inode/x-empty", Kind::Empty},
};

struct ExtKind {
  std::string_view ext;
  Kind kind;
};

// Extensions that mean something to Windows or a browser. Only these are
// trusted as evidence, and only in the stricter direction.
constexpr std::array kExtKinds{
    ExtKind{"exe", Kind::Executable}, ExtKind{"dll", Kind::Executable}, ExtKind{"com", Kind::Executable},
    ExtKind{"scr", Kind::Executable}, ExtKind{"pif", Kind::Executable}, ExtKind{"cpl", Kind::Executable},
    ExtKind{"msi", Kind::Executable}, ExtKind{"msp", Kind::Executable}, ExtKind{"mst", Kind::Executable},
    ExtKind{"sys", Kind::Executable}, ExtKind{"drv", Kind::Executable}, ExtKind{"ocx", Kind::Executable},
    ExtKind{"jar", Kind::Executable}, ExtKind{"class", Kind::Executable}, ExtKind{"apk", Kind::Executable},
    ExtKind{"appx", Kind::Executable}, ExtKind{"msix", Kind::Executable}, ExtKind{"xll", Kind::Executable},
    ExtKind{"gadget", Kind::Executable}, ExtKind{"chm", Kind::Executable}, ExtKind{"elf", Kind::Executable},
    ExtKind{"js", Kind::Script}, ExtKind{"jse", Kind::Script}, ExtKind{"vbs", Kind::Script},
    ExtKind{"vbe", Kind::Script}, ExtKind{"vb", Kind::Script}, ExtKind{"wsf", Kind::Script},
    ExtKind{"wsh", Kind::Script}, ExtKind{"wsc", Kind::Script}, ExtKind{"ps1", Kind::Script},
    ExtKind{"psm1", Kind::Script}, ExtKind{"psd1", Kind::Script}, ExtKind{"ps1xml", Kind::Script},
    ExtKind{"bat", Kind::Script}, ExtKind{"cmd", Kind::Script}, ExtKind{"hta", Kind::Script},
    ExtKind{"sh", Kind::Script}, ExtKind{"bash", Kind::Script}, ExtKind{"py", Kind::Script},
    ExtKind{"pyw", Kind::Script}, ExtKind{"pl", Kind::Script}, ExtKind{"rb", Kind::Script},
    ExtKind{"php", Kind::Script}, ExtKind{"reg", Kind::Script}, ExtKind{"inf", Kind::Script},
    ExtKind{"scf", Kind::Script}, ExtKind{"msc", Kind::Script}, ExtKind{"sct", Kind::Script},
    ExtKind{"applescript", Kind::Script}, ExtKind{"scpt", Kind::Script}, ExtKind{"xbap", Kind::Script},
    ExtKind{"lnk", Kind::Shortcut}, ExtKind{"url", Kind::Shortcut}, ExtKind{"website", Kind::Shortcut},
    ExtKind{"desktop", Kind::Shortcut}, ExtKind{"library-ms", Kind::Shortcut},
    ExtKind{"settingcontent-ms", Kind::Shortcut}, ExtKind{"appref-ms", Kind::Shortcut},
    ExtKind{"searchconnector-ms", Kind::Shortcut},
    ExtKind{"iso", Kind::DiskImage}, ExtKind{"img", Kind::DiskImage}, ExtKind{"vhd", Kind::DiskImage},
    ExtKind{"vhdx", Kind::DiskImage}, ExtKind{"dmg", Kind::DiskImage}, ExtKind{"vmdk", Kind::DiskImage},
    ExtKind{"udf", Kind::DiskImage},
    ExtKind{"html", Kind::Html}, ExtKind{"htm", Kind::Html}, ExtKind{"xhtml", Kind::Html},
    ExtKind{"xht", Kind::Html}, ExtKind{"shtml", Kind::Html}, ExtKind{"mht", Kind::Html},
    ExtKind{"mhtml", Kind::Html}, ExtKind{"svg", Kind::Svg}, ExtKind{"svgz", Kind::Svg},
    ExtKind{"xml", Kind::Xml}, ExtKind{"xsl", Kind::Xml}, ExtKind{"xslt", Kind::Xml},
    ExtKind{"pdf", Kind::Pdf}, ExtKind{"txt", Kind::Text}, ExtKind{"csv", Kind::Text},
    ExtKind{"tsv", Kind::Text}, ExtKind{"log", Kind::Text}, ExtKind{"md", Kind::Text},
    ExtKind{"eml", Kind::Mail}, ExtKind{"rtf", Kind::Rtf},
    ExtKind{"zip", Kind::Archive}, ExtKind{"7z", Kind::Archive}, ExtKind{"rar", Kind::Archive},
    ExtKind{"lzh", Kind::Archive}, ExtKind{"lha", Kind::Archive}, ExtKind{"tar", Kind::Archive},
    ExtKind{"gz", Kind::Archive}, ExtKind{"tgz", Kind::Archive}, ExtKind{"bz2", Kind::Archive},
    ExtKind{"xz", Kind::Archive}, ExtKind{"cab", Kind::Archive},
    ExtKind{"doc", Kind::OfficeLegacy}, ExtKind{"xls", Kind::OfficeLegacy}, ExtKind{"ppt", Kind::OfficeLegacy},
    ExtKind{"dot", Kind::OfficeLegacy}, ExtKind{"xlt", Kind::OfficeLegacy}, ExtKind{"pps", Kind::OfficeLegacy},
    ExtKind{"docx", Kind::Office}, ExtKind{"docm", Kind::Office}, ExtKind{"dotx", Kind::Office},
    ExtKind{"dotm", Kind::Office}, ExtKind{"xlsx", Kind::Office}, ExtKind{"xlsm", Kind::Office},
    ExtKind{"xlsb", Kind::Office}, ExtKind{"xltx", Kind::Office}, ExtKind{"xltm", Kind::Office},
    ExtKind{"xlam", Kind::Office}, ExtKind{"pptx", Kind::Office}, ExtKind{"pptm", Kind::Office},
    ExtKind{"potx", Kind::Office}, ExtKind{"potm", Kind::Office}, ExtKind{"ppsx", Kind::Office},
    ExtKind{"ppsm", Kind::Office},
    ExtKind{"odt", Kind::OpenDocument}, ExtKind{"ods", Kind::OpenDocument}, ExtKind{"odp", Kind::OpenDocument},
    ExtKind{"png", Kind::Image}, ExtKind{"jpg", Kind::Image}, ExtKind{"jpeg", Kind::Image},
    ExtKind{"gif", Kind::Image}, ExtKind{"bmp", Kind::Image}, ExtKind{"tif", Kind::Image},
    ExtKind{"tiff", Kind::Image}, ExtKind{"webp", Kind::Image},
};

// Kinds that run code or mount things when a person double-clicks them.
bool is_active(Kind k) {
  return k == Kind::Executable || k == Kind::Script || k == Kind::Shortcut || k == Kind::DiskImage;
}
// Kinds a browser or Office would render with active content if the name
// says so, even when the bytes look like text.
bool is_active_by_name(Kind k) { return is_active(k) || k == Kind::Html || k == Kind::Svg || k == Kind::Xml; }

}  // namespace

std::string extension_of(std::string_view name) {
  auto slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name = name.substr(slash + 1);
  // Windows ignores trailing dots and spaces: "x.exe. " runs as x.exe.
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.remove_suffix(1);
  auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return ascii_lower(name.substr(dot + 1));
}

Kind kind_from_extension(std::string_view name) {
  std::string ext = extension_of(name);
  if (ext.empty()) return Kind::Unknown;
  for (const auto& e : kExtKinds)
    if (e.ext == ext) return e.kind;
  return Kind::Unknown;
}

Kind kind_from_mime(std::string_view mime_in) {
  std::string mime = ascii_lower(mime_in);
  if (auto semi = mime.find(';'); semi != std::string::npos) mime.resize(semi);
  while (!mime.empty() && mime.back() == ' ') mime.pop_back();
  for (const auto& m : kMimeKinds)
    if (m.mime == mime) return m.kind;
  if (starts_with(mime, "application/vnd.openxmlformats-officedocument.") ||
      starts_with(mime, "application/vnd.ms-word.") || starts_with(mime, "application/vnd.ms-excel.") ||
      starts_with(mime, "application/vnd.ms-powerpoint."))
    return Kind::Office;
  if (starts_with(mime, "application/vnd.oasis.opendocument.")) return Kind::OpenDocument;
  if (starts_with(mime, "image/")) return Kind::Image;
  // text/x-c, text/x-diff, text/troff ...: text. Scripts are listed above.
  if (starts_with(mime, "text/")) return Kind::Text;
  return Kind::Unknown;
}

bool looks_like_mail(std::string_view bytes) {
  std::string_view head = bytes.substr(0, 8192);
  std::size_t pos = 0;
  if (starts_with(head, "From ")) {  // mbox separator line
    pos = head.find('\n');
    if (pos == std::string_view::npos) return false;
    ++pos;
  }
  // Count header lines before the first blank line; a mail has several
  // "Name: value" lines and at least one of the names only mail uses.
  int headers = 0;
  bool mail_name = false;
  while (pos < head.size()) {
    std::size_t end = head.find('\n', pos);
    if (end == std::string_view::npos) break;
    std::string_view line = head.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') continue;  // folded continuation
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string name = ascii_lower(line.substr(0, colon));
    for (char c : name)
      if (c <= ' ' || c > '~') return false;
    ++headers;
    static constexpr std::array kMailNames{"from", "to", "subject", "date", "message-id", "received",
                                           "return-path", "mime-version", "delivered-to", "cc"};
    for (const char* n : kMailNames)
      if (name == n) mail_name = true;
  }
  return headers >= 2 && mail_name;
}

struct TypeDetector::Magic {
  magic_t handle = nullptr;
  magic_t describer = nullptr;  // full descriptions, for the few checks that need them
  ~Magic() {
    if (handle) magic_close(handle);
    if (describer) magic_close(describer);
  }
};

namespace {

// An OLE2 document that cannot be read without a password: PowerPoint's
// RC4 encryption leaves an EncryptedSummary stream; Word and Excel set bit 0
// (password protected) of the summary's Security property, which libmagic's
// CDF reader prints as "Security: N".
bool legacy_office_encrypted(std::string_view bytes, const char* description) {
  if (auto dir = ole::read_directory(bytes)) {
    if (ole::has_entry(*dir, "EncryptedSummary") || ole::has_entry(*dir, "EncryptionInfo") ||
        ole::has_entry(*dir, "EncryptedPackage"))
      return true;
  }
  if (!description) return false;
  const char* sec = std::strstr(description, "Security: ");
  if (!sec) return false;
  long value = std::strtol(sec + 10, nullptr, 10);
  return (value & 1) != 0;
}

}  // namespace

TypeDetector::TypeDetector() : magic_(std::make_unique<Magic>()) {
  // No decompression (that would be parsing hostile archives here) and no
  // following of anything outside the buffer.
  magic_->handle = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
  if (!magic_->handle) throw std::runtime_error("libmagic: magic_open failed");
  if (magic_load(magic_->handle, nullptr) != 0)
    throw std::runtime_error(std::string("libmagic: cannot load the magic database: ") +
                             magic_error(magic_->handle));
  magic_->describer = magic_open(MAGIC_NONE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS);
  if (!magic_->describer || magic_load(magic_->describer, nullptr) != 0)
    throw std::runtime_error("libmagic: cannot load the magic database for descriptions");
}

TypeDetector::~TypeDetector() = default;

std::string TypeDetector::mime_of(std::string_view bytes) {
  if (bytes.empty()) return "application/x-empty";
  const char* r = magic_buffer(magic_->handle, bytes.data(), bytes.size());
  if (!r) return "application/octet-stream";
  return r;
}

TypeVerdict TypeDetector::classify(std::string_view bytes, std::string_view name,
                                   std::string_view declared_type) {
  TypeVerdict v;
  v.detected_type = mime_of(bytes);
  Kind content = kind_from_mime(v.detected_type);
  if (content == Kind::OfficeLegacy &&
      legacy_office_encrypted(bytes, magic_buffer(magic_->describer, bytes.data(), bytes.size()))) {
    content = Kind::Encrypted;
  }
  // libmagic names some OOXML packages only in its description ("Microsoft
  // OOXML", MIME application/octet-stream): those whose first zip member is
  // not [Content_Types].xml. XPS is described the same way; office.strip_active
  // tells them apart and removes what is not Word, Excel or PowerPoint.
  if (content == Kind::Unknown && v.detected_type == "application/octet-stream") {
    const char* d = magic_buffer(magic_->describer, bytes.data(), bytes.size());
    if (d && std::string_view(d).starts_with("Microsoft OOXML")) content = Kind::Office;
  }
  if (content == Kind::Text && looks_like_mail(bytes)) {
    content = Kind::Mail;
    v.detected_type = "message/rfc822";
  }
  Kind by_name = kind_from_extension(name);
  Kind by_declared = kind_from_mime(declared_type);
  // libmagic guesses some plain text as obscure formats ("SPring-8 ..." is
  // HP-GL). Bytes it cannot place that the sender calls text are text:
  // text.normalize still refuses them if they are not.
  if (content == Kind::Unknown && (by_declared == Kind::Text || by_name == Kind::Text)) {
    v.kind = Kind::Text;
    return v;
  }
  if (by_declared == Kind::Text) by_declared = Kind::Unknown;  // text/plain is declared for anything

  if (is_active(content)) {
    v.kind = content;
    // An executable is an executable whatever it is called; but calling it a
    // document is a disguise, and that is blocked, not merely removed.
    for (Kind claim : {by_name, by_declared}) {
      if (claim != Kind::Unknown && !is_active(claim) && content != Kind::Script) {
        v.disguised = true;
        v.claimed = std::string(to_string(claim));
      }
    }
    return v;
  }
  // A mail saved as ".eml" or declared message/rfc822 whose headers our
  // sniff did not recognise is still parsed as a mail (and rebuilt).
  if (content == Kind::Text && (by_name == Kind::Mail || by_declared == Kind::Mail)) {
    v.kind = Kind::Mail;
    return v;
  }
  for (Kind claim : {by_name, by_declared}) {
    if (!is_active_by_name(claim)) continue;
    if (content == Kind::Text || content == Kind::Unknown || content == Kind::Xml || content == claim ||
        (claim == Kind::Xml && content == Kind::Html) || (claim == Kind::Html && content == Kind::Xml)) {
      // The bytes look harmless but the name makes Windows or a browser run
      // or render them: treat them as what the name says.
      v.kind = claim;
    } else if (is_active(claim)) {
      // "x.exe" holding a PDF: something is being hidden.
      v.kind = content;
      v.disguised = true;
      v.claimed = std::string(to_string(claim));
    } else {
      v.kind = content;
    }
    return v;
  }
  v.kind = content;
  return v;
}

}  // namespace mukaika
