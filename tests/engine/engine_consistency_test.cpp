// The same tokens give the same logits however they are fed: whole-prompt prefill, chunked prefill at any
// offset, one token at a time, alone or inside a batch of other sequences.
#include <atomic>
#include <set>
#include <thread>

#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

// A deterministic prompt of N ids spread over the vocabulary.
std::vector<int32_t> make_prompt(int64_t n, int64_t salt, int64_t vocab) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>((i * 7919 + salt * 104729 + 13) % vocab);
  return p;
}

void check_feeding_orders(const std::string& name) {
  auto e = make_engine(name);
  const int64_t V = e->config().vocab_size;
  const std::vector<int32_t> tokens = make_prompt(150, 1, V);
  const std::vector<float> whole = feed(*e, tokens, 0);
  for (int64_t chunk : {1, 3, 64}) {
    INFO(name << ": chunks of " << chunk);
    const std::vector<float> chunked = feed(*e, tokens, chunk);
    CHECK(max_abs_diff(whole.data(), chunked.data(), static_cast<int64_t>(whole.size())) <= 1e-5f);
  }
}

TEST_CASE("whole-prompt prefill, chunked prefill (1, 3, 64) and one-token decode agree", "[engine]") {
  check_feeding_orders("v3-bf16");
  check_feeding_orders("v3-fp8");
  check_feeding_orders("v2lite-bf16");
}

TEST_CASE("a step longer than max_step_tokens runs in slices with the same logits", "[engine]") {
  model::engine_options sliced;
  sliced.max_step_tokens = 7;
  auto a = make_engine("v3-fp8");
  auto b = make_engine("v3-fp8", sliced);
  const std::vector<int32_t> tokens = make_prompt(40, 2, 1000);
  const std::vector<float> whole = feed(*a, tokens, 0);
  const std::vector<float> in_slices = feed(*b, tokens, 0);
  CHECK(whole == in_slices);  // bitwise
  model::step_output out;
  std::string err;
  CHECK(b->step({}, &out, &err));  // an empty step is a no-op
  CHECK(out.logits.empty());
}

// Runs prompt 0 alone and then inside a batch with 7 other prompts of other lengths: batched prefill in one
// step, then greedy decode steps of all 8 sequences together. Prompt 0's logits must be bitwise identical.
void check_batch_invariance(const std::string& name) {
  auto e = make_engine(name);
  const int64_t V = e->config().vocab_size;
  constexpr int batch = 8, decode_steps = 6;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < batch; ++i) prompts.push_back(make_prompt(5 + 9 * i, i + 3, V));
  std::string err;
  model::step_output out;

  auto run = [&](int n_seqs) {
    std::vector<std::vector<float>> logits0;  // prompt 0's last-position logits after each step
    std::vector<std::vector<int32_t>> next(static_cast<size_t>(n_seqs), std::vector<int32_t>(1));
    std::vector<model::kv_sequence> seqs(static_cast<size_t>(n_seqs));
    std::vector<model::seq_input> in;
    for (int i = 0; i < n_seqs; ++i) {
      REQUIRE(e->start(&seqs[i], nullptr, 0, &err) == 0);
      in.push_back({&seqs[i], prompts[i].data(), static_cast<int64_t>(prompts[i].size()), false});
    }
    for (int s = 0; s <= decode_steps; ++s) {
      INFO(err);
      REQUIRE(e->step(in, &out, &err));
      logits0.emplace_back(out.row(0), out.row(0) + V);
      for (int i = 0; i < n_seqs; ++i) {
        next[i][0] = argmax(out.row(static_cast<size_t>(i)), V);
        in[i] = {&seqs[i], next[i].data(), 1, false};
      }
    }
    for (model::kv_sequence& s : seqs) e->release(&s);
    return logits0;
  };
  const auto alone = run(1);
  const auto batched = run(batch);
  REQUIRE(alone.size() == batched.size());
  for (size_t s = 0; s < alone.size(); ++s) {
    INFO(name << ": step " << s);
    CHECK(argmax(alone[s].data(), V) == argmax(batched[s].data(), V));
    CHECK(alone[s] == batched[s]);  // bitwise
  }
}

TEST_CASE("a prompt alone and inside a batch of 8 gives bitwise-identical logits and tokens", "[engine]") {
  check_batch_invariance("v3-bf16");
  check_batch_invariance("v3-fp8");
  check_batch_invariance("v2lite-bf16");
}

TEST_CASE("engine::parallel runs every index once, on the calling thread below 8 and on all threads from 8",
          "[engine]") {
  model::engine_options two;
  two.threads = 2;
  auto e = make_engine("v3-bf16", two);
  for (int64_t n : {0, 1, 7, 8, 100}) {
    INFO("n " << n);
    std::vector<std::atomic<int>> calls(static_cast<size_t>(n));
    std::vector<std::thread::id> who(static_cast<size_t>(n));
    e->parallel(n, [&](int64_t i) {
      calls[static_cast<size_t>(i)].fetch_add(1);
      who[static_cast<size_t>(i)] = std::this_thread::get_id();
    });
    bool once = true;
    for (const auto& c : calls) once = once && c.load() == 1;
    CHECK(once);
    std::set<std::thread::id> threads(who.begin(), who.end());
    if (n > 0 && n < 8) CHECK(threads == std::set<std::thread::id>{std::this_thread::get_id()});
    if (n >= 8) CHECK(threads.size() == 2);
  }
}

TEST_CASE("profiling times every phase of each step and leaves the logits unchanged", "[engine]") {
  model::engine_options profiled;
  profiled.profile = true;
  auto plain = make_engine("v3-bf16");
  auto timed = make_engine("v3-bf16", profiled);
  const std::vector<int32_t> tokens = make_prompt(40, 4, plain->config().vocab_size);
  CHECK(feed(*plain, tokens, 5) == feed(*timed, tokens, 5));  // bitwise

  // The fixture has a dense layer 0 and MoE layers with a shared expert: every phase ran in each of the
  // 40 / 5 = 8 steps.
  const model::step_profile& p = timed->profile();
  CHECK(p.steps == 8);
  CHECK(p.tokens == 40);
  double sum = 0;
  for (size_t i = 0; i < model::step_phase_count; ++i) {
    INFO(model::step_phase_name(static_cast<model::step_phase>(i)));
    CHECK(p.seconds[i] >= 0);
    if (static_cast<model::step_phase>(i) != model::step_phase::other) CHECK(p.seconds[i] > 0);
    sum += p.seconds[i];
  }
  CHECK(p.step_seconds > 0);
  CHECK(sum == Approx(p.step_seconds).epsilon(1e-9));
  CHECK(plain->profile().steps == 0);
  CHECK(plain->profile().step_seconds == 0);

  // A refused step adds nothing; reset_profile starts over.
  const int32_t bad = static_cast<int32_t>(timed->config().vocab_size);
  model::step_output out;
  std::string err;
  model::kv_sequence s;
  REQUIRE(timed->start(&s, nullptr, 0, &err) == 0);
  CHECK_FALSE(timed->step({{&s, &bad, 1, false}}, &out, &err));
  CHECK(err.find("outside the vocabulary") != std::string::npos);
  CHECK(timed->profile().steps == 8);
  timed->reset_profile();
  CHECK(timed->profile().steps == 0);
  CHECK(timed->profile().seconds[static_cast<size_t>(model::step_phase::lm_head)] == 0);
}

}  // namespace
}  // namespace rampart::test
