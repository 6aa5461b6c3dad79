// Engine-level benchmark of issue 5, through the public API only (lightboat/engine.h): what a
// server sees. Three measurements on one opened model:
//
//  1. concurrency: N = 1, 2, 4, 8 streams (distinct prompts, greedy, max_tokens each) submitted
//     at once; aggregate tokens/s = sum of completion tokens / wall time from the first submit
//     to the last on_done. Target: 8 streams >= 4x one stream.
//  2. priority: TTFT of high-priority requests alone (unloaded, measured first), then while a
//     flood of low-priority requests fills the batch and the queue (highs one at a time, each
//     --high-gap-ms after the previous completed). Target: loaded p99 <= 2x unloaded p50. Also: every low request
//     completes (no starvation); their completion times are reported.
//  3. prefix: a ~500-token system prompt followed by one question, then the same system prompt
//     with another question. Target: TTFT of the second <= 20% of the first
//     (Completion::ttft_ms; cached_prompt_tokens says how much was reused).
//
// Random-weight models generate arbitrary tokens; a stream that samples an end-of-generation
// token stops early and is counted honestly (its tokens, and how many stopped early).
// Every measurement is repeated --reps times, each after --idle seconds of sleep (shared vCPUs
// run at full speed only in bursts after idling); medians and min-max are reported.
//
//   build/bench/engine_bench -m MODEL.gguf [-t 2] [--reps 3] [--idle 20] [--json]
//                            [--part all|concurrency|priority|prefix] (see usage() for the rest)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine_bench_support.h"
#include "lightboat/engine.h"

