// A shard slower than its peers: the sharded backend averages each shard's answer time per expert, marks a shard
// that lags its peers' median by the configured factor as slow, sends the pairs its replicas can serve to them
// (the experts only it holds still go to it), and measures it afresh when the hold ends. Driven by a scripted
// transport whose answers carry chosen latencies; the combined outputs are checked by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include "shards/sharded_expert_backend.hpp"

namespace rampart::model {
namespace {

constexpr int D = 4;  // hidden width

// Answers every batch at once: expert e's output for any row is e + 1 in every component; the reported latency
// is the shard's latency per expert times the distinct experts of its batch.
class scripted_transport final : public shard_transport {
 public:
  explicit scripted_transport(int n) : items(static_cast<size_t>(n), 0), unit_us(static_cast<size_t>(n), 300) {}
  int size() const override { return static_cast<int>(items.size()); }
  std::string name(int shard) const override { return "scripted shard " + std::to_string(shard); }
  void exchange(std::vector<shard_call>& calls, std::chrono::steady_clock::time_point) override {
    for (shard_call& c : calls) {
      shard_batch& b = *c.batch;
      items[static_cast<size_t>(c.shard)] += b.n_items;
      for (int32_t i = 0; i < b.n_items; ++i)
        std::fill_n(&b.out[static_cast<size_t>(i) * D], D, static_cast<float>(b.item_expert[static_cast<size_t>(i)] + 1));
      std::vector<int32_t> experts(b.item_expert.begin(), b.item_expert.begin() + b.n_items);
      std::sort(experts.begin(), experts.end());
      const auto distinct = std::unique(experts.begin(), experts.end()) - experts.begin();
      c.ok = true;
      c.latency = std::chrono::microseconds(unit_us[static_cast<size_t>(c.shard)] * distinct);
    }
  }
  std::shared_ptr<warm_state> warm(int, const std::vector<int32_t>&) override {
    return std::make_shared<warm_state>(1);
  }
  std::vector<int64_t> items;    // per shard, items received
  std::vector<int64_t> unit_us;  // per shard, the latency it reports per expert
};

// One MoE call over 8 rows, each routed to experts (r % 4, (r + 2) % 4) with weights 0.75 and 0.25; checks the
// combined rows against the hand-computed 0.75 (e0 + 1) + 0.25 (e1 + 1).
void run_call(sharded_expert_backend& b, int layer) {
  const int n = 8, k = 2;
  std::vector<float> rows(static_cast<size_t>(n) * D, 1.0f), out(static_cast<size_t>(n) * D, -1.0f);
  std::vector<int32_t> ids;
  std::vector<float> w;
  for (int r = 0; r < n; ++r) {
    ids.insert(ids.end(), {r % 4, (r + 2) % 4});
    w.insert(w.end(), {0.75f, 0.25f});
  }
  b.run(layer, rows.data(), n, D, ids.data(), w.data(), k, out.data());
  for (int r = 0; r < n; ++r) CHECK(out[static_cast<size_t>(r) * D] == 0.75f * (r % 4 + 1) + 0.25f * ((r + 2) % 4 + 1));
}

}  // namespace

TEST_CASE("a shard that lags its peers is marked slow, its replicas take its work, and it is measured afresh later",
          "[shards][slow]") {
  // Expert 0 on shard 0 only, expert 1 on shard 1 only, experts 2 and 3 on both.
  expert_placement p;
  std::string err;
  REQUIRE(expert_placement::from_owners({{0}, {1}, {1, 0}, {1, 0}}, 2, &p, &err));
  auto t = std::make_shared<scripted_transport>(2);
  sharded_options o;
  o.slow_factor = 4;
  o.slow_hold = std::chrono::milliseconds(200);
  sharded_expert_backend b(t, p, o);

  // Alike: nobody is slow, and the replicated experts alternate between the shards.
  for (int i = 0; i < 10; ++i) run_call(b, i % 3);
  CHECK(b.costs().slow_marks == 0);
  CHECK_FALSE(b.slow(1));
  CHECK(t->items[1] > 40);  // expert 1's 40 pairs, and some of experts 2 and 3

  // Shard 1 now answers 20 times slower per expert: marked after its next answer, it keeps only expert 1's pairs.
  t->unit_us[1] = 6000;
  run_call(b, 0);
  CHECK(b.costs().slow_marks == 1);
  CHECK(b.slow(1));
  const int64_t before = t->items[1];
  for (int i = 0; i < 10; ++i) run_call(b, i % 3);
  CHECK(t->items[1] - before == 10 * 4);  // per call, rows 1 and 5 route expert 1 first, rows 3 and 7 second
  CHECK(b.costs().slow_avoided > 0);
  CHECK_FALSE(b.slow(0));

  // The hold ends and shard 1 is healthy again: measured afresh, it takes replicated pairs again.
  t->unit_us[1] = 300;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK_FALSE(b.slow(1));
  const int64_t after = t->items[1];
  for (int i = 0; i < 10; ++i) run_call(b, i % 3);
  CHECK(t->items[1] - after > 10 * 4);
  CHECK(b.costs().slow_marks == 1);
}

TEST_CASE("a shard is never marked slow below the floor, with the factor 0, or without measured peers",
          "[shards][slow]") {
  expert_placement p;
  std::string err;
  REQUIRE(expert_placement::from_owners({{0}, {1}, {1, 0}, {1, 0}}, 2, &p, &err));
  for (const auto& [factor, slow_us, fast_us] :
       {std::tuple{4.0, int64_t{150}, int64_t{10}}, std::tuple{0.0, int64_t{9000}, int64_t{300}}}) {
    auto t = std::make_shared<scripted_transport>(2);
    sharded_options o;
    o.slow_factor = factor;
    sharded_expert_backend b(t, p, o);
    t->unit_us = {fast_us, slow_us};
    for (int i = 0; i < 10; ++i) run_call(b, i % 3);
    INFO("factor " << factor << ", " << slow_us << " us per expert against " << fast_us);
    CHECK(b.costs().slow_marks == 0);
    CHECK_FALSE(b.slow(1));
  }
  // One shard alone has no peers to lag behind.
  expert_placement one;
  REQUIRE(expert_placement::from_owners({{0}, {0}, {0}, {0}}, 1, &one, &err));
  auto t = std::make_shared<scripted_transport>(1);
  t->unit_us = {50000};
  sharded_expert_backend b(t, one, sharded_options{});
  for (int i = 0; i < 5; ++i) run_call(b, i % 3);
  CHECK(b.costs().slow_marks == 0);
}

}  // namespace rampart::model

