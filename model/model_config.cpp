// model_config::parse: config.json of DeepseekV3ForCausalLM / DeepseekV2ForCausalLM checkpoints.
// Fields the forward pass depends on are required (no silent defaults that would describe a different model);
// fields Hugging Face configs commonly omit get the defaults of the family's reference configuration class.
#include <cmath>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model_config.hpp"

namespace rampart::model {
namespace {

using json = nlohmann::json;

// Upper bounds, far above any DeepSeek model (V3: vocabulary 129,280, hidden 7,168, 61 layers, 256 experts): a
// config.json past them is refused before anything is sized from it.
const std::map<std::string, int64_t>& upper_bounds() {
  static const std::map<std::string, int64_t> bounds = {
      {"vocab_size", int64_t{1} << 24},        {"hidden_size", int64_t{1} << 16},
      {"num_hidden_layers", 1024},             {"num_attention_heads", 1024},
      {"intermediate_size", int64_t{1} << 20}, {"q_lora_rank", int64_t{1} << 16},
      {"kv_lora_rank", int64_t{1} << 16},      {"qk_nope_head_dim", 4096},
      {"qk_rope_head_dim", 4096},              {"v_head_dim", 4096},
      {"num_nextn_predict_layers", 64},        {"max_position_embeddings", int64_t{1} << 24},
      {"n_routed_experts", int64_t{1} << 16},  {"first_k_dense_replace", 1024},
      {"moe_layer_freq", 1024},                {"moe_intermediate_size", int64_t{1} << 20},
      {"num_experts_per_tok", 1024},           {"n_shared_experts", 1024},
      {"n_group", int64_t{1} << 16},           {"topk_group", int64_t{1} << 16},
  };
  return bounds;
}

class config_reader {
 public:
  config_reader(const json& root, const std::string& file, std::string* error)
      : root_(root), file_(file), error_(error) {}

  bool fail(const std::string& field, const std::string& message) {
    if (error_) *error_ = file_ + ": field '" + field + "': " + message;
    return false;
  }

  const json* find(const std::string& field) const {
    const auto it = root_.find(field);
    return it == root_.end() || it->is_null() ? nullptr : &*it;
  }

  // An integer field; absent or null takes FALLBACK when given, else is an error.
  bool integer(const std::string& field, int64_t* out, int64_t min_value, const int64_t* fallback = nullptr) {
    const json* v = find(field);
    if (!v) {
      if (!fallback) return fail(field, "missing");
      *out = *fallback;
      return true;
    }
    if (!v->is_number_integer()) return fail(field, "must be an integer");
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return fail(field, "out of range");
    const int64_t value = v->get<int64_t>();
    if (value < min_value) return fail(field, "must be >= " + std::to_string(min_value));
    const auto bound = upper_bounds().find(field);
    if (bound != upper_bounds().end() && value > bound->second)
      return fail(field, "must be <= " + std::to_string(bound->second));
    *out = value;
    return true;
  }
  bool integer_or(const std::string& field, int64_t* out, int64_t min_value, int64_t fallback) {
    return integer(field, out, min_value, &fallback);
  }

  bool number(const json& obj, const std::string& prefix, const std::string& field, double* out,
              bool required, double fallback) {
    const auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) {
      if (required) return fail(prefix + field, "missing");
      *out = fallback;
      return true;
    }
    if (!it->is_number() || !std::isfinite(it->get<double>()))
      return fail(prefix + field, "must be a finite number");
    *out = it->get<double>();
    return true;
  }

  bool boolean(const std::string& field, bool* out, bool fallback) {
    const json* v = find(field);
    if (!v) {
      *out = fallback;
      return true;
    }
    if (!v->is_boolean()) return fail(field, "must be true or false");
    *out = v->get<bool>();
    return true;
  }

  bool string(const std::string& field, std::string* out, const std::string& fallback) {
    const json* v = find(field);
    if (!v) {
      *out = fallback;
      return true;
    }
    if (!v->is_string()) return fail(field, "must be a string");
    *out = v->get<std::string>();
    return true;
  }

  const json& root() const { return root_; }

