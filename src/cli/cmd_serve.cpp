// lightboat serve: the OpenAI-compatible HTTP/WebSocket server over one model (server/server.h).
// Prints one line "lightboat serve: listening on http://HOST:PORT (model ID)" on stderr once it
// accepts connections (with --port 0 the kernel picks the port: scripts read it there).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_path.h"
#include "lightboat/engine.h"
#include "server/server.h"

namespace lightboat::cli {
namespace {

struct ServeOptions {
  ModelOptions model;
  std::string alias;
  server::ServerConfig server;
  int port = 8080;
  int idle_timeout_s = 60;
  int64_t shutdown_grace_ms = 10000;
  int64_t max_queue = 64;
  int64_t max_running = 16;
  int64_t kv_cache_mib = 0;
  bool no_warmup = false;
};

int serve(ServeOptions& o) {
  resolve_model(o.model);
  if (const char* env = std::getenv("LIGHTBOAT_API_KEY"); env && *env) o.server.api_keys.emplace_back(env);
  server::ServerConfig& c = o.server;
  c.port = static_cast<uint16_t>(o.port);
  c.idle_timeout = std::chrono::seconds(o.idle_timeout_s);
  c.shutdown_grace = std::chrono::milliseconds(o.shutdown_grace_ms);
  c.warm_up = !o.no_warmup;
  c.model_id = o.alias;
  if (c.model_id.empty() && o.model.builtin) c.model_id = kDefaultModelName;  // whatever file it came from
  if (c.model_id.empty()) {
    c.model_id = std::filesystem::path(o.model.path).filename().string();
    if (c.model_id.size() > 5 && c.model_id.ends_with(".gguf")) c.model_id.resize(c.model_id.size() - 5);
  }
  // Refuse an unsafe bind before spending time on the model.
  check(server::is_loopback(c.host) || !c.api_keys.empty() || c.insecure_no_auth, ErrorKind::kInvalidArgument,
        "serve: refusing to listen on the non-loopback address " + c.host +
            " without --api-key (or LIGHTBOAT_API_KEY); pass --insecure-no-auth to do it anyway");

  EngineOptions eo{.model_path = o.model.path,
                   .use_mmap = !o.model.no_mmap,
                   .threads = o.model.n_threads,
                   .n_ctx = o.model.n_ctx,
                   .kv_cache_bytes = o.kv_cache_mib * (int64_t{1} << 20),
                   .max_running = o.max_running,
                   .max_queue = o.max_queue};
  eo.step_tokens = std::max<int64_t>(eo.step_tokens, o.max_running + 1);
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine = Engine::open(eo);
  auto srv = std::make_unique<server::Server>(*engine, c);
  std::fprintf(stderr, "lightboat serve: model %s (%s, context %lld) loaded in %.0f ms\n", c.model_id.c_str(),
               engine->quantization().c_str(), static_cast<long long>(engine->n_ctx()), ms_since(t0));
  std::fprintf(stderr, "lightboat serve: listening on http://%s:%u (model %s)%s\n", c.host.c_str(), srv->port(),
               c.model_id.c_str(), c.api_keys.empty() ? "" : " with API key auth");
  const int rc = srv->run();
  engine.reset();  // first: see server/server.h
  srv.reset();
  std::fprintf(stderr, "lightboat serve: stopped\n");
  return rc;
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP + WebSocket server with metrics");
  add_model_flags(*cmd, o->model);
  cmd->add_option("--alias", o->alias, "Model id in /v1/models and responses (default: the file name)");
  cmd->add_option("--host", o->server.host, "Address to listen on (non-loopback needs --api-key)");
  cmd->add_option("--port", o->port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o->server.api_keys, "Accepted Bearer key (repeatable; also env LIGHTBOAT_API_KEY)");
  cmd->add_flag("--insecure-no-auth", o->server.insecure_no_auth, "Allow a non-loopback address without a key");
  cmd->add_option("--cors-origin", o->server.cors_origin, "Send CORS headers for this origin (or *); default off");
  cmd->add_option("--io-threads", o->server.io_threads, "Network I/O threads")->check(CLI::Range(1, 64));
  cmd->add_option("--max-connections", o->server.max_connections, "Open connections at most")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-body-bytes", o->server.max_body_bytes, "Largest request body / WebSocket message")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 30));
  cmd->add_option("--idle-timeout", o->idle_timeout_s, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--max-prompt-bytes", o->server.limits.max_prompt_bytes, "Largest prompt (all messages), bytes")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--max-tokens-limit", o->server.limits.max_tokens,
                  "Largest max_tokens a request may ask for (also the default)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--max-queue", o->max_queue, "Queued requests per priority class before 429")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--max-running", o->max_running, "Sequences decoded together")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--kv-cache-mib", o->kv_cache_mib, "KV cache pool in MiB (0 = room for 4 full sequences)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--shutdown-grace-ms", o->shutdown_grace_ms,
                  "On SIGTERM/SIGINT, how long streams in flight may finish before they are cancelled")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  cmd->add_flag("--no-warmup", o->no_warmup, "Report ready without the warm-up generation");
  return [o] { return serve(*o); };
}

}  // namespace lightboat::cli
