// Shared pieces of the engine tests: the fixture checkpoints regenerated into the build tree (CTest fixture
// model_fixtures), their golden files, and a driver that feeds a token list through the engine.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/scheduler.hpp"
#include "model/checkpoint.hpp"

namespace rampart::test {

inline std::string test_model_dir(const std::string& name) {
  return std::string(RAMPART_BIN_DIR) + "/../test-models/" + name;
}

inline nlohmann::json load_golden(const std::string& name) {
  const std::string path = std::string(RAMPART_SOURCE_DIR) + "/tests/fixtures/model/" + name + ".golden.json";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline std::shared_ptr<const model::checkpoint> open_checkpoint(const std::string& name) {
  model::load_error err;
  std::shared_ptr<const model::checkpoint> ck = model::checkpoint::open(test_model_dir(name), &err);
  INFO(err.message);
  REQUIRE(ck != nullptr);
  return ck;
}

inline std::unique_ptr<model::engine> make_engine(const std::string& name, model::engine_options options = {}) {
  std::string err;
  auto e = model::engine::create(open_checkpoint(name), options, &err);
  INFO(err);
  REQUIRE(e != nullptr);
  return e;
}

inline int32_t argmax(const float* v, int64_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);  // first maximum: lowest id on ties
}

// Feeds TOKENS to a fresh sequence in chunks of CHUNK tokens (0: all at once) and returns the logits after
// every token, row-major [tokens.size(), vocab]. The sequence is released at the end.
inline std::vector<float> feed(model::engine& e, const std::vector<int32_t>& tokens, int64_t chunk) {
  std::string err;
  model::kv_sequence seq;
  REQUIRE(e.start(&seq, nullptr, 0, &err) == 0);
  const int64_t V = e.config().vocab_size, n = static_cast<int64_t>(tokens.size());
  std::vector<float> all(static_cast<size_t>(n * V));
  model::step_output out;
  for (int64_t b = 0; b < n;) {
    const int64_t len = chunk <= 0 ? n - b : std::min(chunk, n - b);
    model::seq_input in{&seq, tokens.data() + b, len, true};
    INFO(err);
    REQUIRE(e.step({in}, &out, &err));
    std::copy(out.row(0, 0), out.row(0, 0) + len * V, all.begin() + b * V);
    b += len;
  }
  e.release(&seq);
  return all;
}

inline float max_abs_diff(const float* a, const float* b, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Every case of fixture NAME's golden file through E: the prompt prefilled in one step, then greedy decoding one
// token per step; every recorded position's logits within the file's tolerance (default 1e-4) and the greedy
// tokens identical.
inline void check_golden_cases(model::engine& e, const std::string& name) {
  const nlohmann::json golden = load_golden(name);
  const double tol = golden.value("tolerance_abs_fp32", 1e-4);
  const int64_t V = e.config().vocab_size;
  for (const auto& c : golden["cases"]) {
    const std::string case_name = c["name"];
    INFO("fixture " << name << ", case " << case_name);
    const std::vector<int32_t> prompt = c["prompt"].get<std::vector<int32_t>>();
    const std::vector<int32_t> greedy = c["greedy"].get<std::vector<int32_t>>();
    // logits after fed position p: the prompt's rows come from the prefill, the rest from decode steps.
    std::vector<float> rows((prompt.size() + greedy.size()) * static_cast<size_t>(V));
    std::string err;
    model::kv_sequence seq;
    REQUIRE(e.start(&seq, nullptr, 0, &err) == 0);
    model::step_output out;
    INFO(err);
    REQUIRE(e.step({model::seq_input{&seq, prompt.data(), static_cast<int64_t>(prompt.size()), true}}, &out, &err));
    std::copy(out.row(0, 0), out.row(0, 0) + prompt.size() * V, rows.begin());
    std::vector<int32_t> generated;
    int32_t next = argmax(out.row(0), V);
    for (size_t i = 0; i < greedy.size(); ++i) {
      generated.push_back(next);
      if (i + 1 == greedy.size()) break;
      REQUIRE(e.step({model::seq_input{&seq, &next, 1, false}}, &out, &err));
      std::copy(out.row(0), out.row(0) + V, rows.begin() + (prompt.size() + i) * V);
      next = argmax(out.row(0), V);
    }
    CHECK(generated == greedy);
    for (const auto& rec : c["logits"]) {
      const int64_t pos = rec["position"];
      const std::vector<float> want = rec["values"].get<std::vector<float>>();
      REQUIRE(static_cast<int64_t>(want.size()) == V);
      INFO("position " << pos);
      CHECK(max_abs_diff(want.data(), &rows[pos * V], V) <= tol);
    }
    e.release(&seq);
  }
}

// Three requests of 6 tokens each (prompts of 9, 13 and 17 tokens; top_p 0.9, seeds 1-3) through a batch
// scheduler on E at TEMPERATURE: each request's tokens.
inline std::map<uint64_t, std::vector<int32_t>> scheduler_tokens(model::engine& e, float temperature) {
  model::batch_scheduler s(&e, {});
  for (uint64_t id = 1; id <= 3; ++id) {
    model::sequence_request r;
    r.id = id;
    for (int i = 0; i < 5 + static_cast<int>(id) * 4; ++i) r.prompt.push_back(static_cast<int32_t>((id * 131 + i * 17) % 997));
    r.max_tokens = 6;
    r.sampling.temperature = temperature;
    r.sampling.top_p = 0.9f;
    r.sampling.seed = id;
    REQUIRE(s.add(r).code == model::batch_scheduler::add_result::queued);
  }
  std::map<uint64_t, std::vector<int32_t>> tokens;
  for (int i = 0; i < 100 && s.has_work(); ++i) {
    model::step_report rep;
    s.step(&rep);
    for (const auto& t : rep.tokens) tokens[t.id].push_back(t.token);
  }
  return tokens;
}

}  // namespace rampart::test
