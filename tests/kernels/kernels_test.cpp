// Every supported kernel ISA against a float64 reference built from tensor.hpp's scalar conversions, and the
// determinism contract: an output element does not depend on how many rows or tokens are computed with it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "base/cpu_affinity.hpp"
#include "kernels/kernels.hpp"
#include "kernels/thread_pool.hpp"

namespace rampart::model {
namespace {

struct test_matrix {
  std::vector<std::byte> bytes;
  std::vector<float> scale;
  std::vector<double> value;  // dequantized, row-major
  weight_matrix w;
};

// A ROWS x COLS matrix of dtype T with pseudo-random values; fp8 gets 128x128 block scales.
test_matrix make_matrix(dtype t, int64_t rows, int64_t cols) {
  test_matrix m;
  m.bytes.resize(static_cast<size_t>(rows * cols) * dtype_size(t));
  m.value.resize(static_cast<size_t>(rows * cols));
  const int64_t sr = (rows + 127) / 128, sc = (cols + 127) / 128;
  for (int64_t i = 0; i < sr * sc; ++i) m.scale.push_back(0.001f * static_cast<float>(1 + i % 7));
  uint64_t z = 12345;
  for (int64_t i = 0; i < rows * cols; ++i) {
    z = z * 6364136223846793005ull + 1442695040888963407ull;
    const float f = static_cast<float>(static_cast<int64_t>(z >> 40) % 2001 - 1000) / 700.0f;
    std::byte* p = &m.bytes[static_cast<size_t>(i) * dtype_size(t)];
    switch (t) {
      case dtype::f32:
        std::memcpy(p, &f, 4);
        m.value[i] = f;
        break;
      case dtype::bf16: {
        const uint16_t b = float_to_bf16(f);
        std::memcpy(p, &b, 2);
        m.value[i] = bf16_to_float(b);
        break;
      }
      case dtype::f16: {
        uint16_t h = static_cast<uint16_t>(z >> 48) & 0x7bff;  // any finite half
        if ((h & 0x7c00) == 0x7c00) h = 0x3c00;
        h = static_cast<uint16_t>(h % 0x5000);                 // |x| < 32
        std::memcpy(p, &h, 2);
        m.value[i] = f16_to_float(h);
        break;
      }
      case dtype::f8_e4m3: {
        uint8_t code = static_cast<uint8_t>(z >> 33);
        if ((code & 0x7f) == 0x7f) code = 0x30;  // keep NaN out of the products
        *p = static_cast<std::byte>(code);
        const int64_t r = i / cols, c = i % cols;
        m.value[i] = static_cast<double>(e4m3_to_float(code)) * m.scale[(r / 128) * sc + c / 128];
        break;
      }
    }
  }
  m.w.type = t;
  m.w.rows = rows;
  m.w.cols = cols;
  m.w.data = m.bytes.data();
  if (t == dtype::f8_e4m3) {
    m.w.scale = m.scale.data();
    m.w.scale_cols = sc;
  }
  return m;
}

std::vector<kernel_isa> supported() {
  std::vector<kernel_isa> v;
  for (kernel_isa i : {kernel_isa::portable, kernel_isa::avx2, kernel_isa::avx512})
    if (kernel_isa_supported(i)) v.push_back(i);
  return v;
}

TEST_CASE("gemm_rows matches a float64 reference for every dtype and supported ISA", "[kernels]") {
  for (dtype t : {dtype::f32, dtype::bf16, dtype::f16, dtype::f8_e4m3})
  for (int64_t n : {3, 7, 9, 20, 80}) {  // token counts that reach every tile shape, packing and token blocks
    const int64_t rows = 133, cols = 300;  // partial fp8 blocks, vector tails, odd row tiles
    test_matrix m = make_matrix(t, rows, cols);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
    for (kernel_isa isa : supported()) {
      const kernel_ops& k = kernels_for(isa);
      INFO(dtype_name(t) << " " << k.name << " tokens " << n);
      std::vector<float> y(static_cast<size_t>(n * rows));
      k.gemm_rows(m.w, x.data(), cols, n, y.data(), rows, 0, rows);
      double worst = 0;
      for (int64_t tk = 0; tk < n; ++tk)
        for (int64_t r = 0; r < rows; ++r) {
          double ref = 0, mag = 0;
          for (int64_t c = 0; c < cols; ++c) {
            ref += m.value[r * cols + c] * x[tk * cols + c];
            mag += std::fabs(m.value[r * cols + c] * x[tk * cols + c]);
          }
          worst = std::max(worst, std::fabs(y[tk * rows + r] - ref) / (mag + 1e-30));
        }
      CHECK(worst < 1e-6);

      // Same elements computed one row and one token at a time, and from a row window: bitwise equal.
      bool same = true;
      std::vector<float> one(static_cast<size_t>(rows));  // y is indexed by row: one row lands at one[r]
      for (int64_t tk = 0; tk < n; ++tk)
        for (int64_t r = 0; r < rows; ++r) {
          k.gemm_rows(m.w, &x[tk * cols], cols, 1, one.data(), rows, r, r + 1);
          same = same && one[r] == y[tk * rows + r];
        }
      const weight_matrix window = m.w.slice_rows(128, 5);
      std::vector<float> yw(5);
      const int64_t tw = n - 1;
      k.gemm_rows(window, &x[tw * cols], cols, 1, yw.data(), 5, 0, 5);
      for (int64_t r = 0; r < 5; ++r) same = same && yw[r] == y[tw * rows + 128 + r];
      CHECK(same);

      // Activations prepared once (as matmul and the experts do) give the same bits.
      const int64_t pc = k.prepared_cols(m.w);
      std::vector<float> xp(static_cast<size_t>(n * std::max(pc, cols)));
      if (pc > 0) {
        CHECK(pc >= cols);
        k.prepare_x(m.w, x.data(), cols, n, xp.data());
      }
      std::vector<float> yp(static_cast<size_t>(n * rows));
      k.gemm_rows_prepared(m.w, pc > 0 ? xp.data() : x.data(), pc > 0 ? pc : cols, n, yp.data(), rows, 0, rows);
      CHECK(yp == y);

      std::vector<float> row(static_cast<size_t>(cols));
      k.load_row(m.w, 130, row.data());
      for (int64_t c = 0; c < cols; ++c) CHECK(row[c] == Approx(m.value[130 * cols + c]).epsilon(1e-6));
    }
  }
}

TEST_CASE("panels16 bf16 matrices compute each element as one in-order FMA chain, whatever the batch",
          "[kernels]") {
  for (int64_t cols : {300, 301}) {  // an odd column count leaves a half line
    const int64_t rows = 133;        // a partial last panel
    test_matrix m = make_matrix(dtype::bf16, rows, cols);
    std::vector<std::byte> packed(static_cast<size_t>(panel_count(rows) * panel_bytes(cols)));
    pack_panels16(m.w, false, packed.data());
    const weight_matrix pw = panels16_view(packed.data(), rows, cols);
    for (int64_t r : {0, 15, 16, 77, 132})
      for (int64_t c : {int64_t{0}, int64_t{1}, int64_t{150}, cols - 1}) CHECK(weight_at(pw, r, c) == static_cast<float>(m.value[r * cols + c]));

    for (kernel_isa isa : supported()) {
      const kernel_ops& k = kernels_for(isa);
      if (k.preferred_layout(m.w) != weight_layout::panels16) continue;
      CHECK(k.prepared_cols(pw) == 0);
      // Every tile shape (row-major below 7 tokens, column-major copies from 7, one panel from 13), two full tiles,
      // and more than one 96-token group with a remainder tile.
      for (int64_t n : {1, 2, 3, 5, 7, 12, 13, 16, 30, 32, 105}) {
        INFO(k.name << " cols " << cols << " tokens " << n);
        std::vector<float> x(static_cast<size_t>(n * cols));
        for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
        std::vector<float> y(static_cast<size_t>(n * rows), -1.0f);
        k.gemm_rows(pw, x.data(), cols, n, y.data(), rows, 0, rows);
        // The contract, computed with std::fma one column at a time.
        bool exact = true;
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = 0; r < rows; ++r) {
            float acc = 0.0f;
            for (int64_t c = 0; c < cols; ++c)
              acc = std::fma(static_cast<float>(m.value[r * cols + c]), x[t * cols + c], acc);
            exact = exact && acc == y[t * rows + r];
          }
        CHECK(exact);
        // Activation rows further apart than the row length (a slice of wider rows) give the same bits.
        const int64_t xs = cols + 5;
        std::vector<float> wide(static_cast<size_t>(n * xs), 1e30f);
        for (int64_t t = 0; t < n; ++t) std::copy_n(&x[t * cols], cols, &wide[t * xs]);
        std::vector<float> yw2(static_cast<size_t>(n * rows), -1.0f);
        k.gemm_rows(pw, wide.data(), xs, n, yw2.data(), rows, 0, rows);
        CHECK(yw2 == y);
        // Row ranges that start and end inside panels write only their rows.
        std::vector<float> part(static_cast<size_t>(n * rows), -1.0f);
        k.gemm_rows(pw, x.data(), cols, n, part.data(), rows, 20, 37);
        bool only = true;
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = 0; r < rows; ++r)
            only = only && part[t * rows + r] == (r >= 20 && r < 37 ? y[t * rows + r] : -1.0f);
        CHECK(only);
        // A window from row 128 (a panel boundary) gives the same bits.
        const weight_matrix window = pw.slice_rows(128, 5);
        std::vector<float> yw(5);
        k.gemm_rows(window, &x[(n - 1) * cols], cols, 1, yw.data(), 5, 0, 5);
        for (int64_t r = 0; r < 5; ++r) CHECK(yw[r] == y[(n - 1) * rows + 128 + r]);
      }
    }
  }

