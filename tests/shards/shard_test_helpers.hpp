// Shared pieces of the expert-shard tests: shard processes, and running a fixture's golden cases.
#pragma once

#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "actors/shard_server.hpp"
#include "tests/engine/engine_test_helpers.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

namespace rampart::test {

// A `rampartd --role shard` process on a free loopback port, started and waited for.
struct shard_process {
  int port = free_port();
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::unique_ptr<child_process> proc;
  std::string model_dir;
  int id = 0, n = 0;
  std::string config;  // a rampartd configuration with a [shard] section (--config), or none

  shard_process(const std::string& model, int shard_id, int n_shards, std::string config_file = "")
      : model_dir(model), id(shard_id), n(n_shards), config(std::move(config_file)) {
    start();
  }
  void start() {
    std::vector<std::string> args{"--role",  "shard",   "--shard-id", std::to_string(id), "--shards", std::to_string(n),
                                  "--listen", endpoint, "--model",    model_dir,          "--threads", "1"};
    if (!config.empty()) args.insert(args.end(), {"--config", config});
    proc = std::make_unique<child_process>(bin("rampartd"), args);
    const bool ready = proc->wait_ready([&] { return proc->log().find("ready on") != std::string::npos; },
                                        std::chrono::seconds(30));
    INFO(proc->log());
    REQUIRE(ready);
  }
};

// Greedy tokens and every logits row of each golden case of a fixture, prefill in one step then one token per
// step, through engine E.
struct case_run {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> logits;
};

inline case_run run_golden_cases(model::engine& e, const nlohmann::json& golden) {
  case_run out;
  const int64_t V = e.config().vocab_size;
  for (const auto& c : golden["cases"]) {
    const std::vector<int32_t> prompt = c["prompt"].get<std::vector<int32_t>>();
    const size_t n_gen = c["greedy"].size();
    std::string err;
    model::kv_sequence seq;
    REQUIRE(e.start(&seq, nullptr, 0, &err) == 0);
    model::step_output o;
    INFO(err);
    REQUIRE(e.step({model::seq_input{&seq, prompt.data(), static_cast<int64_t>(prompt.size()), true}}, &o, &err));
    std::vector<float> rows(o.row(0, 0), o.row(0, 0) + prompt.size() * V);
    std::vector<int32_t> gen;
    int32_t next = argmax(o.row(0), V);
    for (size_t i = 0; i < n_gen; ++i) {
      gen.push_back(next);
      if (i + 1 == n_gen) break;
      REQUIRE(e.step({model::seq_input{&seq, &next, 1, false}}, &o, &err));
      rows.insert(rows.end(), o.row(0), o.row(0) + V);
      next = argmax(o.row(0), V);
    }
    e.release(&seq);
    out.tokens.push_back(gen);
    out.logits.push_back(std::move(rows));
  }
  return out;
}

inline std::unique_ptr<model::engine> sharded_engine(const std::string& fixture,
                                                     const actors::expert_shards_options& so,
                                                     std::shared_ptr<model::sharded_expert_backend>* backend,
                                                     std::shared_ptr<model::shard_transport>* transport = nullptr) {
  auto ck = open_checkpoint(fixture);
  std::string err;
  *backend = actors::make_expert_shards(ck, so, &err, transport);
  INFO(err);
  REQUIRE(*backend != nullptr);
  model::engine_options eo;
  eo.experts = *backend;
  auto e = model::engine::create(ck, eo, &err);
  REQUIRE(e != nullptr);
  return e;
}

}  // namespace rampart::test
