#include "shards/shard_frame.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rampart::model {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the shard link writes host floats as little-endian");

namespace {

constexpr uint32_t kMagic = 0x4b485352;  // bytes "RSHK"
constexpr uint8_t kVersion = 1;
constexpr size_t kHeader = 16;
constexpr uint32_t kMaxCount = 1u << 24, kMaxHidden = 1u << 16;
constexpr uint64_t kMaxComputeNs = 3600ull * 1000 * 1000 * 1000;  // an hour: anything longer is not a timing

void put(std::vector<uint8_t>* out, const void* p, size_t n) {
  const size_t at = out->size();
  out->resize(at + n);
  if (n) std::memcpy(out->data() + at, p, n);
}
template <class T>
void put(std::vector<uint8_t>* out, T v) {
  put(out, &v, sizeof v);
}
void header(std::vector<uint8_t>* out, shard_frame_kind kind, uint64_t id) {
  out->clear();
  put(out, kMagic);
  put(out, kVersion);
  put(out, static_cast<uint8_t>(kind));
  put(out, uint16_t{0});
  put(out, id);
}
template <class T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// memcpy, except that an empty copy may name the null data() of an empty vector.
void copy_bytes(void* to, const void* from, size_t n) {
  if (n) std::memcpy(to, from, n);
}
template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}
bool known_kind(uint8_t k) {
  return k == 1 || k == 2 || k == 3 || k == 0x81 || k == 0x82 || k == 0x83 || k == 0xff;
}

}  // namespace

void encode_run_request(uint64_t id, const shard_batch& b, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::run, id);
  put(out, static_cast<uint32_t>(b.layer));
  put(out, static_cast<uint32_t>(b.hidden));
  put(out, static_cast<uint32_t>(b.n_rows));
  put(out, static_cast<uint32_t>(b.n_items));
  put(out, b.item_row.data(), sizeof(int32_t) * static_cast<size_t>(b.n_items));
  put(out, b.item_expert.data(), sizeof(int32_t) * static_cast<size_t>(b.n_items));
  put(out, b.rows.data(), sizeof(float) * static_cast<size_t>(b.n_rows) * static_cast<size_t>(b.hidden));
}

void encode_run_result(uint64_t id, const shard_batch& b, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::run_result, id);
  put(out, static_cast<uint32_t>(b.n_items));
  put(out, static_cast<uint32_t>(b.hidden));
  put(out, b.compute_ns);
  put(out, b.out.data(), sizeof(float) * static_cast<size_t>(b.n_items) * static_cast<size_t>(b.hidden));
}

void encode_simple(shard_frame_kind kind, uint64_t id, std::vector<uint8_t>* out) { header(out, kind, id); }

void encode_warm(uint64_t id, const std::vector<int32_t>& experts, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::warm, id);
  put(out, static_cast<uint32_t>(experts.size()));
  put(out, experts.data(), sizeof(int32_t) * experts.size());
}

void encode_error(uint64_t id, const std::string& message, std::vector<uint8_t>* out) {
  header(out, shard_frame_kind::error, id);
  const size_t n = std::min(message.size(), max_error_bytes);
  put(out, static_cast<uint32_t>(n));
  put(out, message.data(), n);
}

int64_t shard_frame_limits::max_answer_bytes() const {
  const int64_t width = hidden > 0 ? hidden : kMaxHidden;
  const int64_t result = static_cast<int64_t>(kHeader) + 16 + 4 * max_rows * experts_per_row * width;
  return std::max<int64_t>(result, static_cast<int64_t>(kHeader) + 4 + static_cast<int64_t>(max_error_bytes));
}

int64_t shard_frame_limits::max_request_bytes() const {
  const int64_t width = hidden > 0 ? hidden : kMaxHidden;
  return static_cast<int64_t>(kHeader) + 16 + 8 * max_rows * experts_per_row + 4 * max_rows * width;
}

bool decode_shard_frame(const uint8_t* d, size_t size, shard_frame* f, std::string* err,
                        const shard_frame_limits* limits) {
  if (size < kHeader) return *err = "frame of " + std::to_string(size) + " bytes is shorter than the header", false;
  if (get<uint32_t>(d) != kMagic) return *err = "bad magic", false;
  if (d[4] != kVersion) return *err = "unsupported version " + std::to_string(d[4]), false;
  if (!known_kind(d[5])) return *err = "unknown kind " + std::to_string(d[5]), false;
  f->kind = static_cast<shard_frame_kind>(d[5]);
  f->request_id = get<uint64_t>(d + 8);
  const uint8_t* body = d + kHeader;
  const size_t left = size - kHeader;
  auto counted = [&](size_t unit, uint32_t* n) {
    if (left < 4) return *err = "body too short", false;
    *n = get<uint32_t>(body);
    if (*n > kMaxCount || left != 4 + unit * *n)
      return *err = "body of " + std::to_string(left) + " bytes does not hold " + std::to_string(*n) + " entries", false;
    return true;
  };
  uint32_t n = 0;
  switch (f->kind) {
    case shard_frame_kind::warm:
      if (!counted(4, &n)) return false;
      if (limits && limits->n_experts > 0 && n > limits->n_experts) {
        return *err = "warm lists " + std::to_string(n) + " experts, the model has " +
                      std::to_string(limits->n_experts), false;
      }
      f->experts.resize(n);
      copy_bytes(f->experts.data(), body + 4, 4 * static_cast<size_t>(n));
      if (limits) {
        std::sort(f->experts.begin(), f->experts.end());
        f->experts.erase(std::unique(f->experts.begin(), f->experts.end()), f->experts.end());
      }
      return true;
    case shard_frame_kind::error:
      if (!counted(1, &n)) return false;
      if (n > max_error_bytes) return *err = "error text of " + std::to_string(n) + " bytes", false;
      f->message.assign(reinterpret_cast<const char*>(body + 4), n);
      return true;
    case shard_frame_kind::ping:
    case shard_frame_kind::pong:
    case shard_frame_kind::warm_done:
      if (left != 0) return *err = "unexpected body", false;
      return true;
    default:
      return true;  // run and run_result bodies: decode_run_request / decode_run_result
  }
}

