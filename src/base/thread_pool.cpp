#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace lightboat {
namespace {

// How long a waiting thread spins before it blocks: long enough to bridge the serial work
// between two operations of a decode step (norms, RoPE, attention bookkeeping: microseconds),
// short enough not to burn a core when the engine is idle.
constexpr auto kSpinTime = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Busy-wait iterations (pause instruction) before yielding the core between checks: about a
// microsecond or two, the latency of a hand-off between two awake cores.
constexpr int kPauseSpins = 256;

// Waits until a != old (acquire) and returns the new value: spins first when `spin` (pausing,
// then yielding the core between checks so that an oversubscribed machine still runs the thread
// being waited for), then sleeps.
template <typename T>
T wait_for_change(const std::atomic<T>& a, T old, bool spin) {
  if (spin) {
    for (int i = 0; i < kPauseSpins; ++i) {
      const T v = a.load(std::memory_order_acquire);
      if (v != old) return v;
      cpu_relax();
    }
    const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
    for (;;) {
      const T v = a.load(std::memory_order_acquire);
      if (v != old) return v;
      std::this_thread::yield();
      if (std::chrono::steady_clock::now() > deadline) break;
    }
  }
  for (;;) {
    a.wait(old, std::memory_order_acquire);
    const T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

}  // namespace

constexpr int64_t kMaxChunks = 0xffff;  // the claim word's 16-bit fields

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), spin_(n_threads_ <= hardware_threads()) {
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

int ThreadPool::hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Claims are dealt out in turn, so claim k goes to thread k % T when the T threads keep pace. It
// gets chunk j = k / T of region k % T (the chunks cut into T runs of consecutive ones), so such a
// thread works through one stretch of [0, n) in order: a matmul's weight rows as one stream, whose
// kernels prefetch past a chunk's end into the next one (kernels/prefetch.h). Chunks claimed in
// plain order went to alternate threads, so each chunk began with a stream cold and ended with a
// prefetch into rows another thread read. A thread that falls behind still leaves its chunks to
// the others (the one doing most of the work then hops between runs: correct, just less in
// order); every claim still maps to one chunk (T runs of C / T chunks, the first C % T of them one
// longer).
uint32_t ThreadPool::chunk_of_claim(uint32_t claim, uint32_t n_chunks, int n_threads) {
  const auto threads = static_cast<uint32_t>(std::max(1, n_threads));
  const uint32_t per = n_chunks / threads, extra = n_chunks % threads;
  const uint32_t run = claim % threads, j = claim / threads;
  return run * per + std::min(run, extra) + j;
}

void ThreadPool::run_chunk(uint32_t claim) {
  // Chunk `index` of n_chunks_: whole grains, spread as evenly as possible.
  const uint32_t index = chunk_of_claim(claim, n_chunks_, n_threads_);
  const int64_t grains = (n_ + grain_ - 1) / grain_;
  const int64_t begin = std::min(n_, grains * index / n_chunks_ * grain_);
  const int64_t end = std::min(n_, grains * (index + 1) / n_chunks_ * grain_);
  if (begin >= end) return;
  try {
    fn_(begin, end);
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

// The chunks a thread runs are counted done once, when it finds none left: one read-modify-write
// of the shared done_ line per thread and call instead of one per chunk (a matmul's call has four
// chunks per thread). kernels_bench ThreadPool/parallel_for/threads:2/chunks:8, three alternated
// rounds: 1095-1209 ns per call counting each chunk, 752-955 ns counting once. The call cannot
// end while a thread holds uncounted chunks, so its id and count stay those of its claims.
void ThreadPool::work(uint32_t call) {
  uint64_t v = claim_.load(std::memory_order_acquire);
  uint32_t ran = 0;
  for (;;) {
    const auto count = static_cast<uint32_t>((v >> 16) & 0xffff);
    const auto next = static_cast<uint32_t>(v & 0xffff);
    if (static_cast<uint32_t>(v >> 32) != call || next >= count) {
      if (ran > 0 && done_.fetch_add(ran, std::memory_order_acq_rel) + ran == count) done_.notify_one();
      return;
    }
    if (!claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // Claimed: the call cannot end before this chunk is counted done, so its fields are stable.
    run_chunk(next);
    ++ran;
    v = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker() {
  uint32_t seen = 0;
  for (;;) {
    seen = wait_for_change(generation_, seen, spin_);
    if (stop_.load(std::memory_order_relaxed)) return;
    work(seen);
  }
}

// Chunks per thread (kDefaultChunksPerThread): enough that a thread that starts late (or runs at
// half speed) leaves its share to the others, few enough that claiming (one compare-exchange each)
// stays negligible.
void ThreadPool::run(int64_t n, int64_t grain, ChunkFn fn, int chunks_per_thread) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t grains = (n + grain - 1) / grain;
  if (n_threads_ == 1 || grains == 1) {
    fn(0, n);
    return;
  }
  // No chunk of the previous call is claimable and all are done: the fields are ours to write.
  fn_ = fn;
  n_ = n;
  grain_ = grain;
  n_chunks_ =
      static_cast<uint32_t>(std::min({grains, int64_t{n_threads_} * std::max(1, chunks_per_thread), kMaxChunks}));
  error_ = nullptr;
  done_.store(0, std::memory_order_relaxed);
  const uint32_t call = ++calls_;
  claim_.store(pack(call, n_chunks_, 0), std::memory_order_release);  // publishes the fields above
  generation_.store(call, std::memory_order_release);
  generation_.notify_all();
  work(call);
  for (uint32_t d = done_.load(std::memory_order_acquire); d != n_chunks_; d = done_.load(std::memory_order_acquire)) {
    wait_for_change(done_, d, spin_);
  }
  if (error_) std::rethrow_exception(error_);
}

void run_parts(unsigned n, const std::function<void(unsigned)>& part) {
  std::vector<std::exception_ptr> errors(n);
  auto guarded = [&](unsigned i) {
    try {
      part(i);
    } catch (...) {
      errors[i] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  unsigned started = 1;
  try {
    threads.reserve(n);
    for (; started < n; ++started) threads.emplace_back(guarded, started);
  } catch (const std::exception&) {
    // fewer threads than asked (no thread or no memory for one): this one runs the parts left over
  }
  if (n > 0) guarded(0);
  for (unsigned i = started; i < n; ++i) guarded(i);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace lightboat
