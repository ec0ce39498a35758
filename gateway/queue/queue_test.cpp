// Tests of the queue: spool, quarantine, audit log and queue manager, with a
// fake Delivery and a fake sanitizer (the real SMTP peers are tested in
// gateway/smtp and gateway/relay). Crash tests fork a child that really
// dies (SIGKILL) at each step and recover in the parent.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "queue/audit_log.h"
#include "queue/quarantine.h"
#include "queue/queue_manager.h"
#include "queue/spool.h"

namespace mukaika {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mukaika-queue-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<nlohmann::json> read_audit(const fs::path& p) {
  std::vector<nlohmann::json> out;
  for (const auto& line : read_lines(p)) out.push_back(nlohmann::json::parse(line));  // throws if not JSON
  return out;
}

size_t count_files(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) ++n;
  return n;
}

Envelope make_envelope(std::string from = "sender@example.com", std::vector<std::string> to = {"user@lg.example.jp"}) {
  Envelope e;
  e.client_address = "192.0.2.10";
  e.helo = "mx.example.com";
  e.mail_from = std::move(from);
  e.recipients = std::move(to);
  e.received = Clock::now();
  return e;
}

std::string make_mail(const std::string& token) {
  return "From: sender@example.com\r\nTo: user@lg.example.jp\r\nSubject: test " + token +
         "\r\nMessage-ID:\r\n <" + token + "@example.com>\r\n\r\nbody " + token + "\r\n";
}

// The X-Queue-Id header the fake sanitizer puts into its output.
std::string queue_id_of(const std::string& message) {
  auto pos = message.find("X-Queue-Id: ");
  if (pos == std::string::npos) return "";
  pos += 12;
  return message.substr(pos, message.find('\r', pos) - pos);
}

SanitizedMail fake_sanitize(const std::string& id, const std::string& original) {
  SanitizedMail m;
  m.verdict = SanitizedMail::Verdict::Sanitized;
  m.message = "X-Queue-Id: " + id + "\r\nX-Mukaika: sanitized\r\n" + original;
  m.report = {{"actions", {{{"action", "html.to_text"}, {"reason", "HTML removed"}}}}};
  return m;
}

// A next hop that answers what the test scripts and remembers every call;
// optionally appends the delivered queue ids to a file (survives a crash).
class FakeDelivery : public Delivery {
 public:
  explicit FakeDelivery(std::string name = "fake lgwan", fs::path record = {})
      : name_(std::move(name)), record_(std::move(record)) {}
  struct Call {
    Envelope envelope;
    std::vector<std::string> recipients;
    std::string message;
  };
  std::function<SmtpReply(const std::string& rcpt)> reply = [](const std::string&) {
    return SmtpReply{250, "2.0.0", "ok"};
  };
  std::vector<Call> calls;

  std::vector<RecipientResult> deliver(const Envelope& envelope, const std::vector<std::string>& recipients,
                                       const std::string& message) override {
    calls.push_back({envelope, recipients, message});
    std::vector<RecipientResult> out;
    for (const auto& r : recipients) out.push_back({r, reply(r)});
    if (!record_.empty()) {
      int fd = ::open(record_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      std::string line = queue_id_of(message) + "\n";
      EXPECT_EQ(::write(fd, line.data(), line.size()), ssize_t(line.size()));
      ::close(fd);
    }
    return out;
  }
  std::string describe() const override { return name_; }

 private:
  std::string name_;
  fs::path record_;
};

std::string fake_bounce(const Envelope& env, const std::vector<RecipientResult>& failed, const std::string& headers) {
  std::string out = "From: MAILER-DAEMON@gateway\r\nTo: " + env.mail_from + "\r\nSubject: Undelivered\r\n\r\n";
  for (const auto& f : failed) out += f.recipient + ": " + std::to_string(f.reply.code) + " " + f.reply.text + "\r\n";
  return out + "--- original headers ---\r\n" + headers;
}

std::string fake_notice(const Envelope&, const SanitizedMail& r, const std::string& id) {
  return "Subject: =?UTF-8?B?44Oh44O844Or44KS6YGu5pat44GX44G+44GX44Gf?=\r\nX-Queue-Id: " + id + "\r\n\r\n" + r.reason +
         "\r\n";
}

// A spool, quarantine, audit log and fakes in one temporary directory, with
// a clock the test moves.
struct Rig {
  TempDir tmp;
  // Ahead of the real clock that stamps messages at accept(), as time moves on in production.
  // Whole milliseconds: meta.json stores times in milliseconds.
  Clock::time_point now = std::chrono::floor<std::chrono::milliseconds>(Clock::now() + 1s);
  std::unique_ptr<Spool> spool = std::make_unique<Spool>(tmp.path() / "spool");
  Quarantine quarantine{tmp.path() / "quarantine", 30};
  AuditLog audit{tmp.path() / "audit.jsonl"};
  FakeDelivery lgwan{"fake lgwan"};
  FakeDelivery internet{"fake internet"};
  SanitizeFn sanitize = fake_sanitize;
  std::vector<std::string> logs;
  QueueOptions options;
  std::unique_ptr<QueueManager> manager;

  Rig() {
    options.clock = [this] { return now; };
    options.log = [this](const std::string& l) { logs.push_back(l); };
  }
  QueueManager& make(bool with_bounce_delivery = true) {
    manager = std::make_unique<QueueManager>(
        QueueParts{*spool, quarantine, audit, lgwan, with_bounce_delivery ? &internet : nullptr,
                   [this](const std::string& id, const std::string& o) { return sanitize(id, o); }, fake_bounce,
                   fake_notice},
        options);
    return *manager;
  }
  fs::path audit_path() const { return tmp.path() / "audit.jsonl"; }
  std::vector<nlohmann::json> audit_of(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (auto& j : read_audit(audit_path()))
      if (j["type"] == type) out.push_back(j);
    return out;
  }
};

// From now on the next hop accepts: flush, and run passes until `id` is
// done (three at most).
void next_hop_accepts_then_run(Rig& rig, QueueManager& m, const std::string& id) {
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{250, "2.0.0", "ok"}; };
  m.flush();
  for (int i = 0; i < 3 && rig.spool->find(id) != SpoolState::Done; ++i) {
    rig.now += 1s;
    m.run_once();
  }
}

// ---------------------------------------------------------------- Spool

TEST(Spool, AcceptIsDurableAndLeavesNoTemp) {
  TempDir tmp;
  Spool spool(tmp.path() / "spool");
  const std::string mail = make_mail("a") + std::string("\x00\xff binary", 9);
  const auto id = spool.accept(make_envelope(), mail);
  EXPECT_EQ(id.size(), 24u);
  const auto dir = tmp.path() / "spool" / "incoming" / id;
  EXPECT_TRUE(fs::is_regular_file(dir / "original.eml"));
  EXPECT_TRUE(fs::is_regular_file(dir / "meta.json"));
  EXPECT_TRUE(fs::is_empty(tmp.path() / "spool" / "tmp"));
  EXPECT_EQ(spool.load_original(SpoolState::Incoming, id), mail);
  const auto meta = spool.load_meta(SpoolState::Incoming, id);
  EXPECT_EQ(meta.envelope.mail_from, "sender@example.com");
  EXPECT_EQ(meta.envelope.helo, "mx.example.com");
  ASSERT_EQ(meta.recipients.size(), 1u);
  EXPECT_EQ(meta.recipients[0].status, recipient_status::pending);
  EXPECT_EQ(meta.sha256_original.size(), 64u);
  EXPECT_EQ(spool.list(SpoolState::Incoming), std::vector<std::string>{id});
  EXPECT_EQ(spool.find(id), SpoolState::Incoming);
}

