// AVX-512 kernels (AVX512F/BW/VL). This file is compiled with -mavx512f -mavx512bw -mavx512vl -mfma and is
// only called after kernel_isa_supported(kernel_isa::avx512) said yes.
#include "kernels/kernels.hpp"

#if defined(__x86_64__)
// GCC 12's AVX-512 headers build some intrinsics from a deliberately undefined register (_mm512_undefined_ps),
// which -Wuninitialized reports inside every caller.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <vector>

namespace rampart::model {
namespace {

constexpr int64_t prefetch_rows = 16;

// Row stride of packed weights: padded by one cache line so rows 4 KiB apart do not share an L1 set.
inline int64_t packed_stride(int64_t cols) { return (cols + 15) / 16 * 16 + 16; }

inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// 16 consecutive weights widened to float32 (fp8: code value without its block scale). MASK selects the valid
// lanes of a partial chunk; the others read as 0.
template <dtype T>
inline __m512 widen(const std::byte* p, __mmask16 mask, bool full) {
  if constexpr (T == dtype::f32) {
    return full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask, p);
  } else if constexpr (T == dtype::bf16) {
    const __m256i v = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi16(mask, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
  } else if constexpr (T == dtype::f16) {
    const __m256i v = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi16(mask, p);
    return _mm512_cvtph_ps(v);
  } else {
    // e4m3: put the 7 exponent+mantissa bits at the top of an f32 exponent/mantissa field and rescale by
    // 2^(127-7); f32 denormals make e4m3 subnormals exact. Codes 0x7f/0xff become NaN.
    const __m128i v = full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : _mm_maskz_loadu_epi8(mask, p);
    const __m512i i = _mm512_cvtepu8_epi32(v);
    const __m512i mag = _mm512_and_si512(i, _mm512_set1_epi32(0x7f));
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(i, _mm512_set1_epi32(0x80)), 24);
    const __m512 value = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_or_si512(_mm512_slli_epi32(mag, 20), sign)),
                                       _mm512_set1_ps(0x1p120f));
    const __mmask16 nan = _mm512_cmpeq_epi32_mask(mag, _mm512_set1_epi32(0x7f));
    return _mm512_mask_mov_ps(value, nan, _mm512_set1_ps(__builtin_nanf("")));
  }
}

