// The MoE router (spec §3.9, §4) on hand-worked examples where the bias, the group limit and the group score
// each change the chosen experts.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "model/moe.hpp"

namespace rampart::model {
namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

routed route(const model_config& c, const std::vector<float>& logits, const std::vector<float>& bias) {
  routed r;
  r.ids.resize(static_cast<size_t>(c.num_experts_per_tok));
  r.weights.resize(r.ids.size());
  std::vector<float> scratch(static_cast<size_t>(5 * c.n_routed_experts));
  route_token(c, logits.data(), bias.empty() ? nullptr : bias.data(), scratch.data(), r.ids.data(), r.weights.data());
  return r;
}

TEST_CASE("noaux_tc: bias only selects, groups ranked by their two best, weights renormalised and scaled",
          "[router]") {
  model_config c;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 4;
  c.topk_group = 2;
  c.scoring = router_scoring::sigmoid;
  c.topk_method = router_topk::noaux_tc;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  // sigmoid: .5 .5498 .2689 .8808 | .7685 .0180 .9526 .0474; bias -2 on expert 6.
  // Biased group scores (sum of the pair): g0 1.0498, g1 1.1497, g2 .7865, g3 -1.0 -> groups 0 and 1.
  // Without the group limit expert 4 would win second place; without the bias expert 6 would win first.
  const std::vector<float> logits = {0.0f, 0.2f, -1.0f, 2.0f, 1.2f, -4.0f, 3.0f, -3.0f};
  const std::vector<float> bias = {0, 0, 0, 0, 0, 0, -2.0f, 0};
  const routed r = route(c, logits, bias);
  REQUIRE(r.ids == std::vector<int32_t>{1, 3});
  const double s1 = sigmoid(0.2), s3 = sigmoid(2.0);
  CHECK(r.weights[0] == Approx(2.5 * s1 / (s1 + s3)).epsilon(1e-6));
  CHECK(r.weights[1] == Approx(2.5 * s3 / (s1 + s3)).epsilon(1e-6));
}

TEST_CASE("greedy softmax (V2-Lite): top-k of the softmax, no renormalisation", "[router]") {
  model_config c;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.n_group = 1;
  c.topk_group = 1;
  c.scoring = router_scoring::softmax;
  c.topk_method = router_topk::greedy;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  const routed r = route(c, {1.0f, 3.0f, 2.0f, 0.0f}, {});
  REQUIRE(r.ids == std::vector<int32_t>{1, 2});
  const double z = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(0.0);
  CHECK(r.weights[0] == Approx(std::exp(3.0) / z).epsilon(1e-6));
  CHECK(r.weights[1] == Approx(std::exp(2.0) / z).epsilon(1e-6));
  // Equal logits: the lower index wins.
  c.num_experts_per_tok = 1;
  CHECK(route(c, {0.5f, 0.5f, 0.5f, 0.5f}, {}).ids == std::vector<int32_t>{0});
}

TEST_CASE("group_limited_greedy (V2): groups ranked by their best score, then top-k, times the scale", "[router]") {
  model_config c;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.n_group = 4;
  c.topk_group = 2;
  c.scoring = router_scoring::softmax;
  c.topk_method = router_topk::group_limited_greedy;
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 16.0;
  // Group maxima 2.0, 1.92, 0, 1.91 keep groups 0 and 1 (a two-best sum would keep groups 1 and 2 instead).
  const std::vector<float> logits = {2.0f, -5.0f, 1.9f, 1.92f, 0.0f, 0.0f, -5.0f, 1.91f};
  const routed r = route(c, logits, {});
  REQUIRE(r.ids == std::vector<int32_t>{0, 3});
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  CHECK(r.weights[0] == Approx(16.0 * std::exp(2.0) / z).epsilon(1e-6));
  CHECK(r.weights[1] == Approx(16.0 * std::exp(1.92) / z).epsilon(1e-5));
}

}  // namespace
}  // namespace rampart::model
