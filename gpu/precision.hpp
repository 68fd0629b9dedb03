// The device engine's two precisions (gpu/exact_program.hpp).
#pragma once

#include <cstdint>
#include <string>

namespace rampart::gpu {

// exact: fp32 activations and accumulation everywhere. fast: the projections (attention's q, kv_a and o, the
// dense and shared-expert MLPs, lm_head) multiply bf16 activations by bf16 weights on tensor cores (fp8 weights
// are widened to bf16 at upload) with fp32 accumulation; the router, attention itself, routed experts, norms and
// the KV cache stay as in exact.
enum class precision : uint8_t { exact, fast };
const char* precision_name(precision p);
// "exact" or "fast"; false for anything else.
bool parse_precision(const std::string& text, precision* out);

}  // namespace rampart::gpu