TEST(Spool, QueueIdsSortByTimeAndAreUnique) {
  std::set<std::string> ids;
  std::string last;
  for (int i = 0; i < 1000; ++i) {
    auto id = Spool::new_queue_id();
    EXPECT_GE(id.substr(0, 16), last.substr(0, std::min<size_t>(16, last.size())));
    last = id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Spool, StartRemovesWhatACrashLeft) {
  TempDir tmp;
  std::string kept, done, finished;
  {
    Spool spool(tmp.path() / "spool");
    kept = spool.accept(make_envelope(), make_mail("k"));
    done = spool.accept(make_envelope(), make_mail("d"));
    spool.save_output(SpoolState::Incoming, done, "out");
    finished = spool.accept(make_envelope(), make_mail("f"));
    spool.save_output(SpoolState::Incoming, finished, "out");
    spool.move(finished, SpoolState::Incoming, SpoolState::Done);  // output emptied
  }
  const auto root = tmp.path() / "spool";
  // A half accepted message (no 250 was given), a half written meta.json and
  // a done message whose files were not yet removed.
  fs::create_directory(root / "tmp" / "0000000000000001aaaaaaaa");
  std::ofstream(root / "tmp" / "0000000000000001aaaaaaaa" / "original.eml") << "half";
  std::ofstream(root / "incoming" / kept / "meta.json.tmp") << "{half";
  fs::rename(root / "incoming" / done, root / "done" / done);

  Spool spool(root);
  EXPECT_TRUE(fs::is_empty(root / "tmp"));
  EXPECT_FALSE(fs::exists(root / "incoming" / kept / "meta.json.tmp"));
  EXPECT_EQ(spool.load_original(SpoolState::Incoming, kept), make_mail("k"));
  EXPECT_FALSE(fs::exists(root / "done" / done / "original.eml"));
  EXPECT_FALSE(fs::exists(root / "done" / done / "output.eml"));
  EXPECT_TRUE(fs::exists(root / "done" / done / "meta.json"));
  // An output emptied by a finished move is no leftover: it stays until purged.
  EXPECT_TRUE(fs::exists(root / "done" / finished / "output.eml"));
}

// The metadata reads back with `attempts`, takes one more update, and that
// update is what reads back next.
void expect_state_then_update(Spool& spool, const std::string& id, int attempts) {
  auto meta = spool.load_meta(SpoolState::Incoming, id);
  EXPECT_EQ(meta.attempts, attempts);
  meta.attempts = attempts + 1;
  spool.save_meta(SpoolState::Incoming, meta);
  EXPECT_EQ(spool.load_meta(SpoolState::Incoming, id).attempts, attempts + 1);
}

TEST(Spool, MetadataIsALogWhoseLastCompleteLineIsTheState) {
  TempDir tmp;
  const auto root = tmp.path() / "spool";
  std::string id;
  {
    Spool spool(root);
    id = spool.accept(make_envelope(), make_mail("log"));
    auto meta = spool.load_meta(SpoolState::Incoming, id);
    for (int i = 1; i <= 3; ++i) {
      meta.attempts = i;
      spool.save_meta(SpoolState::Incoming, meta);
    }
    EXPECT_EQ(read_lines(root / "incoming" / id / "meta.json").size(), 4u);  // appended, not replaced
    EXPECT_EQ(spool.load_meta(SpoolState::Incoming, id).attempts, 3);
  }
  // A crash cut the next record short: it is ignored, and cut off at start
  // so that the records after it stay readable.
  { std::ofstream(root / "incoming" / id / "meta.json", std::ios::app) << "{\"queue_id\":\"" << id << "\",\"attem"; }
  {
    Spool spool(root);
    expect_state_then_update(spool, id, 3);
    EXPECT_EQ(read_lines(root / "incoming" / id / "meta.json").size(), 5u);
  }
  // Past 64 KiB of records the log is replaced by its last one.
  {
    Spool spool(root);
    auto meta = spool.load_meta(SpoolState::Incoming, id);
    meta.last_error = std::string(20000, 'x');
    for (int i = 0; i < 10; ++i) {
      spool.save_meta(SpoolState::Incoming, meta);
      EXPECT_LE(fs::file_size(root / "incoming" / id / "meta.json"), 64u * 1024 + 25000) << i;
    }
    EXPECT_LT(read_lines(root / "incoming" / id / "meta.json").size(), 4u);
    EXPECT_EQ(spool.load_meta(SpoolState::Incoming, id).last_error.size(), 20000u);
  }
}

// One message accepted by a spool that is closed again (as by a stop).
std::string accept_one(const fs::path& root, const std::string& token) {
  Spool spool(root);
  return spool.accept(make_envelope(), make_mail(token));
}

TEST(Spool, MetadataOfAnOlderVersionIsRead) {
  TempDir tmp;
  const auto root = tmp.path() / "spool";
  const std::string id = accept_one(root, "old");
  // One pretty-printed document without a final newline, as before.
  const auto file = root / "incoming" / id / "meta.json";
  auto j = nlohmann::json::parse(read_lines(file).at(0));
  j["attempts"] = 7;
  { std::ofstream(file, std::ios::trunc) << j.dump(2); }
  Spool spool(root);
  expect_state_then_update(spool, id, 7);
}

TEST(Spool, StartKeepsTheLaterStateOfAMessageLeftInTwo) {
  TempDir tmp;
  const auto root = tmp.path() / "spool";
  const std::string id = accept_one(root, "twice");
  fs::copy(root / "incoming" / id, root / "sanitized" / id);
  Spool spool(root);
  EXPECT_EQ(spool.list(SpoolState::Incoming).size(), 0u);
  EXPECT_EQ(spool.list(SpoolState::Sanitized), std::vector<std::string>{id});
}

TEST(Spool, SecondOpenOfTheSameSpoolIsRefused) {
  TempDir tmp;
  Spool first(tmp.path() / "spool");
  try {
    Spool second(tmp.path() / "spool");
    FAIL() << "a second Spool on the same directory must be refused";
  } catch (const SpoolError& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
}

TEST(Spool, UnwritableDirectoryIsAClearError) {
  TempDir tmp;
  std::ofstream(tmp.path() / "file") << "x";
  try {
    Spool spool(tmp.path() / "file");
    FAIL();
  } catch (const SpoolError& e) {
    EXPECT_NE(std::string(e.what()).find((tmp.path() / "file").string()), std::string::npos) << e.what();
  }
}

TEST(Spool, DiskFullThrowsAndLeavesNothingHalfWritten) {
  TempDir tmp;
  const auto mnt = tmp.path() / "small";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) << "); needs root";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    Spool spool(mnt / "spool");
    const std::string big(256 * 1024, 'x');
    try {
      spool.accept(make_envelope(), make_mail("big") + big);
      FAIL() << "accept of 256 KiB into a 64 KiB file system must throw";
    } catch (const SpoolError& e) {
      EXPECT_NE(std::string(e.what()).find("disk full"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find((mnt / "spool").string()), std::string::npos) << e.what();
    }
    EXPECT_TRUE(spool.list(SpoolState::Incoming).empty());
    EXPECT_TRUE(fs::is_empty(mnt / "spool" / "tmp"));
    // The space came back: a small message is accepted.
    const auto id = spool.accept(make_envelope(), make_mail("small"));
    EXPECT_EQ(spool.load_original(SpoolState::Incoming, id), make_mail("small"));
  }
}

TEST(Spool, ListQueueShowsStateSenderAndAttempts) {
  TempDir tmp;
  Spool spool(tmp.path() / "spool");
  const auto id = spool.accept(make_envelope(), make_mail("l"));
  auto meta = spool.load_meta(SpoolState::Incoming, id);
  meta.attempts = 3;
  meta.last_error = "sanitizer: timeout";
  spool.save_meta(SpoolState::Incoming, meta);
  const auto entries = list_queue(tmp.path() / "spool", Clock::now());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].queue_id, id);
  EXPECT_EQ(entries[0].state, SpoolState::Incoming);
  EXPECT_EQ(entries[0].sender, "sender@example.com");
  EXPECT_EQ(entries[0].attempts, 3);
  EXPECT_EQ(entries[0].last_error, "sanitizer: timeout");
  const auto text = format_queue(entries, Clock::now());
  EXPECT_NE(text.find(id), std::string::npos);
  EXPECT_NE(text.find("sanitizer: timeout"), std::string::npos);
}

