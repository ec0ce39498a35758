#include "serve.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "antivirus.h"
#include "config.h"
#include "http/drop_box.h"
#include "http/http_server.h"
#include "http/web_app.h"
#include "pdf_rasterize/pdf_thumbnail.h"
#include "pipeline.h"
#include "policy.h"
#include "queue/audit_log.h"
#include "queue/quarantine.h"
#include "queue/queue_manager.h"
#include "queue/spool.h"
#include "relay/dsn.h"
#include "relay/maildir_delivery.h"
#include "relay/relay_client.h"
#include "report.h"
#include "smtp/smtp_server.h"
#include "worker/sanitizer_service.h"

namespace mukaika {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitError = 2;

// The daemon's pid, beside the spool, for `mukaika queue flush`.
fs::path pid_file(const Config& config) { return fs::path(config.spool_dir) / "serve.pid"; }

std::string host_name(const Config& config) {
  if (!config.smtp.hostname.empty()) return config.smtp.hostname;
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "mukaika";
  return buf;
}

struct Options {
  std::optional<std::string> config_path;
  std::vector<std::string> rest;
};

// --config FILE anywhere; everything else in order. False on a bad option.
bool parse(const std::vector<std::string>& args, Options& out, std::string& error) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) {
        error = "--config needs a FILE";
        return false;
      }
      out.config_path = args[++i];
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      error = "unknown option " + args[i];
      return false;
    } else {
      out.rest.push_back(args[i]);
    }
  }
  return true;
}

std::optional<Config> load(const Options& o, RegisterSanitizers register_sanitizers, SanitizerRegistry& registry) {
  register_sanitizers(registry);
  try {
    return load_config(o.config_path, registry);
  } catch (const ConfigError& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return std::nullopt;
  }
}

// What the queue manager needs from the pipeline's result.
SanitizedMail to_sanitized_mail(const std::string& queue_id, const std::string& original, PipelineResult result) {
  SanitizedMail m;
  m.report = report_item(queue_id + ".eml", "", result);
  m.message_id = parse_message_id(original);
  m.subject = result.mail_subject;
  m.from = result.mail_from;
  const bool is_mail = result.item.type == "message/rfc822" || result.kind == Kind::Mail;
  if (result.verdict != PipelineResult::Verdict::Blocked && is_mail) {
    m.verdict = result.verdict == PipelineResult::Verdict::Clean ? SanitizedMail::Verdict::Clean
                                                                  : SanitizedMail::Verdict::Sanitized;
    m.message = std::move(result.item.bytes);
    m.sha256_out = result.sha256_out;
    return m;
  }
  m.verdict = SanitizedMail::Verdict::Blocked;
  if (result.verdict != PipelineResult::Verdict::Blocked) {
    // SMTP carries mail; anything the pipeline did not treat as one (no
    // header at all, say) is not guessed at.
    m.reason = "メールとして解析できなかったため遮断しました (" + std::string(to_string(result.kind)) + ")";
    m.reason_en = "blocked: not recognisable as a mail (" + std::string(to_string(result.kind)) + ")";
    return m;
  }
  // The pipeline's own reason for blocking the whole mail, in both languages.
  m.reason = result.item.reason.ja;
  m.reason_en = result.item.reason.en;
  if (m.reason.empty()) {
    m.reason = "無害化できなかったため遮断しました";
    m.reason_en = "blocked: could not be sanitized";
  }
  return m;
}

// The SMTP server's sink: the spool, then a nudge to the queue manager.
class SpoolSink : public MessageSink {
 public:
  SpoolSink(Spool& spool, QueueManager& queue) : spool_(spool), queue_(queue) {}
  SmtpAccept accept(const Envelope& envelope, std::string message) override {
    try {
      std::string id = spool_.accept(envelope, message);
      queue_.accepted(id);
      return {SmtpAccept::Status::Accepted, id, ""};
    } catch (const std::exception& e) {
      std::cerr << "mukaika: cannot queue a message from " << envelope.client_address << ": " << e.what() << "\n";
      return {SmtpAccept::Status::TempFail, "", "cannot store the message now, try again later"};
    }
  }

