// Continuous batching on the real engine over the tiny v3-bf16 fixture.
#include <catch2/catch.hpp>

#include <map>

#include "engine/scheduler.hpp"

using namespace rampart::model;

namespace {

std::shared_ptr<const checkpoint> fixture() {
  static std::shared_ptr<const checkpoint> ck = [] {
    load_error err;
    std::shared_ptr<const checkpoint> c = checkpoint::open(std::string(RAMPART_BIN_DIR) + "/../test-models/v3-bf16", &err);
    INFO(err.message);
    REQUIRE(c);
    return c;
  }();
  return ck;
}

std::unique_ptr<engine> make_engine(int64_t kv_tokens) {
  engine_options o;
  o.threads = 1;
  o.kv_block_tokens = 16;
  o.kv_cache_tokens = kv_tokens;
  std::string err;
  auto e = engine::create(fixture(), o, &err);
  INFO(err);
  REQUIRE(e);
  return e;
}

sequence_request make_request(uint64_t id, int64_t prompt_len, int64_t max_tokens, int priority = 2,
                              std::string client = "c") {
  sequence_request r;
  r.id = id;
  r.priority = priority;
  r.client = std::move(client);
  for (int64_t i = 0; i < prompt_len; ++i) r.prompt.push_back(static_cast<int32_t>((id * 131 + i * 17) % 997 + 2));
  r.max_tokens = max_tokens;
  return r;
}

struct run_log {
  std::map<uint64_t, std::vector<int32_t>> tokens;
  std::map<uint64_t, finished_sequence> finished;
  std::vector<uint64_t> finish_order;
  std::vector<step_report> steps;
};

run_log run_to_completion(batch_scheduler& s, int max_steps = 10000) {
  run_log log;
  for (int i = 0; i < max_steps && s.has_work(); ++i) {
    step_report r;
    s.step(&r);
    for (const auto& t : r.tokens) log.tokens[t.id].push_back(t.token);
    for (const auto& f : r.finished) {
      log.finished[f.id] = f;
      log.finish_order.push_back(f.id);
    }
    log.steps.push_back(std::move(r));
  }
  return log;
}

// Greedy tokens of one request run alone with a roomy cache: the reference for batched runs.
std::vector<int32_t> alone(const sequence_request& req) {
  auto e = make_engine(4096);
  batch_scheduler s(e.get(), {});
  std::string err;
  REQUIRE(s.add(req).code == batch_scheduler::add_result::queued);
  return run_to_completion(s).tokens[req.id];
}

}  // namespace

TEST_CASE("batched sequences produce the tokens each produces alone", "[scheduler]") {
  auto e = make_engine(4096);
  batch_scheduler s(e.get(), {});
  std::vector<sequence_request> reqs;
  for (uint64_t id = 1; id <= 5; ++id) reqs.push_back(make_request(id, 5 + 7 * static_cast<int64_t>(id), 8));
  for (const auto& r : reqs) REQUIRE(s.add(r).code == batch_scheduler::add_result::queued);
  auto log = run_to_completion(s);
  for (const auto& r : reqs) {
    CHECK(log.finished[r.id].reason == finish_reason::length);
    CHECK(log.finished[r.id].completion_tokens == 8);
    CHECK(log.tokens[r.id] == alone(r));
  }
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("a long prompt is prefilled in chunks within the step budget while others keep decoding", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_step_tokens = 8;
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(1, 4, 40)).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);  // prompt of 4 fits one step: the first token comes out
  REQUIRE(r.tokens.size() == 1);
  REQUIRE(s.add(make_request(2, 100, 4)).code == batch_scheduler::add_result::queued);
  int steps_with_prefill = 0;
  for (int i = 0; i < 20; ++i) {
    s.step(&r);
    CHECK(r.prefill_tokens + r.decode_tokens <= 8);
    bool one_decoded = false;
    for (const auto& t : r.tokens) one_decoded |= t.id == 1;
    CHECK(one_decoded);  // the running stream is never stalled by the long prompt
    if (r.prefill_tokens > 0) ++steps_with_prefill;
  }
  CHECK(steps_with_prefill >= 100 / 7);
}

