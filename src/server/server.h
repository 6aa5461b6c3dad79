// `lightboat serve`: an OpenAI-compatible HTTP/1.1 + WebSocket server over a ModelManager
// (several models under one memory budget, loaded on first use, hot-updated).
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (JSON, or SSE with "stream": true),
// GET /v1/models[/{id}] (every model known: version, state, memory), POST /v1/models/{id}/reload
// (hot update), GET /health (live; no auth), GET /ready (the default model loaded and warm),
// GET /metrics (Prometheus text), and the WebSocket /v1/ws (generate / cancel / reprioritize in;
// token / done / error out; several generations in flight per connection).
//
// Models: a request's "model" (absent: config.model_id, the default) is a ModelManager name; the
// request holds a lease on that model's current version until its response is completely
// written, so eviction and hot updates never pull a model from under it.
//
// Threads: `io_threads` run Asio's event loop; every connection is a strand. Each engine runs
// its model on its own thread and calls the request's sink there; the sink only posts the data
// to the connection's strand, so no model code runs on an I/O thread and no I/O on an engine's.
// A model's first load runs on the I/O thread of the request that needs it (see README).
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

#include <functional>

#include "lightboat/engine.h"
#include "lightboat/model_manager.h"
#include "server/request.h"

namespace lightboat::server {

// A model GET /v1/models lists even when it is not loaded.
struct CatalogEntry {
  std::string name;
  std::string version;  // what it would load now ("" = unknown)
};

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
  std::string model_id;              // the default model's manager name (requests without "model")
  std::vector<std::string> preload;  // manager names loaded at start, in order, in the background
  // The names GET /v1/models lists beside those the manager knows (the -m ids, the store's
  // tags); may be empty.
  std::function<std::vector<CatalogEntry>()> catalog;
  // A request's "model" (not empty, no '/') to its manager name ("foo" -> "foo:latest"); may be empty.
  std::function<std::string(const std::string&)> canonical;
  int64_t memory_budget_bytes = 0;  // as given to the manager: reported in /metrics
  // More metric families in the Prometheus text format, appended to GET /metrics (the model
  // store's pull counters); may be empty.
  std::function<std::string()> extra_metrics;
  RequestLimits limits;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

// Checks an Authorization header value against the keys ("Bearer KEY"); constant-time per key.
bool authorized(const std::string& authorization, const std::vector<std::string>& keys);

// Destroy the ModelManager before the Server (after run() returned): the versions no request
// holds stop then; generations an engine still holds end when the server's queued handlers (and
// the leases they keep) go with its event loop, while the server's state still exists.
class Server {
 public:
  // Validates the config and binds the listening socket. Throws Error(kInvalidArgument) for a
  // non-loopback host without api_keys (unless insecure_no_auth), Error(kIo) when binding fails.
  Server(ModelManager& models, ServerConfig config);
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
