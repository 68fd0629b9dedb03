// The feed-forward half of a decoder layer: the dense SwiGLU MLP, and the MoE block (router in float32, routed
// experts through an expert_backend, shared experts added unweighted). Spec §3.8-§3.10.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/expert_backend.hpp"
#include "model/layers.hpp"
#include "model/model_config.hpp"
#include "model/step_profile.hpp"

namespace rampart::model {

// Routes one token. LOGITS: the router's E float32 logits; BIAS: e_score_correction_bias or nullptr;
// SCRATCH: 5*E floats. Writes num_experts_per_tok expert ids in ascending order with their weights:
// sigmoid or softmax scores; the bias (selection only) and the group limit (noaux_tc: groups ranked by the sum
// of their two best biased scores; group_limited_greedy: by their best score; greedy: no groups) choose the
// experts; weights are the unbiased scores, renormalised when norm_topk_prob, times routed_scaling_factor.
// Ties go to the lower index.
void route_token(const model_config& config, const float* logits, const float* bias, float* scratch,
                 int32_t* expert_ids, float* weights);

class feed_forward {
 public:
  feed_forward(const model_config& config, const kernel_ops& k, thread_pool& pool, expert_backend& experts);

  // OUT[n, D] = down(silu(gate(XN)) * up(XN)).
  void mlp(const mlp_weights& w, const float* xn, int64_t n, float* out);
  // OUT[n, D] = routed experts' weighted sum + shared experts, for MoE layer LAYER.
  void moe(const moe_weights& w, int layer, const float* xn, int64_t n, float* out);
  // Phase times go to PROFILE (nullptr: not measured).
  void set_profile(step_profile* profile) { profile_ = profile; }

 private:
  void mlp_product(const mlp_weights& w, const float* xn, int64_t n, float* out);

  const model_config& cfg_;
  const kernel_ops& k_;
  thread_pool& pool_;
  expert_backend& experts_;
  std::vector<float> gate_, up_, logits_, route_scratch_, weights_, shared_, prepared_;
  std::vector<int32_t> ids_;
  step_profile* profile_ = nullptr;
};

}  // namespace rampart::model