 private:
  Spool& spool_;
  QueueManager& queue_;
};

// What the drop box needs from the pipeline's result.
http::SanitizedFile to_sanitized_file(const std::string& name, PipelineResult result) {
  http::SanitizedFile f;
  f.report = report_item(name, "", result);
  f.verdict = std::string(to_string(result.verdict));
  if (result.verdict == PipelineResult::Verdict::Blocked) {
    // Why, in both languages; for other verdicts the report says what was done.
    f.reason = result.item.reason.ja;
    f.reason_en = result.item.reason.en;
    if (f.reason.empty()) {
      f.reason = "無害化できなかったため遮断しました";
      f.reason_en = "blocked: could not be sanitized";
    }
    return f;
  }
  f.bytes = std::move(result.item.bytes);
  f.name = result.item.name;
  f.type = result.item.type;
  f.sha256_output = result.sha256_out;
  return f;
}

// An upload through the workers; `passphrases` (PPAP) only when a
// recipient typed a password for it.
http::SanitizedFile sanitize_upload(SanitizerService& service, const std::string& name, std::string bytes,
                                    std::vector<std::string> passphrases);

// Workers the pool replaced after a failure (worker_pool.h: such a result's
// action is worker.crashed, worker.timeout, ...), for /metrics.
std::atomic<std::uint64_t> g_worker_failures{0};

PipelineResult counted(PipelineResult r) {
  for (const auto& a : r.actions)
    if (a.code.rfind("worker.", 0) == 0) {
      ++g_worker_failures;
      break;
    }
  return r;
}

http::SanitizedFile sanitize_upload(SanitizerService& service, const std::string& name, std::string bytes,
                                    std::vector<std::string> passphrases) {
  Item item;
  item.bytes = std::move(bytes);
  item.name = name;
  item.path = name;
  item.role = Role::File;
  item.passphrases = std::move(passphrases);
  return to_sanitized_file(name, counted(service.sanitize(std::move(item))));
}

// The drop box's request for a first-page thumbnail of a sanitized PDF: a
// marker only the daemon sets (uploads and mail never carry a declared type
// of their own at the top level), served in the worker instead of the pipeline.
constexpr const char* kThumbnailRequest = "application/x-mukaika-thumbnail-request";
constexpr int kThumbnailSide = 240;

PipelineResult make_thumbnail(const Item& item) {
  PipelineResult r;
  auto png = pdf_first_page_png(item.bytes, kThumbnailSide);
  // A reply always names what happened (worker_protocol.h checks it).
  if (!png) {
    r.item.verdict = ItemResult::Verdict::Blocked;
    r.actions.push_back({item.name, "block", "thumbnail.none", "no thumbnail: the first page cannot be rendered", ""});
    return r;
  }
  r.actions.push_back({item.name, "convert", "thumbnail.made", "first page rendered as a thumbnail", ""});
  r.verdict = PipelineResult::Verdict::Sanitized;
  r.item.verdict = ItemResult::Verdict::Sanitized;
  r.item.bytes = std::move(*png);
  r.item.type = "image/png";
  r.item.name = "thumbnail.png";
  r.kind = Kind::Image;
  return r;
}

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080": reachable from this machine only.
bool loopback(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "[::1]" || host == "localhost";
}

RelayOptions relay_options(const Config& config, const std::string& hop) {
  RelayOptions o;
  o.next_hop = hop;
  o.helo_name = host_name(config);
  const auto t = std::chrono::seconds(config.relay.timeout_seconds);
  o.connect_timeout = std::min<std::chrono::milliseconds>(t, std::chrono::seconds(30));
  o.greeting_timeout = o.helo_timeout = o.mail_timeout = o.rcpt_timeout = t;
  o.data_init_timeout = std::min<std::chrono::milliseconds>(t, std::chrono::seconds(120));
  o.data_block_timeout = std::min<std::chrono::milliseconds>(t, std::chrono::seconds(180));
  o.data_done_timeout = t * 2;
  return o;
}

}  // namespace

