#include "kernels/kernels.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rampart::model {

weight_matrix weight_matrix::from(const tensor_view& t) {
  weight_matrix w;
  w.type = t.type;
  w.rows = t.shape.size() >= 2 ? t.shape[0] : 1;
  w.cols = t.shape.size() >= 2 ? t.shape[1] : (t.shape.empty() ? 1 : t.shape[0]);
  w.data = t.data;
  if (t.type == dtype::f8_e4m3 && t.scale_inv != nullptr) {
    w.scale = reinterpret_cast<const float*>(t.scale_inv->data);
    w.scale_cols = (w.cols + 127) / 128;
  }
  return w;
}

weight_matrix weight_matrix::slice_rows(int64_t begin, int64_t count) const {
  weight_matrix w = *this;
  if (layout == weight_layout::panels16) {
    // Callers split panels16 matrices on 16-row boundaries (the thread pool's chunks are 16 rows).
    w.data = data + (begin / 16) * panel_bytes(cols);
  } else {
    w.row0 = row0 + begin;
  }
  w.rows = count;
  return w;
}

size_t weight_matrix::bytes() const {
  size_t b = static_cast<size_t>(rows * cols) * dtype_size(type);
  if (type == dtype::f8_e4m3) b += static_cast<size_t>((rows + 127) / 128 * scale_cols) * sizeof(float);
  return b;
}

size_t weight_matrix::storage_bytes() const {
  if (layout == weight_layout::panels16) return static_cast<size_t>(panel_count(rows) * panel_bytes(cols));
  return static_cast<size_t>(rows * cols) * dtype_size(type);
}

void pack_panels16(const weight_matrix& w, bool transpose, std::byte* out) {
  const int64_t rows = transpose ? w.cols : w.rows, cols = transpose ? w.rows : w.cols;
  const int64_t pairs = (cols + 1) / 2;
  // Natural bf16 element (r, c) of the matrix being written.
  auto at = [&](int64_t r, int64_t c) -> uint32_t {
    if (r >= rows || c >= cols) return 0;
    uint16_t b;
    std::memcpy(&b, transpose ? w.row_ptr(c) + r * 2 : w.row_ptr(r) + c * 2, 2);
    return b;
  };
  for (int64_t p = 0; p < panel_count(rows); ++p) {
    std::byte* panel = out + p * panel_bytes(cols);
    for (int64_t l = 0; l < 16; ++l) {
      const int64_t r = p * 16 + l;
      if (!transpose && r < rows && cols % 2 == 0) {
        // A whole row is already its words in order: scatter them 64 bytes apart.
        const std::byte* src = w.row_ptr(r);
        for (int64_t j = 0; j < pairs; ++j) std::memcpy(panel + j * 64 + l * 4, src + j * 4, 4);
        continue;
      }
      for (int64_t j = 0; j < pairs; ++j) {
        const uint32_t word = at(r, 2 * j) | at(r, 2 * j + 1) << 16;
        std::memcpy(panel + j * 64 + l * 4, &word, 4);
      }
    }
  }
}

weight_matrix panels16_view(const std::byte* data, int64_t rows, int64_t cols) {
  weight_matrix w;
  w.type = dtype::bf16;
  w.layout = weight_layout::panels16;
  w.rows = rows;
  w.cols = cols;
  w.data = data;
  return w;
}

float weight_at(const weight_matrix& w, int64_t r, int64_t c) {
  if (w.layout == weight_layout::panels16) {
    uint16_t b;
    std::memcpy(&b, w.data + (r / 16) * panel_bytes(w.cols) + (c / 2) * 64 + (r % 16) * 4 + (c % 2) * 2, 2);
    return bf16_to_float(b);
  }
  const std::byte* p = w.row_ptr(r) + c * static_cast<int64_t>(dtype_size(w.type));
  switch (w.type) {
    case dtype::f32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case dtype::bf16:
    case dtype::f16: {
      uint16_t b;
      std::memcpy(&b, p, 2);
      return w.type == dtype::bf16 ? bf16_to_float(b) : f16_to_float(b);
    }
    case dtype::f8_e4m3: return e4m3_to_float(static_cast<uint8_t>(*p)) * w.row_scale(r, c / 128);
  }
  return 0.0f;
}

weight_layout natural_layout_preferred(const weight_matrix&) { return weight_layout::natural; }

const float* e4m3_table() {
  static const struct table {
    float v[256];
    table() {
      for (int i = 0; i < 256; ++i) v[i] = e4m3_to_float(static_cast<uint8_t>(i));
    }
  } t;
  return t.v;
}

