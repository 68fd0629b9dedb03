// Fuzzes the expert-shard frame codec (shards/shard_frame.hpp) as a shard process and the attention rank meet it:
// arbitrary bytes must decode or fail with a reason; a frame that decodes must encode back to the same bytes; and
// what a shard accepts under its limits stays inside them (rows, items per row, width, a de-duplicated warm list
// no longer than the model's experts, error texts within max_error_bytes; results finite).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shards/shard_frame.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// Equal but for the header's two reserved bytes (6-7), which decoders ignore and encoders write as zero.
bool same(const std::vector<uint8_t>& a, const uint8_t* data, size_t size) {
  if (a.size() != size || size < 16) return false;
  return std::memcmp(a.data(), data, 6) == 0 && std::memcmp(a.data() + 8, data + 8, size - 8) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::model;
  shard_frame_limits limits;  // a small model: 64 rows a step, 2 experts a token, width 4, 16 experts
  limits.max_rows = 64;
  limits.experts_per_row = 2;
  limits.hidden = 4;
  limits.n_experts = 16;
  std::string err;
  {  // As a shard reads it.
    shard_frame f;
    if (decode_shard_frame(data, size, &f, &err, &limits)) {
      if (f.kind == shard_frame_kind::warm) {
        require(static_cast<int64_t>(f.experts.size()) <= limits.n_experts);
        for (size_t i = 1; i < f.experts.size(); ++i) require(f.experts[i - 1] < f.experts[i]);
      }
      if (f.kind == shard_frame_kind::error) require(f.message.size() <= max_error_bytes);
      shard_batch b;
      if (f.kind == shard_frame_kind::run && decode_run_request(data, size, limits, &b, &err)) {
        require(b.n_rows <= limits.max_rows && b.hidden == limits.hidden);
        require(b.n_items <= b.n_rows * limits.experts_per_row);
        require(static_cast<int64_t>(size) <= limits.max_request_bytes());
      }
    }
  }
  std::vector<uint8_t> again;
  shard_frame f;
  if (!decode_shard_frame(data, size, &f, &err)) {
    require(!err.empty());
    return 0;
  }
  switch (f.kind) {
    case shard_frame_kind::warm:
      encode_warm(f.request_id, f.experts, &again);
      require(same(again, data, size));
      break;
    case shard_frame_kind::error:
      encode_error(f.request_id, f.message, &again);
      require(same(again, data, size));
      break;
    case shard_frame_kind::run: {
      shard_batch b;
      const shard_frame_limits any{1 << 24, 1 << 24, 0, 0};
      if (!decode_run_request(data, size, any, &b, &err)) break;
      encode_run_request(f.request_id, b, &again);
      require(same(again, data, size));
      break;
    }
    case shard_frame_kind::run_result: {
      // The rank checks an answer against what it sent; here the counts come from the frame itself, so the
      // decoder's own range checks are what stands between them and an allocation.
      shard_batch b;
      if (size >= 24) {
        std::memcpy(&b.n_items, data + 16, 4);
        std::memcpy(&b.hidden, data + 20, 4);
      }
      if (!decode_run_result(data, size, &b, &err)) break;
      for (size_t i = 0; i < static_cast<size_t>(b.n_items) * static_cast<size_t>(b.hidden); ++i) {
        require(b.out[i] == b.out[i] && b.out[i] - b.out[i] == 0);  // finite
      }
      encode_run_result(f.request_id, b, &again);
      require(same(again, data, size));
      break;
    }
    default:
      encode_simple(f.kind, f.request_id, &again);
      require(same(again, data, size));
  }
  return 0;
}