// NR weight rows x NT tokens. Every (row, token) accumulator sees the same chain of FMAs whatever NR and NT are.
template <dtype T, int NR, int NT>
inline void tile(const weight_matrix& w, int64_t r, const float* x, int64_t xs, float* y, int64_t ys) {
  constexpr int64_t esz = T == dtype::f32 ? 4 : (T == dtype::f8_e4m3 ? 1 : 2);
  const int64_t cols = w.cols;
  const std::byte* rows[NR];
  for (int i = 0; i < NR; ++i) rows[i] = w.row_ptr(r + i);
  __m512 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  if constexpr (T != dtype::f8_e4m3) {
    int64_t c = 0;
    // Decode reads each weight once: prefetch the rows PREFETCH_ROWS below into L2 so enough lines are in
    // flight to keep memory busy.
    const std::byte* ahead = rows[0] + prefetch_rows * cols * esz;
    for (; c + 16 <= cols; c += 16) {
      if ((c * esz) % 64 == 0)
          for (int i = 0; i < NR; ++i) _mm_prefetch(reinterpret_cast<const char*>(ahead + (i * cols + c) * esz), _MM_HINT_T1);
      __m512 wv[NR];
      for (int i = 0; i < NR; ++i) wv[i] = widen<T>(rows[i] + c * esz, 0xffff, true);
      for (int j = 0; j < NT; ++j) {
        const __m512 xv = _mm512_loadu_ps(x + j * xs + c);
        for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
      }
    }
    if (c < cols) {
      const __mmask16 m = tail_mask(cols - c);
      __m512 wv[NR];
      for (int i = 0; i < NR; ++i) wv[i] = widen<T>(rows[i] + c * esz, m, false);
      for (int j = 0; j < NT; ++j) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + j * xs + c);
        for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
      }
    }
  } else {
    for (int64_t b = 0; b * 128 < cols; ++b) {
      __m512 blk[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int j = 0; j < NT; ++j) blk[i][j] = _mm512_setzero_ps();
      const int64_t c_end = (b + 1) * 128 < cols ? (b + 1) * 128 : cols;
      for (int64_t c = b * 128; c < c_end; c += 16) {
        const bool full = c + 16 <= c_end;
        const __mmask16 m = full ? 0xffff : tail_mask(c_end - c);
        __m512 wv[NR];
        for (int i = 0; i < NR; ++i) wv[i] = widen<T>(rows[i] + c, m, full);
        for (int j = 0; j < NT; ++j) {
          const __m512 xv = full ? _mm512_loadu_ps(x + j * xs + c) : _mm512_maskz_loadu_ps(m, x + j * xs + c);
          for (int i = 0; i < NR; ++i) blk[i][j] = _mm512_fmadd_ps(wv[i], xv, blk[i][j]);
        }
      }
      for (int i = 0; i < NR; ++i) {
        const __m512 s = _mm512_set1_ps(w.row_scale(r + i, b));
        for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_fmadd_ps(blk[i][j], s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) y[j * ys + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

template <dtype T, int NR>
inline void tile_tokens(const weight_matrix& w, int64_t r, const float* x, int64_t xs, int64_t n, float* y,
                        int64_t ys) {
  constexpr int nt = T == dtype::f8_e4m3 ? 2 : 4;
  int64_t t = 0;
  for (; t + nt <= n; t += nt) tile<T, NR, nt>(w, r, x + t * xs, xs, y + t * ys, ys);
  if (n - t == 3) tile<T, NR, 3>(w, r, x + t * xs, xs, y + t * ys, ys);
  else if (n - t == 2) tile<T, NR, 2>(w, r, x + t * xs, xs, y + t * ys, ys);
  else if (n - t == 1) tile<T, NR, 1>(w, r, x + t * xs, xs, y + t * ys, ys);
}

// The same FMA chains as tile<T, NR, NT>, reading weights that were widened beforehand into PACKED (NR rows of
// COLS float32 values, fp8 still without scales). Widening once per token block instead of once per token tile
// frees the shuffle port for FMAs in prefill-sized products; the values, and so the results, are identical.
template <bool Blocked, int NR, int NT>
inline void tile_packed(const weight_matrix& w, int64_t r, const float* packed, const float* x, int64_t xs,
                        float* y, int64_t ys) {
  const int64_t cols = w.cols, ps = packed_stride(cols);
  __m512 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  if constexpr (!Blocked) {
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
      __m512 wv[NR];
      for (int i = 0; i < NR; ++i) wv[i] = _mm512_loadu_ps(packed + i * ps + c);
      for (int j = 0; j < NT; ++j) {
        const __m512 xv = _mm512_loadu_ps(x + j * xs + c);
        for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
      }
    }
    if (c < cols) {
      const __mmask16 m = tail_mask(cols - c);
      __m512 wv[NR];
      for (int i = 0; i < NR; ++i) wv[i] = _mm512_maskz_loadu_ps(m, packed + i * ps + c);
      for (int j = 0; j < NT; ++j) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + j * xs + c);
        for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
      }
    }
  } else {
    for (int64_t b = 0; b * 128 < cols; ++b) {
      __m512 blk[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int j = 0; j < NT; ++j) blk[i][j] = _mm512_setzero_ps();
      const int64_t c_end = (b + 1) * 128 < cols ? (b + 1) * 128 : cols;
      for (int64_t c = b * 128; c < c_end; c += 16) {
        const bool full = c + 16 <= c_end;
        const __mmask16 m = full ? 0xffff : tail_mask(c_end - c);
        __m512 wv[NR];
        for (int i = 0; i < NR; ++i)
          wv[i] = full ? _mm512_loadu_ps(packed + i * ps + c) : _mm512_maskz_loadu_ps(m, packed + i * ps + c);
        for (int j = 0; j < NT; ++j) {
          const __m512 xv = full ? _mm512_loadu_ps(x + j * xs + c) : _mm512_maskz_loadu_ps(m, x + j * xs + c);
          for (int i = 0; i < NR; ++i) blk[i][j] = _mm512_fmadd_ps(wv[i], xv, blk[i][j]);
        }
      }
      for (int i = 0; i < NR; ++i) {
        const __m512 s = _mm512_set1_ps(w.row_scale(r + i, b));
        for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_fmadd_ps(blk[i][j], s, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) y[j * ys + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// Token tile of NT tokens against every row of a packed group: the tile's activations stay in L1 while the
// group's packed rows stream from L2.
template <bool Blocked, int NT>
inline void packed_group(const weight_matrix& w, int64_t r, int64_t nr, const float* packed, const float* x,
                         int64_t xs, float* y, int64_t ys) {
  int64_t i = 0;
  const int64_t ps = packed_stride(w.cols);
  for (; i + 4 <= nr; i += 4) tile_packed<Blocked, 4, NT>(w, r + i, packed + i * ps, x, xs, y, ys);
  for (; i < nr; ++i) tile_packed<Blocked, 1, NT>(w, r + i, packed + i * ps, x, xs, y, ys);
}

template <bool Blocked>
inline void packed_tokens(const weight_matrix& w, int64_t r, int64_t nr, const float* packed, const float* x,
                          int64_t xs, int64_t n, float* y, int64_t ys) {
  constexpr int nt = Blocked ? 3 : 6;
  int64_t t = 0;
  for (; t + nt <= n; t += nt) packed_group<Blocked, nt>(w, r, nr, packed, x + t * xs, xs, y + t * ys, ys);
  const float* xt = x + t * xs;
  float* yt = y + t * ys;
  switch (n - t) {
    case 5: packed_group<Blocked, 5>(w, r, nr, packed, xt, xs, yt, ys); break;
    case 4: packed_group<Blocked, 4>(w, r, nr, packed, xt, xs, yt, ys); break;
    case 3: packed_group<Blocked, 3>(w, r, nr, packed, xt, xs, yt, ys); break;
    case 2: packed_group<Blocked, 2>(w, r, nr, packed, xt, xs, yt, ys); break;
    case 1: packed_group<Blocked, 1>(w, r, nr, packed, xt, xs, yt, ys); break;
    default: break;
  }
}

// Widens rows [r, r + nr) into OUT (nr x cols float32, fp8 without scales), prefetching the rows that follow.
template <dtype T>
inline void pack_rows(const weight_matrix& w, int64_t r, int64_t nr, float* out) {
  constexpr int64_t esz = T == dtype::f32 ? 4 : (T == dtype::f8_e4m3 ? 1 : 2);
  for (int64_t i = 0; i < nr; ++i) {
    const std::byte* row = w.row_ptr(r + i);
    const std::byte* ahead = row + prefetch_rows * w.cols * esz;
    float* o = out + i * packed_stride(w.cols);
    for (int64_t c = 0; c < w.cols; c += 16) {
      if ((c * esz) % 64 == 0) _mm_prefetch(reinterpret_cast<const char*>(ahead + c * esz), _MM_HINT_T1);
      const bool full = c + 16 <= w.cols;
      const __mmask16 m = full ? 0xffff : tail_mask(w.cols - c);
      _mm512_mask_storeu_ps(o + c, m, widen<T>(row + c * esz, m, full));
    }
  }
}

// bf16 weights, "pair-split" order. 32 bf16 weights (64 bytes, one cache line) widen with one instruction per
// 16: the low half of each 32-bit lane shifted up is the even column, the lane with its low half cleared is
// the odd one. Accumulator lane l of a 32-column block takes column 2l, then column 2l+1, block after block,
// and the 16 lanes are summed by _mm512_reduce_add_ps at the end. The activations must be prepared
// (prepare_bf16): each 32-column block holds its even columns, then its odd ones, zero-padded to a multiple
// of 32 columns. Every path below runs this same chain of FMAs for a (row, token) pair.
inline int64_t bf16_prepared_cols(int64_t cols) { return (cols + 31) / 32 * 32; }

inline __mmask32 tail_mask32(int64_t n) { return n >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << n) - 1u); }

void prepare_bf16(const float* x, int64_t xs, int64_t n, int64_t cols, float* out) {
  const int64_t pc = bf16_prepared_cols(cols);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * xs;
    float* o = out + t * pc;
    for (int64_t c = 0; c < pc; c += 32) {
      const int64_t left = cols - c;
      const __m512 a = left >= 16 ? _mm512_loadu_ps(xr + c) : _mm512_maskz_loadu_ps(tail_mask(left), xr + c);
      const __m512 b = left >= 32 ? _mm512_loadu_ps(xr + c + 16)
                       : left > 16 ? _mm512_maskz_loadu_ps(tail_mask(left - 16), xr + c + 16)
                                   : _mm512_setzero_ps();
      _mm512_storeu_ps(o + c, _mm512_permutex2var_ps(a, even, b));
      _mm512_storeu_ps(o + c + 16, _mm512_permutex2var_ps(a, odd, b));
    }
  }
}

// One 32-column block of tile_bf16: the even columns of every row against the tokens, then the odd ones. The
// rows are loaded twice (the second load hits L1) so the accumulators, four rows and one activation vector
// fit the 32 registers.
template <int NR, int NT, bool Full>
inline void bf16_block(const std::byte* const* rows, int64_t c, __mmask32 m, const float* xp, int64_t xps,
                       __m512 (&acc)[NR][NT]) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  auto load = [&](int i) {
    return Full ? _mm512_loadu_si512(rows[i] + c * 2) : _mm512_maskz_loadu_epi16(m, rows[i] + c * 2);
  };
  __m512 wv[NR];
  for (int i = 0; i < NR; ++i) wv[i] = _mm512_castsi512_ps(_mm512_slli_epi32(load(i), 16));
  for (int j = 0; j < NT; ++j) {
    const __m512 xv = _mm512_loadu_ps(xp + j * xps + c);
    for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
  }
  for (int i = 0; i < NR; ++i) wv[i] = _mm512_castsi512_ps(_mm512_and_si512(load(i), high));
  for (int j = 0; j < NT; ++j) {
    const __m512 xv = _mm512_loadu_ps(xp + j * xps + c + 16);
    for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
  }
}

// NR rows x NT tokens of bf16 weights against prepared activations XP (row stride XPS).
template <int NR, int NT>
inline void tile_bf16(const weight_matrix& w, int64_t r, const float* xp, int64_t xps, float* y, int64_t ys) {
  const int64_t cols = w.cols;
  const std::byte* rows[NR];
  for (int i = 0; i < NR; ++i) rows[i] = w.row_ptr(r + i);
  // Decode reads each weight once: prefetch the rows PREFETCH_ROWS below into L2.
  const std::byte* ahead = rows[0] + prefetch_rows * cols * 2;
  __m512 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    for (int i = 0; i < NR; ++i) _mm_prefetch(reinterpret_cast<const char*>(ahead + (i * cols + c) * 2), _MM_HINT_T1);
    bf16_block<NR, NT, true>(rows, c, 0, xp, xps, acc);
  }
  if (c < cols) bf16_block<NR, NT, false>(rows, c, tail_mask32(cols - c), xp, xps, acc);
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < NT; ++j) y[j * ys + r + i] = _mm512_reduce_add_ps(acc[i][j]);
}

