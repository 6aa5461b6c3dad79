// lightboat serve: the OpenAI-compatible HTTP/WebSocket server (server/server.h) over a
// ModelManager: every -m model (the first is the default), and any model of the store by
// NAME[:TAG], under one memory budget, hot-updated when a tag is re-pointed.
// Prints one line "lightboat serve: listening on http://HOST:PORT (model ID)" on stderr once it
// accepts connections (with --port 0 the kernel picks the port: scripts read it there).
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_path.h"
#include "lightboat/engine.h"
#include "lightboat/model_manager.h"
#include "server/server.h"
#include "store/names.h"
#include "store/serve_state.h"
#include "store/store.h"

namespace lightboat::cli {
namespace {

struct ServeOptions {
  std::vector<std::string> models;  // -m, repeatable
  ModelOptions model;               // -c -t --no-mmap (model.path unused)
  std::string alias;
  server::ServerConfig server;
  int port = 8080;
  int idle_timeout_s = 60;
  int64_t shutdown_grace_ms = 10000;
  int64_t max_queue = 64;
  int64_t max_running = 16;
  int64_t kv_cache_mib = 0;
  bool no_warmup = false;
  std::string memory_budget = "0";
  std::string keep_alive = "-1";
  std::vector<std::string> model_keep_alive;  // --model-keep-alive NAME=DURATION, repeatable
  int refresh_s = 5;
};

// "6GiB", "512MiB", "1.5GB", "4096" (bytes). Throws kInvalidArgument naming `flag`.
int64_t parse_size(const std::string& text, const std::string& flag) {
  size_t end = 0;
  double v = -1;
  try {
    v = std::stod(text, &end);
  } catch (const std::exception&) {
  }
  std::string unit = text.substr(std::min(end, text.size()));
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::map<std::string, double> kUnits = {{"", 1},
                                                       {"b", 1},
                                                       {"k", 1e3},
                                                       {"kb", 1e3},
                                                       {"kib", 1024.0},
                                                       {"m", 1e6},
                                                       {"mb", 1e6},
                                                       {"mib", 1048576.0},
                                                       {"g", 1e9},
                                                       {"gb", 1e9},
                                                       {"gib", 1073741824.0},
                                                       {"t", 1e12},
                                                       {"tb", 1e12},
                                                       {"tib", 1099511627776.0}};
  const auto it = kUnits.find(unit);
  check(v >= 0 && it != kUnits.end(), ErrorKind::kInvalidArgument,
        flag + ": '" + text + "' is not a size (bytes, or a number with KB MB GB KiB MiB GiB ...)");
  return static_cast<int64_t>(v * it->second);
}

// A file's identity: replacing or rewriting it changes the version refresh() compares.
std::string file_version(const std::string& path) {
  struct stat st {};
  check(::stat(path.c_str(), &st) == 0, ErrorKind::kNotFound, "model file " + path + " is gone");
  return "file:" + std::to_string(st.st_size) + "-" +
         std::to_string(static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec) + "-" +
         std::to_string(st.st_ino);
}

// The id a -m model answers to: --alias for the first, the store name, or the file's stem.
std::string model_id(const std::string& given, const ResolvedModel& r) {
  if (r.builtin) return kDefaultModelName;
  if (!r.store_ref.empty()) return r.store_ref;
  std::string id = std::filesystem::path(r.path).filename().string();
  if (id.size() > 5 && id.ends_with(".gguf")) id.resize(id.size() - 5);
  return id.empty() ? given : id;
}

ModelSource from_store(const store::ModelRef& ref) {
  const store::Store st(store::Store::default_root());
  const store::Resolved r = st.resolve(ref);
  return {.path = r.path, .version = r.manifest.digest};
}

// --model-keep-alive NAME=DURATION entries by manager name: NAME is a -m model's id, the -m
// argument as given, or a store NAME[:TAG] (canonical "name:tag"). Throws naming the flag.
std::map<std::string, std::chrono::milliseconds> per_model_keep_alive(const std::vector<std::string>& given,
                                                                      const std::map<std::string, std::string>& fixed) {
  std::map<std::string, std::chrono::milliseconds> out;
  for (const std::string& entry : given) {
    const size_t eq = entry.rfind('=');
    check(eq != std::string::npos && eq > 0, ErrorKind::kInvalidArgument,
          "--model-keep-alive: '" + entry + "' is not NAME=DURATION (e.g. llama3.2:1b=10m)");
    std::string name = entry.substr(0, eq);
    if (!fixed.count(name)) {
      const auto by_arg = std::find_if(fixed.begin(), fixed.end(), [&](const auto& kv) { return kv.second == name; });
      if (by_arg != fixed.end()) {
        name = by_arg->first;
      } else {
        const std::optional<store::ModelRef> ref =
            name.find('/') == std::string::npos ? store::try_parse_ref(name) : std::nullopt;
        check(ref.has_value(), ErrorKind::kInvalidArgument,
              "--model-keep-alive: '" + name + "' is neither a -m model nor a store NAME[:TAG]");
        name = ref->str();
      }
    }
    out[name] = parse_keep_alive(entry.substr(eq + 1), "--model-keep-alive " + name);
  }
  return out;
}

// ModelManager::refresh(), except that a version whose update already failed is not loaded
// again every period (a file that loads and then fails its warm-up would cost a whole load each
// time): it is tried again when the tag or file changes once more, or by POST .../reload.
int refresh_changed(ModelManager& manager, const ModelResolver& resolve) {
  int switched = 0;
  for (const ModelStatus& s : manager.list()) {
    if (s.state != ModelState::kReady) continue;
    try {
      const std::string now = resolve(s.name).version;
      if (now == s.version || now == s.failed_version) continue;
      manager.reload(s.name);
      ++switched;
      std::fprintf(stderr, "lightboat serve: model %s hot-updated to %s\n", s.name.c_str(), now.c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lightboat serve: model %s: update failed, previous version kept: %s\n", s.name.c_str(),
                   e.what());
    }
  }
  return switched;
}

// The store's root when it exists ("" otherwise: serving a file must not create a store).
std::string existing_store_root() {
  try {
    std::string root = store::Store::default_root();
    std::error_code ec;
    return std::filesystem::is_directory(root, ec) ? root : std::string();
  } catch (const Error&) {
    return {};  // no $LIGHTBOAT_HOME, $XDG_DATA_HOME or $HOME: no store
  }
}

// ModelManagerOptions::on_change: what this server has loaded, for `lightboat models` (LOADED).
void record_loaded(const std::vector<ModelStatus>& models) {
  const std::string root = existing_store_root();
  if (root.empty()) return;
  std::vector<store::ServedModel> loaded;
  for (const ModelStatus& s : models) {
    if (s.state == ModelState::kReady) loaded.push_back({s.name, s.version});
  }
  try {
    store::write_serve_record(root, loaded);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lightboat serve: cannot record the loaded models in the store: %s\n", e.what());
  }
}

int serve(ServeOptions& o) {
  if (const char* env = std::getenv("LIGHTBOAT_API_KEY"); env && *env) o.server.api_keys.emplace_back(env);
  server::ServerConfig& c = o.server;
  c.port = static_cast<uint16_t>(o.port);
  c.idle_timeout = std::chrono::seconds(o.idle_timeout_s);
  c.shutdown_grace = std::chrono::milliseconds(o.shutdown_grace_ms);
  c.memory_budget_bytes = parse_size(o.memory_budget, "--memory-budget");
  const std::chrono::milliseconds keep_alive = parse_keep_alive(o.keep_alive, "--keep-alive");
  // Refuse an unsafe bind before spending time on the models.
  check(server::is_loopback(c.host) || !c.api_keys.empty() || c.insecure_no_auth, ErrorKind::kInvalidArgument,
        "serve: refusing to listen on the non-loopback address " + c.host +
            " without --api-key (or LIGHTBOAT_API_KEY); pass --insecure-no-auth to do it anyway");

  // The -m models by id: what was given, re-resolved at every load (a store name may be re-pointed).
  if (o.models.empty()) o.models.emplace_back();  // the built-in default model
  auto fixed = std::make_shared<std::map<std::string, std::string>>();
  for (size_t i = 0; i < o.models.size(); ++i) {
    const ResolvedModel r = resolve_model_path(o.models[i]);  // fails early for a missing model
    std::string id = i == 0 && !o.alias.empty() ? o.alias : model_id(o.models[i], r);
    check(!fixed->count(id), ErrorKind::kInvalidArgument,
          "serve: two -m models have the id '" + id + "' (use --alias for the first)");
    (*fixed)[id] = o.models[i];
    c.preload.push_back(id);
  }
  c.model_id = c.preload.front();
  const std::map<std::string, std::chrono::milliseconds> model_keep_alive =
      per_model_keep_alive(o.model_keep_alive, *fixed);

  ModelResolver resolver = [fixed](const std::string& name) -> ModelSource {
    if (const auto it = fixed->find(name); it != fixed->end()) {
      const ResolvedModel r = resolve_model_path(it->second);
      return {.path = r.path, .version = r.digest.empty() ? file_version(r.path) : r.digest};
    }
    const std::optional<store::ModelRef> ref =
        name.find('/') == std::string::npos ? store::try_parse_ref(name) : std::nullopt;
    if (!ref) throw Error(ErrorKind::kNotFound, "no model '" + name + "'");
    return from_store(*ref);
  };
  c.canonical = [fixed](const std::string& name) {
    if (fixed->count(name)) return name;
    const std::optional<store::ModelRef> ref = store::try_parse_ref(name);
    return ref ? ref->str() : name;
  };
  c.catalog = [] {
    // Every tag of the store (one small manifest read each; GET /v1/models is not a hot path).
    std::vector<server::CatalogEntry> out;
    std::string root;
    try {
      root = store::Store::default_root();
    } catch (const Error&) {
      return out;  // no $LIGHTBOAT_HOME, $XDG_DATA_HOME or $HOME: no store
    }
    for (const store::Manifest& m : store::Store(root).list()) out.push_back({m.ref.str(), m.digest});
    return out;
  };

  c.extra_metrics = [] {
    // The store's pull counters: pulls by any process (`lightboat pull`) into the store served.
    std::string root;
    try {
      root = store::Store::default_root();
    } catch (const Error&) {
      return std::string();
    }
    const store::PullStats p = store::Store(root).pull_stats();
    return "# HELP lightboat_store_pulls_total Pulls into the model store, by outcome.\n"
           "# TYPE lightboat_store_pulls_total counter\n"
           "lightboat_store_pulls_total{result=\"ok\"} " +
           std::to_string(p.pulls) +
           "\n"
           "lightboat_store_pulls_total{result=\"failed\"} " +
           std::to_string(p.failures) +
           "\n"
           "# HELP lightboat_store_pull_bytes_total Bytes received by pulls into the model store.\n"
           "# TYPE lightboat_store_pull_bytes_total counter\n"
           "lightboat_store_pull_bytes_total " +
           std::to_string(p.bytes) + "\n";
  };

  EngineOptions eo{.use_mmap = !o.model.no_mmap,
                   .huge_pages = !o.model.no_huge_pages,
                   .threads = o.model.n_threads,
                   .n_ctx = o.model.n_ctx,
                   .kv_cache_bytes = o.kv_cache_mib * (int64_t{1} << 20),
                   .max_running = o.max_running,
                   .max_queue = o.max_queue};
  eo.step_tokens = std::max<int64_t>(eo.step_tokens, o.max_running + 1);
  auto manager = std::make_unique<ModelManager>(ModelManagerOptions{.resolver = resolver,
                                                                    .engine = eo,
                                                                    .memory_budget_bytes = c.memory_budget_bytes,
                                                                    .keep_alive = keep_alive,
                                                                    .model_keep_alive = model_keep_alive,
                                                                    .warm_up = !o.no_warmup,
                                                                    .on_change = record_loaded});
  auto srv = std::make_unique<server::Server>(*manager, c);
  std::fprintf(stderr, "lightboat serve: listening on http://%s:%u (model %s)%s\n", c.host.c_str(), srv->port(),
               c.model_id.c_str(), c.api_keys.empty() ? "" : " with API key auth");

  // Re-pointed tags and replaced files: every refresh_s seconds, hot-update what changed.
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::thread refresher;
  if (o.refresh_s > 0) {
    refresher = std::thread([&] {
      std::unique_lock lk(mu);
      while (!cv.wait_for(lk, std::chrono::seconds(o.refresh_s), [&] { return stop; })) {
        lk.unlock();
        refresh_changed(*manager, resolver);
        lk.lock();
      }
    });
  }
  const int rc = srv->run();
  {
    std::lock_guard lk(mu);
    stop = true;
  }
  cv.notify_all();
  if (refresher.joinable()) refresher.join();
  manager.reset();  // first: see server/server.h
  srv.reset();
  if (const std::string root = existing_store_root(); !root.empty()) store::remove_serve_record(root);
  std::fprintf(stderr, "lightboat serve: stopped\n");
  return rc;
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP + WebSocket server with metrics");
  cmd->add_option("-m,--model", o->models,
                  "GGUF file or store NAME[:TAG] (repeatable: the first is the default model; each loads at start "
                  "in the background); default: the built-in model");
  cmd->add_option("-c,--ctx-size", o->model.n_ctx, "Context size in tokens (0 = the model's, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd->add_option("-t,--threads", o->model.n_threads, "Compute threads per model (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  cmd->add_flag("--no-mmap", o->model.no_mmap, "Read model files into memory instead of mapping them");
  cmd->add_flag("--no-huge-pages", o->model.no_huge_pages,
                "Keep mapped files' own pages (shared with other processes) instead of moving weights onto huge pages");
  cmd->add_option("--alias", o->alias, "Id of the first -m model in /v1/models and responses (default: the file name)");
  cmd->add_option("--memory-budget", o->memory_budget,
                  "Bytes all loaded models may hold (weights + KV pools), e.g. 6GiB, 512MiB; the least recently "
                  "used idle model is unloaded to make room (0 = no limit)");
  cmd->add_option("--keep-alive", o->keep_alive,
                  "Idle time before a model is unloaded, e.g. 5m, 30s, 1h30m, or seconds; 0 = as soon as idle, "
                  "negative = never (the default). A request's \"keep_alive\" field overrides it for its model");
  cmd->add_option("--model-keep-alive", o->model_keep_alive,
                  "NAME=DURATION: the keep-alive of one model (a -m id or argument, or a store NAME[:TAG]), "
                  "beating --keep-alive; repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--refresh-s", o->refresh_s,
                  "Every N seconds, hot-update loaded models whose store tag or file changed (0 = off)")
      ->check(CLI::Range(0, 86400));
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
  cmd->add_option("--max-queue", o->max_queue, "Queued requests per priority class before 429 (per model)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--max-running", o->max_running, "Sequences decoded together (per model)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--kv-cache-mib", o->kv_cache_mib, "KV cache pool per model in MiB (0 = room for 4 full sequences)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("--shutdown-grace-ms", o->shutdown_grace_ms,
                  "On SIGTERM/SIGINT, how long streams in flight may finish before they are cancelled")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}));
  cmd->add_flag("--no-warmup", o->no_warmup, "Let a new model (or version) take requests without a warm-up generation");
  return [o] { return serve(*o); };
}

}  // namespace lightboat::cli
