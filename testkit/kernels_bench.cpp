#include "testkit/kernels_bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include "kernels/kernels.hpp"

namespace rampart::model {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sums 64-bit words; the sum is returned so the reads cannot be optimised away.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  return a + b + c + d;
}

#if defined(__x86_64__)
// The widest loads this CPU has, four independent sums: the loop keeps up with memory, so memory is measured.
// Prefetches may run past the buffer's end; prefetches never fault.
__attribute__((target("avx512f"))) uint64_t sum_words_avx512(const uint64_t* p, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // Software prefetch 32 KiB ahead, as the decode kernels do: measured here, it reads ~15% faster than
    // relying on the hardware prefetchers alone.
    for (int j = 0; j < 32; j += 8) _mm_prefetch(reinterpret_cast<const char*>(p + i + 4096 + j), _MM_HINT_T1);
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 8));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 16));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 24));
  }
  uint64_t tail = 0;
  for (; i < n; ++i) tail += p[i];
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)))) + tail;
}

// 16 independent accumulators of 16 lanes: enough chains to cover FMA latency on two ports.
__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  alignas(32) float out[8];
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}
#endif

float fma_loop_scalar(int64_t iters) {
  float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  return acc[0] + acc[7];
}

}  // namespace

double measure_read_bandwidth(thread_pool& pool, size_t bytes) {
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);
  pool.parallel_for(static_cast<int64_t>(words), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  uint64_t (*sum)(const uint64_t*, size_t) = sum_words;
#if defined(__x86_64__)
  if (kernel_isa_supported(kernel_isa::avx512)) sum = sum_words_avx512;
#endif
  std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8, 0);  // one cache line per thread
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const size_t w0 = words * t / pool.size(), w1 = words * (t + 1) / pool.size();
        sink[t * 8] += sum(buf.get() + w0, w1 - w0);
      }
    });
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / seconds_since(t0));
  }
  volatile uint64_t keep = 0;
  for (uint64_t s : sink) keep = keep + s;
  return best;
}

double measure_fma_peak(thread_pool& pool) {
  constexpr int64_t iters = 4000000;
  double flops_per_iter = 2.0 * 8;
  float (*loop)(int64_t) = fma_loop_scalar;
#if defined(__x86_64__)
  if (kernel_isa_supported(kernel_isa::avx512)) {
    loop = fma_loop_avx512;
    flops_per_iter = 2.0 * 16 * 16;
  } else if (kernel_isa_supported(kernel_isa::avx2)) {
    loop = fma_loop_avx2;
    flops_per_iter = 2.0 * 12 * 8;
  }
#endif
  std::vector<float> sink(static_cast<size_t>(pool.size()) * 16, 0);
  double best = 0;
  for (int run = 0; run < 3; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) sink[t * 16] += loop(iters);
    });
    best = std::max(best, flops_per_iter * static_cast<double>(iters) * pool.size() / seconds_since(t0));
  }
  volatile float keep = 0;
  for (float s : sink) keep = keep + s;
  return best;
}

}  // namespace rampart::model
