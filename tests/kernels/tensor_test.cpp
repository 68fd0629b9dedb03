// Scalar dtype conversions against hand-computed values (spec §3.12 for e4m3 FN, IEEE layouts for bf16/f16).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/tensor.hpp"

using namespace rampart::model;

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Reference encoder by exhaustive search: the finite code nearest to |v|, ties to the even code, saturating.
uint8_t nearest_e4m3_by_search(float v) {
  const double a = std::fabs(static_cast<double>(v));
  int best = 0;
  double best_err = a;
  for (int c = 1; c <= 0x7e; ++c) {
    const int e = c >> 3, m = c & 7;
    const double value = e == 0 ? m / 512.0 : std::ldexp(1.0 + m / 8.0, e - 7);
    const double err = std::fabs(value - a);
    if (err < best_err || (err == best_err && c % 2 == 0)) {
      best = c;
      best_err = err;
    }
  }
  if (a >= 448.0) best = 0x7e;
  return static_cast<uint8_t>(best == 0 ? 0 : (std::signbit(v) ? 0x80 : 0) | best);
}

}  // namespace

TEST_CASE("dtype names and sizes follow the safetensors spellings", "[tensor]") {
  CHECK(std::string(dtype_name(dtype::f32)) == "F32");
  CHECK(std::string(dtype_name(dtype::bf16)) == "BF16");
  CHECK(std::string(dtype_name(dtype::f16)) == "F16");
  CHECK(std::string(dtype_name(dtype::f8_e4m3)) == "F8_E4M3");
  CHECK(dtype_size(dtype::f32) == 4);
  CHECK(dtype_size(dtype::bf16) == 2);
  CHECK(dtype_size(dtype::f16) == 2);
  CHECK(dtype_size(dtype::f8_e4m3) == 1);
}

TEST_CASE("e4m3 codes decode to the FN values", "[tensor]") {
  CHECK(e4m3_to_float(0x7e) == 448.0f);
  CHECK(e4m3_to_float(0xfe) == -448.0f);
  CHECK(e4m3_to_float(0x08) == 0.015625f);      // 2^-6, smallest normal
  CHECK(e4m3_to_float(0x01) == 0.001953125f);   // 2^-9, smallest subnormal
  CHECK(e4m3_to_float(0x07) == 7.0f / 512.0f);  // largest subnormal
  CHECK(e4m3_to_float(0x38) == 1.0f);
  CHECK(e4m3_to_float(0x3c) == 1.5f);
  CHECK(e4m3_to_float(0x40) == 2.0f);
  CHECK(e4m3_to_float(0x77) == 240.0f);  // 1.875 * 2^7
  CHECK(e4m3_to_float(0x78) == 256.0f);  // exponent 15 is finite in the FN variant
  CHECK(e4m3_to_float(0x00) == 0.0f);
  CHECK(std::signbit(e4m3_to_float(0x80)));
  CHECK(std::isnan(e4m3_to_float(0x7f)));
  CHECK(std::isnan(e4m3_to_float(0xff)));
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7f) != 0x7f) CHECK(std::isfinite(e4m3_to_float(static_cast<uint8_t>(c))));
}

TEST_CASE("e4m3 encoding rounds to nearest even and saturates", "[tensor]") {
  CHECK(float_to_e4m3(448.0f) == 0x7e);
  CHECK(float_to_e4m3(464.0f) == 0x7e);
  CHECK(float_to_e4m3(1e6f) == 0x7e);
  CHECK(float_to_e4m3(std::numeric_limits<float>::infinity()) == 0x7e);
  CHECK(float_to_e4m3(-std::numeric_limits<float>::infinity()) == 0xfe);
  CHECK(float_to_e4m3(std::nanf("")) == 0x7f);
  CHECK(float_to_e4m3(1.0f) == 0x38);
  CHECK(float_to_e4m3(-2.0f) == 0xc0);
  CHECK(float_to_e4m3(1.0625f) == 0x38);  // halfway 1.0 / 1.125 -> even mantissa 0
  CHECK(float_to_e4m3(1.1875f) == 0x3a);  // halfway 1.125 / 1.25 -> even mantissa 2
  CHECK(float_to_e4m3(1.07f) == 0x39);
  CHECK(float_to_e4m3(17.0f) == 0x58);     // halfway 16 / 18 -> 16
  CHECK(float_to_e4m3(0x1p-10f) == 0x00);  // halfway 0 / 2^-9 -> 0
  CHECK(float_to_e4m3(0x3p-10f) == 0x02);  // halfway 2^-9 / 2^-8 -> 2^-8
  CHECK(float_to_e4m3(0x1p-6f) == 0x08);
  CHECK(float_to_e4m3(0x0.fp-6f) ==
        0x08);                          // 15/16 * 2^-6 = 7.5 * 2^-9: halfway 7 / 8 -> 8, the smallest normal
  CHECK(float_to_e4m3(-0.0f) == 0x00);  // no negative zero
  CHECK(float_to_e4m3(-1e-9f) == 0x00);
}

