// The CUDA engine's plain C++ face: an engine_options.device that runs the forward pass on a CUDA device. No
// CUDA types cross this header.
#pragma once

#include <string>

#include "engine/device_forward.hpp"
#include "gpu/precision.hpp"

namespace rampart::gpu {

// The device program (gpu/exact_program.hpp) on device INDEX: weights in their stored dtype, fp32 KV cache,
// activations and accumulation in MODE's precision; decode steps replay CUDA graphs (GRAPHS false: every step
// launches op by op). The factory fails with a one-line error when the device does not exist.
model::device_factory cuda_device(int index, bool graphs = true, precision mode = precision::exact);

}  // namespace rampart::gpu
