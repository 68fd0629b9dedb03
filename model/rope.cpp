#include "model/rope.hpp"

#include <algorithm>
#include <cmath>

namespace rampart::model {

namespace {

constexpr double pi = 3.14159265358979323846;

// YaRN's attention temperature factor for a context stretched by SCALE.
double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// The (fractional) pair index whose wavelength makes ROTATIONS turns over the original context.
double correction_dim(double rotations, int dim, double base, double original_len) {
  return dim * std::log(original_len / (rotations * 2.0 * pi)) / (2.0 * std::log(base));
}

}  // namespace

rope::rope(const model_config& config) : dim_(static_cast<int>(config.qk_rope_head_dim)) {
  const int half = dim_ / 2;
  const double base = config.rope_theta;
  inv_freq_.resize(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) inv_freq_[i] = std::pow(base, -2.0 * i / dim_);
  const yarn_config& y = config.yarn;
  if (!y.enabled) return;
  const double orig = static_cast<double>(y.original_max_position_embeddings);
  double low = std::max(std::floor(correction_dim(y.beta_fast, dim_, base, orig)), 0.0);
  double high = std::min(std::ceil(correction_dim(y.beta_slow, dim_, base, orig)), static_cast<double>(dim_ - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < half; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    inv_freq_[i] = inv_freq_[i] * (1.0 - ramp) + inv_freq_[i] / y.factor * ramp;
  }
  cos_sin_scale_ = yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim);
}

void rope::angles(int64_t pos, float* cos_out, float* sin_out) const {
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const double a = static_cast<double>(pos) * inv_freq_[i];
    cos_out[i] = static_cast<float>(std::cos(a) * cos_sin_scale_);
    sin_out[i] = static_cast<float>(std::sin(a) * cos_sin_scale_);
  }
}

void rope::apply(float* x, const float* cos_v, const float* sin_v) const {
  for (int i = 0; i < dim_ / 2; ++i) {
    const float a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * cos_v[i] - b * sin_v[i];
    x[2 * i + 1] = a * sin_v[i] + b * cos_v[i];
  }
}

double attention_softmax_scale(const model_config& config) {
  double scale = 1.0 / std::sqrt(static_cast<double>(config.qk_head_dim()));
  if (config.yarn.enabled && config.yarn.mscale_all_dim != 0.0) {
    const double m = yarn_mscale(config.yarn.factor, config.yarn.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

}  // namespace rampart::model
