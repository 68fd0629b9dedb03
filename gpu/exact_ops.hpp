// The operations of the exact forward pass, each a function of one output index (one element, one token or one
// attention row): a GPU runs them one thread per index (gpu/cuda_exec.cuh), the host reference runs them in a
// loop (gpu/host_exec.hpp). The same source is compiled for both, so every op is checked on any machine against
// the CPU engine and the golden fixtures, and a GPU run differs only in where the loop runs.
//
// Arithmetic is float32 with float32 weights widened from their stored dtype, dot products are fmaf chains in
// index order, and RMSNorm sums squares in double, as the CPU engine does (kernels/kernels_parallel.hpp). nvcc
// builds them with --fmad=false, so that only the explicit fmaf calls fuse, as on the host; the device's expf
// and exp2f still differ from the C library's by an ulp or two, so the device matches the host within a
// tolerance, not bit for bit.
// Every output is computed by one thread from its inputs in a fixed order, so a token's results do not depend
// on the batch it is in.
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#include "base/host_device.hpp"
#include "kernels/tensor.hpp"
#include "model/router_row.hpp"

namespace rampart::gpu {

RAMPART_HD inline float bf16_value(uint16_t b) { return float_from_bits(static_cast<uint32_t>(b) << 16); }

RAMPART_HD inline float f16_value(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31, e = (h >> 10) & 31u, m = h & 1023u;
  if (e == 0) {  // zero or subnormal: m * 2^-24, exact in float
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign != 0 ? -v : v;
  }
  if (e == 31) return float_from_bits(sign | 0x7f800000u | (m << 13));  // infinity or NaN
  return float_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

// fp8 e4m3 (FN: no infinities, S.1111.111 is NaN, largest 448).
RAMPART_HD inline float e4m3_value(uint8_t c) {
  const uint32_t sign = static_cast<uint32_t>(c >> 7) << 31, e = (c >> 3) & 15u, m = c & 7u;
  if (e == 15 && m == 7) return float_from_bits(0x7fc00000u);
  if (e == 0) {  // zero or subnormal: m * 2^-9
    const float v = static_cast<float>(m) * 0.001953125f;
    return sign != 0 ? -v : v;
  }
  return float_from_bits(sign | ((e + 120u) << 23) | (m << 20));
}

// A weight matrix [rows, cols] in device memory in its stored dtype, row-major. fp8: SCALE points at the
// 128-row block of scales holding row 0 (SROW0 = row 0's place in that block), SCALE_COLS per block row.
struct dweight {
  model::dtype type = model::dtype::f32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
  const float* scale = nullptr;
  int64_t scale_cols = 0, srow0 = 0;
};

// W[r, c] widened to float (fp8 times its block scale).
RAMPART_HD inline float weight_value(const dweight& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  switch (w.type) {
    case model::dtype::f32:
      return static_cast<const float*>(w.data)[i];
    case model::dtype::bf16:
      return bf16_value(static_cast<const uint16_t*>(w.data)[i]);
    case model::dtype::f16:
      return f16_value(static_cast<const uint16_t*>(w.data)[i]);
    case model::dtype::f8_e4m3:
      return e4m3_value(static_cast<const uint8_t*>(w.data)[i]) *
             w.scale[((w.srow0 + r) / 128) * w.scale_cols + c / 128];
  }
  return 0.0f;
}

// sum over c < W.cols, in order, of W[r, c] * x[c]
RAMPART_HD inline float weight_dot(const dweight& w, int64_t r, const float* x) {
  float acc = 0.0f;
  for (int64_t c = 0; c < w.cols; ++c) acc = fmaf(weight_value(w, r, c), x[c], acc);
  return acc;
}

RAMPART_HD inline float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// In place: x = x / rms(x) * weight over N values (sum of squares in double, as the CPU engine).
RAMPART_HD inline void rms_norm_row(const float* x, const float* weight, int64_t n, double eps, float* out) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

// Rotates HALF adjacent pairs of X by the token's cos/sin (model/rope.cpp's rope::apply).
RAMPART_HD inline void rope_row(float* x, const float* cos_v, const float* sin_v, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos_v[i] - b * sin_v[i];
    x[2 * i + 1] = a * sin_v[i] + b * cos_v[i];
  }
}

// ---- The ops: operator()(i) computes output I. ----

// x[t, d] = embed[token[t], d]; I over n * D.
struct embed_op {
  dweight w;
  const int32_t* tokens;
  float* x;
  int64_t D;
  RAMPART_HD void operator()(int64_t i) const { x[i] = weight_value(w, tokens[i / D], i % D); }
};

// Per token t: x[t] += add[t] (when ADD), then xn[t] = RMSNorm(x[t]) * norm (when NORM).
struct residual_norm_op {
  float* x;
  const float* add;
  const float* norm;
  float* xn;
  int64_t D;
  double eps;
  RAMPART_HD void operator()(int64_t t) const {
    float* xt = x + t * D;
    if (add != nullptr)
      for (int64_t i = 0; i < D; ++i) xt[i] += add[t * D + i];
    if (norm != nullptr) rms_norm_row(xt, norm, D, eps, xn + t * D);
  }
};

// In place, per row r: x[r * stride, + width) = RMSNorm(...) * norm.
struct norm_rows_op {
  float* x;
  int64_t stride, width;
  const float* norm;
  double eps;
  RAMPART_HD void operator()(int64_t r) const { rms_norm_row(x + r * stride, norm, width, eps, x + r * stride); }
};

// out[r] = RMSNorm(x[rows[r]]) * norm: the final norm of the rows that get logits.
struct select_norm_op {
  const float* x;
  const int64_t* rows;
  const float* norm;
  float* out;
  int64_t D;
  double eps;
  RAMPART_HD void operator()(int64_t r) const { rms_norm_row(x + rows[r] * D, norm, D, eps, out + r * D); }
};

// y[t * ys + r] = W[r] . x[t * xs]; I over n * W.rows (rows fastest).
struct matmul_op {
  dweight w;
  const float* x;
  int64_t xs;
  float* y;
  int64_t ys;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / w.rows, r = i % w.rows;
    y[t * ys + r] = weight_dot(w, r, x + t * xs);
  }
};

