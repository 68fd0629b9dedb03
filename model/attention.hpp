// Multi-head latent attention (spec §3.4, §3.6) in the absorbed form for prefill and decode alike: W_UK is
// folded into the query and W_UV applied after the weighted sum, so the cache holds only the latent.
#pragma once

#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/kv_cache.hpp"
#include "model/layers.hpp"
#include "model/rope.hpp"
#include "model/step_profile.hpp"

namespace rampart::model {

class mla_attention {
 public:
  // MAX_CONTEXT bounds the number of keys one query attends (the cache's token capacity).
  mla_attention(const model_config& config, const kernel_ops& k, thread_pool& pool, int64_t max_context);

  // Per-step rotary angles for N tokens at POSITIONS; must precede forward() within a step.
  void prepare(const token_slot* slots, int64_t n);

  // OUT[n, D] = MLA(XN[n, D]) for the step's N tokens. Writes each token's latent row into KV at its position
  // first, so tokens of one sequence in the same step see each other causally.
  void forward(const attention_weights& w, int64_t layer, const float* xn, int64_t n, const token_slot* slots,
               kv_cache& kv, float* out);

  // Phase times go to PROFILE (nullptr: not measured).
  void set_profile(step_profile* profile) { profile_ = profile; }

 private:
  // Softmax-weighted latent sum of token T for heads [h0, h1) over all its keys; SCORES and ROWS are the calling
  // thread's scratch.
  void attend(int64_t layer, int64_t t, int h0, int h1, const token_slot& slot, const kv_cache& kv, float* scores,
              const float** rows);

  const model_config& cfg_;
  const kernel_ops& k_;
  thread_pool& pool_;
  rope rope_;
  float scale_;
  int64_t max_context_;
  int64_t H_, nope_, r_, v_, C_, Q_, D_;
  std::vector<float> cos_, sin_, qa_, q_, kva_, qabs_, olat_, o_;
  std::vector<float> row_scratch_;    // per thread: one widened kv_b row
  std::vector<float> score_scratch_;  // per thread: H * max_context scores
  std::vector<const float*> row_ptr_scratch_;  // per thread: max_context cached-row pointers
  step_profile* profile_ = nullptr;
};

}  // namespace rampart::model
