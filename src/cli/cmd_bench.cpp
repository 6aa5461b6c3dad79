// lightboat bench: prompt-processing (ppN) and generation (tgN) speed of a model on this machine,
// beside the machine's own read bandwidth, the bytes of weights one generated token reads, and
// generation as a fraction of that bandwidth roofline. The method is in docs/performance.md.
//
// Order of a run: a solo CPU probe, the bandwidth measurement (its buffer freed and the peak-RSS
// mark reset after), the model load, a CPU probe on every thread, then each test (one warm-up,
// then -r timed repetitions) followed by another probe; the probes tell whether the machine was
// slowed during the run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/bench_machine.h"
#include "cli/bench_weights.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/dispatch.h"
#include "kernels/matmul_profile.h"

namespace lightboat::cli {
namespace {

constexpr uint32_t kTokenSeed = 1234;        // the random prompt is the same in every run
constexpr int64_t kMaxTestTokens = 1 << 20;  // per test
constexpr int64_t kCtxRound = 256;           // auto context: the largest test, rounded up

struct BenchOptions {
  ModelOptions model;  // -c 0 = fit the largest test
  std::string pp_sizes = "128,512";
  std::string tg_sizes = "64";
  int reps = 3;
  int64_t bw_mib = 1024;  // MiB of the bandwidth buffer
  int bw_passes = 5;
  bool json = false;
  bool profile = false;  // --profile: time per matmul shape during the timed repetitions
  int64_t depth = 0;  // -d: tg tests decode after this many prompt tokens (untimed prefill)
};

struct TestResult {
  std::string name;  // "pp512", "tg64"
  bool generation = false;
  int64_t n_tokens = 0;
  int64_t depth = 0;        // tg: KV positions filled before the timed decode
  std::vector<double> tps;  // tokens/s of each timed repetition
  double median = 0, min = 0, max = 0;
  std::vector<kernels::MatmulShapeStats> profile;  // --profile: the timed repetitions' matmuls

