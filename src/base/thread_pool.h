// A fixed pool of compute threads owned by an engine (never a global). parallel_for splits
// [0, n) into contiguous chunks, one per thread, runs them (the calling thread takes part) and
// returns when all are done. Synchronised per call: the model calls it about ten times per layer
// per token, so a call costs a few hundred nanoseconds when the workers are awake: they spin on
// an atomic generation counter for a short while after each call (when the pool does not
// oversubscribe the machine) and only then block in the kernel (futex via std::atomic::wait).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
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

  // Calls fn(begin, end) on disjoint chunks covering [0, n). Chunks are multiples of `grain`
  // (except the last) so callers can keep blocks or cache lines whole. Exceptions thrown by fn
  // are rethrown here (the first one wins). fn is passed by reference, never copied or
  // allocated: the decode loop calls this per operation. Not reentrant: one call at a time.
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    run(n, grain, ChunkFn{&fn, [](void* f, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<Fn>*>(f))(b, e); }});
  }

  // The number of hardware threads, at least 1.
  static int hardware_threads();

 private:
  // A non-owning reference to the caller's callable.
  struct ChunkFn {
    void* object;
    void (*call)(void*, int64_t, int64_t);
    void operator()(int64_t b, int64_t e) const { call(object, b, e); }
  };

  void run(int64_t n, int64_t grain, ChunkFn fn);
  void worker(int index);
  void run_chunk(int index);

  int n_threads_;
  bool spin_;  // spin before blocking (only when every thread can have its own core)
  std::vector<std::thread> threads_;
  // Bumped (release) once the current call's fields below are written; workers acquire it.
  alignas(64) std::atomic<uint32_t> generation_{0};  // 32 bits: futex-sized, wraps harmlessly
  // Workers still running the current call; the last one to finish wakes the caller.
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // The current call (written by the caller only while no worker runs).
  ChunkFn fn_{nullptr, nullptr};
  int64_t n_ = 0;
  int64_t grain_ = 1;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace lightboat
