// Kernels spread over a thread pool, and the row-wise float ops of the forward pass.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace rampart::model {

// y[t*ys + r] = W[r, :] . x[t*xs, ...] for all rows r and tokens t < n, rows split over the pool in 16-row
// chunks. Each element is computed exactly as kernel_ops::gemm_rows computes it.
// Activations as kernel_ops::gemm_rows_prepared reads them for W.
struct prepared_input {
  const float* x;
  int64_t stride;
};

// X itself when the kernels for W read the natural layout, else X rearranged into SCRATCH (by the pool when
// there is enough of it to share).
inline prepared_input prepare_input(thread_pool& pool, const kernel_ops& k, const weight_matrix& w, const float* x,
                                    int64_t xs, int64_t n, std::vector<float>& scratch) {
  const int64_t pc = k.prepared_cols(w);
  if (pc == 0) return {x, xs};
  if (scratch.size() < static_cast<size_t>(n * pc)) scratch.resize(static_cast<size_t>(n * pc));
  float* out = scratch.data();
  if (n * pc < (int64_t{1} << 16)) {
    k.prepare_x(w, x, xs, n, out);
  } else {
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) { k.prepare_x(w, x + b * xs, xs, e - b, out + b * pc); });
  }
  return {out, pc};
}

// gemm_rows on rows [r_begin, r_end) of W from IN, prepared for a matrix PREPARED_FOR with the same column
// count; falls back to the natural-layout X when W's kernels want another layout (e.g. mixed dtypes).
inline void gemm_rows_shared(const kernel_ops& k, const weight_matrix& w, const weight_matrix& prepared_for,
                             const prepared_input& in, const float* x, int64_t xs, int64_t n, float* y, int64_t ys,
                             int64_t r_begin, int64_t r_end) {
  if (k.prepared_cols(w) == k.prepared_cols(prepared_for)) k.gemm_rows_prepared(w, in.x, in.stride, n, y, ys, r_begin, r_end);
  else k.gemm_rows(w, x, xs, n, y, ys, r_begin, r_end);
}

inline void matmul(thread_pool& pool, const kernel_ops& k, const weight_matrix& w, const float* x, int64_t xs,
                   int64_t n, float* y, int64_t ys) {
  constexpr int64_t chunk = 16;
  thread_local std::vector<float> scratch;
  const prepared_input in = prepare_input(pool, k, w, x, xs, n, scratch);
  const int64_t items = (w.rows + chunk - 1) / chunk;
  pool.parallel_for(items, [&](int64_t b, int64_t e, int) {
    k.gemm_rows_prepared(w, in.x, in.stride, n, y, ys, b * chunk, e * chunk < w.rows ? e * chunk : w.rows);
  });
}

// FN(t, thread) for every token t < N: on the calling thread (thread 0) for a few tokens, spread over the pool
// for more. For per-token work whose result does not depend on which thread runs it.
template <class F>
inline void for_tokens(thread_pool& pool, int64_t n, F&& fn) {
  constexpr int64_t spread_from = 8;  // below this, waking the pool costs more than the work
  if (n < spread_from) {
    for (int64_t t = 0; t < n; ++t) fn(t, 0);
    return;
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
    for (int64_t t = b; t < e; ++t) fn(t, thread);
  });
}

// out = x / sqrt(mean(x^2) + eps) * weight over N values (sum of squares in double). OUT may alias X.
inline void rms_norm(const float* x, const float* weight, int64_t n, double eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}


}  // namespace rampart::model
