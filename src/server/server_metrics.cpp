#include "server/server_metrics.h"

namespace lightboat::server {
namespace {

// Seconds: 1 ms .. 10 s, for token timings of small models on a CPU up to large ones under load.
const std::vector<double> kTokenBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

ServerMetrics::ServerMetrics(const std::string& model, const std::string& quantization)
    : model_(model),
      latency_ms_(registry_
                      .histogram("inference_latency_ms",
                                 "Milliseconds from submission to the last token of finished answers.",
                                 {"model", "quantization"}, {50, 100, 200, 500, 1000})
                      .with({model, quantization})),
      latency_s_(
          registry_
              .histogram("inference_latency_seconds",
                         "Seconds from submission to the last token of finished answers (the millisecond histogram "
                         "in base units).",
                         {"model", "quantization"}, {0.05, 0.1, 0.2, 0.5, 1})
              .with({model, quantization})),
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

void ServerMetrics::completed(Priority priority, const Completion& c) {
  const char* status = "ok";
  switch (c.finish_reason) {
    case FinishReason::kStop:
    case FinishReason::kLength:
      latency_ms_.observe(c.total_ms);
      latency_s_.observe(c.total_ms / 1000.0);
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

std::string ServerMetrics::scrape(const EngineStats& stats) {
  memory_.with({model_, "weights"}).set(static_cast<double>(stats.weight_bytes));
  memory_.with({model_, "kv_cache"}).set(static_cast<double>(stats.kv_cache_bytes));
  kv_pages_.with({"used"}).set(static_cast<double>(stats.kv_pages_total - stats.kv_pages_free));
  kv_pages_.with({"free"}).set(static_cast<double>(stats.kv_pages_free));
  queued_.set(static_cast<double>(stats.requests_queued));
  running_.set(static_cast<double>(stats.requests_running));
  return registry_.expose();
}

}  // namespace lightboat::server
