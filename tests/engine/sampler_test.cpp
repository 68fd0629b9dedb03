// The sampler against hand-computed distributions. Logits are ln(p) for p = {0.5, 0.3, 0.15, 0.05}, so the
// softmax gives back p and every filter's kept set and renormalised probabilities can be worked out by hand.
// Frequency checks use 40,000 seeded draws and a tolerance of 0.015 (more than 6 standard deviations).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/sampler.hpp"

using namespace rampart::model;

namespace {

const std::vector<float> base_probs = {0.5f, 0.3f, 0.15f, 0.05f};

std::vector<float> log_probs() {
  std::vector<float> l;
  for (float p : base_probs) l.push_back(std::log(p));
  return l;
}

std::vector<double> frequencies(const sampling_params& p, const std::vector<float>& logits,
                                int draws = 40000) {
  sampler s(p);
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    const int32_t t = s.sample(logits.data(), logits.size());
    REQUIRE(t >= 0);
    REQUIRE(static_cast<size_t>(t) < logits.size());
    f[t] += 1.0 / draws;
  }
  return f;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("token " << i << ": got " << got[i] << ", want " << want[i]);
    if (want[i] == 0)
      CHECK(got[i] == 0);
    else
      CHECK(std::fabs(got[i] - want[i]) < 0.015);
  }
}

sampling_params sampled(float temperature, uint64_t seed = 1) {
  sampling_params p;
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

}  // namespace

TEST_CASE("greedy picks the argmax, the lowest id on ties, and skips NaN", "[sampler]") {
  sampler s(sampling_params{});
  const std::vector<float> a = {0.1f, 2.0f, -1.0f, 2.0f};
  CHECK(s.sample(a.data(), a.size()) == 1);
  const float nan = std::nanf("");
  const std::vector<float> b = {nan, -3.0f, nan, -2.0f};
  CHECK(s.sample(b.data(), b.size()) == 3);
  const float ninf = -std::numeric_limits<float>::infinity();
  const std::vector<float> c = {nan, ninf};
  CHECK(s.sample(c.data(), c.size()) == -1);
  CHECK(greedy_token(a.data(), a.size()) == 1);
}

TEST_CASE("greedy over a vocabulary-sized row: first index of the maximum, NaN and -inf skipped", "[sampler]") {
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  std::vector<float> v(1003);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.1 * static_cast<double>(i)));
  for (size_t i = 3; i < v.size(); i += 97) v[i] = nan;
  v[517] = 5.0f;  // ties: 517 before 901 and 1002 (the tail past the last 16-value block)
  v[901] = 5.0f;
  v[1002] = 5.0f;
  CHECK(greedy_token(v.data(), v.size()) == 517);
  v[1001] = 6.0f;  // only in the tail
  CHECK(greedy_token(v.data(), v.size()) == 1001);
  v[700] = inf;
  CHECK(greedy_token(v.data(), v.size()) == 700);
  std::vector<float> none(100, -inf);
  none[50] = nan;
  CHECK(greedy_token(none.data(), none.size()) == -1);
}

TEST_CASE("temperature 1 reproduces the softmax probabilities", "[sampler]") {
  check_close(frequencies(sampled(1.0f), log_probs()), {0.5, 0.3, 0.15, 0.05});
}

TEST_CASE("temperature 2 flattens to p^(1/2) renormalised", "[sampler]") {
  // sqrt(p) = .70711, .54772, .38730, .22361; sum 1.86574.
  check_close(frequencies(sampled(2.0f), log_probs()), {0.37899, 0.29357, 0.20758, 0.11985});
}

TEST_CASE("top_k keeps the k largest logits", "[sampler]") {
  sampling_params p = sampled(1.0f);
  p.top_k = 2;
  check_close(frequencies(p, log_probs()), {0.625, 0.375, 0, 0});
  p.top_k = 1;
  check_close(frequencies(p, log_probs(), 2000), {1, 0, 0, 0});
  // Ties at the cut keep the lower id.
  p.top_k = 1;
  const std::vector<float> tied = {0.0f, 1.0f, 1.0f};
  check_close(frequencies(p, tied, 1000), {0, 1, 0});
}

