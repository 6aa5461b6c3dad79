#include "lightboat/model_manager.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"

namespace lightboat {

using SteadyClock = std::chrono::steady_clock;

namespace {
// Wakes the keep-alive reaper: a lease ended or a keep-alive changed. Shared with every loaded
// version, because leases (and so their Use) may outlive the manager.
struct ReaperSignal {
  std::mutex mu;
  std::condition_variable cv;
  bool poked = false;
  bool stop = false;
  void poke() {
    {
      std::lock_guard lk(mu);
      poked = true;
    }
    cv.notify_one();
  }
};
}  // namespace

// One loaded version of a model. Destroying it stops its engine loop and releases its memory.
struct ModelLease::Loaded {
  std::string name;
  std::string version;
  std::unique_ptr<Engine> engine;
  int64_t memory_bytes = 0;
  std::atomic<int64_t> last_release_ns{0};  // steady clock: when the last lease ended
  std::atomic<int64_t> in_use{0};           // acquisitions whose leases are alive
  std::shared_ptr<ReaperSignal> reaper;     // poked when in_use drops
};

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

// One acquisition. Ends when its lease and every copy of it are gone; stamps the version's last
// use then, so keep_alive counts idle time from the end of the last request, not its start, and
// wakes the reaper (keep_alive 0 unloads now). A raw pointer: every lease copy holding the Use
// also holds the version, destroyed after it. Release: a reaper that sees in_use drop to 0 also
// sees the new stamp.
struct Use {
  ModelLease::Loaded* loaded;
  ~Use() {
    loaded->last_release_ns.store(now_ns(), std::memory_order_relaxed);
    loaded->in_use.fetch_sub(1, std::memory_order_release);
    if (loaded->reaper) loaded->reaper->poke();
  }
};

int64_t to_ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// Receives the warm-up generation's end.
class WarmSink final : public TokenSink {
 public:
  void on_text(const std::string&, int32_t) override {}
  void on_done(const Completion& c) override { done_.set_value(c); }
  std::future<Completion> future() { return done_.get_future(); }

 private:
  std::promise<Completion> done_;
};

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

}  // namespace

Engine& ModelLease::engine() const {
  return *loaded_->engine;
}
const std::string& ModelLease::name() const {
  return loaded_->name;
}
const std::string& ModelLease::version() const {
  return loaded_->version;
}

const char* model_state_name(ModelState s) {
  switch (s) {
    case ModelState::kLoading:
      return "loading";
    case ModelState::kReady:
      return "ready";
    case ModelState::kFailed:
      return "failed";
    case ModelState::kUnloaded:
      return "unloaded";
  }
  return "?";
}

struct ModelManager::Impl {
  using LoadedPtr = std::shared_ptr<ModelLease::Loaded>;

  struct Entry {
    LoadedPtr current;                                       // what acquire() hands out; null when not loaded
    std::vector<std::weak_ptr<ModelLease::Loaded>> retired;  // old versions, alive while leased
    bool loading = false;                                    // a first load or an update is running
    std::string error;
    std::string failed_version;  // resolved version of the last failed update
    int64_t loads = 0;
    int64_t known_bytes = 0;                              // memory of the last version loaded: the next estimate
    std::optional<std::chrono::milliseconds> keep_alive;  // the latest request's (set_keep_alive)
  };

  explicit Impl(ModelManagerOptions o) : options(std::move(o)) {
    check(static_cast<bool>(options.resolver), ErrorKind::kInvalidArgument, "ModelManager: no resolver");
    check(options.memory_budget_bytes >= 0, ErrorKind::kInvalidArgument, "ModelManager: negative memory budget");
    reaper = std::thread([this] { reap(); });
  }

  ~Impl() {
    {
      std::lock_guard lk(signal->mu);
      signal->stop = true;
    }
    signal->cv.notify_all();
    if (reaper.joinable()) reaper.join();
  }

  static int64_t leases(const LoadedPtr& p) { return p ? p->in_use.load(std::memory_order_acquire) : 0; }

  // The keep-alive in force for `name`: the latest request's, else the model's, else the server's.
  std::chrono::milliseconds keep_alive_of(const std::string& name, const Entry& e) const {
    if (e.keep_alive) return *e.keep_alive;
    const auto it = options.model_keep_alive.find(name);
    return it != options.model_keep_alive.end() ? it->second : options.keep_alive;
  }

  // When an idle loaded model expires (steady ns); nullopt while leased, loading or kept forever.
  std::optional<int64_t> expiry_ns(const std::string& name, const Entry& e) const {  // under mu
    if (!e.current || e.loading || leases(e.current) > 0) return std::nullopt;
    const std::chrono::milliseconds ka = keep_alive_of(name, e);
    if (ka < std::chrono::milliseconds(0)) return std::nullopt;
    return e.current->last_release_ns.load(std::memory_order_relaxed) + to_ns(ka);
  }

