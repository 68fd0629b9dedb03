#include "model/attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "kernels/kernels_parallel.hpp"

namespace rampart::model {

namespace {
template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
}  // namespace

mla_attention::mla_attention(const model_config& config, const kernel_ops& k, thread_pool& pool,
                             int64_t max_context)
    : cfg_(config),
      k_(k),
      pool_(pool),
      rope_(config),
      scale_(static_cast<float>(attention_softmax_scale(config))),
      max_context_(max_context),
      H_(config.num_attention_heads),
      nope_(config.qk_nope_head_dim),
      r_(config.qk_rope_head_dim),
      v_(config.v_head_dim),
      C_(config.kv_lora_rank),
      Q_(config.q_lora_rank),
      D_(config.hidden_size) {
  row_scratch_.resize(static_cast<size_t>(pool.size() * C_));
  // Per thread: H scores per key, or mqa_attend's 16 per key plus 16 per query column.
  score_scratch_.resize(static_cast<size_t>(pool.size() * std::max<int64_t>(H_, 16) * (max_context + C_ + r_)));
  row_ptr_scratch_.resize(static_cast<size_t>(pool.size() * max_context));
}

void mla_attention::prepare(const token_slot* slots, int64_t n) {
  const int64_t half = r_ / 2;
  grow(cos_, static_cast<size_t>(n * half));
  grow(sin_, static_cast<size_t>(n * half));
  for (int64_t t = 0; t < n; ++t) rope_.angles(slots[t].pos, &cos_[t * half], &sin_[t * half]);
}

void mla_attention::forward(const attention_weights& w, int64_t layer, const float* xn, int64_t n,
                            const token_slot* slots, kv_cache& kv, float* out) {
  const int64_t qw = H_ * (nope_ + r_), kw = C_ + r_, half = r_ / 2;
  const int bs = kv.block_tokens();
  grow(q_, static_cast<size_t>(n * qw));
  grow(kva_, static_cast<size_t>(n * kw));
  grow(qabs_, static_cast<size_t>(n * H_ * kw));
  grow(olat_, static_cast<size_t>(n * H_ * C_));
  grow(o_, static_cast<size_t>(n * H_ * v_));

  std::optional<phase_timer> timer(std::in_place, profile_, step_phase::attention_projections);
  // Queries.
  if (w.q_lora) {
    grow(qa_, static_cast<size_t>(n * Q_));
    matmul(pool_, k_, w.q_a, xn, D_, n, qa_.data(), Q_);
    for_tokens(pool_, n, [&](int64_t t, int) {
      rms_norm(&qa_[t * Q_], w.q_a_norm.data(), Q_, cfg_.rms_norm_eps, &qa_[t * Q_]);
    });
    matmul(pool_, k_, w.q_b, qa_.data(), Q_, n, q_.data(), qw);
  } else {
    matmul(pool_, k_, w.q, xn, D_, n, q_.data(), qw);
  }

  // Latent keys: normalise c, rotate k_rope, store both in the cache at the token's position.
  matmul(pool_, k_, w.kv_a, xn, D_, n, kva_.data(), kw);
  for_tokens(pool_, n, [&](int64_t t, int) {  // each token writes its own cache row
    float* a = &kva_[t * kw];
    rms_norm(a, w.kv_a_norm.data(), C_, cfg_.rms_norm_eps, a);
    rope_.apply(a + C_, &cos_[t * half], &sin_[t * half]);
    const int64_t pos = slots[t].pos;
    std::memcpy(kv.row(layer, slots[t].blocks[pos / bs], pos % bs), a, sizeof(float) * kw);
  });

  // Absorbed queries [t, h] = (q_nope W_UK[h], RoPE(q_rope)), head by head.
  pool_.parallel_for(H_, [&](int64_t h0, int64_t h1, int thr) {
    float* row = &row_scratch_[thr * C_];
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t t = 0; t < n; ++t) {
        float* qr = &qabs_[(t * H_ + h) * kw + C_];
        std::memcpy(qr, &q_[t * qw + h * (nope_ + r_) + nope_], sizeof(float) * r_);
        rope_.apply(qr, &cos_[t * half], &sin_[t * half]);
      }
    for (int64_t h = h0; h < h1; ++h) {
      if (!w.uk_t.empty()) {  // packed weights: W_UK[h]^T as a matrix
        k_.gemm_rows(w.uk_t[h], &q_[h * (nope_ + r_)], qw, n, &qabs_[h * kw], H_ * kw, 0, C_);
        continue;
      }
      for (int64_t t = 0; t < n; ++t) std::fill_n(&qabs_[(t * H_ + h) * kw], C_, 0.0f);
      for (int64_t i = 0; i < nope_; ++i) {
        k_.load_row(w.kv_b, h * (nope_ + v_) + i, row);
        for (int64_t t = 0; t < n; ++t)
          k_.axpy(q_[t * qw + h * (nope_ + r_) + i], row, &qabs_[(t * H_ + h) * kw], C_);
      }
    }
  });

