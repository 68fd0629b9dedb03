// YaRN rotary position embedding for the rope part of MLA queries and keys (spec §3.5), and the attention
// softmax scale that YaRN changes (§3.4).
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_config.hpp"

namespace rampart::model {

class rope {
 public:
  // DIM = qk_rope_head_dim (even). YaRN is applied whenever the config enables it, whatever the context length.
  explicit rope(const model_config& config);

  int dim() const { return dim_; }
  // Inverse frequency of pair i, i in [0, dim/2).
  const std::vector<double>& inv_freq() const { return inv_freq_; }

  // cos/sin of pos * inv_freq_i (angle computed in double) times the YaRN cos/sin scale, dim/2 values each.
  void angles(int64_t pos, float* cos_out, float* sin_out) const;

  // Rotates X (dim values) in place as dim/2 complex numbers of adjacent elements (x[2i], x[2i+1]).
  void apply(float* x, const float* cos_v, const float* sin_v) const;

 private:
  int dim_ = 0;
  std::vector<double> inv_freq_;
  double cos_sin_scale_ = 1.0;
};

// (qk_nope + qk_rope)^-0.5 * m^2, m = 0.1 * mscale_all_dim * ln(factor) + 1 when YaRN is on and
// mscale_all_dim != 0 (V3: 0.135233779).
double attention_softmax_scale(const model_config& config);

}  // namespace rampart::model
