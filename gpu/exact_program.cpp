#include "gpu/exact_program.hpp"

namespace rampart::gpu {

void pack_block_tables(const model::token_slot* slots, int64_t n, int64_t block_tokens, packed_tables* out) {
  out->tables.clear();
  out->at.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < n;) {
    // A run of tokens sharing one sequence's block table; positions ascend, so its last token needs most blocks.
    int64_t end = t + 1;
    while (end < n && slots[end].blocks == slots[t].blocks) ++end;
    int64_t last = slots[t].pos;
    for (int64_t u = t; u < end; ++u) last = std::max(last, slots[u].pos);
    const int64_t offset = static_cast<int64_t>(out->tables.size());
    out->tables.insert(out->tables.end(), slots[t].blocks, slots[t].blocks + last / block_tokens + 1);
    for (int64_t u = t; u < end; ++u) out->at[static_cast<size_t>(u)] = offset;
    t = end;
  }
}

int64_t graph_bucket(int64_t n, const std::vector<int64_t>& buckets) {
  for (int64_t b : buckets)
    if (b >= n) return b;
  return -1;
}

bool decode_step(const model::token_slot* slots, int64_t n, const int64_t* logit_rows, int64_t rows) {
  if (rows != n) return false;
  for (int64_t t = 0; t < n; ++t)
    if (logit_rows[t] != t || (t > 0 && slots[t].blocks == slots[t - 1].blocks)) return false;
  return true;
}

void pad_block_tables(const model::token_slot* slots, int64_t n, int64_t m, int64_t block_tokens, int64_t stride,
                      int32_t pad, packed_tables* out) {
  out->tables.assign(static_cast<size_t>(m * stride), pad);
  out->at.resize(static_cast<size_t>(m));
  for (int64_t t = 0; t < m; ++t) {
    out->at[static_cast<size_t>(t)] = t * stride;
    if (t < n) std::copy(slots[t].blocks, slots[t].blocks + slots[t].pos / block_tokens + 1, &out->tables[t * stride]);
  }
}

int64_t attention_chunk(int64_t n, int64_t heads, int64_t keys, int64_t budget) {
  const int64_t per_token = std::max<int64_t>(1, heads * keys);
  return std::max<int64_t>(1, std::min(n, budget / per_token));
}

const char* precision_name(precision p) { return p == precision::fast ? "fast" : "exact"; }

bool parse_precision(const std::string& text, precision* out) {
  if (text == "exact" || text == "fast") {
    *out = text == "fast" ? precision::fast : precision::exact;
    return true;
  }
  return false;
}

}  // namespace rampart::gpu
