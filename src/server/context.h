// State shared by the listener and every connection of one server, and the sink that carries a
// generation's output from the engine thread to its connection. Internal to server/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "lightboat/engine.h"
#include "server/api_error.h"
#include "server/server.h"
#include "server/server_metrics.h"

namespace lightboat::server {

// Closed by the server before its event loop goes away. A sink that outlives the server (the
// engine ends requests after the server stopped) then drops its events instead of posting them
// to a dead loop or touching dead metrics.
struct PostGate {
  std::mutex mutex;
  bool open = true;
};

struct ServerContext {
  ServerContext(Engine& e, ServerConfig c);

  Engine& engine;
  const ServerConfig config;
  ServerMetrics metrics;
  std::vector<std::string> model_ids;  // what "model" may say: config.model_id, the model's own name
  std::shared_ptr<PostGate> gate = std::make_shared<PostGate>();
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<int> connections{0};
  std::atomic<int> open_generations{0};  // accepted, response not yet completely written

  // A connection's slot: counted while any holder keeps it (HTTP, then WebSocket after upgrade).
  std::shared_ptr<void> connection_ticket();
  // A generation's slot in open_generations and the in-flight gauge, released with the last holder.
  std::shared_ptr<void> generation_ticket(RequestId id);
  // Cancels every generation still in the engine (shutdown after the grace period).
  void cancel_all();

 private:
  std::mutex mutex_;
  std::unordered_set<RequestId> in_flight_;  // tickets alive and request id known
};

// The engine-side half of a generation: on_text/on_done run on the engine thread, record the
// timings, and post the data to the connection's strand, where the handlers run.
class ForwardingSink final : public TokenSink {
 public:
  using Post = std::function<void(std::function<void()>)>;
  ForwardingSink(ServerContext& ctx, Priority priority, Post post, std::function<void(std::string)> on_text,
                 std::function<void(Completion)> on_done)
      : ctx_(ctx),
        gate_(ctx.gate),
        priority_(priority),
        post_(std::move(post)),
        text_(std::move(on_text)),
        done_(std::move(on_done)) {}

  // Streams that asked for logprobs: each token's entry, posted ahead of the text it belongs to.
  void set_on_logprob(std::function<void(TokenLogprob)> f) { logprob_ = std::move(f); }

  void on_logprob(const TokenLogprob& lp) override {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    if (!gate_->open || !logprob_) return;
    post_([f = logprob_, lp] { f(lp); });
  }

  void on_text(const std::string& text, int32_t) override {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    if (!gate_->open || !text_) return;
    const auto now = std::chrono::steady_clock::now();
    if (last_) ctx_.metrics.inter_token(std::chrono::duration<double>(now - *last_).count());
    last_ = now;
    post_([f = text_, text] { f(text); });
  }

  // The callbacks (and the connection they hold) leave the sink here: the engine may keep the
  // sink itself a little longer, but no longer the connection or its strand.
  void on_done(const Completion& c) override {
    std::lock_guard<std::mutex> lock(gate_->mutex);
    std::function<void(Completion)> done = std::move(done_);
    Post post = std::move(post_);
    text_ = nullptr;
    logprob_ = nullptr;
    if (!gate_->open) return;
    ctx_.metrics.completed(priority_, c);
    if (c.finish_reason == FinishReason::kError)
      std::fprintf(stderr, "lightboat serve: generation failed: %s\n", c.error.c_str());
    post([f = std::move(done), c] { f(c); });
  }

 private:
  ServerContext& ctx_;  // valid while the gate is open
  std::shared_ptr<PostGate> gate_;
  Priority priority_;
  Post post_;
  std::function<void(std::string)> text_;
  std::function<void(TokenLogprob)> logprob_;
  std::function<void(Completion)> done_;
  std::optional<std::chrono::steady_clock::time_point> last_;
};

// The ApiError for a refused submission: 429 + Retry-After, 504 deadline_exceeded, 400 invalid.
ApiError refusal_error(const SubmitResult& r);

// The error a generation that did not finish normally reports (stream event or status).
ApiError ended_error(const Completion& c, bool draining);

}  // namespace lightboat::server
