// Choosing a sequence's next token where its logits are (the device), with the CPU sampler's rules
// (engine/sampler.hpp): greedy takes the lowest-id argmax; otherwise the candidates are the finite logits (or the
// +infinity ones, with equal shares), top-k keeps the k largest (ties: lower id first), weights are
// exp((logit - max) / temperature), top-p keeps the tokens whose mass before them in (logit desc, id asc) order
// is below top_p of the total, min-p drops weights below min_p of the largest, and the draw walks the kept
// weights in id order to UNIFORM times their sum. The uniform comes from the sequence's own seeded generator on
// the host (sampler::next_uniform), so a seed gives the same tokens run after run.
//
// One row per call, passes over the row instead of a sort: the k-th largest value and top-p's cut are found by
// bisecting the order of float bit patterns (32 counting passes each).
#pragma once

#include <math.h>

#include <cstdint>

#include "gpu/exact_ops.hpp"

namespace rampart::gpu {

struct row_sampling {
  float temperature = 0;  // 0: greedy
  int32_t top_k = 0;
  float top_p = 1;
  float min_p = 0;
  double uniform = 0;  // [0, 1)
};

// Order key of a float's bits: larger float, larger key, equal floats equal keys (-0 is +0); for non-NaN values.
RAMPART_HD inline uint32_t order_key(float v) {
  if (v == 0.0f) v = 0.0f;
  const uint32_t u = float_bits(v);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

RAMPART_HD inline bool is_candidate(float v) { return v > -INFINITY && v < INFINITY; }  // finite (NaN: false)

// The token for one row of N logits under S; -1 when no logit is a candidate.
RAMPART_HD inline int32_t sample_row(const float* l, int64_t n, const row_sampling& s) {
  float max = -INFINITY;
  int64_t arg = -1;
  for (int64_t i = 0; i < n; ++i)
    if (l[i] > max) {  // strict: the lowest id among equals; NaN never compares greater
      max = l[i];
      arg = i;
    }
  if (arg < 0) return -1;
  if (s.temperature == 0) return static_cast<int32_t>(arg);

  // +infinity logits share everything equally: candidates are those, each of weight 1.
  const bool inf_row = max == INFINITY;
  auto candidate = [&](int64_t i) { return inf_row ? l[i] == INFINITY : is_candidate(l[i]); };
  const float scale = static_cast<float>(fmin(1.4426950408889634 / static_cast<double>(s.temperature), 3.4e38));
  auto weight = [&](int64_t i) { return inf_row ? 1.0f : exp2f((l[i] - max) * scale); };
  // The value used for ordering (all +infinity candidates tie).
  auto value_key = [&](int64_t i) { return inf_row ? 0u : order_key(l[i]); };

  // Top-k: the k-th token in (value desc, id asc) order is at key K_KEY, id K_ID; kept: key > k_key, or equal
  // and id <= k_id.
  uint32_t k_key = 0;
  int64_t k_id = n;  // no cut
  int64_t candidates = 0;
  for (int64_t i = 0; i < n; ++i) candidates += candidate(i) ? 1 : 0;
  if (s.top_k > 0 && s.top_k < candidates) {
    // The largest key t with count(key >= t) >= k.
    uint32_t lo = 0, hi = 0xffffffffu;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2 + 1;
      int64_t c = 0;
      for (int64_t i = 0; i < n; ++i) c += candidate(i) && value_key(i) >= mid ? 1 : 0;
      if (c >= s.top_k)
        lo = mid;
      else
        hi = mid - 1;
    }
    k_key = lo;
    int64_t above = 0;
    for (int64_t i = 0; i < n; ++i) above += candidate(i) && value_key(i) > k_key ? 1 : 0;
    int64_t need = s.top_k - above;
    for (int64_t i = 0; i < n && need > 0; ++i)
      if (candidate(i) && value_key(i) == k_key && --need == 0) k_id = i;
  }
  auto in_k = [&](int64_t i) {
    if (!candidate(i)) return false;
    if (k_id == n) return true;
    const uint32_t k = value_key(i);
    return k > k_key || (k == k_key && i <= k_id);
  };

  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    if (in_k(i)) total += weight(i);

  // Top-p: the cut is at the smallest key P_KEY whose strictly-above mass is below the target; ties at it are
  // kept in id order while the mass before them stays below the target.
  uint32_t p_key = 0;
  int64_t p_id = n;  // no cut
  if (s.top_p < 1) {
    const double target = static_cast<double>(s.top_p) * total;
    auto mass_above = [&](uint32_t t) {
      double m = 0;
      for (int64_t i = 0; i < n; ++i)
        if (in_k(i) && value_key(i) > t) m += weight(i);
      return m;
    };
    uint32_t lo = 0, hi = 0xffffffffu;
    while (lo < hi) {  // smallest t with mass_above(t) < target (mass_above falls as t grows)
      const uint32_t mid = lo + (hi - lo) / 2;
      if (mass_above(mid) < target)
        hi = mid;
      else
        lo = mid + 1;
    }
    // LO sits on a present key (mass_above only changes there) unless every key is above it: then nothing is
    // cut below.
    bool present = false;
    for (int64_t i = 0; i < n && !present; ++i) present = in_k(i) && value_key(i) == lo;
    if (present) {
      p_key = lo;
      double before = mass_above(lo);
      p_id = -1;
      for (int64_t i = 0; i < n; ++i)
        if (in_k(i) && value_key(i) == p_key) {
          if (!(before < target)) break;
          p_id = i;
          before += weight(i);
        }
    }
  }
  auto kept = [&](int64_t i) {
    if (!in_k(i)) return false;
    if (p_id != n) {
      const uint32_t k = value_key(i);
      if (k < p_key || (k == p_key && i > p_id)) return false;
    }
    const float w = weight(i);
    return w > 0 && w >= s.min_p;
  };

  double kept_total = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < n; ++i)
    if (kept(i)) {
      kept_total += weight(i);
      last = i;
    }
  if (last < 0) return static_cast<int32_t>(arg);
  const double at = s.uniform * kept_total;
  double run = 0;
  for (int64_t i = 0; i < n; ++i)
    if (kept(i)) {
      run += weight(i);
      if (run > at) return static_cast<int32_t>(i);
    }
  return static_cast<int32_t>(last);  // rounding left the sum a hair short of AT
}

// Per sampled row r: tokens[r] = sample_row(logits of row ROWS_AT[r], vocab, params[r]).
struct sample_op {
  const float* logits;
  const int64_t* rows_at;
  const row_sampling* params;
  int64_t vocab;
  int32_t* tokens;
  RAMPART_HD void operator()(int64_t r) const {
    tokens[r] = sample_row(logits + rows_at[r] * vocab, vocab, params[r]);
  }
};

}  // namespace rampart::gpu
