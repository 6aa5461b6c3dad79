// lightboat pull URL|hf:ORG/REPO/FILE.gguf [--name NAME:TAG] [--sha256 HEX]: download a GGUF
// into the model store (store/pull.h: resumable, retried, verified). Progress goes to stderr: a
// redrawn bar on a terminal, a plain line every few seconds otherwise; stdout gets one line,
// "pulled NAME:TAG sha256:<hex> ...", at the end.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "store/pull.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

struct PullCliOptions {
  std::string source, name, sha256;
  int retries = 5;
  int retry_delay_ms = 1000;
  int stall_timeout_s = 60;
  bool quiet = false;
};

std::string eta_text(double s) {
  if (s < 0) return "?";
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lds", std::lround(s));
  }
  return buf;
}

// Draws progress on stderr: on a tty, one line redrawn in place with a bar; otherwise a plain
// line every 5 s and at the end, so logs stay readable.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::string label) : label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1) {}

  void operator()(const store::PullProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && !p.finished && now - last_ < std::chrono::seconds(5)) return;
    last_ = now;
    const std::string total = p.total ? store::format_size(p.total) : "?";
    const int pct = p.total ? static_cast<int>(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) : 0;
    const std::string rate = store::format_size(static_cast<uint64_t>(p.bytes_per_s)) + "/s";
    if (tty_) {
      constexpr int kWidth = 24;  // characters of bar
      std::string bar(kWidth, ' ');
      for (int i = 0; i < kWidth * pct / 100; ++i) bar[static_cast<size_t>(i)] = '#';
      std::fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %s  ETA %s\033[K", label_.c_str(), bar.c_str(), pct,
                   store::format_size(p.done).c_str(), total.c_str(), rate.c_str(), eta_text(p.eta_s).c_str());
      if (p.finished) std::fprintf(stderr, "\n");
    } else {
      std::fprintf(stderr, "%s: %s of %s (%d%%), %s, ETA %s\n", label_.c_str(), store::format_size(p.done).c_str(),
                   total.c_str(), pct, rate.c_str(), eta_text(p.eta_s).c_str());
    }
    std::fflush(stderr);
  }

  // A note ends the redrawn line first.
  void note(const std::string& s) {
    std::fprintf(stderr, "%s%s: %s\n", tty_ ? "\r\033[K" : "", label_.c_str(), s.c_str());
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

int pull_command(const PullCliOptions& o) {
  store::Store st(store::Store::default_root());
  store::PullOptions po{.source = o.source,
                        .ref = std::nullopt,
                        .sha256 = o.sha256,
                        .max_retries = o.retries,
                        .retry_delay_ms = o.retry_delay_ms,
                        .stall_timeout_s = o.stall_timeout_s};
  if (!o.name.empty()) po.ref = store::parse_ref(o.name);
  const std::string url = store::source_url(o.source);
  const store::ModelRef ref = po.ref ? *po.ref : store::default_ref_for_file(store::url_file_name(url));
  auto printer = std::make_shared<ProgressPrinter>("pulling " + ref.str());
  if (!o.quiet) {
    po.on_progress = [printer](const store::PullProgress& p) { (*printer)(p); };
  }
  po.on_note = [printer](const std::string& s) { printer->note(s); };
  const store::PullResult r = store::pull(st, po);
  const store::Manifest& m = r.manifest;
  std::printf("pulled %s %s (%s, %s %s)%s\n", m.ref.str().c_str(), m.digest.c_str(), store::format_size(m.size).c_str(),
              m.architecture.c_str(), m.quantization.c_str(), r.reused ? ", already in the store" : "");
  return 0;
}

}  // namespace

Runner add_pull_command(CLI::App& app) {
  auto o = std::make_shared<PullCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pull", "Download a GGUF model into the local store ($LIGHTBOAT_HOME): resumable, retried, SHA-256 verified");
  cmd->add_option("source", o->source, "http(s):// URL, or hf:ORG/REPO/FILE.gguf (Hugging Face)")->required();
  cmd->add_option("--name", o->name,
                  "NAME[:TAG] to store it as (default: from the file name, e.g. foo-Q4_0.gguf -> foo:q4_0)");
  cmd->add_option("--sha256", o->sha256, "Expected SHA-256 (hex); a mismatch deletes the download");
  cmd->add_option("--retries", o->retries, "Retries of transient failures without progress (default 5)")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--retry-delay-ms", o->retry_delay_ms, "First retry back-off in ms, doubled each time (default 1000)")
      ->check(CLI::Range(0, 600000));
  cmd->add_option("--stall-timeout", o->stall_timeout_s, "Seconds without a byte before retrying (default 60)")
      ->check(CLI::Range(1, 3600));
  cmd->add_flag("-q,--quiet", o->quiet, "No progress output");
  return [o] { return pull_command(*o); };
}

}  // namespace lightboat::cli