// ---------------------------------------------------------------- Quarantine

TEST(Quarantine, KeepsTheOriginalByteExact) {
  TempDir tmp;
  Quarantine q(tmp.path() / "q", 30);
  std::string original = make_mail("q");
  for (int i = 0; i < 256; ++i) original += static_cast<char>(i);
  const auto env = make_envelope();
  const auto path = q.keep("0123456789abcdef01234567", original, env, {{"verdict", "sanitized"}});
  EXPECT_EQ(path, tmp.path() / "q" / Quarantine::day_name(env.received) / "0123456789abcdef01234567.eml");
  std::ifstream in(path, std::ios::binary);
  std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, original);
  auto meta = nlohmann::json::parse(std::ifstream(path.parent_path() / "0123456789abcdef01234567.json"));
  EXPECT_EQ(meta["summary"]["verdict"], "sanitized");
  EXPECT_EQ(meta["mail_from"], "sender@example.com");
  EXPECT_EQ(meta["sha256_original"].get<std::string>().size(), 64u);
  EXPECT_EQ(count_files(tmp.path() / "q"), 2u);  // no temporary files left
}

TEST(Quarantine, ExpireRemovesOldDaysOnly) {
  TempDir tmp;
  Quarantine q(tmp.path() / "q", 30);
  const auto now = Clock::now();
  auto env_at = [](Clock::time_point t) {
    auto e = make_envelope();
    e.received = t;
    return e;
  };
  q.keep("00000000000000000000000a", "old1", env_at(now - 40 * 24h), {});
  q.keep("00000000000000000000000b", "old2", env_at(now - 40 * 24h), {});
  q.keep("00000000000000000000000c", "older", env_at(now - 100 * 24h), {});
  q.keep("00000000000000000000000d", "edge", env_at(now - 29 * 24h), {});
  q.keep("00000000000000000000000e", "today", env_at(now), {});
  fs::create_directory(tmp.path() / "q" / "operator-notes");  // not a day: left alone
  std::vector<std::string> days;
  EXPECT_EQ(q.expire(now, &days), 3u);
  std::sort(days.begin(), days.end());
  EXPECT_EQ(days, (std::vector<std::string>{Quarantine::day_name(now - 100 * 24h), Quarantine::day_name(now - 40 * 24h)}));
  EXPECT_FALSE(fs::exists(tmp.path() / "q" / Quarantine::day_name(now - 40 * 24h)));
  EXPECT_FALSE(fs::exists(tmp.path() / "q" / Quarantine::day_name(now - 100 * 24h)));
  EXPECT_TRUE(fs::exists(tmp.path() / "q" / Quarantine::day_name(now - 29 * 24h) / "00000000000000000000000d.eml"));
  EXPECT_TRUE(fs::exists(tmp.path() / "q" / Quarantine::day_name(now) / "00000000000000000000000e.eml"));
  EXPECT_TRUE(fs::exists(tmp.path() / "q" / "operator-notes"));
  EXPECT_EQ(q.expire(now), 0u);
}

TEST(Quarantine, FindsAKeptMessageAndNothingElse) {
  TempDir tmp;
  Quarantine q(tmp.path() / "q", 30);
  const auto now = Clock::now();
  auto env = make_envelope();
  env.received = now - 3 * 24h;
  q.keep("00000000000000000000000f", "three days old", env, {{"verdict", "blocked"}});
  const auto kept = q.find("00000000000000000000000f");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->day, Quarantine::day_name(env.received));
  EXPECT_EQ(kept->eml.filename(), "00000000000000000000000f.eml");
  const auto summary = q.summary("00000000000000000000000f");
  ASSERT_TRUE(summary);
  EXPECT_EQ((*summary)["summary"]["verdict"], "blocked");
  EXPECT_EQ((*summary)["recipients"][0], env.recipients.front());
  EXPECT_FALSE(q.find("000000000000000000000010"));
  // A web page's id never becomes a path outside the quarantine.
  for (const char* hostile : {"", "../q", "..", "a/b", ".hidden", "x\ny"}) EXPECT_FALSE(q.find(hostile)) << hostile;
}

// ---------------------------------------------------------------- AuditLog

TEST(AuditLog, RecordsAreJsonLinesWithTheFields) {
  TempDir tmp;
  AuditLog log(tmp.path() / "audit.jsonl");
  MessageAudit m;
  m.queue_id = "q1";
  m.time = Clock::now();
  m.envelope = make_envelope("a@example.com", {"b@lg.jp", "c@lg.jp"});
  m.message_id = "<x@y>";
  m.sha256_original = std::string(64, 'a');
  m.sha256_output = std::string(64, 'b');
  m.verdict = "sanitized";
  m.actions = {{"actions", {"html removed"}}};
  m.reason = "無害化しました";
  log.write(m);
  DeliveryAudit d;
  d.queue_id = "q1";
  d.time = Clock::now();
  d.kind = "mail";
  d.next_hop = "smtp 10.0.0.5:25";
  d.recipient = "b@lg.jp";
  d.reply = {451, "4.3.0", "try again \xff"};  // invalid UTF-8 from a peer
  d.outcome = "deferred";
  log.write(d);
  const auto lines = read_audit(tmp.path() / "audit.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  for (const char* key : {"queue_id", "time", "client_address", "helo", "mail_from", "recipients", "message_id",
                          "sha256_original", "sha256_output", "verdict", "actions", "reason"})
    EXPECT_TRUE(lines[0].contains(key)) << key;
  EXPECT_EQ(lines[0]["reason"], "無害化しました");
  EXPECT_EQ(lines[0]["recipients"].size(), 2u);
  // ISO 8601 with a zone: ...T..:..:..(.mmm)(+hh:mm|Z)
  const std::string time = lines[0]["time"];
  EXPECT_EQ(time[10], 'T');
  EXPECT_TRUE(time.back() == 'Z' || time[time.size() - 3] == ':') << time;
  for (const char* key : {"queue_id", "time", "next_hop", "recipient", "reply", "outcome"})
    EXPECT_TRUE(lines[1].contains(key)) << key;
  EXPECT_EQ(lines[1]["reply"]["code"], 451);
  EXPECT_EQ(lines[1]["reply"]["enhanced"], "4.3.0");
  EXPECT_EQ(lines[1]["outcome"], "deferred");
}

