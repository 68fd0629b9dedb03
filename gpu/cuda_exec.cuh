// The executor that runs the exact program's ops on a CUDA device: device memory, one thread per output index,
// ops in launch order on one stream of the executor's own (capturable into CUDA graphs, unlike the legacy
// default stream).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>

#include "engine/device_forward.hpp"
#include "gpu/cublas_loader.hpp"
#include "gpu/exact_ops.hpp"

namespace rampart::gpu {

template <class F>
__global__ void each_index(int64_t n, F f) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f(i);
}

struct cuda_exec {
  int device = 0;
  std::string label;
  std::shared_ptr<CUstream_st> stream_owner;  // created by make_stream(); destroyed with the last copy
  cudaStream_t stream = nullptr;
  const cublas_api* api = nullptr;       // loaded by make_stream()
  std::shared_ptr<cublasContext> blas;  // fast precision's products, on the stream, with a fixed workspace
  std::shared_ptr<void> blas_workspace;

  // Creates the executor's stream on DEVICE, and a cuBLAS handle on it whose workspace is fixed (graph capture
  // needs that: cuBLAS must not allocate while captured).
  void make_stream() {
    check(cudaSetDevice(device), "cudaSetDevice");
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    stream_owner.reset(s, [](cudaStream_t p) { cudaStreamDestroy(p); });
    stream = s;
    std::string load_error;
    api = cublas(&load_error);
    if (api == nullptr) throw model::device_failure(load_error);
    cublasHandle_t h = nullptr;
    if (api->create(&h) != CUBLAS_STATUS_SUCCESS) throw model::device_failure("cublasCreate failed");
    blas.reset(h, [destroy = api->destroy](cublasHandle_t p) { destroy(p); });
    constexpr size_t workspace_bytes = size_t{32} << 20;
    void* ws = nullptr;
    check(cudaMalloc(&ws, workspace_bytes), "cudaMalloc (cuBLAS workspace)");
    blas_workspace.reset(ws, [](void* p) { cudaFree(p); });
    if (api->set_stream(h, stream) != CUBLAS_STATUS_SUCCESS ||
        api->set_workspace(h, ws, workspace_bytes) != CUBLAS_STATUS_SUCCESS)
      throw model::device_failure("cublasSetStream / cublasSetWorkspace failed");
  }

  // Y[n, W.rows] (fp32) = X[n, W.cols] (bf16) times W^T (bf16, row-major): column-major, that is
  // Y^T = W^T' X^T with W read transposed; fp32 accumulation (CUBLAS_COMPUTE_32F) on the tensor cores.
  void gemm_bf16(const dweight& w, const uint16_t* x, int64_t n, float* y) {
    use();
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st =
        api->gemm_ex(blas.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(n),
                     static_cast<int>(w.cols), &one, w.data, CUDA_R_16BF, static_cast<int>(w.cols), x, CUDA_R_16BF,
                     static_cast<int>(w.cols), &zero, y, CUDA_R_32F, static_cast<int>(w.rows), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) throw model::device_failure("cublasGemmEx: status " + std::to_string(st));
  }

  // Throws on an error, clearing the thread's last error first so that the next launch's check does not
  // report it again.
  static void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();
    throw model::device_failure(std::string(what) + ": " + cudaGetErrorString(e));
  }
  // Every call makes the executor's device current: an engine is created on one thread and stepped on another,
  // and with several GPUs the calling thread's current device may be any of them.
  void use() const { check(cudaSetDevice(device), "cudaSetDevice"); }
  void* alloc(size_t bytes) {
    use();
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
    check(cudaMemsetAsync(p, 0, std::max<size_t>(bytes, 1), stream), "cudaMemset");
    return p;
  }
  void release(void* p) {
    cudaSetDevice(device);
    cudaStreamSynchronize(stream);  // nothing queued may still use it
    cudaFree(p);
    cudaGetLastError();
  }
  // Waits for the copy, so the caller may free or reuse SRC at once (never called while a graph is captured).
  void to_device(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    use();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), "copy to device");
    check(cudaStreamSynchronize(stream), "copy to device");
  }
  void to_host(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    use();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), "copy to host");
    check(cudaStreamSynchronize(stream), "copy to host");
  }
  template <class F>
  void each(int64_t n, const F& f) {
    if (n <= 0) return;
    use();
    constexpr int threads = 128;
    each_index<<<static_cast<unsigned>((n + threads - 1) / threads), threads, 0, stream>>>(n, f);
    check(cudaGetLastError(), "kernel launch");
  }
  void finish() {
    use();
    check(cudaStreamSynchronize(stream), "device step");
  }

  using graph = std::shared_ptr<CUgraphExec_st>;
  // Records BODY's launches on the stream as a graph (nothing runs); BODY must not synchronise or allocate.
  graph capture(const std::function<void()>& body) {
    use();
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "graph capture");
    try {
      body();
    } catch (...) {
      cudaGraph_t discard = nullptr;
      cudaStreamEndCapture(stream, &discard);
      if (discard != nullptr) cudaGraphDestroy(discard);
      throw;
    }
    cudaGraph_t g = nullptr;
    check(cudaStreamEndCapture(stream, &g), "graph capture");
    cudaGraphExec_t e = nullptr;
    const cudaError_t rc = cudaGraphInstantiate(&e, g, 0);
    cudaGraphDestroy(g);
    check(rc, "graph instantiate");
    return graph(e, [](cudaGraphExec_t p) { cudaGraphExecDestroy(p); });
  }
  void launch(const graph& g) {
    use();
    check(cudaGraphLaunch(g.get(), stream), "graph launch");
  }
  std::string describe() const { return label; }
};

}  // namespace rampart::gpu