int cmd_serve(const std::vector<std::string>& args, RegisterSanitizers register_sanitizers) {
  Options opts;
  std::string error;
  if (!parse(args, opts, error) || !opts.rest.empty()) {
    std::cerr << "mukaika: " << (error.empty() ? "serve takes no arguments besides --config FILE" : error) << "\n";
    return kExitError;
  }
  SanitizerRegistry registry;
  std::optional<Config> loaded = load(opts, register_sanitizers, registry);
  if (!loaded) return kExitError;
  // The notice in a sanitized mail links to the mail's LGWAN page (report,
  // original request, password of a held archive) unless the operator said
  // otherwise in [sanitizer."mail.rebuild"].
  if (!loaded->http.lgwan.listen.empty() && !loaded->http.lgwan.public_url.empty()) {
    toml::table* rebuild = loaded->sanitizer_options["mail.rebuild"].as_table();
    if (!rebuild) rebuild = &loaded->sanitizer_options.insert_or_assign("mail.rebuild", toml::table{}).first->second.ref<toml::table>();
    if (!rebuild->contains("page_url")) rebuild->insert("page_url", loaded->http.lgwan.public_url + "mail/{id}");
    if (!rebuild->contains("ppap")) rebuild->insert("ppap", loaded->ppap.enabled);
  }
  const Config& config = *loaded;
  const bool ja = config.language == Language::Ja;

  WorkerEngine engine;
  try {
    engine = open_worker_engine(config, registry, std::cerr);
  } catch (const ConfigError& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return kExitError;
  }
  Pipeline pipeline(*engine.policy, *engine.scanner, config.limits, config.language);

  // Storage and delivery first: each says clearly what is wrong with its
  // directory or address before anything listens.
  std::unique_ptr<Spool> spool;
  std::unique_ptr<Quarantine> quarantine;
  std::unique_ptr<AuditLog> audit;
  std::unique_ptr<Delivery> delivery;
  std::unique_ptr<Delivery> bounce_delivery;
  try {
    // The default layout (./var/...) is made on first start.
    for (const std::string& d : {config.spool_dir, config.quarantine.dir, config.dropbox.dir}) {
      std::error_code ec;
      fs::create_directories(d, ec);
    }
    spool = std::make_unique<Spool>(config.spool_dir);
    quarantine = std::make_unique<Quarantine>(config.quarantine.dir, config.quarantine.keep_days);
    if (!fs::path(config.audit_log).parent_path().empty()) fs::create_directories(fs::path(config.audit_log).parent_path());
    audit = std::make_unique<AuditLog>(config.audit_log);
    if (config.relay.next_hop.empty())
      delivery = std::make_unique<MaildirDelivery>(config.relay.maildir);
    else
      delivery = std::make_unique<RelayClient>(relay_options(config, config.relay.next_hop));
    if (!config.relay.bounce_hop.empty())
      bounce_delivery = std::make_unique<RelayClient>(relay_options(config, config.relay.bounce_hop));
  } catch (const std::exception& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return kExitError;
  }

  // The workers' supervisor is forked now, while this process has one
  // thread (sanitizer_service.h).
  std::unique_ptr<SanitizerService> service;
  try {
    service = std::make_unique<SanitizerService>(
        worker_options(config), [&pipeline](Item item) {
          if (item.declared_type == kThumbnailRequest) return make_thumbnail(item);
          return pipeline.run(std::move(item));
        });
  } catch (const WorkerError& e) {
    std::cerr << "mukaika: " << e.what() << "\n" << sandbox_setting_hint(config.language) << "\n";
    return kExitError;
  }

  // The drop box (issue 7): uploads from the Internet zone, sanitized by the
  // same workers, picked up in the LGWAN zone.
  const bool http_on = !config.http.internet.listen.empty() || !config.http.lgwan.listen.empty();
  // Once: it may verify Argon2id hashes (~0.3 s each).
  const bool demo_credentials = http_on && http::WebApp::uses_demo_credentials(config);
  if (demo_credentials) {
    for (const std::string* listen : {&config.http.internet.listen, &config.http.lgwan.listen, &config.smtp.listen})
      if (!listen->empty() && !loopback(*listen)) {
        std::cerr << "mukaika: "
                  << (ja ? "試用のアカウントかトークン (demo-uploader, demo-staff, demo-approver, demo-auditor, demo-token) が設定に残ったまま、ループバック以外 ("
                         : "the demo accounts or token (demo-uploader, demo-staff, demo-approver, demo-auditor, demo-token) are still configured while listening on a non-loopback address (")
                  << *listen
                  << (ja ? ") で待ち受けようとしています。[[accounts]] と [[api_clients]] を自分のものに置き換えてください (mukaika passwd)。"
                         : "). Replace [[accounts]] and [[api_clients]] with your own (mukaika passwd).")
                  << "\n";
        return kExitError;
      }
  }
  std::unique_ptr<http::DropBox> drop_box;
  std::unique_ptr<http::ReleaseDesk> release_desk;
  std::unique_ptr<http::WebApp> internet_app, lgwan_app;
  std::unique_ptr<http::MailPpap> mail_ppap;
  // The queue manager is made after the listeners; they start only after it
  // exists, so their mails always find it.
  QueueManager* mail_queue = nullptr;
  const auto send_mail = [&mail_queue](const Envelope& envelope, const std::string& message, const std::string& kind) {
    if (!mail_queue) throw std::runtime_error("the mail queue is not running");
    std::string to;
    for (const auto& r : envelope.recipients) to += (to.empty() ? "<" : ", <") + r + ">";
    return mail_queue->submit_generated(envelope, message, kind, "gateway_mail", kind + " to " + to);
  };
  const std::string hostname = host_name(config);
  // Host name and language of every mail the gateway writes: DSNs, notices,
  // the Received line, decisions and PPAP follow-ups.
  BounceOptions mail_options;
  mail_options.hostname = hostname;
  mail_options.language = ja ? "ja" : "en";
  std::unique_ptr<http::HttpServer> internet_http, lgwan_http;
  if (http_on) {
    try {
      http::DropBox::Options o;
      o.keep_days = config.dropbox.keep_days;
      o.max_file_bytes = config.limits.max_item_bytes;
      o.log = [](const std::string& line) { std::cerr << "mukaika: " << line << "\n"; };
      o.thumbnail = [&service](const std::string& pdf) -> std::optional<std::string> {
        Item item;
        item.bytes = pdf;
        item.name = "thumbnail.pdf";
        item.declared_type = kThumbnailRequest;
        PipelineResult r = service->sanitize(std::move(item));
        if (r.verdict == PipelineResult::Verdict::Blocked || r.item.type != "image/png") return std::nullopt;
        return std::move(r.item.bytes);
      };
      // PPAP: the same, with the passwords a recipient typed.
      o.unlock = [&service](const std::string& name, std::string bytes, std::vector<std::string> passphrases) {
        return sanitize_upload(*service, name, std::move(bytes), std::move(passphrases));
      };
      drop_box = std::make_unique<http::DropBox>(
          config.dropbox.dir, *audit,
          [&service](const std::string& id, const std::string& name, std::string bytes) {
            (void)id;
            return sanitize_upload(*service, name, std::move(bytes), {});
          },
          o);
      // Release of originals with approval (docs/release.md).
      http::ReleaseDesk::Options ro;
      ro.download_hours = std::chrono::hours(config.release.download_hours);
      ro.deliver_to_lgwan = config.release.deliver_to_lgwan;
      release_desk = std::make_unique<http::ReleaseDesk>(config.release.dir, *audit, ro);
      auto listener = [&](const char* zone, const HttpListenerConfig& l) {
        http::HttpServerOptions h;
        h.name = std::string("http.") + zone;
        h.listen = l.listen;
        h.tls_certificate = l.tls_certificate;
        h.tls_key = l.tls_key;
        h.max_connections = config.http.max_connections;
        h.request_timeout = std::chrono::seconds(config.http.request_timeout_seconds);
        return h;
      };
      if (!config.http.internet.listen.empty()) {
        internet_app = std::make_unique<http::WebApp>(http::Zone::Internet, config, *drop_box);
        internet_app->set_quarantine(quarantine.get());
        internet_app->set_release_desk(release_desk.get());
        internet_app->set_mail_sender(send_mail, mail_options);
        internet_http = std::make_unique<http::HttpServer>(listener("internet", config.http.internet), *internet_app);
      }
      if (!config.http.lgwan.listen.empty()) {
        lgwan_app = std::make_unique<http::WebApp>(http::Zone::Lgwan, config, *drop_box);
        lgwan_app->set_quarantine(quarantine.get());
        lgwan_app->set_release_desk(release_desk.get());
        lgwan_app->set_mail_sender(send_mail, mail_options);
        if (config.ppap.enabled) {
          // PPAP for mail: the kept original again, whole, with the password.
          http::MailPpap::Parts p;
          p.unlock = [&service](const std::string& queue_id, std::string original,
                                std::vector<std::string> passphrases) {
            Item item;
            item.bytes = original;
            item.name = queue_id + ".eml";
            item.declared_type = "message/rfc822";
            item.role = Role::File;
            item.passphrases = std::move(passphrases);
            SanitizedMail m = to_sanitized_mail(queue_id, original, counted(service->sanitize(std::move(item))));
            return http::MailUnlockResult{std::string(to_string(m.verdict)), std::move(m.message), std::move(m.report),
                                          m.reason, m.reason_en};
          };
          p.follow_up = [mail_options](const std::string& recipient, const std::string& queue_id,
                                               const nlohmann::json& summary, const http::MailUnlockResult& r) {
            return http::make_ppap_follow_up(recipient, queue_id, summary, r, mail_options);
          };
          p.send = send_mail;
          p.audit = [&drop_box](const nlohmann::json& record) { drop_box->audit(record); };
          p.log = [](const std::string& line) { std::cerr << "mukaika: " << line << "\n"; };
          mail_ppap = std::make_unique<http::MailPpap>(fs::path(config.dropbox.dir) / "ppap", *quarantine, std::move(p),
                                                       config.ppap.max_attempts);
          lgwan_app->set_mail_ppap(mail_ppap.get());
        }
        lgwan_app->set_worker_restarts([] { return g_worker_failures.load(); });
        lgwan_http = std::make_unique<http::HttpServer>(listener("lgwan", config.http.lgwan), *lgwan_app);
      }
    } catch (const std::exception& e) {
      std::cerr << "mukaika: " << e.what() << "\n";
      return kExitError;
    }
  }

  QueueParts parts{*spool, *quarantine, *audit, *delivery, bounce_delivery.get(), {}, {}, {}};
  parts.sanitize = [&service](const std::string& queue_id, const std::string& original) {
    Item item;
    item.bytes = original;
    item.name = queue_id + ".eml";
    item.declared_type = "message/rfc822";
    item.role = Role::File;
    return to_sanitized_mail(queue_id, original, counted(service->sanitize(std::move(item))));
  };
  parts.make_bounce = [mail_options, &config](const Envelope& envelope, const std::vector<RecipientResult>& failed,
                                                const std::string& original_headers) {
    BounceOptions o = mail_options;
    o.now = std::chrono::system_clock::now();
    o.remote_mta = config.relay.next_hop;
    return make_bounce(envelope, failed, original_headers, o);
  };
  parts.make_blocked_notice = [mail_options, &config](const Envelope& envelope, const SanitizedMail& result,
                                               const std::string& queue_id) {
    BounceOptions o = mail_options;
    o.now = std::chrono::system_clock::now();
    BlockedNotice n;
    n.queue_id = queue_id;
    if (!config.http.lgwan.listen.empty() && !config.http.lgwan.public_url.empty())
      n.page_url = config.http.lgwan.public_url + "mail/" + queue_id;
    n.message_id = result.message_id;
    n.subject = result.subject;
    n.from_header = result.from;
    n.reason_ja = result.reason;
    n.reason_en = result.reason_en;
    // One notice for all recipients of this message.
    return make_blocked_notice(envelope, envelope.recipients.empty() ? "" : envelope.recipients.front(), n, o);
  };
  QueueOptions queue_options;
  queue_options.retry_min = std::chrono::seconds(config.relay.retry_min_s);
  queue_options.retry_max = std::chrono::seconds(config.relay.retry_max_s);
  queue_options.give_up_after = std::chrono::hours(config.relay.give_up_after_h);
  queue_options.blocked_notice = config.relay.blocked_notice;
  queue_options.trace_header = [mail_options](const Envelope& envelope, const std::string& queue_id) {
    BounceOptions o = mail_options;
    o.now = std::chrono::system_clock::now();
    return make_received_header(envelope, queue_id, o);
  };
  // Two sanitizing threads per worker: while one thread writes a mail's
  // results to disk (quarantine, audit, spool), the worker already has the
  // next mail (the service holds up to two per worker).
  queue_options.sanitize_threads = 2 * worker_options(config).count;
  queue_options.log = [](const std::string& line) { std::cerr << "mukaika: " << line << "\n"; };
  QueueManager queue(std::move(parts), queue_options);
  mail_queue = &queue;
  SpoolSink sink(*spool, queue);

  SmtpServerOptions smtp;
  smtp.listen = config.smtp.listen;
  smtp.hostname = hostname;
  smtp.allowed_networks = config.smtp.allowed_networks;
  smtp.max_message_bytes = config.smtp.max_message_bytes;
  smtp.max_recipients = config.smtp.max_recipients;
  smtp.max_sessions = config.smtp.max_sessions;
  smtp.command_timeout = std::chrono::seconds(config.smtp.command_timeout_seconds);
  smtp.data_timeout = std::chrono::seconds(config.smtp.data_timeout_seconds);
  smtp.tls_certificate = config.smtp.tls_certificate;
  smtp.tls_key = config.smtp.tls_key;
  std::unique_ptr<SmtpServer> server;
  try {
    server = std::make_unique<SmtpServer>(smtp, sink);
  } catch (const std::exception& e) {
    std::cerr << "mukaika: " << e.what() << "\n";
    return kExitError;
  }

  // Signals go to this thread's sigwait(); every thread started from here on
  // inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  {
    std::ofstream pid(pid_file(config), std::ios::trunc);
    pid << ::getpid() << "\n";
  }
  queue.start();
  server->start();
  if (drop_box) drop_box->start();
  if (release_desk)
    release_desk->start(std::chrono::minutes(10), [](const std::string& line) { std::cerr << "mukaika: " << line << "\n"; });
  if (internet_http) internet_http->start();
  if (lgwan_http) lgwan_http->start();

  const std::string where = config.relay.next_hop.empty() ? "Maildir " + config.relay.maildir
                                                          : "SMTP " + config.relay.next_hop;
  if (ja)
    std::cout << "mukaika: SMTP を " << server->local_endpoint() << " で待ち受けています (設定: " << config.source
              << ")\n  配送先: " << where << "\n  スプール: " << config.spool_dir << "\n  原本保管: "
              << config.quarantine.dir << " (" << config.quarantine.keep_days << " 日)\n  監査ログ: " << config.audit_log
              << "\n  停止: SIGTERM / Ctrl-C\n";
  else
    std::cout << "mukaika: listening for SMTP on " << server->local_endpoint() << " (configuration: " << config.source
              << ")\n  delivery: " << where << "\n  spool: " << config.spool_dir << "\n  quarantine: "
              << config.quarantine.dir << " (" << config.quarantine.keep_days << " days)\n  audit log: "
              << config.audit_log << "\n  stop: SIGTERM / Ctrl-C\n";
  if (internet_http || lgwan_http) {
    const auto url = [](const http::HttpServer& h, const HttpListenerConfig& l) {
      return std::string(l.tls_certificate.empty() ? "http://" : "https://") + h.local_endpoint() + "/";
    };
    if (internet_http)
      std::cout << (ja ? "  ファイル受付 (インターネット側): " : "  file drop (Internet zone): ")
                << url(*internet_http, config.http.internet) << "\n";
    if (lgwan_http)
      std::cout << (ja ? "  受信箱 (LGWAN 側): " : "  inbox (LGWAN zone): ") << url(*lgwan_http, config.http.lgwan)
                << (ja ? "  (/metrics, /healthz も)" : "  (also /metrics, /healthz)") << "\n";
    if (demo_credentials)
      std::cout << (ja ? "  試用専用 (ループバックのみ): 送信者 demo-uploader / demo-uploader、職員 demo-staff / demo-staff、"
                         "承認者 demo-approver / demo-approver、監査 demo-auditor / demo-auditor、API トークン demo-token\n"
                       : "  for trying out only (loopback only): uploader demo-uploader / demo-uploader, staff "
                         "demo-staff / demo-staff, approver demo-approver / demo-approver, auditor demo-auditor / "
                         "demo-auditor, API token demo-token\n");
  }
  std::cout.flush();

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      try {
        audit->reopen();
        std::cerr << "mukaika: SIGHUP: audit log reopened (other settings take effect on restart)\n";
      } catch (const std::exception& e) {
        std::cerr << "mukaika: SIGHUP: " << e.what() << "\n";
      }
      continue;
    }
    if (sig == SIGUSR1) {
      queue.flush();
      continue;
    }
    break;  // SIGTERM, SIGINT
  }
  std::cerr << "mukaika: " << (ja ? "停止します" : "stopping") << "\n";
  if (internet_http) internet_http->shutdown();
  if (lgwan_http) lgwan_http->shutdown();
  server->shutdown(std::chrono::seconds(30));
  if (drop_box) drop_box->stop();
  if (release_desk) release_desk->stop();
  queue.stop();
  std::error_code ec;
  fs::remove(pid_file(config), ec);
  return kExitOk;
}

