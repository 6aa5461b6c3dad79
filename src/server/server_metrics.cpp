#include "server/server_metrics.h"

namespace lightboat::server {
namespace {

// Seconds: 1 ms .. 10 s, for token timings of small models on a CPU up to large ones under load.
const std::vector<double> kTokenBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

ServerMetrics::ServerMetrics()
    : latency_ms_(registry_.histogram("inference_latency_ms",
                                      "Milliseconds from submission to the last token of finished answers.",
                                      {"model", "quantization"}, {50, 100, 200, 500, 1000})),
      latency_s_(registry_.histogram(
          "inference_latency_seconds",
          "Seconds from submission to the last token of finished answers (the millisecond histogram in base units).",
          {"model", "quantization"}, {0.05, 0.1, 0.2, 0.5, 1})),
      loaded_(registry_.gauge("lightboat_model_loaded", "1 while the model is loaded, else 0.", {"model"})),
      models_memory_(
          registry_
              .gauge("lightboat_models_memory_bytes",
                     "Bytes of every loaded model version (weights and KV pools), the memory budget's measure.")
              .with({})),
      models_peak_(
          registry_.gauge("lightboat_models_memory_peak_bytes", "The most lightboat_models_memory_bytes has been.")
              .with({})),
      models_budget_(
          registry_.gauge("lightboat_models_memory_budget_bytes", "The memory budget of the models (0 = none).")
              .with({})),
      loads_(registry_.counter("model_loads_total", "Successful model loads, updates included.", {"model"})),
      evictions_(
          registry_.counter("model_evictions_total", "Idle models unloaded to make room under the budget.").with({})),
      expirations_(
          registry_.counter("model_expirations_total", "Idle models unloaded after their keep-alive.").with({})),
      reloads_(registry_.counter("model_reloads_total", "Hot updates by result (failed: rolled back).", {"result"})),
      requests_total_(registry_.counter("inference_requests_total", "Generation requests by outcome.", {"status"})),
      memory_(registry_.gauge("model_memory_bytes", "Bytes the loaded model holds, by kind.", {"model", "kind"})),
      ttft_(registry_
                .histogram("lightboat_time_to_first_token_seconds", "Submission to the first generated token.", {},
                           kTokenBuckets)
                .with({})),
      inter_token_(registry_
                       .histogram("lightboat_inter_token_latency_seconds",
                                  "Time between two streamed pieces of text of one answer.", {}, kTokenBuckets)
                       .with({})),
      queue_wait_(registry_.histogram("lightboat_queue_wait_seconds", "Submission to admission, by priority.",
                                      {"priority"}, kTokenBuckets)),
      prompt_tokens_(
          registry_.counter("lightboat_prompt_tokens_total", "Prompt tokens of finished requests.").with({})),
      generated_tokens_(registry_.counter("lightboat_generated_tokens_total", "Tokens generated.").with({})),
      kv_pages_(registry_.gauge("lightboat_kv_cache_pages", "KV cache pages by state.", {"state"})),
      deadline_misses_(registry_.counter("lightboat_deadline_misses_total",
                                         "Requests ended by their deadline after they were accepted.", {"priority"})),
      refusals_(
          registry_.counter("lightboat_refusals_total", "Requests refused at submission.", {"priority", "reason"})),
      in_flight_(registry_.gauge("lightboat_requests_in_flight", "Generation requests being served.").with({})),
      queued_(registry_.gauge("lightboat_requests_queued", "Requests waiting in the engine's queues.").with({})),
      running_(registry_.gauge("lightboat_requests_running", "Requests in the engine's batch.").with({})),
      connections_(registry_.gauge("lightboat_http_connections", "Open HTTP and WebSocket connections.").with({})) {
  // Every label value known up front is exposed at 0 from the start (rates need a baseline).
  reloads_.with({"ok"});
  reloads_.with({"failed"});
  for (const char* s : {"ok", "invalid", "overloaded", "deadline_exceeded", "cancelled", "error"}) {
    requests_total_.with({s});
  }
  for (Priority p : {Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    queue_wait_.with({priority_name(p)});
    deadline_misses_.with({priority_name(p)});
    refusals_.with({priority_name(p), "overloaded"});
    refusals_.with({priority_name(p), "deadline"});
  }
}

void ServerMetrics::completed(Priority priority, const Completion& c, const std::string& model,
                              const std::string& quantization) {
  const char* status = "ok";
  switch (c.finish_reason) {
    case FinishReason::kStop:
    case FinishReason::kLength:
      latency_ms_.with({model, quantization}).observe(c.total_ms);
      latency_s_.with({model, quantization}).observe(c.total_ms / 1000.0);
      break;
    case FinishReason::kCancelled:
      status = "cancelled";
      break;
    case FinishReason::kDeadlineExceeded:
      status = "deadline_exceeded";
      deadline_misses_.with({priority_name(priority)}).inc();
      break;
    case FinishReason::kError:
      status = "error";
      break;
  }
  requests_total_.with({status}).inc();
  if (c.completion_tokens > 0) ttft_.observe(c.ttft_ms / 1000.0);
  queue_wait_.with({priority_name(priority)}).observe(c.queue_ms / 1000.0);
  prompt_tokens_.inc(static_cast<double>(c.prompt_tokens));
  generated_tokens_.inc(static_cast<double>(c.completion_tokens));
}

void ServerMetrics::refused(Priority priority, SubmitStatus status) {
  switch (status) {
    case SubmitStatus::kOverloaded:
      requests_total_.with({"overloaded"}).inc();
      refusals_.with({priority_name(priority), "overloaded"}).inc();
      break;
    case SubmitStatus::kDeadlineUnmeetable:
      requests_total_.with({"deadline_exceeded"}).inc();
      refusals_.with({priority_name(priority), "deadline"}).inc();
      break;
    case SubmitStatus::kInvalid:
      requests_total_.with({"invalid"}).inc();
      break;
    case SubmitStatus::kAccepted:
      break;
  }
}

void ServerMetrics::advance(metrics::Counter& c, int64_t total) {
  const double by = static_cast<double>(total) - c.value();
  if (by > 0) c.inc(by);
}

std::string ServerMetrics::scrape(const std::vector<ModelStatus>& models, const ModelManagerStats& stats,
                                  int64_t budget_bytes) {
  std::lock_guard<std::mutex> lock(scrape_mutex_);  // advance() reads then increments
  EngineStats sum;
  for (const ModelStatus& m : models) {
    const EngineStats& e = m.engine;
    memory_.with({m.name, "weights"}).set(static_cast<double>(e.weight_bytes));
    memory_.with({m.name, "kv_cache"}).set(static_cast<double>(e.kv_cache_bytes));
    loaded_.with({m.name}).set(m.state == ModelState::kReady ? 1.0 : 0.0);
    advance(loads_.with({m.name}), m.loads);
    sum.kv_pages_total += e.kv_pages_total;
    sum.kv_pages_free += e.kv_pages_free;
    sum.requests_queued += e.requests_queued;
    sum.requests_running += e.requests_running;
  }
  models_memory_.set(static_cast<double>(stats.memory_bytes));
  models_peak_.set(static_cast<double>(stats.peak_memory_bytes));
  models_budget_.set(static_cast<double>(budget_bytes));
  advance(evictions_, stats.evictions);
  advance(expirations_, stats.expirations);
  advance(reloads_.with({"ok"}), stats.updates);
  advance(reloads_.with({"failed"}), stats.update_failures);
  kv_pages_.with({"used"}).set(static_cast<double>(sum.kv_pages_total - sum.kv_pages_free));
  kv_pages_.with({"free"}).set(static_cast<double>(sum.kv_pages_free));
  queued_.set(static_cast<double>(sum.requests_queued));
  running_.set(static_cast<double>(sum.requests_running));
  return registry_.expose();
}

}  // namespace lightboat::server