  // A transposed pack holds W^T: element (r, c) of the view is W[c, r].
  test_matrix m = make_matrix(dtype::bf16, 64, 40);
  std::vector<std::byte> packed(static_cast<size_t>(panel_count(40) * panel_bytes(64)));
  pack_panels16(m.w, true, packed.data());
  const weight_matrix t = panels16_view(packed.data(), 40, 64);
  bool same = true;
  for (int64_t r = 0; r < 40; ++r)
    for (int64_t c = 0; c < 64; ++c) same = same && weight_at(t, r, c) == static_cast<float>(m.value[c * 40 + r]);
  CHECK(same);
}

TEST_CASE("fp8 kernels decode all 256 e4m3 codes, 0x7f and 0xff as NaN", "[kernels]") {
  std::vector<std::byte> codes(256);
  for (int i = 0; i < 256; ++i) codes[i] = static_cast<std::byte>(i);
  const float one = 1.0f;
  weight_matrix w;
  w.type = dtype::f8_e4m3;
  w.rows = 1;
  w.cols = 256;
  w.data = codes.data();
  std::vector<float> scales = {one, one};
  w.scale = scales.data();
  w.scale_cols = 2;
  for (kernel_isa isa : supported()) {
    std::vector<float> row(256);
    kernels_for(isa).load_row(w, 0, row.data());
    for (int i = 0; i < 256; ++i) {
      INFO(kernels_for(isa).name << " code " << i);
      const float want = e4m3_to_float(static_cast<uint8_t>(i));
      if (std::isnan(want))
        CHECK(std::isnan(row[i]));
      else
        CHECK(row[i] == want);
    }
  }
  CHECK(std::isnan(e4m3_to_float(0x7f)));
  CHECK(e4m3_to_float(0x7e) == 448.0f);
  CHECK(e4m3_to_float(0x01) == std::ldexp(1.0f, -9));
}

