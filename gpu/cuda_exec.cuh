// The executor that runs the exact program's ops on a CUDA device: device memory, one thread per output index,
// ops in launch order on the device's default stream.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "engine/device_forward.hpp"

namespace rampart::gpu {

template <class F>
__global__ void each_index(int64_t n, F f) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}

struct cuda_exec {
  int device = 0;
  std::string label;

  static void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw model::device_failure(std::string(what) + ": " + cudaGetErrorString(e));
  }
  void* alloc(size_t bytes) {
    check(cudaSetDevice(device), "cudaSetDevice");
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
    check(cudaMemset(p, 0, std::max<size_t>(bytes, 1)), "cudaMemset");
    return p;
  }
  void release(void* p) { cudaFree(p); }
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "copy to device");
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "copy to host");
  }
  template <class F>
  void each(int64_t n, const F& f) {
    if (n <= 0) return;
    constexpr int threads = 128;
    each_index<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(n, f);
    check(cudaGetLastError(), "kernel launch");
  }
  void finish() { check(cudaDeviceSynchronize(), "device step"); }
  std::string describe() const { return label; }
};

}  // namespace rampart::gpu
