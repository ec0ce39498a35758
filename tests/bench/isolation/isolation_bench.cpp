// The cost of isolation (tests/bench/isolation/run.sh): the real pipeline
// (libmagic, libclamav with the bundled test signatures, the default policy)
// on small mails or one-page PDFs, run
//
//   inprocess   Pipeline::run in this process, one item after another
//   threads     Pipeline::run on N threads, one Pipeline each (what a
//               daemon without isolation would do)
//   pool        N sandboxed workers, each serving up to 100 items
//   fresh       N sandboxed workers, a new one for every item (forked and
//               sandboxed ahead of time: workers.recycle_after = 1)
//
//   isolation_bench --kind mail|pdf [--items N] [--workers N] [--ballast-mb M]
//                   [--mode inprocess,threads,pool,fresh] [--latency]
//
// Throughput: all items at once. --latency: one item at a time (one worker),
// which is what a single mail costs and where the isolation overhead shows.
// --ballast-mb allocates and touches M MiB in the supervisor before workers
// are forked, as a production ClamAV database (~1 GiB) does: fork() then has
// that many more page-table entries to copy. Every item is unique (its number
// is in the text), so libclamav's cache of clean results does not flatter
// the modes that keep a process.
//
// Prints one line per mode: key=value pairs.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "av_clamav/clamav_scanner.h"
#include "config.h"
#include "pipeline.h"
#include "policy.h"
#include "registry.h"
#include "worker/worker_pool.h"
#ifdef MUKAIKA_BENCH_PDF
#include <fontconfig/fontconfig.h>

#include "pdf_rasterize/sample_pdfs.h"
#endif

using namespace mukaika;
using Clock = std::chrono::steady_clock;

namespace {

std::string small_mail(int n) {
  std::ostringstream m;
  m << "From: =?UTF-8?B?5bGx55Sw5aSq6YOO?= <taro@example.jp>\r\n"
       "To: soumu@city.example.lg.jp\r\n"
       "Subject: =?UTF-8?B?5Lya6K2w44Gu5pel56iL?= "
    << n
    << "\r\n"
       "Date: Mon, 1 Apr 2024 09:00:00 +0900\r\n"
       "Message-ID: <bench-"
    << n
    << "@example.jp>\r\n"
       "MIME-Version: 1.0\r\n"
       "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
       "--b\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  for (int i = 0; i < 12; ++i) m << "総務課 御中 会議の日程について、第" << n << "回の候補日をお知らせします。\r\n";
  m << "--b\r\nContent-Type: text/csv; charset=UTF-8\r\nContent-Disposition: attachment; filename=\"list.csv\"\r\n\r\n"
       "name,date\r\n会議室A,2024-04-0"
    << (n % 9 + 1) << "\r\n--b--\r\n";
  return m.str();
}

struct Options {
  std::string kind = "mail";
  int items = 500;
  int workers = 2;
  std::size_t ballast_mb = 0;
  std::vector<std::string> modes = {"inprocess", "threads", "pool", "fresh"};
  bool latency = false;
  bool warm_fonts = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--kind") o.kind = next();
    else if (a == "--items") o.items = std::stoi(next());
    else if (a == "--workers") o.workers = std::stoi(next());
    else if (a == "--ballast-mb") o.ballast_mb = std::stoul(next());
    else if (a == "--mode") o.modes = split(next());
    else if (a == "--latency") o.latency = true;
    else if (a == "--warm-fonts") o.warm_fonts = true;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }

  SanitizerRegistry registry;
  register_builtin_sanitizers(registry);
  Config config = load_config(std::nullopt, registry);
  Policy policy(config, registry);
  ClamavOptions av;
  av.database_dir = MUKAIKA_BENCH_SIGNATURES;
  av.temp_dir = std::filesystem::temp_directory_path().string();
  ClamavScanner local_scanner(av);
  av.temp_dir = kWorkerEngineTempDir;
  ClamavScanner worker_scanner(av);

