// The exact forward pass as a program over an executor: weights uploaded once in their stored dtype, a paged
// fp32 latent KV cache in the executor's memory, and one forward step as a sequence of the ops in
// gpu/exact_ops.hpp. EXEC is gpu::cuda_exec (gpu/cuda_exec.cuh: device memory, one thread per index) or
// gpu::host_exec (gpu/host_exec.hpp: host memory, a loop), with:
//   void* alloc(size_t bytes)                 zeroed; throws model::device_failure
//   void release(void* p)
//   void to_device(void* dst, const void* src, size_t bytes), to_host(void* dst, const void* src, size_t bytes)
//   template <class F> void each(int64_t n, const F& f)   f(i) for every i < n, in any order
//   void finish()                              waits for the ops; throws model::device_failure on an error
//   std::string describe() const
//   graph capture(std::function<void()> body)  records BODY's ops without running them (a CUDA graph)
//   void launch(const graph& g)                replays them
//   void gemm_bf16(const dweight& w, const uint16_t* x, int64_t n, float* y)
//                                              fast precision's products: y[n, w.rows] = x[n, w.cols] w^T
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/device_forward.hpp"
#include "engine/sampler.hpp"
#include "gpu/exact_ops.hpp"
#include "gpu/precision.hpp"
#include "gpu/sample_ops.hpp"
#include "gpu/weight_store.hpp"
#include "model/rope.hpp"

namespace rampart::gpu {

// Block tables of a step's tokens packed for the device: token t's table starts at TABLES[AT[t]]. Tokens of one
// sequence are consecutive and share one table (their slots point at the same block vector); each table holds
// the blocks up to the one of its sequence's last position in the step.
struct packed_tables {
  std::vector<int32_t> tables;
  std::vector<int64_t> at;
};
void pack_block_tables(const model::token_slot* slots, int64_t n, int64_t block_tokens, packed_tables* out);

// Attention scores are computed for CHUNK tokens at a time, CHUNK * heads * keys <= BUDGET floats (at least 1).
int64_t attention_chunk(int64_t n, int64_t heads, int64_t keys, int64_t budget);


// Decode steps replay a captured graph per bucket of batch sizes; a step of N sequences uses the smallest bucket
// that holds it (-1: none, it runs uncaptured).
inline const std::vector<int64_t> default_graph_buckets = {1, 2, 4, 8, 16, 32, 48, 64, 96, 128};
int64_t graph_bucket(int64_t n, const std::vector<int64_t>& buckets);
// Whether a step is a decode step: one token per sequence (consecutive tokens never share a block table) and
// every token's logits asked, in order.
bool decode_step(const model::token_slot* slots, int64_t n, const int64_t* logit_rows, int64_t rows);
// Block tables of a decode step padded to M tokens, STRIDE entries per token (token t's table at t * STRIDE):
// each sequence's blocks up to its position's, then PAD; the padding tokens' tables are all PAD (a block no
// sequence owns, where their KV rows land).
void pad_block_tables(const model::token_slot* slots, int64_t n, int64_t m, int64_t block_tokens, int64_t stride,
                      int32_t pad, packed_tables* out);

inline constexpr int64_t score_budget_floats = int64_t{1} << 26;  // 256 MiB of attention scores at most

template <class Exec>
class exact_program final : public model::device_forward {
 public:
  // Uploads W and allocates the KV cache; nullptr + *err when the executor runs out of memory or fails.
  // GRAPHS: decode steps replay captured graphs (default_graph_buckets); false runs every step op by op.
  static std::unique_ptr<exact_program> create(Exec exec, const model::model_config& c, const model::model_weights& w,
                                               int64_t n_blocks, int block_tokens, std::string* err,
                                               bool graphs = true, precision mode = precision::exact) {
    std::unique_ptr<exact_program> p(new exact_program(std::move(exec), c, n_blocks, block_tokens, mode));
    p->graphs_ = graphs;
    try {
      p->upload(w);
      p->kv_ = static_cast<float*>(p->own(p->kv_bytes_));
      p->exec_.finish();
    } catch (const model::device_failure& e) {
      *err = std::string("device ") + p->name_ + ": " + e.what();
      return nullptr;
    }
    return p;
  }

