// Expert placement, load statistics and EPLB against hand calculations.
#include <catch2/catch.hpp>

#include "shards/eplb.hpp"
#include "shards/expert_placement.hpp"
#include "shards/expert_stats.hpp"

using namespace rampart::model;

TEST_CASE("a contiguous placement gives the first shards the remainder", "[shards][placement]") {
  expert_placement p;
  std::string err;
  REQUIRE(expert_placement::contiguous(10, 4, &p, &err));
  CHECK(p.experts_of(0) == std::vector<int>{0, 1, 2});
  CHECK(p.experts_of(1) == std::vector<int>{3, 4, 5});
  CHECK(p.experts_of(2) == std::vector<int>{6, 7});
  CHECK(p.experts_of(3) == std::vector<int>{8, 9});
  CHECK(p.describe() == "0:[0 1 2] 1:[3 4 5] 2:[6 7] 3:[8 9]");
  CHECK(p.replicas() == 0);
  CHECK_FALSE(expert_placement::contiguous(4, 5, &p, &err));
  CHECK(err.find("4 experts over 5 shards") != std::string::npos);
  CHECK_FALSE(expert_placement::contiguous(4, 0, &p, &err));
}

TEST_CASE("an explicit expert map is checked and replicas are added once per shard", "[shards][placement]") {
  expert_placement p;
  std::string err;
  REQUIRE(expert_placement::from_map({1, 0, 1, 0}, 2, &p, &err));
  CHECK(p.owners(0) == std::vector<int>{1});
  CHECK(p.experts_of(0) == std::vector<int>{1, 3});
  REQUIRE(p.add_replica(0, 0, &err));
  CHECK(p.owners(0) == std::vector<int>{1, 0});
  CHECK(p.replicas() == 1);
  CHECK_FALSE(p.add_replica(0, 1, &err));
  CHECK(err == "shard 1 already holds expert 0");
  CHECK_FALSE(p.add_replica(4, 0, &err));
  CHECK_FALSE(p.add_replica(0, 2, &err));

  CHECK_FALSE(expert_placement::from_map({0, 2}, 2, &p, &err));
  CHECK(err == "expert 1 is mapped to shard 2, outside [0, 2)");
  CHECK_FALSE(expert_placement::from_map({0, 0}, 2, &p, &err));
  CHECK(err == "shard 1 holds no expert");
  CHECK_FALSE(expert_placement::from_map({}, 2, &p, &err));
  CHECK_FALSE(expert_placement::from_owners({{0}, {}}, 1, &p, &err));
  CHECK(err == "expert 1 has no shard");
  CHECK_FALSE(expert_placement::from_owners({{0, 0}}, 1, &p, &err));
  CHECK(err == "expert 0 is on shard 0 twice");
}

TEST_CASE("load imbalance is the largest shard load over the mean", "[shards][stats]") {
  CHECK(load_imbalance({10, 10, 10, 10}) == Approx(1.0));
  CHECK(load_imbalance({40, 0, 0, 0}) == Approx(4.0));
  CHECK(load_imbalance({30, 10}) == Approx(1.5));
  CHECK(load_imbalance({0, 0}) == Approx(1.0));
  expert_stats s(4, 2);
  s.count(0, 0);
  s.count(0, 0);
  s.count(3, 1);
  s.end_step();
  CHECK(s.window().expert_tokens == std::vector<uint64_t>{2, 0, 0, 1});
  CHECK(s.window().shard_tokens == std::vector<uint64_t>{2, 1});
  const load_window w = s.take_window();
  CHECK(w.steps == 1);
  CHECK(s.window().steps == 0);
  CHECK(s.window().expert_tokens == std::vector<uint64_t>{0, 0, 0, 0});
  CHECK(s.expert_total(0) == 2);  // totals survive the window
  CHECK(s.shard_total(1) == 1);
}

TEST_CASE("EPLB replicates the hottest expert and packs copies onto the lightest shards", "[shards][eplb]") {
  // Loads 90 10 10 10 10 10 on 2 shards, 2 extra copies.
  // Replicas: 0 (90 -> 45 per copy), then 0 again? its per-copy 45 > 10 but it is on both shards after 1 replica,
  //   so the second replica also goes to expert 0 only if copies < shards: 2 copies == 2 shards -> expert 1 (10 -> 5).
  // Copies by load: e0 45, e0 45, e2 10, e3 10, e4 10, e5 10, e1 5, e1 5; capacity ceil(8/2) = 4.
  // Packing (least loaded, lower id on ties): e0->s0 (45), e0->s1 (45), e2->s0 (55), e3->s1 (55), e4->s0 (65),
  //   e5->s1 (65), e1->s0 (70), e1->s1 (70).
  expert_placement p;
  std::string err;
  REQUIRE(eplb_plan({90, 10, 10, 10, 10, 10}, 2, 2, &p, &err));
  CHECK(p.describe() == "0:[0 1 2 4] 1:[0 1 3 5]");
  CHECK(p.owners(0) == std::vector<int>{0, 1});
  CHECK(placement_imbalance(p, {90, 10, 10, 10, 10, 10}) == Approx(1.0));
  // The contiguous placement of the same load: shard 0 holds 90+10+10 = 110, shard 1 30; mean 70.
  expert_placement c;
  REQUIRE(expert_placement::contiguous(6, 2, &c, &err));
  CHECK(placement_imbalance(c, {90, 10, 10, 10, 10, 10}) == Approx(110.0 / 70.0));
}

TEST_CASE("EPLB without replicas balances by greedy packing", "[shards][eplb]") {
  // Loads 8 7 6 5 4 3 2 1 on 2 shards, capacity 4: 8->s0, 7->s1, 6->s1 (13), 5->s0 (13), 4->s0 (17),
  // 3->s1 (16), 2->s1 (18), 1->s0 (18).
  expert_placement p;
  std::string err;
  REQUIRE(eplb_plan({8, 7, 6, 5, 4, 3, 2, 1}, 2, 0, &p, &err));
  CHECK(p.describe() == "0:[0 3 4 7] 1:[1 2 5 6]");
  CHECK(placement_loads(p, {8, 7, 6, 5, 4, 3, 2, 1}) == std::vector<double>{18, 18});
  CHECK_FALSE(eplb_plan({1, 1}, 3, 0, &p, &err));
  CHECK_FALSE(eplb_plan({1, 1}, 0, 0, &p, &err));
}
