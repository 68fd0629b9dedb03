// The synthetic checkpoint's tensor plan, value recipe and streaming writer (presets and config.json live in
// synthetic_config.cpp).
#include "testkit/synthetic_checkpoint.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "testkit/safetensors_writer.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is written in host byte order");

namespace rampart::model {
namespace {

constexpr uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char b : s) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

// The recipe for one tensor: value(i) = float(center + (2u(i) - 1) * amp), u from a splitmix64 finaliser.
struct value_recipe {
  uint64_t key;
  double center;
  double amp;

  value_recipe(uint64_t seed, const std::string& name, double c, double a)
      : key(fnv1a64(name) ^ (seed * golden_gamma)), center(c), amp(a) {}

  float operator()(uint64_t i) const {
    uint64_t z = key + (i + 1) * golden_gamma;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    const double u = static_cast<double>(z >> 40) / 16777216.0;
    return static_cast<float>(center + (2.0 * u - 1.0) * amp);
  }
};

// Runs fn(begin, end) over [0, n) split into THREADS contiguous parts.
template <typename Fn>
void parallel_ranges(uint64_t n, unsigned threads, Fn fn) {
  if (threads <= 1 || n < 65536) {
    fn(uint64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  const uint64_t step = (n + threads - 1) / threads;
  for (unsigned t = 1; t < threads; ++t) {
    const uint64_t b = std::min<uint64_t>(n, t * step), e = std::min<uint64_t>(n, b + step);
    if (b < e) pool.emplace_back(fn, b, e);
  }
  fn(uint64_t{0}, std::min<uint64_t>(n, step));
  for (auto& th : pool) th.join();
}

class plan_builder {
 public:
  explicit plan_builder(const synthetic_spec& s) : s_(s), c_(s.config) {}

  std::vector<synthetic_tensor> build() {
    const int64_t D = c_.hidden_size, V = c_.vocab_size;
    add("model.embed_tokens.weight", {V, D}, 0.0, 1.0, false);
    for (int64_t l = 0; l < c_.num_hidden_layers; ++l) layer(l, c_.is_moe_layer(l));
    for (int64_t k = 0; k < c_.num_nextn_predict_layers; ++k) mtp_layer(c_.num_hidden_layers + k);
    add("model.norm.weight", {D}, 1.0, 0.2, false);
    add("lm_head.weight", {V, D}, 0.0, 2.0 * std::sqrt(3.0) / std::sqrt(static_cast<double>(D)), false);
    return std::move(out_);
  }

 private:
  static double inv(int64_t n) { return 1.0 / std::sqrt(static_cast<double>(n)); }

  void add(const std::string& name, std::vector<int64_t> shape, double center, double amp, bool quantizable,
           const std::string& value_name = "") {
    synthetic_tensor t;
    t.name = name;
    t.value_name = value_name.empty() ? name : value_name;
    t.center = center;
    t.amp = amp;
    t.shape = std::move(shape);
    if (quantizable && s_.fp8) {
      t.type = dtype::f8_e4m3;
      t.what = synthetic_tensor::kind::fp8_matrix;
      synthetic_tensor scale;
      scale.name = name + "_scale_inv";
      scale.value_name = t.value_name;
      scale.type = dtype::f32;
      scale.shape = {(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128};
      scale.what = synthetic_tensor::kind::fp8_scales;
      out_.push_back(std::move(t));
      out_.push_back(std::move(scale));
      return;
    }
    t.type = s_.storage;
    out_.push_back(std::move(t));
  }

  void mlp(const std::string& p, int64_t width) {
    const int64_t D = c_.hidden_size;
    const double r3 = std::sqrt(3.0);
    add(p + "gate_proj.weight", {width, D}, 0.0, r3 * inv(D), true);
    add(p + "up_proj.weight", {width, D}, 0.0, r3 * inv(D), true);
    add(p + "down_proj.weight", {D, width}, 0.0, 0.6 * r3 * inv(width), true);
  }

  void layer(int64_t l, bool moe) {
    const int64_t D = c_.hidden_size, H = c_.num_attention_heads, Q = c_.q_lora_rank, C = c_.kv_lora_rank;
    const int64_t n = c_.qk_nope_head_dim, r = c_.qk_rope_head_dim, v = c_.v_head_dim;
    const double r3 = std::sqrt(3.0);
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {D}, 1.0, 0.2, false);
    if (Q > 0) {
      add(p + "self_attn.q_a_proj.weight", {Q, D}, 0.0, r3 * inv(D), true);
      add(p + "self_attn.q_a_layernorm.weight", {Q}, 1.0, 0.2, false);
      add(p + "self_attn.q_b_proj.weight", {H * (n + r), Q}, 0.0, r3 * inv(Q), true);
    } else {
      add(p + "self_attn.q_proj.weight", {H * (n + r), D}, 0.0, r3 * inv(D), true);
    }
    add(p + "self_attn.kv_a_proj_with_mqa.weight", {C + r, D}, 0.0, r3 * inv(D), true);
    add(p + "self_attn.kv_a_layernorm.weight", {C}, 1.0, 0.2, false);
    add(p + "self_attn.kv_b_proj.weight", {H * (n + v), C}, 0.0, r3 * inv(C), true);
    add(p + "self_attn.o_proj.weight", {D, H * v}, 0.0, 0.6 * r3 * inv(H * v), true);
    add(p + "post_attention_layernorm.weight", {D}, 1.0, 0.2, false);
    if (!moe) {
      mlp(p + "mlp.", c_.intermediate_size);
      return;
    }
    const int64_t E = c_.n_routed_experts;
    add(p + "mlp.gate.weight", {E, D}, 0.0, 1.5 * r3 * inv(D), false);
    if (c_.topk_method == router_topk::noaux_tc) {
      synthetic_tensor bias;
      bias.name = bias.value_name = p + "mlp.gate.e_score_correction_bias";
      bias.type = dtype::f32;
      bias.shape = {E};
      bias.center = 0.25;
      bias.amp = 0.25;
      out_.push_back(std::move(bias));
    }
    for (int64_t e = 0; e < E; ++e)
      mlp(p + "mlp.experts." + std::to_string(e) + ".", c_.moe_intermediate_size);
    if (c_.n_shared_experts > 0)
      mlp(p + "mlp.shared_experts.", c_.moe_intermediate_size * c_.n_shared_experts);
  }

  // An MTP module: its own copies of the embedding and output head around one MoE decoder layer.
  void mtp_layer(int64_t k) {
    const int64_t D = c_.hidden_size, V = c_.vocab_size;
    const std::string p = "model.layers." + std::to_string(k) + ".";
    add(p + "embed_tokens.weight", {V, D}, 0.0, 1.0, false, "model.embed_tokens.weight");
    add(p + "enorm.weight", {D}, 1.0, 0.2, false);
    add(p + "hnorm.weight", {D}, 1.0, 0.2, false);
    add(p + "eh_proj.weight", {D, 2 * D}, 0.0, std::sqrt(3.0) * inv(2 * D), false);
    layer(k, c_.n_routed_experts > 0);
    add(p + "shared_head.norm.weight", {D}, 1.0, 0.2, false);
    add(p + "shared_head.head.weight", {V, D}, 0.0, 2.0 * std::sqrt(3.0) / std::sqrt(static_cast<double>(D)),
        false, "lm_head.weight");
  }

  const synthetic_spec& s_;
  const model_config& c_;
  std::vector<synthetic_tensor> out_;
};

// Streams the plan's tensors into one file; fp8 scales computed with a matrix are kept until their entry.
class tensor_streamer {
 public:
  tensor_streamer(const synthetic_spec& spec, unsigned threads) : spec_(spec), threads_(threads) {}

  bool write(const synthetic_tensor& t, safetensors_stream* out, std::string* err) {
    const value_recipe recipe(spec_.seed, t.value_name, t.center, t.amp);
    if (t.what == synthetic_tensor::kind::fp8_scales)
      return out->write(scales_.data(), scales_.size() * 4, err);
    if (t.what == synthetic_tensor::kind::fp8_matrix) return write_fp8(t, recipe, out, err);
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
    const size_t esize = dtype_size(t.type);
    const uint64_t chunk = 1ull << 22;
    bytes_.resize(std::min(numel, chunk) * esize);
    for (uint64_t first = 0; first < numel; first += chunk) {
      const uint64_t count = std::min(chunk, numel - first);
      std::byte* dst = bytes_.data();
      const bool bf16 = t.type == dtype::bf16;
      parallel_ranges(count, threads_, [&](uint64_t b, uint64_t e) {
        for (uint64_t i = b; i < e; ++i) {
          const float f = recipe(first + i);
          if (bf16) {
            const uint16_t h = float_to_bf16(f);
            std::memcpy(dst + 2 * i, &h, 2);
          } else {
            std::memcpy(dst + 4 * i, &f, 4);
          }
        }
      });
      if (!out->write(dst, count * esize, err)) return false;
    }
    return true;
  }

 private:
  // Per 128x128 block: s = max|W| / 448 (1.0 for an all-zero block), code = e4m3(W / s), all in float32.
  bool write_fp8(const synthetic_tensor& t, const value_recipe& recipe, safetensors_stream* out,
                 std::string* err) {
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const int64_t col_blocks = (cols + 127) / 128;
    scales_.assign(static_cast<size_t>(((rows + 127) / 128) * col_blocks), 1.0f);
    for (int64_t r0 = 0; r0 < rows; r0 += 128) {
      const int64_t nr = std::min<int64_t>(128, rows - r0);
      const uint64_t base = static_cast<uint64_t>(r0) * cols;
      values_.resize(static_cast<size_t>(nr * cols));
      parallel_ranges(values_.size(), threads_, [&](uint64_t b, uint64_t e) {
        for (uint64_t i = b; i < e; ++i) values_[i] = recipe(base + i);
      });
      bytes_.resize(values_.size());
      for (int64_t cb = 0; cb < col_blocks; ++cb) {
        const int64_t c0 = cb * 128, c1 = std::min<int64_t>(cols, c0 + 128);
        float amax = 0.0f;
        for (int64_t i = 0; i < nr; ++i)
          for (int64_t j = c0; j < c1; ++j) amax = std::max(amax, std::fabs(values_[i * cols + j]));
        const float s = amax == 0.0f ? 1.0f : amax / 448.0f;
        scales_[static_cast<size_t>((r0 / 128) * col_blocks + cb)] = s;
        for (int64_t i = 0; i < nr; ++i)
          for (int64_t j = c0; j < c1; ++j)
            bytes_[i * cols + j] = static_cast<std::byte>(float_to_e4m3(values_[i * cols + j] / s));
      }
      if (!out->write(bytes_.data(), bytes_.size(), err)) return false;
    }
    return true;
  }

  const synthetic_spec& spec_;
  unsigned threads_;
  std::vector<std::byte> bytes_;
  std::vector<float> values_;
  std::vector<float> scales_;
};

std::string shard_name(int i, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
  return buf;
}

bool write_text(const std::string& path, const std::string& text, std::string* err) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    *err = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    *err = path + ": write error";
    return false;
  }
  return true;
}

}  // namespace