// Per token: normalise the latent part of kva[t], rotate its rope part, and store the row in the KV cache at
// the token's position (block table TABLES + TABLE_AT[t]).
struct kv_store_op {
  float* kva;
  int64_t C, kw, half;
  const float* norm;
  double eps;
  const float* cos_v;
  const float* sin_v;
  const int64_t* pos;
  const int32_t* tables;
  const int64_t* table_at;
  float* layer_cache;  // this layer's [blocks, block_tokens, kw]
  int64_t block_tokens;
  RAMPART_HD void operator()(int64_t t) const {
    float* a = kva + t * kw;
    rms_norm_row(a, norm, C, eps, a);
    rope_row(a + C, cos_v + t * half, sin_v + t * half, half);
    const int64_t p = pos[t];
    float* row = layer_cache + (static_cast<int64_t>(tables[table_at[t] + p / block_tokens]) * block_tokens +
                                p % block_tokens) * kw;
    for (int64_t j = 0; j < kw; ++j) row[j] = a[j];
  }
};

// Absorbed queries, latent part: qabs[t, h, c] = sum over j < nope of q_nope[t, h, j] * kv_b[h*(nope+v) + j, c];
// I over n * H * C.
struct absorb_op {
  dweight kv_b;
  const float* q;
  int64_t qw, H, C, kw, nope, rope, v;
  float* qabs;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / (H * C), h = (i / C) % H, c = i % C;
    const float* qn = q + t * qw + h * (nope + rope);
    float acc = 0.0f;
    for (int64_t j = 0; j < nope; ++j) acc = fmaf(qn[j], weight_value(kv_b, h * (nope + v) + j, c), acc);
    qabs[(t * H + h) * kw + c] = acc;
  }
};

