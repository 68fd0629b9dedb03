// The sampler against hand-computed distributions. Logits are ln(p) for p = {0.5, 0.3, 0.15, 0.05}, so the
// softmax gives back p and every filter's kept set and renormalised probabilities can be worked out by hand.
// Frequency checks use 40,000 seeded draws and a tolerance of 0.015 (more than 6 standard deviations).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "model/sampler.hpp"

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
