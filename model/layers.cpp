#include "model/layers.hpp"

namespace rampart::model {

namespace {

class loader {
 public:
  loader(const checkpoint& ck, std::string* err) : ck_(ck), err_(err) {}
  bool ok() const { return ok_; }

  weight_matrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    const tensor_view* t = get(name, {rows, cols});
    if (t == nullptr) return {};
    if (t->type == dtype::f8_e4m3) {
      const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
      const tensor_view* s = t->scale_inv;
      if (s == nullptr || s->type != dtype::f32 || s->rows() != sr || s->cols() != sc || s->shape.size() != 2) {
        fail(name + ": F8_E4M3 matrix without an F32 _scale_inv of shape [" + std::to_string(sr) + ", " +
             std::to_string(sc) + "]");
        return {};
      }
    }
    return weight_matrix::from(*t);
  }

  std::vector<float> vector(const std::string& name, int64_t n) {
    std::vector<float> v;
    const tensor_view* t = get(name, {n});
    if (t == nullptr) return v;
    const weight_matrix w = weight_matrix::from(*t);
    if (w.type == dtype::f8_e4m3) {
      fail(name + ": a vector cannot be F8_E4M3");
      return v;
    }
    v.resize(static_cast<size_t>(n));
    kernels_portable().load_row(w, 0, v.data());
    return v;
  }

  bool has(const std::string& name) const { return ck_.find(name) != nullptr; }

 private:
  const tensor_view* get(const std::string& name, const std::vector<int64_t>& shape) {
    if (!ok_) return nullptr;
    load_error e;
    const tensor_view* t = ck_.require(name, shape, &e);
    if (t == nullptr) fail(e.message);
    return t;
  }
  void fail(const std::string& message) {
    if (ok_) *err_ = message;
    ok_ = false;
  }

  const checkpoint& ck_;
  std::string* err_;
  bool ok_ = true;
};

mlp_weights load_mlp(loader& ld, const std::string& prefix, int64_t width, int64_t hidden) {
  mlp_weights m;
  m.gate = ld.matrix(prefix + ".gate_proj.weight", width, hidden);
  m.up = ld.matrix(prefix + ".up_proj.weight", width, hidden);
  m.down = ld.matrix(prefix + ".down_proj.weight", hidden, width);
  return m;
}

}  // namespace

size_t attention_weights::bytes() const {
  return (q_lora ? q_a.bytes() + q_b.bytes() : q.bytes()) + kv_a.bytes() + kv_b.bytes() + o.bytes();
}

bool model_weights::load(const checkpoint& ck, model_weights* out, std::string* err) {
  const model_config& c = ck.config();
  const int64_t D = c.hidden_size, H = c.num_attention_heads, n = c.qk_nope_head_dim, r = c.qk_rope_head_dim;
  const int64_t v = c.v_head_dim, C = c.kv_lora_rank, Q = c.q_lora_rank, V = c.vocab_size;
  if (D <= 0 || H <= 0 || n <= 0 || r <= 0 || r % 2 != 0 || v <= 0 || C <= 0 || V <= 0 || c.num_hidden_layers <= 0) {
    *err = ck.dir() + "/config.json: hidden, heads, head dims, kv_lora_rank, vocab and layers must be positive "
                      "(qk_rope_head_dim even)";
    return false;
  }
  loader ld(ck, err);
  model_weights w;
  w.embed = ld.matrix("model.embed_tokens.weight", V, D);
  w.final_norm = ld.vector("model.norm.weight", D);
  w.lm_head = ld.matrix("lm_head.weight", V, D);
  for (int64_t l = 0; l < c.num_hidden_layers && ld.ok(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    layer_weights L;
    L.input_norm = ld.vector(p + "input_layernorm.weight", D);
    L.post_attention_norm = ld.vector(p + "post_attention_layernorm.weight", D);
    attention_weights& a = L.attn;
    a.q_lora = Q > 0;
    if (a.q_lora) {
      a.q_a = ld.matrix(p + "self_attn.q_a_proj.weight", Q, D);
      a.q_a_norm = ld.vector(p + "self_attn.q_a_layernorm.weight", Q);
      a.q_b = ld.matrix(p + "self_attn.q_b_proj.weight", H * (n + r), Q);
    } else {
      a.q = ld.matrix(p + "self_attn.q_proj.weight", H * (n + r), D);
    }
    a.kv_a = ld.matrix(p + "self_attn.kv_a_proj_with_mqa.weight", C + r, D);
    a.kv_a_norm = ld.vector(p + "self_attn.kv_a_layernorm.weight", C);
    a.kv_b = ld.matrix(p + "self_attn.kv_b_proj.weight", H * (n + v), C);
    a.o = ld.matrix(p + "self_attn.o_proj.weight", D, H * v);
    L.is_moe = c.is_moe_layer(l);
    if (!L.is_moe) {
      L.dense = load_mlp(ld, p + "mlp", c.intermediate_size, D);
    } else {
      const int64_t E = c.n_routed_experts, M = c.moe_intermediate_size;
      L.moe.router = ld.matrix(p + "mlp.gate.weight", E, D);
      if (ld.has(p + "mlp.gate.e_score_correction_bias"))
        L.moe.bias = ld.vector(p + "mlp.gate.e_score_correction_bias", E);
      for (int64_t e = 0; e < E && ld.ok(); ++e)
        L.moe.experts.push_back(load_mlp(ld, p + "mlp.experts." + std::to_string(e), M, D));
      L.moe.has_shared = c.n_shared_experts > 0;
      if (L.moe.has_shared) L.moe.shared = load_mlp(ld, p + "mlp.shared_experts", c.n_shared_experts * M, D);
    }
    w.layers.push_back(std::move(L));
  }
  if (!ld.ok()) return false;
  *out = std::move(w);
  return true;
}

size_t model_weights::bytes_per_token(int64_t experts_per_token) const {
  size_t b = embed.bytes() / static_cast<size_t>(embed.rows) + lm_head.bytes();
  for (const layer_weights& L : layers) {
    b += L.attn.bytes();
    if (!L.is_moe) {
      b += L.dense.bytes();
    } else {
      b += L.moe.router.bytes();
      if (L.moe.has_shared) b += L.moe.shared.bytes();
      if (!L.moe.experts.empty())
        b += static_cast<size_t>(experts_per_token) * L.moe.experts[0].bytes();
    }
  }
  return b;
}

}  // namespace rampart::model