namespace rampart::model {

TEST_CASE("a shard with many experts and few rows is not slow, nor is one judged on its first answers",
          "[shards][slow]") {
  // Shard 0 serves expert 0 for five rows, shard 1 experts 1, 2 and 3 for one row each; both take 3 ms per expert.
  // Per item shard 1 would look 5 times slower (9 ms / 3 items against 3 ms / 5 items); per expert they are alike.
  expert_placement p;
  std::string err;
  REQUIRE(expert_placement::from_owners({{0}, {1}, {1}, {1}}, 2, &p, &err));
  auto t = std::make_shared<scripted_transport>(2);
  t->unit_us = {3000, 3000};
  sharded_expert_backend b(t, p, sharded_options{});
  std::vector<float> rows(8 * D, 1.0f), out(8 * D), w(8, 1.0f);
  const std::vector<int32_t> ids = {0, 0, 0, 0, 0, 1, 2, 3};
  for (int i = 0; i < 20; ++i) b.run(i % 3, rows.data(), 8, D, ids.data(), w.data(), 1, out.data());
  CHECK(out[5 * D] == 2.0f);  // row 5: expert 1's output, 1 + 1
  CHECK(b.costs().slow_marks == 0);

  // Seven answers 50 times slower from the start: too few to judge anyone; the eighth is enough.
  expert_placement replicated;
  REQUIRE(expert_placement::from_owners({{0}, {1, 0}, {1, 0}, {1, 0}}, 2, &replicated, &err));
  auto t2 = std::make_shared<scripted_transport>(2);
  t2->unit_us = {300, 15000};
  sharded_expert_backend b2(t2, replicated, sharded_options{});
  for (int i = 0; i < 7; ++i) run_call(b2, i % 3);
  CHECK(b2.costs().slow_marks == 0);
  run_call(b2, 0);
  CHECK(b2.costs().slow_marks == 1);
}

}  // namespace rampart::model
