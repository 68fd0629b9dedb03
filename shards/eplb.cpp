#include "shards/eplb.hpp"

#include <algorithm>

namespace rampart::model {

std::vector<double> placement_loads(const expert_placement& p, const std::vector<uint64_t>& expert_load) {
  std::vector<double> loads(static_cast<size_t>(p.n_shards()), 0.0);
  for (int e = 0; e < p.n_experts() && e < static_cast<int>(expert_load.size()); ++e) {
    const auto& o = p.owners(e);
    for (int s : o) loads[static_cast<size_t>(s)] += static_cast<double>(expert_load[static_cast<size_t>(e)]) / o.size();
  }
  return loads;
}

double placement_imbalance(const expert_placement& p, const std::vector<uint64_t>& expert_load) {
  const std::vector<double> loads = placement_loads(p, expert_load);
  double sum = 0, mx = 0;
  for (double v : loads) {
    sum += v;
    mx = std::max(mx, v);
  }
  return sum > 0 ? mx * static_cast<double>(loads.size()) / sum : 1.0;
}

bool eplb_plan(const std::vector<uint64_t>& expert_load, int n_shards, int n_replicas, expert_placement* out,
               std::string* err) {
  const int E = static_cast<int>(expert_load.size());
  if (n_shards < 1 || n_replicas < 0 || E + n_replicas < n_shards) {
    *err = "cannot place " + std::to_string(E) + " experts with " + std::to_string(n_replicas) +
           " replicas on " + std::to_string(n_shards) + " shards";
    return false;
  }
  std::vector<int> copies(static_cast<size_t>(E), 1);
  auto per_copy = [&](int e) { return static_cast<double>(expert_load[static_cast<size_t>(e)]) / copies[static_cast<size_t>(e)]; };
  for (int r = 0; r < n_replicas; ++r) {
    int best = -1;
    for (int e = 0; e < E; ++e)
      if (copies[static_cast<size_t>(e)] < n_shards && (best < 0 || per_copy(e) > per_copy(best))) best = e;
    if (best < 0) break;  // every expert is already on every shard
    ++copies[static_cast<size_t>(best)];
  }

  struct copy_item {
    int expert;
    double load;
  };
  std::vector<copy_item> items;
  for (int e = 0; e < E; ++e)
    for (int c = 0; c < copies[static_cast<size_t>(e)]; ++c) items.push_back({e, per_copy(e)});
  std::stable_sort(items.begin(), items.end(), [](const copy_item& a, const copy_item& b) { return a.load > b.load; });

  const int capacity = static_cast<int>((items.size() + static_cast<size_t>(n_shards) - 1) / static_cast<size_t>(n_shards));
  std::vector<double> load(static_cast<size_t>(n_shards), 0.0);
  std::vector<int> held(static_cast<size_t>(n_shards), 0);
  std::vector<std::vector<int>> owners(static_cast<size_t>(E));
  for (const copy_item& it : items) {
    int best = -1;
    for (int s = 0; s < n_shards; ++s) {
      const auto& o = owners[static_cast<size_t>(it.expert)];
      if (held[static_cast<size_t>(s)] >= capacity || std::find(o.begin(), o.end(), s) != o.end()) continue;
      if (best < 0 || load[static_cast<size_t>(s)] < load[static_cast<size_t>(best)]) best = s;
    }
    if (best < 0) {
      *err = "no shard has room for a copy of expert " + std::to_string(it.expert);
      return false;
    }
    owners[static_cast<size_t>(it.expert)].push_back(best);
    load[static_cast<size_t>(best)] += it.load;
    ++held[static_cast<size_t>(best)];
  }

  expert_placement p;
  if (!expert_placement::from_owners(std::move(owners), n_shards, &p, err)) return false;
  *out = std::move(p);
  return true;
}

}  // namespace rampart::model
