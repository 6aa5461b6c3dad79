// Several models in one process: loaded on first use, kept under a byte memory budget (least
// recently used idle model evicted first), unloaded after an idle keep-alive, and hot-updated
// (a new version loads and warms beside the old one, new requests switch atomically, requests in
// flight finish on the old version, a version that fails to load or warm leaves the old serving).
//
// Clients hold a ModelLease for as long as they use a model (a whole request, until on_done):
// a leased version is never evicted or released, which is what makes eviction and hot update
// safe. Names map to files through a ModelResolver (the model store, or a fixed table), so this
// layer knows nothing of where models live.
//
// Thread-safe: acquire(), reload(), refresh(), unload() and list() may be called from any thread.
// A load runs on the caller's thread outside the manager's lock: other models keep serving, and
// callers wanting the model being loaded wait for that one load instead of starting another.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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

struct ModelManagerOptions {
  ModelResolver resolver;
  EngineOptions engine;                     // for every model (model_path is set per model)
  int64_t memory_budget_bytes = 0;          // weights + KV pools of all loaded versions; 0 = no limit
  std::chrono::milliseconds keep_alive{0};  // idle time before a model is unloaded; 0 = forever
  bool warm_up = true;                      // one short generation before a new version takes requests
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
  // Starts the keep-alive reaper (when keep_alive > 0). Loads nothing yet.
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

  std::vector<ModelStatus> list() const;
  ModelManagerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lightboat