bool decode_run_request(const uint8_t* d, size_t size, const shard_frame_limits& limits, shard_batch* b,
                        std::string* err) {
  shard_frame f;
  if (!decode_shard_frame(d, size, &f, err)) return false;
  if (f.kind != shard_frame_kind::run) return *err = "not a run request", false;
  if (size < kHeader + 16) return *err = "run request too short", false;
  const uint8_t* p = d + kHeader;
  const uint32_t layer = get<uint32_t>(p), hidden = get<uint32_t>(p + 4), n_rows = get<uint32_t>(p + 8),
                 n_items = get<uint32_t>(p + 12);
  if (hidden < 1 || hidden > kMaxHidden || n_rows > kMaxCount || n_items > kMaxCount || layer > kMaxCount)
    return *err = "run request counts out of range", false;
  if (limits.hidden > 0 && hidden != limits.hidden) {
    return *err = "run request of width " + std::to_string(hidden) + ", the model's is " +
                  std::to_string(limits.hidden), false;
  }
  if (n_rows > limits.max_rows || n_items > n_rows * limits.experts_per_row) {
    return *err = "run request of " + std::to_string(n_rows) + " rows and " + std::to_string(n_items) +
                  " items: at most " + std::to_string(limits.max_rows) + " rows of " +
                  std::to_string(limits.experts_per_row) + " experts each", false;
  }
  const uint64_t want = kHeader + 16 + 8ull * n_items + 4ull * n_rows * hidden;
  if (size != want)
    return *err = "run request of " + std::to_string(size) + " bytes, its counts need " + std::to_string(want), false;
  b->layer = static_cast<int32_t>(layer);
  b->hidden = static_cast<int32_t>(hidden);
  b->n_rows = static_cast<int32_t>(n_rows);
  b->n_items = static_cast<int32_t>(n_items);
  grow(b->item_row, n_items);
  grow(b->item_expert, n_items);
  grow(b->rows, static_cast<size_t>(n_rows) * hidden);
  p += 16;
  copy_bytes(b->item_row.data(), p, 4ull * n_items);
  copy_bytes(b->item_expert.data(), p + 4ull * n_items, 4ull * n_items);
  copy_bytes(b->rows.data(), p + 8ull * n_items, 4ull * n_rows * hidden);
  return true;
}

bool decode_run_result(const uint8_t* d, size_t size, shard_batch* b, std::string* err) {
  shard_frame f;
  if (!decode_shard_frame(d, size, &f, err)) return false;
  if (f.kind != shard_frame_kind::run_result) return *err = "not a run result", false;
  if (size < kHeader + 16) return *err = "run result too short", false;
  const uint8_t* p = d + kHeader;
  const uint32_t n_items = get<uint32_t>(p), hidden = get<uint32_t>(p + 4);
  if (n_items > kMaxCount || hidden > kMaxHidden) return *err = "run result counts out of range", false;
  if (n_items != static_cast<uint32_t>(b->n_items) || hidden != static_cast<uint32_t>(b->hidden))
    return *err = "run result for " + std::to_string(n_items) + " items of width " + std::to_string(hidden) +
                  ", sent " + std::to_string(b->n_items) + " of " + std::to_string(b->hidden),
           false;
  if (size != kHeader + 16 + 4ull * n_items * hidden) return *err = "run result size does not match", false;
  const uint64_t compute_ns = get<uint64_t>(p + 8);
  if (compute_ns > kMaxComputeNs) return *err = "run result claims " + std::to_string(compute_ns) + " ns", false;
  const size_t values = static_cast<size_t>(n_items) * hidden;
  grow(b->out, values);
  copy_bytes(b->out.data(), p + 16, 4 * values);
  // A shard that returns NaN or infinity failed the step: nothing non-finite reaches the hidden state.
  for (size_t i = 0; i < values; ++i) {
    if (!std::isfinite(b->out[i])) return *err = "run result holds a non-finite value", false;
  }
  b->compute_ns = compute_ns;
  return true;
}

}  // namespace rampart::model