TEST_CASE("top_p keeps the smallest set reaching the mass", "[sampler]") {
  sampling_params p = sampled(1.0f);
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.5 + 0.3
  check_close(frequencies(p, log_probs()), {0.625, 0.375, 0, 0});
  p.top_p = 0.9f;  // 0.8 < 0.9 <= 0.95
  check_close(frequencies(p, log_probs()), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  p.top_p = 0.2f;
  check_close(frequencies(p, log_probs(), 2000), {1, 0, 0, 0});
}

TEST_CASE("min_p drops tokens below min_p times the top probability", "[sampler]") {
  sampling_params p = sampled(1.0f);
  p.min_p = 0.2f;  // threshold 0.1: drops 0.05
  check_close(frequencies(p, log_probs()), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  p.min_p = 0.5f;  // threshold 0.25: keeps 0.5 and 0.3
  check_close(frequencies(p, log_probs()), {0.625, 0.375, 0, 0});
  p.min_p = 1.0f;
  check_close(frequencies(p, log_probs(), 2000), {1, 0, 0, 0});
}

TEST_CASE("filters combine: top_k then top_p", "[sampler]") {
  sampling_params p = sampled(1.0f);
  p.top_k = 3;      // {0.5, 0.3, 0.15}
  p.top_p = 0.75f;  // of 0.95 total: 0.7125 > 0.5 -> keeps the first two
  check_close(frequencies(p, log_probs()), {0.625, 0.375, 0, 0});
}

TEST_CASE("the same seed gives the same sequence, another seed another", "[sampler]") {
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>((i * 37) % 101) / 25.0f;
  sampling_params p = sampled(0.8f, 42);
  p.top_p = 0.95f;
  sampler a(p), b(p);
  p.seed = 43;
  sampler c(p);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.sample(logits.data(), logits.size()));
    sb.push_back(b.sample(logits.data(), logits.size()));
    sc.push_back(c.sample(logits.data(), logits.size()));
  }
  CHECK(sa == sb);
  CHECK(sa != sc);
}

TEST_CASE("xoshiro256** matches its reference outputs for a splitmix64-seeded state", "[sampler]") {
  // Reference: splitmix64 from state 0 gives e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f,
  // f88bb8a8724c81ec (published test vector); xoshiro256** of that state, first output
  // rotl(s1 * 5, 7) * 9 computed by hand from s1 = 6e789e6aa1b965f4.
  xoshiro256ss r(0);
  const uint64_t s1 = 0x6e789e6aa1b965f4ull;
  const uint64_t x = s1 * 5;
  CHECK(r.next() == ((x << 7) | (x >> 57)) * 9);
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = r.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  CHECK(lo >= 0.0);
  CHECK(lo < 0.001);
  CHECK(hi < 1.0);
  CHECK(hi > 0.999);
}

TEST_CASE("infinite and NaN logits are handled without NaN probabilities", "[sampler]") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> two_inf = {0.0f, inf, std::nanf(""), inf};
  check_close(frequencies(sampled(1.0f), two_inf, 4000), {0, 0.5, 0, 0.5});
  const std::vector<float> none = {-inf, std::nanf("")};
  sampler s(sampled(1.0f));
  CHECK(s.sample(none.data(), none.size()) == -1);
  // top-k applies to +infinity ties as to any ties: the lower ids first.
  sampling_params k1 = sampled(1.0f);
  k1.top_k = 1;
  check_close(frequencies(k1, two_inf, 2000), {0, 1, 0, 0});
  sampler tiny_t(sampled(1e-45f));  // subnormal temperature: behaves like greedy
  const std::vector<float> l = log_probs();
  CHECK(tiny_t.sample(l.data(), l.size()) == 0);
}