// Rows [r, r + nr) against NT tokens: the tile's activations stay in L1 while the rows stream past.
template <int NT>
inline void bf16_rows(const weight_matrix& w, int64_t r, int64_t nr, const float* xp, int64_t xps, float* y,
                      int64_t ys) {
  int64_t i = 0;
  for (; i + 4 <= nr; i += 4) tile_bf16<4, NT>(w, r + i, xp, xps, y, ys);
  for (; i < nr; ++i) tile_bf16<1, NT>(w, r + i, xp, xps, y, ys);
}

void gemm_bf16_prepared(const weight_matrix& w, const float* xp, int64_t xps, int64_t n_tok, float* y, int64_t ys,
                        int64_t r_begin, int64_t r_end) {
  // Row blocks of about 256 KiB stay in L2 while every 6-token tile of a 72-token block passes over them.
  constexpr int64_t token_block = 72;
  const int64_t row_block = std::max<int64_t>(4, (int64_t{256} * 1024 / std::max<int64_t>(w.cols * 2, 1)) / 4 * 4);
  for (int64_t t0 = 0; t0 < n_tok; t0 += token_block) {
    const int64_t nt = std::min(token_block, n_tok - t0);
    for (int64_t r = r_begin; r < r_end; r += row_block) {
      const int64_t nr = std::min(row_block, r_end - r);
      int64_t t = t0;
      for (; t + 6 <= t0 + nt; t += 6) bf16_rows<6>(w, r, nr, xp + t * xps, xps, y + t * ys, ys);
      const float* xt = xp + t * xps;
      float* yt = y + t * ys;
      switch (t0 + nt - t) {
        case 5: bf16_rows<5>(w, r, nr, xt, xps, yt, ys); break;
        case 4: bf16_rows<4>(w, r, nr, xt, xps, yt, ys); break;
        case 3: bf16_rows<3>(w, r, nr, xt, xps, yt, ys); break;
        case 2: bf16_rows<2>(w, r, nr, xt, xps, yt, ys); break;
        case 1: bf16_rows<1>(w, r, nr, xt, xps, yt, ys); break;
        default: break;
      }
    }
  }
}

