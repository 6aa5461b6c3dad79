// One HTTP/1.1 connection (internal to server/): read a request, route it, answer (JSON, or an
// SSE stream written as chunked transfer encoding), and read the next while the client keeps
// the connection alive. Every handler runs on the connection's strand; the engine's sinks post
// onto it. http_session.cpp holds the connection and the completions; http_embed_classify.cpp
// the /v1/embeddings and /v1/classify handlers.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include "server/context.h"
#include "server/embed_classify.h"
#include "server/openai_format.h"
#include "server/request.h"
#include "server/sessions.h"

namespace lightboat::server {

// One generation served on this connection.
struct Generation {
  ResponseMeta meta;
  RequestId id = 0;
  Priority priority = Priority::kNormal;
  bool stream = false;
  bool include_usage = false;
  bool keep_alive = true;
  bool first = true;                  // no chunk sent yet
  bool finished = false;              // on_done seen
  std::shared_ptr<void> ticket;       // the server's count of open generations, and the model lease
  Engine* engine = nullptr;           // the leased version's engine (valid while the ticket lives)
  std::string model, quantization;    // for the metrics of embeddings/classify
  std::vector<TokenLogprob> pending;  // streamed logprobs whose text has not been sent yet
  int64_t offset = 0;                 // bytes of token text already sent with logprobs
  std::vector<RequestId> more_ids;    // /v1/classify with several inputs: the other requests
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
  using json = nlohmann::json;
  using Response = http::response<http::string_body>;

 public:
  HttpSession(tcp::socket&& socket, ServerContext& ctx, std::shared_ptr<void> ticket)
      : stream_(std::move(socket)), ctx_(ctx), ticket_(std::move(ticket)) {}

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read();

  // curl sends "Expect: 100-continue" with larger bodies and waits for the go-ahead (a second,
  // otherwise). A body over the limit never gets it: the header already failed with body_limit.
  void on_header(boost::beast::error_code ec);
  void read_body();
  void on_read(boost::beast::error_code ec);
  std::string path() const;
  void require(http::verb method, const char* allow);
  void check_auth();
  void route();
  void refuse_when_draining();

  // Parses the body with `parse`, counting a 4xx in the metrics.
  template <typename Parse>
  auto parse_counted(Parse parse) {
    try {
      return parse(parse_body(req_.body(), ctx_.config.limits));
    } catch (const ApiError&) {
      ctx_.metrics.invalid();
      throw;
    }
  }

  // Posts `f` onto this connection's strand unless the server has gone (engine thread).
  std::function<void(std::function<void()>)> poster();

  // After an accepted embeddings/classify submission: the slot, and cancel on disconnect.
  void track(const std::shared_ptr<Generation>& gen, const ModelLease& lease, RequestId id);

  // Strand: a non-streamed result (embeddings, classify) is ready; `ok` answers `body`.
  void answer(const std::shared_ptr<Generation>& gen, Priority priority, const Completion& c, const json& body);
  static Completion summary(FinishReason reason, const std::string& error, int64_t prompt_tokens,
                            std::chrono::steady_clock::time_point started);

  // Runs `start(lease)` once the request's model is loaded (a load runs off the I/O thread).
  template <typename Start>
  void with_model(const std::string& model, std::optional<std::chrono::milliseconds> keep_alive, Start start) {
    auto self = shared_from_this();
    ctx_.with_model(
        model, keep_alive, poster(), [self, start](ModelLease lease) { start(*self, lease); },
        [self](const ApiError& e) { self->send_error(e); });
  }

  void embeddings();
  void start_embeddings(const EmbeddingsBody& body, const ModelLease& lease);

  // One engine classification per input; the answer waits for all of them.
  void classify();
  void start_classify(const ClassifyBody& body, const ModelLease& lease);
  void generate(Endpoint endpoint);
  void start_generate(Endpoint endpoint, ParsedRequest parsed, const ModelLease& lease);

  // The client going away while its request waits or generates cancels the request: a readable
  // socket that peeks 0 bytes is closed (data would be a pipelined request: then stop watching).
  void watch_disconnect(const std::shared_ptr<Generation>& gen);
  void on_text(Generation& gen, const std::string& text);
  static void flush_logprobs(Generation& gen);
  void on_done(const std::shared_ptr<Generation>& gen, const Completion& c);
  void enqueue_chunk(const std::string& data);
  void enqueue_raw(std::string bytes);
  void write_next();

  // The stream is fully written: the generation's slot is released, the connection goes on.
  void after_stream();
  void add_common(Response& res);
  void send_json(int status, const json& body, std::shared_ptr<void> hold = nullptr);
  void send_error(const ApiError& e, std::shared_ptr<void> hold = nullptr);

  // Writes one whole response; `hold` (a generation's slot) is released once it is written.
  void send(Response&& r, std::shared_ptr<void> hold = nullptr);
  void upgrade();
  void close();

  boost::beast::tcp_stream stream_;
  ServerContext& ctx_;
  std::shared_ptr<void> ticket_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> req_;
  bool keep_alive_ = true;
  std::string allow_;  // the Allow header of a 405
  int64_t started_ =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  // The generation this connection serves (HTTP/1.1: one at a time) and its stream's writes.
  std::shared_ptr<Generation> current_;
  std::deque<std::string> out_;  // raw bytes, front being written
  bool writing_ = false;
  bool stream_done_ = false;  // the last chunk is queued
  bool dead_ = false;         // the client is gone
};

}  // namespace lightboat::server
