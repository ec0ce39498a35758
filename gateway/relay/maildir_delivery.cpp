#include "relay/maildir_delivery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "unique_fd.h"

namespace mukaika {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

void make_dir(const std::filesystem::path& p) {
  if (::mkdir(p.c_str(), 0750) == 0 || errno == EEXIST) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0)
      throw MaildirError("maildir: cannot use " + p.string() + ": " + errno_text(errno));
    if (!S_ISDIR(st.st_mode)) throw MaildirError("maildir: " + p.string() + " exists and is not a directory");
    if (::access(p.c_str(), W_OK | X_OK) != 0)
      throw MaildirError("maildir: cannot write to " + p.string() + ": " + errno_text(errno));
    return;
  }
  throw MaildirError("maildir: cannot create " + p.string() + ": " + errno_text(errno));
}

bool fsync_dir(const std::filesystem::path& p, int& err) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) {
    err = errno;
    return false;
  }
  return true;
}

SmtpReply temporary(const std::string& what, int err) {
  return SmtpReply{451, "4.3.0", what + ": " + errno_text(err)};
}

}  // namespace

MaildirDelivery::MaildirDelivery(std::filesystem::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) throw MaildirError("maildir: empty directory name");
  std::error_code ec;
  if (dir_.has_parent_path() && !dir_.parent_path().empty()) {
    std::filesystem::create_directories(dir_.parent_path(), ec);
    if (ec) throw MaildirError("maildir: cannot create " + dir_.parent_path().string() + ": " + ec.message());
  }
  make_dir(dir_);
  for (const char* sub : {"tmp", "new", "cur"}) make_dir(dir_ / sub);

  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  // Maildir names: '/' and ':' are escaped as octal (the Courier/Dovecot way).
  for (const char* p = host; *p; ++p) {
    if (*p == '/') hostname_ += "\\057";
    else if (*p == ':') hostname_ += "\\072";
    else hostname_ += *p;
  }
}

std::string MaildirDelivery::describe() const { return "maildir " + dir_.string(); }

std::string MaildirDelivery::unique_name() {
  static std::atomic<unsigned long> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto sec = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1'000'000;
  char rand_hex[17];
  std::snprintf(rand_hex, sizeof rand_hex, "%016llx", static_cast<unsigned long long>(rng()));
  return std::to_string(sec) + ".M" + std::to_string(usec) + "P" + std::to_string(::getpid()) + "Q" +
         std::to_string(++counter) + "R" + rand_hex + "." + hostname_;
}

SmtpReply MaildirDelivery::deliver_one(const std::string& recipient, const std::string& message) {
  // The recipient goes into a header line: a line break in it would be a
  // header injection. The SMTP server never lets one through; refuse anyway.
  for (unsigned char c : recipient)
    if (c < 0x20 || c == 0x7f) return SmtpReply{553, "5.1.3", "recipient address contains a control character"};

  const std::string name = unique_name();
  const auto tmp_path = dir_ / "tmp" / name;
  const auto new_path = dir_ / "new" / name;
  const std::string header = "Delivered-To: " + recipient + "\r\n";

  UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd) return temporary("maildir: cannot create " + tmp_path.string(), errno);
  auto remove_tmp = [&] { ::unlink(tmp_path.c_str()); };

  for (std::string_view part : {std::string_view(header), std::string_view(message)}) {
    while (!part.empty()) {
      ssize_t n = ::write(fd.get(), part.data(), part.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        remove_tmp();
        return temporary("maildir: cannot write " + tmp_path.string(), err);
      }
      part.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  if (::fsync(fd.get()) != 0) {
    int err = errno;
    remove_tmp();
    return temporary("maildir: cannot fsync " + tmp_path.string(), err);
  }
  if (::close(fd.release()) != 0) {
    int err = errno;
    remove_tmp();
    return temporary("maildir: cannot close " + tmp_path.string(), err);
  }
  if (::rename(tmp_path.c_str(), new_path.c_str()) != 0) {
    int err = errno;
    remove_tmp();
    return temporary("maildir: cannot move into " + (dir_ / "new").string(), err);
  }
  int err = 0;
  if (!fsync_dir(dir_ / "new", err)) {
    // Not durable: take it back so that the retry does not make a duplicate.
    ::unlink(new_path.c_str());
    return temporary("maildir: cannot fsync " + (dir_ / "new").string(), err);
  }
  return SmtpReply{250, "2.0.0", "delivered to maildir as " + name};
}

std::vector<RecipientResult> MaildirDelivery::deliver(const Envelope& /*envelope*/,
                                                      const std::vector<std::string>& recipients,
                                                      const std::string& message) {
  std::vector<RecipientResult> out;
  out.reserve(recipients.size());
  for (const auto& r : recipients) out.push_back(RecipientResult{r, deliver_one(r, message)});
  return out;
}

}  // namespace mukaika
