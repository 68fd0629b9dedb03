// The seam for running the forward pass on a device other than the engine's CPU threads (the CUDA engine in
// gpu/). The engine keeps everything else: sequences, the block manager and the prefix cache decide which KV
// blocks a token uses; the device holds the weights and the KV blocks and computes the logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/kv_cache.hpp"
#include "model/layers.hpp"
#include "model/model_config.hpp"

namespace rampart::model {

struct sampling_params;

// Thrown by device_forward::forward when the device fails a step (a launch or copy error, out of memory).
// engine::step turns it into a failed step (false + *err) and changes no sequence.
class device_failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class device_forward {
 public:
  virtual ~device_forward() = default;
  // "cuda:0 NVIDIA H100 80GB HBM3, exact", for logs and engine::kernel_name().
  virtual const char* name() const = 0;
  // Runs tokens TOKENS[0..N) at SLOTS (position and block table of each; the KV of every earlier position of
  // those sequences is in the device's cache already) through every layer, writes their KV rows, and writes
  // the logits of tokens LOGIT_ROWS[0..ROWS) (ascending indexes into 0..N) as ROWS rows of vocab_size floats
  // to LOGITS. Throws device_failure.
  // With SAMPLE (ROWS entries), a row whose SAMPLE[r] is set is not written to LOGITS: the device picks its
  // token with those parameters and the draw UNIFORM[r] (the CPU sampler's rules, gpu/sample_ops.hpp) and
  // writes it to ROW_TOKENS[r]. Only for a device whose samples() is true.
  virtual void forward(const int32_t* tokens, const token_slot* slots, int64_t n, const int64_t* logit_rows,
                       int64_t rows, float* logits, const sampling_params* const* sample = nullptr,
                       const double* uniform = nullptr, int32_t* row_tokens = nullptr) = 0;
  virtual bool samples() const { return false; }
  virtual size_t kv_bytes() const = 0;
  virtual size_t weight_bytes() const = 0;  // weights held on the device
};

// Builds a device_forward for a model: uploads WEIGHTS (unpacked, natural layout) and allocates a KV cache of
// N_BLOCKS blocks of BLOCK_TOKENS tokens. nullptr + *err when the device cannot hold them or is unusable.
using device_factory = std::function<std::unique_ptr<device_forward>(
    const model_config& config, const model_weights& weights, int64_t n_blocks, int block_tokens, std::string* err)>;

}  // namespace rampart::model
