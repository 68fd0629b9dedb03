// A small fixed-size thread pool for data-parallel loops. The calling thread takes part as thread 0.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace rampart::model {

class thread_pool {
 public:
  // N_THREADS <= 0 means one per hardware thread. Starts n_threads - 1 workers. CPUS non-empty: every thread
  // of the pool, the workers from their start and the calling thread from its first loop, runs only on those
  // CPUs (the kernel places them among them).
  explicit thread_pool(int n_threads, std::vector<int> cpus = {});
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int size() const { return n_threads_; }
  const std::vector<int>& cpus() const { return cpus_; }
  // Threads the kernel would not pin to cpus() (they run wherever they are allowed to).
  int pin_failures() const { return pin_failures_.load(); }

  // Calls fn(begin, end, thread_index) on contiguous, disjoint ranges covering [0, n), thread t taking
  // [n*t/T, n*(t+1)/T), and returns when all are done. Not reentrant: one loop at a time, from one caller.
  // The split depends only on n and the pool size, so work assigned to an index is reproducible.
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    if (n <= 0) return;
    if (!cpus_.empty() && pinned_for_ != this) pin_caller();
    if (n_threads_ == 1 || n == 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    using fn_type = std::remove_reference_t<F>;
    run(n, [](void* ctx, int64_t b, int64_t e, int t) { (*static_cast<fn_type*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using task_fn = void (*)(void*, int64_t, int64_t, int);
  void run(int64_t n, task_fn fn, void* ctx);
  void worker(int index);
  void run_share(int index);
  void pin(std::atomic<int>* failures) const;
  void pin_caller();

  int n_threads_ = 1;
  std::vector<int> cpus_;
  // The pool that last pinned the calling thread (a new caller, such as a restarted engine thread, is pinned
  // again even where the system reuses a dead thread's id).
  static thread_local const thread_pool* pinned_for_;
  std::atomic<int> pin_failures_{0};
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  // The current loop, published before generation_ is bumped.
  int64_t n_ = 0;
  task_fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace rampart::model
