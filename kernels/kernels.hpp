// CPU compute kernels: weight matrices stay in their stored dtype (f32, bf16, f16, fp8 e4m3 with 128x128 block
// scales) and are widened to float32 on the fly; activations and accumulation are float32.
//
// Determinism contract: every output element is computed by one fixed sequence of float operations that
// depends only on the matrix row, the input row and the ISA chosen at start-up, never on how many rows are
// computed together or which thread computes them. That makes a sequence's results independent of the batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/tensor.hpp"

namespace rampart::model {

// How a weight matrix's values are laid out in memory.
//  natural: row-major [rows, cols], as stored in the checkpoint.
//  panels16 (bf16 only, written by pack_panels16): rows in panels of 16 (the last one zero-padded); a panel is
//   ceil(cols/2) 64-byte lines, line j holding columns 2j and 2j+1 of its 16 rows as 16 32-bit words (row l's
//   column 2j in the low half of word l, column 2j+1 in the high half; zero past the last column). A kernel
//   streams a panel front to back and widens a line into two 16-row vectors with one instruction each.
enum class weight_layout : uint8_t { natural, panels16 };

// A 2-D weight matrix [rows, cols] in its stored dtype; possibly a window of rows of a larger tensor (row0 =
// the window's first row in the tensor, which selects fp8 scale rows; a panels16 window starts on a panel).
struct weight_matrix {
  dtype type = dtype::f32;
  weight_layout layout = weight_layout::natural;
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
  // Bytes from data to the end of the view's storage (panels16: whole panels, padding included).
  size_t storage_bytes() const;
  // natural layout only.
  const std::byte* row_ptr(int64_t r) const {
    return data + static_cast<size_t>((row0 + r) * cols) * dtype_size(type);
  }
  float row_scale(int64_t r, int64_t col_block) const { return scale[((row0 + r) / 128) * scale_cols + col_block]; }
};

enum class kernel_isa : uint8_t { portable, avx2, avx512 };

// panels16 geometry: bytes of one panel of a matrix with COLS columns, and the panel count of ROWS rows.
inline int64_t panel_bytes(int64_t cols) { return (cols + 1) / 2 * 64; }
inline int64_t panel_count(int64_t rows) { return (rows + 15) / 16; }

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
  // The layout these kernels read fastest for W (natural: use W as stored). A panels16 matrix is read only by
  // the kernels of an ISA that asked for it; its gemm_rows computes each element as one chain of FMAs over the
  // columns in order, y = fma(W[r, cols-1], x[cols-1], ... fma(W[r, 0], x[0], 0)), whatever the batch.
  weight_layout (*preferred_layout)(const weight_matrix& w);
  // SwiGLU: gate[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i].
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  // v[i] = exp(v[i] * scale - m) / sum, m the largest v[i] * scale: attention's softmax over one row.
  void (*softmax)(float* v, int64_t n, float scale);
  // Attention of one query over cached rows shared by all its heads (MLA's absorbed form is multi-query):
  // for h < n_heads, p[h] = softmax over s < n_rows of scale * (q[h * q_stride + c] . rows[s][c], c < kw), and
  // out[h * out_stride + c] = sum over s, in order, of p[h][s] * rows[s][c] for c < width. Scores are one FMA
  // chain over c in order, so a (query, head) gets the same bits in any batch. SCRATCH holds
  // 16 * (n_rows + kw) floats. nullptr when the ISA has no kernel of its own (the caller composes gemm_rows,
  // softmax and weighted_rows).
  void (*mqa_attend)(const float* q, int64_t q_stride, int64_t n_heads, const float* const* rows, int64_t n_rows,
                     int64_t kw, int64_t width, float scale, float* scratch, float* out, int64_t out_stride);
};

// W (natural layout, bf16) rewritten into the panels16 layout at OUT (panel_count(rows) * panel_bytes(cols)
// bytes). TRANSPOSE: the matrix written is W's transpose ([cols, rows] of W becomes [rows, cols] of OUT).
void pack_panels16(const weight_matrix& w, bool transpose, std::byte* out);
// A panels16 view of storage written by pack_panels16 for a ROWS x COLS bf16 matrix.
weight_matrix panels16_view(const std::byte* data, int64_t rows, int64_t cols);
// Element (r, c) of W widened to float (any layout; fp8 includes its block scale). For tests and tools.
float weight_at(const weight_matrix& w, int64_t r, int64_t c);

// prepared_cols / prepare_x / preferred_layout of kernels that read the natural layout.
weight_layout natural_layout_preferred(const weight_matrix& w);
int64_t natural_layout_cols(const weight_matrix& w);
void natural_layout_prepare(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out);

// The portable silu_mul and softmax (std::exp; also used by the AVX2 table).
void silu_mul_portable(float* gate, const float* up, int64_t n);
void softmax_portable(float* v, int64_t n, float scale);

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