  ~exact_program() override {
    for (scratch_buffer* b : {&b_tokens_, &b_pos_, &b_tables_, &b_at_, &b_rows_, &b_cos_, &b_sin_, &b_x_, &b_xn_, &b_tmp_,
                      &b_q_, &b_qa_, &b_kva_, &b_qabs_, &b_scores_, &b_olat_, &b_o_, &b_logits_r_, &b_scratch_,
                      &b_ids_, &b_wts_, &b_h_, &b_shared_, &b_out_, &b_sample_rows_, &b_sample_params_,
                      &b_sample_tokens_, &b_xb_, &b_u_})
      if (b->p != nullptr) exec_.release(b->p);
  }

  const char* name() const override { return name_.c_str(); }
  size_t kv_bytes() const override { return kv_bytes_; }
  size_t weight_bytes() const override { return store_.bytes(); }

  bool samples() const override { return true; }
  // Graphs captured so far (a bucket's first decode step, and again after a buffer it reads has moved).
  int64_t graph_captures() const { return captures_; }
  int64_t graph_capture_failures() const { return capture_failures_; }
  std::vector<int64_t> graph_buckets = default_graph_buckets;

  void forward(const int32_t* tokens, const model::token_slot* slots, int64_t n, const int64_t* logit_rows,
               int64_t rows, float* logits, const model::sampling_params* const* sample = nullptr,
               const double* uniform = nullptr, int32_t* row_tokens = nullptr) override {
    if (n <= 0) return;
    const int64_t V = c_.vocab_size, half = c_.qk_rope_head_dim / 2;
    // A decode step (one token per sequence, each with its logits) of at most the largest bucket runs as the
    // captured graph of its bucket: padded to the bucket's size, attention over every key a sequence may have.
    // Buckets whose scores over every possible key exceed one chunk (score_budget_floats) run uncaptured: most
    // of those scores' threads would find nothing to do, and their count grows with the cache, not the context.
    int64_t bucket = graphs_ && decode_step(slots, n, logit_rows, rows) ? graph_bucket(n, graph_buckets) : -1;
    if (bucket > 0 && bucket * c_.num_attention_heads * max_keys_ > score_budget_floats) bucket = -1;
    const int64_t m = bucket > 0 ? bucket : n;

    // Host side of the step: tokens, positions, block tables, rope angles (in double, as the CPU engine).
    tokens_h_.assign(tokens, tokens + n);
    tokens_h_.resize(static_cast<size_t>(m), 0);
    pos_h_.assign(static_cast<size_t>(m), 0);
    int64_t keys = 0;
    for (int64_t t = 0; t < n; ++t) keys = std::max(keys, (pos_h_[t] = slots[t].pos) + 1);
    if (bucket > 0) {
      keys = max_keys_;
      pad_block_tables(slots, n, m, block_tokens_, max_blocks_, pad_block_, &tables_h_);
      rows_h_.resize(static_cast<size_t>(m));
      for (int64_t t = 0; t < m; ++t) rows_h_[t] = t;
    } else {
      pack_block_tables(slots, n, block_tokens_, &tables_h_);
      rows_h_.assign(logit_rows, logit_rows + rows);
    }
    const int64_t out_rows = static_cast<int64_t>(rows_h_.size());
    cos_h_.resize(static_cast<size_t>(m * half));
    sin_h_.resize(static_cast<size_t>(m * half));
    for (int64_t t = 0; t < m; ++t) rope_.angles(pos_h_[t], &cos_h_[t * half], &sin_h_[t * half]);
    put(b_tokens_, tokens_h_.data(), m);
    put(b_pos_, pos_h_.data(), m);
    put(b_tables_, tables_h_.tables.data(), static_cast<int64_t>(tables_h_.tables.size()));
    put(b_at_, tables_h_.at.data(), m);
    put(b_rows_, rows_h_.data(), out_rows);
    put(b_cos_, cos_h_.data(), m * half);
    put(b_sin_, sin_h_.data(), m * half);

    if (bucket > 0) {
      graph_entry& g = graphs_by_bucket_[bucket];
      if (g.captured && g.generation == generation_) {
        exec_.launch(g.graph);
      } else {
        // First step of this bucket, or buffers moved since its capture: run it, then capture the same ops
        // with the buffers as they now are.
        run(m, keys, out_rows);
        exec_.finish();
        try {
          g.graph = exec_.capture([this, m, keys, out_rows] { run(m, keys, out_rows); });
          g.generation = generation_;
          g.captured = true;
          ++captures_;
        } catch (const model::device_failure&) {
          graphs_ = false;  // this step's results stand (the eager run); later steps run uncaptured
          ++capture_failures_;
        }
      }
    } else {
      run(m, keys, out_rows);
    }
    if (rows > 0) {
      float* out = static_cast<float*>(b_out_.p);
      // Rows sampled here send only their token; the others their logits (all of them, when any is asked).
      sampled_at_.clear();
      sampled_params_.clear();
      bool logits_wanted = sample == nullptr;
      for (int64_t r = 0; r < rows; ++r) {
        const model::sampling_params* sp = sample != nullptr ? sample[r] : nullptr;
        if (sp == nullptr) {
          logits_wanted = true;
          continue;
        }
        sampled_at_.push_back(r);
        sampled_params_.push_back(row_sampling{sp->temperature, sp->top_k, sp->top_p, sp->min_p, uniform[r]});
      }
      const int64_t ns = static_cast<int64_t>(sampled_at_.size());
      if (ns > 0) {
        // Outside any graph: their moves need not invalidate one.
        const int64_t* d_at_rows = put_buffer(exec_, b_sample_rows_, sampled_at_.data(), ns);
        const row_sampling* d_params = put_buffer(exec_, b_sample_params_, sampled_params_.data(), ns);
        int32_t* d_tokens_out = grow_buffer<int32_t>(exec_, b_sample_tokens_, ns);
        exec_.each(ns, sample_op{out, d_at_rows, d_params, V, d_tokens_out});
        sampled_tokens_.resize(static_cast<size_t>(ns));
        exec_.finish();
        exec_.to_host(sampled_tokens_.data(), d_tokens_out, sizeof(int32_t) * static_cast<size_t>(ns));
        for (int64_t j = 0; j < ns; ++j) row_tokens[sampled_at_[j]] = sampled_tokens_[j];
      }
      exec_.finish();
      if (logits_wanted) exec_.to_host(logits, out, sizeof(float) * static_cast<size_t>(rows * V));
    }
    exec_.finish();
  }

