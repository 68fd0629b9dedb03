#include "kernels/tensor.hpp"

#include <cmath>
#include <cstring>

namespace rampart::model {

const char* dtype_name(dtype t) {
  switch (t) {
    case dtype::f32:
      return "F32";
    case dtype::bf16:
      return "BF16";
    case dtype::f16:
      return "F16";
    case dtype::f8_e4m3:
      return "F8_E4M3";
  }
  return "?";
}

size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32:
      return 4;
    case dtype::bf16:
    case dtype::f16:
      return 2;
    case dtype::f8_e4m3:
      return 1;
  }
  return 0;
}

int64_t tensor_view::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float bf16_to_float(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_bf16(float value) {
  uint32_t u;
  std::memcpy(&u, &value, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float e4m3_to_float(uint8_t code) {
  const bool negative = code & 0x80;
  const int exp = (code >> 3) & 0xf;
  const int mant = code & 0x7;
  if (exp == 0xf && mant == 0x7) return std::nanf("");
  float v = exp == 0 ? std::ldexp(static_cast<float>(mant), -9)  // subnormal: mant/8 * 2^-6
                     : std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
  return negative ? -v : v;
}

uint8_t float_to_e4m3(float value) {
  if (std::isnan(value)) return 0x7f;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float a = std::fabs(value);
  // Saturating: everything from 448 up (including what would round past it, and infinity) becomes 448.
  if (a >= 448.0f) return static_cast<uint8_t>(sign | 0x7e);
  uint8_t code;
  if (a < 0.015625f) {
    // Subnormal range below 2^-6: steps of 2^-9. Scaling by 2^9 is exact; nearbyint rounds half to even
    // (default rounding mode). A result of 8 is 2^-6, whose code 0x08 is the smallest normal: same encoding.
    code = static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9)));
  } else {
    int k = 0;
    std::frexp(a, &k);  // a = f * 2^k with f in [0.5, 1), so a is in [2^(k-1), 2^k)
    const int e = k - 1;
    // Mantissa steps are 2^(e-3): q in [8, 16) exactly, rounded half to even. q = 16 carries into the
    // exponent.
    const int q = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - e)));
    code = static_cast<uint8_t>(((e + 7) << 3) + (q - 8));
  }
  if (code == 0) return 0;  // no negative zero
  return static_cast<uint8_t>(sign | code);
}

}  // namespace rampart::model
