// The sampler's row passes built for the portable ISA (see engine/sampler_rows.inc).
#include "engine/sampler_rows.hpp"

#define SAMPLER_ROWS_NAME sampler_rows_portable
#define SAMPLER_ROWS_ISA kernel_isa::portable
#define SAMPLER_ROWS_BYTES 16
#include "engine/sampler_rows.inc"

namespace rampart::model {

const sampler_row_ops& sampler_rows_for(kernel_isa isa) {
#if defined(__x86_64__)
  if (isa == kernel_isa::avx512) return sampler_rows_avx512();
  if (isa == kernel_isa::avx2) return sampler_rows_avx2();
#endif
  (void)isa;
  return sampler_rows_portable();
}

const sampler_row_ops& sampler_rows() {
  static const sampler_row_ops& chosen = sampler_rows_for(kernels().isa);
  return chosen;
}

}  // namespace rampart::model