// Absorbed queries, rope part: RoPE(q_rope[t, h]) after the latent part; I over n * H.
struct query_rope_op {
  const float* q;
  int64_t qw, H, C, kw, nope, rope, half;
  const float* cos_v;
  const float* sin_v;
  float* qabs;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / H, h = i % H;
    const float* src = q + t * qw + h * (nope + rope) + nope;
    float* dst = qabs + (t * H + h) * kw + C;
    for (int64_t j = 0; j < rope; ++j) dst[j] = src[j];
    rope_row(dst, cos_v + t * half, sin_v + t * half, half);
  }
};

// The cached row of key S for token T of a chunk.
struct kv_rows {
  const float* layer_cache;
  const int32_t* tables;
  const int64_t* table_at;
  int64_t block_tokens, kw;
  RAMPART_HD const float* row(int64_t t, int64_t s) const {
    return layer_cache +
           (static_cast<int64_t>(tables[table_at[t] + s / block_tokens]) * block_tokens + s % block_tokens) * kw;
  }
};

// scores[(tt * H + h) * keys + s] = qabs[t0 + tt, h] . cached row s, for s <= pos. One thread per tile of
// score_tile keys, so a step whose KEYS is a bound (a captured decode step: every key the cache could hold)
// starts a thread per tile, not per key; I over chunk * H * ceil(keys / score_tile).
inline constexpr int64_t score_tile = 32;
struct scores_op {
  kv_rows cache;
  const float* qabs;
  const int64_t* pos;
  int64_t t0, H, keys;
  float* scores;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t tiles = (keys + score_tile - 1) / score_tile;
    const int64_t tt = i / (H * tiles), h = (i / tiles) % H, t = t0 + tt;
    const int64_t s0 = (i % tiles) * score_tile;
    const int64_t s1 = s0 + score_tile < pos[t] + 1 ? s0 + score_tile : pos[t] + 1;
    const float* q = qabs + (t * H + h) * cache.kw;
    for (int64_t s = s0; s < s1; ++s) {
      const float* k = cache.row(t, s);
      float acc = 0.0f;
      for (int64_t c = 0; c < cache.kw; ++c) acc = fmaf(q[c], k[c], acc);
      scores[(tt * H + h) * keys + s] = acc;
    }
  }
};

// Softmax of SCALE * score over a row's keys (kernels' softmax_portable); I over chunk * H.
struct softmax_op {
  float* scores;
  const int64_t* pos;
  int64_t t0, H, keys;
  float scale;
  RAMPART_HD void operator()(int64_t i) const {
    float* v = scores + i * keys;
    const int64_t n = pos[t0 + i / H] + 1;
    float mx = v[0] * scale;
    for (int64_t s = 0; s < n; ++s) mx = v[s] * scale > mx ? v[s] * scale : mx;
    float sum = 0.0f;
    for (int64_t s = 0; s < n; ++s) {
      v[s] = expf(v[s] * scale - mx);
      sum += v[s];
    }
    const float inv = 1.0f / sum;
    for (int64_t s = 0; s < n; ++s) v[s] *= inv;
  }
};

// olat[t0 + tt, h, c] = sum over s <= pos, in order, of p[s] * cached row s [c]; I over chunk * H * C.
struct weighted_op {
  kv_rows cache;
  const float* scores;
  const int64_t* pos;
  int64_t t0, H, C, keys;
  float* olat;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t tt = i / (H * C), h = (i / C) % H, c = i % C, t = t0 + tt;
    const float* p = scores + (tt * H + h) * keys;
    float acc = 0.0f;
    for (int64_t s = 0; s <= pos[t]; ++s) acc = fmaf(p[s], cache.row(t, s)[c], acc);
    olat[(t * H + h) * C + c] = acc;
  }
};