TEST_CASE("admission waits for free KV blocks and never over-commits", "[scheduler]") {
  auto e = make_engine(64);  // 4 blocks
  batch_scheduler s(e.get(), {});
  for (uint64_t id = 1; id <= 3; ++id) {
    REQUIRE(s.add(make_request(id, 40, 8)).code == batch_scheduler::add_result::queued);
  }
  step_report r;
  s.step(&r);
  CHECK(s.stats().running == 1);  // 40 prompt tokens take 3 of the 4 blocks
  auto log = run_to_completion(s);
  for (uint64_t id = 1; id <= 3; ++id) CHECK(log.finished[id].reason == finish_reason::length);
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("running out of blocks preempts by recompute without changing the tokens", "[scheduler]") {
  auto e = make_engine(96);  // 6 blocks
  batch_scheduler s(e.get(), {});
  auto a = make_request(1, 20, 50), b = make_request(2, 20, 50);
  REQUIRE(s.add(a).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(b).code == batch_scheduler::add_result::queued);
  auto log = run_to_completion(s);
  CHECK(s.stats().preemptions > 0);
  CHECK(log.finished[1].reason == finish_reason::length);
  CHECK(log.finished[2].reason == finish_reason::length);
  CHECK(log.tokens[1] == alone(a));
  CHECK(log.tokens[2] == alone(b));
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("a higher class preempts a lower one when the cache is full", "[scheduler]") {
  auto e = make_engine(64);  // 4 blocks
  batch_scheduler s(e.get(), {});
  REQUIRE(s.add(make_request(1, 40, 20, /*priority=*/3)).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);
  REQUIRE(s.stats().running == 1);
  REQUIRE(s.add(make_request(2, 40, 4, /*priority=*/0)).code == batch_scheduler::add_result::queued);
  auto log = run_to_completion(s);
  REQUIRE(log.finish_order.size() == 2);
  CHECK(log.finish_order[0] == 2);
  CHECK(s.stats().preemptions >= 1);
  CHECK(log.finished[1].reason == finish_reason::length);
}

TEST_CASE("with every slot taken by a lower class, a higher class starts in the next step", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 2;
  batch_scheduler s(e.get(), o);
  auto low_a = make_request(1, 8, 30, /*priority=*/3, "anon-a");
  auto low_b = make_request(2, 8, 30, /*priority=*/3, "anon-b");
  auto high = make_request(3, 8, 5, /*priority=*/0, "tenant");
  REQUIRE(s.add(low_a).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(low_b).code == batch_scheduler::add_result::queued);
  std::map<uint64_t, std::vector<int32_t>> tokens;
  step_report r;
  s.step(&r);
  for (const auto& t : r.tokens) tokens[t.id].push_back(t.token);
  REQUIRE(s.stats().running == 2);
  REQUIRE(s.add(high).code == batch_scheduler::add_result::queued);
  s.step(&r);
  std::vector<uint64_t> got;
  for (const auto& t : r.tokens) {
    got.push_back(t.id);
    tokens[t.id].push_back(t.token);
  }
  std::sort(got.begin(), got.end());
  // The critical sequence ran in this step (its prompt fits the step budget: its first token is out) beside one
  // of the sheddable ones; the most recently admitted sheddable one (2) gave way.
  CHECK(got == std::vector<uint64_t>{1, 3});
  CHECK(s.stats().preemptions == 1);
  CHECK(s.stats().running == 2);
  // Everyone still finishes, with the tokens each produces alone (recompute changes nothing).
  auto log = run_to_completion(s);
  for (const auto& [id, more] : log.tokens) tokens[id].insert(tokens[id].end(), more.begin(), more.end());
  CHECK(tokens[1] == alone(low_a));
  CHECK(tokens[2] == alone(low_b));
  CHECK(tokens[3] == alone(high));
  CHECK(log.finished[2].reason == finish_reason::length);
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("a full batch of one class is not preempted by the same class", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 1;
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(1, 8, 10, 2)).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);
  REQUIRE(s.add(make_request(2, 8, 10, 2)).code == batch_scheduler::add_result::queued);
  s.step(&r);
  REQUIRE(r.tokens.size() == 1);
  CHECK(r.tokens[0].id == 1);
  CHECK(s.stats().preemptions == 0);
}

TEST_CASE("within a class the client with fewer running sequences goes first", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 2;
  batch_scheduler s(e.get(), o);
  for (uint64_t id = 1; id <= 4; ++id) {
    REQUIRE(s.add(make_request(id, 8, 30, 2, "busy")).code == batch_scheduler::add_result::queued);
  }
  REQUIRE(s.add(make_request(9, 8, 2, 2, "quiet")).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);
  std::vector<uint64_t> got;
  for (const auto& t : r.tokens) got.push_back(t.id);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<uint64_t>{1, 9});  // not 1 and 2
}

