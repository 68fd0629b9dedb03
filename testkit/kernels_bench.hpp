// Machine ceilings measured by the binary that is being benchmarked, so figures can be stated as a fraction
// of what this machine can do: streaming read bandwidth and float32 FMA throughput.
#pragma once

#include <cstddef>

#include "kernels/thread_pool.hpp"

namespace rampart::model {

// Bytes per second that POOL's threads read from a BYTES-sized buffer (make it larger than the last-level
// cache), best of a few passes. Allocates and touches the buffer.
double measure_read_bandwidth(thread_pool& pool, size_t bytes);

// Float32 FLOP/s (an FMA counts 2) of POOL's threads running independent FMA chains with the widest vector
// unit this CPU supports (AVX-512, AVX2 or scalar), best of a few runs.
double measure_fma_peak(thread_pool& pool);

}  // namespace rampart::model