template <dtype T>
void gemm_rows_t(const weight_matrix& w, const float* x, int64_t xs, int64_t n_tok, float* y, int64_t ys,
                 int64_t r_begin, int64_t r_end) {
  // Token blocks keep the activations of one block in L2 while every weight row passes over them; 72 is a
  // multiple of every token-tile width. Many tokens: rows are widened once per block into a group of about
  // 128 KiB (in L2), and each token tile runs over the whole group. Below PACK_MIN_TOKENS tokens widening in
  // the tile is cheaper than writing and re-reading the widened rows (measured: 2-2.7x faster at 4-12 tokens,
  // the experts' share of a decode batch).
  constexpr int64_t token_block = 72;
  constexpr int64_t pack_min_tokens = 16;
  constexpr bool blocked = T == dtype::f8_e4m3;
  const int64_t group = std::max<int64_t>(4, (int64_t{128} * 1024 / std::max<int64_t>(w.cols, 1)) / 4 * 4);
  thread_local std::vector<float> packed;
  if (n_tok >= pack_min_tokens && packed.size() < static_cast<size_t>(group * packed_stride(w.cols)))
    packed.resize(static_cast<size_t>(group * packed_stride(w.cols)));
  for (int64_t t0 = 0; t0 < n_tok; t0 += token_block) {
    const int64_t nt = n_tok - t0 < token_block ? n_tok - t0 : token_block;
    const float* xb = x + t0 * xs;
    float* yb = y + t0 * ys;
    if (nt >= pack_min_tokens) {
      for (int64_t r = r_begin; r < r_end; r += group) {
        const int64_t nr = std::min(group, r_end - r);
        pack_rows<T>(w, r, nr, packed.data());
        packed_tokens<blocked>(w, r, nr, packed.data(), xb, xs, nt, yb, ys);
      }
    } else {
      int64_t r = r_begin;
      for (; r + 4 <= r_end; r += 4) tile_tokens<T, 4>(w, r, xb, xs, nt, yb, ys);
      for (; r < r_end; ++r) tile_tokens<T, 1>(w, r, xb, xs, nt, yb, ys);
    }
  }
}

// ---- bf16 in the panels16 layout (kernels.hpp) ----
// Accumulator acc[t][p] holds rows 16p..16p+15 of token t; each line widens into the even column's 16 values
// (low halves shifted up) and the odd column's (low halves cleared), and every accumulator takes the even
// column, then the odd one, line after line: one FMA chain over the columns in order for every (row, token),
// whatever NT and NP are. One broadcast per (token, column) of X: in its natural layout (XS apart) for small
// tiles, and for tiles of 7+ tokens column-major (Cols: X[c * NT + t], one pointer with constant offsets, which
// leaves the general registers free; twelve token pointers would not fit).
// Bytes ahead in each of a tile's NP panel streams: 128 lines in flight in all, as many as one core keeps
// outstanding, so a tile reading its panels from memory (batch-1 decode, the first tile over a block) streams at
// the core's full rate whether it walks 8 panels side by side or 1.
constexpr int64_t panel_prefetch_lines = 128;
constexpr __mmask32 high_halves = 0xaaaaaaaau;  // the odd 16-bit lanes: each 32-bit lane's upper half