  // Tells options.on_change what is loaded now (not under mu; one call at a time, in order).
  void changed() {
    if (!options.on_change) return;
    std::lock_guard lk(change_mu);
    options.on_change(list());
  }

  int64_t memory_in_use() const {  // under mu
    int64_t total = reserved;
    for (const auto& [name, e] : entries) {
      if (e.current) total += e.current->memory_bytes;
      for (const auto& w : e.retired) {
        if (auto p = w.lock()) total += p->memory_bytes;
      }
    }
    return total;
  }

  // Evicts least-recently-used idle models (never `keep`) until `bytes` more fit the budget.
  // Under mu; the evicted versions are moved to `dead` so they are destroyed after the unlock.
  bool make_room(int64_t bytes, const std::string& keep, std::vector<LoadedPtr>& dead) {
    if (options.memory_budget_bytes == 0) return true;
    while (memory_in_use() + bytes > options.memory_budget_bytes) {
      Entry* victim = nullptr;
      int64_t oldest = 0;
      for (auto& [name, e] : entries) {
        if (name == keep || !e.current || e.loading || leases(e.current) > 0) continue;
        const int64_t used = e.current->last_release_ns.load(std::memory_order_relaxed);
        if (!victim || used < oldest) {
          victim = &e;
          oldest = used;
        }
      }
      if (!victim) return false;
      dead.push_back(std::move(victim->current));
      ++stats.evictions;
    }
    return true;
  }

  // Resolves, opens and warms one version of `name`, on the calling thread, with mu NOT held.
  // Its memory stays counted in `reserved` (reserved_bytes) until the caller installs it under
  // mu and subtracts that; on a throw the reservation is already gone.
  LoadedPtr load_version(const std::string& name, int64_t& reserved_bytes) {
    const ModelSource src = options.resolver(name);
    std::vector<LoadedPtr> dead;
    int64_t estimate = 0;
    {
      std::lock_guard lk(mu);
      const Entry& e = entries[name];
      estimate = e.known_bytes > 0 ? e.known_bytes : file_size(src.path) + options.engine.kv_cache_bytes;
      if (!make_room(estimate, name, dead)) {
        throw Error(ErrorKind::kInvalidArgument, "model " + name + " (about " + std::to_string(estimate >> 20) +
                                                     " MiB) does not fit the memory budget of " +
                                                     std::to_string(options.memory_budget_bytes >> 20) +
                                                     " MiB beside the models in use");
      }
      reserved += estimate;
    }
    dead.clear();  // evicted engines stop here, outside the lock
    reserved_bytes = estimate;
    try {
      auto loaded = std::make_shared<ModelLease::Loaded>();
      loaded->name = name;
      loaded->version = src.version;
      EngineOptions eo = options.engine;
      eo.model_path = src.path;
      loaded->engine = Engine::open(eo);
      const EngineStats st = loaded->engine->stats();
      loaded->memory_bytes = st.weight_bytes + st.kv_cache_bytes;
      loaded->last_release_ns.store(now_ns(), std::memory_order_relaxed);
      loaded->reaper = signal;
      if (loaded->memory_bytes > estimate) {  // the estimate was low (KV sized from the context)
        std::lock_guard lk(mu);
        const bool fits = make_room(loaded->memory_bytes - estimate, name, dead);
        if (fits) {
          reserved += loaded->memory_bytes - estimate;
          reserved_bytes = loaded->memory_bytes;
        }
        check(fits, ErrorKind::kInvalidArgument,
              "model " + name + " (" + std::to_string(loaded->memory_bytes >> 20) +
                  " MiB) does not fit the memory budget of " + std::to_string(options.memory_budget_bytes >> 20) +
                  " MiB beside the models in use");
      }
      dead.clear();
      if (options.warm_up) warm(*loaded);
      return loaded;
    } catch (...) {
      std::lock_guard lk(mu);
      reserved -= reserved_bytes;
      reserved_bytes = 0;
      throw;
    }
  }

  // One greedy token: pages, scratch and rate estimates are warm, and a file whose weights load
  // but do not run (a broken update) fails here, before it takes requests.
  static void warm(ModelLease::Loaded& l) {
    GenerateRequest r{.prompt = "Hello", .max_tokens = 1};
    r.sampling.temperature = 0.0f;
    auto sink = std::make_shared<WarmSink>();
    auto done = sink->future();
    const SubmitResult s = l.engine->submit(std::move(r), sink);
    check(s.status == SubmitStatus::kAccepted, ErrorKind::kInternal,
          "model " + l.name + ": warm-up refused: " + s.message);
    const Completion c = done.get();
    check(c.finish_reason != FinishReason::kError, ErrorKind::kFormat,
          "model " + l.name + " version " + l.version + " failed its warm-up: " + c.error);
  }

