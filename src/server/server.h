// `lightboat serve`: an OpenAI-compatible HTTP/1.1 + WebSocket server over one Engine.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (JSON, or SSE with "stream": true),
// GET /v1/models[/{id}], GET /health (live; no auth), GET /ready (model loaded and warm),
// GET /metrics (Prometheus text), and the WebSocket /v1/ws (generate / cancel / reprioritize in;
// token / done / error out; several generations in flight per connection).
//
// Threads: `io_threads` run Asio's event loop; every connection is a strand. The engine runs the
// model on its own thread and calls the request's sink there; the sink only posts the data to
// the connection's strand, so no model code ever runs on an I/O thread and no I/O on the engine's.
//
// Lifecycle: run() serves until SIGTERM/SIGINT or stop(); then it stops accepting, lets the
// generations in flight finish for up to shutdown_grace, cancels the rest (their streams end with
// a final error event), and returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lightboat/engine.h"
#include "server/request.h"

namespace lightboat::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;               // 0 = any free port (see Server::port())
  std::vector<std::string> api_keys;  // Bearer tokens; empty = no auth
  bool insecure_no_auth = false;      // allow a non-loopback bind without api_keys
  std::string cors_origin;            // "" = no CORS headers; "*" or one origin
  int io_threads = 2;
  int64_t max_body_bytes = 1 << 20;       // request bodies and WebSocket messages
  std::chrono::seconds idle_timeout{60};  // a keep-alive connection with no request, or a stalled write
  int max_connections = 256;              // beyond it new connections get 503 and are closed
  std::chrono::milliseconds shutdown_grace{10000};
  std::string model_id;  // the id in /v1/models and responses
  RequestLimits limits;
  bool warm_up = true;  // run one short generation before /ready says ready
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

// Checks an Authorization header value against the keys ("Bearer KEY"); constant-time per key.
bool authorized(const std::string& authorization, const std::vector<std::string>& keys);

// Destroy the Engine before the Server (after run() returned): generations the engine still
// holds end then, and the connections their sinks keep are released while the server's event
// loop still exists.
class Server {
 public:
  // Validates the config and binds the listening socket. Throws Error(kInvalidArgument) for a
  // non-loopback host without api_keys (unless insecure_no_auth), Error(kIo) when binding fails.
  Server(Engine& engine, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;  // the bound port
  // Serves until a signal or stop(), then drains (see above). Returns the process exit code (0).
  int run();
  // Thread-safe; starts the same shutdown as SIGTERM.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lightboat::server