// AHEAD (0: none): also pull the panels that many bytes further on into L2, line by line as this tile goes.
template <int NT, int NP, bool Cols>
inline void panel_tile(const std::byte* panels, int64_t pbytes, int64_t cols, const float* x, int64_t xs, float* y,
                       int64_t ys, int64_t row, int64_t r_begin, int64_t r_end, int64_t ahead) {
  // Column C of token T.
  const auto at = [x, xs](int64_t c, int t) { return Cols ? x[c * NT + t] : x[t * xs + c]; };
  __m512 acc[NT][NP];
  for (int t = 0; t < NT; ++t)
    for (int p = 0; p < NP; ++p) acc[t][p] = _mm512_setzero_ps();
  const int64_t full = cols / 2;
  const std::byte* line = panels;
  for (int64_t j = 0; j < full; ++j, line += 64) {
    __m512i v[NP];
    for (int p = 0; p < NP; ++p) {
      _mm_prefetch(reinterpret_cast<const char*>(line + p * pbytes + 64 * panel_prefetch_lines / NP), _MM_HINT_T0);
      if (ahead != 0) _mm_prefetch(reinterpret_cast<const char*>(line + p * pbytes + ahead), _MM_HINT_T1);
      v[p] = _mm512_loadu_si512(line + p * pbytes);
    }
    __m512 w[NP];
    for (int p = 0; p < NP; ++p) w[p] = _mm512_castsi512_ps(_mm512_slli_epi32(v[p], 16));
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_set1_ps(at(2 * j, t));
      for (int p = 0; p < NP; ++p) acc[t][p] = _mm512_fmadd_ps(w[p], xv, acc[t][p]);
    }
    for (int p = 0; p < NP; ++p) w[p] = _mm512_castsi512_ps(_mm512_maskz_mov_epi16(high_halves, v[p]));
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_set1_ps(at(2 * j + 1, t));
      for (int p = 0; p < NP; ++p) acc[t][p] = _mm512_fmadd_ps(w[p], xv, acc[t][p]);
    }
  }
  if (cols % 2 != 0) {  // the last line holds one column
    for (int p = 0; p < NP; ++p) {
      const __m512 w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(line + p * pbytes), 16));
      for (int t = 0; t < NT; ++t) acc[t][p] = _mm512_fmadd_ps(w, _mm512_set1_ps(at(2 * full, t)), acc[t][p]);
    }
  }
  for (int p = 0; p < NP; ++p) {
    const int64_t r0 = row + 16 * p;
    const int64_t lo = std::max<int64_t>(r_begin - r0, 0), hi = std::min<int64_t>(r_end - r0, 16);
    if (lo >= hi) continue;
    const __mmask16 m = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    for (int t = 0; t < NT; ++t) _mm512_mask_storeu_ps(y + t * ys + r0, m, acc[t][p]);
  }
}

// Panels [p_begin, p_end) of W (panel 0 at ROWS0 = row 0 of the view) against NT tokens, NP panels at a time.
template <int NT, int NP>
inline void panel_span(const weight_matrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t xs,
                       float* y, int64_t ys, int64_t r_begin, int64_t r_end, int64_t ahead) {
  constexpr bool cols = NT >= 7;
  const int64_t pb = panel_bytes(w.cols);
  int64_t p = p_begin;
  for (; p + NP <= p_end; p += NP)
    panel_tile<NT, NP, cols>(w.data + p * pb, pb, w.cols, x, xs, y, ys, 16 * p, r_begin, r_end, ahead);
  for (; p < p_end; ++p)
    panel_tile<NT, 1, cols>(w.data + p * pb, pb, w.cols, x, xs, y, ys, 16 * p, r_begin, r_end, ahead);
}

// NT tokens: enough panels at once for at least 8 independent accumulators (FMA latency x 2 ports), at most
// 24 (with two widened lines and a broadcast they fill the 32 registers). 13-16 tokens take one panel: the
// widening (two ALU operations per line, on the FMA ports) is then shared by 32 FMAs instead of 24, and the 32
// tokens of a full decode batch run as two tiles instead of 12 + 12 + 8 (lm_head ~5-10% faster).
template <int NT>
inline void panel_tokens(const weight_matrix& w, int64_t p_begin, int64_t p_end, const float* x, int64_t xs,
                         float* y, int64_t ys, int64_t r_begin, int64_t r_end, int64_t ahead = 0) {
  constexpr int np = NT == 1 ? 8 : (NT <= 6 ? 4 : (NT <= 12 ? 2 : 1));
  panel_span<NT, np>(w, p_begin, p_end, x, xs, y, ys, r_begin, r_end, ahead);
}

// OUT[c * NT + t] = X[t * XS + c] for the NT tokens of one tile: one gather per column.
template <int NT>
inline void transpose_tile(const float* x, int64_t xs, int64_t cols, float* out) {
  static_assert(NT <= 16, "a column of the tile is one vector");
  if (xs > std::numeric_limits<int32_t>::max() / 16) {  // offsets past a gather's 32-bit index
    for (int64_t c = 0; c < cols; ++c)
      for (int t = 0; t < NT; ++t) out[c * NT + t] = x[t * xs + c];
    return;
  }
  const __mmask16 m = tail_mask(NT);
  const __m512i index = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(xs)));
  for (int64_t c = 0; c < cols; ++c)
    _mm512_mask_storeu_ps(out + c * NT, m, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, index, x + c, 4));
}

// F(std::integral_constant<int, N>{}) for the run-time token count N in [1, NT]; nothing for other counts.
template <int NT, class F>
inline void with_token_count(int64_t n, F&& f) {
  if constexpr (NT >= 1) {
    if (n == NT) return f(std::integral_constant<int, NT>{});
    with_token_count<NT - 1>(n, f);
  }
}

// Tokens rearranged at a time: bounds the per-thread copy (96 x cols floats) however long a prefill step is.
constexpr int64_t panel_group_tokens = 96;

