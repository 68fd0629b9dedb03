// Load statistics of expert shards: tokens routed to each expert and each shard, over a window of steps and
// since start. The window is written and read by the engine's thread only; the totals are atomic counters that
// any thread (the metrics exporter) may read while the engine runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace rampart::model {

// Max over mean of LOADS (1.0 for a perfectly even split, and for no load at all).
double load_imbalance(const std::vector<uint64_t>& loads);

struct load_window {
  uint64_t steps = 0;
  std::vector<uint64_t> expert_tokens;  // (token, layer) pairs routed to each expert, summed over MoE layers
  std::vector<uint64_t> shard_tokens;   // the same pairs by the shard that served them
};

class expert_stats {
 public:
  expert_stats(int n_experts, int n_shards);

  // One (token, layer) pair of EXPERT served by SHARD. No allocation.
  void count(int expert, int shard) {
    ++window_.expert_tokens[static_cast<size_t>(expert)];
    ++window_.shard_tokens[static_cast<size_t>(shard)];
    expert_total_[static_cast<size_t>(expert)].fetch_add(1, std::memory_order_relaxed);
    shard_total_[static_cast<size_t>(shard)].fetch_add(1, std::memory_order_relaxed);
  }
  void end_step() { ++window_.steps; }

  const load_window& window() const { return window_; }
  // Returns the current window and starts an empty one.
  load_window take_window();

  // Since creation; safe from any thread.
  uint64_t expert_total(int expert) const { return expert_total_[static_cast<size_t>(expert)].load(); }
  uint64_t shard_total(int shard) const { return shard_total_[static_cast<size_t>(shard)].load(); }
  int n_experts() const { return static_cast<int>(window_.expert_tokens.size()); }
  int n_shards() const { return static_cast<int>(window_.shard_tokens.size()); }

 private:
  load_window window_;
  std::unique_ptr<std::atomic<uint64_t>[]> expert_total_, shard_total_;
};

}  // namespace rampart::model