TEST(AuditLog, ReopenFollowsRotation) {
  TempDir tmp;
  AuditLog log(tmp.path() / "audit.jsonl");
  log.append({{"n", 1}});
  fs::rename(tmp.path() / "audit.jsonl", tmp.path() / "audit.jsonl.1");
  log.append({{"n", 2}});  // still into the rotated file
  log.reopen();
  log.append({{"n", 3}});
  EXPECT_EQ(read_lines(tmp.path() / "audit.jsonl.1").size(), 2u);
  ASSERT_EQ(read_lines(tmp.path() / "audit.jsonl").size(), 1u);
  EXPECT_EQ(read_audit(tmp.path() / "audit.jsonl")[0]["n"], 3);
}

TEST(AuditLog, WriteFailureIsAnError) {
  AuditLog log("/dev/full");
  EXPECT_THROW(log.append({{"n", 1}}), AuditError);
}

TEST(AuditLog, ParsesMessageIdCheaply) {
  EXPECT_EQ(parse_message_id("Subject: x\r\nmessage-id:  <a@b>\r\n\r\nMessage-ID: <body@x>\r\n"), "<a@b>");
  EXPECT_EQ(parse_message_id("Message-ID:\r\n <folded@x>\r\nTo: y\r\n\r\n"), "<folded@x>");
  EXPECT_EQ(parse_message_id("Subject: x\n\nMessage-ID: <in-body@x>\n"), "");
  EXPECT_EQ(header_block("A: 1\r\nB: 2\r\n\r\nbody"), "A: 1\r\nB: 2\r\n");
}

// ---------------------------------------------------------------- QueueManager

TEST(QueueManager, SanitizesQuarantinesAuditsAndDelivers) {
  Rig rig;
  const auto env = make_envelope("sender@example.com", {"a@lg.jp", "b@lg.jp"});
  const auto id = rig.spool->accept(env, make_mail("m1"));
  rig.make().run_once();

  ASSERT_EQ(rig.lgwan.calls.size(), 1u);
  EXPECT_EQ(rig.lgwan.calls[0].envelope.mail_from, "sender@example.com");
  EXPECT_EQ(rig.lgwan.calls[0].recipients, (std::vector<std::string>{"a@lg.jp", "b@lg.jp"}));
  EXPECT_EQ(rig.lgwan.calls[0].message, fake_sanitize(id, make_mail("m1")).message);
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  EXPECT_FALSE(fs::exists(rig.spool->message_dir(SpoolState::Done, id) / "original.eml"));
  // Emptied, not unlinked (no inode freed per mail).
  EXPECT_EQ(fs::file_size(rig.spool->message_dir(SpoolState::Done, id) / "output.eml"), 0u);
  const auto meta = rig.spool->load_meta(SpoolState::Done, id);
  EXPECT_EQ(meta.recipients[0].status, recipient_status::delivered);
  EXPECT_EQ(meta.recipients[1].status, recipient_status::delivered);
  EXPECT_TRUE(meta.audit_pending.empty());

  // 原本保管: the original is in the quarantine, byte-exact.
  std::ifstream in(rig.tmp.path() / "quarantine" / Quarantine::day_name(env.received) / (id + ".eml"),
                   std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()), make_mail("m1"));

  const auto messages = rig.audit_of("message");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["queue_id"], id);
  EXPECT_EQ(messages[0]["message_id"], "<m1@example.com>");
  EXPECT_EQ(messages[0]["verdict"], "sanitized");
  EXPECT_EQ(messages[0]["client_address"], "192.0.2.10");
  EXPECT_EQ(messages[0]["sha256_output"], meta.sha256_output);
  EXPECT_EQ(messages[0]["actions"]["actions"][0]["action"], "html.to_text");
  const auto deliveries = rig.audit_of("delivery");
  ASSERT_EQ(deliveries.size(), 2u);
  EXPECT_EQ(deliveries[0]["outcome"], "delivered");
  EXPECT_EQ(deliveries[0]["next_hop"], "fake lgwan");
  EXPECT_EQ(deliveries[1]["recipient"], "b@lg.jp");
}

TEST(QueueManager, QuarantineCopyIsALinkToTheSpoolsOriginal) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{451, "4.3.0", "busy"}; };
  const auto env = make_envelope();
  const auto id = rig.spool->accept(env, make_mail("link"));
  rig.make().run_once();
  const auto kept = rig.tmp.path() / "quarantine" / Quarantine::day_name(env.received) / (id + ".eml");
  struct stat a {}, b {};
  ASSERT_EQ(::stat(kept.c_str(), &a), 0);
  ASSERT_EQ(::stat(rig.spool->original_file(SpoolState::Sanitized, id).c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // the bytes are written and synced once
  EXPECT_EQ(a.st_nlink, 2u);
  // The summary's hash (handed over by the manager, not computed again)
  // is the original's.
  const auto summary = rig.quarantine.summary(id);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ((*summary)["sha256_original"], queue_detail::sha256_hex(make_mail("link")));
}

TEST(QueueManager, OutputACrashCutShortIsSanitizedAgainNotDelivered) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{451, "4.3.0", "busy"}; };
  const auto id = rig.spool->accept(make_envelope(), make_mail("cut"));
  auto& m = rig.make();
  m.run_once();
  ASSERT_EQ(rig.lgwan.calls.size(), 1u);
  // output.eml is not synced: as a crash may leave it, half written.
  const auto out = rig.spool->message_dir(SpoolState::Sanitized, id) / "output.eml";
  const auto good = fake_sanitize(id, make_mail("cut")).message;
  { std::ofstream(out, std::ios::trunc) << good.substr(0, good.size() / 2); }
  next_hop_accepts_then_run(rig, m, id);
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  ASSERT_EQ(rig.lgwan.calls.size(), 2u);
  EXPECT_EQ(rig.lgwan.calls[1].message, good);  // never the cut copy
  EXPECT_EQ(rig.audit_of("sanitize_again").size(), 1u);
}

// Accept renames before it syncs (Spool::store): a crash before the 250
// may leave an original with bytes missing under incoming/. It is never
// sanitized or delivered; hold/ keeps it, and the audit log says why.
TEST(QueueManager, OriginalACrashCutShortBeforeThe250IsHeld) {
  Rig rig;
  const auto id = rig.spool->accept(make_envelope(), make_mail("torn"));
  const auto original = rig.spool->original_file(SpoolState::Incoming, id);
  const std::string whole = make_mail("torn");
  { std::ofstream(original, std::ios::trunc) << whole.substr(0, whole.size() / 3); }
  int sanitized = 0;
  rig.sanitize = [&](const std::string& i, const std::string& o) {
    ++sanitized;
    return fake_sanitize(i, o);
  };
  auto& m = rig.make();
  m.run_once();
  m.run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Hold);
  EXPECT_EQ(sanitized, 0);
  EXPECT_TRUE(rig.lgwan.calls.empty());
  const auto holds = rig.audit_of("hold");
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_NE(holds[0].value("detail", "").find("before the 250"), std::string::npos) << holds[0].dump();
  // An intact one next to it goes through.
  const auto fine = rig.spool->accept(make_envelope(), make_mail("fine"));
  m.run_once();
  EXPECT_EQ(rig.spool->find(fine), SpoolState::Done);
}

