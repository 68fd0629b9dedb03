#include "engine/block_manager.hpp"

#include <cstring>

namespace rampart::model {

block_manager::block_manager(int64_t n_blocks, int block_tokens)
    : block_tokens_(block_tokens),
      ref_(static_cast<size_t>(n_blocks), 0),
      prev_(static_cast<size_t>(n_blocks), -1),
      next_(static_cast<size_t>(n_blocks), -1),
      published_(static_cast<size_t>(n_blocks), 0),
      hash_(static_cast<size_t>(n_blocks), 0),
      parent_(static_cast<size_t>(n_blocks), 0),
      tokens_(static_cast<size_t>(n_blocks * block_tokens), 0) {
  by_hash_.reserve(static_cast<size_t>(n_blocks));
  for (int32_t b = 0; b < static_cast<int32_t>(n_blocks); ++b) push_back(b);
}

void block_manager::unlink(int32_t b) {
  if (prev_[b] >= 0) next_[prev_[b]] = next_[b]; else head_ = next_[b];
  if (next_[b] >= 0) prev_[next_[b]] = prev_[b]; else tail_ = prev_[b];
  prev_[b] = next_[b] = -1;
  --n_free_;
}

void block_manager::push_back(int32_t b) {
  prev_[b] = tail_;
  next_[b] = -1;
  if (tail_ >= 0) next_[tail_] = b; else head_ = b;
  tail_ = b;
  ++n_free_;
}

void block_manager::unpublish(int32_t b) {
  if (!published_[b]) return;
  auto it = by_hash_.find(hash_[b]);
  if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
  published_[b] = 0;
}

int32_t block_manager::allocate() {
  if (head_ < 0) return -1;
  const int32_t b = head_;
  unlink(b);
  unpublish(b);
  ref_[b] = 1;
  return b;
}

void block_manager::acquire(int32_t b) {
  if (ref_[b]++ == 0) unlink(b);
}

void block_manager::release(int32_t b) {
  if (ref_[b] > 0 && --ref_[b] == 0) push_back(b);
}

uint64_t block_manager::chain_hash(uint64_t parent, const int32_t* tokens, int n) {
  // splitmix64 steps over the parent hash and each token: cheap, and any change avalanches.
  uint64_t h = parent ^ 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < n; ++i) {
    uint64_t z = h + static_cast<uint64_t>(static_cast<uint32_t>(tokens[i])) * 0x9E3779B97F4A7C15ull + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    h = z ^ (z >> 31);
  }
  return h == 0 ? 1 : h;  // 0 is reserved for "no parent"
}

int32_t block_manager::lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) const {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return -1;
  const int32_t b = it->second;
  if (parent_[b] != parent ||
      std::memcmp(&tokens_[static_cast<size_t>(b) * block_tokens_], tokens, sizeof(int32_t) * block_tokens_) != 0)
    return -1;
  return b;
}

void block_manager::publish(int32_t b, uint64_t hash, uint64_t parent, const int32_t* tokens) {
  if (published_[b] || by_hash_.count(hash) != 0) return;
  by_hash_.emplace(hash, b);
  published_[b] = 1;
  hash_[b] = hash;
  parent_[b] = parent;
  std::memcpy(&tokens_[static_cast<size_t>(b) * block_tokens_], tokens, sizeof(int32_t) * block_tokens_);
}

}  // namespace rampart::model
