#include "model/moe.hpp"

#include <algorithm>

#include "kernels/kernels_parallel.hpp"
#include "model/router_row.hpp"

namespace rampart::model {

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

void route_token(const model_config& c, const float* logits, const float* bias, float* scratch,
                 int32_t* expert_ids, float* weights) {
  route_row(router_params_for(c), logits, bias, scratch, expert_ids, weights);
}

feed_forward::feed_forward(const model_config& config, const kernel_ops& k, thread_pool& pool,
                           expert_backend& experts)
    : cfg_(config), k_(k), pool_(pool), experts_(experts) {}

void feed_forward::mlp(const mlp_weights& w, const float* xn, int64_t n, float* out) {
  const phase_timer timer(profile_, step_phase::dense_mlp);
  mlp_product(w, xn, n, out);
}

void feed_forward::mlp_product(const mlp_weights& w, const float* xn, int64_t n, float* out) {
  const int64_t I = w.width(), D = cfg_.hidden_size;
  constexpr int64_t chunk = 16;
  grow(gate_, static_cast<size_t>(n * I));
  grow(up_, static_cast<size_t>(n * I));
  const prepared_input in = prepare_input(pool_, k_, w.gate, xn, D, n, prepared_);  // gate and up: same layout
  pool_.parallel_for((I + chunk - 1) / chunk, [&](int64_t b, int64_t e, int) {
    const int64_t r0 = b * chunk, r1 = std::min(I, e * chunk);
    k_.gemm_rows_prepared(w.gate, in.x, in.stride, n, gate_.data(), I, r0, r1);
    gemm_rows_shared(k_, w.up, w.gate, in, xn, D, n, up_.data(), I, r0, r1);
    for (int64_t t = 0; t < n; ++t) k_.silu_mul(&gate_[t * I + r0], &up_[t * I + r0], r1 - r0);
  });
  matmul(pool_, k_, w.down, gate_.data(), I, n, out, D);
}

void feed_forward::moe(const moe_weights& w, int layer, const float* xn, int64_t n, float* out) {
  const int64_t E = cfg_.n_routed_experts, k = cfg_.num_experts_per_tok, D = cfg_.hidden_size;
  grow(logits_, static_cast<size_t>(n * E));
  grow(route_scratch_, static_cast<size_t>(pool_.size() * 5 * E));
  grow(ids_, static_cast<size_t>(n * k));
  grow(weights_, static_cast<size_t>(n * k));
  {
    const phase_timer timer(profile_, step_phase::router);
    matmul(pool_, k_, w.router, xn, D, n, logits_.data(), E);
    for_tokens(pool_, n, [&](int64_t t, int thread) {
      route_token(cfg_, &logits_[t * E], w.bias.empty() ? nullptr : w.bias.data(), &route_scratch_[thread * 5 * E],
                  &ids_[t * k], &weights_[t * k]);
    });
  }
  {
    const phase_timer timer(profile_, step_phase::routed_experts);
    experts_.run(layer, xn, static_cast<int>(n), static_cast<int>(D), ids_.data(), weights_.data(),
                 static_cast<int>(k), out);
  }
  if (w.has_shared) {
    const phase_timer timer(profile_, step_phase::shared_experts);
    grow(shared_, static_cast<size_t>(n * D));
    mlp_product(w.shared, xn, n, shared_.data());
    for (int64_t i = 0; i < n * D; ++i) out[i] += shared_[i];
  }
}

}  // namespace rampart::model
