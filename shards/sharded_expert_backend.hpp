// Routed experts on expert shards. For every MoE layer of a step the backend routes each (row, expert) pair to
// a shard holding that expert, sends each shard ONE batch with the rows it needs, and combines the answers.
//
// Exactness: shards return each (row, expert) output unweighted, and the combination adds w_j * y_j in j order
// with the same axpy kernel as local_expert_backend, so results are bit-identical to the single engine whatever
// the shard count, placement or transport.
//
// Failure: a shard that fails or misses the deadline is taken out of rotation for retry_after; its pairs go to
// replicas when some hold the experts, else run() throws expert_shard_failure (the engine fails the step).
//
// Slowness: each shard's answer time per distinct expert in its batch is averaged (exponentially, over its
// calls). Once it and its peers have answered a few times, a shard whose average is more than slow_factor times
// the median of its peers' is marked slow for slow_hold: its pairs go to replicas where any hold the experts (it
// still serves the experts only it holds), and when the hold ends its average starts afresh.
//
// Rebalancing: at step boundaries (a call whose layer is not above the previous call's), a planned placement
// whose weights every shard has warmed replaces the current one; until then the current one keeps serving.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/expert_backend.hpp"
#include "shards/expert_placement.hpp"
#include "shards/expert_stats.hpp"
#include "shards/shard_transport.hpp"

namespace rampart::model {

struct sharded_options {
  std::chrono::milliseconds deadline{1000};     // per MoE layer: all shards' answers
  // All MoE layers of one forward pass (a step, or each slice of a long one) together: a shard that answers
  // every layer just inside `deadline` cannot stretch a step to layers x deadline. 0: no such limit.
  std::chrono::milliseconds step_deadline{0};
  std::chrono::milliseconds retry_after{250};   // a failed shard gets no work for this long
  double slow_factor = 4.0;                     // slower than its peers' median by this much: slow (0: never)
  std::chrono::milliseconds slow_hold{10000};   // how long a slow shard's replicas take its work
  std::chrono::microseconds slow_floor{200};    // an average per expert below this is never slow
  int rebalance_window_steps = 0;               // > 0: plan a rebalance after every window of this many steps
  int rebalance_replicas = 0;                   // extra copies an automatic rebalance may place
  double rebalance_min_gain = 0.05;             // switch only if the planned imbalance is this much lower
};

// Cumulative figures; written by the engine's thread, readable from any thread.
struct shard_costs {
  std::atomic<uint64_t> calls{0};           // run() calls (MoE layer steps)
  std::atomic<uint64_t> route_ns{0};        // routing and gathering rows into batches
  std::atomic<uint64_t> exchange_ns{0};     // from sending the batches to the last answer
  std::atomic<uint64_t> max_compute_ns{0};  // per call, the slowest shard's own expert time, summed
  std::atomic<uint64_t> combine_ns{0};      // weighted sum of the answers
  std::atomic<uint64_t> shard_failures{0};  // failed or late shard answers
  std::atomic<uint64_t> rerouted_calls{0};  // calls that went to replicas after a failure
  std::atomic<uint64_t> failed_calls{0};    // calls that threw expert_shard_failure
  std::atomic<uint64_t> rebalances{0};      // placements switched
  std::atomic<uint64_t> slow_marks{0};      // times a shard was marked slow
  std::atomic<uint64_t> slow_avoided{0};    // (row, expert) pairs sent to a replica because their shard was slow
};

struct rebalance_report {
  uint64_t planned_at_step = 0, switched_at_step = 0;  // switched 0: not (yet) switched
  double imbalance_before = 1.0;   // measured max/mean shard load over the window the plan came from
  double imbalance_planned = 1.0;  // the same window's load under the new placement
  std::string placement;           // expert_placement::describe() of the new placement
};

class sharded_expert_backend final : public expert_backend {
 public:
  // PLACEMENT must have TRANSPORT->size() shards.
  sharded_expert_backend(std::shared_ptr<shard_transport> transport, expert_placement placement,
                         sharded_options options);
  // The transport the shards are reached through.
  const std::shared_ptr<shard_transport>& transport() const { return transport_; }

  void run(int layer, const float* rows, int n_rows, int hidden, const int32_t* expert_ids, const float* weights,
           int k, float* out) override;

  // Plans a placement from the current load window with EPLB (REPLICAS extra copies), reports the imbalance,
  // and starts warming the moved experts on their new shards; the switch follows at a step boundary. The
  // window restarts. False + *err when planning fails. Engine thread, between steps.
  bool rebalance(int replicas, std::string* err);
  // Starts moving to NEXT (same experts and shards). False + *err when it does not fit.
  bool rebalance_to(const expert_placement& next, std::string* err);
  bool rebalance_pending() const { return pending_ != nullptr; }

  expert_placement placement() const;           // any thread
  std::vector<rebalance_report> reports() const;  // any thread
  const expert_stats& stats() const { return stats_; }
  const shard_costs& costs() const { return costs_; }
  uint64_t steps() const { return steps_; }
  // Whether SHARD is marked slow now (engine thread).
  bool slow(int shard) const;
  // Shards whose last exchange failed (any thread): 0 once every shard has answered its latest call.
  int shards_failing() const;
  // One paragraph: per MoE layer per step, route+gather / exchange overhead / combine against expert compute.
  std::string costs_summary() const;

 private:
  void on_step_boundary();
  int pick_shard(int expert, std::chrono::steady_clock::time_point now);
  // Folds the answer times of this exchange's calls into the averages and marks a shard slow when it lags.
  void watch_latency(std::chrono::steady_clock::time_point now);

  std::shared_ptr<shard_transport> transport_;
  sharded_options opt_;
  const kernel_ops& k_;
  mutable std::mutex mutex_;  // guards placement_ writes against readers on other threads, and reports_
  expert_placement placement_;
  std::unique_ptr<expert_placement> pending_;
  std::vector<std::shared_ptr<warm_state>> pending_warm_;
  std::vector<rebalance_report> reports_;
  expert_stats stats_;
  shard_costs costs_;
  uint64_t steps_ = 0;
  int last_layer_;
  bool step_had_calls_ = false;
  std::chrono::steady_clock::time_point pass_deadline_;  // this forward pass's step deadline (max: none)
  // Per shard, reused every call.
  std::vector<std::shared_ptr<shard_batch>> batch_;
  std::vector<std::vector<int32_t>> row_map_;
  std::vector<std::chrono::steady_clock::time_point> down_until_;
  std::unique_ptr<std::atomic<bool>[]> failing_;  // per shard: its last call failed
  size_t n_failing_ = 0;                            // entries of failing_
  std::vector<std::chrono::steady_clock::time_point> slow_until_;  // epoch: not slow
  std::vector<double> item_ns_;    // per shard, the average answer time per distinct expert of its batches
  std::vector<uint32_t> samples_;  // per shard, answers in that average
  std::vector<int32_t> distinct_;  // scratch: a batch's experts
  std::vector<std::string> last_error_;
  std::vector<uint32_t> turn_;  // per expert: which owner gets its next pair
  std::vector<int32_t> slot_shard_, slot_item_;
  std::vector<shard_call> calls_;
};

}  // namespace rampart::model