  // keep_alive: sleeps until the next idle model's expiry (or a poke: a lease ended, a keep-alive
  // changed) and unloads the versions idle for longer than their keep-alive.
  void reap() {
    bool have_next = false;
    int64_t next = 0;  // steady ns: the earliest expiry seen by the last pass
    while (true) {
      {
        std::unique_lock lk(signal->mu);
        const auto woken = [&] { return signal->poked || signal->stop; };
        if (have_next) {
          signal->cv.wait_until(lk, SteadyClock::time_point(std::chrono::nanoseconds(next)), woken);
        } else {
          signal->cv.wait(lk, woken);
        }
        if (signal->stop) return;
        signal->poked = false;
      }
      have_next = false;
      std::vector<LoadedPtr> dead;
      {
        std::lock_guard lk(mu);
        const int64_t now = now_ns();
        for (auto& [name, e] : entries) {
          const std::optional<int64_t> at = expiry_ns(name, e);
          if (!at) continue;
          if (*at > now) {
            next = have_next ? std::min(next, *at) : *at;
            have_next = true;
            continue;
          }
          dead.push_back(std::move(e.current));
          ++stats.expirations;
        }
      }
      if (dead.empty()) continue;
      dead.clear();  // engines stop here, outside the lock
      changed();
    }
  }

  // Makes `fresh` the version new requests get (under mu), ends its load's reservation and wakes
  // the waiters; returns the version it replaced (null on a first load).
  LoadedPtr install(Entry& e, LoadedPtr fresh, int64_t reserved_bytes) {
    reserved -= reserved_bytes;
    LoadedPtr old = std::move(e.current);
    e.current = std::move(fresh);
    e.loading = false;
    e.error.clear();
    e.known_bytes = e.current->memory_bytes;
    ++e.loads;
    ++stats.loads;
    stats.peak_memory_bytes = std::max(stats.peak_memory_bytes, memory_in_use() - reserved);
    cv.notify_all();
    signal->poke();  // an update's version is idle from the start: its expiry counts from now
    return old;
  }

  static ModelLease lease(const LoadedPtr& p) {
    ModelLease l;
    p->in_use.fetch_add(1, std::memory_order_relaxed);
    l.loaded_ = p;
    l.use_ = std::make_shared<Use>(p.get());
    return l;
  }

  std::vector<ModelStatus> list() const;

  ModelManagerOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;            // a load finished
  std::map<std::string, Entry> entries;  // never erased: references stay valid across unlocks
  int64_t reserved = 0;                  // estimates of the loads running now
  ModelManagerStats stats;
  std::mutex change_mu;  // one on_change call at a time
  std::shared_ptr<ReaperSignal> signal = std::make_shared<ReaperSignal>();
  std::thread reaper;  // last: started once the rest is built
};

