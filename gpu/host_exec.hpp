// The executor that runs the exact program's ops on the host, one index after another, in host memory: the
// reference the device program is checked against on machines without a GPU (tests/gpu), and the same op
// source a GPU runs.
#pragma once

#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "engine/device_forward.hpp"
#include "gpu/exact_ops.hpp"
#include "kernels/thread_pool.hpp"

namespace rampart::gpu {

struct host_exec {
  std::shared_ptr<model::thread_pool> pool;  // the loop's threads (each index is computed by one of them)

  void* alloc(size_t bytes) {
    void* p = std::calloc(bytes > 0 ? bytes : 1, 1);
    if (p == nullptr) throw model::device_failure("host: out of memory for " + std::to_string(bytes) + " bytes");
    return p;
  }
  void release(void* p) { std::free(p); }
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) std::memcpy(dst, src, bytes);
  }
  template <class F>
  void each(int64_t n, const F& f) {
    if (n < 64 || pool->size() == 1) {
      for (int64_t i = 0; i < n; ++i) f(i);
      return;
    }
    pool->parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) f(i);
    });
  }
  // Y[n, W.rows] = bf16 X[n, W.cols] times bf16 W^T, accumulated in float: what the tensor cores compute.
  void gemm_bf16(const dweight& w, const uint16_t* x, int64_t n, float* y) { each(n * w.rows, matmul_bf16_op{w, x, y}); }
  void finish() {}
  // A host "graph" is the recorded body, replayed by calling it.
  using graph = std::function<void()>;
  graph capture(std::function<void()> body) { return body; }
  void launch(const graph& g) { g(); }
  std::string describe() const { return "host reference"; }
};

}  // namespace rampart::gpu