namespace lightboat::engine_bench {
namespace {

// --- 1. concurrency -------------------------------------------------------------------------

std::string bench_concurrency(Engine& engine, const Args& a) {
  struct Point {
    std::vector<double> tps, decode_tps, wall_ms, ttft_ms, cpu_share;
    int64_t tokens = 0, early = 0, requests = 0, prompt_tokens = 0;
  };
  std::vector<Point> points(a.streams.size());
  // Interleaved (rep outer, stream count inner) so that machine drift hits every point alike.
  for (int rep = 0; rep < a.reps; ++rep) {
    for (size_t si = 0; si < a.streams.size(); ++si) {
      idle(a);
      Group group;
      std::vector<std::shared_ptr<Sink>> sinks;
      const CpuMeter meter(a.threads);
      const Clock::time_point t0 = Clock::now();
      for (int s = 0; s < a.streams[si]; ++s)
        sinks.push_back(submit(engine, group, words(g_seed++, a.prompt_words), a.tokens, Priority::kNormal));
      group.wait();
      Clock::time_point last = t0;
      int64_t tokens = 0;
      Point& p = points[si];
      for (const auto& sink : sinks) {
        last = std::max(last, sink->done_at);
        tokens += sink->completion.completion_tokens;
        if (sink->completion.finish_reason == FinishReason::kStop) ++p.early;
        p.ttft_ms.push_back(sink->completion.ttft_ms);
        p.prompt_tokens += sink->completion.prompt_tokens;
        ++p.requests;
      }
      const double wall = ms_between(t0, last);
      p.tps.push_back(1e3 * static_cast<double>(tokens) / wall);
      // Steady decode: from the moment every stream had its first token (submit + ttft; all
      // are submitted within microseconds) to the last on_done, the tokens after the first.
      double all_first_ms = 0;
      for (const auto& sink : sinks) all_first_ms = std::max(all_first_ms, sink->completion.ttft_ms);
      const double decode_ms = wall - all_first_ms;
      if (tokens > a.streams[si] && decode_ms > 0) {
        p.decode_tps.push_back(1e3 * static_cast<double>(tokens - a.streams[si]) / decode_ms);
      }
      p.wall_ms.push_back(wall);
      p.tokens += tokens;
      p.cpu_share.push_back(meter.share());
      std::fprintf(
          stderr,
          "  concurrency rep %d: %d stream(s): %lld tokens in %.0f ms = %.1f tok/s (CPU share %.2f, load %.1f)\n",
          rep + 1, a.streams[si], static_cast<long long>(tokens), wall, p.tps.back(), p.cpu_share.back(), meter.load());
    }
  }
  std::string out = "[";
  const double base = summarize(points[0].tps).median;
  for (size_t si = 0; si < a.streams.size(); ++si) {
    const Point& p = points[si];
    const Summary tps = summarize(p.tps);
    char buf[768];
    std::snprintf(buf, sizeof buf,
                  "%s{\"streams\": %d, \"tokens_per_s\": %s, \"speedup\": %.2f, \"decode_tokens_per_s\": %s, "
                  "\"cpu_share\": %s, \"wall_ms\": %s, \"ttft_ms_p50\": "
                  "%.1f, \"prompt_tokens_mean\": %.1f, \"completion_tokens\": %lld, \"stopped_early\": %lld, "
                  "\"requests\": %lld}",
                  si ? ", " : "", a.streams[si], json_summary(tps).c_str(), base > 0 ? tps.median / base : 0.0,
                  json_summary(summarize(p.decode_tps)).c_str(), json_summary(summarize(p.cpu_share)).c_str(),
                  json_summary(summarize(p.wall_ms)).c_str(), percentile(p.ttft_ms, 0.5),
                  static_cast<double>(p.prompt_tokens) / static_cast<double>(p.requests),
                  static_cast<long long>(p.tokens), static_cast<long long>(p.early),
                  static_cast<long long>(p.requests));
    out += buf;
    std::fprintf(stderr,
                 "concurrency: %d stream(s): %.1f tok/s (%.1f-%.1f), x%.2f of one stream; %lld/%lld stopped early\n",
                 a.streams[si], tps.median, tps.min, tps.max, base > 0 ? tps.median / base : 0.0,
                 static_cast<long long>(p.early), static_cast<long long>(p.requests));
  }
  return out + "]";
}

// --- 2. priority under a low-priority flood -------------------------------------------------

std::string bench_priority(Engine& engine, const Args& a) {
  std::vector<double> unloaded_p50, loaded_p50, loaded_p99, ratio, low_p50, low_max, flood_ms, cpu_share;
  int64_t lows_done = 0, lows_total = 0, lows_early = 0, highs_loaded = 0, highs_total = 0;
  int64_t high_prompt = 0, low_prompt = 0;  // tokens, summed over the loaded runs' requests
  for (int rep = 0; rep < a.reps; ++rep) {
    // Unloaded: one high request at a time on an idle engine.
    idle(a);
    std::vector<double> alone;
    for (int i = 0; i < a.unloaded; ++i) {
      Group g;
      auto s = submit(engine, g, words(g_seed++, a.high_words), a.high_tokens, Priority::kHigh);
      g.wait();
      alone.push_back(s->completion.ttft_ms);
    }
    const double base = percentile(alone, 0.5);

    // Loaded: all lows at once, then the highs one at a time, each high_gap_ms after the previous
    // one completed (closed loop: an occasional high-priority user, so highs never queue behind
    // highs and what is measured is what the low-priority flood costs them).
    idle(a);
    const CpuMeter meter(a.threads);
    Group low_group, high_group;
    std::vector<std::shared_ptr<Sink>> lows, highs;
    const Clock::time_point t0 = Clock::now();
    for (int i = 0; i < a.lows; ++i)
      lows.push_back(submit(engine, low_group, words(g_seed++, a.low_words), a.low_tokens, Priority::kLow));
    for (int i = 0; i < a.highs; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(a.high_gap_ms));
      if (low_group.pending() == 0) break;  // the flood is over: later highs would be unloaded
      highs.push_back(submit(engine, high_group, words(g_seed++, a.high_words), a.high_tokens, Priority::kHigh));
      high_group.wait();
    }
    low_group.wait();
    Clock::time_point last_low = t0;
    std::vector<double> low_total, loaded;
    for (const auto& s : lows) {
      last_low = std::max(last_low, s->done_at);
      low_total.push_back(s->completion.total_ms);
      low_prompt += s->completion.prompt_tokens;
      if (s->completion.finish_reason == FinishReason::kLength || s->completion.finish_reason == FinishReason::kStop)
        ++lows_done;
      if (s->completion.finish_reason == FinishReason::kStop) ++lows_early;
    }
    for (size_t i = 0; i < highs.size(); ++i) {
      loaded.push_back(highs[i]->completion.ttft_ms);
      high_prompt += highs[i]->completion.prompt_tokens;
      if (a.verbose) {
        const Completion& c = highs[i]->completion;
        std::fprintf(stderr, "    high %zu: %lld prompt tokens, queued %.1f ms, TTFT %.1f ms, total %.1f ms\n", i,
                     static_cast<long long>(c.prompt_tokens), c.queue_ms, c.ttft_ms, c.total_ms);
      }
    }
    if (a.verbose) {
      for (size_t i = 0; i < lows.size(); ++i) {
        const Completion& c = lows[i]->completion;
        std::fprintf(stderr, "    low %zu: %lld prompt tokens, queued %.1f ms, TTFT %.1f ms, total %.1f ms, %s\n", i,
                     static_cast<long long>(c.prompt_tokens), c.queue_ms, c.ttft_ms, c.total_ms,
                     lightboat::finish_reason_name(c.finish_reason));
      }
    }
    lows_total += a.lows;
    highs_total += a.highs;
    highs_loaded += static_cast<int64_t>(loaded.size());
    unloaded_p50.push_back(base);
    loaded_p50.push_back(percentile(loaded, 0.5));
    loaded_p99.push_back(percentile(loaded, 0.99));
    ratio.push_back(base > 0 ? loaded_p99.back() / base : 0);
    low_p50.push_back(percentile(low_total, 0.5));
    low_max.push_back(percentile(low_total, 1.0));
    flood_ms.push_back(ms_between(t0, last_low));
    cpu_share.push_back(meter.share());
    std::fprintf(stderr,
                 "  priority rep %d: unloaded TTFT p50 %.1f ms; loaded (%zu of %d highs under load) p50 %.1f p99 %.1f "
                 "ms (x%.2f); lows done in p50 %.0f max %.0f ms (CPU share %.2f, load %.1f)\n",
                 rep + 1, base, loaded.size(), a.highs, loaded_p50.back(), loaded_p99.back(), ratio.back(),
                 low_p50.back(), low_max.back(), cpu_share.back(), meter.load());
  }
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "{\"unloaded_ttft_ms_p50\": %s, \"loaded_ttft_ms_p50\": %s, \"loaded_ttft_ms_p99\": %s, "
      "\"p99_over_unloaded\": %s, \"highs_under_load\": %lld, \"highs\": %lld, \"lows_completed\": %lld, "
      "\"lows\": %lld, \"lows_stopped_early\": %lld, \"low_total_ms_p50\": %s, \"low_total_ms_max\": %s, "
      "\"flood_ms\": %s, \"high_prompt_tokens_mean\": %.1f, \"low_prompt_tokens_mean\": %.1f, \"cpu_share\": %s}",
      json_summary(summarize(unloaded_p50)).c_str(), json_summary(summarize(loaded_p50)).c_str(),
      json_summary(summarize(loaded_p99)).c_str(), json_summary(summarize(ratio)).c_str(),
      static_cast<long long>(highs_loaded), static_cast<long long>(highs_total), static_cast<long long>(lows_done),
      static_cast<long long>(lows_total), static_cast<long long>(lows_early), json_summary(summarize(low_p50)).c_str(),
      json_summary(summarize(low_max)).c_str(), json_summary(summarize(flood_ms)).c_str(),
      static_cast<double>(high_prompt) / static_cast<double>(std::max<int64_t>(highs_loaded, 1)),
      static_cast<double>(low_prompt) / static_cast<double>(lows_total), json_summary(summarize(cpu_share)).c_str());
  const Summary r = summarize(ratio);
  std::fprintf(stderr, "priority: loaded p99 / unloaded p50 = x%.2f (%.2f-%.2f); lows completed %lld/%lld\n", r.median,
               r.min, r.max, static_cast<long long>(lows_done), static_cast<long long>(lows_total));
  return buf;
}