ModelManager::ModelManager(ModelManagerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

ModelManager::~ModelManager() = default;

ModelLease ModelManager::acquire(const std::string& name) {
  Impl& m = *impl_;
  std::unique_lock lk(m.mu);
  if (!m.entries.count(name)) {
    // A name never seen is resolved first: an unknown one throws here and leaves no entry (a
    // client naming random models must not grow the table).
    lk.unlock();
    try {
      m.options.resolver(name);
    } catch (const std::exception&) {
      std::lock_guard failed(m.mu);
      ++m.stats.load_failures;
      throw;
    }
    lk.lock();
  }
  Impl::Entry& e = m.entries[name];
  bool waited = false;
  while (!e.current && e.loading) {
    m.cv.wait(lk);
    waited = true;
  }
  if (e.current) return m.lease(e.current);
  // A load this caller waited for failed: report that failure rather than retry at once.
  if (waited && !e.error.empty()) throw Error(ErrorKind::kInvalidArgument, e.error);
  e.loading = true;
  lk.unlock();
  Impl::LoadedPtr loaded;
  int64_t reserved = 0;
  try {
    loaded = m.load_version(name, reserved);
  } catch (const std::exception& ex) {
    lk.lock();
    e.loading = false;
    e.error = ex.what();
    ++m.stats.load_failures;
    m.cv.notify_all();
    lk.unlock();
    m.changed();  // the load may have evicted others first
    throw;
  }
  lk.lock();
  m.install(e, std::move(loaded), reserved);
  ModelLease lease = m.lease(e.current);
  lk.unlock();
  m.changed();
  return lease;
}

ModelLease ModelManager::try_acquire(const std::string& name) {
  Impl& m = *impl_;
  std::lock_guard lk(m.mu);
  const auto it = m.entries.find(name);
  if (it == m.entries.end() || !it->second.current) return {};
  return Impl::lease(it->second.current);
}

void ModelManager::reload(const std::string& name) {
  Impl& m = *impl_;
  std::unique_lock lk(m.mu);
  if (!m.entries.count(name)) {  // never seen: a first load (an unknown name leaves no entry)
    lk.unlock();
    acquire(name);
    return;
  }
  Impl::Entry& e = m.entries[name];
  while (e.loading) m.cv.wait(lk);  // one load of a model at a time
  if (!e.current) {
    lk.unlock();
    acquire(name);
    return;
  }
  e.loading = true;
  lk.unlock();
  Impl::LoadedPtr fresh;
  int64_t reserved = 0;
  try {
    fresh = m.load_version(name, reserved);
  } catch (const std::exception& ex) {
    std::string failed;
    try {
      failed = m.options.resolver(name).version;
    } catch (const std::exception&) {
    }
    lk.lock();
    e.loading = false;
    e.failed_version = failed;
    e.error = std::string("update failed, previous version kept: ") + ex.what();
    ++m.stats.update_failures;
    m.cv.notify_all();
    lk.unlock();
    m.changed();  // the load may have evicted others first
    throw;
  }
  lk.lock();
  Impl::LoadedPtr old = m.install(e, std::move(fresh), reserved);
  e.retired.erase(std::remove_if(e.retired.begin(), e.retired.end(), [](const auto& w) { return w.expired(); }),
                  e.retired.end());
  e.retired.push_back(old);
  e.failed_version.clear();
  ++m.stats.updates;
  lk.unlock();
  old.reset();  // the old version goes when its last lease (a request in flight) ends
  m.changed();
}

int ModelManager::refresh() {
  Impl& m = *impl_;
  struct Seen {
    std::string name, version;
  };
  std::vector<Seen> loaded;
  {
    std::lock_guard lk(m.mu);
    for (const auto& [name, e] : m.entries) {
      if (e.current && !e.loading) loaded.push_back({name, e.current->version});
    }
  }
  int switched = 0;
  for (const auto& [name, version] : loaded) {
    try {
      const std::string now = m.options.resolver(name).version;
      if (now == version) continue;
      reload(name);
      ++switched;
    } catch (const std::exception& ex) {
      std::lock_guard lk(m.mu);
      if (m.entries[name].error.empty())
        m.entries[name].error = std::string("update failed, previous version kept: ") + ex.what();
    }
  }
  return switched;
}

bool ModelManager::unload(const std::string& name) {
  Impl& m = *impl_;
  Impl::LoadedPtr dead;
  {
    std::lock_guard lk(m.mu);
    auto it = m.entries.find(name);
    if (it == m.entries.end() || !it->second.current || it->second.loading) return false;
    if (Impl::leases(it->second.current) > 0) return false;
    dead = std::move(it->second.current);
  }
  dead.reset();  // its engine stops here, outside the lock
  m.changed();
  return true;
}

void ModelManager::set_keep_alive(const std::string& name, std::chrono::milliseconds keep_alive) {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    const auto it = m.entries.find(name);
    if (it == m.entries.end()) return;
    it->second.keep_alive = keep_alive;
  }
  m.signal->poke();  // the next expiry may have moved
}

std::vector<ModelStatus> ModelManager::list() const {
  return impl_->list();
}

std::vector<ModelStatus> ModelManager::Impl::list() const {
  const Impl& m = *this;
  std::lock_guard lk(m.mu);
  std::vector<ModelStatus> out;
  const int64_t now = now_ns();
  const auto wall_now = std::chrono::system_clock::now();
  for (const auto& [name, e] : m.entries) {
    ModelStatus s{.name = name, .loads = e.loads, .error = e.error, .failed_version = e.failed_version};
    s.keep_alive = m.keep_alive_of(name, e);
    if (const std::optional<int64_t> at = m.expiry_ns(name, e)) {
      s.expires_at = wall_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    std::chrono::nanoseconds(std::max<int64_t>(0, *at - now)));
    }
    if (e.current) {
      s.engine = e.current->engine->stats();
      s.version = e.current->version;
      s.state = ModelState::kReady;
      s.memory_bytes = e.current->memory_bytes;
      s.in_use = Impl::leases(e.current);
    } else {
      s.state = e.loading ? ModelState::kLoading : (e.error.empty() ? ModelState::kUnloaded : ModelState::kFailed);
    }
    for (const auto& w : e.retired) {
      if (auto p = w.lock()) {
        s.memory_bytes += p->memory_bytes;
        s.in_use += Impl::leases(p);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

ModelManagerStats ModelManager::stats() const {
  const Impl& m = *impl_;
  std::lock_guard lk(m.mu);
  ModelManagerStats st = m.stats;
  st.memory_bytes = m.memory_in_use() - m.reserved;
  return st;
}

}  // namespace lightboat
