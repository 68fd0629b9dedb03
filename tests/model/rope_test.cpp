// YaRN frequencies, softmax scale and the adjacent-pair rotation against the hand values of the spec (§3.5).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "model/rope.hpp"

namespace rampart::model {
namespace {

model_config v3_attention_config() {
  model_config c;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  c.rope_theta = 10000.0;
  c.yarn.enabled = true;
  c.yarn.factor = 40.0;
  c.yarn.original_max_position_embeddings = 4096;
  c.yarn.beta_fast = 32.0;
  c.yarn.beta_slow = 1.0;
  c.yarn.mscale = 1.0;
  c.yarn.mscale_all_dim = 1.0;
  return c;
}

TEST_CASE("V3 YaRN keeps low dims, blends 11..22 linearly and divides the rest by the factor", "[rope]") {
  const rope r(v3_attention_config());
  REQUIRE(r.inv_freq().size() == 32);
  for (int i = 0; i < 32; ++i) {
    const double f = std::pow(10000.0, -2.0 * i / 64.0);
    // spec: low = 10, high = 23; ratio 1 up to i = 10, 1 - (i - 10)/13 * (1 - 1/40) in between, 1/40 from 23.
    double want = 1.0;
    if (i == 11) want = 0.925;
    if (i > 11 && i < 23) want = 1.0 - (i - 10) / 13.0 * 0.975;
    if (i == 22) want = 0.1;
    if (i >= 23) want = 0.025;
    INFO("i = " << i);
    CHECK(r.inv_freq()[i] / f == Approx(want).epsilon(1e-12));
  }
}

TEST_CASE("softmax scale is 192^-0.5 * mscale^2: 0.135233779 for V3, 0.11472 for V2-Lite", "[rope]") {
  model_config c = v3_attention_config();
  CHECK(attention_softmax_scale(c) == Approx(0.135233779).epsilon(1e-8));
  c.yarn.mscale = c.yarn.mscale_all_dim = 0.707;
  CHECK(attention_softmax_scale(c) == Approx(0.11472).epsilon(1e-4));
  c.yarn.enabled = false;
  CHECK(attention_softmax_scale(c) == Approx(1.0 / std::sqrt(192.0)).epsilon(1e-12));
}

TEST_CASE("rope rotates adjacent pairs (x[2i], x[2i+1]) by pos * inv_freq_i", "[rope]") {
  model_config c = v3_attention_config();
  c.qk_rope_head_dim = 4;
  c.yarn.enabled = false;  // inv_freq = {1, 0.01}
  const rope r(c);
  float cs[2], sn[2];
  r.angles(3, cs, sn);
  CHECK(cs[0] == Approx(std::cos(3.0)));
  CHECK(sn[1] == Approx(std::sin(0.03)));
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  r.apply(x.data(), cs, sn);
  CHECK(x[0] == Approx(1.0 * std::cos(3.0) - 2.0 * std::sin(3.0)));
  CHECK(x[1] == Approx(1.0 * std::sin(3.0) + 2.0 * std::cos(3.0)));
  CHECK(x[2] == Approx(3.0 * std::cos(0.03) - 4.0 * std::sin(0.03)));
  CHECK(x[3] == Approx(3.0 * std::sin(0.03) + 4.0 * std::cos(0.03)));
}

}  // namespace
}  // namespace rampart::model
