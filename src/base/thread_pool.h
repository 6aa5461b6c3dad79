// A fixed pool of compute threads owned by an engine (never a global). parallel_for splits
// [0, n) into contiguous chunks of whole grains, a few per thread, which the threads (the calling
// thread among them) claim one at a time from a shared counter, and returns when all are done.
// Claiming rather than assigning chunks keeps a call from waiting on a thread the OS has not run:
// on a shared or throttled machine (two vCPUs that sometimes get one core's time, a phone's
// background work) whoever is running takes the next chunk, so a call degrades towards one
// thread's speed instead of stalling until the late thread is scheduled.
// Synchronised per call: the model calls it about ten times per layer per token, so a call costs
// a few hundred nanoseconds when the workers are awake: they spin on an atomic generation counter
// for a short while after each call (when the pool does not oversubscribe the machine) and only
// then block in the kernel (futex via std::atomic::wait).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace lightboat {

class ThreadPool {
 public:
  // n_threads >= 1 counts the calling thread: ThreadPool(1) starts no thread at all.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), in any order and on any thread.
  // Chunks are multiples of `grain` (except the last) so callers can keep blocks or cache lines
  // whole. Exceptions thrown by fn
  // are rethrown here (the first one wins). fn is passed by reference, never copied or
  // allocated: the decode loop calls this per operation. Not reentrant: one call at a time.
  // chunks_per_thread (at least 1) sets how finely [0, n) is cut: more chunks shorten the wait for
  // the last one, each costs a claim.
  static constexpr int kDefaultChunksPerThread = 4;
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn, int chunks_per_thread = kDefaultChunksPerThread) {
    run(n, grain,
        ChunkFn{&fn, [](void* f, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<Fn>*>(f))(b, e); }},
        chunks_per_thread);
  }

  // The chunk that claim number `claim` (0 .. n_chunks - 1) of a call runs: a permutation that
  // gives a thread claiming every n_threads-th time one run of consecutive chunks (thread_pool.cpp).
  static uint32_t chunk_of_claim(uint32_t claim, uint32_t n_chunks, int n_threads);

  // The number of hardware threads, at least 1.
  static int hardware_threads();

 private:
  // A non-owning reference to the caller's callable.
  struct ChunkFn {
    void* object;
    void (*call)(void*, int64_t, int64_t);
    void operator()(int64_t b, int64_t e) const { call(object, b, e); }
  };

  void run(int64_t n, int64_t grain, ChunkFn fn, int chunks_per_thread);
  void worker();
  // Claims and runs chunks of call `call` until none is left (or another call has started).
  void work(uint32_t call);
  void run_chunk(uint32_t claim);

  // The claim word: call id (32 bits) | chunk count (16 bits) | next unclaimed chunk (16 bits).
  // A claim is a compare-exchange that fails once the call has changed, so a thread that wakes
  // late never runs a chunk of a call it was not woken for; the count rides in the word so a
  // thread that finds nothing left reads no field the caller may be rewriting for the next call.
  static constexpr uint64_t pack(uint32_t call, uint32_t count, uint32_t next) {
    return (uint64_t{call} << 32) | (uint64_t{count} << 16) | next;
  }

  int n_threads_;
  bool spin_;  // spin before blocking (only when every thread can have its own core)
  std::vector<std::thread> threads_;
  uint32_t calls_ = 0;  // id of the latest call (written by the caller only)
  // Set (release) to the call id once the call's fields below are written; workers acquire it.
  alignas(64) std::atomic<uint32_t> generation_{0};  // 32 bits: futex-sized, wraps harmlessly
  alignas(64) std::atomic<uint64_t> claim_{0};
  // Chunks of the current call finished; the thread that finishes the last one wakes the caller.
  alignas(64) std::atomic<uint32_t> done_{0};
  std::atomic<bool> stop_{false};
  // The current call (written by the caller only while no chunk of a call is claimable).
  ChunkFn fn_{nullptr, nullptr};
  int64_t n_ = 0;
  int64_t grain_ = 1;
  uint32_t n_chunks_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// Runs part(0) .. part(n - 1) at once, on short-lived threads and this one (load-time work, before
// any pool exists: reading a file, interleaving matrices). A part whose thread cannot start runs
// on this thread. Returns when every part has finished; the first exception a part threw is then
// rethrown here.
void run_parts(unsigned n, const std::function<void(unsigned)>& part);

}  // namespace lightboat
