#include "gpu/device.hpp"

#include "gpu/cublas_loader.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cmath>
#include <vector>

namespace rampart::gpu {

device_report probe_devices() {
  device_report r;
  cudaRuntimeGetVersion(&r.runtime_version);
  ncclGetVersion(&r.nccl_version);
  int major = 0, minor = 0, patch = 0;
  std::string blas_error;
  if (const cublas_api* blas = cublas(&blas_error)) {
    blas->get_property(MAJOR_VERSION, &major);
    blas->get_property(MINOR_VERSION, &minor);
    blas->get_property(PATCH_LEVEL, &patch);
  }
  r.cublas_version = major * 10000 + minor * 100 + patch;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    r.error = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return r;
  }
  if (count == 0) {
    r.error = "no CUDA device";
    return r;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  r.device_count = count;
  r.name = prop.name;
  r.compute_major = prop.major;
  r.compute_minor = prop.minor;
  r.memory_bytes = prop.totalGlobalMem;
  return r;
}

namespace {
__global__ void saxpy(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
}  // namespace

self_test_result run_self_test(int n) {
  self_test_result r;
  auto fail = [&](const char* what, cudaError_t e) {
    r.error = std::string(what) + ": " + cudaGetErrorString(e);
    return r;
  };
  std::vector<float> x(n * n), y(n * n), c(n * n);
  for (int i = 0; i < n * n; ++i) {
    x[i] = static_cast<float>((i * 37 % 101) - 50) / 50.0f;
    y[i] = static_cast<float>((i * 11 % 97) - 48) / 48.0f;
  }
  float *dx = nullptr, *dy = nullptr, *dc = nullptr;
  cudaError_t e;
  if ((e = cudaMalloc(&dx, sizeof(float) * n * n)) != cudaSuccess) return fail("cudaMalloc", e);
  cudaMalloc(&dy, sizeof(float) * n * n);
  cudaMalloc(&dc, sizeof(float) * n * n);
  cudaMemcpy(dx, x.data(), sizeof(float) * n * n, cudaMemcpyHostToDevice);
  cudaMemcpy(dy, y.data(), sizeof(float) * n * n, cudaMemcpyHostToDevice);
  saxpy<<<(n * n + 255) / 256, 256>>>(n * n, 2.0f, dx, dy);
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return fail("saxpy", e);
  std::vector<float> out(n * n);
  cudaMemcpy(out.data(), dy, sizeof(float) * n * n, cudaMemcpyDeviceToHost);
  for (int i = 0; i < n * n; ++i) {
    double ref = 2.0 * x[i] + y[i];
    r.saxpy_max_error = std::max(r.saxpy_max_error, std::fabs(ref - out[i]));
  }
  // C = X * Y (column-major, as cuBLAS sees the buffers).
  cudaMemcpy(dy, y.data(), sizeof(float) * n * n, cudaMemcpyHostToDevice);
  std::string blas_error;
  const cublas_api* blas = cublas(&blas_error);
  if (blas == nullptr) {
    r.error = blas_error;
    return r;
  }
  cublasHandle_t h;
  if (blas->create(&h) != CUBLAS_STATUS_SUCCESS) {
    r.error = "cublasCreate failed";
    return r;
  }
  const float one = 1.0f, zero = 0.0f;
  blas->sgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, dx, n, dy, n, &zero, dc, n);
  cudaDeviceSynchronize();
  cudaMemcpy(c.data(), dc, sizeof(float) * n * n, cudaMemcpyDeviceToHost);
  blas->destroy(h);
  for (int col = 0; col < n; ++col) {
    for (int row = 0; row < n; ++row) {
      double ref = 0;
      for (int k = 0; k < n; ++k) ref += static_cast<double>(x[k * n + row]) * y[col * n + k];
      r.sgemm_max_error = std::max(r.sgemm_max_error, std::fabs(ref - c[col * n + row]));
    }
  }
  cudaFree(dx);
  cudaFree(dy);
  cudaFree(dc);
  r.ran = true;
  return r;
}

}  // namespace rampart::gpu
