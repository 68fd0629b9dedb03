// Fuzzes model_config::parse, the first thing that reads a checkpoint: arbitrary text must parse or fail with a
// reason naming the file, and a config that parses stays inside the bounds that keep anything sized from it
// finite (every size at least 1 where required, at most its upper bound).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/model_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rampart::model::model_config;
  const std::string text(reinterpret_cast<const char*>(data), size);
  model_config c;
  std::string err;
  if (!model_config::parse(text, "f/config.json", &c, &err)) {
    if (err.rfind("f/config.json", 0) != 0) std::abort();
    return 0;
  }
  const bool inside = c.vocab_size >= 1 && c.vocab_size <= (int64_t{1} << 24) && c.hidden_size >= 1 &&
                      c.hidden_size <= (int64_t{1} << 16) && c.num_hidden_layers >= 1 &&
                      c.num_hidden_layers <= 1024 && c.kv_lora_rank >= 1 && c.kv_lora_rank <= (int64_t{1} << 16) &&
                      c.n_routed_experts >= 0 && c.n_routed_experts <= (int64_t{1} << 16) &&
                      c.max_position_embeddings >= 1 && c.max_position_embeddings <= (int64_t{1} << 24) &&
                      c.first_k_dense_replace <= c.num_hidden_layers && c.eos_token_id < c.vocab_size;
  if (!inside) std::abort();
  return 0;
}