TEST_CASE("the waiting queue is bounded and refusals name the reason", "[scheduler]") {
  auto e = make_engine(128);
  scheduler_options o;
  o.max_waiting = 2;
  batch_scheduler s(e.get(), o);
  CHECK(s.add(make_request(1, 8, 4)).code == batch_scheduler::add_result::queued);
  CHECK(s.add(make_request(2, 8, 4)).code == batch_scheduler::add_result::queued);
  CHECK(s.add(make_request(3, 8, 4)).code == batch_scheduler::add_result::queue_full);
  CHECK(s.add(make_request(4, 100, 100)).code == batch_scheduler::add_result::too_long);  // 200 > 128 tokens
  CHECK(s.add(make_request(1, 8, 4)).code == batch_scheduler::add_result::bad_request);  // id in use
  auto bad = make_request(5, 8, 4);
  bad.prompt[0] = 1000;  // the fixture's vocabulary is 1000
  CHECK(s.add(bad).code == batch_scheduler::add_result::bad_request);
}

TEST_CASE("cancelling waiting and running sequences frees their blocks", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 1;
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(1, 30, 100)).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(make_request(2, 30, 100)).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);
  s.step(&r);
  CHECK(s.cancel(1));
  CHECK(s.cancel(2));
  CHECK_FALSE(s.cancel(77));
  s.step(&r);
  REQUIRE(r.finished.size() == 2);
  for (const auto& f : r.finished) CHECK(f.reason == finish_reason::cancelled);
  CHECK_FALSE(s.has_work());
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("an EOS token ends a sequence with reason stop", "[scheduler]") {
  auto e = make_engine(4096);
  auto req = make_request(1, 6, 12);
  auto reference = alone(req);
  REQUIRE(reference.size() == 12);
  batch_scheduler s(e.get(), {});
  req.eos_ids = {reference[3]};
  REQUIRE(s.add(req).code == batch_scheduler::add_result::queued);
  auto log = run_to_completion(s);
  auto first = std::find(reference.begin(), reference.end(), reference[3]) - reference.begin();
  CHECK(log.finished[1].reason == finish_reason::stop);
  CHECK(log.tokens[1].size() == static_cast<size_t>(first + 1));
}

TEST_CASE("requests that wait past their class's deadline expire and admitted ones never do", "[scheduler]") {
  auto e = make_engine(64);  // 4 blocks: one 40-token sequence at a time
  batch_scheduler s(e.get(), {});
  auto running = make_request(1, 40, 20, 2);
  running.arrival_ms = 0;
  REQUIRE(s.add(running).code == batch_scheduler::add_result::queued);
  step_report r;
  s.step(&r);  // admits sequence 1
  auto normal = make_request(2, 40, 4, 2), sheddable = make_request(3, 40, 4, 3);
  normal.arrival_ms = 100;
  sheddable.arrival_ms = 100;
  REQUIRE(s.add(normal).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(sheddable).code == batch_scheduler::add_result::queued);
  // Deadlines: normal 1000 ms, sheddable 300 ms. At t = 450 only the sheddable one has waited too long.
  auto expired = s.expire_waiting(450, {0, 0, 1000, 300});
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].id == 3);
  CHECK(expired[0].reason == finish_reason::expired);
  CHECK(s.expire_waiting(1000, {0, 0, 1000, 300}).empty());  // 900 ms waited: not past 1000
  expired = s.expire_waiting(1101, {0, 0, 1000, 300});
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].id == 2);
  CHECK(s.expire_waiting(1000000, {1, 1, 1, 1}).empty());  // sequence 1 runs: never expired
  run_to_completion(s);
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

namespace {
sequence_request budgeted_request(uint64_t id, int64_t prompt_len, int64_t max_tokens, std::string client) {
  auto r = make_request(id, prompt_len, max_tokens, /*priority=*/2, std::move(client));
  r.budgeted = true;
  return r;
}
}  // namespace

