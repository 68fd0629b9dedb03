// The model's weights as views into the mapped checkpoint, grouped per decoder layer, with every shape checked
// against config.json on load; pack_for may then rewrite matrices into the layout the kernels read fastest.
// Matrices stay in their stored dtype either way; only RMSNorm weights and the router bias (a few thousand
// floats) are widened to float32 copies.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "model/checkpoint.hpp"

namespace rampart::model {

struct attention_weights {
  bool q_lora = false;
  weight_matrix q_a;          // [Q, D] (q_lora)
  std::vector<float> q_a_norm;  // [Q] (q_lora)
  weight_matrix q_b;          // [H*(n+r), Q] (q_lora)
  weight_matrix q;            // [H*(n+r), D] (no q_lora)
  weight_matrix kv_a;         // [C+r, D]
  std::vector<float> kv_a_norm;  // [C]
  weight_matrix kv_b;         // [H*(n+v), C]
  weight_matrix o;            // [D, H*v]
  // Per head, when the weights are packed (model_weights::pack_for): W_UK[h] transposed, [C, n], and W_UV[h],
  // [v, C], each its own matrix so the absorbed attention runs them through gemm_rows. Empty otherwise.
  std::vector<weight_matrix> uk_t, uv;
  size_t bytes() const;
};

struct mlp_weights {
  weight_matrix gate, up;  // [I, D]
  weight_matrix down;      // [D, I]
  int64_t width() const { return gate.rows; }
  size_t bytes() const { return gate.bytes() + up.bytes() + down.bytes(); }
};

struct moe_weights {
  weight_matrix router;          // [E, D]
  std::vector<float> bias;       // [E] e_score_correction_bias, empty when the checkpoint has none
  std::vector<mlp_weights> experts;
  bool has_shared = false;
  mlp_weights shared;            // width n_shared_experts * moe_intermediate_size
};

struct layer_weights {
  std::vector<float> input_norm, post_attention_norm;  // [D]
  attention_weights attn;
  bool is_moe = false;
  mlp_weights dense;  // when !is_moe
  moe_weights moe;    // when is_moe
};

struct model_weights {
  weight_matrix embed;     // [V, D]
  std::vector<float> final_norm;
  weight_matrix lm_head;   // [V, D]
  std::vector<layer_weights> layers;

  // Views every tensor of CK's main layers (MTP layers are ignored). False + *err naming the tensor when one
  // is missing, has the wrong shape, or is an fp8 matrix without its scales.
  static bool load(const checkpoint& ck, model_weights* out, std::string* err);

  // Bytes of weights one decode token reads: attention, norms, router, shared experts, K average routed
  // experts per MoE layer, one embedding row and the whole lm_head.
  size_t bytes_per_token(int64_t experts_per_token) const;

  // Rewrites every matrix the forward pass multiplies (all but the embedding) whose layout K prefers to the
  // stored one into that layout, with THREADS threads (same dtype and values, so the same size), and drops
  // the checkpoint's pages of the rewritten tensors from this process's memory. Returns the bytes rewritten.
  // ROUTED_EXPERTS false leaves the routed experts as they are (they run elsewhere: an expert backend).
  size_t pack_for(const model_config& c, const kernel_ops& k, int threads, bool routed_experts = true);
  // Calls FN on every matrix the forward pass multiplies or reads rows of.
  void for_each_matrix(const std::function<void(const weight_matrix&)>& fn) const;

 private:
  struct arena_deleter {
    size_t bytes;
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, arena_deleter> packed_;  // storage of the rewritten matrices
};

}  // namespace rampart::model
