// The exact device program (gpu/exact_program.hpp) run by the host executor: the same op source a GPU runs,
// checked on any machine against the golden logits, the CPU engine, and the CPU loader's dtype
// conversions. A GPU run of the program is checked in gpu_tests (device_engine_test.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>

#include "gpu/device_experts.hpp"
#include "gpu/exact_program.hpp"
#include "gpu/host_exec.hpp"
#include "gpu/weight_store.hpp"
#include "gpu/reference.hpp"
#include "gpu/sample_ops.hpp"
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


// The sampling distribution written from its definition with a sort (engine/sampler.hpp's rules), as the
// reference for both samplers: candidates, top-k, weights, top-p, min-p, then probabilities.
std::vector<double> reference_probabilities(const std::vector<float>& l, const gpu::row_sampling& s) {
  const size_t n = l.size();
  std::vector<double> p(n, 0.0);
  const float inf = std::numeric_limits<float>::infinity();
  const bool inf_row = std::any_of(l.begin(), l.end(), [&](float v) { return v == inf; });
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (inf_row ? l[i] == inf : std::isfinite(l[i])) order.push_back(i);
  if (order.empty()) return p;
  auto key = [&](size_t i) { return inf_row ? 0.0f : l[i]; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) > key(b); });
  if (s.top_k > 0 && static_cast<size_t>(s.top_k) < order.size()) order.resize(static_cast<size_t>(s.top_k));
  const float mx = key(order[0]);
  std::vector<double> w(n, 0.0);
  double total = 0;
  for (size_t i : order) total += w[i] = inf_row ? 1.0 : std::exp((static_cast<double>(l[i]) - mx) / s.temperature);
  std::vector<size_t> kept;
  double before = 0;
  for (size_t i : order) {
    if (s.top_p < 1 && !(before < s.top_p * total)) break;
    before += w[i];
    if (w[i] >= s.min_p && w[i] > 0) kept.push_back(i);
  }
  double kept_total = 0;
  for (size_t i : kept) kept_total += w[i];
  for (size_t i : kept) p[i] = w[i] / kept_total;
  return p;
}

// The device sampler's probabilities, read off exactly: the token it picks for uniforms on a fine grid.
std::vector<double> grid_probabilities(const std::vector<float>& l, gpu::row_sampling s, int points) {
  std::vector<double> p(l.size(), 0.0);
  int missing = 0;
  for (int j = 0; j < points; ++j) {
    s.uniform = (j + 0.5) / points;
    const int32_t t = gpu::sample_row(l.data(), static_cast<int64_t>(l.size()), s);
    if (t < 0)
      ++missing;
    else
      p[static_cast<size_t>(t)] += 1.0 / points;
  }
  CHECK(missing == 0);
  return p;
}

TEST_CASE("the device sampler's greedy choice is the CPU's on rows with ties, NaN and infinities",
          "[gpu][program][sampling]") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pick(0, 9);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<float> l(1 + trial % 300);
    for (auto& v : l) {
      const int k = pick(rng);
      v = k == 0 ? nan : k == 1 ? -inf : k == 2 && trial % 5 == 0 ? inf : static_cast<float>(pick(rng) % 4);
    }
    INFO("trial " << trial);
    REQUIRE(gpu::sample_row(l.data(), static_cast<int64_t>(l.size()), gpu::row_sampling{}) ==
            model::greedy_token(l.data(), l.size()));
  }
}

