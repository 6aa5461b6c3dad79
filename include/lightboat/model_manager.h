// Several models in one process: loaded on first use, kept under a byte memory budget (least
// recently used idle model evicted first), unloaded after an idle keep-alive (Ollama's rules: per
// server, per model, and per request, the latest request's value sticking), and hot-updated
// (a new version loads and warms beside the old one, new requests switch atomically, requests in
// flight finish on the old version, a version that fails to load or warm leaves the old serving).
//
// Clients hold a ModelLease for as long as they use a model (a whole request, until on_done):
// a leased version is never evicted or released, which is what makes eviction and hot update
// safe. Names map to files through a ModelResolver (the model store, or a fixed table), so this
// layer knows nothing of where models live.
//
// Thread-safe: acquire(), reload(), refresh(), unload(), set_keep_alive() and list() may be called
// from any thread.
// A load runs on the caller's thread outside the manager's lock: other models keep serving, and
// callers wanting the model being loaded wait for that one load instead of starting another.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lightboat/engine.h"

namespace lightboat {

// Where a model name points now. version identifies the content (a digest, or the file's
// identity), so a tag re-pointed to other bytes is noticed by refresh().
struct ModelSource {
  std::string path;
  std::string version;
};
// Resolves a model name; throws lightboat::Error (kNotFound for an unknown name).
using ModelResolver = std::function<ModelSource(const std::string& name)>;

// A keep-alive: how long a model stays loaded once idle (no lease held), as in Ollama. Negative
// (kKeepForever) = never unloaded for idleness; 0 = unloaded as soon as its last lease ends.
inline constexpr std::chrono::milliseconds kKeepForever{-1};

// Ollama's keep_alive text: a duration "5m", "30s", "1h30m", "500ms", "1.5h" (units ns us ms s m
// h, Go's syntax) or a bare number of seconds ("300", "-1", "0"); any negative value = forever.
// Throws lightboat::Error(kInvalidArgument) naming `field` for anything else.
std::chrono::milliseconds parse_keep_alive(const std::string& text, const std::string& field);
// The same for a JSON number of seconds (Ollama accepts both); NaN or infinite throws.
std::chrono::milliseconds keep_alive_from_seconds(double seconds, const std::string& field);
// "forever", "0s", "5m0s", "1h30m0s", "1.5s": the way Go (and `ollama ps`) print durations.
std::string format_keep_alive(std::chrono::milliseconds keep_alive);

struct ModelStatus;

struct ModelManagerOptions {
  ModelResolver resolver;
  EngineOptions engine;             // for every model (model_path is set per model)
  int64_t memory_budget_bytes = 0;  // weights + KV pools of all loaded versions; 0 = no limit
  // Idle time before a model is unloaded (above): the server's default...
  std::chrono::milliseconds keep_alive = kKeepForever;
  // ...overridden per model name; a request's set_keep_alive() beats both.
  std::map<std::string, std::chrono::milliseconds> model_keep_alive;
  bool warm_up = true;  // one short generation before a new version takes requests
  // Called after the set of loaded current versions changed (a load, an update, an eviction,
  // an expiry, an unload) with list() as it is then; one call at a time, never under the
  // manager's lock, never from the destructor. A server records there what it has loaded.
  std::function<void(const std::vector<ModelStatus>&)> on_change;
};

enum class ModelState {
  kLoading,   // the first load runs
  kReady,     // serving (an update may be loading beside it)
  kFailed,    // the last load failed and no version is loaded
  kUnloaded,  // evicted, expired or unloaded; loads again on the next acquire()
};
const char* model_state_name(ModelState s);

struct ModelStatus {
  std::string name;
  std::string version;  // of the version new requests get ("" while the first load runs)
  ModelState state = ModelState::kLoading;
  int64_t memory_bytes = 0;    // weights + KV pool of the current version (old ones: in total)
  int64_t in_use = 0;          // leases held on any version of it
  int64_t loads = 0;           // successful loads (first loads, reloads after eviction, updates)
  std::string error;           // the last load or update failure, if any
  std::string failed_version;  // the version whose update failed last ("" after a good one)
  EngineStats engine;          // the current version's engine (zeros when not loaded)
  std::chrono::milliseconds keep_alive = kKeepForever;  // in force for it now
  // When the reaper unloads it unless a request comes first: set for a loaded, idle model with a
  // finite keep_alive (nullopt while leased, unloaded, or kept forever).
  std::optional<std::chrono::system_clock::time_point> expires_at;
};

struct ModelManagerStats {
  int64_t memory_bytes = 0;       // all loaded versions, old ones still finishing requests included
  int64_t peak_memory_bytes = 0;  // the most memory_bytes has been after a version was admitted
  int64_t loads = 0;
  int64_t load_failures = 0;
  int64_t evictions = 0;        // unloaded to make room under the budget
  int64_t expirations = 0;      // unloaded after keep_alive
  int64_t updates = 0;          // hot updates that switched to a new version
  int64_t update_failures = 0;  // rolled back: the old version kept serving
};

class ModelManager;

// A model version in use. Copyable; the version stays loaded while any copy lives.
class ModelLease {
 public:
  struct Loaded;  // opaque: one loaded version
  ModelLease() = default;
  Engine& engine() const;
  const std::string& name() const;
  const std::string& version() const;
  explicit operator bool() const { return loaded_ != nullptr; }

 private:
  friend class ModelManager;
  std::shared_ptr<Loaded> loaded_;  // declared first: outlives use_ in every copy
  std::shared_ptr<void> use_;       // one per acquire(): its end marks the version idle
};

class ModelManager {
 public:
  // Starts the keep-alive reaper (a thread that sleeps until the next expiry). Loads nothing yet.
  explicit ModelManager(ModelManagerOptions options);
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // The current version of `name`, loading it first if needed (evicting idle models to fit the
  // budget). Throws lightboat::Error: unknown name (kNotFound), a file that fails to load, or a
  // model that cannot fit the budget even with every idle model evicted (kInvalidArgument, the
  // message says "memory budget").
  ModelLease acquire(const std::string& name);
  // The current version when `name` is loaded now, else an empty lease: never loads or waits
  // (a server answers from its I/O thread when it can, and hands a load to another thread).
  ModelLease try_acquire(const std::string& name);

  // Hot update: resolves `name` again and loads that version beside the current one, warms it,
  // then switches new requests to it. Loads even when the version is unchanged (a forced
  // reload). On failure the current version keeps serving, the error is recorded in list() and
  // rethrown. A name never loaded is just loaded.
  void reload(const std::string& name);
  // Re-resolves every loaded model and hot-updates those whose version changed (a re-pointed
  // tag). Failures are recorded, not thrown; a version that failed is tried again at the next
  // refresh(). Returns how many switched.
  int refresh();
  // Unloads `name` now unless leased; returns whether it was unloaded.
  bool unload(const std::string& name);
  // A request's keep_alive for `name` (a model acquired before; others are ignored): in force from now on, beating the
  // per-model and server values, until another call changes it (it survives unloads and hot
  // updates, as Ollama's latest keep_alive does). Call it while holding a lease of the request,
  // so that 0 unloads the model when that request (and any other in flight) has ended.
  void set_keep_alive(const std::string& name, std::chrono::milliseconds keep_alive);

  std::vector<ModelStatus> list() const;
  ModelManagerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lightboat
