// Where routed experts run. The MoE layer hands over token rows with their chosen experts and weights and gets
// back the weighted sums, so experts can live in this process (local_expert_backend) or elsewhere (expert
// shards) without the layer code knowing.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"
#include "model/layers.hpp"

namespace rampart::model {

// Thrown by expert_backend::run when experts that live elsewhere cannot be reached (a shard died or missed its
// deadline and no replica holds the experts). engine::step turns it into a failed step (false + *err).
class expert_shard_failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class expert_backend {
 public:
  virtual ~expert_backend() = default;
  // For every row r < N_ROWS: OUT[r*hidden + i] = sum over j < K, in j order, of
  // WEIGHTS[r*k + j] * expert_{EXPERT_IDS[r*k + j]}(ROWS[r*hidden ...])[i], for MoE layer LAYER.
  // OUT is overwritten. To keep temperature-0 results independent of the batch, a row's result must not depend
  // on the other rows. Called from one thread at a time.
  virtual void run(int layer, const float* rows, int n_rows, int hidden, const int32_t* expert_ids,
                   const float* weights, int k, float* out) = 0;
};

// Runs experts in-process on the engine's thread pool. Rows are grouped by expert so each expert's weights are
// read once per call; every (row, expert) output is computed by the same kernels whatever the grouping.
class local_expert_backend final : public expert_backend {
 public:
  // WEIGHTS and POOL must outlive the backend.
  local_expert_backend(const model_weights& weights, const kernel_ops& k, thread_pool& pool);
  void run(int layer, const float* rows, int n_rows, int hidden, const int32_t* expert_ids, const float* weights,
           int k, float* out) override;

 private:
  const model_weights& w_;
  const kernel_ops& k_;
  thread_pool& pool_;
  // Scratch reused across calls (grown when a call needs more).
  std::vector<int32_t> count_, offset_, slot_of_, active_;
  std::vector<int64_t> item_expert_, item_chunk_;
  std::vector<float> xg_, gate_, up_, y_, xp_;  // xp_: activations rearranged for the kernels
};

}  // namespace rampart::model