TEST_CASE("the device sampler keeps and weighs tokens as the sampler's rules say", "[gpu][program][sampling]") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<gpu::row_sampling> settings = {
      {1.0f, 0, 1.0f, 0.0f, 0}, {0.7f, 5, 1.0f, 0.0f, 0}, {1.0f, 0, 0.9f, 0.0f, 0}, {1.3f, 0, 1.0f, 0.05f, 0},
      {0.8f, 20, 0.8f, 0.02f, 0}, {1.0f, 1, 1.0f, 0.0f, 0}, {2.0f, 0, 0.3f, 0.0f, 0}, {0.5f, 3, 0.95f, 0.1f, 0}};
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<float> l(40 + trial % 50);
    for (auto& v : l) v = trial % 3 == 0 ? std::round(nd(rng)) : nd(rng);  // rounded: ties at the cuts
    if (trial % 10 == 1) l[3] = -inf;
    if (trial % 10 == 2) l[7] = std::nanf("");
    if (trial % 20 == 3) l[5] = l[9] = l[30] = inf;
    if (trial % 3 == 0) l[11] = -0.0f;  // equal to +0: ties by id, not a smaller value
    for (const gpu::row_sampling& s : settings) {
      INFO("trial " << trial << ", temperature " << s.temperature << ", top_k " << s.top_k << ", top_p " << s.top_p
                    << ", min_p " << s.min_p);
      const std::vector<double> want = reference_probabilities(l, s);
      const std::vector<double> got = grid_probabilities(l, s, 10000);
      double worst = 0;
      int dropped_but_drawn = 0;
      for (size_t i = 0; i < l.size(); ++i) {
        dropped_but_drawn += want[i] == 0 && got[i] != 0;
        worst = std::max(worst, std::fabs(want[i] - got[i]));
      }
      CHECK(dropped_but_drawn == 0);
      CHECK(worst <= 2.0 / 10000);
    }
  }
}

TEST_CASE("the CPU sampler draws from the distribution the device sampler draws from", "[gpu][program][sampling]") {
  const std::vector<float> l = {2.0f, 1.0f, 1.0f, 0.5f, -1.0f, 3.0f, 3.0f, 0.0f, -0.5f, 1.5f};
  for (const gpu::row_sampling& s : {gpu::row_sampling{1.0f, 0, 1.0f, 0.0f, 0}, gpu::row_sampling{0.8f, 4, 1.0f, 0.0f, 0},
                                     gpu::row_sampling{1.0f, 0, 0.7f, 0.0f, 0}, gpu::row_sampling{1.2f, 6, 0.9f, 0.1f, 0}}) {
    const std::vector<double> device = grid_probabilities(l, s, 100000);
    model::sampler cpu(model::sampling_params{s.temperature, s.top_k, s.top_p, s.min_p, 42});
    std::vector<double> freq(l.size(), 0.0);
    const int draws = 40000;
    for (int i = 0; i < draws; ++i) freq[static_cast<size_t>(cpu.sample(l.data(), l.size()))] += 1.0 / draws;
    for (size_t i = 0; i < l.size(); ++i) {
      INFO("token " << i << ", top_k " << s.top_k << ", top_p " << s.top_p << ", min_p " << s.min_p);
      if (device[i] == 0) CHECK(freq[i] == 0);
      CHECK(std::fabs(freq[i] - device[i]) < 0.012);  // 40,000 draws: 5 standard deviations at p = 0.25 is 0.011
    }
  }
}

// The scheduler with a device that samples: only tokens come back, greedy requests get the CPU engine's tokens,
// and a seeded sampled request gets the same tokens run after run.
TEST_CASE("the scheduler samples on a device that samples: greedy equals the CPU engine, seeds repeat",
          "[gpu][program][sampling]") {
  auto run = [](bool device, float temperature) {
    model::engine_options o;
    if (device) o.device = gpu::host_reference_device(2);
    auto e = make_engine("v3-bf16", o);
    CHECK(e->samples_on_device() == device);
    return scheduler_tokens(*e, temperature);
  };
  const auto greedy_cpu = run(false, 0.0f), greedy_dev = run(true, 0.0f);
  CHECK(greedy_dev == greedy_cpu);
  CHECK(greedy_dev.at(1).size() == 6);
  const auto sampled1 = run(true, 1.0f), sampled2 = run(true, 1.0f);
  CHECK(sampled1 == sampled2);
  CHECK(sampled1.at(3).size() == 6);
}


