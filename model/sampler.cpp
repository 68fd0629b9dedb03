#include "model/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rampart::model {
namespace {

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

}  // namespace

xoshiro256ss::xoshiro256ss(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = splitmix64(&state);
}

uint64_t xoshiro256ss::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double xoshiro256ss::uniform() {
  return static_cast<double>(next() >> 11) * 0x1p-53;
}

bool sampler::validate(const sampling_params& p, std::string* err) {
  auto fail = [&](const char* message) {
    if (err) *err = message;
    return false;
  };
  if (!(p.temperature >= 0) || !std::isfinite(p.temperature))
    return fail("temperature must be a finite number >= 0");
  if (p.top_k < 0) return fail("top_k must be >= 0 (0 disables it)");
  if (!(p.top_p > 0 && p.top_p <= 1)) return fail("top_p must be in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return fail("min_p must be in [0, 1]");
  return true;
}

sampler::sampler(const sampling_params& params) : params_(params), rng_(params.seed) {
  if (!(params_.temperature >= 0) || !std::isfinite(params_.temperature)) params_.temperature = 0;
  params_.top_k = std::max(0, params_.top_k);
  if (!(params_.top_p > 0 && params_.top_p <= 1)) params_.top_p = 1;
  if (!(params_.min_p >= 0)) params_.min_p = 0;
  params_.min_p = std::min(params_.min_p, 1.0f);
}

int32_t greedy_token(const float* logits, size_t vocab) {
  // The largest value first, in 16 lanes the compiler keeps in vector registers (a comparison with NaN is
  // false, so NaN never becomes a lane's value), then the first index holding it: the lowest id wins ties.
  constexpr size_t lanes = 16;
  float lane_max[lanes];
  for (float& m : lane_max) m = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  for (; i + lanes <= vocab; i += lanes)
    for (size_t j = 0; j < lanes; ++j) lane_max[j] = logits[i + j] > lane_max[j] ? logits[i + j] : lane_max[j];
  float best = -std::numeric_limits<float>::infinity();
  for (float m : lane_max) best = m > best ? m : best;
  for (; i < vocab; ++i) best = logits[i] > best ? logits[i] : best;
  if (!(best > -std::numeric_limits<float>::infinity())) return -1;
  for (i = 0; i < vocab; ++i)
    if (logits[i] == best) return static_cast<int32_t>(i);
  return -1;
}

int32_t sampler::sample(const float* logits, size_t vocab) {
  if (params_.temperature == 0) return greedy_token(logits, vocab);
  const int32_t top = greedy_token(logits, vocab);
  if (top < 0) return -1;
  const float max_logit = logits[top];

  scratch_.clear();
  for (size_t i = 0; i < vocab; ++i) {
    const float l = logits[i];
    if (std::isinf(max_logit) ? l == max_logit : l > -std::numeric_limits<float>::infinity())
      scratch_.push_back({std::isinf(max_logit) ? 0.0f : l, static_cast<int32_t>(i)});
  }
  const auto higher = [](const candidate& a, const candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  };
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < scratch_.size()) {
    std::nth_element(scratch_.begin(), scratch_.begin() + params_.top_k, scratch_.end(), higher);
    scratch_.resize(static_cast<size_t>(params_.top_k));
    std::sort(scratch_.begin(), scratch_.end(),
              [](const candidate& a, const candidate& b) { return a.id < b.id; });
  }
  if (params_.top_p < 1) std::sort(scratch_.begin(), scratch_.end(), higher);

  // Unnormalised probabilities relative to the best token (weight 1), in double.
  const float best = std::isinf(max_logit) ? 0.0f : max_logit;
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  weights_.resize(scratch_.size());
  double total = 0;
  for (size_t i = 0; i < scratch_.size(); ++i) {
    // d == 0 is spelled out: with a subnormal temperature inv_t is infinite and 0 * inf would be NaN.
    const double d = static_cast<double>(scratch_[i].logit) - best;
    weights_[i] = d == 0 ? 1.0 : std::exp(d * inv_t);
    total += weights_[i];
  }
  size_t keep = scratch_.size();
  if (params_.top_p < 1) {
    const double target = params_.top_p * total;
    double cumulative = 0;
    for (size_t i = 0; i < scratch_.size(); ++i) {
      cumulative += weights_[i];
      if (cumulative >= target) {
        keep = i + 1;
        break;
      }
    }
  }
  // min_p: the largest weight is 1, so the threshold is min_p itself. The best token always survives.
  double kept_total = 0;
  for (size_t i = 0; i < keep; ++i) {
    if (weights_[i] < params_.min_p) weights_[i] = 0;
    kept_total += weights_[i];
  }
  double u = rng_.uniform() * kept_total;
  int32_t last = -1;
  for (size_t i = 0; i < keep; ++i) {
    if (weights_[i] == 0) continue;
    last = scratch_[i].id;
    if (u < weights_[i]) return last;
    u -= weights_[i];
  }
  return last;  // rounding left u at the very end of the range
}

stop_reason check_stop(const stop_condition& stop, int32_t token, size_t generated) {
  if (std::find(stop.eos_ids.begin(), stop.eos_ids.end(), token) != stop.eos_ids.end())
    return stop_reason::eos;
  if (stop.max_tokens > 0 && generated >= stop.max_tokens) return stop_reason::max_tokens;
  return stop_reason::none;
}

}  // namespace rampart::model