// Values: o[t, h, j] = W_UV[h][j] . olat[t, h] (W_UV[h] = kv_b rows h*(nope+v) + nope ...); I over n * H * v.
struct values_op {
  dweight kv_b;
  const float* olat;
  int64_t H, C, nope, v;
  float* o;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / (H * v), h = (i / v) % H, j = i % v;
    o[i] = weight_dot(kv_b, h * (nope + v) + nope + j, olat + (t * H + h) * C);
  }
};

// Per token: the router's experts and weights from its logits. SCRATCH: (3E + 2G) floats per token.
struct route_op {
  model::router_params params;
  const float* logits;
  const float* bias;
  float* scratch;
  int32_t* ids;
  float* weights;
  RAMPART_HD void operator()(int64_t t) const {
    model::route_row(params, logits + t * params.experts, bias, scratch + t * (3 * params.experts + 2 * params.groups),
              ids + t * params.k, weights + t * params.k);
  }
};

// SwiGLU hidden values: h[i] = silu(gate[m] . x[t]) * (up[m] . x[t]). Dense/shared MLP: GATE and UP are one
// matrix each and I runs over n * M; routed experts: IDS picks the expert of slot (t, j) and I runs over
// n * K * M (slot-major), K = 1 for a plain MLP.
struct swiglu_op {
  const dweight* gate;  // per expert (one entry for a plain MLP)
  const dweight* up;
  const int32_t* ids;   // nullptr: a plain MLP
  const float* x;
  int64_t D, K, M;
  float* h;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t slot = i / M, m = i % M, t = slot / K;
    const int64_t e = ids != nullptr ? ids[slot] : 0;
    const float* xt = x + t * D;
    h[i] = silu_times(weight_dot(gate[e], m, xt), weight_dot(up[e], m, xt));
  }
};

// Routed experts' output: out[t, d] = sum over j < K, in order, of weights[t, j] * down_e[d] . h[t, j]; I over
// n * D.
struct experts_down_op {
  const dweight* down;
  const int32_t* ids;
  const float* weights;
  const float* h;
  int64_t D, K, M;
  float* out;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / D, d = i % D;
    float acc = 0.0f;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t slot = t * K + j;
      acc += weights[slot] * weight_dot(down[ids[slot]], d, h + slot * M);
    }
    out[i] = acc;
  }
};

// float -> bf16 bits, round to nearest even (NaN stays NaN), as model::float_to_bf16.
RAMPART_HD inline uint16_t bf16_bits(float v) {
  const uint32_t u = float_bits(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Fast precision: activations rounded to bf16 for the tensor-core products. I over n * cols.
struct to_bf16_op {
  const float* x;
  int64_t xs, cols;
  uint16_t* out;
  RAMPART_HD void operator()(int64_t i) const { out[i] = bf16_bits(x[(i / cols) * xs + i % cols]); }
};

// What a tensor-core product of bf16 weights and bf16 activations computes, for executors without tensor cores:
// y[t * W.rows + r] = sum over c of W[r, c] * x[t, c], products exact in float, accumulated in float (in index
// order; a GPU's order differs, within the same bound). I over n * W.rows.
struct matmul_bf16_op {
  dweight w;
  const uint16_t* x;
  float* y;
  RAMPART_HD void operator()(int64_t i) const {
    const int64_t t = i / w.rows, r = i % w.rows;
    const uint16_t* xt = x + t * w.cols;
    float acc = 0.0f;
    for (int64_t c = 0; c < w.cols; ++c) acc = fmaf(weight_value(w, r, c), bf16_value(xt[c]), acc);
    y[i] = acc;
  }
};

// g[i] = silu(g[i]) * u[i]
struct silu_mul_op {
  float* g;
  const float* u;
  RAMPART_HD void operator()(int64_t i) const { g[i] = silu_times(g[i], u[i]); }
};

// y[i] += x[i]
struct add_op {
  float* y;
  const float* x;
  RAMPART_HD void operator()(int64_t i) const { y[i] += x[i]; }
};

}  // namespace rampart::gpu