 private:
  struct layer {
    bool q_lora = false, moe = false, has_shared = false;
    dweight q_a, q_b, q, kv_a, kv_b, o;
    const float *q_a_norm = nullptr, *kv_a_norm = nullptr, *input_norm = nullptr, *post_norm = nullptr;
    dweight gate, up, down;  // the dense MLP, or the shared experts of an MoE layer
    const dweight* gate_up = nullptr;  // {gate, up} in device memory (for swiglu_op)
    int64_t width = 0;
    dweight router;
    const float* bias = nullptr;
    const dweight *gates = nullptr, *ups = nullptr, *downs = nullptr;  // per routed expert, in device memory
    int64_t expert_width = 0;
  };

  exact_program(Exec exec, const model::model_config& c, int64_t n_blocks, int block_tokens, precision mode)
      : exec_(std::move(exec)),
        mode_(mode),
        c_(c),
        rope_(c),
        scale_(static_cast<float>(model::attention_softmax_scale(c))),
        router_(model::router_params_for(c)),
        n_blocks_(n_blocks),
        block_tokens_(block_tokens),
        max_keys_(std::min<int64_t>(n_blocks * block_tokens, c.max_position_embeddings)),
        max_blocks_((max_keys_ + block_tokens - 1) / block_tokens),
        pad_block_(static_cast<int32_t>(n_blocks)),
        kv_bytes_(sizeof(float) * static_cast<size_t>(c.num_hidden_layers * (n_blocks + 1) * block_tokens *
                                                      (c.kv_lora_rank + c.qk_rope_head_dim))),
        name_(exec_.describe() + ", " + precision_name(mode)) {}