TEST_CASE("every finite e4m3 code survives a round trip", "[tensor]") {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    const uint8_t expected = c == 0x80 ? 0x00 : static_cast<uint8_t>(c);
    CHECK(float_to_e4m3(e4m3_to_float(static_cast<uint8_t>(c))) == expected);
  }
}

TEST_CASE("e4m3 encoding equals an exhaustive nearest-value search", "[tensor]") {
  // Every float32 of a dense sweep of bit patterns over the e4m3 range and beyond, both signs.
  for (uint32_t u = bits_of(0x1p-12f); u <= bits_of(600.0f); u += 997) {
    const float v = float_of(u);
    REQUIRE(float_to_e4m3(v) == nearest_e4m3_by_search(v));
    REQUIRE(float_to_e4m3(-v) == nearest_e4m3_by_search(-v));
  }
  // All midpoints between neighbouring codes (exact ties) and their float neighbours.
  for (int c = 0; c < 0x7e; ++c) {
    const float mid =
        (e4m3_to_float(static_cast<uint8_t>(c)) + e4m3_to_float(static_cast<uint8_t>(c + 1))) / 2;
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1000.0f)})
      REQUIRE(float_to_e4m3(v) == nearest_e4m3_by_search(v));
  }
}

TEST_CASE("bf16 conversions keep the top half and round to nearest even", "[tensor]") {
  CHECK(bf16_to_float(0x3f80) == 1.0f);
  CHECK(bf16_to_float(0x4049) == 3.140625f);
  CHECK(bf16_to_float(0xc000) == -2.0f);
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(float_to_bf16(3.14159265f) == 0x4049);
  CHECK(float_to_bf16(1.0f + 0x1p-8f) == 0x3f80);             // halfway -> even
  CHECK(float_to_bf16(1.0f + 0x3p-8f) == 0x3f82);             // halfway -> even (up)
  CHECK(float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);  // above halfway -> up
  CHECK(float_to_bf16(-0.0f) == 0x8000);
  CHECK(float_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds past the largest bf16
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  CHECK(std::isnan(bf16_to_float(float_to_bf16(float_of(0x7f800001u)))));  // low-bit NaN must not become inf
  CHECK(std::isnan(bf16_to_float(float_to_bf16(float_of(0xff800001u)))));
}

TEST_CASE("f16 decodes normals, subnormals, infinities and NaN", "[tensor]") {
  CHECK(f16_to_float(0x3c00) == 1.0f);
  CHECK(f16_to_float(0xc000) == -2.0f);
  CHECK(f16_to_float(0x7bff) == 65504.0f);
  CHECK(f16_to_float(0x0400) == 0x1p-14f);
  CHECK(f16_to_float(0x0001) == 0x1p-24f);
  CHECK(f16_to_float(0x83ff) == -1023.0f * 0x1p-24f);
  CHECK(f16_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(f16_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(f16_to_float(0x7e00)));
  CHECK(std::signbit(f16_to_float(0x8000)));
}

TEST_CASE("tensor_view numel, rows and cols follow the shape", "[tensor]") {
  tensor_view t;
  t.shape = {3, 5};
  CHECK(t.numel() == 15);
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 5);
  t.shape = {7};
  CHECK(t.rows() == 7);
  CHECK(t.cols() == 7);
  t.shape = {};
  CHECK(t.numel() == 1);
}
