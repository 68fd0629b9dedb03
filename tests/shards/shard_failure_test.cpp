// Shard failure: a dead shard fails the step cleanly (false + one line, KV cache unchanged) within the deadline,
// a replica takes over when one holds the experts, and a shard process that returns is used again.
#include <signal.h>

#include "actors/shard_actor.hpp"
#include "tests/shards/shard_test_helpers.hpp"

namespace rampart::test {
namespace {

using clock_type = std::chrono::steady_clock;

const std::vector<int32_t> prompt = {0, 15, 27, 3, 999, 500, 1, 2, 77, 123, 456, 789, 5, 6, 7, 8, 9};

TEST_CASE("a killed shard process fails the step cleanly and is used again when it returns", "[shards][failure]") {
  shard_process a(test_model_dir("v3-bf16"), 0, 2), b(test_model_dir("v3-bf16"), 1, 2);
  actors::expert_shards_options so;
  so.endpoints = {a.endpoint, b.endpoint};
  so.deadline_ms = 300;
  so.backend.retry_after = std::chrono::milliseconds(50);
  std::shared_ptr<model::sharded_expert_backend> backend;
  auto e = sharded_engine("v3-bf16", so, &backend);
  auto single = make_engine("v3-bf16");
  const int64_t V = e->config().vocab_size;

  std::string err;
  model::step_output out, ref;
  model::kv_sequence s, r;
  REQUIRE(e->start(&s, nullptr, 0, &err) == 0);
  REQUIRE(single->start(&r, nullptr, 0, &err) == 0);
  REQUIRE(e->step({model::seq_input{&s, prompt.data(), static_cast<int64_t>(prompt.size()), false}}, &out, &err));
  REQUIRE(single->step({model::seq_input{&r, prompt.data(), static_cast<int64_t>(prompt.size()), false}}, &ref, &err));
  int32_t next = argmax(out.row(0), V);

  b.proc->signal(SIGKILL);
  REQUIRE(b.proc->wait_exit(std::chrono::seconds(5)).has_value());
  const model::kv_usage before = e->kv();
  const auto t0 = clock_type::now();
  const bool ok = e->step({model::seq_input{&s, &next, 1, false}}, &out, &err);
  const double took = std::chrono::duration<double>(clock_type::now() - t0).count();
  CHECK_FALSE(ok);
  CHECK(err.find("expert shard 1 (" + b.endpoint + ")") != std::string::npos);
  CHECK(err.find('\n') == std::string::npos);
  CHECK(took < 2.0);
  CHECK(s.length() == static_cast<int64_t>(prompt.size()));  // the failed step left no trace
  CHECK(e->kv().free_blocks == before.free_blocks);
  CHECK(backend->costs().failed_calls.load() + backend->costs().shard_failures.load() > 0);

  // While it is down, steps keep failing fast (not connected) instead of hanging.
  const auto t1 = clock_type::now();
  CHECK_FALSE(e->step({model::seq_input{&s, &next, 1, false}}, &out, &err));
  CHECK(std::chrono::duration<double>(clock_type::now() - t1).count() < 2.0);

  b.start();  // same port: the link reconnects by itself
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = e->step({model::seq_input{&s, &next, 1, false}}, &out, &err);
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(err);
  REQUIRE(back);
  REQUIRE(single->step({model::seq_input{&r, &next, 1, false}}, &ref, &err));
  CHECK(max_abs_diff(out.row(0), ref.row(0), V) <= 1e-5f);
}

// The v3-bf16 experts on two in-process shards, with every expert of shard 1 replicated on shard 0 when
// REPLICATE, as an explicit placement.
std::shared_ptr<model::sharded_expert_backend> two_actor_shards(bool replicate,
                                                                std::shared_ptr<actors::actor_shard_transport>* t) {
  auto ck = open_checkpoint("v3-bf16");
  std::string err;
  auto weights = model::load_shared_weights(ck, &err);
  REQUIRE(weights != nullptr);
  *t = std::make_shared<actors::actor_shard_transport>(weights, static_cast<int>(ck->config().hidden_size), 2, 1);
  const int E = static_cast<int>(ck->config().n_routed_experts);
  std::vector<std::vector<int>> owners;
  for (int e = 0; e < E; ++e) {
    if (e < E / 2) owners.push_back({0});
    else if (replicate) owners.push_back({1, 0});
    else owners.push_back({1});
  }
  model::expert_placement p;
  REQUIRE(model::expert_placement::from_owners(owners, 2, &p, &err));
  model::sharded_options o;
  o.deadline = std::chrono::milliseconds(300);
  o.retry_after = std::chrono::seconds(60);
  return std::make_shared<model::sharded_expert_backend>(*t, p, o);
}

TEST_CASE("a replica serves the experts of a dead shard and the results stay exact", "[shards][failure]") {
  std::shared_ptr<actors::actor_shard_transport> t;
  auto backend = two_actor_shards(true, &t);
  model::engine_options eo;
  eo.experts = backend;
  std::string err;
  auto e = model::engine::create(open_checkpoint("v3-bf16"), eo, &err);
  REQUIRE(e != nullptr);
  auto single = make_engine("v3-bf16");
  std::vector<int32_t> tokens(prompt);
  for (int i = 0; i < 6; ++i) tokens.push_back((i * 131 + 7) % 1000);

  // Half of the prompt with both shards alive, then shard 1 dies and the rest goes to the replicas.
  const std::vector<float> want = feed(*single, tokens, 8);
  model::kv_sequence s;
  REQUIRE(e->start(&s, nullptr, 0, &err) == 0);
  model::step_output out;
  const int64_t V = e->config().vocab_size;
  std::vector<float> got;
  for (size_t b = 0; b < tokens.size(); b += 8) {
    if (b == 8) t->crash_on_next_job(1);
    const int64_t len = std::min<int64_t>(8, static_cast<int64_t>(tokens.size() - b));
    INFO(err);
    REQUIRE(e->step({model::seq_input{&s, tokens.data() + b, len, true}}, &out, &err));
    got.insert(got.end(), out.row(0, 0), out.row(0, 0) + len * V);
  }
  CHECK(max_abs_diff(got.data(), want.data(), static_cast<int64_t>(want.size())) <= 1e-5f);
  CHECK(backend->costs().rerouted_calls.load() >= 1);
}

TEST_CASE("without a replica a dead shard actor fails the step with the reason", "[shards][failure]") {
  std::shared_ptr<actors::actor_shard_transport> t;
  auto backend = two_actor_shards(false, &t);
  model::engine_options eo;
  eo.experts = backend;
  std::string err;
  auto e = model::engine::create(open_checkpoint("v3-bf16"), eo, &err);
  REQUIRE(e != nullptr);
  model::kv_sequence s;
  REQUIRE(e->start(&s, nullptr, 0, &err) == 0);
  model::step_output out;
  REQUIRE(e->step({model::seq_input{&s, prompt.data(), 8, false}}, &out, &err));
  t->crash_on_next_job(1);
  const int64_t free_before = e->kv().free_blocks;
  CHECK_FALSE(e->step({model::seq_input{&s, prompt.data() + 8, 9, false}}, &out, &err));
  CHECK(err.find("expert shard 1 (in-process actor): no answer before the deadline") != std::string::npos);
  CHECK(err.find("no live shard holds expert") != std::string::npos);
  CHECK(s.length() == 8);
  CHECK(e->kv().free_blocks == free_before);
}

}  // namespace
}  // namespace rampart::test

namespace rampart::test {
namespace {

TEST_CASE("a warm job an in-process shard dies with fails, and the respawned shard warms", "[shards][failure]") {
  std::shared_ptr<actors::actor_shard_transport> t;
  auto backend = two_actor_shards(false, &t);
  t->crash_on_next_job(1);
  auto lost = t->warm(1, {0, 1});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (lost->load() == 0 && std::chrono::steady_clock::now() < deadline) {
    t->poll();  // finds the dead actor, fails what it died with, spawns it again
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(lost->load() == -1);
  auto again = t->warm(1, {0, 1});
  while (again->load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(again->load() == 1);
}

}  // namespace
}  // namespace rampart::test