TEST_CASE("invalid parameters are rejected with the field named", "[sampler]") {
  std::string err;
  CHECK(sampler::validate(sampling_params{}, &err));
  sampling_params p;
  p.temperature = -0.5f;
  CHECK_FALSE(sampler::validate(p, &err));
  CHECK_THAT(err, Catch::Contains("temperature"));
  p = sampling_params{};
  p.temperature = std::nanf("");
  CHECK_FALSE(sampler::validate(p, &err));
  p = sampling_params{};
  p.top_k = -1;
  CHECK_FALSE(sampler::validate(p, &err));
  CHECK_THAT(err, Catch::Contains("top_k"));
  for (float v : {0.0f, 1.5f, std::nanf("")}) {
    p = sampling_params{};
    p.top_p = v;
    CHECK_FALSE(sampler::validate(p, &err));
    CHECK_THAT(err, Catch::Contains("top_p"));
  }
  for (float v : {-0.1f, 1.1f}) {
    p = sampling_params{};
    p.min_p = v;
    CHECK_FALSE(sampler::validate(p, &err));
    CHECK_THAT(err, Catch::Contains("min_p"));
  }
}

TEST_CASE("stop check ends on an eos id or at the token limit", "[sampler]") {
  stop_condition stop;
  stop.eos_ids = {1, 7};
  stop.max_tokens = 3;
  CHECK(check_stop(stop, 5, 1) == stop_reason::none);
  CHECK(check_stop(stop, 7, 1) == stop_reason::eos);
  CHECK(check_stop(stop, 5, 3) == stop_reason::max_tokens);
  CHECK(check_stop(stop, 1, 3) == stop_reason::eos);
  stop.max_tokens = 0;
  CHECK(check_stop(stop, 5, 1000000) == stop_reason::none);
}

// ---- Vocabulary-sized rows against an exact reference ----
//
// The reference follows the documented semantics in double precision with a full sort: candidates, top-k by
// (logit desc, id asc), the softmax of logits / temperature, the shortest top-p prefix, min-p. The sampler's
// float weights and its sums in another order may decide a token within kSlack of a boundary the other way:
// such tokens are "either". Every draw must be a kept or an either token, and the draws' frequencies, in bins
// of about equal expected count over the kept tokens, must pass a chi-square test at p = 1e-4.

namespace {

constexpr double kSlack = 1e-4;

struct reference {
  std::vector<double> p;      // probability of each token
  std::vector<bool> either;   // a boundary case: may be kept or not
};

reference exact_distribution(const std::vector<float>& l, const sampling_params& sp) {
  const size_t n = l.size();
  const float inf = std::numeric_limits<float>::infinity();
  bool any_inf = false;
  for (float v : l) any_inf = any_inf || v == inf;
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (any_inf ? l[i] == inf : (l[i] > -inf && l[i] < inf)) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; });
  if (sp.top_k > 0 && order.size() > static_cast<size_t>(sp.top_k)) order.resize(static_cast<size_t>(sp.top_k));
  reference r{std::vector<double>(n, 0.0), std::vector<bool>(n, false)};
  if (order.empty()) return r;
  const double best = any_inf ? 0 : l[order[0]];
  std::vector<double> w(order.size());
  double total = 0;
  for (size_t j = 0; j < order.size(); ++j) {
    w[j] = any_inf ? 1.0 : std::exp((static_cast<double>(l[order[j]]) - best) / sp.temperature);
    total += w[j];
  }
  const double target = sp.top_p * total;
  double before = 0;
  for (size_t j = 0; j < order.size(); ++j) {
    const size_t id = order[j];
    bool keep = sp.top_p >= 1 || before < target;
    bool unsure = sp.top_p < 1 && std::fabs(before - target) <= kSlack * total;
    if (w[j] < sp.min_p) keep = false;
    if (std::fabs(w[j] - sp.min_p) <= kSlack * std::max(1e-3, static_cast<double>(sp.min_p))) unsure = true;
    before += w[j];
    r.either[id] = unsure;
    if (keep) r.p[id] = w[j];
  }
  double kept = 0;
  for (double v : r.p) kept += v;
  for (double& v : r.p) v /= kept;
  return r;
}

