#include "server/context.h"

#include <algorithm>

namespace lightboat::server {

ServerContext::ServerContext(Engine& e, ServerConfig c)
    : engine(e), config(std::move(c)), metrics(config.model_id, e.quantization()) {
  model_ids.push_back(config.model_id);
  const std::string name = e.model_name();
  if (!name.empty() && name != config.model_id) model_ids.push_back(name);
}

std::shared_ptr<void> ServerContext::connection_ticket() {
  ++connections;
  metrics.connections().add(1);
  return std::shared_ptr<void>(static_cast<void*>(this), [](void* p) {
    auto* ctx = static_cast<ServerContext*>(p);
    --ctx->connections;
    ctx->metrics.connections().add(-1);
  });
}

std::shared_ptr<void> ServerContext::generation_ticket(RequestId id) {
  ++open_generations;
  metrics.in_flight().add(1);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.insert(id);
  }
  return std::shared_ptr<void>(static_cast<void*>(this), [id](void* p) {
    auto* ctx = static_cast<ServerContext*>(p);
    {
      std::lock_guard<std::mutex> lock(ctx->mutex_);
      ctx->in_flight_.erase(id);
    }
    ctx->metrics.in_flight().add(-1);
    --ctx->open_generations;
  });
}

void ServerContext::cancel_all() {
  std::vector<RequestId> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ids.assign(in_flight_.begin(), in_flight_.end());
  }
  for (RequestId id : ids) engine.cancel(id);
}

ApiError refusal_error(const SubmitResult& r) {
  switch (r.status) {
    case SubmitStatus::kOverloaded: {
      // Whole seconds, rounded up: Retry-After has no finer unit.
      const int seconds = static_cast<int>(std::max<int64_t>(1, (r.retry_after.count() + 999) / 1000));
      return ApiError(429, "rate_limit_error", "queue_full", "", "the server is overloaded: " + r.message)
          .with_retry_after(seconds);
    }
    case SubmitStatus::kDeadlineUnmeetable:
      return ApiError(504, "deadline_exceeded", "deadline_exceeded", "deadline_ms", r.message);
    case SubmitStatus::kInvalid:
    case SubmitStatus::kAccepted:
      break;
  }
  return invalid("", r.message);
}

ApiError ended_error(const Completion& c, bool draining) {
  switch (c.finish_reason) {
    case FinishReason::kDeadlineExceeded:
      return ApiError(504, "deadline_exceeded", "deadline_exceeded", "deadline_ms",
                      "the deadline passed after " + std::to_string(c.completion_tokens) + " generated tokens");
    case FinishReason::kCancelled:
      if (draining) return ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
      return ApiError(499, "cancelled", "cancelled", "", "the request was cancelled");
    default:
      break;
  }
  return ApiError(500, "server_error", "internal_error", "", "generation failed: " + c.error);
}

}  // namespace lightboat::server
