// Presets and config.json of synthetic checkpoints.
#include <cmath>

#include <nlohmann/json.hpp>

#include "testkit/synthetic_checkpoint.hpp"

namespace rampart::model {
namespace {

using ordered_json = nlohmann::ordered_json;

// Whole numbers the fixtures write as JSON integers (rope_theta, factor, betas).
ordered_json whole_or_real(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}

void v3_tiny(model_config* c) {
  c->family = model_family::deepseek_v3;
  c->vocab_size = 1000;
  c->hidden_size = 256;
  c->intermediate_size = 512;
  c->moe_intermediate_size = 96;
  c->num_hidden_layers = 4;
  c->num_nextn_predict_layers = 1;
  c->num_attention_heads = 4;
  c->q_lora_rank = 64;
  c->kv_lora_rank = 32;
  c->qk_nope_head_dim = 32;
  c->qk_rope_head_dim = 16;
  c->v_head_dim = 32;
  c->n_routed_experts = 16;
  c->n_shared_experts = 1;
  c->num_experts_per_tok = 4;
  c->n_group = 4;
  c->topk_group = 2;
  c->first_k_dense_replace = 1;
  c->moe_layer_freq = 1;
  c->norm_topk_prob = true;
  c->routed_scaling_factor = 2.5;
  c->scoring = router_scoring::sigmoid;
  c->topk_method = router_topk::noaux_tc;
  c->rms_norm_eps = 1e-6;
  c->max_position_embeddings = 163840;
  c->rope_theta = 10000.0;
  c->yarn = yarn_config{40.0, 4096, 32.0, 1.0, 1.0, 1.0, true};
  c->bos_token_id = 0;
  c->eos_token_id = 1;
}

}  // namespace

bool synthetic_preset(const std::string& preset, const std::string& variant, synthetic_spec* out,
                      std::string* err) {
  synthetic_spec s;
  model_config& c = s.config;
  v3_tiny(&c);
  if (preset == "small") {
    c.vocab_size = 129280;
    c.hidden_size = 512;
    c.intermediate_size = 1408;
    c.moe_intermediate_size = 256;
    c.num_hidden_layers = 6;
    c.num_nextn_predict_layers = 0;
    c.num_attention_heads = 8;
    c.q_lora_rank = 192;
    c.kv_lora_rank = 64;
    c.qk_nope_head_dim = 32;
    c.qk_rope_head_dim = 32;
    c.v_head_dim = 32;
    c.n_routed_experts = 32;
    c.num_experts_per_tok = 4;
  } else if (preset == "medium") {
    c.vocab_size = 129280;
    c.hidden_size = 1024;
    c.intermediate_size = 2816;
    c.moe_intermediate_size = 512;
    c.num_hidden_layers = 12;
    c.num_nextn_predict_layers = 0;
    c.num_attention_heads = 16;
    c.q_lora_rank = 384;
    c.kv_lora_rank = 128;
    c.qk_nope_head_dim = 64;
    c.qk_rope_head_dim = 32;
    c.v_head_dim = 64;
    c.n_routed_experts = 64;
    c.num_experts_per_tok = 8;
    c.n_group = 8;
    c.topk_group = 4;
  } else if (preset != "tiny") {
    *err = "unknown preset '" + preset + "' (tiny, small or medium)";
    return false;
  }
  if (variant == "v2-lite") {
    // DeepSeek-V2-Lite's differences: direct q_proj, two shared experts, softmax greedy router without
    // groups or bias, no MTP, YaRN mscale = mscale_all_dim = 0.707.
    s.variant = variant;
    c.family = model_family::deepseek_v2;
    c.q_lora_rank = 0;
    c.n_shared_experts = 2;
    c.n_group = 1;
    c.topk_group = 1;
    c.norm_topk_prob = false;
    c.routed_scaling_factor = 1.0;
    c.scoring = router_scoring::softmax;
    c.topk_method = router_topk::greedy;
    c.num_nextn_predict_layers = 0;
    c.yarn.mscale = 0.707;
    c.yarn.mscale_all_dim = 0.707;
  } else if (variant != "v3") {
    *err = "unknown variant '" + variant + "' (v3 or v2-lite)";
    return false;
  }
  *out = s;
  return true;
}

std::string synthetic_config_json(const synthetic_spec& spec) {
  const model_config& c = spec.config;
  const bool v3 = c.family == model_family::deepseek_v3;
  ordered_json j;
  j["architectures"] = {v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"};
  j["model_type"] = v3 ? "deepseek_v3" : "deepseek_v2";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_attention_heads;
  j["q_lora_rank"] = c.q_lora_rank > 0 ? ordered_json(c.q_lora_rank) : ordered_json(nullptr);
  j["kv_lora_rank"] = c.kv_lora_rank;
  j["qk_nope_head_dim"] = c.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["v_head_dim"] = c.v_head_dim;
  j["n_routed_experts"] = c.n_routed_experts;
  j["n_shared_experts"] = c.n_shared_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["n_group"] = c.n_group;
  j["topk_group"] = c.topk_group;
  j["first_k_dense_replace"] = c.first_k_dense_replace;
  j["moe_layer_freq"] = c.moe_layer_freq;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["scoring_func"] = c.scoring == router_scoring::sigmoid ? "sigmoid" : "softmax";
  j["topk_method"] = c.topk_method == router_topk::noaux_tc ? "noaux_tc"
                     : c.topk_method == router_topk::greedy ? "greedy"
                                                            : "group_limited_greedy";
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = whole_or_real(c.rope_theta);
  if (c.yarn.enabled) {
    j["rope_scaling"] = {{"type", "yarn"},
                         {"factor", whole_or_real(c.yarn.factor)},
                         {"original_max_position_embeddings", c.yarn.original_max_position_embeddings},
                         {"beta_fast", whole_or_real(c.yarn.beta_fast)},
                         {"beta_slow", whole_or_real(c.yarn.beta_slow)},
                         {"mscale", c.yarn.mscale},
                         {"mscale_all_dim", c.yarn.mscale_all_dim}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["tie_word_embeddings"] = false;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["initializer_range"] = 0.02;
  j["ep_size"] = 1;
  j["use_cache"] = true;
  j["torch_dtype"] = spec.storage == dtype::f32 ? "float32" : "bfloat16";
  j["tiny_generator"] = {{"tool", "rampart-mkmodel"}, {"format_version", 1},
                         {"seed", spec.seed},         {"dtype", spec.storage == dtype::f32 ? "f32" : "bf16"},
                         {"fp8", spec.fp8},           {"variant", spec.variant}};
  if (spec.fp8) {
    j["quantization_config"] = {{"activation_scheme", "dynamic"},
                                {"fmt", "e4m3"},
                                {"quant_method", "fp8"},
                                {"weight_block_size", {128, 128}}};
  }
  return j.dump(2) + "\n";
}

}  // namespace rampart::model
