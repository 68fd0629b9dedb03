// libFuzzer target for parse_safetensors: any byte string must give a tensor list or an error, never a crash,
// and every accepted tensor's bytes must lie inside the input (touched here so ASan would catch a lie).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "model/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rampart::model;
  std::vector<tensor_view> tensors;
  load_error err;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  if (!parse_safetensors(bytes, size, "fuzz.safetensors", &tensors, &err)) {
    if (err.message.empty()) std::abort();
    return 0;
  }
  unsigned sum = 0;
  for (const tensor_view& t : tensors) {
    if (static_cast<uint64_t>(t.numel()) * dtype_size(t.type) != t.nbytes) std::abort();
    if (t.nbytes == 0) continue;
    if (t.data < bytes || t.data + t.nbytes > bytes + size) std::abort();
    sum += std::to_integer<unsigned>(t.data[0]) + std::to_integer<unsigned>(t.data[t.nbytes - 1]);
  }
  return static_cast<int>(sum & 0);
}
