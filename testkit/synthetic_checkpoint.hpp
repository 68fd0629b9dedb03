// Synthetic DeepSeek-architecture checkpoints in Hugging Face layout (config.json + safetensors), with every
// weight a pure function of (seed, tensor name, element index). The recipe is the one documented with the
// test fixtures (tests/fixtures/model/README.md); the tiny preset rebuilds those fixtures byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"
#include "model/model_config.hpp"

namespace rampart::model {

struct synthetic_spec {
  std::string variant = "v3";  // "v3" or "v2-lite" (recorded in config.json)
  model_config config;         // shapes and router settings; num_nextn_predict_layers > 0 writes MTP layers
  uint64_t seed = 0;
  dtype storage =
      dtype::bf16;   // bf16 or f32 for every tensor that is not fp8 (the router bias is always F32)
  bool fp8 = false;  // attention projections, dense MLP and experts as F8_E4M3 + 128x128 scales
  int shards = 1;    // > 1: model-0000i-of-0000N.safetensors + model.safetensors.index.json
};

// Fills *OUT with PRESET ("tiny", "small", "medium") of VARIANT ("v3", "v2-lite"). False + *err otherwise.
// tiny: the fixtures' shapes (hidden 256, 4 layers, 16 experts, vocab 1000) with one MTP layer for v3.
// small: hidden 512, 6 layers, 32 experts, vocab 129280, no MTP. medium: hidden 1024, 12 layers, 64 experts
// of width 512, vocab 129280, no MTP (1.43 B parameters).
bool synthetic_preset(const std::string& preset, const std::string& variant, synthetic_spec* out,
                      std::string* err);

// config.json text for SPEC (2-space indented, the fixtures' field order, trailing newline).
std::string synthetic_config_json(const synthetic_spec& spec);

// One tensor of the plan, in file order. A quantized matrix is followed by its "_scale_inv" entry.
struct synthetic_tensor {
  enum class kind : uint8_t { values, fp8_matrix, fp8_scales };
  std::string name;
  dtype type = dtype::bf16;
  std::vector<int64_t> shape;
  kind what = kind::values;
  std::string value_name;  // whose values it holds: its own name, or the copied tensor (MTP embed/head)
  double center = 0;
  double amp = 0;
};
std::vector<synthetic_tensor> synthetic_plan(const synthetic_spec& spec);

// The recipe's value of element INDEX of tensor NAME: center + (2u - 1) * amp in double, rounded to float.
float synthetic_value(uint64_t seed, const std::string& name, double center, double amp, uint64_t index);

// Writes config.json and the safetensors file(s) of SPEC into DIR (created if missing), generating values on
// THREADS threads (0: hardware concurrency) and streaming them to disk. False + *err naming the file on
// error.
bool write_synthetic_checkpoint(const synthetic_spec& spec, const std::string& dir, unsigned threads,
                                std::string* err);

}  // namespace rampart::model