void gemm_panels16(const weight_matrix& w, const float* x, int64_t xs, int64_t n_tok, float* y, int64_t ys,
                   int64_t r_begin, int64_t r_end) {
  constexpr int nt = 16;
  const int64_t cols = w.cols;
  thread_local std::vector<float> columns;  // the group's tiles of 7+ tokens, column-major per tile
  // Row blocks of about 256 KiB stay in L2 while every token tile passes over them; each tile's activations
  // stay in L1/L2 while the block's panels stream past.
  const int64_t p_first = r_begin / 16, p_last = (r_end + 15) / 16;
  const int64_t block = std::max<int64_t>(1, int64_t{256} * 1024 / panel_bytes(cols));
  for (int64_t g0 = 0; g0 < n_tok; g0 += panel_group_tokens) {
    const int64_t gn = std::min(panel_group_tokens, n_tok - g0), rest = gn % nt, full = gn - rest;
    const float* xg = x + g0 * xs;
    float* yg = y + g0 * ys;
    if (gn >= 7 && columns.size() < static_cast<size_t>(panel_group_tokens * cols))
      columns.resize(static_cast<size_t>(panel_group_tokens * cols));
    for (int64_t t = 0; t < full; t += nt) transpose_tile<nt>(xg + t * xs, xs, cols, &columns[t * cols]);
    const float* xr = xg + full * xs;  // the rest: column-major if 7+ tokens, else as it is
    with_token_count<nt - 1>(rest, [&](auto n) {
      if constexpr (n >= 7) transpose_tile<n>(xr, xs, cols, &columns[full * cols]);
    });
    if (rest >= 7) xr = &columns[full * cols];
    float* yr = yg + full * ys;
    for (int64_t p0 = p_first; p0 < p_last; p0 += block) {
      const int64_t p1 = std::min(p_last, p0 + block);
      // The first tile over a block reads it from memory; the second pulls the next block into L2 meanwhile.
      const int64_t next = p1 < p_last ? (p1 - p0) * panel_bytes(cols) : 0;
      for (int64_t t = 0; t < full; t += nt)
        panel_tokens<nt>(w, p0, p1, &columns[t * cols], 0, yg + t * ys, ys, r_begin, r_end, t == nt ? next : 0);
      with_token_count<nt - 1>(rest, [&](auto n) { panel_tokens<n>(w, p0, p1, xr, xs, yr, ys, r_begin, r_end); });
    }
  }
}

weight_layout preferred_layout_avx512(const weight_matrix& w) {
  return w.type == dtype::bf16 ? weight_layout::panels16 : weight_layout::natural;
}

int64_t prepared_cols_avx512(const weight_matrix& w) {
  return w.type == dtype::bf16 && w.layout == weight_layout::natural ? bf16_prepared_cols(w.cols) : 0;
}

void prepare_x_avx512(const weight_matrix& w, const float* x, int64_t xs, int64_t n, float* out) {
  if (prepared_cols_avx512(w) > 0) prepare_bf16(x, xs, n, w.cols, out);
}

void gemm_rows_prepared_avx512(const weight_matrix& w, const float* xp, int64_t xps, int64_t n_tok, float* y,
                               int64_t ys, int64_t r_begin, int64_t r_end);

void gemm_rows_avx512(const weight_matrix& w, const float* x, int64_t xs, int64_t n_tok, float* y, int64_t ys,
                      int64_t r_begin, int64_t r_end) {
  if (w.layout == weight_layout::panels16) return gemm_panels16(w, x, xs, n_tok, y, ys, r_begin, r_end);
  switch (w.type) {
    case dtype::f32: return gemm_rows_t<dtype::f32>(w, x, xs, n_tok, y, ys, r_begin, r_end);
    case dtype::bf16: {
      thread_local std::vector<float> prepared;
      const int64_t pc = bf16_prepared_cols(w.cols);
      if (prepared.size() < static_cast<size_t>(n_tok * pc)) prepared.resize(static_cast<size_t>(n_tok * pc));
      prepare_bf16(x, xs, n_tok, w.cols, prepared.data());
      return gemm_bf16_prepared(w, prepared.data(), pc, n_tok, y, ys, r_begin, r_end);
    }
    case dtype::f16: return gemm_rows_t<dtype::f16>(w, x, xs, n_tok, y, ys, r_begin, r_end);
    case dtype::f8_e4m3: return gemm_rows_t<dtype::f8_e4m3>(w, x, xs, n_tok, y, ys, r_begin, r_end);
  }
}

template <dtype T>
void load_row_t(const weight_matrix& w, int64_t r, float* out) {
  constexpr int64_t esz = T == dtype::f32 ? 4 : (T == dtype::f8_e4m3 ? 1 : 2);
  const std::byte* row = w.row_ptr(r);
  for (int64_t c = 0; c < w.cols; c += 16) {
    const bool full = c + 16 <= w.cols;
    const __mmask16 m = full ? 0xffff : tail_mask(w.cols - c);
    __m512 v = widen<T>(row + c * esz, m, full);
    if constexpr (T == dtype::f8_e4m3) v = _mm512_mul_ps(v, _mm512_set1_ps(w.row_scale(r, c / 128)));
    _mm512_mask_storeu_ps(out + c, m, v);
  }
}

