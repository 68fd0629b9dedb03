// Byte-pair merging of one pre-tokenized piece. Private to model/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rampart::model {

// The merge list as a hash table: (left id, right id) -> rank, and rank -> merged id. Each slot is one 64-bit word
// (left id, right id, rank) so that the table stays small enough for the CPU's caches: ids must be below kIdLimit
// and ranks below kRankLimit. Immutable after loading, so lookups are safe from many threads.
class bpe_merge_table {
 public:
  static constexpr uint32_t kNoRank = 0xFFFFFFFFu;
  static constexpr int32_t kIdLimit = (1 << 20) - 1;
  static constexpr uint32_t kRankLimit = (1u << 24) - 1;

  // Sizes the table for N merges; call before insert.
  void reserve(size_t n);
  // Adds a merge; returns false if the pair is already present, the rank is, or a value is beyond its limit.
  bool insert(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  // The rank of merging LEFT and RIGHT (ids below kIdLimit), or kNoRank if they do not merge.
  uint32_t rank(int32_t left, int32_t right) const {
    uint64_t pair = pack(left, right);
    for (size_t i = slot_of(pair);; i = (i + 1) & mask_) {
      uint64_t s = slots_[i];
      if ((s >> kRankBits) == pair) return static_cast<uint32_t>(s & kRankLimit);
      if (s == kEmpty) return kNoRank;
    }
  }
  // The id that the merge of rank RANK (a rank this table returned) makes.
  int32_t merged(uint32_t rank) const { return merged_[rank]; }
  size_t size() const { return count_; }
  // Calls F(left, right, rank, merged) once per merge, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (uint64_t s : slots_) {
      if (s == kEmpty) continue;
      auto r = static_cast<uint32_t>(s & kRankLimit);
      f(static_cast<int32_t>(s >> (kRankBits + 20)), static_cast<int32_t>((s >> kRankBits) & kIdLimit), r, merged_[r]);
    }
  }

 private:
  static constexpr int kRankBits = 24;
  static constexpr uint64_t kEmpty = ~0ull;  // its pair part is (kIdLimit, kIdLimit), which no merge has
  static uint64_t pack(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 20) | static_cast<uint32_t>(right);
  }
  size_t slot_of(uint64_t pair) const { return static_cast<size_t>((pair * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }

  std::vector<uint64_t> slots_;  // left << 44 | right << 24 | rank, or kEmpty
  std::vector<int32_t> merged_;  // by rank; -1 where no merge has that rank
  size_t mask_ = 0;
  int shift_ = 64;
  size_t count_ = 0;
};

// Where a piece's BPE may start for each character of U+0080..U+FFFF (two or three UTF-8 bytes): the one or two
// tokens of a state that merging the character's bytes alone passes through, chosen so that merging a whole piece
// from these tokens gives exactly the result of merging it from its bytes (the conditions and their proof are in
// tokenizer_bpe.cpp). Characters without such a state, four-byte ones included, start from their bytes.
// Immutable after build, so lookups are safe from many threads.
class bpe_char_starts {
 public:
  struct start {
    int32_t first = -1;   // -1: start from the bytes
    int32_t second = -1;  // -1: FIRST alone
  };
  bpe_char_starts() : starts_(kEnd) {}  // every character starts from its bytes
  // Derives the table from MERGES. BYTE_IDS are the 256 single-byte tokens; token T's bytes are
  // TOKEN_BYTES[OFFSETS[T], OFFSETS[T + 1]) for every T a merge uses or makes.
  void build(const bpe_merge_table& merges, const int32_t byte_ids[256], const std::string& token_bytes,
             const std::vector<uint32_t>& offsets);
  const start& of(uint32_t code_point) const { return starts_[code_point]; }
  // Characters given a start of one token, and of two.
  size_t single_starts() const { return singles_; }
  size_t double_starts() const { return doubles_; }

  static constexpr uint32_t kEnd = 0x10000;  // of() takes code points 0x80 <= CP < kEnd, surrogates excepted

 private:
  std::vector<start> starts_;
  size_t singles_ = 0, doubles_ = 0;
};

// Merges the byte tokens IDS[0..N) (one per byte of the piece) by lowest rank, leftmost first on equal ranks,
// until no adjacent pair merges, and appends the result to OUT. Runs in O(N log N) for long pieces. Uses
// thread-local scratch memory and is safe to call from many threads.
void bpe_merge(const bpe_merge_table& merges, const int32_t* ids, size_t n, std::vector<int32_t>* out);

}  // namespace rampart::model
