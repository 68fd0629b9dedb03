#include "shards/shard_compute.hpp"

#include <chrono>
#include <cstring>

namespace rampart::model {

namespace {

// Checkpoint and weights in one block, so the weights' views cannot outlive the mapping.
struct weights_holder {
  std::shared_ptr<const checkpoint> ck;
  model_weights w;
};

uint8_t touch(const weight_matrix& m) {
  const size_t n = m.storage_bytes();
  const volatile std::byte* p = m.layout == weight_layout::natural ? m.row_ptr(0) : m.data;
  uint8_t acc = 0;
  for (size_t off = 0; off < n; off += 4096) acc = static_cast<uint8_t>(acc + static_cast<uint8_t>(p[off]));
  return acc;
}

}  // namespace

int count_experts(const model_weights& w) {
  for (const layer_weights& l : w.layers)
    if (l.is_moe) return static_cast<int>(l.moe.experts.size());
  return 0;
}

std::string check_batch(const model_weights& w, int hidden, int n_experts, const shard_batch& b) {
  if (b.layer < 0 || b.layer >= static_cast<int32_t>(w.layers.size()) || !w.layers[static_cast<size_t>(b.layer)].is_moe)
    return "layer " + std::to_string(b.layer) + " is not a MoE layer";
  if (b.hidden != hidden) return "hidden size " + std::to_string(b.hidden) + ", the model's is " + std::to_string(hidden);
  const size_t D = static_cast<size_t>(hidden);
  if (b.n_rows < 0 || b.n_items < 0 || b.rows.size() < static_cast<size_t>(b.n_rows) * D ||
      b.item_row.size() < static_cast<size_t>(b.n_items) || b.item_expert.size() < static_cast<size_t>(b.n_items))
    return "batch sizes do not match its arrays";
  for (int32_t i = 0; i < b.n_items; ++i) {
    const int32_t row = b.item_row[static_cast<size_t>(i)], e = b.item_expert[static_cast<size_t>(i)];
    if (row < 0 || row >= b.n_rows)
      return "item " + std::to_string(i) + " names row " + std::to_string(row) + " of " + std::to_string(b.n_rows);
    if (e < 0 || e >= n_experts)
      return "item " + std::to_string(i) + " names expert " + std::to_string(e) + " of " + std::to_string(n_experts);
  }
  return "";
}

std::shared_ptr<const model_weights> load_shared_weights(std::shared_ptr<const checkpoint> ck, std::string* err) {
  if (!ck) {
    *err = "no checkpoint";
    return nullptr;
  }
  auto h = std::make_shared<weights_holder>();
  h->ck = std::move(ck);
  if (!model_weights::load(*h->ck, &h->w, err)) return nullptr;

  return std::shared_ptr<const model_weights>(h, &h->w);
}

shard_compute::shard_compute(std::shared_ptr<const model_weights> weights, int hidden, int threads,
                             std::vector<int> cpus)
    : w_(std::move(weights)),
      hidden_(hidden),
      n_experts_(count_experts(*w_)),
      pool_(threads, std::move(cpus)),
      local_(*w_, kernels(), pool_) {}

bool shard_compute::run(shard_batch& b, std::string* err) {
  const int64_t D = hidden_;
  if (std::string bad = check_batch(*w_, hidden_, n_experts_, b); !bad.empty()) {
    *err = std::move(bad);
    return false;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const size_t n = static_cast<size_t>(b.n_items);
  if (x_.size() < n * D) x_.resize(n * D);
  if (ones_.size() < n) ones_.assign(n, 1.0f);
  if (b.out.size() < n * D) b.out.resize(n * D);
  for (size_t i = 0; i < n; ++i)
    std::memcpy(&x_[i * D], &b.rows[static_cast<size_t>(b.item_row[i]) * D], sizeof(float) * D);
  // One item per row with weight 1: the local backend's weighted sum 0 + 1 * y is y exactly.
  if (n > 0)
    local_.run(b.layer, x_.data(), b.n_items, hidden_, b.item_expert.data(), ones_.data(), 1, b.out.data());
  b.compute_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  return true;
}

bool shard_compute::warm(const std::vector<int32_t>& experts, std::string* err) {
  for (int32_t e : experts)
    if (e < 0 || e >= n_experts_) {
      *err = "expert " + std::to_string(e) + " is outside [0, " + std::to_string(n_experts_) + ")";
      return false;
    }
  volatile uint8_t sink = 0;
  for (const layer_weights& l : w_->layers) {
    if (!l.is_moe) continue;
    for (int32_t e : experts) {
      const mlp_weights& m = l.moe.experts[static_cast<size_t>(e)];
      sink = static_cast<uint8_t>(sink + touch(m.gate) + touch(m.up) + touch(m.down));
    }
  }
  return true;
}

}  // namespace rampart::model