 private:
  const json& root_;
  const std::string& file_;
  std::string* error_;
};

bool parse_family(config_reader& r, model_family* family) {
  bool have = false;
  if (const json* a = r.find("architectures")) {
    if (!a->is_array() || a->size() != 1 || !(*a)[0].is_string())
      return r.fail("architectures", "must be an array of one string");
    const std::string arch = (*a)[0].get<std::string>();
    if (arch == "DeepseekV3ForCausalLM")
      *family = model_family::deepseek_v3;
    else if (arch == "DeepseekV2ForCausalLM")
      *family = model_family::deepseek_v2;
    else
      return r.fail("architectures", "unsupported architecture '" + arch + "'");
    have = true;
  }
  std::string type;
  if (!r.string("model_type", &type, "")) return false;
  if (!type.empty()) {
    model_family t;
    if (type == "deepseek_v3")
      t = model_family::deepseek_v3;
    else if (type == "deepseek_v2")
      t = model_family::deepseek_v2;
    else
      return r.fail("model_type", "unsupported model type '" + type + "'");
    if (have && t != *family) return r.fail("model_type", "'" + type + "' contradicts architectures");
    *family = t;
    have = true;
  }
  if (!have) return r.fail("architectures", "missing (and no model_type)");
  return true;
}

bool parse_router(config_reader& r, model_config* c) {
  const bool v3 = c->family == model_family::deepseek_v3;
  const int64_t zero = 0;
  if (!r.integer("n_routed_experts", &c->n_routed_experts, 0, &zero)) return false;
  if (!r.integer_or("first_k_dense_replace", &c->first_k_dense_replace, 0, 0) ||
      !r.integer_or("moe_layer_freq", &c->moe_layer_freq, 1, 1))
    return false;
  if (c->n_routed_experts == 0) return true;  // dense model: no router fields are read

  if (!r.integer("moe_intermediate_size", &c->moe_intermediate_size, 1) ||
      !r.integer("num_experts_per_tok", &c->num_experts_per_tok, 1) ||
      !r.integer_or("n_shared_experts", &c->n_shared_experts, 0, 0) ||
      !r.integer_or("n_group", &c->n_group, 1, 1) || !r.integer_or("topk_group", &c->topk_group, 1, 1))
    return false;
  std::string scoring, method;
  if (!r.string("scoring_func", &scoring, v3 ? "sigmoid" : "softmax") ||
      !r.string("topk_method", &method, v3 ? "noaux_tc" : "greedy") ||
      !r.boolean("norm_topk_prob", &c->norm_topk_prob, v3) ||
      !r.number(r.root(), "", "routed_scaling_factor", &c->routed_scaling_factor, false, v3 ? 2.5 : 1.0))
    return false;
  if (scoring == "sigmoid")
    c->scoring = router_scoring::sigmoid;
  else if (scoring == "softmax")
    c->scoring = router_scoring::softmax;
  else
    return r.fail("scoring_func", "unsupported value '" + scoring + "' (sigmoid or softmax)");
  // "gready" is the spelling of the DeepSeek-V2 remote code's default.
  if (method == "noaux_tc")
    c->topk_method = router_topk::noaux_tc;
  else if (method == "greedy" || method == "gready")
    c->topk_method = router_topk::greedy;
  else if (method == "group_limited_greedy")
    c->topk_method = router_topk::group_limited_greedy;
  else
    return r.fail("topk_method", "unsupported value '" + method + "'");

  if (c->num_experts_per_tok > c->n_routed_experts)
    return r.fail("num_experts_per_tok", "exceeds n_routed_experts");
  if (c->routed_scaling_factor <= 0) return r.fail("routed_scaling_factor", "must be > 0");
  if (c->topk_method == router_topk::greedy) return true;  // groups are not used
  if (c->n_routed_experts % c->n_group != 0) return r.fail("n_group", "must divide n_routed_experts");
  if (c->topk_group > c->n_group) return r.fail("topk_group", "exceeds n_group");
  const int64_t per_group = c->n_routed_experts / c->n_group;
  if (c->topk_method == router_topk::noaux_tc && per_group < 2)
    return r.fail("n_group", "noaux_tc scores a group by its two best experts: needs >= 2 experts per group");
  if (c->topk_group * per_group < c->num_experts_per_tok)
    return r.fail("topk_group", "the allowed groups hold fewer than num_experts_per_tok experts");
  return true;
}

bool parse_rope_scaling(config_reader& r, model_config* c) {
  const json* s = r.find("rope_scaling");
  if (!s) return true;
  if (!s->is_object()) return r.fail("rope_scaling", "must be an object or null");
  const auto type = s->find("type") != s->end() ? s->find("type") : s->find("rope_type");
  if (type == s->end() || !type->is_string()) return r.fail("rope_scaling.type", "missing");
  if (type->get<std::string>() != "yarn")
    return r.fail("rope_scaling.type", "unsupported value '" + type->get<std::string>() + "' (only yarn)");
  yarn_config& y = c->yarn;
  double original = 0;
  if (!r.number(*s, "rope_scaling.", "factor", &y.factor, true, 1.0) ||
      !r.number(*s, "rope_scaling.", "original_max_position_embeddings", &original, true, 0) ||
      !r.number(*s, "rope_scaling.", "beta_fast", &y.beta_fast, false, 32.0) ||
      !r.number(*s, "rope_scaling.", "beta_slow", &y.beta_slow, false, 1.0) ||
      !r.number(*s, "rope_scaling.", "mscale", &y.mscale, false, 1.0) ||
      !r.number(*s, "rope_scaling.", "mscale_all_dim", &y.mscale_all_dim, false, 0.0))
    return false;
  if (y.factor < 1.0) return r.fail("rope_scaling.factor", "must be >= 1");
  if (original < 1 || original != std::floor(original) || original > 1e12)
    return r.fail("rope_scaling.original_max_position_embeddings", "must be a positive integer");
  y.original_max_position_embeddings = static_cast<int64_t>(original);
  if (y.beta_fast <= 0 || y.beta_slow <= 0) return r.fail("rope_scaling.beta_fast", "betas must be > 0");
  y.enabled = true;
  return true;
}

bool parse_quantization(config_reader& r, model_config* c) {
  const json* q = r.find("quantization_config");
  if (!q) return true;
  if (!q->is_object()) return r.fail("quantization_config", "must be an object");
  const auto method = q->find("quant_method");
  if (method == q->end() || !method->is_string() || method->get<std::string>() != "fp8")
    return r.fail("quantization_config.quant_method", "only \"fp8\" is supported");
  const auto fmt = q->find("fmt");
  if (fmt != q->end() && !fmt->is_null() && (!fmt->is_string() || fmt->get<std::string>() != "e4m3"))
    return r.fail("quantization_config.fmt", "only \"e4m3\" is supported");
  const auto block = q->find("weight_block_size");
  if (block == q->end() || *block != json::array({128, 128}))
    return r.fail("quantization_config.weight_block_size", "only [128, 128] is supported");
  const auto act = q->find("activation_scheme");
  if (act != q->end() && !act->is_null() && (!act->is_string() || act->get<std::string>() != "dynamic"))
    return r.fail("quantization_config.activation_scheme", "only \"dynamic\" is supported");
  c->fp8_block_quantized = true;
  return true;
}

// A token id field that may be an integer or a non-empty list of integers (the first is used).
bool token_id(config_reader& r, const std::string& field, int64_t* out, int64_t fallback) {
  const json* v = r.find(field);
  if (v && v->is_array()) {
    if (v->empty()) return r.fail(field, "empty list");
    v = &(*v)[0];
  }
  if (!v) {
    *out = fallback;
    return true;
  }
  if (!v->is_number_integer() || v->get<int64_t>() < 0)
    return r.fail(field, "must be a non-negative integer");
  *out = v->get<int64_t>();
  return true;
}

}  // namespace

