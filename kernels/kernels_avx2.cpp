// AVX2 + FMA + F16C kernels. This file is compiled with -mavx2 -mfma -mf16c and is only called after
// kernel_isa_supported(kernel_isa::avx2) said yes.
#include "kernels/kernels.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstring>

namespace rampart::model {
namespace {

template <dtype T>
constexpr int64_t esize() {
  return T == dtype::f32 ? 4 : (T == dtype::f8_e4m3 ? 1 : 2);
}

// 8 consecutive weights widened to float32 (fp8 without its block scale).
template <dtype T>
inline __m256 widen8(const std::byte* p) {
  if constexpr (T == dtype::f32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else if constexpr (T == dtype::bf16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
  } else if constexpr (T == dtype::f16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    // Same bit construction as the AVX-512 path: exact for normals and subnormals, 0x7f/0xff -> NaN.
    const __m256i i = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m256i mag = _mm256_and_si256(i, _mm256_set1_epi32(0x7f));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x80)), 24);
    const __m256 value = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_slli_epi32(mag, 20), sign)),
                                       _mm256_set1_ps(0x1p120f));
    const __m256 nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7f)));
    return _mm256_blendv_ps(value, _mm256_set1_ps(__builtin_nanf("")), nan);
  }
}

// A partial chunk of N < 8 weights, zero padded (copied so no byte past the row is read).
template <dtype T>
inline __m256 widen_tail(const std::byte* p, int64_t n) {
  alignas(32) std::byte buf[32] = {};
  std::memcpy(buf, p, static_cast<size_t>(n * esize<T>()));
  return widen8<T>(buf);
}

inline __m256 load_tail(const float* p, int64_t n) {
  alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(float));
  return _mm256_load_ps(buf);
}

