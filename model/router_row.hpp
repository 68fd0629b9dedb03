// The router's choice for one token, one implementation for the CPU engine (model/moe.cpp's route_token) and
// the device program (gpu/exact_ops.hpp's route_op): sigmoid or softmax scores, the bias (selection only), the
// group limit, top-k with the lowest expert id on ties, the unbiased scores as weights, normalised and scaled.
#pragma once

#include <math.h>

#include <cstdint>

#include "base/host_device.hpp"
#include "model/model_config.hpp"

namespace rampart::model {

struct router_params {
  int64_t experts = 0, k = 0, groups = 1, topk_group = 1;
  bool sigmoid = true;
  bool group_limited = false;  // n_group > 1 and a grouped top-k method
  bool top2_group_score = true;  // noaux_tc: a group scores the sum of its best two, else its best one
  bool normalise = true;
  float scale = 1.0f;
};

RAMPART_HD inline int64_t take_max(const float* v, float* taken, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (taken[i] == 0.0f && (best < 0 || v[i] > v[best])) best = i;
  if (best >= 0) taken[best] = 1.0f;
  return best;
}

// SCRATCH: 3 * experts + 2 * groups floats.
RAMPART_HD inline void route_row(const router_params& c, const float* logits, const float* bias, float* scratch,
                                 int32_t* ids, float* weights) {
  const int64_t E = c.experts;
  float* scores = scratch;
  float* choice = scratch + E;
  float* taken = scratch + 2 * E;
  if (c.sigmoid) {
    for (int64_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + expf(-logits[e]));
  } else {
    float mx = logits[0];
    for (int64_t e = 1; e < E; ++e) mx = logits[e] > mx ? logits[e] : mx;
    float sum = 0.0f;
    for (int64_t e = 0; e < E; ++e) sum += scores[e] = expf(logits[e] - mx);
    for (int64_t e = 0; e < E; ++e) scores[e] /= sum;
  }
  for (int64_t e = 0; e < E; ++e) choice[e] = bias != nullptr ? scores[e] + bias[e] : scores[e];
  if (c.group_limited) {
    const int64_t G = c.groups, gs = E / G;
    float* group_score = scratch + 3 * E;
    float* kept = group_score + G;
    for (int64_t g = 0; g < G; ++g) {
      const float* v = choice + g * gs;
      float b1 = -INFINITY, b2 = -INFINITY;
      for (int64_t i = 0; i < gs; ++i) {
        if (v[i] > b1) {
          b2 = b1;
          b1 = v[i];
        } else if (v[i] > b2) {
          b2 = v[i];
        }
      }
      group_score[g] = c.top2_group_score && gs >= 2 ? b1 + b2 : b1;
      kept[g] = 0.0f;
    }
    for (int64_t i = 0; i < c.topk_group && i < G; ++i) take_max(group_score, kept, G);
    for (int64_t g = 0; g < G; ++g)
      if (kept[g] == 0.0f)
        for (int64_t i = 0; i < gs; ++i) choice[g * gs + i] = -INFINITY;
  }
  for (int64_t e = 0; e < E; ++e) taken[e] = 0.0f;
  for (int64_t j = 0; j < c.k; ++j) take_max(choice, taken, E);
  int64_t j = 0;
  float sum = 0.0f;
  for (int64_t e = 0; e < E; ++e)
    if (taken[e] != 0.0f) {
      ids[j] = static_cast<int32_t>(e);
      weights[j] = scores[e];
      sum += scores[e];
      ++j;
    }
  const float norm = c.normalise ? 1.0f / sum : 1.0f;
  for (j = 0; j < c.k; ++j) weights[j] = weights[j] * norm * c.scale;
}

// The router's parameters from a config.
inline router_params router_params_for(const model_config& c) {
  router_params p;
  p.experts = c.n_routed_experts;
  p.k = c.num_experts_per_tok;
  p.groups = c.n_group > 1 ? c.n_group : 1;
  p.topk_group = c.topk_group;
  p.sigmoid = c.scoring == router_scoring::sigmoid;
  p.group_limited = c.n_group > 1 && c.topk_method != router_topk::greedy;
  p.top2_group_score = c.topk_method == router_topk::noaux_tc;
  p.normalise = c.norm_topk_prob;
  p.scale = static_cast<float>(c.routed_scaling_factor);
  return p;
}

}  // namespace rampart::model