void gemm_rows_prepared_avx512(const weight_matrix& w, const float* xp, int64_t xps, int64_t n_tok, float* y,
                               int64_t ys, int64_t r_begin, int64_t r_end) {
  if (prepared_cols_avx512(w) > 0) return gemm_bf16_prepared(w, xp, xps, n_tok, y, ys, r_begin, r_end);
  gemm_rows_avx512(w, xp, xps, n_tok, y, ys, r_begin, r_end);
}

void load_row_avx512(const weight_matrix& w, int64_t r, float* out) {
  if (w.layout == weight_layout::panels16) {
    for (int64_t c = 0; c < w.cols; ++c) out[c] = weight_at(w, r, c);
    return;
  }
  switch (w.type) {
    case dtype::f32: return load_row_t<dtype::f32>(w, r, out);
    case dtype::bf16: return load_row_t<dtype::bf16>(w, r, out);
    case dtype::f16: return load_row_t<dtype::f16>(w, r, out);
    case dtype::f8_e4m3: return load_row_t<dtype::f8_e4m3>(w, r, out);
  }
}

float dot_avx512(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void axpy_avx512(float a, const float* x, float* y, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    const __m512 r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, r);
  }
}

// exp(x) for 16 lanes: x = k ln2 + r with |r| <= ln2/2 (ln2 in two parts), exp(r) by its degree-7 Taylor
// polynomial (truncation below 1e-8 relative), times 2^k by scalef (which overflows to inf and underflows to 0
// as exp does). NaN stays NaN.
inline __m512 exp16(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-200.0f)), _mm512_set1_ps(200.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(1.42860682030941723212e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 e = _mm512_scalef_ps(p, k);
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

void silu_mul_avx512(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void softmax_avx512(float* v, int64_t n, float scale) {
  if (n <= 0) return;
  const __m512 sc = _mm512_set1_ps(scale);
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), sc));
  }
  const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    const __m512 e = exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, v + i), sc, top));
    sum = _mm512_mask_add_ps(sum, m, sum, e);
    _mm512_mask_storeu_ps(v + i, m, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? 0xffff : tail_mask(n - i);
    _mm512_mask_storeu_ps(v + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), inv));
  }
}

// R[i] lane j <- R[j] lane i, in registers.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Each 128-bit lane of r[i] is now a 4x4 block transposed; move the 128-bit lanes into place.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

// NK keys' scores for up to 16 heads: acc[i] lane h = chain over c of qt[c][h] * row_i[c]. Meanwhile pulls the
// next N_NEXT rows (NEXT) into L1 a line per 16 columns, so a sequence's keys (scattered over its cache blocks, last read a step ago) arrive before they are needed.
template <int NK>
inline void mqa_scores(const float* qt, const float* const* rows, int64_t kw, float* sc, const float* const* next,
                       int64_t n_next) {
  __m512 acc[NK];
  for (int i = 0; i < NK; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < kw; ++c) {
    if ((c & 15) == 0)
      for (int64_t i = 0; i < n_next; ++i) _mm_prefetch(reinterpret_cast<const char*>(next[i] + c), _MM_HINT_T0);
    const __m512 qv = _mm512_loadu_ps(qt + c * 16);
    for (int i = 0; i < NK; ++i) acc[i] = _mm512_fmadd_ps(qv, _mm512_set1_ps(rows[i][c]), acc[i]);
  }
  for (int i = 0; i < NK; ++i) _mm512_storeu_ps(sc + i * 16, acc[i]);
}

// Columns [c0, c0 + NC) of the weighted sum for up to 16 heads: acc[i] lane h = chain over s of p[s][h] *
// rows[s][c0 + i]; written to OUT row h (h < HN).
template <int NC>
inline void mqa_weighted(const float* p, const float* const* rows, int64_t n, int64_t c0, int64_t hn, float* out,
                         int64_t os) {
  __m512 acc[NC];
  for (int i = 0; i < NC; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n; ++s) {
    const __m512 pv = _mm512_loadu_ps(p + s * 16);
    const float* r = rows[s] + c0;
    for (int i = 0; i < NC; ++i) acc[i] = _mm512_fmadd_ps(pv, _mm512_set1_ps(r[i]), acc[i]);
  }
  if constexpr (NC == 16) {  // lane h of acc[i] is (head h, column i): transpose into one row per head
    transpose16(acc);
    for (int64_t h = 0; h < hn; ++h) _mm512_storeu_ps(out + h * os + c0, acc[h]);
  } else {
    alignas(64) float t[NC][16];
    for (int i = 0; i < NC; ++i) _mm512_store_ps(t[i], acc[i]);
    for (int64_t h = 0; h < hn; ++h)
      for (int i = 0; i < NC; ++i) out[h * os + c0 + i] = t[i][h];
  }
}

