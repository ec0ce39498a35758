#include "worker/sanitizer_service.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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
  // An item or a result, with room for names, actions and framing.
  return static_cast<std::size_t>(o.max_item_bytes) + (8u << 20);
}

// The service process: a pool, and a loop that serves one request at a
// time until the daemon closes its end.
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
  for (;;) {
    std::optional<ipc::Frame> frame = ipc::read_frame(fd, limit);
    if (!frame) return 0;  // the daemon closed: done
    if (frame->type != ipc::FrameType::Request) return 2;
    Item item = worker::decode_request(frame->payload, options.max_item_bytes);
    PipelineResult result = pool->run_one(std::move(item));
    ipc::write_frame(fd, ipc::FrameType::Reply, worker::encode_reply(result));
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

PipelineResult SanitizerService::sanitize(Item item) {
  std::lock_guard lock(mutex_);
  if (broken_) throw WorkerError("the sanitizer service has stopped; restart mukaika");
  const std::string sha256_in = sha256_hex(item.bytes);
  try {
    ipc::write_frame(socket_.get(), ipc::FrameType::Request, worker::encode_request(item));
    std::optional<ipc::Frame> reply = ipc::read_frame(socket_.get(), max_frame(options_));
    if (!reply || reply->type != ipc::FrameType::Reply) throw ipc::ProtocolError("no reply");
    worker::ReplyLimits limits;
    limits.max_output_bytes = options_.max_item_bytes;
    limits.max_actions = 100000;  // as the pool allows
    PipelineResult r = worker::decode_reply(reply->payload, limits);
    r.sha256_in = sha256_in;
    r.sha256_out = r.verdict == PipelineResult::Verdict::Blocked ? std::string() : sha256_hex(r.item.bytes);
    return r;
  } catch (const std::exception& e) {
    // The stream is out of step or the service is gone: nothing after this
    // can be trusted to pair requests with replies.
    broken_ = true;
    throw WorkerError(std::string("the sanitizer service failed: ") + e.what());
  }
}

}  // namespace mukaika
