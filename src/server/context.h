// State shared by the listener and every connection of one server, and the sink that carries a
// generation's output from the engine thread to its connection. Internal to server/.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "lightboat/engine.h"
#include "lightboat/model_manager.h"
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

// Leases released off the I/O threads (a sink's callbacks dying on an engine thread) wait here
// until an I/O thread drops them: the last lease of a retired version destroys its Engine, which
// joins that engine's own loop thread, so it must never happen on an engine thread.
struct LeaseBin {
  std::mutex mutex;
  std::vector<ModelLease> leases;
};

struct ServerContext {
  ServerContext(ModelManager& m, ServerConfig c);
  ~ServerContext() { stop_loader(); }

  ModelManager& models;
  const ServerConfig config;
  ServerMetrics metrics;
  std::shared_ptr<PostGate> gate = std::make_shared<PostGate>();
  std::shared_ptr<LeaseBin> lease_bin = std::make_shared<LeaseBin>();
  std::function<void()> empty_bin_soon;  // posts an emptying of lease_bin onto the I/O loop
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<int> connections{0};
  std::atomic<int> open_generations{0};  // accepted, response not yet completely written

  // A connection's slot: counted while any holder keeps it (HTTP, then WebSocket after upgrade).
  std::shared_ptr<void> connection_ticket();
  // The manager name a request's "model" field stands for ("" = the default model). Throws the
  // 404 model_not_found for a name that cannot be a model (a path: anything with '/').
  std::string model_name(const std::string& field) const;
  // The model's current version, loaded first if needed: 404 for an unknown model, 503 for one
  // that fails to load or does not fit the memory budget. Blocks during a load.
  ModelLease acquire(const std::string& field);

  using Post = std::function<void(std::function<void()>)>;
  // Calls then(lease) with the model's current version: at once (on the caller's thread, its
  // exceptions to the caller) when it is loaded; otherwise the loader thread loads it and
  // `post`s then(lease) (or fail(error)) to the caller's strand, where an ApiError `then` throws
  // goes to `fail`. So a load of seconds never holds an I/O thread. model_name()'s 404 is thrown.
  // A request's `keep_alive` (when given) is set on the model once the lease is held, before
  // `then` (ModelManager::set_keep_alive).
  void with_model(const std::string& field, std::optional<std::chrono::milliseconds> keep_alive, const Post& post,
                  std::function<void(ModelLease)> then, std::function<void(const ApiError&)> fail);
  // Queues `job` for the loader thread (model loads and reloads run there, one at a time).
  void on_loader(std::function<void()> job);
  // Joins the loader thread; queued loads are dropped (before the event loop goes).
  void stop_loader();

  // A generation's slot in open_generations and the in-flight gauge, released with the last
  // holder; it holds `lease` (the version serving the request) until then. Released on an I/O
  // thread, or parked in lease_bin when the last holder dies elsewhere.
  std::shared_ptr<void> generation_ticket(ModelLease lease, RequestId id);
  // Drops the parked leases (I/O thread, or after the loop stopped).
  void empty_lease_bin();
  // Cancels every generation still in an engine (shutdown after the grace period).
  void cancel_all();

 private:
  struct Ticket;
  void load_loop();
  std::mutex loader_mutex_;
  std::condition_variable loader_cv_;
  std::vector<std::function<void()>> loads_;  // jobs for the loader thread
  bool loader_stop_ = false;
  std::thread loader_;  // started by the first load
  std::mutex mutex_;
  std::unordered_set<Ticket*> in_flight_;  // tickets alive: their engine and request id
};

// Marks the calling thread as one of the server's I/O threads (see LeaseBin).
void mark_io_thread();

// The engine-side half of a generation: on_text/on_done run on the engine thread, record the
// timings, and post the data to the connection's strand, where the handlers run.
class ForwardingSink final : public TokenSink {
 public:
  using Post = std::function<void(std::function<void()>)>;
  // `lease` names the model version for the metrics (the sink does not hold it: see LeaseBin).
  ForwardingSink(ServerContext& ctx, const ModelLease& lease, Priority priority, Post post,
                 std::function<void(std::string)> on_text, std::function<void(Completion)> on_done)
      : ctx_(ctx),
        gate_(ctx.gate),
        model_(lease.name()),
        quantization_(lease.engine().quantization()),
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
    ctx_.metrics.completed(priority_, c, model_, quantization_);
    if (c.finish_reason == FinishReason::kError)
      std::fprintf(stderr, "lightboat serve: generation failed: %s\n", c.error.c_str());
    post([f = std::move(done), c] { f(c); });
  }

 private:
  ServerContext& ctx_;  // valid while the gate is open
  std::shared_ptr<PostGate> gate_;
  std::string model_, quantization_;
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
