// The sampler's row passes built for the avx2 ISA (see engine/sampler_rows.inc).
#include "engine/sampler_rows.hpp"

#define SAMPLER_ROWS_NAME sampler_rows_avx2
#define SAMPLER_ROWS_ISA kernel_isa::avx2
#define SAMPLER_ROWS_BYTES 32
#include "engine/sampler_rows.inc"