TEST_CASE("with the batch full of budgeted work, a registered request of the same class starts within one step",
          "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 4;
  o.budget = {1.0, 1.0};  // budgeted work may hold every slot while nothing else runs
  batch_scheduler s(e.get(), o);
  std::vector<sequence_request> anon;
  for (uint64_t id = 1; id <= 4; ++id) {
    anon.push_back(budgeted_request(id, 8, 20, "a10.0.0." + std::to_string(id)));
    REQUIRE(s.add(anon.back()).code == batch_scheduler::add_result::queued);
  }
  std::map<uint64_t, std::vector<int32_t>> tokens;
  step_report r;
  s.step(&r);
  for (const auto& t : r.tokens) tokens[t.id].push_back(t.token);
  REQUIRE(s.stats().running == 4);
  REQUIRE(s.stats().budgeted_running == 4);
  const auto registered = make_request(9, 8, 5, /*priority=*/2, "t1");
  REQUIRE(s.add(registered).code == batch_scheduler::add_result::queued);
  s.step(&r);
  bool started = false;
  for (const auto& t : r.tokens) {
    started |= t.id == 9;
    tokens[t.id].push_back(t.token);
  }
  CHECK(started);  // its 8-token prompt fits the step: its first token is out in this very step
  CHECK(s.stats().preemptions == 1);
  CHECK(s.stats().budgeted_running == 3);
  auto log = run_to_completion(s);
  for (const auto& [id, more] : log.tokens) tokens[id].insert(tokens[id].end(), more.begin(), more.end());
  for (const auto& a : anon) CHECK(tokens[a.id] == alone(a));  // the preempted one recomputed to the same text
  CHECK(tokens[9] == alone(registered));
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

TEST_CASE("budgeted work holds at most its share of the batch slots, and other work takes the rest", "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 8;
  o.budget = {0.25, 1.0};  // floor(0.25 * 8) = 2 slots
  batch_scheduler s(e.get(), o);
  for (uint64_t id = 1; id <= 6; ++id) {
    REQUIRE(s.add(budgeted_request(id, 4, 50, "a")).code == batch_scheduler::add_result::queued);
  }
  step_report r;
  s.step(&r);
  CHECK(s.stats().running == 2);
  CHECK(s.stats().budgeted_running == 2);
  CHECK(s.stats().budgeted_waiting == 4);
  for (uint64_t id = 11; id <= 16; ++id) {
    REQUIRE(s.add(make_request(id, 4, 50, 2, "t" + std::to_string(id))).code ==
            batch_scheduler::add_result::queued);
  }
  s.step(&r);
  CHECK(s.stats().running == 8);  // six registered beside the two budgeted: nobody preempted
  CHECK(s.stats().budgeted_running == 2);
  CHECK(s.stats().preemptions == 0);
  // A share of zero admits no budgeted work at all (they wait, and expire by their class's deadline).
  s.set_budget({0.0, 0.0});
  for (uint64_t id = 11; id <= 16; ++id) s.cancel(id);
  s.step(&r);
  s.step(&r);
  CHECK(s.stats().budgeted_running == 2);  // already running: kept (the policy ends them by cancelling)
  CHECK(s.stats().budgeted_waiting == 4);
}

TEST_CASE("while other work runs, budgeted work gets its step share of tokens and its sequences take turns",
          "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 16;
  o.budget = {1.0, 0.5};  // half the step: as many budgeted tokens as other tokens, 1:1
  batch_scheduler s(e.get(), o);
  // One-token prompts: every token fed to a sequence samples one, so tokens fed = tokens generated.
  std::vector<sequence_request> anon;
  for (uint64_t id = 1; id <= 4; ++id) {  // four registered streams
    REQUIRE(s.add(make_request(100 + id, 1, 200, 2, "t" + std::to_string(id))).code ==
            batch_scheduler::add_result::queued);
  }
  for (uint64_t id = 1; id <= 8; ++id) {
    anon.push_back(budgeted_request(id, 1, 200, "a" + std::to_string(id)));
    REQUIRE(s.add(anon.back()).code == batch_scheduler::add_result::queued);
  }
  std::map<uint64_t, int> count;
  std::map<uint64_t, std::vector<int32_t>> tokens;
  for (int i = 0; i < 20; ++i) {
    step_report r;
    s.step(&r);
    int other = 0, budgeted = 0;
    for (const auto& t : r.tokens) {
      ++count[t.id];
      tokens[t.id].push_back(t.token);
      (t.id > 100 ? other : budgeted)++;
    }
    CHECK(other == 4);
    CHECK(budgeted == 4);  // 4 other tokens earn 4 * 0.5 / (1 - 0.5) = 4 budgeted tokens
  }
  for (uint64_t id = 1; id <= 8; ++id) CHECK(count[id] == 10);  // 8 sequences, 4 turns a step: every other step
  for (uint64_t id = 101; id <= 104; ++id) CHECK(count[id] == 20);
  // Skipped steps change nothing in what a sequence generates.
  auto a1 = anon[0];
  a1.max_tokens = 10;
  CHECK(tokens[1] == alone(a1));
  // A smaller share: 4 other tokens a step earn 4 * 0.2 / 0.8 = 1 budgeted token a step (the fraction that floating
  // point leaves is carried, so over 40 steps at most one token is lost or gained).
  s.set_budget({1.0, 0.2});
  int budgeted = 0;
  for (int i = 0; i < 40; ++i) {
    step_report r;
    s.step(&r);
    for (const auto& t : r.tokens) budgeted += t.id < 100;
  }
  CHECK(budgeted >= 39);
  CHECK(budgeted <= 41);
  // With the other work gone, budgeted work stays rationed at the last step's earning (one sequence, one
  // token) until it has run budget_guard_s (0.1 s) alone; then it takes the whole step: all 8 move every step.
  for (uint64_t id = 101; id <= 104; ++id) s.cancel(id);
  double alone_s = 0;
  int guarded_steps = 0;
  step_report r;
  for (;;) {
    s.step(&r);
    if (r.tokens.size() == 8) break;
    CHECK(r.tokens.size() >= 1);
    CHECK(r.tokens.size() <= 2);  // a carried fraction may add one
    alone_s += r.step_seconds;
    REQUIRE(++guarded_steps < 100000);
  }
  CHECK(guarded_steps >= 1);
  CHECK(alone_s >= o.budget_guard_s);
  s.step(&r);
  CHECK(r.tokens.size() == 8);
}

TEST_CASE("between two registered requests, budgeted work alone still gets short steps, and the next request "
          "starts in the next one", "[scheduler]") {
  // Registered clients in a closed loop leave the batch together and come back a round trip later. A whole
  // step of budgeted work begun in that gap would hold their next requests back by its length.
  auto run_gap = [](double guard_s) {
    auto e = make_engine(4096);
    scheduler_options o;
    o.max_running = 16;
    o.budget = {1.0, 0.2};
    o.budget_guard_s = guard_s;
    batch_scheduler s(e.get(), o);
    REQUIRE(s.add(make_request(101, 4, 3, 2, "t1")).code == batch_scheduler::add_result::queued);
    REQUIRE(s.add(make_request(102, 4, 3, 2, "t2")).code == batch_scheduler::add_result::queued);
    for (uint64_t id = 1; id <= 8; ++id) {
      REQUIRE(s.add(budgeted_request(id, 1, 100, "a" + std::to_string(id))).code ==
              batch_scheduler::add_result::queued);
    }
    int registered_left = 2;
    for (int i = 0; i < 100 && registered_left > 0; ++i) {
      step_report r;
      s.step(&r);
      for (const auto& f : r.finished) registered_left -= f.id > 100;
    }
    REQUIRE(registered_left == 0);
    std::vector<size_t> budgeted_per_step;  // the gap: budgeted work alone
    for (int i = 0; i < 3; ++i) {
      step_report r;
      s.step(&r);
      budgeted_per_step.push_back(r.tokens.size());
    }
    REQUIRE(s.add(make_request(103, 4, 3, 2, "t1")).code == batch_scheduler::add_result::queued);
    step_report next;
    s.step(&next);
    bool started = false;
    for (const auto& t : next.tokens) started |= t.id == 103;
    CHECK(started);  // its 4-token prompt fits the step: its first token is out
    return budgeted_per_step;
  };
  // Guarded (the gap is far shorter than 10 s): two registered sequences earned half a budgeted sequence a
  // step; alone, budgeted work moves one sequence a step (the least that moves anything), not eight.
  for (size_t n : run_gap(10.0)) CHECK(n == 1);
  // Unguarded: budgeted work alone takes the whole step at once.
  for (size_t n : run_gap(0.0)) CHECK(n == 8);
}

TEST_CASE("budgeted work's sequences per step are rationed like its tokens: a registered prefill earns tokens, "
          "not sequences", "[scheduler]") {
  // A sequence costs a step more than its tokens (its attention, a row of logits when it yields a token): a
  // prefill of 128 registered tokens must not let eight budgeted sequences into the next step beside two.
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 16;
  o.budget = {1.0, 0.2};  // each other token earns 0.25 budgeted tokens, each other sequence 0.25 sequences
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(101, 64, 50, 2, "t1")).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(make_request(102, 64, 50, 2, "t2")).code == batch_scheduler::add_result::queued);
  for (uint64_t id = 1; id <= 8; ++id) {  // one-token prompts: each step a budgeted sequence moves, it yields a token
    REQUIRE(s.add(budgeted_request(id, 1, 50, "a" + std::to_string(id))).code == batch_scheduler::add_result::queued);
  }
  std::vector<int> budgeted_per_step;
  for (int i = 0; i < 10; ++i) {
    step_report r;
    s.step(&r);
    int n = 0;
    for (const auto& t : r.tokens) n += t.id < 100;
    budgeted_per_step.push_back(n);
  }
  // Step 1 prefills 128 tokens (32 budgeted tokens earned) but two sequences (0.5 of a sequence): none moves.
  CHECK(budgeted_per_step[0] == 0);
  // From then on the two registered sequences earn half a budgeted sequence a step: one every other step.
  int total = 0;
  for (int n : budgeted_per_step) {
    CHECK(n <= 1);
    total += n;
  }
  CHECK(total == 5);  // 10 steps x 2 sequences x 0.25
}

