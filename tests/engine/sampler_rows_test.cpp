// The sampler's row passes, on every ISA this machine runs, against plain double-precision loops.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/sampler_rows.hpp"

using namespace rampart::model;

namespace {

// A vocabulary-sized row: normal logits, a few NaN and -inf, repeated values (ties) and an odd tail.
std::vector<float> test_row(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(n);
  for (float& v : l) v = std::round(d(g) * 64.0f) / 64.0f;  // coarse: many ties
  for (size_t i = 5; i < n; i += 997) l[i] = std::nanf("");
  for (size_t i = 11; i < n; i += 1013) l[i] = -std::numeric_limits<float>::infinity();
  return l;
}

std::vector<kernel_isa> isas() {
  std::vector<kernel_isa> out;
  for (kernel_isa isa : {kernel_isa::portable, kernel_isa::avx2, kernel_isa::avx512})
    if (kernel_isa_supported(isa)) out.push_back(isa);
  return out;
}

}  // namespace

TEST_CASE("sampler row passes agree with plain loops on every ISA", "[sampler]") {
  const size_t n = 129280 + 7;  // not a multiple of a block or a vector
  const std::vector<float> l = test_row(n, 3);
  float max = -std::numeric_limits<float>::infinity();
  for (float v : l)
    if (v > max) max = v;
  for (kernel_isa isa : isas()) {
    const sampler_row_ops& ops = sampler_rows_for(isa);
    INFO("isa " << static_cast<int>(isa));
    CHECK(ops.max(l.data(), n) == max);
    size_t first = n;
    for (size_t i = 0; i < n && first == n; ++i)
      if (l[i] == max) first = i;
    CHECK(ops.find(l.data(), n, max) == first);
    CHECK(ops.find(l.data(), n, 1e9f) == n);

    // Weights: 2^((l - max) * scale) within 3e-7 relative; NaN and -inf weigh 0; the best weighs exactly 1.
    const float scale = static_cast<float>(1.4426950408889634 / 0.7);
    std::vector<float> w(n);
    std::vector<double> sums((n + sampler_block - 1) / sampler_block);
    const double total = ops.weights(l.data(), n, max, scale, w.data(), sums.data());
    double want_total = 0, worst = 0;
    for (size_t i = 0; i < n; ++i) {
      const double want = std::isnan(l[i]) ? 0.0 : std::exp2(static_cast<double>((l[i] - max) * scale));
      want_total += want;
      if (want > 1e-30) worst = std::max(worst, std::fabs(w[i] - want) / want);
      if (!(want > 1e-30)) CHECK(w[i] < 1e-30f);
    }
    CHECK(worst < 3e-7);
    CHECK(w[first] == 1.0f);
    CHECK(std::fabs(total - want_total) < 1e-6 * want_total);
    double sum_of_sums = 0;
    for (size_t b = 0; b < sums.size(); ++b) {
      double want = 0;
      for (size_t i = b * sampler_block; i < std::min(n, (b + 1) * sampler_block); ++i) want += w[i];
      CHECK(std::fabs(sums[b] - want) <= 1e-6 * want + 1e-30);
      sum_of_sums += sums[b];
    }
    CHECK(std::fabs(sum_of_sums - total) < 1e-9 * total);

    // Bracket sums and collection, by weight and by count, for a wide and a narrow bracket.
    for (auto [lo, hi] : {std::pair<float, float>{-1.0f, 2.5f}, std::pair<float, float>{3.0f, 3.0f}})
      for (bool by_count : {false, true}) {
        double up = 0, in = 0;
        int64_t up_n = 0, in_n = 0;
        std::vector<uint32_t> want_ids;
        for (size_t i = 0; i < n; ++i) {
          const double m = by_count ? 1.0 : w[i];
          if (l[i] > hi) up += m, ++up_n;
          if (l[i] >= lo && l[i] <= hi) in += m, ++in_n, want_ids.push_back(static_cast<uint32_t>(i));
        }
        bracket_sums s;
        std::vector<uint32_t> ids(n);
        ops.bracket(l.data(), by_count ? nullptr : w.data(), n, lo, hi, &s, ids.data(), 100000);
        CHECK(s.above_count == up_n);
        CHECK(s.inside_count == in_n);
        CHECK(std::fabs(s.above_mass - up) <= 1e-5 * total);
        CHECK(std::fabs(s.inside_mass - in) <= 1e-5 * total);
        REQUIRE(s.collected == std::min<size_t>(want_ids.size(), 100000));
        ids.resize(s.collected);
        CHECK(std::vector<uint32_t>(want_ids.begin(), want_ids.begin() + static_cast<long>(s.collected)) == ids);
        std::vector<uint32_t> got(16);
        CHECK(ops.collect(l.data(), n, lo, hi, got.data(), 16) == want_ids.size());
        CHECK(std::equal(got.begin(), got.end(), want_ids.begin()));
      }

    // Mass before a token in (logit desc, id asc) order, with ties at its logit on both sides.
    const size_t t = 70001;
    double before = 0;
    for (size_t i = 0; i < n; ++i)
      if (l[i] > l[t] || (l[i] == l[t] && i < t)) before += w[i];
    CHECK(std::fabs(ops.mass_before(l.data(), w.data(), n, l[t], t) - before) <= 1e-5 * total);

    // Kept mass by block around a cut inside a run of ties, with a min_p floor.
    const float cut = l[t], min_w = 0.01f;
    std::vector<double> kept(sums.size());
    const double kept_total = ops.kept_blocks(l.data(), w.data(), n, cut, t, min_w, kept.data());
    double want_kept = 0;
    for (size_t b = 0; b < kept.size(); ++b) {
      double want = 0;
      for (size_t i = b * sampler_block; i < std::min(n, (b + 1) * sampler_block); ++i)
        if ((l[i] > cut || (l[i] == cut && i <= t)) && w[i] >= min_w) want += w[i];
      CHECK(std::fabs(kept[b] - want) <= 1e-6 * want + 1e-30);
      want_kept += want;
    }
    CHECK(std::fabs(kept_total - want_kept) <= 1e-6 * want_kept);
  }
}
