#include "model/layers.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <thread>

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

void model_weights::arena_deleter::operator()(std::byte* p) const { ::munmap(p, bytes); }

void model_weights::for_each_matrix(const std::function<void(const weight_matrix&)>& fn) const {
  auto mlp = [&](const mlp_weights& m) {
    fn(m.gate);
    fn(m.up);
    fn(m.down);
  };
  fn(embed);
  fn(lm_head);
  for (const layer_weights& L : layers) {
    const attention_weights& a = L.attn;
    for (const weight_matrix* m : {&a.q_a, &a.q_b, &a.q, &a.kv_a, &a.o})
      if (m->data != nullptr) fn(*m);
    if (a.uk_t.empty()) fn(a.kv_b);  // else read only through its per-head matrices
    for (const weight_matrix& m : a.uk_t) fn(m);
    for (const weight_matrix& m : a.uv) fn(m);
    if (!L.is_moe) {
      mlp(L.dense);
    } else {
      fn(L.moe.router);
      for (const mlp_weights& e : L.moe.experts) mlp(e);
      if (L.moe.has_shared) mlp(L.moe.shared);
    }
  }
}

namespace {

// One matrix to rewrite: SRC (or its transpose) into *DST at byte offset OFFSET of the arena.
struct pack_job {
  weight_matrix* dst;
  weight_matrix src;
  bool transpose;
  size_t offset = 0;
  bool release = true;  // drop SRC's pages once written (not for kv_b's per-head parts: after all of them)
};

// Drops the whole pages inside [P, P + N) of a read-only file mapping from this process (they are read back
// from the file if touched again).
void release_pages(const std::byte* p, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

}  // namespace

size_t model_weights::pack_for(const model_config& c, const kernel_ops& k, int threads, bool routed_experts) {
  std::vector<pack_job> jobs;
  auto wanted = [&](const weight_matrix& m) {
    return m.data != nullptr && m.layout == weight_layout::natural &&
           k.preferred_layout(m) == weight_layout::panels16;
  };
  auto want = [&](weight_matrix& m) {
    if (wanted(m)) jobs.push_back({&m, m, false});
  };
  auto mlp = [&](mlp_weights& m) {
    want(m.gate);
    want(m.up);
    want(m.down);
  };
  want(lm_head);
  const int64_t H = c.num_attention_heads, n = c.qk_nope_head_dim, v = c.v_head_dim;
  for (layer_weights& L : layers) {
    attention_weights& a = L.attn;
    for (weight_matrix* m : {&a.q_a, &a.q_b, &a.q, &a.kv_a, &a.o}) want(*m);
    if (wanted(a.kv_b) && a.uk_t.empty()) {
      // kv_b holds, per head, n rows of W_UK then v rows of W_UV.
      a.uk_t.resize(static_cast<size_t>(H));
      a.uv.resize(static_cast<size_t>(H));
      for (int64_t h = 0; h < H; ++h) {
        jobs.push_back({&a.uk_t[h], a.kv_b.slice_rows(h * (n + v), n), true, 0, false});
        jobs.push_back({&a.uv[h], a.kv_b.slice_rows(h * (n + v) + n, v), false, 0, false});
      }
    }
    if (!L.is_moe) {
      mlp(L.dense);
    } else {
      want(L.moe.router);
      if (routed_experts)
        for (mlp_weights& e : L.moe.experts) mlp(e);
      if (L.moe.has_shared) mlp(L.moe.shared);
    }
  }
  if (jobs.empty()) return 0;
  size_t total = 0;
  for (pack_job& j : jobs) {
    j.offset = total;
    const int64_t rows = j.transpose ? j.src.cols : j.src.rows, cols = j.transpose ? j.src.rows : j.src.cols;
    total += static_cast<size_t>(panel_count(rows) * panel_bytes(cols));
  }
  // Refuse up front what the machine cannot hold (an overcommitted mapping would be killed half-way instead).
  {
    std::ifstream meminfo("/proc/meminfo");
    std::string line;
    while (std::getline(meminfo, line))
      if (line.rfind("MemAvailable:", 0) == 0) {
        if (total / 1024 > std::strtoull(line.c_str() + 13, nullptr, 10)) throw std::bad_alloc();
        break;
      }
  }
  // One anonymous mapping for all of them, in huge pages where the kernel allows: decode streams every byte of
  // it per token, and 2 MiB pages take the page walks out of that stream.
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throw std::bad_alloc();
  ::madvise(mem, total, MADV_HUGEPAGE);
  packed_ = std::unique_ptr<std::byte, arena_deleter>(static_cast<std::byte*>(mem), arena_deleter{total});
  std::byte* base = packed_.get();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      pack_job& j = jobs[i];
      pack_panels16(j.src, j.transpose, base + j.offset);
      const int64_t rows = j.transpose ? j.src.cols : j.src.rows, cols = j.transpose ? j.src.rows : j.src.cols;
      *j.dst = panels16_view(base + j.offset, rows, cols);
      if (j.release) release_pages(j.src.row_ptr(0), j.src.storage_bytes());
    }
  };
  std::vector<std::thread> helpers;
  for (int t = 1; t < std::max(threads, 1); ++t) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  // kv_b's natural view stays valid (a touch reads its pages back from the file).
  for (layer_weights& L : layers)
    if (!L.attn.uk_t.empty()) release_pages(L.attn.kv_b.row_ptr(0), L.attn.kv_b.storage_bytes());
  return total;
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
