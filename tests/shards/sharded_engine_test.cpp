// The sharded engine against the single engine (and the golden files): the same greedy tokens and logits for
// 1, 2 and 4 in-process shard actors and for 2 shard processes over ZeroMQ, on every fixture.
#include "tests/shards/shard_test_helpers.hpp"

namespace rampart::test {
namespace {

void check_same_as_single(const std::string& fixture, const actors::expert_shards_options& so,
                          const std::vector<shard_process*>& procs = {}) {
  (void)procs;
  const nlohmann::json golden = load_golden(fixture);
  auto single = make_engine(fixture);
  const case_run want = run_golden_cases(*single, golden);
  std::shared_ptr<model::sharded_expert_backend> backend;
  auto sharded = sharded_engine(fixture, so, &backend);
  const case_run got = run_golden_cases(*sharded, golden);
  REQUIRE(got.tokens.size() == want.tokens.size());
  size_t i = 0;
  for (const auto& c : golden["cases"]) {
    INFO("fixture " << fixture << ", case " << c["name"].get<std::string>());
    CHECK(got.tokens[i] == c["greedy"].get<std::vector<int32_t>>());  // the independent reference
    CHECK(got.tokens[i] == want.tokens[i]);
    REQUIRE(got.logits[i].size() == want.logits[i].size());
    CHECK(max_abs_diff(got.logits[i].data(), want.logits[i].data(), static_cast<int64_t>(want.logits[i].size())) <=
          1e-5f);
    ++i;
  }
  // Every MoE layer call went out as one batch per shard that had work, never one per token.
  CHECK(backend->costs().calls.load() > 0);
  CHECK(backend->costs().shard_failures.load() == 0);
}

const char* const fixtures[] = {"v3-bf16", "v3-fp8", "v2lite-bf16"};

TEST_CASE("1, 2 and 4 in-process shards give the single engine's tokens and logits", "[shards][exact]") {
  for (const char* fixture : fixtures)
    for (int n : {1, 2, 4}) {
      INFO(n << " shards");
      actors::expert_shards_options so;
      so.in_process = n;
      so.threads = 2;
      check_same_as_single(fixture, so);
    }
}

TEST_CASE("2 shard processes over ZeroMQ give the single engine's tokens and logits", "[shards][exact][zmq]") {
  for (const char* fixture : fixtures) {
    shard_process a(test_model_dir(fixture), 0, 2), b(test_model_dir(fixture), 1, 2);
    actors::expert_shards_options so;
    so.endpoints = {a.endpoint, b.endpoint};
    so.deadline_ms = 10000;
    check_same_as_single(fixture, so);
  }
}

}  // namespace
}  // namespace rampart::test
