// CPU compute kernels: weight matrices stay in their stored dtype (f32, bf16, f16, fp8 e4m3 with 128x128 block
// scales) and are widened to float32 on the fly; activations and accumulation are float32.
//
// Determinism contract: every output element is computed by one fixed sequence of float operations that
// depends only on the matrix row, the input row and the ISA chosen at start-up, never on how many rows are
// computed together or which thread computes them. That makes a sequence's results independent of the batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "model/tensor.hpp"

namespace rampart::model {

// A 2-D weight matrix [rows, cols], row-major, in its stored dtype; possibly a window of rows of a larger
// tensor (row0 = the window's first row in the tensor, which selects fp8 scale rows).
struct weight_matrix {
  dtype type = dtype::f32;
  int64_t rows = 0;
  int64_t cols = 0;
  const std::byte* data = nullptr;  // row 0 of the underlying tensor
  int64_t row0 = 0;
  const float* scale = nullptr;  // fp8 only: [ceil(tensor_rows/128), scale_cols] block multipliers
  int64_t scale_cols = 0;

  // A view of a 2-D tensor (an fp8 tensor must have its scale_inv linked).
  static weight_matrix from(const tensor_view& t);
  // Rows [begin, begin + count) of this view.
  weight_matrix slice_rows(int64_t begin, int64_t count) const;
  // Bytes of stored weights (plus fp8 scales) in this view: what one full pass over it reads.
  size_t bytes() const;
  const std::byte* row_ptr(int64_t r) const {
    return data + static_cast<size_t>((row0 + r) * cols) * dtype_size(type);
  }
  float row_scale(int64_t r, int64_t col_block) const { return scale[((row0 + r) / 128) * scale_cols + col_block]; }
};

enum class kernel_isa : uint8_t { portable, avx2, avx512 };

// The kernels of one ISA. All pointers are to float32 unless stated.
struct kernel_ops {
  kernel_isa isa;
  const char* name;
  // y[t*y_stride + r] = sum_c W[r, c] * x[t*x_stride + c] for r in [r_begin, r_end), t in [0, n_tok).
  void (*gemm_rows)(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                    int64_t y_stride, int64_t r_begin, int64_t r_end);
  // out[c] = W[r, c] for all columns (fp8 values include their block scale).
  void (*load_row)(const weight_matrix& w, int64_t r, float* out);
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // out[o*out_stride + c] = sum over s < n_rows, in s order, of p[o*p_stride + s] * rows[s][c], for o < n_out,
  // c < width: attention's probability-weighted sum of cached rows for several heads at once.
  void (*weighted_rows)(const float* const* rows, int64_t n_rows, const float* p, int64_t p_stride, int64_t n_out,
                        int64_t width, float* out, int64_t out_stride);
  // Some kernels read the activations in their own layout (AVX-512 with bf16 weights: every 32-column block
  // with its even columns first, then its odd ones, zero-padded to a multiple of 32). A caller that runs many
  // row ranges over the same activations rearranges them once with prepare_x and calls gemm_rows_prepared;
  // gemm_rows does both itself. prepared_cols(w) is the row length of that layout, 0 when the kernels for W
  // read the natural layout (then prepare_x is not needed and gemm_rows_prepared is gemm_rows).
  int64_t (*prepared_cols)(const weight_matrix& w);
  // out[t * prepared_cols(w) + ...] = x[t * x_stride + ...] rearranged, for t < n_tok.
  void (*prepare_x)(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out);
  // As gemm_rows, with X prepared (or natural when prepared_cols(w) == 0); same results, bit for bit.
  void (*gemm_rows_prepared)(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                             int64_t y_stride, int64_t r_begin, int64_t r_end);
};

// prepared_cols / prepare_x of kernels that read the natural layout.
int64_t natural_layout_cols(const weight_matrix& w);
void natural_layout_prepare(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out);

// The portable weighted_rows (also used by the AVX2 table).
void weighted_rows_portable(const float* const* rows, int64_t n_rows, const float* p, int64_t p_stride,
                            int64_t n_out, int64_t width, float* out, int64_t out_stride);

bool kernel_isa_supported(kernel_isa isa);
// The kernels for ISA (which must be supported).
const kernel_ops& kernels_for(kernel_isa isa);
// The best supported ISA, or the one named by the RAMPART_KERNELS environment variable ("portable", "avx2",
// "avx512") when that is set and supported. Chosen once per process.
const kernel_ops& kernels();

// Per-ISA tables, defined in their own translation units (compiled with the matching -m flags).
const kernel_ops& kernels_portable();
const kernel_ops& kernels_avx2();
const kernel_ops& kernels_avx512();

// Float value of every e4m3 code, 256 entries (0x7f and 0xff are NaN).
const float* e4m3_table();

}  // namespace rampart::model
