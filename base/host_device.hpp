// RAMPART_HD marks a function that nvcc compiles for both the host and a CUDA device (the device program's ops,
// gpu/exact_ops.hpp, and the router they share with the CPU engine); other compilers see a plain function.
// Bit casts between float and its 32 bits, usable on both sides.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define RAMPART_HD __host__ __device__
#else
#define RAMPART_HD
#endif

namespace rampart {

RAMPART_HD inline float float_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

RAMPART_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

}  // namespace rampart
