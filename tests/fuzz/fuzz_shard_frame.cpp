// Fuzzes the expert-shard frame codec (shards/shard_frame.hpp) as a shard process and the attention rank meet it:
// arbitrary bytes must decode or fail with a reason, and a frame that decodes must encode back to the same bytes.
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
  std::string err;
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
      if (!decode_run_request(data, size, &b, &err)) break;
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
