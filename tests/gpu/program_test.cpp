// The exact device program (gpu/exact_program.hpp) run by the host executor: the same op source a GPU runs,
// checked on any machine against the golden logits, the CPU engine, and the CPU's own router and dtype
// conversions. A GPU run of the program is checked in gpu_tests (device_engine_test.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "gpu/exact_program.hpp"
#include "gpu/reference.hpp"
#include "model/moe.hpp"
#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

std::unique_ptr<model::engine> reference_engine(const std::string& name, model::engine_options o = {}) {
  o.device = gpu::host_reference_device(2);
  return make_engine(name, o);
}

TEST_CASE("the exact device program matches the v3-bf16 golden logits on every case", "[gpu][program][golden]") {
  auto e = reference_engine("v3-bf16");
  CHECK(std::string(e->kernel_name()) == "host reference, exact");
  CHECK(e->packed_weight_bytes() == 0);
  check_golden_cases(*e, "v3-bf16");
}

TEST_CASE("the exact device program matches the v3-fp8 golden logits on every case", "[gpu][program][golden]") {
  auto e = reference_engine("v3-fp8");
  check_golden_cases(*e, "v3-fp8");
}

TEST_CASE("the exact device program matches the v2lite-bf16 golden logits on every case", "[gpu][program][golden]") {
  auto e = reference_engine("v2lite-bf16");
  check_golden_cases(*e, "v2lite-bf16");
}

// Three sequences in one batch, one of them resuming from a prefix-cache hit, one decoding while the others
// prefill in chunks: the program's block tables and positions must place every KV row where the CPU engine's
// would, and a sequence's logits must be the same bits alone or in a batch.
TEST_CASE("the exact device program matches the CPU engine on a mixed batch and is batch-independent",
          "[gpu][program]") {
  model::engine_options o;
  o.kv_block_tokens = 4;
  auto cpu = make_engine("v3-bf16", o);
  auto dev = reference_engine("v3-bf16", o);
  const int64_t V = cpu->config().vocab_size;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(V - 1));
  std::vector<int32_t> a(23), b(9);
  for (auto& t : a) t = tok(rng);
  for (auto& t : b) t = tok(rng);
  std::vector<int32_t> c(a.begin(), a.begin() + 13);  // shares a's first 3 blocks
  c.push_back(5);

  // Each engine: a alone first (publishes its blocks), then b and c together in chunks with a decoding.
  auto run = [&](model::engine& e, std::vector<std::vector<float>>* rows) {
    std::string err;
    model::kv_sequence sa, sb, sc;
    model::step_output out;
    REQUIRE(e.start(&sa, a.data(), 23, &err) == 0);
    REQUIRE(e.step({{&sa, a.data(), 23, false}}, &out, &err));
    rows->emplace_back(out.row(0), out.row(0) + V);
    REQUIRE(e.start(&sb, b.data(), 9, &err) == 0);
    const int64_t hit = e.start(&sc, c.data(), 14, &err);
    CHECK(hit == 12);
    int32_t next = 17;
    int64_t fed_b = 0;
    for (int step = 0; step < 3; ++step) {
      std::vector<model::seq_input> batch;
      batch.push_back({&sa, &next, 1, false});
      if (fed_b < 9) batch.push_back({&sb, b.data() + fed_b, std::min<int64_t>(5, 9 - fed_b), true});
      if (step == 1) batch.push_back({&sc, c.data() + hit, 14 - hit, false});
      INFO(err);
      REQUIRE(e.step(batch, &out, &err));
      for (size_t i = 0; i < batch.size(); ++i)
        for (int64_t j = 0; j < out.n_rows[i]; ++j) rows->emplace_back(out.row(i, j), out.row(i, j) + V);
      if (fed_b < 9) fed_b += std::min<int64_t>(5, 9 - fed_b);
      ++next;
    }
    // c decodes alone after the batch.
    REQUIRE(e.step({{&sc, &next, 1, false}}, &out, &err));
    rows->emplace_back(out.row(0), out.row(0) + V);
    e.release(&sa);
    e.release(&sb);
    e.release(&sc);
  };
  std::vector<std::vector<float>> want, got;
  run(*cpu, &want);
  run(*dev, &got);
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("row " << i);
    CHECK(max_abs_diff(want[i].data(), got[i].data(), V) <= 1e-4);
  }

  // Batch independence, bit for bit: b's prefill and a decode of a, alone and beside each other.
  auto alone_and_together = [&](model::engine& e) {
    std::string err;
    model::step_output out;
    model::kv_sequence s1, s2;
    REQUIRE(e.start(&s1, nullptr, 0, &err) == 0);
    REQUIRE(e.step({{&s1, b.data(), 9, true}}, &out, &err));
    std::vector<float> alone(out.logits);
    e.release(&s1);
    REQUIRE(e.start(&s1, nullptr, 0, &err) == 0);
    REQUIRE(e.start(&s2, nullptr, 0, &err) == 0);
    REQUIRE(e.step({{&s2, a.data(), 7, false}, {&s1, b.data(), 9, true}}, &out, &err));
    std::vector<float> together(out.row(1, 0), out.row(1, 0) + 9 * V);
    e.release(&s1);
    e.release(&s2);
    return alone == together;
  };
  CHECK(alone_and_together(*dev));
}

