#include "worker/sanitizer_service.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "digest.h"
#include "ipc/frame.h"
#include "worker/worker_protocol.h"

namespace mukaika {
namespace {

// The service's first frame: "ok", or "error:" and what the pool said.
constexpr std::string_view kReady = "ok";
constexpr std::string_view kFailed = "error:";

std::size_t max_frame(const WorkerOptions& o) {
  // An item or a result, with room for names, actions, the id and framing.
  return static_cast<std::size_t>(o.max_item_bytes) + (8u << 20);
}

// Every request and reply starts with its request id: 8 bytes, big-endian.
constexpr std::size_t kIdBytes = 8;

std::string with_id(std::uint64_t id, std::string_view payload) {
  std::string out(kIdBytes, '\0');
  for (std::size_t i = 0; i < kIdBytes; ++i) out[i] = static_cast<char>((id >> (8 * (kIdBytes - 1 - i))) & 0xff);
  out.append(payload);
  return out;
}

std::uint64_t take_id(std::string& payload) {
  if (payload.size() < kIdBytes) throw ipc::ProtocolError("frame without a request id");
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < kIdBytes; ++i) id = (id << 8) | static_cast<unsigned char>(payload[i]);
  payload.erase(0, kIdBytes);
  return id;
}

// The service process: a pool, and one poll() loop that takes requests
// while it has room for them, hands them to the pool, and writes each
// reply as soon as it is ready, until the daemon closes its end.
int serve(int fd, const WorkerOptions& options, const ItemProcessor& processor) {
  // Signals are the daemon's to handle; the service ends when the socket
  // does. A daemon killed with SIGKILL closes it, and so does PDEATHSIG.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGUSR1, SIG_IGN);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  std::optional<WorkerPool> pool;
  try {
    pool.emplace(options, processor);
  } catch (const std::exception& e) {
    ipc::write_frame(fd, ipc::FrameType::Hello, std::string(kFailed) + e.what());
    return 1;
  }
  ipc::write_frame(fd, ipc::FrameType::Hello, kReady);
  const std::size_t limit = max_frame(options);
  // Items in the service's hands at most: every worker busy and as many
  // waiting for the next free one.
  const std::size_t room = 2 * static_cast<std::size_t>(std::max(1, options.count));
  for (;;) {
    bool readable = false;
    const int watch = pool->in_flight() < room ? fd : -1;
    for (auto& [id, result] : pool->wait(std::chrono::milliseconds(1000), watch, readable))
      ipc::write_frame(fd, ipc::FrameType::Reply, with_id(id, worker::encode_reply(result)));
    if (!readable) continue;
    std::optional<ipc::Frame> frame = ipc::read_frame(fd, limit);
    if (!frame) return 0;  // the daemon closed: done (nobody waits for what is in hand)
    if (frame->type != ipc::FrameType::Request) return 2;
    const std::uint64_t id = take_id(frame->payload);
    Item item = worker::decode_request(frame->payload, options.max_item_bytes);
    if (!item.passphrases.empty()) wipe(frame->payload);
    pool->submit(id, std::move(item));
  }
}

}  // namespace

SanitizerService::SanitizerService(WorkerOptions options, ItemProcessor processor) : options_(std::move(options)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw WorkerError(std::string("socketpair: ") + std::strerror(errno));
  UniqueFd mine(fds[0]), theirs(fds[1]);
  const int their_fd = theirs.get();
  const int my_fd = mine.get();
  child_ = Child::spawn([&]() -> int {
    ::close(my_fd);
    try {
      return serve(their_fd, options_, processor);
    } catch (const std::exception&) {
      return 3;
    }
  });
  theirs.reset();
  socket_ = std::move(mine);

  // The pool's time limit bounds every item; a service that stays silent
  // well beyond it is broken.
  const auto wait = options_.time_limit + options_.start_limit + std::chrono::seconds(30);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(wait).count());
  ::setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  std::optional<ipc::Frame> hello;
  try {
    hello = ipc::read_frame(socket_.get(), 1u << 16);
  } catch (const std::exception& e) {
    throw WorkerError(std::string("the sanitizer service did not start: ") + e.what());
  }
  if (!hello || hello->type != ipc::FrameType::Hello)
    throw WorkerError("the sanitizer service ended before it was ready");
  if (hello->payload.rfind(kFailed, 0) == 0) throw WorkerError(hello->payload.substr(kFailed.size()));
  if (hello->payload != kReady) throw WorkerError("the sanitizer service sent an unexpected greeting");
}

