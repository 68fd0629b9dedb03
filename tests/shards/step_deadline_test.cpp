// The whole-step deadline: a shard that answers every MoE layer late but inside the per-layer deadline fails the
// step once the step's layers together pass the step deadline, instead of stretching it to layers x deadline.
// The slow shard is the in-process one behind a transport that holds each exchange back by a fixed delay.
#include <thread>

#include "actors/shard_server.hpp"
#include "shards/expert_placement.hpp"
#include "tests/shards/shard_test_helpers.hpp"

namespace rampart::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// INNER, with every exchange started DELAY late (a call whose deadline comes first fails as late).
class slow_transport final : public model::shard_transport {
 public:
  slow_transport(std::shared_ptr<model::shard_transport> inner, std::chrono::milliseconds delay)
      : inner_(std::move(inner)), delay_(delay) {}
  int size() const override { return inner_->size(); }
  std::string name(int shard) const override { return inner_->name(shard); }
  void exchange(std::vector<model::shard_call>& calls, clock_type::time_point deadline) override {
    const auto ready = clock_type::now() + delay_;
    std::this_thread::sleep_until(std::min(ready, deadline));
    if (ready > deadline) {
      for (auto& c : calls) c.error = name(c.shard) + ": late";
      return;
    }
    inner_->exchange(calls, deadline);
  }
  std::shared_ptr<model::warm_state> warm(int shard, const std::vector<int32_t>& experts) override {
    return inner_->warm(shard, experts);
  }

 private:
  std::shared_ptr<model::shard_transport> inner_;
  std::chrono::milliseconds delay_;
};

// An engine whose experts sit on one in-process shard, reached with DELAY per exchange.
std::unique_ptr<model::engine> slow_engine(std::chrono::milliseconds delay, std::chrono::milliseconds step_deadline,
                                           std::shared_ptr<model::sharded_expert_backend>* backend) {
  auto ck = open_checkpoint("v3-bf16");
  actors::expert_shards_options so;
  so.in_process = 1;
  std::shared_ptr<model::shard_transport> inner;
  std::string err;
  auto direct = actors::make_expert_shards(ck, so, &err, &inner);
  INFO(err);
  REQUIRE(direct);
  model::expert_placement placement;
  REQUIRE(model::expert_placement::contiguous(static_cast<int>(ck->config().n_routed_experts), 1, &placement, &err));
  model::sharded_options o;
  o.deadline = 1000ms;  // every layer's exchange is far inside this
  o.step_deadline = step_deadline;
  *backend = std::make_shared<model::sharded_expert_backend>(std::make_shared<slow_transport>(inner, delay),
                                                             placement, o);
  model::engine_options eo;
  eo.experts = *backend;
  auto e = model::engine::create(ck, eo, &err);
  REQUIRE(e);
  return e;
}

}  // namespace

TEST_CASE("a shard late on every layer fails the step at the step deadline", "[shards][deadline]") {
  const std::vector<int32_t> prompt = {0, 15, 27, 3};
  auto ck = open_checkpoint("v3-bf16");
  const auto& c = ck->config();
  const int64_t moe_layers = c.num_hidden_layers - c.first_k_dense_replace;
  REQUIRE(moe_layers >= 2);  // the delay below adds up past the step deadline only over several layers
  const auto delay = 60ms, step_deadline = std::chrono::milliseconds(60 * moe_layers - 30);
  std::string err;
  model::step_output out;
  model::kv_sequence s;

  SECTION("without a step deadline the step succeeds, slowly") {
    std::shared_ptr<model::sharded_expert_backend> backend;
    auto e = slow_engine(delay, 0ms, &backend);
    REQUIRE(e->start(&s, nullptr, 0, &err) == 0);
    const auto t0 = clock_type::now();
    CHECK(e->step({model::seq_input{&s, prompt.data(), static_cast<int64_t>(prompt.size()), false}}, &out, &err));
    CHECK(clock_type::now() - t0 >= delay * moe_layers);
  }
  SECTION("with one, it fails when the layers' time passes it, leaving the sequence as it was") {
    std::shared_ptr<model::sharded_expert_backend> backend;
    auto e = slow_engine(delay, step_deadline, &backend);
    REQUIRE(e->start(&s, nullptr, 0, &err) == 0);
    const int64_t free_before = e->kv().free_blocks;
    const auto t0 = clock_type::now();
    CHECK_FALSE(e->step({model::seq_input{&s, prompt.data(), static_cast<int64_t>(prompt.size()), false}}, &out, &err));
    const auto took = clock_type::now() - t0;
    CHECK(err.find("step deadline of " + std::to_string(step_deadline.count()) + " ms") != std::string::npos);
    CHECK(took < step_deadline + 500ms);
    CHECK(s.length() == 0);
    CHECK(e->kv().free_blocks == free_before);
    CHECK(backend->costs().failed_calls.load() == 1);
  }
}

}  // namespace rampart::test
