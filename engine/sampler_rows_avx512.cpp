// The sampler's row passes built for the avx512 ISA (see engine/sampler_rows.inc).
#include "engine/sampler_rows.hpp"

#define SAMPLER_ROWS_NAME sampler_rows_avx512
#define SAMPLER_ROWS_ISA kernel_isa::avx512
#define SAMPLER_ROWS_BYTES 64
#include "engine/sampler_rows.inc"