SanitizerService::~SanitizerService() {
  socket_.reset();  // the service reads end-of-file and exits
  if (child_) {
    // Give it a moment to finish the item in flight, then make sure.
    for (int i = 0; i < 50; ++i) {
      if (child_.try_wait()) return;
      ::usleep(20000);
    }
    child_.kill();
    child_.wait();
  }
}

void SanitizerService::fail(const std::string& why) {
  if (!broken_) {
    broken_ = true;
    broken_reason_ = why;
  }
  replied_.notify_all();
}

void SanitizerService::read_one_reply() {
  std::string error;
  std::optional<ipc::Frame> reply;
  try {
    reply = ipc::read_frame(socket_.get(), max_frame(options_) + kIdBytes);
    if (!reply || reply->type != ipc::FrameType::Reply) throw ipc::ProtocolError("no reply");
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::lock_guard lock(mutex_);
  reading_ = false;
  if (!error.empty()) return fail(error);
  try {
    const std::uint64_t id = take_id(reply->payload);
    auto it = replies_.find(id);
    if (it == replies_.end() || it->second) return fail("a reply to no waiting request");
    it->second = std::move(reply->payload);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  replied_.notify_all();
}

PipelineResult SanitizerService::sanitize(Item item) {
  // Over the limit: blocked here, as the pool would block it. Sent on, it
  // would overrun the service's frame limit and stop all sanitizing.
  if (auto refused = refuse_oversize(item, options_)) return std::move(*refused);
  const std::string sha256_in = sha256_hex(item.bytes);
  std::string request = worker::encode_request(item);
  const bool secret = !item.passphrases.empty();
  wipe_passphrases(item.passphrases);
  item = Item{};
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    if (broken_) throw WorkerError("the sanitizer service has stopped (" + broken_reason_ + "); restart mukaika");
    id = next_id_++;
    replies_.emplace(id, std::nullopt);
  }
  try {
    std::lock_guard write_lock(write_mutex_);
    std::string framed = with_id(id, request);
    ipc::write_frame(socket_.get(), ipc::FrameType::Request, framed);
    if (secret) {  // PPAP passwords: not left behind in freed memory
      wipe(framed);
      wipe(request);
    }
  } catch (const std::exception& e) {
    // A request cut short leaves the stream out of step: nothing after this
    // can be trusted to pair requests with replies.
    std::lock_guard lock(mutex_);
    replies_.erase(id);
    fail(e.what());
    throw WorkerError(std::string("the sanitizer service failed: ") + e.what());
  }

  std::string payload;
  {
    std::unique_lock lock(mutex_);
    for (;;) {
      auto it = replies_.find(id);
      if (it->second) {
        payload = std::move(*it->second);
        replies_.erase(it);
        break;
      }
      if (broken_) {
        replies_.erase(it);
        throw WorkerError("the sanitizer service failed: " + broken_reason_);
      }
      if (!reading_) {
        // This caller reads the next reply, whoever's it is.
        reading_ = true;
        lock.unlock();
        read_one_reply();
        lock.lock();
      } else {
        replied_.wait(lock);
      }
    }
  }
  try {
    worker::ReplyLimits limits;
    limits.max_output_bytes = options_.max_item_bytes;
    limits.max_actions = 100000;  // as the pool allows
    PipelineResult r = worker::decode_reply(payload, limits);
    r.sha256_in = sha256_in;
    r.sha256_out = r.verdict == PipelineResult::Verdict::Blocked ? std::string() : sha256_hex(r.item.bytes);
    return r;
  } catch (const std::exception& e) {
    // The service answers nonsense: trust nothing it says from now on.
    std::lock_guard lock(mutex_);
    fail(e.what());
    throw WorkerError(std::string("the sanitizer service failed: ") + e.what());
  }
}

}  // namespace mukaika
