#include "shards/expert_placement.hpp"

#include <algorithm>

namespace rampart::model {

bool expert_placement::contiguous(int n_experts, int n_shards, expert_placement* out, std::string* err) {
  if (n_shards < 1 || n_shards > n_experts) {
    *err = "cannot split " + std::to_string(n_experts) + " experts over " + std::to_string(n_shards) +
           " shards (need 1 <= shards <= experts)";
    return false;
  }
  std::vector<int> shard_of(static_cast<size_t>(n_experts));
  const int base = n_experts / n_shards, extra = n_experts % n_shards;
  int e = 0;
  for (int s = 0; s < n_shards; ++s)
    for (int i = 0; i < base + (s < extra ? 1 : 0); ++i) shard_of[static_cast<size_t>(e++)] = s;
  return from_map(shard_of, n_shards, out, err);
}

bool expert_placement::from_map(const std::vector<int>& shard_of, int n_shards, expert_placement* out,
                                std::string* err) {
  std::vector<std::vector<int>> owners;
  for (int s : shard_of) owners.push_back({s});
  return from_owners(std::move(owners), n_shards, out, err);
}

bool expert_placement::from_owners(std::vector<std::vector<int>> owners, int n_shards, expert_placement* out,
                                   std::string* err) {
  if (owners.empty() || n_shards < 1) {
    *err = "a placement needs at least one expert and one shard";
    return false;
  }
  std::vector<int> held(static_cast<size_t>(n_shards), 0);
  for (size_t e = 0; e < owners.size(); ++e) {
    const std::vector<int>& o = owners[e];
    if (o.empty()) {
      *err = "expert " + std::to_string(e) + " has no shard";
      return false;
    }
    for (size_t i = 0; i < o.size(); ++i) {
      if (o[i] < 0 || o[i] >= n_shards) {
        *err = "expert " + std::to_string(e) + " is mapped to shard " + std::to_string(o[i]) + ", outside [0, " +
               std::to_string(n_shards) + ")";
        return false;
      }
      if (std::find(o.begin(), o.begin() + static_cast<long>(i), o[i]) != o.begin() + static_cast<long>(i)) {
        *err = "expert " + std::to_string(e) + " is on shard " + std::to_string(o[i]) + " twice";
        return false;
      }
      ++held[static_cast<size_t>(o[i])];
    }
  }
  for (int s = 0; s < n_shards; ++s)
    if (held[static_cast<size_t>(s)] == 0) {
      *err = "shard " + std::to_string(s) + " holds no expert";
      return false;
    }
  out->n_shards_ = n_shards;
  out->owners_ = std::move(owners);
  return true;
}

bool expert_placement::add_replica(int expert, int shard, std::string* err) {
  if (expert < 0 || expert >= n_experts() || shard < 0 || shard >= n_shards_) {
    *err = "replica of expert " + std::to_string(expert) + " on shard " + std::to_string(shard) + " is out of range";
    return false;
  }
  if (holds(shard, expert)) {
    *err = "shard " + std::to_string(shard) + " already holds expert " + std::to_string(expert);
    return false;
  }
  owners_[static_cast<size_t>(expert)].push_back(shard);
  return true;
}

bool expert_placement::holds(int shard, int expert) const {
  const auto& o = owners(expert);
  return std::find(o.begin(), o.end(), shard) != o.end();
}

std::vector<int> expert_placement::experts_of(int shard) const {
  std::vector<int> out;
  for (int e = 0; e < n_experts(); ++e)
    if (holds(shard, e)) out.push_back(e);
  return out;
}

int expert_placement::replicas() const {
  int n = 0;
  for (const auto& o : owners_) n += static_cast<int>(o.size()) - 1;
  return n;
}

std::string expert_placement::describe() const {
  std::string s;
  for (int sh = 0; sh < n_shards_; ++sh) {
    s += (sh ? " " : "") + std::to_string(sh) + ":[";
    const std::vector<int> ex = experts_of(sh);
    for (size_t i = 0; i < ex.size(); ++i) s += (i ? " " : "") + std::to_string(ex[i]);
    s += "]";
  }
  return s;
}

}  // namespace rampart::model