// Chi-square critical value for DOF degrees of freedom at p = 1e-4 (Wilson-Hilferty: z = 3.719).
double chi2_critical(int dof) {
  const double k = dof, z = 3.719;
  return k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
}

void check_against_reference(const std::vector<float>& l, const sampling_params& sp, int draws) {
  const reference ref = exact_distribution(l, sp);
  sampler s(sp);
  std::vector<int> count(l.size(), 0);
  for (int d = 0; d < draws; ++d) {
    const int32_t t = s.sample(l.data(), l.size());
    REQUIRE(t >= 0);
    REQUIRE(static_cast<size_t>(t) < l.size());
    INFO("token " << t << " logit " << l[static_cast<size_t>(t)]);
    REQUIRE((ref.p[static_cast<size_t>(t)] > 0 || ref.either[static_cast<size_t>(t)]));
    ++count[static_cast<size_t>(t)];
  }
  // Bins over the kept tokens in id order, each closed at about 1/20 of the mass; either tokens are left out
  // of both the expected and the observed counts (their share is at most kSlack).
  std::vector<double> expected, observed;
  double e = 0, o = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    if (ref.either[i]) continue;
    e += ref.p[i] * draws;
    o += count[i];
    if (e >= draws / 20.0) {
      expected.push_back(e);
      observed.push_back(o);
      e = o = 0;
    }
  }
  if (e > 0) {
    expected.push_back(e);
    observed.push_back(o);
  }
  double chi2 = 0;
  for (size_t b = 0; b < expected.size(); ++b) chi2 += (observed[b] - expected[b]) * (observed[b] - expected[b]) / expected[b];
  INFO("chi2 " << chi2 << " over " << expected.size() << " bins");
  if (expected.size() > 1) CHECK(chi2 < chi2_critical(static_cast<int>(expected.size()) - 1));
}

std::vector<float> normal_row(size_t n, float sigma, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> l(n);
  for (float& v : l) v = d(g);
  return l;
}

// Temperature, top_k, top_p, min_p, seed.
using params = sampling_params;

}  // namespace

TEST_CASE("vocabulary-sized rows: every filter against the exact distribution", "[sampler]") {
  const size_t vocab = 129280;
  // Flat (a small model's logits: the cut lies in the bulk), medium, and peaked (a few tokens hold the mass).
  for (float sigma : {0.3f, 2.0f, 8.0f}) {
    const std::vector<float> l = normal_row(vocab, sigma, 7);
    INFO("sigma " << sigma);
    check_against_reference(l, params{0.8f, 0, 1, 0, 1}, 20000);
    check_against_reference(l, params{0.7f, 0, 0.95f, 0, 2}, 20000);
    check_against_reference(l, params{0.7f, 50, 1, 0, 3}, 20000);
    check_against_reference(l, params{1.0f, 0, 1, 0.05f, 4}, 20000);
    check_against_reference(l, params{0.7f, 40, 0.9f, 0.02f, 5}, 20000);
    // A small top_p: most draws miss the kept set, so the sampler finds the cut itself.
    check_against_reference(l, params{1.0f, 0, 0.02f, 0, 6}, 4000);
    // A top_k too large for a list stays a cut over the row, alone and under top-p and min-p.
    check_against_reference(l, params{1.0f, 20000, 1, 0, 7}, 4000);
    check_against_reference(l, params{0.7f, 60000, 0.9f, 0.001f, 8}, 4000);
    check_against_reference(l, params{1.0f, 5000, 0.01f, 0, 9}, 2000);
  }
}

