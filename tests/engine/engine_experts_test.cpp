// Routed experts behind expert_backend: the engine hands every MoE layer's rows to the backend it was given, and
// experts split over two backends (as expert shards would be) give the same logits.
#include "tests/engine/engine_test_helpers.hpp"

#include "model/layers.hpp"

namespace rampart::test {
namespace {

// Two local backends that each own half of the experts; a row's result is the sum of both halves.
class two_shard_backend final : public model::expert_backend {
 public:
  two_shard_backend(const model::model_weights& w, int64_t n_experts)
      : pool_(1), shard_(w, model::kernels(), pool_), n_experts_(n_experts) {}

  void run(int layer, const float* rows, int n_rows, int hidden, const int32_t* ids, const float* weights, int k,
           float* out) override {
    ++calls;
    rows_seen += n_rows;
    std::vector<float> w_half(static_cast<size_t>(n_rows * k)), part(static_cast<size_t>(n_rows * hidden));
    std::fill(out, out + static_cast<int64_t>(n_rows) * hidden, 0.0f);
    for (int half = 0; half < 2; ++half) {
      // Each shard sees every row but a zero weight for experts it does not own.
      for (int i = 0; i < n_rows * k; ++i) w_half[i] = (ids[i] < n_experts_ / 2) == (half == 0) ? weights[i] : 0.0f;
      shard_.run(layer, rows, n_rows, hidden, ids, w_half.data(), k, part.data());
      for (size_t i = 0; i < part.size(); ++i) out[i] += part[i];
    }
  }

  int calls = 0;
  int64_t rows_seen = 0;

 private:
  model::thread_pool pool_;
  model::local_expert_backend shard_;
  int64_t n_experts_;
};

TEST_CASE("experts split over two backends give the local engine's logits", "[engine][experts]") {
  auto ck = open_checkpoint("v3-bf16");
  model::model_weights w;
  std::string err;
  REQUIRE(model::model_weights::load(*ck, &w, &err));
  w.pack_for(ck->config(), model::kernels(), 2);  // as the engine does
  auto shards = std::make_shared<two_shard_backend>(w, ck->config().n_routed_experts);
  model::engine_options o;
  o.experts = shards;
  auto split = model::engine::create(ck, o, &err);
  REQUIRE(split != nullptr);
  auto local = make_engine("v3-bf16");

  std::vector<int32_t> tokens;
  for (int i = 0; i < 20; ++i) tokens.push_back((i * 37 + 11) % 1000);
  const std::vector<float> a = feed(*local, tokens, 7);
  const std::vector<float> b = feed(*split, tokens, 7);
  CHECK(max_abs_diff(a.data(), b.data(), static_cast<int64_t>(a.size())) <= 1e-5f);
  // 3 chunks x 3 MoE layers, every token's row once per MoE layer.
  CHECK(shards->calls == 9);
  CHECK(shards->rows_seen == 20 * 3);
}

}  // namespace
}  // namespace rampart::test