inline float reduce(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One span [c0, c1) of NR rows x NT tokens accumulated into ACC (fixed chain per accumulator).
template <dtype T, int NR, int NT>
inline void span(const std::byte* const* rows, const float* x, int64_t xs, int64_t c0, int64_t c1,
                 __m256 (&acc)[NR][NT]) {
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) {
    __m256 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = widen8<T>(rows[i] + c * esize<T>());
    for (int j = 0; j < NT; ++j) {
      const __m256 xv = _mm256_loadu_ps(x + j * xs + c);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  if (c < c1) {
    __m256 wv[NR];
    for (int i = 0; i < NR; ++i) wv[i] = widen_tail<T>(rows[i] + c * esize<T>(), c1 - c);
    for (int j = 0; j < NT; ++j) {
      const __m256 xv = load_tail(x + j * xs + c, c1 - c);
      for (int i = 0; i < NR; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
}

template <dtype T, int NR, int NT>
inline void tile(const weight_matrix& w, int64_t r, const float* x, int64_t xs, float* y, int64_t ys) {
  const std::byte* rows[NR];
  for (int i = 0; i < NR; ++i) rows[i] = w.row_ptr(r + i);
  __m256 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_setzero_ps();
  if constexpr (T != dtype::f8_e4m3) {
    span<T, NR, NT>(rows, x, xs, 0, w.cols, acc);
  } else {
    for (int64_t b = 0; b * 128 < w.cols; ++b) {
      __m256 blk[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int j = 0; j < NT; ++j) blk[i][j] = _mm256_setzero_ps();
      span<T, NR, NT>(rows, x, xs, b * 128, (b + 1) * 128 < w.cols ? (b + 1) * 128 : w.cols, blk);
      for (int i = 0; i < NR; ++i) {
        const __m256 s = _mm256_set1_ps(w.row_scale(r + i, b));
        for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_fmadd_ps(blk[i][j], s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) y[j * ys + r + i] = reduce(acc[i][j]);
}

template <dtype T, int NR>
inline void tile_tokens(const weight_matrix& w, int64_t r, const float* x, int64_t xs, int64_t n, float* y,
                        int64_t ys) {
  constexpr int nt = T == dtype::f8_e4m3 ? 1 : 2;
  int64_t t = 0;
  for (; t + nt <= n; t += nt) tile<T, NR, nt>(w, r, x + t * xs, xs, y + t * ys, ys);
  for (; t < n; ++t) tile<T, NR, 1>(w, r, x + t * xs, xs, y + t * ys, ys);
}

template <dtype T>
void gemm_rows_t(const weight_matrix& w, const float* x, int64_t xs, int64_t n_tok, float* y, int64_t ys,
                 int64_t r_begin, int64_t r_end) {
  constexpr int64_t token_block = 64;
  for (int64_t t0 = 0; t0 < n_tok; t0 += token_block) {
    const int64_t nt = n_tok - t0 < token_block ? n_tok - t0 : token_block;
    int64_t r = r_begin;
    for (; r + 4 <= r_end; r += 4) tile_tokens<T, 4>(w, r, x + t0 * xs, xs, nt, y + t0 * ys, ys);
    for (; r < r_end; ++r) tile_tokens<T, 1>(w, r, x + t0 * xs, xs, nt, y + t0 * ys, ys);
  }
}

void gemm_rows_avx2(const weight_matrix& w, const float* x, int64_t xs, int64_t n_tok, float* y, int64_t ys,
                    int64_t r_begin, int64_t r_end) {
  switch (w.type) {
    case dtype::f32: return gemm_rows_t<dtype::f32>(w, x, xs, n_tok, y, ys, r_begin, r_end);
    case dtype::bf16: return gemm_rows_t<dtype::bf16>(w, x, xs, n_tok, y, ys, r_begin, r_end);
    case dtype::f16: return gemm_rows_t<dtype::f16>(w, x, xs, n_tok, y, ys, r_begin, r_end);
    case dtype::f8_e4m3: return gemm_rows_t<dtype::f8_e4m3>(w, x, xs, n_tok, y, ys, r_begin, r_end);
  }
}

template <dtype T>
void load_row_t(const weight_matrix& w, int64_t r, float* out) {
  const std::byte* row = w.row_ptr(r);
  for (int64_t c = 0; c < w.cols; c += 8) {
    const int64_t n = w.cols - c < 8 ? w.cols - c : 8;
    __m256 v = n == 8 ? widen8<T>(row + c * esize<T>()) : widen_tail<T>(row + c * esize<T>(), n);
    if constexpr (T == dtype::f8_e4m3) v = _mm256_mul_ps(v, _mm256_set1_ps(w.row_scale(r, c / 128)));
    alignas(32) float buf[8];
    _mm256_store_ps(buf, v);
    std::memcpy(out + c, buf, static_cast<size_t>(n) * sizeof(float));
  }
}

void load_row_avx2(const weight_matrix& w, int64_t r, float* out) {
  switch (w.type) {
    case dtype::f32: return load_row_t<dtype::f32>(w, r, out);
    case dtype::bf16: return load_row_t<dtype::bf16>(w, r, out);
    case dtype::f16: return load_row_t<dtype::f16>(w, r, out);
    case dtype::f8_e4m3: return load_row_t<dtype::f8_e4m3>(w, r, out);
  }
}

float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i < n; i += 8) {
    const int64_t m = n - i < 8 ? n - i : 8;
    acc0 = _mm256_fmadd_ps(load_tail(a + i, m), load_tail(b + i, m), acc0);
  }
  return reduce(_mm256_add_ps(acc0, acc1));
}

void axpy_avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = __builtin_fmaf(a, x[i], y[i]);
}

}  // namespace

const kernel_ops& kernels_avx2() {
  static const kernel_ops ops{kernel_isa::avx2,       "avx2",       gemm_rows_avx2,
                              load_row_avx2,         dot_avx2,     axpy_avx2,
                              weighted_rows_portable, natural_layout_cols, natural_layout_prepare,
                              gemm_rows_avx2,         natural_layout_preferred, silu_mul_portable,
                              softmax_portable,       nullptr};
  return ops;
}

}  // namespace rampart::model
#endif