  // A profile line's share of the timed repetitions' time.
  double share(const kernels::MatmulShapeStats& l) const {
    double timed = 0;
    for (double v : tps) timed += static_cast<double>(n_tokens) / v;
    return l.seconds / std::max(timed, 1e-12);
  }
};

// "128,512" → {128, 512}; "none" → {} (skip that kind of test). Anything else is one error
// naming the flag and the item.
std::vector<int64_t> parse_sizes(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  if (text == "none") return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const bool digits = !item.empty() && item.size() <= 9 &&
                        std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    const int64_t v = digits ? std::stoll(item) : 0;
    if (!digits || v < 1 || v > kMaxTestTokens) {
      std::string msg = flag;
      msg += ": '" + item + "' is not a token count from 1 to ";
      msg += std::to_string(kMaxTestTokens) + " (give a comma-separated list, or none)";
      throw Error(ErrorKind::kInvalidArgument, msg);
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int32_t argmax(const float* logits, int64_t n) {  // ties to the lower id
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

using Clock = std::chrono::steady_clock;

// One timed pass of a test from an empty KV cache; returns tokens/s.
//  ppN: the first N tokens of `prompt` in one forward call (chunked by -b), logits of the last.
//  tgN: N single-token forward calls, starting from prompt[0] (BOS), each next token the greedy
//       argmax over the vocabulary (real decoding pays that scan, so it is timed too). At depth
//       d (-d) the first d prompt tokens are evaluated first, untimed, and decoding starts from
//       prompt[d]: each step's attention then reads d + i cached positions.
// profile: record the timed part's matmuls (kernels/matmul_profile.h), not the prefill before it.
double run_once(model::Model& m, const TestResult& t, const std::vector<int32_t>& prompt, std::vector<float>& logits,
                ThreadPool& pool, bool profile = false) {
  m.truncate(0);
  const int64_t n_vocab = m.hparams().n_vocab;
  if (t.generation && t.depth > 0) {
    m.forward(std::span(prompt.data(), static_cast<size_t>(t.depth)), 1, logits.data(), pool);
  }
  if (profile) kernels::matmul_profile_enable(true);
  const auto start = Clock::now();
  if (!t.generation) {
    m.forward(std::span(prompt.data(), static_cast<size_t>(t.n_tokens)), 1, logits.data(), pool);
  } else {
    int32_t token = prompt[static_cast<size_t>(t.depth)];
    for (int64_t i = 0; i < t.n_tokens; ++i) {
      m.forward(std::span(&token, 1), 1, logits.data(), pool);
      token = argmax(logits.data(), n_vocab);
    }
  }
  const double s = ms_since(start) / 1000.0;
  if (profile) kernels::matmul_profile_enable(false);
  return static_cast<double>(t.n_tokens) / std::max(s, 1e-9);
}

// --profile's table of one test (the same lines as its JSON matmul_profile).
void print_profile(const TestResult& t) {
  std::printf("\nmatmuls of %s (%zu timed repetitions; weight GB/s = the call's matrices' bytes / its time; share "
              "of the test's time):\n",
              t.name.c_str(), t.tps.size());
  std::printf("| types | rows x cols | tokens | calls | us per call | weight GB/s | share |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& l : t.profile) {
    std::printf("| %s | %lld x %lld | %lld | %lld | %.1f | %.2f | %.1f%% |\n", l.shape.type_label().c_str(),
                static_cast<long long>(l.shape.rows), static_cast<long long>(l.shape.cols),
                static_cast<long long>(l.shape.tokens), static_cast<long long>(l.calls),
                1e6 * l.seconds / static_cast<double>(std::max<int64_t>(l.calls, 1)), l.weight_gbps(),
                100.0 * t.share(l));
  }
}

void summarise(TestResult& t) {
  std::vector<double> v = t.tps;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  t.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  t.min = v.front();
  t.max = v.back();
}

std::string human_bytes(double bytes) {
  char buf[64];
  if (bytes >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / (1024.0 * 1024));
  }
  return buf;
}

std::string human_count(double n) {
  char buf[64];
  if (n >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  } else if (n >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f K", n / 1e3);
  }
  return buf;
}

int bench(const BenchOptions& o) {
  const std::vector<int64_t> pp = parse_sizes("-p", o.pp_sizes);
  const std::vector<int64_t> tg = parse_sizes("-n", o.tg_sizes);
  check(!pp.empty() || !tg.empty(), ErrorKind::kInvalidArgument, "-p none and -n none leave nothing to measure");
  int64_t needed = 0;  // KV positions of the largest test (each starts from an empty cache)
  for (int64_t n : pp) needed = std::max(needed, n);
  for (int64_t n : tg) needed = std::max(needed, o.depth + n);
  ModelOptions mopts = o.model;
  if (mopts.n_ctx == 0) {
    mopts.n_ctx = (needed + kCtxRound - 1) / kCtxRound * kCtxRound;
  } else {
    check(mopts.n_ctx >= needed, ErrorKind::kInvalidArgument,
          "-c " + std::to_string(mopts.n_ctx) + " is smaller than the largest test (" + std::to_string(needed) +
              " tokens); raise the context size or leave -c out to fit it");
  }

  // Fail on a missing or malformed file now, not after a second of bandwidth measurement.
  resolve_model(mopts);
  gguf::Reader::open(mopts.path, LoadMode::kMmap);  // maps, reads only the header

  ThreadPool pool(resolve_threads(mopts.n_threads));
  SpinProbe probe;  // solo reference while nothing else of ours runs
  const BandwidthResult bw = measure_read_bandwidth(pool, static_cast<size_t>(o.bw_mib) << 20, o.bw_passes);
  const bool rss_reset = reset_peak_rss();
  if (!rss_reset) {
    std::fprintf(stderr,
                 "lightboat: warning: cannot reset the peak-RSS mark; peak RSS includes the %s bandwidth buffer\n",
                 human_bytes(static_cast<double>(bw.buffer_bytes)).c_str());
  }

  Loaded m = load(mopts, true);
  // The default load mode moves the weights onto huge pages in the background (LoadMode::kMmapHuge):
  // the tests measure the steady state after it, and the wait is reported beside the load.
  const auto move_start = std::chrono::steady_clock::now();
  const size_t huge_pieces = m.reader->file().wait_for_huge_pages();
  const double huge_wait_ms = ms_since(move_start);
  const auto& tensors = m.reader->tensors();
  const uint64_t bytes_per_token = weight_bytes_per_token(tensors);
  const uint64_t params = parameter_count(tensors);
  const std::string type = model_type_name(*m.reader);
  const std::string label = model_label(*m.reader, mopts.path);
  const uint64_t file_bytes = m.reader->file().size();

  // The prompt: BOS (when the vocabulary has one) then random valid ids, fixed seed.
  const int64_t n_vocab = m.model->hparams().n_vocab;
  std::vector<int32_t> prompt(static_cast<size_t>(std::max<int64_t>(needed, 1) + 1));
  std::mt19937 rng(kTokenSeed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(n_vocab - 1));
  for (auto& id : prompt) id = pick(rng);
  if (m.tokenizer->bos() >= 0 && m.tokenizer->bos() < n_vocab) prompt[0] = m.tokenizer->bos();
  std::vector<float> logits(static_cast<size_t>(n_vocab));  // [1, n_vocab]

  std::vector<TestResult> tests;
  auto add_test = [&](const char* kind, int64_t n, bool generation) {
    TestResult t;
    t.name = kind + std::to_string(n);
    if (generation && o.depth > 0) {
      t.depth = o.depth;
      t.name += "@d" + std::to_string(o.depth);
    }
    t.generation = generation;
    t.n_tokens = n;
    tests.push_back(std::move(t));
  };
  for (int64_t n : pp) add_test("pp", n, false);
  for (int64_t n : tg) add_test("tg", n, true);

  probe.check(pool, "before");
  for (auto& t : tests) {
    run_once(*m.model, t, prompt, logits, pool);  // warm-up: pages in the weights, warms caches
    kernels::matmul_profile_reset();
    for (int r = 0; r < o.reps; ++r) t.tps.push_back(run_once(*m.model, t, prompt, logits, pool, o.profile));
    if (o.profile) t.profile = kernels::matmul_profile_lines();
    summarise(t);
    probe.check(pool, "after " + t.name);
  }
  const uint64_t peak_rss = peak_rss_bytes();
  // The read bandwidth again, after the tests (and after the peak RSS is read, so its buffer does
  // not count): on these VMs' shared vCPUs a phase change during the run shows as a second
  // reading far from the first, which the CPU probe alone can miss.
  const BandwidthResult bw_after = measure_read_bandwidth(pool, static_cast<size_t>(o.bw_mib) << 20, o.bw_passes);
  const double bw_ratio =
      std::max(bw.best_gbps, bw_after.best_gbps) / std::max(std::min(bw.best_gbps, bw_after.best_gbps), 1e-9);

  // Roofline: if every generated token had to stream its weights from memory at the measured
  // rate, tokens/s could not exceed bandwidth / bytes per token.
  const double roofline_tps = bw.best_gbps * 1e9 / static_cast<double>(std::max<uint64_t>(bytes_per_token, 1));
  std::string reason;
  const SpinProbe::Limits limits;
  bool degraded = probe.degraded(limits, &reason);
  if (bw_ratio > limits.ratio) {
    char line[160];
    std::snprintf(line, sizeof line, "read bandwidth %.1f GB/s before the tests and %.1f after (%.2fx, limit %.1fx)",
                  bw.best_gbps, bw_after.best_gbps, bw_ratio, limits.ratio);
    reason += (reason.empty() ? "" : "; ") + std::string(line);
    degraded = true;
  }

  nlohmann::json jtests = nlohmann::json::array();
  nlohmann::json roofline_fraction = nullptr;  // of the first tg test
  for (const auto& t : tests) {
    nlohmann::json jt{{"name", t.name},         {"kind", t.generation ? "tg" : "pp"},
                      {"n_tokens", t.n_tokens}, {"reps", t.tps.size()},
                      {"median_tps", t.median}, {"min_tps", t.min},
                      {"max_tps", t.max},       {"samples_tps", t.tps}};
    if (t.depth > 0) jt["depth"] = t.depth;
    if (o.profile) {
      nlohmann::json lines = nlohmann::json::array();
      for (const auto& l : t.profile) {
        lines.push_back({{"types", l.shape.type_label()},
                         {"rows", l.shape.rows},
                         {"cols", l.shape.cols},
                         {"tokens", l.shape.tokens},
                         {"calls", l.calls},
                         {"seconds", l.seconds},
                         {"weight_bytes", l.shape.weight_bytes},
                         {"weight_gbps", l.weight_gbps()},
                         {"share", t.share(l)}});
      }
      jt["matmul_profile"] = std::move(lines);
    }
    if (t.generation) {
      jt["roofline_fraction"] = t.median / roofline_tps;
      if (roofline_fraction.is_null()) roofline_fraction = t.median / roofline_tps;
    }
    jtests.push_back(std::move(jt));
  }

  if (o.json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : probe.checks())
      checks.push_back({{"at", c.label}, {"ms", c.ms}, {"cpu_ms", c.cpu_ms}, {"cpu", c.cpu}});
    nlohmann::json j{
        {"model", mopts.path},
        {"model_name", label},
        {"arch", m.model->hparams().arch},
        {"type", type},
        {"file_bytes", file_bytes},
        {"params", params},
        {"weight_bytes_per_token", bytes_per_token},
        {"n_ctx", m.model->n_ctx()},
        {"batch", mopts.max_batch},
        {"threads", pool.size()},
        {"isa", std::string(kernels::isa_name(kernels::active_isa()))},
        {"kv_type", m.model->kv_type() == tensor::DType::kF16 ? "f16" : "f32"},
        {"load_ms", m.load_ms},
        {"huge_page_pieces", huge_pieces},
        {"huge_pages_wait_ms", huge_wait_ms},
        {"interleaved_bytes", m.reader->derived_bytes()},
        {"peak_rss_bytes", peak_rss},
        {"peak_rss_reset", rss_reset},
        {"bandwidth_gbps", bw.best_gbps},
        {"bandwidth_median_gbps", bw.median_gbps},
        {"bandwidth_linear_gbps", bw.linear_best_gbps},
        {"bandwidth_runs_gbps", bw.runs_best_gbps},
        {"bandwidth_after_gbps", bw_after.best_gbps},
        {"bandwidth_buffer_bytes", bw.buffer_bytes},
        {"bandwidth_passes", bw.passes},
        {"roofline_tps", roofline_tps},
        {"roofline_fraction", roofline_fraction},
        {"tests", jtests},
        {"degraded", degraded},
        {"degraded_reason", reason},
        {"spin",
         {{"iterations", probe.iterations()},
          {"solo_ms", probe.solo_ms()},
          {"after_before_ratio", probe.after_before()},
          {"max_spread", probe.max_spread()},
          {"worst_vs_best", probe.worst_vs_best()},
          {"vs_solo", probe.vs_solo()},
          {"threshold", limits.ratio},
          {"solo_threshold", limits.solo_ratio},
          {"checks", checks}}},
    };
    std::printf("%s\n", dump_json(j).c_str());
    if (degraded) std::fprintf(stderr, "lightboat: warning: machine degraded during the run: %s\n", reason.c_str());
    return 0;
  }

  std::printf("| model | size | params | type | threads | test | t/s median [min - max] |\n");
  std::printf("|---|---:|---:|---|---:|---:|---:|\n");
  for (const auto& t : tests) {
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f [%.2f - %.2f] |\n", label.c_str(),
                human_bytes(static_cast<double>(file_bytes)).c_str(), human_count(static_cast<double>(params)).c_str(),
                type.c_str(), pool.size(), t.name.c_str(), t.median, t.min, t.max);
  }
  std::printf(
      "\nread bandwidth: %.1f GB/s (%d threads, %s buffer, best of %d passes; median %.1f; one run per thread "
      "%.1f, 8 runs %.1f)\n",
      bw.best_gbps, pool.size(), human_bytes(static_cast<double>(bw.buffer_bytes)).c_str(), bw.passes, bw.median_gbps,
      bw.linear_best_gbps, bw.runs_best_gbps);
  std::printf("read bandwidth after the tests: %.1f GB/s (%.2fx apart; more than %.1fx marks the run degraded)\n",
              bw_after.best_gbps, bw_ratio, limits.ratio);
  std::printf("weights read per generated token: %.2f MB -> roofline %.1f tokens/s\n",
              static_cast<double>(bytes_per_token) / 1e6, roofline_tps);
  for (const auto& t : tests) {
    if (t.generation) std::printf("%s: %.1f%% of the roofline\n", t.name.c_str(), 100.0 * t.median / roofline_tps);
  }
  std::printf("load: %.1f ms | peak RSS: %.1f MB | context: %lld tokens | reps: %d after one warm-up | kernels: %s\n",
              m.load_ms, static_cast<double>(peak_rss) / 1e6, static_cast<long long>(m.model->n_ctx()), o.reps,
              std::string(kernels::isa_name(kernels::active_isa())).c_str());
  std::printf("huge pages: %zu MiB of weights moved onto them, %.1f ms more after the load (--no-huge-pages: none)\n",
              huge_pieces * 2, huge_wait_ms);
  if (m.reader->derived_bytes() > 0) {
    std::printf(
        "interleaved: %.1f MiB of Q4_0 / Q8_0 / Q4_K / F16 matrices made Q4_0x16 / Q8_0x16 / Q4_Kx16 / F16x16 at load "
        "(--no-interleave: none)\n",
        static_cast<double>(m.reader->derived_bytes()) / (1 << 20));
  }
  std::printf(
      "CPU probe: after/before %.2fx, thread spread %.2fx, slowest vs fastest %.2fx (limit %.1fx), "
      "slowest vs one thread alone %.2fx (limit %.1fx)\n",
      probe.after_before(), probe.max_spread(), probe.worst_vs_best(), limits.ratio, probe.vs_solo(),
      limits.solo_ratio);
  if (o.profile) {
    for (const auto& t : tests) print_profile(t);
  }
  if (degraded)
    std::printf("WARNING: machine degraded during the run: %s; the figures are not representative\n", reason.c_str());
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd =
      app.add_subcommand("bench", "Measure prompt and generation speed against the memory-bandwidth roofline");
  add_model_flags(*cmd, o->model);
  cmd->add_option("-p,--n-prompt", o->pp_sizes, "Prompt sizes to evaluate, comma-separated (none = skip)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", o->tg_sizes, "Generation lengths, comma-separated (none = skip)")
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", o->reps, "Timed repetitions per test, after one warm-up")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--bw-mib", o->bw_mib, "MiB read by the bandwidth measurement")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--bw-passes", o->bw_passes, "Passes over the bandwidth buffer (the best counts)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-d,--depth", o->depth, "tg tests decode after this many prompt tokens in the KV cache")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--kv-type", o->model.kv_type, "KV cache element type: f32 or f16")
      ->transform(CLI::CheckedTransformer(std::map<std::string, tensor::DType>{{"f32", tensor::DType::kF32},
                                                                               {"f16", tensor::DType::kF16}}))
      ->capture_default_str();
  cmd->add_flag("--no-interleave", o->model.no_interleave,
                "Multiply Q4_0, Q8_0, Q4_K and F16 matrices in the file's layout instead of 16 rows interleaved (where "
                "the kernels read that faster: AMX)");
  cmd->add_flag("--json", o->json, "Print one JSON object with every figure");
  cmd->add_flag("--profile", o->profile,
                "Time every matmul shape during the timed repetitions: weight GB/s and share of each test's time");
  return [o] { return bench(*o); };
}

}  // namespace lightboat::cli