TEST_CASE("budgeted credit earned by a registered prefill is not saved for a later step of decodes", "[scheduler]") {
  // The 128 prefill tokens of step 1 earn 32 budgeted tokens; spent in a later step by one budgeted prompt,
  // they would make a step of two registered decodes 17 times as long. What carries over is at most one token
  // beyond a step's own earning (here 2 x 0.25).
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_running = 16;
  o.budget = {1.0, 0.2};
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(101, 64, 50, 2, "t1")).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(make_request(102, 64, 50, 2, "t2")).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(budgeted_request(1, 64, 4, "a1")).code == batch_scheduler::add_result::queued);
  step_report first;
  s.step(&first);
  CHECK(first.prefill_tokens == 128);  // the registered prompts only: half a budgeted sequence earned
  int64_t budgeted_prefill = 0;
  for (int i = 0; i < 9; ++i) {
    step_report r;
    s.step(&r);
    CHECK(r.decode_tokens >= 2);
    CHECK(r.prefill_tokens <= 1);  // floor(2 x 0.25 + 1) at most
    budgeted_prefill += r.prefill_tokens;
  }
  CHECK(budgeted_prefill >= 4);  // it still moves: about a token every other step
}

TEST_CASE("prefill tokens are split between clients, so one client's long prompts do not hold another's back",
          "[scheduler]") {
  auto e = make_engine(4096);
  scheduler_options o;
  o.max_step_tokens = 16;
  batch_scheduler s(e.get(), o);
  REQUIRE(s.add(make_request(1, 100, 2, 2, "tA")).code == batch_scheduler::add_result::queued);
  REQUIRE(s.add(make_request(2, 100, 2, 2, "tA")).code == batch_scheduler::add_result::queued);
  std::map<uint64_t, int> first_token_step;
  for (int i = 0; i < 60 && s.has_work(); ++i) {
    if (i == 2) {  // client A's two prompts are both running when client B's arrives
      REQUIRE(s.stats().running == 2);
      REQUIRE(s.add(make_request(3, 100, 2, 2, "tB")).code == batch_scheduler::add_result::queued);
    }
    step_report r;
    s.step(&r);
    CHECK(r.prefill_tokens + r.decode_tokens <= 16);
    for (const auto& t : r.tokens) first_token_step.emplace(t.id, i);
  }
  // From step 2 client B gets about half of each step (7 of the 13 tokens left after one token per sequence),
  // so its 100 tokens are in by step 2 + 15; client A's two prompts share the other half, the older first, so
  // A's second prompt finishes after B's (served oldest first, B would have come last, after step 20).
  REQUIRE(first_token_step.count(3));
  REQUIRE(first_token_step.count(2));
  CHECK(first_token_step[3] <= 17);
  CHECK(first_token_step[3] < first_token_step[2]);
}