  void* own(size_t bytes) { return store_.own(bytes); }

  template <class T>
  T* grow(scratch_buffer& b, int64_t count) {
    return grow_buffer<T>(exec_, b, count, &generation_);
  }

  template <class T>
  T* put(scratch_buffer& b, const T* src, int64_t count) {
    return put_buffer(exec_, b, src, count, &generation_);
  }

  // In fast precision an fp8 matrix that project() multiplies is widened to bf16 for the tensor cores.
  dweight upload_projection(const model::weight_matrix& m) {
    return mode_ == precision::fast ? store_.upload_bf16(m) : store_.upload(m);
  }
  dweight upload(const model::weight_matrix& m) { return store_.upload(m); }
  const float* upload_floats(const std::vector<float>& v) { return store_.upload_floats(v); }
  const dweight* upload_table(const std::vector<dweight>& v) { return store_.upload_array(v.data(), v.size()); }

  void upload(const model::model_weights& w) {
    embed_ = upload(w.embed);
    lm_head_ = upload_projection(w.lm_head);
    final_norm_ = upload_floats(w.final_norm);
    for (const model::layer_weights& src : w.layers) {
      layer L;
      const model::attention_weights& a = src.attn;
      L.q_lora = a.q_lora;
      L.q_a = upload_projection(a.q_a);
      L.q_b = upload_projection(a.q_b);
      L.q = upload_projection(a.q);
      L.kv_a = upload_projection(a.kv_a);
      L.kv_b = upload(a.kv_b);
      L.o = upload_projection(a.o);
      L.q_a_norm = upload_floats(a.q_a_norm);
      L.kv_a_norm = upload_floats(a.kv_a_norm);
      L.input_norm = upload_floats(src.input_norm);
      L.post_norm = upload_floats(src.post_attention_norm);
      L.moe = src.is_moe;
      const model::mlp_weights* plain = src.is_moe ? (src.moe.has_shared ? &src.moe.shared : nullptr) : &src.dense;
      if (plain != nullptr) {
        L.gate = upload_projection(plain->gate);
        L.up = upload_projection(plain->up);
        L.gate_up = upload_table({L.gate, L.up});
        L.down = upload_projection(plain->down);
        L.width = plain->width();
      }
      if (src.is_moe) {
        L.has_shared = src.moe.has_shared;
        L.router = upload(src.moe.router);
        L.bias = upload_floats(src.moe.bias);
        std::vector<dweight> g, u, dn;
        for (const model::mlp_weights& e : src.moe.experts) {
          g.push_back(upload(e.gate));
          u.push_back(upload(e.up));
          dn.push_back(upload(e.down));
        }
        L.expert_width = src.moe.experts.empty() ? 0 : src.moe.experts[0].width();
        L.gates = upload_table(g);
        L.ups = upload_table(u);
        L.downs = upload_table(dn);
      }
      layers_.push_back(L);
    }
  }