TEST_CASE("dot and axpy match float64 references on every supported ISA", "[kernels]") {
  for (int64_t n : {1, 15, 16, 17, 48, 576}) {
    std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      a[i] = std::cos(0.1 * i);
      b[i] = std::sin(0.3 * i + 1);
    }
    double ref = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    for (kernel_isa isa : supported()) {
      const kernel_ops& k = kernels_for(isa);
      INFO(k.name << " n=" << n);
      CHECK(std::fabs(k.dot(a.data(), b.data(), n) - ref) <= 1e-6 * mag);
      std::vector<float> y = b;
      k.axpy(0.5f, a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) CHECK(y[i] == Approx(b[i] + 0.5 * a[i]).margin(1e-6));
    }
  }
}

}  // namespace
}  // namespace rampart::model

namespace rampart::model {
namespace {

TEST_CASE("silu_mul and softmax match float64 references on every supported ISA", "[kernels]") {
  const float inf = std::numeric_limits<float>::infinity();
  for (kernel_isa isa : supported()) {
    const kernel_ops& k = kernels_for(isa);
    INFO(k.name);
    // SwiGLU over a wide range (exp over- and underflows at both ends), a vector tail, NaN kept.
    std::vector<float> gate, up;
    for (int i = 0; i < 403; ++i) {
      gate.push_back(static_cast<float>(-120.0 + 0.6 * i));
      up.push_back(static_cast<float>(std::cos(0.3 * i)));
    }
    gate[7] = std::nanf("");
    gate[8] = inf;
    std::vector<float> out = gate;
    k.silu_mul(out.data(), up.data(), static_cast<int64_t>(out.size()));
    for (size_t i = 0; i < out.size(); ++i) {
      if (i == 7) {
        CHECK(std::isnan(out[i]));
        continue;
      }
      const double g = gate[i], ref = g / (1.0 + std::exp(-g)) * up[i];
      if (std::isinf(ref)) CHECK(out[i] == ref);
      else CHECK(std::fabs(out[i] - ref) <= 4e-7 * std::fabs(ref) + 1e-30);
    }
    // Softmax rows of 1, 16 and 37 values, scaled, summing to 1 and matching exp(x - max) / sum.
    for (int n : {1, 16, 37}) {
      std::vector<float> v;
      for (int i = 0; i < n; ++i) v.push_back(static_cast<float>(40.0 * std::sin(1.7 * i)));
      std::vector<float> p = v;
      const float scale = 0.125f;
      k.softmax(p.data(), n, scale);
      double mx = -1e300, sum = 0;
      for (float x : v) mx = std::max(mx, static_cast<double>(x) * scale);
      for (float x : v) sum += std::exp(static_cast<double>(x) * scale - mx);
      double total = 0;
      for (int i = 0; i < n; ++i) {
        const double ref = std::exp(static_cast<double>(v[i]) * scale - mx) / sum;
        CHECK(std::fabs(p[i] - ref) <= 1e-6 * ref + 1e-12);
        total += p[i];
      }
      CHECK(total == Approx(1.0).epsilon(1e-6));
    }
  }
}

TEST_CASE("mqa_attend matches a float64 softmax-weighted sum, a single key returns its row exactly",
          "[kernels]") {
  for (kernel_isa isa : supported()) {
    const kernel_ops& k = kernels_for(isa);
    if (k.mqa_attend == nullptr) continue;
    for (int64_t heads : {3, 16, 20}) {     // a partial group, one full group, a group and a part
      for (int64_t n : {1, 5, 17, 40}) {    // every key tile and remainder
        INFO(k.name << " heads " << heads << " keys " << n);
        const int64_t kw = 37, width = 29;  // column tails
        std::vector<float> cache(static_cast<size_t>(n * kw)), q(static_cast<size_t>(heads * kw));
        for (size_t i = 0; i < cache.size(); ++i) cache[i] = static_cast<float>(std::sin(0.71 * i));
        for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<float>(std::cos(0.37 * i));
        std::vector<const float*> rows;
        for (int64_t s = 0; s < n; ++s) rows.push_back(&cache[s * kw]);
        std::vector<float> scratch(static_cast<size_t>(16 * (n + kw))), out(static_cast<size_t>(heads * width));
        const float scale = 0.3f;
        k.mqa_attend(q.data(), kw, heads, rows.data(), n, kw, width, scale, scratch.data(), out.data(), width);
        double worst = 0;
        for (int64_t h = 0; h < heads; ++h) {
          std::vector<double> p(static_cast<size_t>(n));
          double mx = -1e300, sum = 0;
          for (int64_t s = 0; s < n; ++s) {
            double d = 0;
            for (int64_t c = 0; c < kw; ++c) d += static_cast<double>(q[h * kw + c]) * cache[s * kw + c];
            p[s] = d * scale;
            mx = std::max(mx, p[s]);
          }
          for (double& x : p) sum += x = std::exp(x - mx);
          for (int64_t c = 0; c < width; ++c) {
            double ref = 0;
            for (int64_t s = 0; s < n; ++s) ref += p[s] / sum * cache[s * kw + c];
            worst = std::max(worst, std::fabs(out[h * width + c] - ref));
          }
        }
        CHECK(worst < 2e-6);
      }
    }
    // One key alone gets probability 1: the output is that row, exactly.
    std::vector<float> row(40), qv(40, 0.5f), o(40), scratch(16 * 41);
    for (int c = 0; c < 40; ++c) row[c] = static_cast<float>(c) - 7.25f;
    const float* rp = row.data();
    k.mqa_attend(qv.data(), 40, 1, &rp, 1, 40, 40, 1.0f, scratch.data(), o.data(), 40);
    CHECK(o == row);
  }
}

TEST_CASE("weighted_rows sums probability-weighted rows per output on every supported ISA", "[kernels]") {
  for (int64_t width : {32, 128, 136, 512}) {
    const int64_t n_rows = 37, n_out = 5, ps = 40;
    std::vector<std::vector<float>> store(static_cast<size_t>(n_rows), std::vector<float>(static_cast<size_t>(width)));
    std::vector<const float*> rows;
    for (int64_t s = 0; s < n_rows; ++s) {
      for (int64_t c = 0; c < width; ++c) store[s][c] = std::cos(0.01 * (s * width + c));
      rows.push_back(store[s].data());
    }
    std::vector<float> p(static_cast<size_t>(n_out * ps));
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(i % 11) / 11.0f;
    for (kernel_isa isa : supported()) {
      const kernel_ops& k = kernels_for(isa);
      INFO(k.name << " width " << width);
      std::vector<float> out(static_cast<size_t>(n_out * (width + 3)), -1.0f);
      k.weighted_rows(rows.data(), n_rows, p.data(), ps, n_out, width, out.data(), width + 3);
      for (int64_t o = 0; o < n_out; ++o) {
        for (int64_t c = 0; c < width; ++c) {
          double ref = 0;
          for (int64_t s = 0; s < n_rows; ++s) ref += static_cast<double>(p[o * ps + s]) * store[s][c];
          CHECK(out[o * (width + 3) + c] == Approx(ref).margin(1e-5));
        }
        for (int64_t c = width; c < width + 3; ++c) CHECK(out[o * (width + 3) + c] == -1.0f);  // untouched
      }
      // One output at a time gives the same bits as five together.
      std::vector<float> single(static_cast<size_t>(width));
      k.weighted_rows(rows.data(), n_rows, p.data() + 3 * ps, ps, 1, width, single.data(), width);
      CHECK(std::equal(single.begin(), single.end(), out.begin() + 3 * (width + 3)));
    }
  }
}

}  // namespace
}  // namespace rampart::model

TEST_CASE("a thread pool given CPUs runs every thread, the caller's included, only on them", "[kernels]") {
  const std::vector<int> allowed = rampart::allowed_cpus();
  REQUIRE_FALSE(allowed.empty());
  const std::vector<int> cpus = {allowed.back()};
  std::vector<std::vector<int>> seen(3);
  std::thread caller([&] {
    rampart::model::thread_pool pool(3, cpus);
    pool.parallel_for(3, [&](int64_t, int64_t, int t) { seen[static_cast<size_t>(t)] = rampart::allowed_cpus(); });
    CHECK(pool.pin_failures() == 0);
  });
  caller.join();
  for (const auto& s : seen) CHECK(s == cpus);
  // Without CPUs nothing is pinned.
  std::vector<std::vector<int>> free(2);
  rampart::model::thread_pool pool(2);
  pool.parallel_for(2, [&](int64_t, int64_t, int t) { free[static_cast<size_t>(t)] = rampart::allowed_cpus(); });
  for (const auto& s : free) CHECK(s == allowed);
}
