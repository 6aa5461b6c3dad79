// One HTTP/1.1 connection (server/http_session.h): reading, routing, completions (JSON or SSE),
// writing. The embeddings and classify handlers are in http_embed_classify.cpp.
#include <sys/socket.h>

#include <cerrno>
#include <deque>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "server/http_session.h"
#include "server/models_api.h"
#include "server/openai_format.h"
#include "server/request.h"
#include "server/sessions.h"

namespace lightboat::server {

namespace beast = boost::beast;
using nlohmann::json;
using Response = http::response<http::string_body>;

void HttpSession::read() {
  parser_.emplace();
  parser_->body_limit(static_cast<uint64_t>(ctx_.config.max_body_bytes));
  parser_->header_limit(16 * 1024);
  stream_.expires_after(ctx_.config.idle_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void HttpSession::on_header(beast::error_code ec) {
  if (ec) return on_read(ec);
  const auto expect = parser_->get().find(http::field::expect);
  if (!parser_->is_done() && expect != parser_->get().end() && beast::iequals(expect->value(), "100-continue")) {
    auto go = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    net::async_write(stream_, net::buffer(*go), [self = shared_from_this(), go](beast::error_code wec, size_t) {
      if (wec) return self->close();
      self->read_body();
    });
    return;
  }
  read_body();
}

void HttpSession::read_body() {
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void HttpSession::on_read(beast::error_code ec) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted) {
    return close();
  }
  if (ec == http::error::body_limit) {
    keep_alive_ = false;
    return send_error(ApiError(413, "invalid_request_error", "payload_too_large", "",
                               "the request body exceeds " + std::to_string(ctx_.config.max_body_bytes) + " bytes"));
  }
  if (ec) {
    if (ec.category() != http::make_error_code(http::error::bad_target).category()) return close();
    keep_alive_ = false;
    return send_error(
        ApiError(400, "invalid_request_error", "bad_http", "", "malformed HTTP request: " + ec.message()));
  }
  req_ = parser_->release();
  keep_alive_ = req_.keep_alive();
  if (beast::websocket::is_upgrade(req_)) return upgrade();
  try {
    route();
  } catch (const ApiError& e) {
    send_error(e);
  } catch (const std::exception& e) {
    send_error(ApiError(500, "server_error", "internal_error", "", e.what()));
  }
}

std::string HttpSession::path() const {
  const std::string_view target(req_.target().data(), req_.target().size());
  return std::string(target.substr(0, target.find('?')));
}

void HttpSession::require(http::verb method, const char* allow) {
  if (req_.method() == method) return;
  allow_ = allow;
  throw ApiError(405, "invalid_request_error", "method_not_allowed", "",
                 std::string(req_.method_string()) + " is not allowed on " + path() + "; use " + allow);
}

void HttpSession::check_auth() {
  if (ctx_.config.api_keys.empty()) return;
  const auto it = req_.find(http::field::authorization);
  const std::string header = it == req_.end() ? std::string() : std::string(it->value());
  if (!authorized(header, ctx_.config.api_keys)) {
    throw ApiError(401, "authentication_error", "invalid_api_key", "",
                   "missing or invalid API key: send the header Authorization: Bearer <key>");
  }
}

void HttpSession::route() {
  const std::string p = path();
  if (req_.method() == http::verb::options && !ctx_.config.cors_origin.empty()) {
    Response res{http::status::no_content, req_.version()};
    res.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.set("Access-Control-Max-Age", "600");
    return send(std::move(res));
  }
  if (p == "/health") {
    require(http::verb::get, "GET");
    return send_json(200, {{"status", "ok"}});
  }
  check_auth();
  if (p == "/ready") {
    require(http::verb::get, "GET");
    const bool ready = ctx_.ready && !ctx_.draining;
    return send_json(ready ? 200 : 503, {{"status", ready ? "ready" : ctx_.draining ? "draining" : "loading"}});
  }
  if (p == "/metrics") {
    require(http::verb::get, "GET");
    Response res{http::status::ok, req_.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = ctx_.metrics.scrape(ctx_.models.list(), ctx_.models.stats(), ctx_.config.memory_budget_bytes);
    if (ctx_.config.extra_metrics) res.body() += ctx_.config.extra_metrics();
    return send(std::move(res));
  }
  if (p == "/v1/models") {
    require(http::verb::get, "GET");
    return send_json(200, models_list(ctx_, started_));
  }
  if (p.rfind("/v1/models/", 0) == 0) {
    std::string id = p.substr(11);
    constexpr std::string_view kReload = "/reload";
    if (id.size() > kReload.size() && id.ends_with(kReload)) {
      require(http::verb::post, "POST");
      id.resize(id.size() - kReload.size());
      ctx_.model_name(id);  // a path-like id is refused here
      // The new version loads and warms on the loader thread; the answer comes back here.
      ctx_.on_loader([self = shared_from_this(), id, post = poster()] {
        std::function<void()> done;
        try {
          done = [self, body = reload_model(self->ctx_, id, self->started_)] { self->send_json(200, body); };
        } catch (const ApiError& e) {
          done = [self, e] { self->send_error(e); };
        } catch (const std::exception& e) {
          done = [self, e = ApiError(500, "server_error", "internal_error", "", e.what())] { self->send_error(e); };
        }
        post(std::move(done));
      });
      return;
    }
    require(http::verb::get, "GET");
    return send_json(200, model_info(ctx_, id, started_));
  }
  if (p == "/v1/chat/completions" || p == "/v1/completions") {
    require(http::verb::post, "POST");
    return generate(p == "/v1/chat/completions" ? Endpoint::kChatCompletions : Endpoint::kCompletions);
  }
  if (p == "/v1/embeddings") {
    require(http::verb::post, "POST");
    return embeddings();
  }
  if (p == "/v1/classify") {
    require(http::verb::post, "POST");
    return classify();
  }
  throw ApiError(404, "invalid_request_error", "not_found", "",
                 "no route for " + std::string(req_.method_string()) + " " + p +
                     " (served: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/classify, /v1/models, "
                     "/v1/ws, /health, /ready, /metrics)");
}

void HttpSession::refuse_when_draining() {
  if (!ctx_.draining) return;
  keep_alive_ = false;
  throw ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
}

std::function<void(std::function<void()>)> HttpSession::poster() {
  return [ex = stream_.get_executor(), gate = ctx_.gate](std::function<void()> f) {
    std::lock_guard<std::mutex> lock(gate->mutex);
    if (gate->open) net::post(ex, std::move(f));
  };
}

void HttpSession::generate(Endpoint endpoint) {
  refuse_when_draining();
  auto parsed = std::make_shared<ParsedRequest>(
      parse_counted([&](const json& j) { return parse_generate(j, endpoint, ctx_.config.limits, {}); }));
  with_model(parsed->model, parsed->keep_alive, [parsed, endpoint](HttpSession& s, const ModelLease& lease) {
    s.start_generate(endpoint, std::move(*parsed), lease);
  });
}

void HttpSession::start_generate(Endpoint endpoint, ParsedRequest parsed, const ModelLease& lease) {
  refuse_when_draining();
  auto gen = std::make_shared<Generation>();
  gen->meta = make_meta(endpoint, parsed.model.empty() ? ctx_.config.model_id : parsed.model);
  gen->meta.fingerprint = version_fingerprint(lease.version());
  gen->meta.logprobs = parsed.logprobs;
  gen->priority = parsed.generate.priority;
  gen->stream = parsed.stream;
  gen->include_usage = parsed.include_usage;
  gen->keep_alive = keep_alive_;
  auto self = shared_from_this();
  auto sink = std::make_shared<ForwardingSink>(
      ctx_, lease, gen->priority,
      [ex = stream_.get_executor()](std::function<void()> f) { net::post(ex, std::move(f)); },
      [self, gen](std::string text) { self->on_text(*gen, text); },
      [self, gen](Completion c) { self->on_done(gen, c); });
  if (gen->stream && parsed.logprobs) {
    sink->set_on_logprob([self, gen](TokenLogprob lp) { gen->pending.push_back(std::move(lp)); });
  }
  const SubmitResult r = lease.engine().submit(std::move(parsed.generate), sink);
  if (r.status != SubmitStatus::kAccepted) {
    ctx_.metrics.refused(gen->priority, r.status);
    throw refusal_error(r);
  }
  // The sink's posts run after this handler returns, so the id is known before any event.
  gen->id = r.id;
  gen->engine = &lease.engine();
  gen->ticket = ctx_.generation_ticket(lease, r.id);
  current_ = gen;
  if (gen->stream) {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n";
    head += std::string("Connection: ") + (keep_alive_ ? "keep-alive" : "close") + "\r\n";
    if (!ctx_.config.cors_origin.empty()) head += "Access-Control-Allow-Origin: " + ctx_.config.cors_origin + "\r\n";
    enqueue_raw(head + "\r\n");
  }
  watch_disconnect(gen);
}

void HttpSession::watch_disconnect(const std::shared_ptr<Generation>& gen) {
  stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), gen](beast::error_code ec) {
    if (ec || gen->finished || self->current_ != gen) return;
    char c;
    const ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_disconnect(gen);
    self->dead_ = true;
    gen->engine->cancel(gen->id);
    for (RequestId id : gen->more_ids) gen->engine->cancel(id);
  });
}