TEST_CASE("decode steps pick the smallest graph bucket that holds them", "[gpu][program][graphs]") {
  const std::vector<int64_t> b = gpu::default_graph_buckets;
  CHECK(gpu::graph_bucket(1, b) == 1);
  CHECK(gpu::graph_bucket(3, b) == 4);
  CHECK(gpu::graph_bucket(33, b) == 48);
  CHECK(gpu::graph_bucket(128, b) == 128);
  CHECK(gpu::graph_bucket(129, b) == -1);
  const std::vector<int32_t> t1 = {4, 5}, t2 = {6};
  const model::token_slot decode[2] = {{17, t1.data()}, {3, t2.data()}};
  const model::token_slot prefill[2] = {{0, t1.data()}, {1, t1.data()}};
  const int64_t rows01[2] = {0, 1}, rows1[1] = {1};
  CHECK(gpu::decode_step(decode, 2, rows01, 2));
  CHECK_FALSE(gpu::decode_step(prefill, 2, rows01, 2));  // two tokens of one sequence
  CHECK_FALSE(gpu::decode_step(decode, 2, rows1, 1));     // a token without its logits
  gpu::packed_tables out;
  gpu::pad_block_tables(decode, 2, 4, 16, 3, 99, &out);  // blocks of 16: position 17 needs 2, position 3 one
  CHECK(out.tables == std::vector<int32_t>{4, 5, 99, 6, 99, 99, 99, 99, 99, 99, 99, 99});
  CHECK(out.at == std::vector<int64_t>{0, 3, 6, 9});
}

// The decode path a GPU replays as graphs (padded to a bucket, attention over every possible key), run by the
// host executor: the same bits as the step run op by op, a capture per bucket, and a new one when a longer step
// has moved the buffers the graph reads.
TEST_CASE("graph-replayed decode steps give the logits of uncaptured ones, bit for bit", "[gpu][program][graphs]") {
  auto ck = open_checkpoint("v3-bf16");
  model::model_weights w;
  std::string err;
  REQUIRE(model::model_weights::load(*ck, &w, &err));
  const model::model_config& c = ck->config();
  auto pool = std::make_shared<model::thread_pool>(2);
  auto with = gpu::exact_program<gpu::host_exec>::create(gpu::host_exec{pool}, c, w, 64, 4, &err, true);
  auto without = gpu::exact_program<gpu::host_exec>::create(gpu::host_exec{pool}, c, w, 64, 4, &err, false);
  REQUIRE(with);
  REQUIRE(without);
  const int64_t V = c.vocab_size;
  // Three sequences with disjoint blocks; each step feeds every sequence one token (a batch of 3: bucket 4).
  std::vector<std::vector<int32_t>> tables = {{0, 1, 2, 3, 4, 5}, {10, 11, 12, 13, 14, 15}, {20, 21, 22, 23, 24, 25}};
  std::vector<int64_t> len = {0, 0, 0};
  auto step = [&](gpu::exact_program<gpu::host_exec>& p, const std::vector<int>& seqs, int64_t tokens_each) {
    std::vector<model::token_slot> slots;
    std::vector<int32_t> toks;
    std::vector<int64_t> rows;
    for (int q : seqs)
      for (int64_t j = 0; j < tokens_each; ++j) {
        slots.push_back({len[q] + j, tables[q].data()});
        toks.push_back(static_cast<int32_t>((q * 97 + len[q] * 13 + j * 7) % V));
        rows.push_back(static_cast<int64_t>(rows.size()));
      }
    std::vector<float> logits(rows.size() * V);
    p.forward(toks.data(), slots.data(), static_cast<int64_t>(toks.size()), rows.data(),
              static_cast<int64_t>(rows.size()), logits.data());
    return logits;
  };
  auto both = [&](const std::vector<int>& seqs, int64_t tokens_each) {
    const std::vector<int64_t> before = len;
    const std::vector<float> a = step(*with, seqs, tokens_each);
    len = before;
    const std::vector<float> b = step(*without, seqs, tokens_each);
    for (int q : seqs) len[q] += tokens_each;
    return a == b;
  };
  CHECK(both({0, 1, 2}, 1));
  CHECK(with->graph_captures() == 1);
  for (int i = 0; i < 4; ++i) CHECK(both({0, 1, 2}, 1));
  CHECK(with->graph_captures() == 1);  // replayed, not captured again
  CHECK(both({1}, 1));                 // bucket 1: its own graph
  CHECK(with->graph_captures() == 2);
  CHECK(both({2}, 9));                 // a prefill-like step: runs uncaptured and grows the buffers
  CHECK(both({0, 1, 2}, 1));           // bucket 4 again, with moved buffers: captured anew
  CHECK(with->graph_captures() == 3);
  CHECK(without->graph_captures() == 0);
}