int cmd_queue(const std::vector<std::string>& args, RegisterSanitizers register_sanitizers) {
  Options opts;
  std::string error;
  if (!parse(args, opts, error) || opts.rest.size() > 1 ||
      (opts.rest.size() == 1 && opts.rest[0] != "list" && opts.rest[0] != "flush")) {
    std::cerr << "mukaika: " << (error.empty() ? "usage: mukaika queue [--config FILE] [list | flush]" : error) << "\n";
    return kExitError;
  }
  SanitizerRegistry registry;
  std::optional<Config> config = load(opts, register_sanitizers, registry);
  if (!config) return kExitError;
  const bool ja = config->language == Language::Ja;
  if (!opts.rest.empty() && opts.rest[0] == "flush") {
    std::ifstream in(pid_file(*config));
    long pid = 0;
    if (!(in >> pid) || pid <= 1 || ::kill(static_cast<pid_t>(pid), SIGUSR1) != 0) {
      std::cerr << "mukaika: " << (ja ? "動いている mukaika serve が見つかりません" : "no running mukaika serve found")
                << " (" << pid_file(*config).string() << ")\n";
      return kExitError;
    }
    std::cout << (ja ? "再送を依頼しました" : "asked the daemon to retry deferred mail now") << "\n";
    return kExitOk;
  }
  std::error_code ec;
  if (!fs::is_directory(config->spool_dir, ec)) {
    std::cerr << "mukaika: " << (ja ? "スプールがありません: " : "no spool at ") << config->spool_dir << "\n";
    return kExitError;
  }
  const auto now = std::chrono::system_clock::now();
  std::cout << format_queue(list_queue(config->spool_dir, now), now);
  return kExitOk;
}

}  // namespace mukaika
