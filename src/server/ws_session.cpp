// The WebSocket endpoint /v1/ws: JSON text messages.
//   in:  {"type":"generate","id":ID, <chat completion fields: messages, max_tokens, priority …>}
//        {"type":"cancel","id":ID}   {"type":"reprioritize","id":ID,"priority":"high"}
//        {"type":"ping"}
//   out: {"type":"token","id":ID,"text":…}
//        {"type":"done","id":ID,"finish_reason":"stop"|"length"|"cancelled","usage":{…}}
//        {"type":"error","id":ID|null,"code":…,"message":…}   {"type":"pong"}
// ID is any JSON string or number the client picks; several generations may be in flight. A
// generation ends with exactly one done or error. WebSocket ping frames are answered by Beast, and
// the server pings an idle connection itself (Beast's suggested server timeouts).
#include <deque>
#include <map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "server/openai_format.h"
#include "server/request.h"
#include "server/sessions.h"

namespace lightboat::server {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using nlohmann::json;

// Bytes of outgoing messages a slow reader may leave queued before the connection is dropped.
constexpr size_t kMaxQueuedBytes = 16u << 20;

struct WsGeneration {
  json client_id;
  RequestId id = 0;
  Engine* engine = nullptr;      // the leased version's (valid while the ticket lives)
  std::shared_ptr<void> ticket;  // the server's slot and the model lease
};

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, ServerContext& ctx, std::shared_ptr<void> ticket)
      : ws_(std::move(socket)), ctx_(ctx), ticket_(std::move(ticket)) {}

  void start(http::request<http::string_body> upgrade) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(static_cast<uint64_t>(ctx_.config.max_body_bytes));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "lightboat"); }));
    auto req = std::make_shared<http::request<http::string_body>>(std::move(upgrade));
    ws_.async_accept(*req, [self = shared_from_this(), req](beast::error_code ec) {
      if (ec) return;
      self->read();
    });
  }

 private:
  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) return shut();  // closed, timed out, or a protocol error: nothing left to answer
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    json id = nullptr;
    try {
      json msg = parse_body(text, ctx_.config.limits);
      if (msg.contains("id")) id = msg["id"];
      handle(msg, id);
    } catch (const ApiError& e) {
      send_error(id, e.code(), e.what());
    } catch (const std::exception& e) {
      send_error(id, "internal_error", e.what());
    }
    if (!closing_) read();
  }

  void handle(json& msg, const json& id) {
    const auto type = msg.find("type");
    if (type == msg.end() || !type->is_string())
      throw invalid("type", "a message needs a string 'type'", "invalid_type");
    const std::string t = type->get<std::string>();
    if (t == "ping") return send({{"type", "pong"}});
    if (!id.is_string() && !id.is_number()) throw invalid("id", "'" + t + "' needs an 'id' (a string or a number)");
    const std::string key = id.dump();
    if (t == "generate") return generate(msg, id, key);
    const auto it = live_.find(key);
    if (t == "cancel") {
      if (it == live_.end()) throw invalid("id", "no generation " + key + " is in flight", "unknown_id");
      if (!it->second) {  // its model is still loading: it never starts
        live_.erase(it);
        return send(
            {{"type", "done"}, {"id", id}, {"finish_reason", "cancelled"}, {"usage", usage_json(Completion{})}});
      }
      it->second->engine->cancel(it->second->id);  // its done (cancelled) follows
      return;
    }
    if (t == "reprioritize") {
      if (it == live_.end()) throw invalid("id", "no generation " + key + " is in flight", "unknown_id");
      const auto p = msg.find("priority");
      const std::optional<Priority> pr =
          p != msg.end() && p->is_string() ? parse_priority(p->get<std::string>()) : std::nullopt;
      if (!pr) throw invalid("priority", "'priority' must be \"high\", \"normal\" or \"low\"");
      if (!it->second) throw invalid("id", "generation " + key + " waits for its model to load", "not_started");
      it->second->engine->reprioritize(it->second->id, *pr);
      return;
    }
    throw invalid("type", "unknown message type '" + t + "' (generate, cancel, reprioritize, ping)");
  }

  void generate(json& msg, const json& id, const std::string& key) {
    if (live_.count(key)) throw invalid("id", "generation " + key + " is already in flight", "duplicate_id");
    if (ctx_.draining) throw ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
    msg.erase("type");
    msg.erase("id");
    msg.erase("stream");  // a WebSocket generation always streams
    ParsedRequest parsed;
    try {
      parsed = parse_generate(msg, Endpoint::kChatCompletions, ctx_.config.limits, {});
      // The token messages have no place for them yet: refused rather than silently dropped.
      if (parsed.logprobs) throw unsupported("logprobs", "logprobs are not supported on the WebSocket");
    } catch (const ApiError&) {
      ctx_.metrics.invalid();
      throw;
    }
    // The id is taken while the model loads (off the I/O thread): a second generate with it is
    // a duplicate, a cancel of it waits for the load.
    live_.emplace(key, nullptr);
    auto self = shared_from_this();
    auto request = std::make_shared<ParsedRequest>(std::move(parsed));
    try {
      ctx_.with_model(
          request->model, request->keep_alive,
          [ex = ws_.get_executor(), gate = ctx_.gate](std::function<void()> f) {
            std::lock_guard<std::mutex> lock(gate->mutex);
            if (gate->open) net::post(ex, std::move(f));
          },
          [self, request, id, key](ModelLease lease) { self->start_generate(std::move(*request), id, key, lease); },
          [self, id, key](const ApiError& e) {
            const auto it = self->live_.find(key);
            if (it != self->live_.end() && !it->second) self->live_.erase(it);
            self->send_error(id, e.code(), e.what());
          });
    } catch (...) {
      const auto it = live_.find(key);
      if (it != live_.end() && !it->second) live_.erase(it);
      throw;
    }
  }

  void start_generate(ParsedRequest parsed, const json& id, const std::string& key, const ModelLease& lease) {
    const auto slot = live_.find(key);
    if (slot == live_.end() || slot->second) return;  // cancelled while its model loaded
    live_.erase(slot);                                // taken again once accepted
    if (closing_) return;
    if (ctx_.draining) throw ApiError(503, "server_error", "server_shutdown", "", "the server is shutting down");
    auto gen = std::make_shared<WsGeneration>();
    gen->client_id = id;
    const Priority priority = parsed.generate.priority;
    auto self = shared_from_this();
    auto sink = std::make_shared<ForwardingSink>(
        ctx_, lease, priority, [ex = ws_.get_executor()](std::function<void()> f) { net::post(ex, std::move(f)); },
        [self, gen](std::string text) {
          self->send({{"type", "token"}, {"id", gen->client_id}, {"text", text}});
        },
        [self, gen, key](Completion c) { self->on_done(*gen, key, c); });
    const SubmitResult r = lease.engine().submit(std::move(parsed.generate), sink);
    if (r.status != SubmitStatus::kAccepted) {
      ctx_.metrics.refused(priority, r.status);
      const ApiError e = refusal_error(r);
      json err = {{"type", "error"}, {"id", id}, {"code", e.code()}, {"message", e.what()}};
      if (r.status == SubmitStatus::kOverloaded) err["retry_after_ms"] = r.retry_after.count();
      return send(err);
    }
    gen->id = r.id;
    gen->engine = &lease.engine();
    gen->ticket = ctx_.generation_ticket(lease, r.id);
    live_.emplace(key, gen);
  }

  void on_done(WsGeneration& gen, const std::string& key, const Completion& c) {
    live_.erase(key);
    gen.ticket.reset();
    const bool client_cancel = c.finish_reason == FinishReason::kCancelled && !ctx_.draining;
    if (c.finish_reason == FinishReason::kStop || c.finish_reason == FinishReason::kLength || client_cancel) {
      const char* reason = client_cancel ? "cancelled" : openai_finish_reason(c.finish_reason);
      return send({{"type", "done"}, {"id", gen.client_id}, {"finish_reason", reason}, {"usage", usage_json(c)}});
    }
    const ApiError e = ended_error(c, ctx_.draining);
    send_error(gen.client_id, e.code(), e.what());
  }

  void send_error(const json& id, const std::string& code, const std::string& message) {
    send({{"type", "error"}, {"id", id}, {"code", code}, {"message", message}});
  }

  void send(const json& msg) {
    if (closing_) return;
    out_.push_back(dump(msg));
    queued_bytes_ += out_.back().size();
    if (queued_bytes_ > kMaxQueuedBytes) return shut();  // the client does not read
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty() || closing_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->shut();
      self->queued_bytes_ -= self->out_.front().size();
      self->out_.pop_front();
      self->write_next();
    });
  }

  // The connection is over: every generation still in flight is cancelled (their done events
  // still arrive, and are dropped).
  void shut() {
    if (closing_) return;
    closing_ = true;
    out_.clear();
    for (auto& [key, gen] : live_) {
      if (gen) gen->engine->cancel(gen->id);
    }
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  websocket::stream<beast::tcp_stream> ws_;
  ServerContext& ctx_;
  std::shared_ptr<void> ticket_;
  beast::flat_buffer in_;
  std::map<std::string, std::shared_ptr<WsGeneration>> live_;  // by the client's id, as JSON text
  std::deque<std::string> out_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closing_ = false;
};

}  // namespace

void start_ws_session(tcp::socket socket, http::request<http::string_body> upgrade, ServerContext& ctx,
                      std::shared_ptr<void> ticket) {
  auto session = std::make_shared<WsSession>(std::move(socket), ctx, std::move(ticket));
  session->start(std::move(upgrade));
}

}  // namespace lightboat::server
