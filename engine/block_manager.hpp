// Fixed-size KV-cache blocks: allocation with reference counts, and the prefix cache. A full block can be
// published under a hash chained on the previous block's hash, so a later sequence with the same leading tokens
// reuses it instead of recomputing. Unreferenced blocks sit in a free list in least-recently-freed order; a
// published block stays findable there until it is handed out again. Not thread-safe (one owner: the engine).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace rampart::model {

class block_manager {
 public:
  block_manager(int64_t n_blocks, int block_tokens);

  int64_t total_blocks() const { return static_cast<int64_t>(ref_.size()); }
  // Blocks with no reference (including published ones that a prefix lookup could still revive).
  int64_t free_blocks() const { return n_free_; }
  int block_tokens() const { return block_tokens_; }
  // Published blocks (referenced or not).
  int64_t cached_blocks() const { return static_cast<int64_t>(by_hash_.size()); }

  // Takes the least recently freed block (unpublishing it) with one reference; -1 when none is free.
  int32_t allocate();
  // Adds a reference to block B (reviving it from the free list when it had none).
  void acquire(int32_t b);
  // Drops a reference; at zero the block returns to the free list's tail, still published.
  void release(int32_t b);

  // Hash of a block holding TOKENS (block_tokens values) after a block whose hash is PARENT (0 for the first).
  static uint64_t chain_hash(uint64_t parent, const int32_t* tokens, int n);
  // The published block with HASH whose parent hash and tokens match, or -1.
  int32_t lookup(uint64_t hash, uint64_t parent, const int32_t* tokens) const;
  // Publishes full block B; a no-op when another block already holds that hash.
  void publish(int32_t b, uint64_t hash, uint64_t parent, const int32_t* tokens);

 private:
  void unlink(int32_t b);
  void push_back(int32_t b);
  void unpublish(int32_t b);

  int block_tokens_;
  std::vector<int32_t> ref_;
  std::vector<int32_t> prev_, next_;  // free list links, -1 terminated
  int32_t head_ = -1, tail_ = -1;
  int64_t n_free_ = 0;
  std::vector<uint8_t> published_;
  std::vector<uint64_t> hash_, parent_;
  std::vector<int32_t> tokens_;  // block_tokens per block, for published blocks
  std::unordered_map<uint64_t, int32_t> by_hash_;
};

}  // namespace rampart::model
