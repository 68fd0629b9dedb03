#include "tokenizer/tokenizer_bpe.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>

namespace rampart::model {

void bpe_merge_table::reserve(size_t n) {
  size_t capacity = 16;
  int bits = 4;
  while (capacity < n * 2) {
    capacity <<= 1;
    ++bits;
  }
  slots_.assign(capacity, kEmpty);
  mask_ = capacity - 1;
  shift_ = 64 - bits;
  count_ = 0;
  merged_.clear();
  merged_.reserve(n);
}

bool bpe_merge_table::insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  if (left < 0 || left >= kIdLimit || right < 0 || right >= kIdLimit || rank >= kRankLimit) return false;
  if (rank < merged_.size() && merged_[rank] >= 0) return false;
  if ((count_ + 1) * 2 > slots_.size()) {
    std::vector<uint64_t> old = std::move(slots_);
    std::vector<int32_t> old_merged = std::move(merged_);
    reserve(count_ + 1 > old.size() ? count_ + 1 : old.size());
    for (uint64_t s : old) {
      if (s == kEmpty) continue;
      auto r = static_cast<uint32_t>(s & kRankLimit);
      insert(static_cast<int32_t>(s >> (kRankBits + 20)), static_cast<int32_t>((s >> kRankBits) & kIdLimit), r,
             old_merged[r]);
    }
  }
  uint64_t pair = pack(left, right);
  size_t i = slot_of(pair);
  while (slots_[i] != kEmpty) {
    if ((slots_[i] >> kRankBits) == pair) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = pair << kRankBits | rank;
  if (merged_.size() <= rank) merged_.resize(rank + 1, -1);
  merged_[rank] = merged;
  ++count_;
  return true;
}

// Why a start is exact. Take a piece of valid UTF-8; let G be BPE from its bytes and H BPE from the table's starts.
// For a character C given the start S_s, let S_0 (its bytes), S_1, ..., S_s be the states that BPE of C's bytes
// alone passes through, rho_j the rank of the merge that turns S_(j-1) into S_j, and M the largest rho_j. C gets
// the start S_s only if
//   (a) for each j < s, the first token of S_j merges with no left neighbour, and its last token with no right
//       neighbour, at a rank <= rho_(j+1);
//   (b) the first and last tokens of S_s merge with no such neighbour at a rank <= M;
//   (c) every pair inside S_s that merges has a rank > M.
// A neighbour is any token that can stand next to a character boundary in valid UTF-8: on the right, one whose
// first byte is not a continuation byte; on the left, one whose bytes do not end inside an unfinished sequence.
// Claim: at every step of G, replacing each character that is still short of its start ("open") with its start
// gives a state of H, and G's merge either lies inside an open character (H does nothing) or is H's next merge.
// Induction: an open character at S_j still holds its pair of rank rho_(j+1), so G's lowest rank r is at most
// that, and by (a) no pair across its edges ranks that low: open characters change only by their own merges, in
// their own order. If G merges a pair outside open characters, both states hold that pair; the pairs only H has
// lie at or inside starts of characters open in G and rank > M >= r by (b) and (c), so the lowest rank in H is r
// too and its leftmost r-pair is G's. When G stops, no character is open (each would still hold a pair), so G's
// result is H's.

namespace {

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Whether BYTES can end where a character ends in valid UTF-8 (false only when the last sequence is unfinished).
bool can_end_character(std::string_view bytes) {
  size_t trail = 0;
  while (trail < bytes.size() && is_continuation(static_cast<unsigned char>(bytes[bytes.size() - 1 - trail]))) {
    ++trail;
  }
  if (trail == bytes.size()) return true;
  auto lead = static_cast<unsigned char>(bytes[bytes.size() - 1 - trail]);
  size_t needed = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  return trail >= needed;
}

}  // namespace

void bpe_char_starts::build(const bpe_merge_table& merges, const int32_t byte_ids[256],
                            const std::string& token_bytes, const std::vector<uint32_t>& offsets) {
  const size_t tokens = offsets.empty() ? 0 : offsets.size() - 1;
  auto bytes_of = [&](int32_t t) {
    if (t < 0 || static_cast<size_t>(t) >= tokens) return std::string_view();
    return std::string_view(token_bytes).substr(offsets[static_cast<size_t>(t)],
                                                offsets[static_cast<size_t>(t) + 1] - offsets[static_cast<size_t>(t)]);
  };
  // The lowest rank at which a token merges with a right neighbour, and with a left neighbour (see above).
  std::vector<uint32_t> lowest_right(tokens, bpe_merge_table::kNoRank), lowest_left(tokens, bpe_merge_table::kNoRank);
  bool usable = true;  // every merge's tokens have known bytes
  merges.for_each([&](int32_t left, int32_t right, uint32_t rank, int32_t) {
    std::string_view l = bytes_of(left), r = bytes_of(right);
    if (l.empty() || r.empty()) {
      usable = false;
      return;
    }
    if (!is_continuation(static_cast<unsigned char>(r[0]))) {
      lowest_right[static_cast<size_t>(left)] = std::min(lowest_right[static_cast<size_t>(left)], rank);
    }
    if (can_end_character(l)) {
      lowest_left[static_cast<size_t>(right)] = std::min(lowest_left[static_cast<size_t>(right)], rank);
    }
  });
  starts_.assign(kEnd, start{});
  singles_ = doubles_ = 0;
  if (!usable) return;
  auto edges_above = [&](const int32_t* sym, size_t n, uint32_t rank) {
    return lowest_left[static_cast<size_t>(sym[0])] > rank && lowest_right[static_cast<size_t>(sym[n - 1])] > rank;
  };
  for (uint32_t cp = 0x80; cp < kEnd; ++cp) {
    if (cp >= 0xD800 && cp < 0xE000) continue;
    unsigned char b[3];
    size_t n = 0;
    if (cp < 0x800) {
      b[n++] = static_cast<unsigned char>(0xC0 | (cp >> 6));
    } else {
      b[n++] = static_cast<unsigned char>(0xE0 | (cp >> 12));
      b[n++] = static_cast<unsigned char>(0x80 | ((cp >> 6) & 0x3F));
    }
    b[n++] = static_cast<unsigned char>(0x80 | (cp & 0x3F));
    int32_t sym[3];
    for (size_t i = 0; i < n; ++i) sym[i] = byte_ids[b[i]];
    if (std::any_of(sym, sym + n, [&](int32_t t) { return t < 0 || static_cast<size_t>(t) >= tokens; })) continue;
    uint32_t highest = 0;  // M: the highest rank merged so far
    bool merged_any = false;
    for (;;) {
      uint32_t lowest = bpe_merge_table::kNoRank;
      size_t at = 0;
      for (size_t i = 0; i + 1 < n; ++i) {
        uint32_t r = merges.rank(sym[i], sym[i + 1]);
        if (r < lowest) {
          lowest = r;
          at = i;
        }
      }
      // The state reached may be a start when (b) and (c) hold; a later one is preferred (fewer tokens).
      if (merged_any && n <= 2 && edges_above(sym, n, highest) &&
          (lowest == bpe_merge_table::kNoRank || lowest > highest)) {
        starts_[cp] = start{sym[0], n == 2 ? sym[1] : -1};
      }
      if (lowest == bpe_merge_table::kNoRank || !edges_above(sym, n, lowest)) break;  // done, or (a) fails
      highest = std::max(highest, lowest);
      merged_any = true;
      sym[at] = merges.merged(lowest);
      std::copy(sym + at + 2, sym + n, sym + at + 1);
      --n;
    }
    if (starts_[cp].first >= 0) ++(starts_[cp].second >= 0 ? doubles_ : singles_);
  }
}

namespace {

// Pieces up to this many bytes use the quadratic scan, which beats a heap on short input.
constexpr size_t kShortPiece = 48;

void merge_short(const bpe_merge_table& merges, const int32_t* in, size_t n, std::vector<int32_t>* out) {
  int32_t ids[kShortPiece];
  uint32_t ranks[kShortPiece];  // ranks[k]: rank of merging ids[k] and ids[k + 1]
  std::copy(in, in + n, ids);
  for (size_t k = 0; k + 1 < n; ++k) ranks[k] = merges.rank(ids[k], ids[k + 1]);
  while (n > 1) {
    // Two branch-free passes (the first vectorizes): the lowest rank, then its leftmost position.
    uint32_t lowest = bpe_merge_table::kNoRank;
    for (size_t k = 0; k + 1 < n; ++k) lowest = std::min(lowest, ranks[k]);
    if (lowest == bpe_merge_table::kNoRank) break;
    size_t best = 0;
    while (ranks[best] != lowest) ++best;
    ids[best] = merges.merged(lowest);
    size_t tail = n - best - 2;  // pairs after the merged one
    std::memmove(ids + best + 1, ids + best + 2, tail * sizeof(int32_t));
    std::memmove(ranks + best + 1, ranks + best + 2, tail * sizeof(uint32_t));
    --n;
    if (best > 0) ranks[best - 1] = merges.rank(ids[best - 1], ids[best]);
    if (best + 1 < n) ranks[best] = merges.rank(ids[best], ids[best + 1]);
  }
  out->insert(out->end(), ids, ids + n);
}

struct candidate {
  uint64_t order;  // rank << 32 | index of the left symbol: lowest rank first, then leftmost
  int32_t left;    // ids the pair had when queued; a mismatch later means the entry is stale
  int32_t right;
  bool operator>(const candidate& o) const { return order > o.order; }
};

struct symbol {
  int32_t id;
  int32_t prev;  // -1 at the start
  int32_t next;  // -1 at the end
};

struct long_scratch {
  std::vector<symbol> symbols;
  std::vector<candidate> heap;
};

void merge_long(const bpe_merge_table& merges, const int32_t* in, size_t n, std::vector<int32_t>* out) {
  thread_local long_scratch scratch;
  std::vector<symbol>& sym = scratch.symbols;
  sym.resize(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = symbol{in[i], static_cast<int32_t>(i) - 1, i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  std::vector<candidate>& heap = scratch.heap;  // a min-heap under std::greater
  heap.clear();
  // Appends the pair starting at symbol POS, if it merges; returns whether it did.
  auto add_pair = [&](int32_t pos) {
    if (pos < 0 || sym[pos].next < 0) return false;
    int32_t next = sym[pos].next;
    uint32_t rank = merges.rank(sym[pos].id, sym[next].id);
    if (rank == bpe_merge_table::kNoRank) return false;
    heap.push_back(candidate{(uint64_t{rank} << 32) | static_cast<uint32_t>(pos), sym[pos].id, sym[next].id});
    return true;
  };
  auto push_pair = [&](int32_t pos) {
    if (add_pair(pos)) std::push_heap(heap.begin(), heap.end(), std::greater<candidate>());
  };
  for (size_t i = 0; i + 1 < n; ++i) add_pair(static_cast<int32_t>(i));
  std::make_heap(heap.begin(), heap.end(), std::greater<candidate>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<candidate>());
    candidate c = heap.back();
    heap.pop_back();
    auto pos = static_cast<int32_t>(c.order & 0xFFFFFFFFu);
    symbol& left = sym[pos];
    if (left.id != c.left || left.next < 0) continue;  // merged away or changed since queued
    symbol& right = sym[left.next];
    if (right.id != c.right) continue;
    left.id = merges.merged(static_cast<uint32_t>(c.order >> 32));
    right.id = -1;  // dead; can no longer match any queued entry
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = pos;
    push_pair(left.prev);
    push_pair(pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out->push_back(sym[i].id);
}

}  // namespace

void bpe_merge(const bpe_merge_table& merges, const int32_t* ids, size_t n, std::vector<int32_t>* out) {
  if (n == 0) return;
  if (n == 1) {
    out->push_back(ids[0]);
    return;
  }
  if (n <= kShortPiece) {
    merge_short(merges, ids, n, out);
  } else {
    merge_long(merges, ids, n, out);
  }
}

}  // namespace rampart::model
