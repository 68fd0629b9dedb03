#include "shards/expert_stats.hpp"

#include <algorithm>

namespace rampart::model {

double load_imbalance(const std::vector<uint64_t>& loads) {
  if (loads.empty()) return 1.0;
  uint64_t sum = 0, mx = 0;
  for (uint64_t v : loads) {
    sum += v;
    mx = std::max(mx, v);
  }
  if (sum == 0) return 1.0;
  return static_cast<double>(mx) * static_cast<double>(loads.size()) / static_cast<double>(sum);
}

expert_stats::expert_stats(int n_experts, int n_shards)
    : expert_total_(new std::atomic<uint64_t>[static_cast<size_t>(n_experts)]),
      shard_total_(new std::atomic<uint64_t>[static_cast<size_t>(n_shards)]) {
  window_.expert_tokens.assign(static_cast<size_t>(n_experts), 0);
  window_.shard_tokens.assign(static_cast<size_t>(n_shards), 0);
  for (int e = 0; e < n_experts; ++e) expert_total_[static_cast<size_t>(e)] = 0;
  for (int s = 0; s < n_shards; ++s) shard_total_[static_cast<size_t>(s)] = 0;
}

load_window expert_stats::take_window() {
  load_window w = window_;
  std::fill(window_.expert_tokens.begin(), window_.expert_tokens.end(), 0);
  std::fill(window_.shard_tokens.begin(), window_.shard_tokens.end(), 0);
  window_.steps = 0;
  return w;
}

}  // namespace rampart::model
