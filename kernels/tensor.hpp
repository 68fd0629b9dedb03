// Tensors as stored in a checkpoint: a dtype, a shape and a pointer into mapped file bytes.
// Weights stay in their stored dtype; kernels widen bf16/f16/fp8 values to float32 on the fly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rampart::model {

enum class dtype : uint8_t { f32, bf16, f16, f8_e4m3 };

// "F32", "BF16", "F16", "F8_E4M3" (the safetensors spellings).
const char* dtype_name(dtype t);
// Bytes per element: 4, 2, 2, 1.
size_t dtype_size(dtype t);

// A read-only view of one tensor's bytes inside a mapped checkpoint file. Valid while the checkpoint lives.
struct tensor_view {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // little-endian, row-major
  size_t nbytes = 0;
  std::string file;  // the file it came from, for error messages
  // For F8_E4M3 matrices: the F32 "<name>_scale_inv" tensor of shape [ceil(rows/128), ceil(cols/128)];
  // dequantized value = e4m3_to_float(code) * scale_inv[row/128][col/128]. nullptr otherwise.
  const tensor_view* scale_inv = nullptr;

  int64_t numel() const;
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? (shape.empty() ? 1 : shape[0]) : shape[1]; }
};

// Scalar conversions (exact; used by kernels' portable paths, loaders and tests).
float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);  // round to nearest even; NaN stays NaN
float f16_to_float(uint16_t bits);
float e4m3_to_float(uint8_t code);      // FN variant: no infinities, 0x7f/0xff are NaN, max 448
uint8_t float_to_e4m3(float value);     // round to nearest even, saturating at +-448, no negative zero

}  // namespace rampart::model