TEST_CASE("top-p boundary cases at vocabulary size: ties, one dominant token, all-equal logits", "[sampler]") {
  const size_t vocab = 129280;
  SECTION("all-equal logits keep the lowest ids, uniformly") {
    const std::vector<float> l(vocab, 0.25f);
    sampling_params sp = params{1.0f, 0, 0.5f, 0, 9};
    sampler s(sp);
    int low_half = 0;
    for (int d = 0; d < 4000; ++d) {
      const int32_t t = s.sample(l.data(), vocab);
      REQUIRE(t >= 0);
      REQUIRE(t < static_cast<int32_t>(vocab / 2));  // 64,640 of equal weight reach exactly half
      low_half += t < static_cast<int32_t>(vocab / 4) ? 1 : 0;
    }
    CHECK(std::abs(low_half - 2000) < 250);  // 7.9 standard deviations
    check_against_reference(l, params{1.0f, 0, 0.3f, 0, 10}, 4000);
    check_against_reference(l, params{1.0f, 1000, 1, 0, 11}, 4000);  // top-k over ties: ids 0..999
  }
  SECTION("one dominant token is the only one kept") {
    std::vector<float> l = normal_row(vocab, 0.5f, 12);
    l[77777] = 30.0f;  // e^30 against ~1.5e5: probability 1 - 1.4e-8
    sampler s(params{1.0f, 0, 0.9f, 0, 13});
    for (int d = 0; d < 500; ++d) REQUIRE(s.sample(l.data(), vocab) == 77777);
  }
  SECTION("ties at the cut keep the lower ids") {
    // Three tokens share the top logit and hold almost all the mass; top_p 0.5 needs two of them.
    std::vector<float> l(vocab, -40.0f);
    for (size_t id : {900u, 300u, 60000u}) l[id] = 5.0f;
    sampler s(params{1.0f, 0, 0.5f, 0, 14});
    int first = 0;
    for (int d = 0; d < 4000; ++d) {
      const int32_t t = s.sample(l.data(), vocab);
      REQUIRE((t == 300 || t == 900));
      first += t == 300 ? 1 : 0;
    }
    CHECK(std::abs(first - 2000) < 250);
    check_against_reference(l, params{1.0f, 2, 1, 0, 15}, 4000);
  }
  SECTION("NaN, -inf and +inf at vocabulary size") {
    std::vector<float> l = normal_row(vocab, 2.0f, 16);
    for (size_t i = 0; i < vocab; i += 3) l[i] = std::nanf("");
    for (size_t i = 1; i < vocab; i += 3) l[i] = -std::numeric_limits<float>::infinity();
    check_against_reference(l, params{0.7f, 0, 0.95f, 0, 17}, 4000);
    l[5000] = l[90001] = std::numeric_limits<float>::infinity();
    check_against_reference(l, params{0.7f, 0, 0.95f, 0, 18}, 2000);
  }
}

TEST_CASE("random rows and settings: draws stay inside the exact kept set", "[sampler]") {
  std::mt19937 g(99);
  for (int round = 0; round < 300; ++round) {
    const size_t n = round % 10 == 0 ? 20000 + g() % 20000 : 1 + g() % 600;
    std::vector<float> l = normal_row(n, 0.1f + static_cast<float>(g() % 100) / 10.0f, g());
    if (round % 7 == 0)
      for (size_t i = 0; i < n; i += 5) l[i] = std::round(l[i]);  // ties
    // Braces: the draws from g happen left to right.
    const sampling_params sp{0.1f + static_cast<float>(g() % 20) / 10.0f,
                             static_cast<int>(g() % 3 == 0 ? g() % 60 : 0),
                             g() % 2 ? 1.0f : 0.05f + static_cast<float>(g() % 95) / 100.0f,
                             g() % 3 == 0 ? static_cast<float>(g() % 30) / 100.0f : 0.0f, g()};
    const reference ref = exact_distribution(l, sp);
    sampler s(sp);
    for (int d = 0; d < 20; ++d) {
      const int32_t t = s.sample(l.data(), n);
      INFO("round " << round << " n " << n << " t " << sp.temperature << " k " << sp.top_k << " p " << sp.top_p
                    << " min_p " << sp.min_p << " token " << t);
      REQUIRE(t >= 0);
      REQUIRE((ref.p[static_cast<size_t>(t)] > 0 || ref.either[static_cast<size_t>(t)]));
    }
  }
}