bool model_config::parse(const std::string& json_text, const std::string& file, model_config* out,
                         std::string* error) {
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    if (error) *error = file + ": not a valid JSON object";
    return false;
  }
  config_reader r(root, file, error);
  model_config c;
  if (!parse_family(r, &c.family)) return false;
  const int64_t zero = 0;
  if (!r.integer("vocab_size", &c.vocab_size, 1) || !r.integer("hidden_size", &c.hidden_size, 1) ||
      !r.integer("num_hidden_layers", &c.num_hidden_layers, 1) ||
      !r.integer("num_attention_heads", &c.num_attention_heads, 1) ||
      !r.integer("intermediate_size", &c.intermediate_size, 1) ||
      !r.integer("q_lora_rank", &c.q_lora_rank, 0, &zero) || !r.integer("kv_lora_rank", &c.kv_lora_rank, 1) ||
      !r.integer("qk_nope_head_dim", &c.qk_nope_head_dim, 1) ||
      !r.integer("qk_rope_head_dim", &c.qk_rope_head_dim, 2) || !r.integer("v_head_dim", &c.v_head_dim, 1) ||
      !r.integer_or("num_nextn_predict_layers", &c.num_nextn_predict_layers, 0, 0) ||
      !r.integer_or("max_position_embeddings", &c.max_position_embeddings, 1, 4096) ||
      !r.number(root, "", "rms_norm_eps", &c.rms_norm_eps, false, 1e-6) ||
      !r.number(root, "", "rope_theta", &c.rope_theta, false, 10000.0) ||
      !token_id(r, "bos_token_id", &c.bos_token_id, 0) || !token_id(r, "eos_token_id", &c.eos_token_id, 1))
    return false;
  if (c.qk_rope_head_dim % 2 != 0) return r.fail("qk_rope_head_dim", "must be even (RoPE rotates pairs)");
  if (c.rms_norm_eps <= 0) return r.fail("rms_norm_eps", "must be > 0");
  if (c.rope_theta <= 1) return r.fail("rope_theta", "must be > 1");
  if (c.eos_token_id >= c.vocab_size) return r.fail("eos_token_id", "outside the vocabulary");
  if (c.bos_token_id >= c.vocab_size) return r.fail("bos_token_id", "outside the vocabulary");
  if (!parse_router(r, &c)) return false;
  if (c.first_k_dense_replace > c.num_hidden_layers)
    return r.fail("first_k_dense_replace", "exceeds num_hidden_layers");

  std::string act;
  bool flag = false;
  if (!r.string("hidden_act", &act, "silu")) return false;
  if (act != "silu") return r.fail("hidden_act", "unsupported value '" + act + "' (only silu)");
  if (!r.boolean("attention_bias", &flag, false)) return false;
  if (flag) return r.fail("attention_bias", "projection biases are not supported");
  if (!r.boolean("tie_word_embeddings", &flag, false)) return false;
  if (flag) return r.fail("tie_word_embeddings", "tied embeddings are not supported (lm_head is required)");

  if (!parse_rope_scaling(r, &c) || !parse_quantization(r, &c)) return false;
  *out = c;
  return true;
}

}  // namespace rampart::model