// The move from incoming/ to sanitized/ is not synced: a crash may undo
// it. The recorded result is taken as it is: moved again, not sanitized,
// recorded or delivered twice.
TEST(QueueManager, AMoveToSanitizedACrashUndidIsMadeAgain) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{451, "4.3.0", "busy"}; };
  int sanitized = 0;
  rig.sanitize = [&](const std::string& i, const std::string& o) {
    ++sanitized;
    return fake_sanitize(i, o);
  };
  auto& m = rig.make();
  const auto id = rig.spool->accept(make_envelope(), make_mail("undone"));
  m.run_once();
  ASSERT_EQ(rig.spool->find(id), SpoolState::Sanitized);
  ASSERT_EQ(sanitized, 1);
  // As a crash would leave it: the directory back under its old name.
  std::filesystem::rename(rig.spool->message_dir(SpoolState::Sanitized, id),
                          rig.spool->message_dir(SpoolState::Incoming, id));
  next_hop_accepts_then_run(rig, m, id);
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  EXPECT_EQ(sanitized, 1) << "sanitized again";
  EXPECT_EQ(rig.audit_of("message").size(), 1u);
  ASSERT_EQ(rig.lgwan.calls.size(), 2u);  // the 451, then the delivery
  EXPECT_EQ(rig.lgwan.calls[1].message, fake_sanitize(id, make_mail("undone")).message);
}

TEST(QueueManager, DeferredWithBackoffThenDelivered) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{451, "4.3.0", "busy"}; };
  const auto id = rig.spool->accept(make_envelope(), make_mail("d"));
  auto& m = rig.make();
  const auto t0 = rig.now;
  m.run_once();
  ASSERT_EQ(rig.lgwan.calls.size(), 1u);
  auto meta = rig.spool->load_meta(SpoolState::Sanitized, id);
  EXPECT_EQ(meta.next_attempt, t0 + 60s);
  EXPECT_NE(meta.last_error.find("451 busy"), std::string::npos) << meta.last_error;

  rig.now = t0 + 30s;
  EXPECT_EQ(m.run_once(), t0 + 60s);  // not due yet: tells when
  EXPECT_EQ(rig.lgwan.calls.size(), 1u);

  rig.now = t0 + 61s;
  m.run_once();
  EXPECT_EQ(rig.lgwan.calls.size(), 2u);
  EXPECT_EQ(rig.spool->load_meta(SpoolState::Sanitized, id).next_attempt, rig.now + 120s);  // doubled

  // Backoff stops doubling at retry_max.
  for (int i = 0; i < 6; ++i) {
    rig.now += 1h;
    m.run_once();
  }
  EXPECT_EQ(rig.spool->load_meta(SpoolState::Sanitized, id).next_attempt, rig.now + 900s);

  rig.lgwan.reply = [](const std::string&) { return SmtpReply{250, "2.0.0", "queued"}; };
  m.flush();  // due now, no waiting
  m.run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  const auto d = rig.audit_of("delivery");
  EXPECT_EQ(d.front()["outcome"], "deferred");
  EXPECT_EQ(d.back()["outcome"], "delivered");
  EXPECT_EQ(d.back()["reply"]["code"], 250);
}

TEST(QueueManager, PermanentFailureBouncesToTheSenderFromNullSender) {
  Rig rig;
  rig.lgwan.reply = [](const std::string& r) {
    return r == "gone@lg.jp" ? SmtpReply{550, "5.1.1", "no such user"} : SmtpReply{250, "2.0.0", "ok"};
  };
  const auto id = rig.spool->accept(make_envelope("sender@example.com", {"ok@lg.jp", "gone@lg.jp"}), make_mail("b"));
  auto& m = rig.make();
  m.run_once();
  m.run_once();  // the DSN is its own message
  ASSERT_EQ(rig.internet.calls.size(), 1u);
  EXPECT_EQ(rig.internet.calls[0].envelope.mail_from, "");
  EXPECT_EQ(rig.internet.calls[0].recipients, std::vector<std::string>{"sender@example.com"});
  EXPECT_NE(rig.internet.calls[0].message.find("gone@lg.jp: 550 no such user"), std::string::npos);
  EXPECT_NE(rig.internet.calls[0].message.find("Subject: test b"), std::string::npos);  // original headers
  const auto meta = rig.spool->load_meta(SpoolState::Done, id);
  EXPECT_EQ(meta.recipients[0].status, recipient_status::delivered);
  EXPECT_EQ(meta.recipients[1].status, recipient_status::bounced);
  ASSERT_EQ(meta.bounce_ids.size(), 1u);
  EXPECT_EQ(rig.spool->find(meta.bounce_ids[0]), SpoolState::Done);
  EXPECT_EQ(rig.lgwan.calls.size(), 1u);  // the DSN never goes to the LGWAN side
  EXPECT_EQ(rig.audit_of("bounce_queued").size(), 1u);
}

TEST(QueueManager, NullSenderPermanentFailureGoesToHold) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{550, "5.1.1", "no such user"}; };
  const auto id = rig.spool->accept(make_envelope(""), make_mail("n"));
  rig.make().run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Hold);
  EXPECT_TRUE(rig.internet.calls.empty());
  EXPECT_TRUE(fs::exists(rig.spool->message_dir(SpoolState::Hold, id) / "original.eml"));  // kept
  const auto holds = rig.audit_of("hold");
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0]["queue_id"], id);
  EXPECT_NE(holds[0]["detail"].get<std::string>().find("null sender"), std::string::npos);
  EXPECT_EQ(rig.audit_of("delivery").at(0)["outcome"], "bounced");
}

TEST(QueueManager, NoBounceDeliveryGoesToHold) {
  Rig rig;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{554, "5.7.1", "rejected"}; };
  const auto id = rig.spool->accept(make_envelope(), make_mail("h"));
  rig.make(/*with_bounce_delivery=*/false).run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Hold);
  EXPECT_EQ(rig.audit_of("hold").size(), 1u);
}

TEST(QueueManager, GivesUpAfterTheLimitAndBounces) {
  Rig rig;
  rig.options.give_up_after = 5h;
  rig.lgwan.reply = [](const std::string&) { return SmtpReply{0, "", "connection refused"}; };
  const auto id = rig.spool->accept(make_envelope(), make_mail("g"));
  auto& m = rig.make();
  m.run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Sanitized);
  rig.now += 4h;
  m.run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Sanitized);
  rig.now += 2h;
  m.run_once();
  m.run_once();
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  ASSERT_EQ(rig.internet.calls.size(), 1u);
  EXPECT_NE(rig.internet.calls[0].message.find("gave up after 5 hours"), std::string::npos);
  EXPECT_NE(rig.internet.calls[0].message.find("connection refused"), std::string::npos);
}

TEST(QueueManager, SanitizerThatThrowsNeverDelivers) {
  Rig rig;
  int calls = 0;
  bool broken = true;
  rig.sanitize = [&](const std::string& id, const std::string& o) {
    ++calls;
    if (broken) throw std::runtime_error("worker timed out");
    return fake_sanitize(id, o);
  };
  const auto id = rig.spool->accept(make_envelope(), make_mail("s"));
  auto& m = rig.make();
  m.run_once();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(rig.lgwan.calls.empty());
  auto meta = rig.spool->load_meta(SpoolState::Incoming, id);
  EXPECT_EQ(meta.attempts, 1);
  EXPECT_NE(meta.last_error.find("worker timed out"), std::string::npos);
  m.run_once();
  EXPECT_EQ(calls, 1);  // backoff: not retried at once
  rig.now += 61s;
  m.run_once();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(rig.lgwan.calls.empty());
  EXPECT_EQ(rig.audit_of("sanitize_deferred").size(), 2u);
  EXPECT_TRUE(rig.audit_of("message").empty());

  broken = false;
  rig.now += 1h;
  m.run_once();
  EXPECT_EQ(rig.lgwan.calls.size(), 1u);
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
}