// --- 3. prefix cache ------------------------------------------------------------------------

std::string bench_prefix(Engine& engine, const Args& a) {
  // Calibrate words per token on this tokenizer so the system prompt is ~sys_tokens long.
  Group cal;
  auto probe = submit(engine, cal, words(g_seed++, 200), 1, Priority::kNormal);
  cal.wait();
  const double tokens_per_word = static_cast<double>(probe->completion.prompt_tokens) / 200.0;
  const int n_words = std::max(1, static_cast<int>(a.sys_tokens / tokens_per_word));

  std::vector<double> first_ms, second_ms, ratio;
  int64_t prompt_tokens = 0, cached = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    idle(a);
    const std::string system = "System: " + words(g_seed++, n_words) + "\n\n";
    Group g1;
    auto first = submit(engine, g1, system + "User: " + words(g_seed++, 12) + "\nAssistant:", 8, Priority::kNormal);
    g1.wait();
    Group g2;
    auto second = submit(engine, g2, system + "User: " + words(g_seed++, 12) + "\nAssistant:", 8, Priority::kNormal);
    g2.wait();
    first_ms.push_back(first->completion.ttft_ms);
    second_ms.push_back(second->completion.ttft_ms);
    ratio.push_back(second_ms.back() / first_ms.back());
    prompt_tokens = second->completion.prompt_tokens;
    cached = second->completion.cached_prompt_tokens;
    std::fprintf(stderr, "  prefix rep %d: %lld-token prompt: TTFT %.1f ms, then %.1f ms with %lld cached (%.1f%%)\n",
                 rep + 1, static_cast<long long>(prompt_tokens), first_ms.back(), second_ms.back(),
                 static_cast<long long>(cached), 100 * ratio.back());
  }
  const Summary r = summarize(ratio);
  std::fprintf(stderr, "prefix: second TTFT = %.1f%% (%.1f-%.1f%%) of the first\n", 100 * r.median, 100 * r.min,
               100 * r.max);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"prompt_tokens\": %lld, \"cached_prompt_tokens\": %lld, \"first_ttft_ms\": %s, "
                "\"second_ttft_ms\": %s, \"second_over_first\": %s}",
                static_cast<long long>(prompt_tokens), static_cast<long long>(cached),
                json_summary(summarize(first_ms)).c_str(), json_summary(summarize(second_ms)).c_str(),
                json_summary(r).c_str());
  return buf;
}

}  // namespace
}  // namespace lightboat::engine_bench

