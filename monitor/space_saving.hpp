// Space-Saving top-k summary (Metwally, Agrawal, El Abbadi 2005) over a fixed number of slots.
// Guarantee: every key whose true count exceeds N/K (N = total added) holds a slot, and for each slot
// count - error <= true count <= count. Fixed memory, no allocation; add() is O(K) with K small (16-64).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rampart::monitor {

// KEY needs hash() (non-zero spread, equal keys equal hashes) and operator==.
template <typename Key>
struct counted_key {
  Key key{};
  uint64_t hash = 0;
  uint64_t count = 0;
  uint64_t error = 0;  // overestimate bound: the count the slot held when this key took it over
  uint64_t lower_bound() const { return count - error; }
};

template <typename Key, size_t K>
class space_saving {
 public:
  void add(const Key& key, uint64_t hash, uint64_t n = 1) {
    total_ += n;
    for (size_t i = 0; i < used_; ++i) {
      if (hashes_[i] == hash && slots_[i].key == key) {
        counts_[i] += n;
        return;
      }
    }
    if (used_ < K) {
      slots_[used_].key = key;
      slots_[used_].error = 0;
      hashes_[used_] = hash;
      counts_[used_] = n;
      ++used_;
      return;
    }
    size_t min_i = 0;
    for (size_t i = 1; i < K; ++i) {
      if (counts_[i] < counts_[min_i]) min_i = i;
    }
    slots_[min_i].key = key;
    slots_[min_i].error = counts_[min_i];
    hashes_[min_i] = hash;
    counts_[min_i] += n;
  }

  void clear() {
    used_ = 0;
    total_ = 0;
  }

  size_t size() const { return used_; }
  uint64_t total() const { return total_; }
  // An upper bound of KEY's true count: its slot's count when it holds one; otherwise 0 while a slot is still
  // free (every key added so far holds one), else the smallest count (a key without a slot was added at most
  // that often).
  uint64_t upper_bound(const Key& key, uint64_t hash) const {
    for (size_t i = 0; i < used_; ++i) {
      if (hashes_[i] == hash && slots_[i].key == key) return counts_[i];
    }
    if (used_ < K) return 0;
    return *std::min_element(counts_.begin(), counts_.end());
  }
  counted_key<Key> slot(size_t i) const {
    return counted_key<Key>{slots_[i].key, hashes_[i], counts_[i], slots_[i].error};
  }

 private:
  struct key_error {
    Key key{};
    uint64_t error = 0;
  };
  // Hashes and counts apart from the keys, so lookups and the minimum search scan dense arrays.
  std::array<uint64_t, K> hashes_{};
  std::array<uint64_t, K> counts_{};
  std::array<key_error, K> slots_{};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

// Merges several summaries (e.g. the steps of one window) into the TOP_N entries with the largest counts,
// summing counts and errors of equal keys (mergeable summaries, Agarwal et al. 2012). SCRATCH is reused
// between calls so a steady state does not allocate. Returns the number of entries written to OUT.
template <typename Key, size_t K, size_t TopN>
size_t merge_top(const space_saving<Key, K>* const* parts, size_t n_parts,
                 std::vector<counted_key<Key>>* scratch, std::array<counted_key<Key>, TopN>* out) {
  scratch->clear();
  for (size_t p = 0; p < n_parts; ++p) {
    for (size_t i = 0; i < parts[p]->size(); ++i) scratch->push_back(parts[p]->slot(i));
  }
  std::sort(scratch->begin(), scratch->end(), [](const counted_key<Key>& a, const counted_key<Key>& b) {
    return a.hash < b.hash;
  });
  size_t w = 0;
  for (size_t r = 0; r < scratch->size(); ++r) {
    if (w > 0 && (*scratch)[w - 1].hash == (*scratch)[r].hash && (*scratch)[w - 1].key == (*scratch)[r].key) {
      (*scratch)[w - 1].count += (*scratch)[r].count;
      (*scratch)[w - 1].error += (*scratch)[r].error;
    } else {
      (*scratch)[w++] = (*scratch)[r];
    }
  }
  scratch->resize(w);
  const size_t n = std::min(w, TopN);
  std::partial_sort(scratch->begin(), scratch->begin() + static_cast<std::ptrdiff_t>(n), scratch->end(),
                    [](const counted_key<Key>& a, const counted_key<Key>& b) {
                      return a.lower_bound() != b.lower_bound() ? a.lower_bound() > b.lower_bound()
                                                                : a.hash < b.hash;
                    });
  std::copy(scratch->begin(), scratch->begin() + static_cast<std::ptrdiff_t>(n), out->begin());
  return n;
}

}  // namespace rampart::monitor