TEST_CASE("the engine over graph-replayed decode matches the engine without graphs", "[gpu][program][graphs]") {
  model::engine_options a, b;
  a.device = gpu::host_reference_device(2, true);
  b.device = gpu::host_reference_device(2, false);
  auto e1 = make_engine("v2lite-bf16", a), e2 = make_engine("v2lite-bf16", b);
  CHECK(scheduler_tokens(*e1, 0.0f) == scheduler_tokens(*e2, 0.0f));
  CHECK(scheduler_tokens(*e1, 1.0f) == scheduler_tokens(*e2, 1.0f));
}


TEST_CASE("fast precision's bf16 rounding is the CPU loader's, and its products stay within the bf16 bound",
          "[gpu][program][fast]") {
  std::mt19937 rng(17);
  std::uniform_int_distribution<uint32_t> bits;
  int wrong = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint32_t b = bits(rng);
    float f;
    std::memcpy(&f, &b, 4);
    const uint16_t want = model::float_to_bf16(f), got = gpu::bf16_bits(f);
    wrong += std::isnan(f) ? !std::isnan(model::bf16_to_float(got)) : want != got;
  }
  CHECK(wrong == 0);
  // Y = bf16(X) W^T against the product in double: |error| <= 2^-8 of sum |w x| (one bf16 rounding of each
  // activation, 2^-9 relative, plus float accumulation).
  const int64_t rows = 37, cols = 300, n = 5;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<uint16_t> w(rows * cols), xb(n * cols);
  std::vector<float> x(n * cols), y(n * rows);
  for (auto& v : w) v = model::float_to_bf16(nd(rng));
  for (auto& v : x) v = nd(rng) * 3.0f;
  for (int64_t i = 0; i < n * cols; ++i) xb[i] = gpu::bf16_bits(x[i]);
  gpu::dweight dw;
  dw.type = model::dtype::bf16;
  dw.rows = rows;
  dw.cols = cols;
  dw.data = w.data();
  gpu::host_exec ex{std::make_shared<model::thread_pool>(1)};
  ex.gemm_bf16(dw, xb.data(), n, y.data());
  double worst = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, scale = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double wv = model::bf16_to_float(w[r * cols + c]);
        exact += wv * x[t * cols + c];
        scale += std::fabs(wv * x[t * cols + c]);
      }
      worst = std::max(worst, std::fabs(y[t * rows + r] - exact) / scale);
    }
  CHECK(worst <= std::ldexp(1.0, -8));
  CHECK(worst > 0);  // the activations really were rounded
}

