// The server's metrics (what GET /metrics exposes), over a metrics::Registry it owns.
//
//  inference_latency_ms{model,quantization}          histogram, ms, buckets 50 100 200 500 1000:
//                                                    submission to the last token of answers that
//                                                    finished (stop or length). The name is the
//                                                    product spec's; promtool's linter dislikes the
//                                                    "ms" abbreviation (see README), every other
//                                                    duration below is in seconds.
//  inference_latency_seconds{model,quantization}     the same histogram in base units (buckets
//                                                    0.05 .. 1 s), clean for promtool's linter
//  inference_requests_total{status}                  generation requests by outcome: ok, invalid,
//                                                    overloaded, deadline_exceeded, cancelled, error
//  model_memory_bytes{model,kind}                    weights, kv_cache of each model's current
//                                                    version (0 while it is not loaded)
//  lightboat_model_loaded{model}                     1 while loaded, else 0
//  lightboat_models_memory_bytes                     all loaded versions (retired ones finishing
//                                                    requests included), the budget's measure
//  lightboat_models_memory_peak_bytes                its most after any load
//  lightboat_models_memory_budget_bytes              --memory-budget (0 = none)
//  model_loads_total{model}                          successful loads (first, after eviction, updates)
//  model_evictions_total / model_expirations_total   unloaded for room / after keep_alive
//  model_reloads_total{result}                       hot updates: ok, failed (rolled back)
//  lightboat_time_to_first_token_seconds             histogram
//  lightboat_inter_token_latency_seconds             histogram, between two streamed text pieces
//  lightboat_queue_wait_seconds{priority}            histogram, submission to admission
//  lightboat_prompt_tokens_total / lightboat_generated_tokens_total
//  lightboat_kv_cache_pages{state}                   used, free (free includes reusable prefixes)
//  lightboat_deadline_misses_total{priority}         ended by their deadline mid-generation
//  lightboat_refusals_total{priority,reason}         overloaded, deadline
//  lightboat_requests_in_flight                      generation requests the server is serving
//  lightboat_requests_queued / _running              the engines' view at scrape time (summed;
//                                                    so are the KV pages)
//  lightboat_http_connections                        open connections (HTTP and WebSocket)
#pragma once

#include <string>

#include <map>
#include <mutex>
#include <vector>

#include "lightboat/engine.h"
#include "lightboat/model_manager.h"
#include "metrics/registry.h"

namespace lightboat::server {

class ServerMetrics {
 public:
  ServerMetrics();

  // A generation of `model` (its quantization) ended (engine thread). Records latency, queue
  // wait, tokens and the outcome.
  void completed(Priority priority, const Completion& c, const std::string& model, const std::string& quantization);
  // The time between two text pieces of one stream, in seconds (engine thread).
  void inter_token(double seconds) { inter_token_.observe(seconds); }
  // A request refused before it reached the engine's queue. `status` as in requests_total.
  void refused(Priority priority, SubmitStatus status);
  void invalid() { requests_total_.with({"invalid"}).inc(); }

  metrics::Gauge& in_flight() { return in_flight_; }
  metrics::Gauge& connections() { return connections_; }

  // The exposition, with the model and engine gauges refreshed from the manager first.
  std::string scrape(const std::vector<ModelStatus>& models, const ModelManagerStats& stats, int64_t budget_bytes);

 private:
  static void advance(metrics::Counter& c, int64_t total);  // a counter mirroring a running total

  metrics::Registry registry_;
  std::mutex scrape_mutex_;
  metrics::Family<metrics::Histogram>& latency_ms_;
  metrics::Family<metrics::Histogram>& latency_s_;
  metrics::Family<metrics::Gauge>& loaded_;
  metrics::Gauge& models_memory_;
  metrics::Gauge& models_peak_;
  metrics::Gauge& models_budget_;
  metrics::Family<metrics::Counter>& loads_;
  metrics::Counter& evictions_;
  metrics::Counter& expirations_;
  metrics::Family<metrics::Counter>& reloads_;
  metrics::Family<metrics::Counter>& requests_total_;
  metrics::Family<metrics::Gauge>& memory_;
  metrics::Histogram& ttft_;
  metrics::Histogram& inter_token_;
  metrics::Family<metrics::Histogram>& queue_wait_;
  metrics::Counter& prompt_tokens_;
  metrics::Counter& generated_tokens_;
  metrics::Family<metrics::Gauge>& kv_pages_;
  metrics::Family<metrics::Counter>& deadline_misses_;
  metrics::Family<metrics::Counter>& refusals_;
  metrics::Gauge& in_flight_;
  metrics::Gauge& queued_;
  metrics::Gauge& running_;
  metrics::Gauge& connections_;
};

}  // namespace lightboat::server
