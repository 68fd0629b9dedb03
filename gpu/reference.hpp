// The exact device program run on the host (gpu/host_exec.hpp): an engine_options.device that needs no GPU.
// It exists to check the program the CUDA engine runs, op for op, on any machine; it is far slower than the
// CPU engine and is not a serving option.
#pragma once

#include "engine/device_forward.hpp"
#include "gpu/precision.hpp"

namespace rampart::gpu {

// THREADS: the loop's threads (0: one per hardware thread). GRAPHS: decode steps take the padded, captured path
// the CUDA engine replays as graphs (here the recorded ops run again).
// MODE fast: the tensor cores' products emulated (bf16 operands, fp32 accumulation).
model::device_factory host_reference_device(int threads = 0, bool graphs = true, precision mode = precision::exact);

}  // namespace rampart::gpu
