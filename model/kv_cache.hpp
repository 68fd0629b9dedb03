// Storage of the MLA latent KV cache: per layer, per block, per token slot one float32 row of
// kv_lora_rank normalised latent values followed by qk_rope_head_dim rotated key values.
#pragma once

#include <cstdint>
#include <vector>

namespace rampart::model {

class kv_cache {
 public:
  kv_cache(int64_t n_layers, int64_t n_blocks, int block_tokens, int64_t row_width)
      : n_blocks_(n_blocks),
        block_tokens_(block_tokens),
        row_width_(row_width),
        data_(static_cast<size_t>(n_layers * n_blocks * block_tokens * row_width), 0.0f) {}

  int64_t row_width() const { return row_width_; }
  int block_tokens() const { return block_tokens_; }
  size_t bytes() const { return data_.size() * sizeof(float); }

  float* row(int64_t layer, int32_t block, int64_t slot) {
    return data_.data() + ((layer * n_blocks_ + block) * block_tokens_ + slot) * row_width_;
  }
  const float* row(int64_t layer, int32_t block, int64_t slot) const {
    return data_.data() + ((layer * n_blocks_ + block) * block_tokens_ + slot) * row_width_;
  }

 private:
  int64_t n_blocks_;
  int block_tokens_;
  int64_t row_width_;
  std::vector<float> data_;
};

// Where one token of a step lives: its absolute position and its sequence's block table.
struct token_slot {
  int64_t pos = 0;
  const int32_t* blocks = nullptr;
};

}  // namespace rampart::model