TEST_CASE("a step longer than max_step_tokens runs in slices on the device program with the same logits",
          "[gpu][program]") {
  model::engine_options whole, sliced;
  sliced.max_step_tokens = 5;
  auto e1 = reference_engine("v2lite-bf16", whole);
  auto e2 = reference_engine("v2lite-bf16", sliced);
  std::vector<int32_t> t(17);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 37 + 11) % 1000);
  CHECK(feed(*e1, t, 0) == feed(*e2, t, 0));
}

TEST_CASE("the program's router picks the CPU router's experts and weights, bit for bit", "[gpu][program]") {
  for (const char* name : {"v3-bf16", "v2lite-bf16"}) {
    INFO(name);
    const model::model_config c = open_checkpoint(name)->config();
    const gpu::router_params p = gpu::router_params_for(c);
    const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> logits(E), bias(E), cpu_scratch(5 * E), scratch(3 * E + 2 * p.groups), w1(K), w2(K);
    std::vector<int32_t> id1(K), id2(K);
    for (int trial = 0; trial < 2000; ++trial) {
      for (auto& v : logits) v = trial % 7 == 0 ? std::round(nd(rng)) : nd(rng);  // rounded: many ties
      for (auto& v : bias) v = trial % 2 == 0 ? nd(rng) * 0.1f : 0.0f;
      const float* bp = trial % 3 == 0 ? nullptr : bias.data();
      model::route_token(c, logits.data(), bp, cpu_scratch.data(), id1.data(), w1.data());
      gpu::route_row(p, logits.data(), bp, scratch.data(), id2.data(), w2.data());
      REQUIRE(id1 == id2);
      REQUIRE(w1 == w2);
    }
  }
}

TEST_CASE("the program's dtype conversions equal the CPU loader's for every code", "[gpu][program]") {
  auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0; };
  for (int code = 0; code < 256; ++code)
    CHECK(same(gpu::e4m3_value(static_cast<uint8_t>(code)), model::e4m3_to_float(static_cast<uint8_t>(code))));
  int bad_bf16 = 0, bad_f16 = 0;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    bad_bf16 += !same(gpu::bf16_value(static_cast<uint16_t>(bits)), model::bf16_to_float(static_cast<uint16_t>(bits)));
    bad_f16 += !same(gpu::f16_value(static_cast<uint16_t>(bits)), model::f16_to_float(static_cast<uint16_t>(bits)));
  }
  CHECK(bad_bf16 == 0);
  CHECK(bad_f16 == 0);
}

TEST_CASE("block tables are packed once per sequence, up to its last position's block", "[gpu][program]") {
  const std::vector<int32_t> t1 = {7, 3, 9, 4}, t2 = {5, 6};
  // Sequence 1 feeds positions 5..9 (blocks of 4: blocks 1 and 2 needed, table up to index 2), sequence 2
  // decodes position 2 (block 0).
  std::vector<model::token_slot> slots;
  for (int64_t p = 5; p <= 9; ++p) slots.push_back({p, t1.data()});
  slots.push_back({2, t2.data()});
  gpu::packed_tables out;
  gpu::pack_block_tables(slots.data(), static_cast<int64_t>(slots.size()), 4, &out);
  CHECK(out.tables == std::vector<int32_t>{7, 3, 9, 5});
  CHECK(out.at == std::vector<int64_t>{0, 0, 0, 0, 0, 3});
}

TEST_CASE("attention score chunks respect the budget and cover the step", "[gpu][program]") {
  CHECK(gpu::attention_chunk(10, 4, 100, 1000) == 2);    // 2 tokens x 4 heads x 100 keys = 800 <= 1000
  CHECK(gpu::attention_chunk(10, 4, 100, 100000) == 10);  // all at once
  CHECK(gpu::attention_chunk(10, 128, 100000, 1000) == 1);  // over budget: one token at a time
}

}  // namespace
}  // namespace rampart::test
