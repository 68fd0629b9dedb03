#include "model/kernels.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

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
  w.row0 = row0 + begin;
  w.rows = count;
  return w;
}

size_t weight_matrix::bytes() const {
  size_t b = static_cast<size_t>(rows * cols) * dtype_size(type);
  if (type == dtype::f8_e4m3) b += static_cast<size_t>((rows + 127) / 128 * scale_cols) * sizeof(float);
  return b;
}

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

int64_t natural_layout_cols(const weight_matrix&) { return 0; }

void natural_layout_prepare(const weight_matrix& w, const float* x, int64_t x_stride, int64_t n_tok, float* out) {
  for (int64_t t = 0; t < n_tok; ++t) std::memcpy(out + t * w.cols, x + t * x_stride, sizeof(float) * w.cols);
}

const kernel_ops& kernels_portable() {
  static const kernel_ops ops{kernel_isa::portable,   "portable",    gemm_rows_portable,
                              load_row_portable,    dot_portable,  axpy_portable,
                              weighted_rows_portable, natural_layout_cols, natural_layout_prepare,
                              gemm_rows_portable};
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
