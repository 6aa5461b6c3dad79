#include "engine_bench_support.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

namespace lightboat::engine_bench {
namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(
      stderr,
      "engine_bench: %s\n"
      "usage: engine_bench -m MODEL.gguf [-t THREADS] [-c N_CTX] [--kv-mib MIB] [--step-tokens 256]\n"
      "  [--max-running 16] [--reps 3] [--idle SECONDS] [--part all|concurrency|priority|prefix] [--json] [-v]\n"
      "  concurrency: [--streams 1,2,4,8] [--tokens 64] [--prompt-words 8]\n"
      "  priority:    [--unloaded 8] [--highs 12] [--lows 24] [--high-tokens 8] [--low-tokens 32]\n"
      "               [--high-gap-ms 100] [--high-words 12] [--low-words 48] [-v]\n"
      "  prefix:      [--sys-tokens 500]\n",
      why);
  std::exit(2);
}

// The options that set one number field.
template <typename T>
struct NumberOption {
  const char* name;
  T Args::*field;
};
constexpr NumberOption<int> kIntOptions[] = {
    {"-t", &Args::threads},
    {"--idle", &Args::idle_s},
    {"--prompt-words", &Args::prompt_words},
    {"--unloaded", &Args::unloaded},
    {"--highs", &Args::highs},
    {"--lows", &Args::lows},
    {"--high-words", &Args::high_words},
    {"--low-words", &Args::low_words},
    {"--high-gap-ms", &Args::high_gap_ms},
    {"--sys-tokens", &Args::sys_tokens},
};
constexpr NumberOption<int64_t> kInt64Options[] = {
    {"-c", &Args::n_ctx},
    {"--kv-mib", &Args::kv_mib},
    {"--step-tokens", &Args::step_tokens},
    {"--max-running", &Args::max_running},
    {"--tokens", &Args::tokens},
    {"--high-tokens", &Args::high_tokens},
    {"--low-tokens", &Args::low_tokens},
};

template <typename T, size_t N>
const NumberOption<T>* find_option(const NumberOption<T> (&options)[N], const std::string& name) {
  for (const auto& o : options) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

}  // namespace

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + k).c_str());
      return argv[++i];
    };
    auto number = [&]() -> int64_t {
      const std::string v = value();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 0) usage(("bad number for " + k + ": " + v).c_str());
      return n;
    };
    if (k == "-m") {
      a.model = value();
    } else if (const auto* o = find_option(kIntOptions, k)) {
      a.*(o->field) = static_cast<int>(number());
    } else if (const auto* o64 = find_option(kInt64Options, k)) {
      a.*(o64->field) = number();
    } else if (k == "--reps") {
      a.reps = std::max<int>(1, static_cast<int>(number()));
    } else if (k == "--part") {
      a.part = value();
    } else if (k == "--json") {
      a.json = true;
    } else if (k == "-v" || k == "--verbose") {
      a.verbose = true;
    } else if (k == "--streams") {
      a.streams.clear();
      std::stringstream ss(value());
      for (std::string s; std::getline(ss, s, ',');) {
        const int n = std::atoi(s.c_str());
        if (n < 1) usage("bad --streams");
        a.streams.push_back(n);
      }
    } else {
      usage(("unknown option " + k).c_str());
    }
  }
  if (a.model.empty()) usage("no model (-m)");
  if (a.threads == 0) a.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (a.part != "all" && a.part != "concurrency" && a.part != "priority" && a.part != "prefix") usage("bad --part");
  if (a.tokens < 1 || a.high_tokens < 1 || a.low_tokens < 1 || a.unloaded < 1 || a.highs < 1)
    usage("counts must be >= 1");
  return a;
}

std::shared_ptr<Sink> submit(Engine& engine, Group& group, std::string prompt, int64_t max_tokens, Priority p) {
  GenerateRequest r{.prompt = std::move(prompt), .max_tokens = max_tokens, .priority = p};
  r.sampling.temperature = 0.0f;
  auto sink = std::make_shared<Sink>(group);
  group.add();
  const lightboat::SubmitResult s = engine.submit(std::move(r), sink);
  if (s.status != SubmitStatus::kAccepted) {
    std::fprintf(stderr, "engine_bench: request refused: %s\n", s.message.c_str());
    std::exit(1);
  }
  return sink;
}

std::string words(uint64_t seed, int n) {
  static const char* const kWords[] = {
      "the",     "river",  "quiet",  "machine",  "learns", "under",    "bright",  "lamp",    "while",   "seven",
      "small",   "birds",  "carry",  "old",      "maps",   "across",   "green",   "hills",   "near",    "a",
      "stone",   "bridge", "where",  "people",   "trade",  "fresh",    "bread",   "and",     "stories", "about",
      "distant", "cities", "made",   "of",       "glass",  "every",    "morning", "soft",    "rain",    "falls",
      "on",      "silver", "roofs",  "children", "count",  "boats",    "that",    "sail",    "slowly",  "toward",
      "winter",  "harbor", "lights", "gather",   "into",   "patterns", "nobody",  "expects", "today",   "again"};
  constexpr uint64_t kN = sizeof(kWords) / sizeof(kWords[0]);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  std::string out = "Note " + std::to_string(seed) + ":";
  for (int i = 0; i < n; ++i) {
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    out += ' ';
    out += kWords[(x * 0x2545F4914F6CDD1Dull >> 33) % kN];
  }
  return out;
}

void idle(const Args& a) {
  if (a.idle_s > 0) std::this_thread::sleep_for(std::chrono::seconds(a.idle_s));
}

CpuMeter::CpuMeter(int threads) : threads_(std::max(threads, 1)), start_(Clock::now()), cpu_(cpu_s()) {
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load_) != 1) load_ = -1;
    std::fclose(f);
  }
}

double CpuMeter::share() const {
  const double wall = std::chrono::duration<double>(Clock::now() - start_).count();
  return wall > 0 ? (cpu_s() - cpu_) / (wall * threads_) : 0;
}

double CpuMeter::cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
  return s(u.ru_utime) + s(u.ru_stime);
}

Summary summarize(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return {med, v.front(), v.back()};
}
double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

std::string json_summary(const Summary& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}", s.median, s.min, s.max);
  return buf;
}

}  // namespace lightboat::engine_bench
