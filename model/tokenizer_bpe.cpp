#include "model/tokenizer_bpe.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

namespace rampart::model {

void bpe_merge_table::reserve(size_t n) {
  size_t capacity = 16;
  int bits = 4;
  while (capacity < n * 2) {
    capacity <<= 1;
    ++bits;
  }
  slots_.assign(capacity, slot{kEmpty, kNoRank, -1});
  mask_ = capacity - 1;
  shift_ = 64 - bits;
  count_ = 0;
}

bool bpe_merge_table::insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  if ((count_ + 1) * 2 > slots_.size()) {
    std::vector<slot> old = std::move(slots_);
    reserve(count_ + 1 > old.size() ? count_ + 1 : old.size());
    for (const slot& s : old) {
      if (s.key != kEmpty) insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.rank, s.merged);
    }
  }
  uint64_t key = pack(left, right);
  size_t i = slot_of(key);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = slot{key, rank, merged};
  ++count_;
  return true;
}

namespace {

// Pieces up to this many bytes use the quadratic scan, which beats a heap on short input.
constexpr size_t kShortPiece = 48;

void merge_short(const bpe_merge_table& merges, const int32_t* in, size_t n, std::vector<int32_t>* out) {
  int32_t ids[kShortPiece];
  uint32_t ranks[kShortPiece];  // ranks[k]: rank of merging ids[k] and ids[k + 1]
  int32_t merged[kShortPiece];
  std::copy(in, in + n, ids);
  for (size_t k = 0; k + 1 < n; ++k) ranks[k] = merges.find(ids[k], ids[k + 1], &merged[k]);
  while (n > 1) {
    // Two branch-free passes (the first vectorizes): the lowest rank, then its leftmost position.
    uint32_t lowest = bpe_merge_table::kNoRank;
    for (size_t k = 0; k + 1 < n; ++k) lowest = std::min(lowest, ranks[k]);
    if (lowest == bpe_merge_table::kNoRank) break;
    size_t best = 0;
    while (ranks[best] != lowest) ++best;
    ids[best] = merged[best];
    size_t tail = n - best - 2;  // pairs after the merged one
    std::memmove(ids + best + 1, ids + best + 2, tail * sizeof(int32_t));
    std::memmove(ranks + best + 1, ranks + best + 2, tail * sizeof(uint32_t));
    std::memmove(merged + best + 1, merged + best + 2, tail * sizeof(int32_t));
    --n;
    if (best > 0) ranks[best - 1] = merges.find(ids[best - 1], ids[best], &merged[best - 1]);
    if (best + 1 < n) ranks[best] = merges.find(ids[best], ids[best + 1], &merged[best]);
  }
  out->insert(out->end(), ids, ids + n);
}

struct candidate {
  uint64_t order;  // rank << 32 | index of the left symbol: lowest rank first, then leftmost
  int32_t left;    // ids the pair had when queued; a mismatch later means the entry is stale
  int32_t right;
  int32_t merged;
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
    int32_t merged;
    uint32_t rank = merges.find(sym[pos].id, sym[next].id, &merged);
    if (rank == bpe_merge_table::kNoRank) return false;
    heap.push_back(candidate{(uint64_t{rank} << 32) | static_cast<uint32_t>(pos), sym[pos].id, sym[next].id, merged});
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
    left.id = c.merged;
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