  timer.emplace(profile_, step_phase::attention_scores);
  // Scores, softmax and latent outputs. Few tokens: split heads too, so every thread has work. Tokens are
  // visited from both ends alternately so the contiguous split balances causal prefill's growing cost.
  const int64_t threads = pool_.size();
  const int64_t groups = n >= threads ? 1 : std::min<int64_t>(H_, threads);
  const int64_t hg = (H_ + groups - 1) / groups;
  pool_.parallel_for(n * groups, [&](int64_t b, int64_t e, int thr) {
    float* scores = &score_scratch_[static_cast<size_t>(thr * std::max<int64_t>(H_, 16) * (max_context_ + C_ + r_))];
    const float** rows = &row_ptr_scratch_[static_cast<size_t>(thr * max_context_)];
    for (int64_t it = b; it < e; ++it) {
      const int64_t i = it / groups, g = it % groups;
      const int64_t t = i % 2 == 0 ? i / 2 : n - 1 - i / 2;
      const int h0 = static_cast<int>(g * hg), h1 = static_cast<int>(std::min(H_, (g + 1) * hg));
      if (h0 < h1) attend(layer, t, h0, h1, slots[t], kv, scores, rows);
    }
  });

  timer.emplace(profile_, step_phase::attention_output);
  // Values: o[t, h] = W_UV[h] o_lat[t, h], then the output projection.
  pool_.parallel_for(H_, [&](int64_t h0, int64_t h1, int) {
    for (int64_t h = h0; h < h1; ++h) {
      const weight_matrix uv = w.uv.empty() ? w.kv_b.slice_rows(h * (nope_ + v_) + nope_, v_) : w.uv[h];
      k_.gemm_rows(uv, &olat_[h * C_], H_ * C_, n, &o_[h * v_], H_ * v_, 0, v_);
    }
  });
  matmul(pool_, k_, w.o, o_.data(), H_ * v_, n, out, D_);
}

void mla_attention::attend(int64_t layer, int64_t t, int h0, int h1, const token_slot& slot, const kv_cache& kv,
                           float* scores, const float** rows) {
  const int64_t kw = C_ + r_, keys = slot.pos + 1, nh = h1 - h0;
  const int bs = kv.block_tokens();
  const float* q = &qabs_[(t * H_ + h0) * kw];
  if (k_.mqa_attend != nullptr) {
    for (int64_t s = 0; s < keys; ++s) rows[s] = kv.row(layer, slot.blocks[s / bs], s % bs);
    k_.mqa_attend(q, kw, nh, rows, keys, kw, C_, scale_, scores, &olat_[(t * H_ + h0) * C_], C_);
    return;
  }
  // Scores of heads h0..h1 against one block of cached rows at a time: the block is a [rows, C + r] matrix.
  for (int64_t b = 0; b * bs < keys; ++b) {
    const int64_t n_rows = std::min<int64_t>(bs, keys - b * bs);
    weight_matrix block;
    block.type = dtype::f32;
    block.rows = n_rows;
    block.cols = kw;
    block.data = reinterpret_cast<const std::byte*>(kv.row(layer, slot.blocks[b], 0));
    k_.gemm_rows(block, q, kw, nh, scores + b * bs, max_context_, 0, n_rows);
    for (int64_t i = 0; i < n_rows; ++i) rows[b * bs + i] = kv.row(layer, slot.blocks[b], i);
  }
  for (int64_t h = 0; h < nh; ++h) k_.softmax(scores + h * max_context_, keys, scale_);
  k_.weighted_rows(rows, keys, scores, max_context_, nh, C_, &olat_[(t * H_ + h0) * C_], C_);
}

}  // namespace rampart::model