int main(int argc, char** argv) {
  using namespace lightboat::engine_bench;
  using lightboat::Engine;
  using lightboat::Priority;
  const Args a = parse(argc, argv);
  lightboat::EngineOptions o{.model_path = a.model,
                             .threads = a.threads,
                             .n_ctx = a.n_ctx,
                             .kv_cache_bytes = a.kv_mib * 1024 * 1024,
                             .step_tokens = a.step_tokens,
                             .max_running = a.max_running,
                             .max_queue = 1024};
  std::unique_ptr<Engine> engine;
  try {
    engine = Engine::open(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
  {
    // Warm-up: pages the mapped weights in and sizes every buffer once.
    Group g;
    std::vector<std::shared_ptr<Sink>> sinks;
    for (int i = 0; i < 4; ++i) sinks.push_back(submit(*engine, g, words(g_seed++, 16), 8, Priority::kNormal));
    g.wait();
  }
  const bool all = a.part == "all";
  std::string concurrency = "null", priority = "null", prefix = "null";
  if (all || a.part == "concurrency") concurrency = bench_concurrency(*engine, a);
  if (all || a.part == "priority") priority = bench_priority(*engine, a);
  if (all || a.part == "prefix") prefix = bench_prefix(*engine, a);
  const lightboat::EngineStats st = engine->stats();
  if (a.json) {
    std::printf(
        "{\"model\": %s, \"file\": %s, \"type\": \"%s\", \"threads\": %d, \"n_ctx\": %lld, \"step_tokens\": %lld, "
        "\"max_running\": %lld, \"kv_cache_bytes\": %lld, \"reps\": %d, \"idle_s\": %d, \"tokens\": %lld, "
        "\"high_tokens\": %lld, \"low_tokens\": %lld, \"high_gap_ms\": %d,\n \"concurrency\": %s,\n \"priority\": "
        "%s,\n \"prefix\": %s,\n \"engine_steps\": %lld, \"requests_refused\": %lld}\n",
        json_string(engine->model_name()).c_str(), json_string(a.model).c_str(), engine->quantization().c_str(),
        a.threads, static_cast<long long>(engine->n_ctx()), static_cast<long long>(a.step_tokens),
        static_cast<long long>(a.max_running), static_cast<long long>(st.kv_cache_bytes), a.reps, a.idle_s,
        static_cast<long long>(a.tokens), static_cast<long long>(a.high_tokens), static_cast<long long>(a.low_tokens),
        a.high_gap_ms, concurrency.c_str(), priority.c_str(), prefix.c_str(), static_cast<long long>(st.steps),
        static_cast<long long>(st.requests_refused));
  }
  return 0;
}