  // The step's ops over M tokens already uploaded (tokens, positions, tables, angles, logit rows), attention
  // over KEYS keys, logits of ROWS rows into b_out_. Enqueues only: no host synchronisation, and no allocation
  // once the buffers have grown to a step of this shape, so that a graph can capture it.
  void run(int64_t n, int64_t keys, int64_t rows) {
    const int64_t D = c_.hidden_size, V = c_.vocab_size, H = c_.num_attention_heads, C = c_.kv_lora_rank;
    const int64_t nope = c_.qk_nope_head_dim, r = c_.qk_rope_head_dim, v = c_.v_head_dim, half = r / 2;
    const int64_t kw = C + r, qw = H * (nope + r), Q = c_.q_lora_rank;
    const double eps = c_.rms_norm_eps;
    const int32_t* d_tokens = static_cast<const int32_t*>(b_tokens_.p);
    const int64_t* d_pos = static_cast<const int64_t*>(b_pos_.p);
    const int32_t* d_tables = static_cast<const int32_t*>(b_tables_.p);
    const int64_t* d_at = static_cast<const int64_t*>(b_at_.p);
    const int64_t* d_rows = static_cast<const int64_t*>(b_rows_.p);
    const float* d_cos = static_cast<const float*>(b_cos_.p);
    const float* d_sin = static_cast<const float*>(b_sin_.p);
    float* x = grow<float>(b_x_, n * D);
    float* xn = grow<float>(b_xn_, n * D);
    float* tmp = grow<float>(b_tmp_, n * D);

    exec_.each(n * D, embed_op{embed_, d_tokens, x, D});
    if (!layers_.empty()) exec_.each(n, residual_norm_op{x, nullptr, layers_[0].input_norm, xn, D, eps});
    const int64_t chunk = attention_chunk(n, H, keys, score_budget_floats);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const layer& L = layers_[l];
      // Attention.
      float* q = grow<float>(b_q_, n * qw);
      if (L.q_lora) {
        float* qa = grow<float>(b_qa_, n * Q);
        project(L.q_a, xn, D, n, qa);
        exec_.each(n, norm_rows_op{qa, Q, Q, L.q_a_norm, eps});
        project(L.q_b, qa, Q, n, q);
      } else {
        project(L.q, xn, D, n, q);
      }
      float* kva = grow<float>(b_kva_, n * kw);
      project(L.kv_a, xn, D, n, kva);
      float* layer_cache = kv_ + static_cast<int64_t>(l) * (n_blocks_ + 1) * block_tokens_ * kw;  // + the pad block
      exec_.each(n, kv_store_op{kva, C, kw, half, L.kv_a_norm, eps, d_cos, d_sin, d_pos, d_tables, d_at, layer_cache,
                                block_tokens_});
      float* qabs = grow<float>(b_qabs_, n * H * kw);
      exec_.each(n * H * C, absorb_op{L.kv_b, q, qw, H, C, kw, nope, r, v, qabs});
      exec_.each(n * H, query_rope_op{q, qw, H, C, kw, nope, r, half, d_cos, d_sin, qabs});
      float* olat = grow<float>(b_olat_, n * H * C);
      float* scores = grow<float>(b_scores_, chunk * H * keys);
      const kv_rows cache{layer_cache, d_tables, d_at, block_tokens_, kw};
      for (int64_t t0 = 0; t0 < n; t0 += chunk) {
        const int64_t nt = std::min(chunk, n - t0);
        exec_.each(nt * H * ((keys + score_tile - 1) / score_tile), scores_op{cache, qabs, d_pos, t0, H, keys, scores});
        exec_.each(nt * H, softmax_op{scores, d_pos, t0, H, keys, scale_});
        exec_.each(nt * H * C, weighted_op{cache, scores, d_pos, t0, H, C, keys, olat});
      }
      float* o = grow<float>(b_o_, n * H * v);
      exec_.each(n * H * v, values_op{L.kv_b, olat, H, C, nope, v, o});
      project(L.o, o, H * v, n, tmp);
      exec_.each(n, residual_norm_op{x, tmp, L.post_norm, xn, D, eps});
      // Feed-forward.
      if (!L.moe) {
        mlp(L, xn, n, tmp);
      } else {
        const int64_t E = c_.n_routed_experts, K = c_.num_experts_per_tok, M = L.expert_width;
        float* logits_r = grow<float>(b_logits_r_, n * E);
        exec_.each(n * E, matmul_op{L.router, xn, D, logits_r, E});
        float* scratch = grow<float>(b_scratch_, n * (3 * E + 2 * router_.groups));
        int32_t* ids = grow<int32_t>(b_ids_, n * K);
        float* wts = grow<float>(b_wts_, n * K);
        exec_.each(n, route_op{router_, logits_r, L.bias, scratch, ids, wts});
        float* h = grow<float>(b_h_, n * K * M);
        exec_.each(n * K * M, swiglu_op{L.gates, L.ups, ids, xn, D, K, M, h});
        exec_.each(n * D, experts_down_op{L.downs, ids, wts, h, D, K, M, tmp});
        if (L.has_shared) {
          float* shared = grow<float>(b_shared_, n * D);
          mlp(L, xn, n, shared);
          exec_.each(n * D, add_op{tmp, shared});
        }
      }
      const float* next_norm = l + 1 < layers_.size() ? layers_[l + 1].input_norm : nullptr;
      exec_.each(n, residual_norm_op{x, tmp, next_norm, xn, D, eps});
    }
    if (rows > 0) {
      exec_.each(rows, select_norm_op{x, d_rows, final_norm_, xn, D, eps});
      float* out = grow<float>(b_out_, rows * V);
      project(lm_head_, xn, D, rows, out);
    }
  }