void HttpSession::on_text(Generation& gen, const std::string& text) {
  if (!gen.stream || dead_) return;
  enqueue_chunk(sse_event(chunk_json(gen.meta, text, gen.first, nullptr, &gen.pending, gen.offset)));
  flush_logprobs(gen);
  gen.first = false;
}

void HttpSession::flush_logprobs(Generation& gen) {
  for (const TokenLogprob& lp : gen.pending) gen.offset += static_cast<int64_t>(lp.token.size());
  gen.pending.clear();
}

void HttpSession::on_done(const std::shared_ptr<Generation>& gen, const Completion& c) {
  gen->finished = true;
  const bool ok = c.finish_reason == FinishReason::kStop || c.finish_reason == FinishReason::kLength;
  if (dead_) {  // nobody to answer
    gen->ticket.reset();
    current_.reset();
    return close();
  }
  if (!gen->stream) {
    current_.reset();
    if (ok) return send_json(200, completion_json(gen->meta, c), std::move(gen->ticket));
    return send_error(ended_error(c, ctx_.draining), std::move(gen->ticket));
  }
  if (ok) {
    if (gen->first) enqueue_chunk(sse_event(chunk_json(gen->meta, "", true, nullptr)));
    if (!gen->pending.empty()) {  // tokens whose text a stop string swallowed
      enqueue_chunk(sse_event(chunk_json(gen->meta, "", false, nullptr, &gen->pending, gen->offset)));
      flush_logprobs(*gen);
    }
    enqueue_chunk(sse_event(chunk_json(gen->meta, "", false, &c)));
    if (gen->include_usage) enqueue_chunk(sse_event(usage_chunk_json(gen->meta, c)));
    enqueue_chunk(kSseDone);
  } else {
    // The stream ends with the error as its last event (OpenAI clients raise it).
    enqueue_chunk(sse_event(ended_error(c, ctx_.draining).to_json()));
  }
  stream_done_ = true;       // write_next() calls after_stream() once all is written
  enqueue_raw("0\r\n\r\n");  // the last chunk
}