// Fast precision end to end on the fixtures: bf16 activations into the projections move the logits of the bf16
// checkpoints by at most 0.1 (measured 0.02-0.05 against largest logits of 6-9). On the fp8 fixture the bf16
// widening of its weights and the rounded activations together flip some expert choices of these random weights
// (specs/gpu.md §7), so no bound holds there: its distance is printed, not checked.
TEST_CASE("fast precision stays within 0.1 of the goldens on the bf16 fixtures", "[gpu][program][fast]") {
  for (const char* name : {"v3-bf16", "v2lite-bf16", "v3-fp8"}) {
    model::engine_options o;
    o.device = gpu::host_reference_device(2, true, gpu::precision::fast);
    auto e = make_engine(name, o);
    CHECK(std::string(e->kernel_name()) == "host reference, fast");
    const nlohmann::json golden = load_golden(name);
    const int64_t V = e->config().vocab_size;
    float worst = 0;
    int same_argmax = 0, positions = 0;
    for (const auto& c : golden["cases"]) {
      const std::vector<int32_t> prompt = c["prompt"].get<std::vector<int32_t>>();
      if (prompt.size() > 100) continue;  // the long case: covered in exact precision
      const std::vector<float> rows = feed(*e, prompt, 0);
      for (const auto& rec : c["logits"]) {
        const int64_t pos = rec["position"];
        if (pos >= static_cast<int64_t>(prompt.size())) continue;
        const std::vector<float> want = rec["values"].get<std::vector<float>>();
        worst = std::max(worst, max_abs_diff(want.data(), &rows[pos * V], V));
        same_argmax += argmax(want.data(), V) == argmax(&rows[pos * V], V);
        ++positions;
      }
    }
    std::printf("fast precision, %s: max abs logit difference %.3g; argmax equal at %d of %d positions\n", name,
                worst, same_argmax, positions);
    CHECK(positions > 0);
    if (std::string(name) != "v3-fp8") CHECK(worst <= 0.1f);
  }
}


// A GPU shard's work run by the host executor: the CPU shard's outputs within 1e-5, the same bits however the
// items are split across shards, bad batches refused as the CPU shard refuses them, and only the experts asked
// for held.
TEST_CASE("device expert shards compute the CPU shard's outputs and hold only their experts", "[gpu][program][shards]") {
  auto ck = open_checkpoint("v3-fp8");
  std::string err;
  auto w = model::load_shared_weights(ck, &err);
  REQUIRE(w);
  const int D = static_cast<int>(ck->config().hidden_size);
  model::shard_compute cpu(w, D, 1);
  auto pool = std::make_shared<model::thread_pool>(2);
  gpu::device_experts<gpu::host_exec> dev(gpu::host_exec{pool}, w, D);
  REQUIRE(dev.n_experts() == cpu.n_experts());
  CHECK(dev.experts_held() == 0);
  REQUIRE(dev.warm({2, 5}, &err));
  const int64_t moe_layers = ck->config().num_hidden_layers - ck->config().first_k_dense_replace;
  CHECK(dev.experts_held() == 2 * moe_layers);
  const size_t two = dev.device_bytes();
  CHECK(two > 0);

  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto make = [&](int n_rows, int n_items) {
    auto b = std::make_shared<model::shard_batch>();
    b->layer = static_cast<int32_t>(ck->config().first_k_dense_replace);
    b->hidden = D;
    b->n_rows = n_rows;
    b->n_items = n_items;
    b->rows.resize(static_cast<size_t>(n_rows * D));
    for (auto& v : b->rows) v = nd(rng);
    for (int i = 0; i < n_items; ++i) {
      b->item_row.push_back(i % n_rows);
      b->item_expert.push_back((i * 5 + 2) % dev.n_experts());
    }
    return b;
  };
  auto b1 = make(3, 7);
  model::shard_batch b2;
  b2.layer = b1->layer;
  b2.hidden = D;
  b2.n_rows = b1->n_rows;
  b2.n_items = b1->n_items;
  b2.rows = b1->rows;
  b2.item_row = b1->item_row;
  b2.item_expert = b1->item_expert;
  REQUIRE(cpu.run(b2, &err));
  REQUIRE(dev.run(*b1, &err));
  CHECK(max_abs_diff(b1->out.data(), b2.out.data(), static_cast<int64_t>(b1->n_items) * D) <= 1e-5);
  CHECK(dev.experts_held() > 2 * moe_layers);  // the batch named others: held now, in this layer only
  CHECK(dev.device_bytes() > two);

  // Items split over two device shards: each output has the same bits.
  auto first = make(3, 0), second = make(3, 0);
  first->rows = second->rows = b1->rows;
  for (int i = 0; i < b1->n_items; ++i) {
    auto& half = i % 2 == 0 ? first : second;
    half->item_row.push_back(b1->item_row[static_cast<size_t>(i)]);
    half->item_expert.push_back(b1->item_expert[static_cast<size_t>(i)]);
    ++half->n_items;
  }
  gpu::device_experts<gpu::host_exec> other(gpu::host_exec{pool}, w, D);
  REQUIRE(dev.run(*first, &err));
  REQUIRE(other.run(*second, &err));
  for (int i = 0; i < b1->n_items; ++i) {
    const auto& half = i % 2 == 0 ? first : second;
    const float* got = &half->out[static_cast<size_t>(i / 2) * D];
    CHECK(std::equal(got, got + D, &b1->out[static_cast<size_t>(i) * D]));
  }

  // Refused as the CPU shard refuses: a dense layer, a row or expert out of range; nothing touched.
  auto bad = make(2, 2);
  bad->item_expert[1] = dev.n_experts();
  std::string e1, e2;
  CHECK_FALSE(dev.run(*bad, &e1));
  CHECK_FALSE(cpu.run(*bad, &e2));
  CHECK(e1 == e2);
  bad = make(2, 2);
  bad->layer = 0;  // first_k_dense_replace = 1: a dense layer
  CHECK_FALSE(dev.run(*bad, &e1));
  CHECK(e1.find("not a MoE layer") != std::string::npos);
  CHECK_FALSE(dev.warm({-1}, &e1));
}


