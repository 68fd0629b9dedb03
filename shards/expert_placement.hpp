// Which expert shard holds which routed expert. One placement covers every MoE layer: a shard that holds expert
// E holds it in all layers, so an explicit map, a replica and a move are per expert index. An expert may be held
// by several shards (redundant replicas of hot experts); its first owner is its primary.
#pragma once

#include <string>
#include <vector>

namespace rampart::model {

class expert_placement {
 public:
  expert_placement() = default;

  // Experts [0, N_EXPERTS) in N_SHARDS contiguous ranges; the first N_EXPERTS % N_SHARDS shards get one more.
  // False + *err unless 1 <= n_shards <= n_experts.
  static bool contiguous(int n_experts, int n_shards, expert_placement* out, std::string* err);
  // SHARD_OF[e] is the shard of expert e. False + *err when the map is empty, a shard id is outside
  // [0, n_shards) or a shard holds no expert.
  static bool from_map(const std::vector<int>& shard_of, int n_shards, expert_placement* out, std::string* err);
  // OWNERS[e] lists the shards holding expert e, primary first. False + *err when an expert has no owner or one
  // twice, a shard id is outside [0, n_shards), or a shard holds no expert.
  static bool from_owners(std::vector<std::vector<int>> owners, int n_shards, expert_placement* out,
                          std::string* err);
  // Adds a copy of EXPERT on SHARD. False + *err when either is out of range or SHARD already holds it.
  bool add_replica(int expert, int shard, std::string* err);

  int n_experts() const { return static_cast<int>(owners_.size()); }
  int n_shards() const { return n_shards_; }
  // The shards holding expert E, primary first (E must be in range).
  const std::vector<int>& owners(int e) const { return owners_[static_cast<size_t>(e)]; }
  bool holds(int shard, int expert) const;
  // Experts SHARD holds, ascending.
  std::vector<int> experts_of(int shard) const;
  // Copies beyond one per expert.
  int replicas() const;
  // "0:[0 1 2] 1:[3 4 2]": each shard's experts, ascending.
  std::string describe() const;

  bool operator==(const expert_placement& o) const { return n_shards_ == o.n_shards_ && owners_ == o.owners_; }
  bool operator!=(const expert_placement& o) const { return !(*this == o); }

 private:
  int n_shards_ = 0;
  std::vector<std::vector<int>> owners_;
};

}  // namespace rampart::model
