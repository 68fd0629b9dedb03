// The CUDA engine's plain C++ face: an engine_options.device that runs the forward pass on a CUDA device. No
// CUDA types cross this header.
#pragma once

#include <memory>
#include <string>

#include "engine/device_forward.hpp"
#include "gpu/precision.hpp"
#include "shards/shard_compute.hpp"

namespace rampart::gpu {

// The device program (gpu/exact_program.hpp) on device INDEX: weights in their stored dtype, fp32 KV cache,
// activations and accumulation in MODE's precision; decode steps replay CUDA graphs (GRAPHS false: every step
// launches op by op). The factory fails with a one-line error when the device does not exist.
model::device_factory cuda_device(int index, bool graphs = true, precision mode = precision::exact);

// An expert shard's work on device INDEX (gpu/device_experts.hpp): only the experts it is asked for are copied
// there. nullptr + *err when the device does not exist or cannot start.
std::unique_ptr<model::expert_compute> cuda_shard_compute(int index, std::shared_ptr<const model::model_weights> w,
                                                          int hidden, std::string* err);

}  // namespace rampart::gpu