TEST(QueueManager, SanitizerThatKeepsFailingEndsInHold) {
  Rig rig;
  rig.options.give_up_after = 2h;
  rig.sanitize = [](const std::string&, const std::string&) -> SanitizedMail { throw std::runtime_error("crash"); };
  const auto id = rig.spool->accept(make_envelope(), make_mail("s"));
  auto& m = rig.make();
  for (int i = 0; i < 5; ++i) {
    m.run_once();
    rig.now += 1h;
  }
  EXPECT_EQ(rig.spool->find(id), SpoolState::Hold);
  EXPECT_TRUE(rig.lgwan.calls.empty());
  EXPECT_EQ(rig.audit_of("hold").size(), 1u);
}

SanitizedMail blocked(const std::string&, const std::string&) {
  SanitizedMail m;
  m.verdict = SanitizedMail::Verdict::Blocked;
  m.reason = "暗号化された ZIP ファイルは受け取れません";
  m.reason_en = "encrypted ZIP";
  return m;
}

TEST(QueueManager, BlockedIsNotDelivered) {
  Rig rig;
  rig.sanitize = blocked;
  const auto id = rig.spool->accept(make_envelope(), make_mail("x"));
  rig.make().run_once();
  EXPECT_TRUE(rig.lgwan.calls.empty());
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  EXPECT_EQ(rig.spool->load_meta(SpoolState::Done, id).recipients[0].status, recipient_status::blocked);
  const auto messages = rig.audit_of("message");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["verdict"], "blocked");
  EXPECT_EQ(messages[0]["reason_en"], "encrypted ZIP");
  EXPECT_EQ(messages[0]["sha256_output"], "");
  // The original is kept in the quarantine all the same.
  EXPECT_EQ(count_files(rig.tmp.path() / "quarantine"), 2u);
}

TEST(QueueManager, BlockedSendsTheNoticeWhenConfigured) {
  Rig rig;
  rig.options.blocked_notice = true;
  rig.sanitize = blocked;
  const auto id = rig.spool->accept(make_envelope(), make_mail("x"));
  rig.make().run_once();
  ASSERT_EQ(rig.lgwan.calls.size(), 1u);
  EXPECT_EQ(rig.lgwan.calls[0].message, fake_notice(make_envelope(), blocked(id, ""), id));
  EXPECT_EQ(rig.lgwan.calls[0].message.find("body x"), std::string::npos);  // nothing of the original
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  EXPECT_EQ(rig.audit_of("delivery").at(0)["kind"], "notice");
}

TEST(QueueManager, AuditFailureDefersAndKeepsTheRecords) {
  Rig rig;
  const auto id = rig.spool->accept(make_envelope(), make_mail("a"));
  {
    AuditLog full("/dev/full");
    QueueManager m(QueueParts{*rig.spool, rig.quarantine, full, rig.lgwan, &rig.internet, fake_sanitize, fake_bounce,
                              fake_notice},
                   rig.options);
    m.run_once();
    m.run_once();
  }
  EXPECT_TRUE(rig.lgwan.calls.empty());  // nothing delivered unaudited
  auto meta = rig.spool->load_meta(SpoolState::Incoming, id);
  EXPECT_EQ(meta.audit_pending.size(), 1u);
  ASSERT_FALSE(rig.logs.empty());
  EXPECT_NE(rig.logs.back().find("audit"), std::string::npos);
  rig.make().run_once();  // the audit log works again
  EXPECT_EQ(rig.spool->find(id), SpoolState::Done);
  EXPECT_EQ(rig.lgwan.calls.size(), 1u);
  EXPECT_GE(rig.audit_of("message").size(), 1u);
}

TEST(QueueManager, ThreadDeliversOnNotifyAndStops) {
  Rig rig;
  rig.options.clock = [] { return Clock::now(); };
  std::atomic<int> delivered{0};
  struct CountingDelivery : FakeDelivery {
    std::atomic<int>* n;
    std::vector<RecipientResult> deliver(const Envelope& e, const std::vector<std::string>& r,
                                         const std::string& m) override {
      auto out = FakeDelivery::deliver(e, r, m);
      ++*n;
      return out;
    }
  } counting;
  counting.n = &delivered;
  QueueManager m(QueueParts{*rig.spool, rig.quarantine, rig.audit, counting, &rig.internet, fake_sanitize,
                            fake_bounce, fake_notice},
                 rig.options);
  m.start();
  for (int i = 0; i < 3; ++i) {
    rig.spool->accept(make_envelope(), make_mail(std::to_string(i)));
    m.notify();
  }
  for (int i = 0; i < 200 && delivered < 3; ++i) std::this_thread::sleep_for(50ms);
  m.stop();
  EXPECT_EQ(delivered, 3);
  EXPECT_EQ(rig.spool->list(SpoolState::Done).size(), 3u);
}

// accepted() hands a new message straight to a sanitizing thread while the
// threads run, and is a plain notification before start().
TEST(QueueManager, AcceptedMessagesGoStraightToTheThreads) {
  Rig rig;
  rig.options.clock = [] { return Clock::now(); };
  auto& m = rig.make();
  const auto before = rig.spool->accept(make_envelope(), make_mail("before"));
  m.accepted(before);  // not started: nothing is taken in hand
  m.run_once();
  EXPECT_EQ(rig.spool->find(before), SpoolState::Done);
  m.start();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(rig.spool->accept(make_envelope(), make_mail("direct" + std::to_string(i))));
    m.accepted(ids.back());
    m.accepted(ids.back());  // twice: still one task
  }
  for (int i = 0; i < 200 && rig.spool->list(SpoolState::Done).size() < 6; ++i) std::this_thread::sleep_for(20ms);
  m.stop();
  for (const auto& id : ids) EXPECT_EQ(rig.spool->find(id), SpoolState::Done) << id;
  EXPECT_EQ(rig.lgwan.calls.size(), 6u);  // each once
}

