// Byte-pair merging of one pre-tokenized piece. Private to model/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rampart::model {

// The merge list as a hash table: (left id, right id) -> (rank, merged id). Immutable after loading, so lookups
// are safe from many threads.
class bpe_merge_table {
 public:
  // Sizes the table for N merges; call before insert.
  void reserve(size_t n);
  // Adds a merge; returns false if the pair is already present.
  bool insert(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  // The rank of merging LEFT and RIGHT, with the merged id in *MERGED, or kNoRank if they do not merge.
  uint32_t find(int32_t left, int32_t right, int32_t* merged) const {
    uint64_t key = pack(left, right);
    size_t i = slot_of(key);
    for (;;) {
      const slot& s = slots_[i];
      if (s.key == key) {
        *merged = s.merged;
        return s.rank;
      }
      if (s.key == kEmpty) return kNoRank;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return count_; }

  static constexpr uint32_t kNoRank = 0xFFFFFFFFu;

 private:
  struct slot {
    uint64_t key;
    uint32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }

  std::vector<slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t count_ = 0;
};

// Merges the byte tokens IDS[0..N) (one per byte of the piece) by lowest rank, leftmost first on equal ranks,
// until no adjacent pair merges, and appends the result to OUT. Runs in O(N log N) for long pieces. Uses
// thread-local scratch memory and is safe to call from many threads.
void bpe_merge(const bpe_merge_table& merges, const int32_t* ids, size_t n, std::vector<int32_t>* out);

}  // namespace rampart::model
