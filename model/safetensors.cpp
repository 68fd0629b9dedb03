// Validation of one safetensors file image: an 8-byte little-endian header length N, N bytes of JSON
// ({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}), then the data
// section, which data_offsets index. Every check below turns bad input into a message, never into a crash.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/checkpoint.hpp"

namespace rampart::model {
namespace {

constexpr uint64_t max_header_bytes = 100ull << 20;

bool fail(load_error* err, const std::string& message) {
  if (err) err->message = message;
  return false;
}

bool parse_dtype(const std::string& s, dtype* out) {
  if (s == "F32")
    *out = dtype::f32;
  else if (s == "BF16")
    *out = dtype::bf16;
  else if (s == "F16")
    *out = dtype::f16;
  else if (s == "F8_E4M3")
    *out = dtype::f8_e4m3;
  else
    return false;
  return true;
}

// A JSON value that is a non-negative integer fitting in int64 (and in size_t).
bool as_size(const nlohmann::ordered_json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = static_cast<uint64_t>(s);
  } else {
    return false;
  }
  return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

struct range {
  uint64_t begin;
  uint64_t end;
  size_t index;
};

bool parse_entry(const std::string& file, const std::string& name, const nlohmann::ordered_json& entry,
                 uint64_t data_size, tensor_view* t, range* r, load_error* err) {
  const std::string where = file + ": tensor '" + name + "': ";
  if (!entry.is_object()) return fail(err, where + "header entry is not an object");
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets")
      return fail(err, where + "unknown header field '" + item.key() + "'");
  }
  const auto d = entry.find("dtype");
  if (d == entry.end() || !d->is_string()) return fail(err, where + "missing or non-string dtype");
  if (!parse_dtype(d->get<std::string>(), &t->type))
    return fail(err, where + "unsupported dtype '" + d->get<std::string>() + "'");

  const auto s = entry.find("shape");
  if (s == entry.end() || !s->is_array()) return fail(err, where + "missing or non-array shape");
  if (s->size() > 8) return fail(err, where + "shape has more than 8 dimensions");
  // numel * dtype size, saturating. Zero dimensions are set aside so that a huge shape with one zero
  // dimension cannot pass as empty: the product of the other dimensions must stay below 2^62, which keeps
  // every partial product of tensor_view::numel() inside int64.
  uint64_t span = dtype_size(t->type);
  bool empty = false;
  for (const auto& dim : *s) {
    uint64_t n = 0;
    if (!as_size(dim, &n)) return fail(err, where + "shape entries must be non-negative integers");
    t->shape.push_back(static_cast<int64_t>(n));
    if (n == 0)
      empty = true;
    else if (span > std::numeric_limits<uint64_t>::max() / n)
      span = std::numeric_limits<uint64_t>::max();
    else
      span *= n;
  }
  if (span > (uint64_t{1} << 62)) return fail(err, where + "shape is too large");
  const uint64_t bytes = empty ? 0 : span;

  const auto o = entry.find("data_offsets");
  if (o == entry.end() || !o->is_array() || o->size() != 2)
    return fail(err, where + "data_offsets must be an array [begin, end]");
  if (!as_size((*o)[0], &r->begin) || !as_size((*o)[1], &r->end))
    return fail(err, where + "data_offsets must be non-negative integers");
  if (r->begin > r->end) return fail(err, where + "data_offsets begin > end");
  if (r->end > data_size)
    return fail(err, where + "data_offsets [" + std::to_string(r->begin) + ", " + std::to_string(r->end) +
                         "] run past the data section of " + std::to_string(data_size) +
                         " bytes (truncated file?)");
  if (r->end - r->begin != bytes)
    return fail(err, where + "byte range of " + std::to_string(r->end - r->begin) + " bytes does not match " +
                         dtype_name(t->type) + " shape (" + std::to_string(bytes) + " bytes)");
  t->name = name;
  t->nbytes = static_cast<size_t>(bytes);
  t->file = file;
  return true;
}

}  // namespace

bool parse_safetensors(const std::byte* bytes, size_t size, const std::string& file,
                       std::vector<tensor_view>* out, load_error* err) {
  out->clear();
  if (size < 8)
    return fail(err, file + ": file of " + std::to_string(size) + " bytes is too short for a header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(bytes[i]);
  if (header_len > max_header_bytes)
    return fail(err, file + ": header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
  if (header_len > size - 8)
    return fail(err, file + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                         std::to_string(size) + "-byte file");
  if (header_len < 2) return fail(err, file + ": header is empty");

  const char* text = reinterpret_cast<const char*>(bytes + 8);
  // Duplicate tensor names would silently shadow each other in a JSON object: reject them while parsing.
  std::unordered_set<std::string> seen;
  std::string duplicate;
  auto reject_duplicates = [&](int depth, nlohmann::ordered_json::parse_event_t event,
                               nlohmann::ordered_json& parsed) {
    if (depth == 1 && event == nlohmann::ordered_json::parse_event_t::key && duplicate.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second) duplicate = key;
    }
    return true;
  };
  nlohmann::ordered_json header =
      nlohmann::ordered_json::parse(text, text + header_len, reject_duplicates, /*allow_exceptions=*/false);
  if (header.is_discarded()) return fail(err, file + ": header is not valid JSON");
  if (!header.is_object()) return fail(err, file + ": header is not a JSON object");
  if (!duplicate.empty()) return fail(err, file + ": tensor '" + duplicate + "': duplicate name in header");

  const uint64_t data_size = size - 8 - header_len;
  const std::byte* data = bytes + 8 + header_len;
  std::vector<range> ranges;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) return fail(err, file + ": __metadata__ is not an object");
      for (const auto& m : item.value().items())
        if (!m.value().is_string())
          return fail(err, file + ": __metadata__ value '" + m.key() + "' is not a string");
      continue;
    }
    tensor_view t;
    range r{};
    if (!parse_entry(file, item.key(), item.value(), data_size, &t, &r, err)) {
      out->clear();
      return false;
    }
    t.data = data + r.begin;
    r.index = out->size();
    ranges.push_back(r);
    out->push_back(std::move(t));
  }

  std::sort(ranges.begin(), ranges.end(), [](const range& a, const range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Sorted by begin, a non-empty range overlaps an earlier one iff it starts before the furthest end seen so
  // far. Empty tensors occupy no bytes and overlap nothing.
  const range* furthest = nullptr;
  for (const range& cur : ranges) {
    if (cur.begin == cur.end) continue;
    if (furthest && cur.begin < furthest->end) {
      const std::string a = (*out)[furthest->index].name;
      const std::string b = (*out)[cur.index].name;
      out->clear();
      return fail(err, file + ": tensor '" + b + "': data_offsets overlap tensor '" + a + "'");
    }
    if (!furthest || cur.end > furthest->end) furthest = &cur;
  }
  return true;
}

}  // namespace rampart::model