  // Y[n, W.rows] = X[n, W.cols] (row stride XS) times W^T: fp32 per-index in exact precision, or with bf16
  // weights in fast precision, bf16 activations on the tensor cores.
  void project(const dweight& w, const float* x, int64_t xs, int64_t n, float* y) {
    if (mode_ == precision::fast && w.type == model::dtype::bf16) {
      uint16_t* xb = grow<uint16_t>(b_xb_, n * w.cols);
      exec_.each(n * w.cols, to_bf16_op{x, xs, w.cols, xb});
      exec_.gemm_bf16(w, xb, n, y);
    } else {
      exec_.each(n * w.rows, matmul_op{w, x, xs, y, w.rows});
    }
  }

  // L's plain SwiGLU MLP (the dense layer or the shared experts): out = down(silu(gate x) * up x).
  void mlp(const layer& L, const float* xn, int64_t n, float* out) {
    const int64_t D = c_.hidden_size, M = L.width;
    float* h = grow<float>(b_h_, n * M);
    if (mode_ == precision::fast && L.gate.type == model::dtype::bf16) {
      float* u = grow<float>(b_u_, n * M);
      project(L.gate, xn, D, n, h);
      project(L.up, xn, D, n, u);
      exec_.each(n * M, silu_mul_op{h, u});
    } else {
      exec_.each(n * M, swiglu_op{L.gate_up, L.gate_up + 1, nullptr, xn, D, 1, M, h});
    }
    project(L.down, h, M, n, out);
  }

  Exec exec_;
  weight_store<Exec> store_{&exec_};  // weights and the KV cache; released after the step buffers
  precision mode_;
  const model::model_config c_;
  model::rope rope_;
  float scale_;
  model::router_params router_;
  int64_t n_blocks_;
  int64_t block_tokens_;
  int64_t max_keys_;    // keys a sequence may have: the cache's tokens, at most max_position_embeddings
  int64_t max_blocks_;  // block-table entries that takes
  int32_t pad_block_;   // the extra block padding tokens write to (index n_blocks)
  size_t kv_bytes_;
  bool graphs_ = true;
  struct graph_entry {
    typename Exec::graph graph{};
    uint64_t generation = 0;
    bool captured = false;
  };
  std::map<int64_t, graph_entry> graphs_by_bucket_;
  uint64_t generation_ = 0;  // bumped whenever a buffer moves
  int64_t captures_ = 0, capture_failures_ = 0;
  std::string name_;
  dweight embed_, lm_head_;
  const float* final_norm_ = nullptr;
  std::vector<layer> layers_;
  float* kv_ = nullptr;
  // Step buffers, grown on demand.
  scratch_buffer b_tokens_, b_pos_, b_tables_, b_at_, b_rows_, b_cos_, b_sin_, b_x_, b_xn_, b_tmp_, b_q_, b_qa_, b_kva_,
      b_qabs_, b_scores_, b_olat_, b_o_, b_logits_r_, b_scratch_, b_ids_, b_wts_, b_h_, b_shared_, b_out_,
      b_sample_rows_, b_sample_params_, b_sample_tokens_, b_xb_, b_u_;
  std::vector<int64_t> sampled_at_;
  std::vector<row_sampling> sampled_params_;
  std::vector<int32_t> sampled_tokens_;
  std::vector<int32_t> tokens_h_;
  std::vector<int64_t> pos_h_, rows_h_;
  std::vector<float> cos_h_, sin_h_;
  packed_tables tables_h_;
};

}  // namespace rampart::gpu
