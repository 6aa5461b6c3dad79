#include "server/context.h"

#include <algorithm>
#include <string_view>

#include "base/error.h"

namespace lightboat::server {

namespace {
thread_local bool t_io_thread = false;
}  // namespace

void mark_io_thread() {
  t_io_thread = true;
}

ServerContext::ServerContext(ModelManager& m, ServerConfig c) : models(m), config(std::move(c)) {}

std::string ServerContext::model_name(const std::string& field) const {
  if (field.empty()) return config.model_id;
  // Names only: a client must not make the server open a file of its choosing.
  if (field.find('/') != std::string::npos || field.find('\\') != std::string::npos || field.front() == '.') {
    throw ApiError(404, "invalid_request_error", "model_not_found", "model",
                   "the model '" + field +
                       "' does not exist: a model is named by an id of GET /v1/models or a "
                       "store name NAME[:TAG], never a path");
  }
  return config.canonical ? config.canonical(field) : field;
}

ModelLease ServerContext::acquire(const std::string& field) {
  const std::string name = model_name(field);
  try {
    ModelLease lease = models.acquire(name);
    if (name == config.model_id) ready = true;  // a default model that failed at start, loaded now
    return lease;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) {
      throw ApiError(404, "invalid_request_error", "model_not_found", "model",
                     "the model '" + name + "' does not exist; GET /v1/models lists the models served");
    }
    ApiError unavailable(503, "server_error", "model_unavailable", "model",
                         "the model '" + name + "' cannot be loaded: " + e.what());
    // The models holding the budget are all busy: room comes back when their requests end.
    if (std::string_view(e.what()).find("memory budget") != std::string_view::npos) {
      unavailable.with_retry_after(1);
    }
    throw unavailable;
  }
}

void ServerContext::with_model(const std::string& field, std::optional<std::chrono::milliseconds> keep_alive,
                               const Post& post, std::function<void(ModelLease)> then,
                               std::function<void(const ApiError&)> fail) {
  const std::string name = model_name(field);
  // Set while the request's lease is held: a keep_alive of 0 unloads once this request ended.
  auto keep = [this, keep_alive](const ModelLease& lease) {
    if (keep_alive) models.set_keep_alive(lease.name(), *keep_alive);
  };
  if (ModelLease lease = models.try_acquire(name)) {
    keep(lease);
    return then(std::move(lease));
  }
  on_loader([this, field, post, keep, then = std::move(then), fail = std::move(fail)] {
    std::function<void()> done;
    try {
      ModelLease lease = acquire(field);
      keep(lease);
      done = [then, fail, lease = std::move(lease)] {
        try {
          then(lease);
        } catch (const ApiError& e) {
          fail(e);
        } catch (const std::exception& e) {
          fail(ApiError(500, "server_error", "internal_error", "", e.what()));
        }
      };
    } catch (const ApiError& e) {
      done = [fail, e] { fail(e); };
    } catch (const std::exception& e) {
      done = [fail, e = ApiError(500, "server_error", "internal_error", "", e.what())] { fail(e); };
    }
    post(std::move(done));  // dropped (with its lease, here on the loader thread) once the server stopped
  });
}

void ServerContext::on_loader(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(loader_mutex_);
  if (loader_stop_) throw ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
  loads_.push_back(std::move(job));
  if (!loader_.joinable()) loader_ = std::thread([this] { load_loop(); });
  loader_cv_.notify_one();
}

void ServerContext::load_loop() {
  std::unique_lock<std::mutex> lock(loader_mutex_);
  while (true) {
    loader_cv_.wait(lock, [this] { return loader_stop_ || !loads_.empty(); });
    if (loader_stop_) return;
    std::vector<std::function<void()>> jobs;
    jobs.swap(loads_);
    lock.unlock();
    for (auto& job : jobs) job();
    jobs.clear();  // the sessions the jobs held go here, with the loop still alive
    lock.lock();
  }
}

void ServerContext::stop_loader() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(loader_mutex_);
    loader_stop_ = true;
    dropped.swap(loads_);
  }
  loader_cv_.notify_all();
  if (loader_.joinable()) loader_.join();
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

struct ServerContext::Ticket {
  ServerContext* ctx;
  ModelLease lease;
  RequestId id;
};

std::shared_ptr<void> ServerContext::generation_ticket(ModelLease lease, RequestId id) {
  ++open_generations;
  metrics.in_flight().add(1);
  auto* t = new Ticket{this, std::move(lease), id};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.insert(t);
  }
  return std::shared_ptr<void>(static_cast<void*>(t), [](void* p) {
    std::unique_ptr<Ticket> ticket(static_cast<Ticket*>(p));
    ServerContext* ctx = ticket->ctx;
    {
      std::lock_guard<std::mutex> lock(ctx->mutex_);
      ctx->in_flight_.erase(ticket.get());
    }
    ctx->metrics.in_flight().add(-1);
    --ctx->open_generations;
    if (t_io_thread) return;  // the lease ends here
    {
      std::lock_guard<std::mutex> lock(ctx->lease_bin->mutex);
      ctx->lease_bin->leases.push_back(std::move(ticket->lease));
    }
    if (ctx->empty_bin_soon) ctx->empty_bin_soon();
  });
}

void ServerContext::empty_lease_bin() {
  std::vector<ModelLease> dead;
  {
    std::lock_guard<std::mutex> lock(lease_bin->mutex);
    dead.swap(lease_bin->leases);
  }
}

void ServerContext::cancel_all() {
  std::vector<std::pair<ModelLease, RequestId>> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Ticket* t : in_flight_) ids.emplace_back(t->lease, t->id);
  }
  for (auto& [lease, id] : ids) lease.engine().cancel(id);
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
