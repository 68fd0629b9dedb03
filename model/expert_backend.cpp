#include "model/expert_backend.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/kernels_parallel.hpp"

namespace rampart::model {

namespace {
template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
constexpr int64_t row_chunk = 16;
}  // namespace

local_expert_backend::local_expert_backend(const model_weights& weights, const kernel_ops& k, thread_pool& pool)
    : w_(weights), k_(k), pool_(pool) {}

void local_expert_backend::run(int layer, const float* rows, int n_rows, int hidden, const int32_t* expert_ids,
                               const float* weights, int k, float* out) {
  const moe_weights& moe = w_.layers[static_cast<size_t>(layer)].moe;
  const int64_t E = static_cast<int64_t>(moe.experts.size());
  const int64_t M = E > 0 ? moe.experts[0].width() : 0;
  const int64_t D = hidden, slots = static_cast<int64_t>(n_rows) * k;
  if (slots == 0 || E == 0) return;
  grow(count_, static_cast<size_t>(E));
  grow(offset_, static_cast<size_t>(E + 1));
  grow(slot_of_, static_cast<size_t>(slots));
  grow(active_, static_cast<size_t>(E));
  grow(xg_, static_cast<size_t>(slots * D));
  grow(gate_, static_cast<size_t>(slots * M));
  grow(up_, static_cast<size_t>(slots * M));
  grow(y_, static_cast<size_t>(slots * D));

  // Group (row, j) pairs by expert: counting sort, rows in ascending order within an expert.
  std::fill_n(count_.begin(), E, 0);
  for (int64_t s = 0; s < slots; ++s) ++count_[expert_ids[s]];
  offset_[0] = 0;
  int64_t n_active = 0;
  for (int64_t e = 0; e < E; ++e) {
    offset_[e + 1] = offset_[e] + count_[e];
    if (count_[e] > 0) active_[n_active++] = static_cast<int32_t>(e);
  }
  std::fill_n(count_.begin(), E, 0);
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t e = expert_ids[s];
    slot_of_[s] = offset_[e] + count_[e]++;
  }
  // Copies and the weighted sum below are spread over the pool only when there are enough rows to pay for the
  // hand-off (a decode batch of 8+); a few rows run on the calling thread.
  auto rows_loop = [&](int64_t n, auto&& fn) {
    if (n_rows >= 8) pool_.parallel_for(n, fn);
    else fn(int64_t{0}, n, 0);
  };
  rows_loop(slots, [&](int64_t b, int64_t e, int) {
    for (int64_t s = b; s < e; ++s) std::memcpy(&xg_[slot_of_[s] * D], rows + (s / k) * D, sizeof(float) * D);
  });

  // Work items: (expert, 16-row chunk) of gate/up, then of down.
  auto build_items = [&](int64_t rows_per_expert) {
    const int64_t chunks = (rows_per_expert + row_chunk - 1) / row_chunk;
    grow(item_expert_, static_cast<size_t>(n_active * chunks));
    grow(item_chunk_, static_cast<size_t>(n_active * chunks));
    int64_t n_items = 0;
    for (int64_t a = 0; a < n_active; ++a)
      for (int64_t c = 0; c < chunks; ++c) {
        item_expert_[n_items] = active_[a];
        item_chunk_[n_items++] = c;
      }
    return n_items;
  };

  // The gathered rows rearranged once for the kernels (every expert of a layer has the same dtypes and shapes;
  // gemm_rows_shared falls back to the natural layout for any that does not).
  const mlp_weights& first = moe.experts[static_cast<size_t>(active_[0])];
  const prepared_input xin = prepare_input(pool_, k_, first.gate, xg_.data(), D, slots, xp_);
  // A thread's share of items is contiguous: consecutive chunks of one expert run as one call, so the kernels'
  // prefetching streams across the whole range instead of restarting every 16 rows.
  auto last_of_run = [&](int64_t it, int64_t end) {
    while (it + 1 < end && item_expert_[it + 1] == item_expert_[it]) ++it;
    return it;
  };
  int64_t n_items = build_items(M);
  pool_.parallel_for(n_items, [&](int64_t b, int64_t e_, int) {
    for (int64_t it = b; it < e_;) {
      const int64_t e = item_expert_[it], last = last_of_run(it, e_), r0 = item_chunk_[it] * row_chunk;
      const int64_t r1 = std::min(M, (item_chunk_[last] + 1) * row_chunk);
      it = last + 1;
      const int64_t off = offset_[e], cnt = offset_[e + 1] - off;
      const mlp_weights& ex = moe.experts[static_cast<size_t>(e)];
      const prepared_input at{xin.x + off * xin.stride, xin.stride};
      gemm_rows_shared(k_, ex.gate, first.gate, at, &xg_[off * D], D, cnt, &gate_[off * M], M, r0, r1);
      gemm_rows_shared(k_, ex.up, first.gate, at, &xg_[off * D], D, cnt, &up_[off * M], M, r0, r1);
      for (int64_t t = 0; t < cnt; ++t) k_.silu_mul(&gate_[(off + t) * M + r0], &up_[(off + t) * M + r0], r1 - r0);
    }
  });
  const prepared_input hin = prepare_input(pool_, k_, first.down, gate_.data(), M, slots, xp_);
  n_items = build_items(D);
  pool_.parallel_for(n_items, [&](int64_t b, int64_t e_, int) {
    for (int64_t it = b; it < e_;) {
      const int64_t e = item_expert_[it], last = last_of_run(it, e_), r0 = item_chunk_[it] * row_chunk;
      const int64_t r1 = std::min(D, (item_chunk_[last] + 1) * row_chunk);
      it = last + 1;
      const int64_t off = offset_[e], cnt = offset_[e + 1] - off;
      const prepared_input at{hin.x + off * hin.stride, hin.stride};
      gemm_rows_shared(k_, moe.experts[static_cast<size_t>(e)].down, first.down, at, &gate_[off * M], M, cnt,
                       &y_[off * D], D, r0, r1);
    }
  });

  // Weighted sum per row in j order.
  rows_loop(n_rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      float* o = out + r * D;
      std::fill_n(o, D, 0.0f);
      for (int j = 0; j < k; ++j) k_.axpy(weights[r * k + j], &y_[slot_of_[r * k + j] * D], o, D);
    }
  });
}

}  // namespace rampart::model
