// The sampler's passes over a row of logits, one set per ISA like the matrix kernels (kernels/kernels.hpp): each
// is a plain loop over 16-value lanes that the compiler vectorises for the ISA its file is built for. Sums are
// taken in a fixed order (16 lanes, float within a block of 256 values, double across blocks), so a row gives
// the same results on every call with the same ISA.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.hpp"

namespace rampart::model {

// Values per block of sampler_row_ops::kept_blocks.
inline constexpr size_t sampler_block = 256;

struct bracket_sums {
  double above_mass = 0;  // over values > hi
  int64_t above_count = 0;
  double inside_mass = 0;  // over values in [lo, hi] (lo <= hi)
  int64_t inside_count = 0;
  size_t collected = 0;  // indices of values in [lo, hi] written (all of them when inside_count <= the cap)
};

struct sampler_row_ops {
  kernel_isa isa;
  // The largest value that is not NaN; -infinity when there is none.
  float (*max)(const float* l, size_t n);
  // The first index holding VALUE; n when none does.
  size_t (*find)(const float* l, size_t n, float value);
  // w[i] = 2^((l[i] - max) * scale) (a degree-6 polynomial, within 2e-7 of exact), 0 where that is below
  // 2^-125 or l[i] is NaN; SCALE is finite. Writes the sum of each block of sampler_block weights to SUMS
  // (ceil(n / sampler_block) entries) and returns their sum.
  double (*weights)(const float* l, size_t n, float max, float scale, float* w, double* sums);
  // Masses and counts of the values above HI and of those in [LO, HI] (NaN is in neither); each value's mass
  // is w[i], or 1 when W is null. The indices (ascending) of the values in [LO, HI] go to IDS, at most CAP.
  void (*bracket)(const float* l, const float* w, size_t n, float lo, float hi, bracket_sums* out, uint32_t* ids,
                  size_t cap);
  // Writes the indices (ascending) of the values in [LO, HI] to OUT, at most CAP of them; returns how many
  // there are in all.
  size_t (*collect)(const float* l, size_t n, float lo, float hi, uint32_t* out, size_t cap);
  // The mass of the values before (VALUE, INDEX) in (value desc, index asc) order: sum of w[i] over l[i] >
  // value, and over l[i] == value with i < index.
  double (*mass_before)(const float* l, const float* w, size_t n, float value, size_t index);
  // The kept mass of each block of sampler_block values, kept meaning l[i] > cut, or l[i] == cut and
  // i <= cut_index, and w[i] >= min_w; SUMS has ceil(n / sampler_block) entries. Returns their sum.
  double (*kept_blocks)(const float* l, const float* w, size_t n, float cut, size_t cut_index, float min_w,
                        double* sums);
};

const sampler_row_ops& sampler_rows_portable();
const sampler_row_ops& sampler_rows_avx2();
const sampler_row_ops& sampler_rows_avx512();
const sampler_row_ops& sampler_rows_for(kernel_isa isa);
// The set for the ISA the matrix kernels use (kernels().isa).
const sampler_row_ops& sampler_rows();

}  // namespace rampart::model