// The upload layout: an fp8 window whose rows start inside a 128-row scale block reads the right scales, views
// of one tensor share one copy, and the bf16 widening for the tensor cores is the rounded dequantized value.
TEST_CASE("uploaded weights read as the CPU reads them: fp8 windows, shared views, bf16 widening",
          "[gpu][program]") {
  const int64_t rows = 300, cols = 260;  // scale blocks: 3 x 3, the last ones partial
  std::vector<uint8_t> codes(rows * cols);
  std::vector<float> scales(3 * 3);
  std::mt19937 rng(23);
  for (auto& c : codes) {
    c = static_cast<uint8_t>(rng() & 0xff);
    if ((c & 0x7f) == 0x7f) c = 0x3c;  // no NaN codes
  }
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = 0.5f + static_cast<float>(i);
  model::weight_matrix full;
  full.type = model::dtype::f8_e4m3;
  full.rows = rows;
  full.cols = cols;
  full.data = reinterpret_cast<const std::byte*>(codes.data());
  full.scale = scales.data();
  full.scale_cols = 3;
  gpu::host_exec ex{std::make_shared<model::thread_pool>(1)};
  gpu::weight_store<gpu::host_exec> store(&ex);
  const model::weight_matrix window = full.slice_rows(130, 150);  // rows 130..279: scale blocks 1 and 2
  const gpu::dweight w = store.upload(window), again = store.upload(window), whole = store.upload(full);
  CHECK(w.srow0 == 2);
  CHECK(again.data == w.data);  // one copy per distinct view
  CHECK(whole.data != w.data);
  int wrong = 0;
  for (int64_t r = 0; r < window.rows; ++r)
    for (int64_t c = 0; c < cols; ++c) wrong += gpu::weight_value(w, r, c) != model::weight_at(window, r, c);
  for (int64_t r = 0; r < rows; r += 7)
    for (int64_t c = 0; c < cols; ++c) wrong += gpu::weight_value(whole, r, c) != model::weight_at(full, r, c);
  CHECK(wrong == 0);
  const gpu::dweight wide = store.upload_bf16(window);
  CHECK(wide.type == model::dtype::bf16);
  for (int64_t r = 0; r < window.rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      wrong += gpu::weight_value(wide, r, c) != model::bf16_to_float(model::float_to_bf16(model::weight_at(window, r, c)));
  CHECK(wrong == 0);
  CHECK(store.bytes() == static_cast<size_t>(150 * cols + 2 * 3 * 4 + rows * cols + 3 * 3 * 4 + 150 * cols * 2));
}

}  // namespace
}  // namespace rampart::test
