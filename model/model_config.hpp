// config.json of the DeepSeek-V3 family (sigmoid noaux_tc router with groups and bias, q LoRA, MTP layers
// present but skipped) and the DeepSeek-V2-Lite family (direct q_proj, softmax greedy router, no groups).
#pragma once

#include <cstdint>
#include <string>

namespace rampart::model {

enum class model_family : uint8_t { deepseek_v3, deepseek_v2 };
enum class router_scoring : uint8_t { sigmoid, softmax };
enum class router_topk : uint8_t { noaux_tc, greedy, group_limited_greedy };

struct yarn_config {
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  bool enabled = false;
};

struct model_config {
  model_family family = model_family::deepseek_v3;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;  // main layers only; MTP layers (num_nextn_predict_layers) are skipped
  int64_t num_nextn_predict_layers = 0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  int64_t intermediate_size = 0;
  int64_t moe_intermediate_size = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  router_scoring scoring = router_scoring::sigmoid;
  router_topk topk_method = router_topk::noaux_tc;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;
  int64_t num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0: direct q_proj (V2-Lite)
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  yarn_config yarn;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 1;
  bool fp8_block_quantized = false;  // quantization_config {quant_method: fp8, weight_block_size: [128,128]}

  bool is_moe_layer(int64_t layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }

  // Parses config.json text (FILE names it in errors). Unsupported architectures or field values are errors:
  // returns false and fills *error with one line naming the file and field.
  static bool parse(const std::string& json_text, const std::string& file, model_config* out,
                    std::string* error);
};

}  // namespace rampart::model
