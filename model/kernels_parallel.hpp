// Kernels spread over a thread pool, and the row-wise float ops of the forward pass.
#pragma once

#include <cmath>
#include <cstdint>

#include "model/kernels.hpp"
#include "model/thread_pool.hpp"

namespace rampart::model {

// y[t*ys + r] = W[r, :] . x[t*xs, ...] for all rows r and tokens t < n, rows split over the pool in 16-row
// chunks. Each element is computed exactly as kernel_ops::gemm_rows computes it.
inline void matmul(thread_pool& pool, const kernel_ops& k, const weight_matrix& w, const float* x, int64_t xs,
                   int64_t n, float* y, int64_t ys) {
  constexpr int64_t chunk = 16;
  const int64_t items = (w.rows + chunk - 1) / chunk;
  pool.parallel_for(items, [&](int64_t b, int64_t e, int) {
    k.gemm_rows(w, x, xs, n, y, ys, b * chunk, e * chunk < w.rows ? e * chunk : w.rows);
  });
}

// out = x / sqrt(mean(x^2) + eps) * weight over N values (sum of squares in double). OUT may alias X.
inline void rms_norm(const float* x, const float* weight, int64_t n, double eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

// SwiGLU activation: gate[i] = silu(gate[i]) * up[i].
inline void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace rampart::model