void HttpSession::enqueue_chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  enqueue_raw(size + data + "\r\n");
}

void HttpSession::enqueue_raw(std::string bytes) {
  out_.push_back(std::move(bytes));
  if (!writing_) write_next();
}

void HttpSession::write_next() {
  if (out_.empty()) {
    writing_ = false;
    if (stream_done_) after_stream();
    return;
  }
  writing_ = true;
  stream_.expires_after(ctx_.config.idle_timeout);  // a client that stops reading is dropped
  net::async_write(stream_, net::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) {
      self->writing_ = false;
      self->out_.clear();
      self->dead_ = true;
      if (self->current_ && !self->current_->finished) {
        self->current_->engine->cancel(self->current_->id);  // on_done follows and closes
      } else {
        if (self->current_) self->current_->ticket.reset();
        self->current_.reset();
        self->close();
      }
      return;
    }
    self->out_.pop_front();
    self->write_next();
  });
}

void HttpSession::after_stream() {
  stream_done_ = false;
  const bool keep = current_ && current_->keep_alive && !ctx_.draining;
  if (current_) current_->ticket.reset();
  current_.reset();
  if (keep) return read();
  close();
}

void HttpSession::add_common(Response& res) {
  if (!ctx_.config.cors_origin.empty()) {
    res.set(http::field::access_control_allow_origin, ctx_.config.cors_origin);
    res.set(http::field::vary, "Origin");
  }
  if (!allow_.empty()) res.set(http::field::allow, allow_);
  allow_.clear();
}

void HttpSession::send_json(int status, const json& body, std::shared_ptr<void> hold) {
  Response res{static_cast<http::status>(status), req_.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = dump(body);
  send(std::move(res), std::move(hold));
}

void HttpSession::send_error(const ApiError& e, std::shared_ptr<void> hold) {
  Response res{static_cast<http::status>(e.status()), req_.version() ? req_.version() : 11};
  res.set(http::field::content_type, "application/json");
  if (e.retry_after_s() > 0) res.set(http::field::retry_after, std::to_string(e.retry_after_s()));
  res.body() = dump(e.to_json());
  send(std::move(res), std::move(hold));
}

void HttpSession::send(Response&& r, std::shared_ptr<void> hold) {
  add_common(r);
  const bool keep = keep_alive_ && !ctx_.draining;
  r.keep_alive(keep);
  r.prepare_payload();
  auto res = std::make_shared<Response>(std::move(r));
  stream_.expires_after(ctx_.config.idle_timeout);
  http::async_write(stream_, *res, [self = shared_from_this(), res, hold, keep](beast::error_code ec, size_t) {
    if (ec || !keep) return self->close();
    self->read();
  });
}

void HttpSession::upgrade() {
  if (path() != "/v1/ws") {
    keep_alive_ = false;
    return send_error(ApiError(404, "invalid_request_error", "not_found", "", "WebSocket is served at /v1/ws only"));
  }
  try {
    check_auth();
    if (ctx_.draining) throw ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
  } catch (const ApiError& e) {
    keep_alive_ = false;
    return send_error(e);
  }
  stream_.expires_never();  // the WebSocket session sets its own timeouts
  start_ws_session(stream_.release_socket(), std::move(req_), ctx_, ticket_);
}

void HttpSession::close() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
}

void start_http_session(tcp::socket socket, ServerContext& ctx, std::shared_ptr<void> ticket) {
  std::make_shared<HttpSession>(std::move(socket), ctx, std::move(ticket))->start();
}

}  // namespace lightboat::server
