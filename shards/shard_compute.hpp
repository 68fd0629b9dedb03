// The expert work of one shard: every (row, expert) item of a shard_batch computed with this process's kernels,
// exactly as the local backend computes it (same kernels, same operation order), so a sharded step gives the
// single engine's bits.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/thread_pool.hpp"
#include "model/checkpoint.hpp"
#include "model/expert_backend.hpp"
#include "model/layers.hpp"
#include "shards/shard_transport.hpp"

namespace rampart::model {

// What a shard runs its batches on: this process's CPU kernels (shard_compute) or a GPU (gpu::device_experts).
class expert_compute {
 public:
  virtual ~expert_compute() = default;
  // Fills B.out and B.compute_ns. False + *err, touching nothing, when B is inconsistent (check_batch).
  virtual bool run(shard_batch& b, std::string* err) = 0;
  // Makes EXPERTS of every MoE layer ready to compute (resident pages, or device memory). False + *err for an
  // expert id out of range.
  virtual bool warm(const std::vector<int32_t>& experts, std::string* err) = 0;
  virtual int n_experts() const = 0;
};

// The checks every expert_compute makes before touching anything: a MoE layer of W, HIDDEN, sizes that match
// the arrays, row indexes and expert ids (below N_EXPERTS) in range. "" when B is consistent.
std::string check_batch(const model_weights& w, int hidden, int n_experts, const shard_batch& b);
// The expert count of W's MoE layers (0 without any).
int count_experts(const model_weights& w);

class shard_compute final : public expert_compute {
 public:
  // WEIGHTS (with the checkpoint behind them) must outlive this. THREADS: its own pool (<= 0: all cores), on
  // CPUS when given (thread_pool).
  shard_compute(std::shared_ptr<const model_weights> weights, int hidden, int threads, std::vector<int> cpus = {});

  // Fills B.out and B.compute_ns. False + *err, touching nothing, when B is inconsistent: a layer that is not
  // a MoE layer, another hidden size, sizes that do not match, a row index or expert id out of range.
  bool run(shard_batch& b, std::string* err) override;
  // Reads every page of EXPERTS' weights in every MoE layer so later steps do not fault them in. False + *err
  // for an expert id out of range.
  bool warm(const std::vector<int32_t>& experts, std::string* err) override;

  int n_experts() const override { return n_experts_; }

 private:
  std::shared_ptr<const model_weights> w_;
  int hidden_;
  int n_experts_ = 0;
  thread_pool pool_;
  local_expert_backend local_;
  std::vector<float> x_, ones_;
};

// The weights of CK as shared by in-process shards; nullptr + *err when the checkpoint does not load. They stay
// in the mapped checkpoint's layout (no pack_for): a shard reads only the experts it serves, so only those
// pages become resident.
std::shared_ptr<const model_weights> load_shared_weights(std::shared_ptr<const checkpoint> ck, std::string* err);

}  // namespace rampart::model