// Several messages in flight: sanitizing threads work at once, and the
// delivery thread delivers while they do.
TEST(QueueManager, ThreadsSanitizeSeveralAtOnceAndDeliverMeanwhile) {
  Rig rig;
  rig.options.clock = [] { return Clock::now(); };
  rig.options.sanitize_threads = 3;
  std::atomic<int> active{0}, most{0};
  auto slow_sanitize = [&](const std::string& id, const std::string& original) {
    const int now_active = ++active;
    for (int seen = most.load(); now_active > seen && !most.compare_exchange_weak(seen, now_active);) {}
    std::this_thread::sleep_for(150ms);
    --active;
    return fake_sanitize(id, original);
  };
  struct WatchingDelivery : FakeDelivery {
    std::atomic<int>* active = nullptr;
    int while_sanitizing = 0;
    std::atomic<int> delivered{0};
    std::vector<RecipientResult> deliver(const Envelope& e, const std::vector<std::string>& r,
                                         const std::string& m) override {
      if (*active > 0) ++while_sanitizing;
      auto out = FakeDelivery::deliver(e, r, m);
      ++delivered;
      return out;
    }
  } lgwan;
  lgwan.active = &active;
  QueueManager m(QueueParts{*rig.spool, rig.quarantine, rig.audit, lgwan, &rig.internet, slow_sanitize, fake_bounce,
                            fake_notice},
                 rig.options);
  constexpr int kMails = 9;
  std::set<std::string> ids;
  for (int i = 0; i < kMails; ++i) ids.insert(rig.spool->accept(make_envelope(), make_mail(std::to_string(i))));
  const auto t0 = std::chrono::steady_clock::now();
  m.start();
  m.notify();
  for (int i = 0; i < 400 && lgwan.delivered < kMails; ++i) std::this_thread::sleep_for(25ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  m.stop();

  ASSERT_EQ(lgwan.delivered.load(), kMails);
  EXPECT_EQ(most.load(), 3) << "messages were not sanitized at once";
  EXPECT_GT(lgwan.while_sanitizing, 0) << "delivery waited for the sanitizing to end";
  EXPECT_LT(took, 9 * 150ms) << "no faster than one at a time";
  // Each exactly once, as the sanitizer's output, audited, in done/.
  std::set<std::string> delivered;
  for (const auto& c : lgwan.calls) {
    EXPECT_NE(c.message.find("X-Mukaika: sanitized"), std::string::npos);
    EXPECT_TRUE(delivered.insert(queue_id_of(c.message)).second) << "delivered twice: " << queue_id_of(c.message);
  }
  EXPECT_EQ(delivered, ids);
  EXPECT_EQ(rig.spool->list(SpoolState::Done).size(), std::size_t(kMails));
  EXPECT_TRUE(rig.spool->list(SpoolState::Incoming).empty());
  EXPECT_TRUE(rig.spool->list(SpoolState::Sanitized).empty());
  EXPECT_EQ(rig.audit_of("message").size(), std::size_t(kMails));
  EXPECT_EQ(rig.audit_of("delivery").size(), std::size_t(kMails));
  for (const auto& id : ids) {
    auto meta = rig.spool->load_meta(SpoolState::Done, id);
    EXPECT_TRUE(meta.audit_pending.empty());
    EXPECT_EQ(meta.recipients.at(0).status, recipient_status::delivered);
    EXPECT_NE(meta.finished, Clock::time_point{});
  }
}

// The delivery thread delivers the mails waiting for it one after another
// and syncs their records together: a delivered mail stays in sanitized/
// until the batch is recorded, then all are in done/, each once, audited.
TEST(QueueManager, DeliveryThreadRecordsABatchTogether) {
  Rig rig;
  rig.options.clock = [] { return Clock::now(); };
  rig.options.sanitize_threads = 2;
  struct GatedDelivery : FakeDelivery {
    Spool* spool = nullptr;
    std::atomic<bool> open{false};
    std::vector<std::string> order;
    int waiting_for_record = 0;  // earlier mails of the batch still in sanitized/
    std::vector<RecipientResult> deliver(const Envelope& e, const std::vector<std::string>& r,
                                         const std::string& m) override {
      while (!open) std::this_thread::sleep_for(5ms);
      for (const auto& id : order)
        if (spool->find(id) == SpoolState::Sanitized) ++waiting_for_record;
      order.push_back(queue_id_of(m));
      return FakeDelivery::deliver(e, r, m);
    }
  } lgwan;
  lgwan.spool = rig.spool.get();
  QueueManager m(QueueParts{*rig.spool, rig.quarantine, rig.audit, lgwan, &rig.internet, fake_sanitize, fake_bounce,
                            fake_notice},
                 rig.options);
  constexpr int kMails = 40;
  std::set<std::string> ids;
  for (int i = 0; i < kMails; ++i) ids.insert(rig.spool->accept(make_envelope(), make_mail(std::to_string(i))));
  m.start();
  m.notify();
  // All sanitized while the first delivery waits at the gate: the rest queue up.
  for (int i = 0; i < 400 && rig.spool->list(SpoolState::Sanitized).size() < std::size_t(kMails); ++i)
    std::this_thread::sleep_for(10ms);
  lgwan.open = true;
  for (int i = 0; i < 400 && rig.spool->list(SpoolState::Done).size() < std::size_t(kMails); ++i)
    std::this_thread::sleep_for(10ms);
  m.stop();

  EXPECT_GT(lgwan.waiting_for_record, 0) << "each mail was recorded alone";
  std::set<std::string> delivered(lgwan.order.begin(), lgwan.order.end());
  EXPECT_EQ(lgwan.order.size(), std::size_t(kMails)) << "each once";
  EXPECT_EQ(delivered, ids);
  EXPECT_EQ(rig.spool->list(SpoolState::Done).size(), std::size_t(kMails));
  EXPECT_TRUE(rig.spool->list(SpoolState::Sanitized).empty());
  EXPECT_EQ(rig.audit_of("delivery").size(), std::size_t(kMails));
  for (const auto& id : ids) {
    auto meta = rig.spool->load_meta(SpoolState::Done, id);
    EXPECT_EQ(meta.recipients.at(0).status, recipient_status::delivered) << id;
    EXPECT_NE(meta.finished, Clock::time_point{}) << id;
  }
}

// A deferred message is not tried again before its time, however often the
// threads are woken.
TEST(QueueManager, ThreadsLeaveADeferredMessageAloneUntilItIsDue) {
  Rig rig;
  rig.options.clock = [] { return Clock::now(); };
  rig.options.sanitize_threads = 2;
  rig.options.retry_min = 60s;
  std::atomic<int> tries{0};
  struct RefusingDelivery : FakeDelivery {
    std::atomic<int>* tries = nullptr;
    std::vector<RecipientResult> deliver(const Envelope& e, const std::vector<std::string>& r,
                                         const std::string& m) override {
      ++*tries;
      reply = [](const std::string&) { return SmtpReply{451, "4.3.0", "try later"}; };
      return FakeDelivery::deliver(e, r, m);
    }
  } lgwan;
  lgwan.tries = &tries;
  QueueManager m(QueueParts{*rig.spool, rig.quarantine, rig.audit, lgwan, &rig.internet, fake_sanitize, fake_bounce,
                            fake_notice},
                 rig.options);
  const auto deferred = rig.spool->accept(make_envelope(), make_mail("deferred"));
  m.start();
  m.notify();
  for (int i = 0; i < 200 && tries < 1; ++i) std::this_thread::sleep_for(25ms);
  // More mail keeps the threads busy and the scheduler looking.
  for (int i = 0; i < 5; ++i) {
    rig.spool->accept(make_envelope(), make_mail("more" + std::to_string(i)));
    m.notify();
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(300ms);
  m.stop();
  // The deferred one once; the five others once each (they are deferred too).
  EXPECT_EQ(tries.load(), 6);
  auto meta = rig.spool->load_meta(SpoolState::Sanitized, deferred);
  EXPECT_EQ(meta.attempts, 1);
  EXPECT_EQ(meta.recipients.at(0).status, recipient_status::pending);

  // flush() makes it due now.
  QueueManager again(QueueParts{*rig.spool, rig.quarantine, rig.audit, lgwan, &rig.internet, fake_sanitize,
                                fake_bounce, fake_notice},
                     rig.options);
  again.start();
  again.flush();
  for (int i = 0; i < 200 && tries < 12; ++i) std::this_thread::sleep_for(25ms);
  again.stop();
  EXPECT_EQ(tries.load(), 12);
}

TEST(QueueManager, ExpiresTheQuarantineAtStart) {
  Rig rig;
  auto env = make_envelope();
  env.received = rig.now - 45 * 24h;
  rig.quarantine.keep("00000000000000000000000a", "old", env, {});
  rig.make().recover();
  EXPECT_EQ(count_files(rig.tmp.path() / "quarantine"), 0u);
  // Accountable: the retention's removal is in the audit log, with the count and the day.
  std::vector<nlohmann::json> expired;
  for (auto& j : read_audit(rig.audit_path()))
    if (j.value("type", "") == "quarantine_expired") expired.push_back(j);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]["count"], 1);
  EXPECT_EQ(expired[0]["days"], nlohmann::json::array({Quarantine::day_name(env.received)}));
}