  std::vector<Item> items;
  for (int n = 0; n < o.items; ++n) {
    Item item;
    if (o.kind == "mail") {
      item.bytes = small_mail(n);
      item.name = "mail-" + std::to_string(n) + ".eml";
    } else if (o.kind == "pdf") {
#ifdef MUKAIKA_BENCH_PDF
      static const std::string family = pdf_samples::japanese_font_family();
      item.bytes = pdf_samples::text_pdf({{"Invoice " + std::to_string(n), "請求書 第" + std::to_string(n) + "号",
                                           "Amount: 12,345 JPY", "支払期限: 2024年4月30日"}},
                                         family.empty() ? "DejaVu Sans" : family);
      item.name = "doc-" + std::to_string(n) + ".pdf";
#else
      std::cerr << "this build has no PDF samples (pdf.rasterize not built)\n";
      return 2;
#endif
    } else {
      std::cerr << "--kind must be mail or pdf\n";
      return 2;
    }
    items.push_back(std::move(item));
  }

#ifdef MUKAIKA_BENCH_PDF
  // What fork() can share if fontconfig is loaded before the workers are
  // forked, instead of in every new worker.
  if (o.warm_fonts) FcInit();
#endif
  // Stands in for a production signature database in the supervisor.
  std::unique_ptr<char[]> ballast;
  if (o.ballast_mb > 0) {
    ballast.reset(new char[o.ballast_mb << 20]);
    std::memset(ballast.get(), 0x5a, o.ballast_mb << 20);
  }

  for (const std::string& mode : o.modes) {
    const int workers = o.latency ? 1 : o.workers;
    std::vector<double> latencies;
    int blocked = 0;
    auto record = [&](const PipelineResult& r) { blocked += r.verdict == PipelineResult::Verdict::Blocked; };
    auto start = Clock::now();
    if (mode == "inprocess" || (mode == "threads" && o.latency)) {
      Pipeline pipeline(policy, local_scanner, config.limits, config.language);
      start = Clock::now();
      for (const Item& item : items) {
        auto t = Clock::now();
        record(pipeline.run(item));
        latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      }
    } else if (mode == "threads") {
      std::vector<std::thread> threads;
      std::vector<int> blocked_by(static_cast<std::size_t>(workers), 0);
      start = Clock::now();
      for (int t = 0; t < workers; ++t)
        threads.emplace_back([&, t] {
          Pipeline pipeline(policy, local_scanner, config.limits, config.language);
          for (std::size_t i = static_cast<std::size_t>(t); i < items.size(); i += static_cast<std::size_t>(workers))
            blocked_by[static_cast<std::size_t>(t)] +=
                pipeline.run(items[i]).verdict == PipelineResult::Verdict::Blocked;
        });
      for (auto& t : threads) t.join();
      for (int b : blocked_by) blocked += b;
    } else if (mode == "pool" || mode == "fresh") {
      Pipeline pipeline(policy, worker_scanner, config.limits, config.language);
      WorkerOptions wo = worker_options(config);
      wo.count = workers;
      wo.recycle_after = mode == "pool" ? 100 : 1;
      WorkerPool pool(wo, [&pipeline](Item item) { return pipeline.run(std::move(item)); });
      start = Clock::now();
      if (o.latency) {
        for (const Item& item : items) {
          auto t = Clock::now();
          record(pool.run_one(item));
          latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
        }
      } else {
        pool.run(
            items.size(), [&](std::size_t i) { return std::optional<Item>(items[i]); },
            [&](std::size_t, std::optional<PipelineResult> r) {
              if (r) record(*r);
            });
      }
      if (pool.stats().failures > 0) std::cerr << mode << ": " << pool.stats().failures << " worker failures\n";
    } else {
      std::cerr << "unknown mode " << mode << "\n";
      return 2;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "kind=" << o.kind << " mode=" << mode << " workers=" << workers << " items=" << items.size()
              << " ballast_mb=" << o.ballast_mb << " blocked=" << blocked << " seconds=" << seconds
              << " items_per_s=" << static_cast<double>(items.size()) / seconds;
    if (o.latency)
      std::cout << " latency_ms_p50=" << percentile(latencies, 0.5) << " latency_ms_p90=" << percentile(latencies, 0.9);
    std::cout << std::endl;
  }
  return 0;
}