float synthetic_value(uint64_t seed, const std::string& name, double center, double amp, uint64_t index) {
  return value_recipe(seed, name, center, amp)(index);
}

std::vector<synthetic_tensor> synthetic_plan(const synthetic_spec& spec) {
  return plan_builder(spec).build();
}

bool write_synthetic_checkpoint(const synthetic_spec& spec, const std::string& dir, unsigned threads,
                                std::string* err) {
  if (spec.storage != dtype::bf16 && spec.storage != dtype::f32) {
    *err = "storage dtype must be bf16 or f32";
    return false;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *err = dir + ": cannot create directory: " + std::strerror(errno);
    return false;
  }
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const std::vector<synthetic_tensor> plan = synthetic_plan(spec);

  // Shards cut the plan into contiguous runs of roughly equal bytes, never between a matrix and its scales.
  uint64_t total = 0;
  std::vector<uint64_t> bytes(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    tensor_entry e{plan[i].name, plan[i].type, plan[i].shape};
    total += bytes[i] = e.nbytes();
  }
  const int shards = std::max(1, spec.shards);
  std::vector<size_t> first(1, 0);  // index of each shard's first tensor
  uint64_t running = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const bool cut_allowed = plan[i].what != synthetic_tensor::kind::fp8_scales && i > first.back();
    if (static_cast<int>(first.size()) < shards && cut_allowed && running * shards >= total * first.size())
      first.push_back(i);
    running += bytes[i];
  }
  if (static_cast<int>(first.size()) != shards) {
    *err =
        "cannot split " + std::to_string(plan.size()) + " tensors into " + std::to_string(shards) + " shards";
    return false;
  }
  first.push_back(plan.size());

  const std::string base = dir.back() == '/' ? dir : dir + "/";
  if (!write_text(base + "config.json", synthetic_config_json(spec), err)) return false;
  tensor_streamer streamer(spec, threads);
  nlohmann::json weight_map = nlohmann::json::object();
  for (int s = 0; s < shards; ++s) {
    const std::string file = shards == 1 ? "model.safetensors" : shard_name(s, shards);
    std::vector<tensor_entry> entries;
    for (size_t i = first[s]; i < first[s + 1]; ++i) {
      entries.push_back({plan[i].name, plan[i].type, plan[i].shape});
      weight_map[plan[i].name] = file;
    }
    safetensors_stream out;
    if (!out.open(base + file, entries, err)) return false;
    for (size_t i = first[s]; i < first[s + 1]; ++i)
      if (!streamer.write(plan[i], &out, err)) return false;
    if (!out.close(err)) return false;
  }
  if (shards > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    if (!write_text(base + "model.safetensors.index.json", index.dump(2) + "\n", err)) return false;
  }
  return true;
}

}  // namespace rampart::model
