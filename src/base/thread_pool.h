// A fixed pool of compute threads owned by an engine (never a global). parallel_for splits
// [0, n) into contiguous chunks, one per thread, runs them (the calling thread takes part) and
// returns when all are done. Synchronised per call: the model calls it once per operation.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <mutex>
#include <thread>
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
  // allocated: the decode loop calls this per operation.
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
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  uint64_t generation_ = 0;  // bumped per parallel_for call
  int pending_ = 0;          // workers still running the current call
  bool stop_ = false;
  // The current call (valid while pending_ > 0).
  ChunkFn fn_{nullptr, nullptr};
  int64_t n_ = 0;
  int64_t grain_ = 1;
  std::exception_ptr error_;
};

}  // namespace lightboat