void mqa_attend_avx512(const float* q, int64_t qs, int64_t n_heads, const float* const* rows, int64_t n,
                       int64_t kw, int64_t width, float scale, float* scratch, float* out, int64_t os) {
  if (n <= 0) return;
  float* qt = scratch;           // [kw][16]: the group's queries, column-major
  float* sc = scratch + kw * 16;  // [n][16]: scores, then probabilities
  for (int64_t s = 0; s < std::min<int64_t>(n, 12); ++s)
    for (int64_t c = 0; c < kw; c += 16) _mm_prefetch(reinterpret_cast<const char*>(rows[s] + c), _MM_HINT_T0);
  for (int64_t h0 = 0; h0 < n_heads; h0 += 16) {
    const int64_t hn = std::min<int64_t>(16, n_heads - h0);
    for (int64_t c0 = 0; c0 < kw; c0 += 16) {  // 16 x 16 blocks of the group's queries, transposed in registers
      const int64_t cn = std::min<int64_t>(16, kw - c0);
      __m512 r[16];
      for (int64_t l = 0; l < 16; ++l)
        r[l] = l < hn ? _mm512_maskz_loadu_ps(tail_mask(cn), q + (h0 + l) * qs + c0) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t i = 0; i < cn; ++i) _mm512_storeu_ps(qt + (c0 + i) * 16, r[i]);
    }
    int64_t s = 0;
    // The first group's scores read the rows from memory; the first tile's are requested before the queries'
    // transposition above, each tile then requests the next one's.
    const int64_t ahead = h0 == 0 ? 12 : 0;
    const auto next = [&](int64_t from) { return std::min<int64_t>(ahead, std::max<int64_t>(n - from, 0)); };
    for (; s + 12 <= n; s += 12) mqa_scores<12>(qt, rows + s, kw, sc + s * 16, rows + s + 12, next(s + 12));
    for (; s + 4 <= n; s += 4) mqa_scores<4>(qt, rows + s, kw, sc + s * 16, rows + s + 4, next(s + 4));
    for (; s < n; ++s) mqa_scores<1>(qt, rows + s, kw, sc + s * 16, rows + s + 1, next(s + 1));
    // Softmax over s, all heads of the group in one vector.
    const __m512 scv = _mm512_set1_ps(scale);
    __m512 mx = _mm512_mul_ps(_mm512_loadu_ps(sc), scv);
    for (s = 1; s < n; ++s) mx = _mm512_max_ps(mx, _mm512_mul_ps(_mm512_loadu_ps(sc + s * 16), scv));
    __m512 sum = _mm512_setzero_ps();
    for (s = 0; s < n; ++s) {
      const __m512 e = exp16(_mm512_fmsub_ps(_mm512_loadu_ps(sc + s * 16), scv, mx));
      sum = _mm512_add_ps(sum, e);
      _mm512_storeu_ps(sc + s * 16, e);
    }
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    for (s = 0; s < n; ++s) _mm512_storeu_ps(sc + s * 16, _mm512_mul_ps(_mm512_loadu_ps(sc + s * 16), inv));
    float* o = out + h0 * os;
    int64_t c = 0;
    for (; c + 16 <= width; c += 16) mqa_weighted<16>(sc, rows, n, c, hn, o, os);
    for (; c + 4 <= width; c += 4) mqa_weighted<4>(sc, rows, n, c, hn, o, os);
    for (; c < width; ++c) mqa_weighted<1>(sc, rows, n, c, hn, o, os);
  }
}

// NO outputs x 128 columns starting at C0 (masked past WIDTH), accumulators held in registers over all rows.
template <int NO>
inline void weighted_tile(const float* const* rows, int64_t n_rows, const float* p, int64_t ps, int64_t c0,
                          int64_t width, float* out, int64_t os) {
  __mmask16 m[8];
  for (int ch = 0; ch < 8; ++ch) {
    const int64_t left = width - (c0 + 16 * ch);
    m[ch] = left >= 16 ? 0xffff : (left <= 0 ? 0 : tail_mask(left));
  }
  __m512 acc[NO][8];
  for (int o = 0; o < NO; ++o)
    for (int ch = 0; ch < 8; ++ch) acc[o][ch] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_rows; ++s) {
    const float* r = rows[s] + c0;
    __m512 pv[NO];
    for (int o = 0; o < NO; ++o) pv[o] = _mm512_set1_ps(p[o * ps + s]);
    for (int ch = 0; ch < 8; ++ch) {
      const __m512 rv = _mm512_maskz_loadu_ps(m[ch], r + 16 * ch);
      for (int o = 0; o < NO; ++o) acc[o][ch] = _mm512_fmadd_ps(pv[o], rv, acc[o][ch]);
    }
  }
  for (int o = 0; o < NO; ++o)
    for (int ch = 0; ch < 8; ++ch) _mm512_mask_storeu_ps(out + o * os + c0 + 16 * ch, m[ch], acc[o][ch]);
}

void weighted_rows_avx512(const float* const* rows, int64_t n_rows, const float* p, int64_t ps, int64_t n_out,
                          int64_t width, float* out, int64_t os) {
  for (int64_t c0 = 0; c0 < width; c0 += 128) {
    int64_t o = 0;
    for (; o + 2 <= n_out; o += 2) weighted_tile<2>(rows, n_rows, p + o * ps, ps, c0, width, out + o * os, os);
    for (; o < n_out; ++o) weighted_tile<1>(rows, n_rows, p + o * ps, ps, c0, width, out + o * os, os);
  }
}

}  // namespace

const kernel_ops& kernels_avx512() {
  static const kernel_ops ops{kernel_isa::avx512,      "avx512",          gemm_rows_avx512,
                              load_row_avx512,         dot_avx512,        axpy_avx512,
                              weighted_rows_avx512,    prepared_cols_avx512, prepare_x_avx512,
                              gemm_rows_prepared_avx512, preferred_layout_avx512, silu_mul_avx512,
                              softmax_avx512,          mqa_attend_avx512};
  return ops;
}

}  // namespace rampart::model
#endif