// ---------------------------------------------------------------- crashes

std::multiset<std::string> read_ids(const fs::path& p) {
  std::multiset<std::string> out;
  for (auto& l : read_lines(p)) out.insert(l);
  return out;
}

// Runs `fn` in a child process and returns its wait status.
template <typename F>
int in_child(F&& fn) {
  ::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    fn();
    ::_exit(3);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// The child dies by SIGKILL at `crash_step`; the parent recovers. Every
// message is delivered at least once and at most twice.
void crash_and_recover(const std::string& crash_step, SmtpReply reply, int expect_min, int expect_max) {
  TempDir tmp;
  const auto spool_dir = tmp.path() / "spool";
  const auto delivered = tmp.path() / "delivered";
  const auto bounced = tmp.path() / "bounced";
  std::string id;
  {
    Spool spool(spool_dir);
    id = spool.accept(make_envelope(), make_mail("c"));
  }
  const int status = in_child([&] {
    Spool spool(spool_dir);
    Quarantine q(tmp.path() / "q", 30);
    AuditLog audit(tmp.path() / "audit.jsonl");
    FakeDelivery lgwan("lgwan", delivered), internet("internet", bounced);
    lgwan.reply = [&](const std::string&) { return reply; };
    QueueOptions o;
    o.log = [](const std::string&) {};
    o.step_hook = [&](std::string_view s) {
      if (s == crash_step) ::kill(::getpid(), SIGKILL);
    };
    QueueManager m(QueueParts{spool, q, audit, lgwan, &internet, fake_sanitize, fake_bounce, fake_notice}, o);
    m.run_once();
    m.run_once();
  });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "step " << crash_step << " never reached";

  Spool spool(spool_dir);
  Quarantine q(tmp.path() / "q", 30);
  AuditLog audit(tmp.path() / "audit.jsonl");
  FakeDelivery lgwan("lgwan", delivered), internet("internet", bounced);
  lgwan.reply = [&](const std::string&) { return reply; };
  QueueOptions o;
  o.log = [](const std::string&) {};
  QueueManager m(QueueParts{spool, q, audit, lgwan, &internet, fake_sanitize, fake_bounce, fake_notice}, o);
  m.recover();
  m.run_once();
  m.run_once();
  EXPECT_EQ(spool.find(id), SpoolState::Done) << crash_step;
  if (reply.ok()) {
    const auto n = read_ids(delivered).count(id);
    EXPECT_GE(n, size_t(expect_min)) << crash_step;
    EXPECT_LE(n, size_t(expect_max)) << crash_step;
  } else {
    // Bounced: the DSN reached the sender at least once, at most twice.
    const auto n = read_ids(bounced).size();
    EXPECT_GE(n, size_t(expect_min)) << crash_step;
    EXPECT_LE(n, size_t(expect_max)) << crash_step;
  }
  EXPECT_TRUE(spool.list(SpoolState::Incoming).empty());
  EXPECT_TRUE(spool.list(SpoolState::Sanitized).empty());
  EXPECT_TRUE(spool.list(SpoolState::Hold).empty());
  for (auto& line : read_lines(tmp.path() / "audit.jsonl")) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(QueueManagerCrash, BeforeDeliveryEveryStepDeliversExactlyOnce) {
  for (const char* step : {"sanitize.done", "sanitize.output_written", "sanitize.quarantined", "sanitize.audited",
                           "sanitize.moved"}) {
    SCOPED_TRACE(step);
    crash_and_recover(step, {250, "2.0.0", "ok"}, 1, 1);
  }
}

TEST(QueueManagerCrash, AfterDeliveryAtMostTwice) {
  crash_and_recover("deliver.delivered", {250, "2.0.0", "ok"}, 1, 2);  // the next hop got it, we did not record it
  crash_and_recover("deliver.recorded", {250, "2.0.0", "ok"}, 1, 1);
  crash_and_recover("deliver.done", {250, "2.0.0", "ok"}, 1, 1);
}

TEST(QueueManagerCrash, WhileBouncingTheDsnGoesOutOnceOrTwice) {
  crash_and_recover("deliver.recorded", {550, "5.1.1", "unknown"}, 1, 1);
  crash_and_recover("bounce.queued", {550, "5.1.1", "unknown"}, 1, 2);
}

// A child accepts messages in a loop and reports each id once accept()
// returned (as the SMTP layer would answer 250); it is killed with SIGKILL
// mid-stream. Every reported id must be found and delivered.
TEST(QueueManagerCrash, KillNineWhileAcceptingLosesNothingAcknowledged) {
  TempDir tmp;
  const auto spool_dir = tmp.path() / "spool";
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    Spool spool(spool_dir);
    for (int i = 0;; ++i) {
      const auto id = spool.accept(make_envelope(), make_mail("k" + std::to_string(i)));
      const std::string line = id + "\n";
      if (::write(fds[1], line.data(), line.size()) != ssize_t(line.size())) ::_exit(4);
    }
  }
  ::close(fds[1]);
  std::string reported;
  char buf[4096];
  while (std::count(reported.begin(), reported.end(), '\n') < 30) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    ASSERT_GT(n, 0);
    reported.append(buf, size_t(n));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) reported.append(buf, size_t(n));
  ::close(fds[0]);
  std::vector<std::string> ids;
  std::istringstream lines(reported);
  for (std::string l; std::getline(lines, l);)
    if (l.size() == 24) ids.push_back(l);
  ASSERT_GE(ids.size(), 30u);

  Spool spool(spool_dir);
  EXPECT_TRUE(fs::is_empty(spool_dir / "tmp"));
  Quarantine q(tmp.path() / "q", 30);
  AuditLog audit(tmp.path() / "audit.jsonl");
  FakeDelivery lgwan("lgwan", tmp.path() / "delivered");
  QueueOptions o;
  o.log = [](const std::string&) {};
  QueueManager m(QueueParts{spool, q, audit, lgwan, nullptr, fake_sanitize, fake_bounce, fake_notice}, o);
  m.recover();
  m.run_once();
  const auto delivered = read_ids(tmp.path() / "delivered");
  for (const auto& id : ids) {
    EXPECT_EQ(delivered.count(id), 1u) << id;
    EXPECT_EQ(spool.find(id), SpoolState::Done) << id;
  }
  // Whatever else is in the spool (accepted but not yet reported) is whole and delivered too.
  EXPECT_TRUE(spool.list(SpoolState::Incoming).empty());
  EXPECT_TRUE(spool.list(SpoolState::Hold).empty());
}

}  // namespace
}  // namespace mukaika