namespace {

// Widens element c of row R to float (fp8 without its block scale).
inline float element(const weight_matrix& w, const std::byte* row, int64_t c, const float* lut) {
  switch (w.type) {
    case dtype::f32: {
      float f;
      std::memcpy(&f, row + c * 4, 4);
      return f;
    }
    case dtype::bf16: {
      uint16_t b;
      std::memcpy(&b, row + c * 2, 2);
      return bf16_to_float(b);
    }
    case dtype::f16: {
      uint16_t b;
      std::memcpy(&b, row + c * 2, 2);
      return f16_to_float(b);
    }
    case dtype::f8_e4m3: return lut[static_cast<uint8_t>(row[c])];
  }
  return 0.0f;
}

// Eight interleaved partial sums over [c0, c1), combined pairwise: a fixed order for every (row, token).
inline float partial_dot(const weight_matrix& w, const std::byte* row, const float* x, int64_t c0, int64_t c1,
                         const float* lut) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8)
    for (int i = 0; i < 8; ++i) acc[i] += element(w, row, c + i, lut) * x[c + i];
  for (int i = 0; c < c1; ++c, ++i) acc[i] += element(w, row, c, lut) * x[c];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void gemm_rows_portable(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                        int64_t y_stride, int64_t r_begin, int64_t r_end) {
  const float* lut = e4m3_table();
  for (int64_t r = r_begin; r < r_end; ++r) {
    const std::byte* row = w.row_ptr(r);
    for (int64_t t = 0; t < n_tok; ++t) {
      const float* xt = x + t * x_stride;
      float sum;
      if (w.type == dtype::f8_e4m3) {
        sum = 0.0f;
        for (int64_t b = 0; b * 128 < w.cols; ++b) {
          const int64_t c1 = (b + 1) * 128 < w.cols ? (b + 1) * 128 : w.cols;
          sum += partial_dot(w, row, xt, b * 128, c1, lut) * w.row_scale(r, b);
        }
      } else {
        sum = partial_dot(w, row, xt, 0, w.cols, lut);
      }
      y[t * y_stride + r] = sum;
    }
  }
}

void load_row_portable(const weight_matrix& w, int64_t r, float* out) {
  const float* lut = e4m3_table();
  const std::byte* row = w.row_ptr(r);
  for (int64_t c = 0; c < w.cols; ++c) {
    out[c] = element(w, row, c, lut);
    if (w.type == dtype::f8_e4m3) out[c] *= w.row_scale(r, c / 128);
  }
}

float dot_portable(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void axpy_portable(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void weighted_rows_portable(const float* const* rows, int64_t n_rows, const float* p, int64_t p_stride,
                            int64_t n_out, int64_t width, float* out, int64_t out_stride) {
  for (int64_t o = 0; o < n_out; ++o) {
    float* y = out + o * out_stride;
    for (int64_t c = 0; c < width; ++c) y[c] = 0.0f;
    for (int64_t s = 0; s < n_rows; ++s) {
      const float a = p[o * p_stride + s];
      const float* r = rows[s];
      for (int64_t c = 0; c < width; ++c) y[c] += a * r[c];
    }
  }
}

void silu_mul_portable(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void softmax_portable(float* v, int64_t n, float scale) {
  if (n <= 0) return;
  float mx = v[0] * scale;
  for (int64_t s = 0; s < n; ++s) mx = std::max(mx, v[s] * scale);
  float sum = 0.0f;
  for (int64_t s = 0; s < n; ++s) {
    v[s] = std::exp(v[s] * scale - mx);
    sum += v[s];
  }
  const float inv = 1.0f / sum;
  for (int64_t s = 0; s < n; ++s) v[s] *= inv;
}

int64_t natural_layout_cols(const weight_matrix&) { return 0; }

void natural_layout_prepare(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out) {
  for (int64_t t = 0; t < n_tok; ++t) std::memcpy(out + t * w.cols, x + t * x_stride, sizeof(float) * w.cols);
}

const kernel_ops& kernels_portable() {
  static const kernel_ops ops{kernel_isa::portable,   "portable",    gemm_rows_portable,
                              load_row_portable,    dot_portable,  axpy_portable,
                              weighted_rows_portable, natural_layout_cols, natural_layout_prepare,
                              gemm_rows_portable,     natural_layout_preferred, silu_mul_portable,
                              softmax_portable,       nullptr};
  return ops;
}

bool kernel_isa_supported(kernel_isa isa) {
  switch (isa) {
    case kernel_isa::portable: return true;
#if defined(__x86_64__)
    case kernel_isa::avx2: {
      // F16C through CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports does not know "f16c".
      unsigned a = 0, b = 0, c = 0, d = 0;
      const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    }
    case kernel_isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#else
    default: return false;
#endif
  }
  return false;
}

const kernel_ops& kernels_for(kernel_isa isa) {
#if defined(__x86_64__)
  if (isa == kernel_isa::avx512) return kernels_avx512();
  if (isa == kernel_isa::avx2) return kernels_avx2();
#endif
  (void)isa;
  return kernels_portable();
}

const kernel_ops& kernels() {
  static const kernel_ops& chosen = [&]() -> const kernel_ops& {
    const char* env = std::getenv("RAMPART_KERNELS");
    if (env != nullptr) {
      const std::string name = env;
      for (kernel_isa isa : {kernel_isa::portable, kernel_isa::avx2, kernel_isa::avx512})
        if (name == kernels_for(isa).name && kernel_isa_supported(isa)) return kernels_for(isa);
    }
    if (kernel_isa_supported(kernel_isa::avx512)) return kernels_avx512();
    if (kernel_isa_supported(kernel_isa::avx2)) return kernels_avx2();
    return kernels_portable();
  }();
  return chosen;
}

}  // namespace rampart::model
