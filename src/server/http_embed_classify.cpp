// POST /v1/embeddings and POST /v1/classify on an HTTP connection (server/http_session.h): the
// body is parsed, the model leased (loaded off the I/O thread if needed), the engine's
// outcome answered as one JSON response; a client that goes away cancels its requests.
#include <mutex>

#include "server/http_session.h"

namespace lightboat::server {

using nlohmann::json;

void HttpSession::track(const std::shared_ptr<Generation>& gen, const ModelLease& lease, RequestId id) {
  gen->id = id;
  gen->keep_alive = keep_alive_;
  gen->engine = &lease.engine();
  gen->model = lease.name();
  gen->quantization = lease.engine().quantization();
  gen->ticket = ctx_.generation_ticket(lease, id);
  current_ = gen;
  watch_disconnect(gen);
}

void HttpSession::answer(const std::shared_ptr<Generation>& gen, Priority priority, const Completion& c,
                         const json& body) {
  gen->finished = true;
  ctx_.metrics.completed(priority, c, gen->model, gen->quantization);
  current_.reset();
  if (dead_) {
    gen->ticket.reset();
    return close();
  }
  if (c.finish_reason == FinishReason::kStop) return send_json(200, body, std::move(gen->ticket));
  send_error(ended_error(c, ctx_.draining), std::move(gen->ticket));
}

Completion HttpSession::summary(FinishReason reason, const std::string& error, int64_t prompt_tokens,
                                std::chrono::steady_clock::time_point started) {
  Completion c;
  c.finish_reason = reason;
  c.error = error;
  c.prompt_tokens = prompt_tokens;
  c.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return c;
}

void HttpSession::embeddings() {
  refuse_when_draining();
  auto body = std::make_shared<EmbeddingsBody>(
      parse_counted([&](const json& j) { return parse_embeddings(j, ctx_.config.limits, {}); }));
  with_model(body->model, body->keep_alive,
             [body](HttpSession& s, const ModelLease& lease) { s.start_embeddings(*body, lease); });
}

void HttpSession::start_embeddings(const EmbeddingsBody& body, const ModelLease& lease) {
  refuse_when_draining();
  auto gen = std::make_shared<Generation>();
  const std::string model = body.model.empty() ? ctx_.config.model_id : body.model;
  const Priority priority = body.request.priority;
  const auto started = std::chrono::steady_clock::now();
  const SubmitResult r =
      lease.engine().submit_embed(body.request, [self = shared_from_this(), gen, post = poster(), model,
                                                 base64 = body.base64, priority, started](EmbedOutcome o) {
        post([self, gen, o = std::move(o), model, base64, priority, started] {
          int64_t tokens = 0;
          for (int64_t t : o.prompt_tokens) tokens += t;
          self->answer(gen, priority, summary(o.finish_reason, o.error, tokens, started),
                       o.finish_reason == FinishReason::kStop ? embeddings_json(model, o, base64) : json());
        });
      });
  if (r.status != SubmitStatus::kAccepted) {
    ctx_.metrics.refused(priority, r.status);
    throw refusal_error(r);
  }
  track(gen, lease, r.id);
}

void HttpSession::classify() {
  refuse_when_draining();
  auto body = std::make_shared<ClassifyBody>(
      parse_counted([&](const json& j) { return parse_classify(j, ctx_.config.limits, {}); }));
  with_model(body->model, body->keep_alive,
             [body](HttpSession& s, const ModelLease& lease) { s.start_classify(*body, lease); });
}

void HttpSession::start_classify(const ClassifyBody& body, const ModelLease& lease) {
  refuse_when_draining();
  struct Pending {
    std::mutex mutex;
    std::vector<ClassifyOutcome> outcomes;
    size_t left = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->outcomes.resize(body.requests.size());
  pending->left = body.requests.size();
  auto gen = std::make_shared<Generation>();
  const std::string model = body.model.empty() ? ctx_.config.model_id : body.model;
  const Priority priority = body.requests.front().priority;
  const auto started = std::chrono::steady_clock::now();
  std::vector<RequestId> ids;
  for (size_t i = 0; i < body.requests.size(); ++i) {
    const SubmitResult r = lease.engine().submit_classify(
        body.requests[i],
        [self = shared_from_this(), gen, post = poster(), pending, i, model, priority, started](ClassifyOutcome o) {
          std::vector<ClassifyOutcome> all;
          {
            std::lock_guard<std::mutex> lock(pending->mutex);
            pending->outcomes[i] = std::move(o);
            if (--pending->left > 0) return;
            all = std::move(pending->outcomes);
          }
          post([self, gen, all = std::move(all), model, priority, started] {
            int64_t tokens = 0;
            const ClassifyOutcome* failed = nullptr;
            for (const ClassifyOutcome& c : all) {
              tokens += c.prompt_tokens;
              if (c.finish_reason != FinishReason::kStop && !failed) failed = &c;
            }
            self->answer(gen, priority,
                         summary(failed ? failed->finish_reason : FinishReason::kStop, failed ? failed->error : "",
                                 tokens, started),
                         failed ? json() : classify_json(model, all));
          });
        });
    if (r.status != SubmitStatus::kAccepted) {
      for (RequestId id : ids) lease.engine().cancel(id);  // their outcomes arrive, then are dropped
      {
        std::lock_guard<std::mutex> lock(pending->mutex);
        pending->left += 1u << 30;  // never reaches 0: nothing is answered from the callbacks
      }
      ctx_.metrics.refused(priority, r.status);
      throw refusal_error(r);
    }
    ids.push_back(r.id);
  }
  gen->more_ids.assign(ids.begin() + 1, ids.end());
  track(gen, lease, ids.front());
}

}  // namespace lightboat::server
