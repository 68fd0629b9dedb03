#include "kernels/thread_pool.hpp"

#include <string>

#include "base/cpu_affinity.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RAMPART_CPU_RELAX() _mm_pause()
#else
#define RAMPART_CPU_RELAX() ((void)0)
#endif

namespace rampart::model {

namespace {
// Spin this many rounds before sleeping: a decode step issues hundreds of short loops, and waking a sleeping
// thread costs more than most of them take.
constexpr int spin_rounds = 4000;
}  // namespace

thread_pool::thread_pool(int n_threads, std::vector<int> cpus) : cpus_(std::move(cpus)) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  n_threads_ = n_threads < 1 ? 1 : n_threads;
  for (int i = 1; i < n_threads_; ++i) {
    workers_.emplace_back([this, i] {
      if (!cpus_.empty()) pin(&pin_failures_);
      worker(i);
    });
  }
}

void thread_pool::pin(std::atomic<int>* failures) const {
  std::string error;
  if (!pin_current_thread(cpus_, &error)) failures->fetch_add(1);
}

thread_local const thread_pool* thread_pool::pinned_for_ = nullptr;

void thread_pool::pin_caller() {
  pin(&pin_failures_);
  pinned_for_ = this;
}

thread_pool::~thread_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void thread_pool::run_share(int index) {
  const int64_t begin = n_ * index / n_threads_;
  const int64_t end = n_ * (index + 1) / n_threads_;
  if (begin < end) fn_(ctx_, begin, end, index);
}

void thread_pool::run(int64_t n, task_fn fn, void* ctx) {
  n_ = n;
  fn_ = fn;
  ctx_ = ctx;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_share(0);
  // Spin, then yield: on a machine shared with other work a worker may be descheduled, and spinning would
  // keep it from running.
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < spin_rounds)
      RAMPART_CPU_RELAX();
    else
      std::this_thread::yield();
  }
}

void thread_pool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < spin_rounds; ++i) {
      RAMPART_CPU_RELAX();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    run_share(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace rampart::model
