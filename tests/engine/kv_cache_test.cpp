// The engine's paged KV cache as the scheduler sees it: block accounting, freeing on end and cancel, the prefix
// cache, and refusals that leave the state untouched.
#include "tests/engine/engine_test_helpers.hpp"

namespace rampart::test {
namespace {

std::vector<int32_t> ids(int64_t n, int64_t salt) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>((i * 31 + salt * 577 + 5) % 1000);
  return p;
}

TEST_CASE("kv blocks are freed when a sequence ends or is cancelled mid-prompt", "[kv]") {
  model::engine_options o;
  o.kv_cache_tokens = 256;
  auto e = make_engine("v3-bf16", o);
  const model::kv_usage start = e->kv();
  CHECK(start.total_blocks == 16);
  CHECK(start.block_tokens == 16);
  CHECK(start.free_blocks == 16);
  std::string err;
  model::step_output out;
  const std::vector<int32_t> a = ids(40, 1), b = ids(70, 2);
  model::kv_sequence s1, s2;
  REQUIRE(e->start(&s1, a.data(), 40, &err) == 0);
  REQUIRE(e->start(&s2, b.data(), 70, &err) == 0);
  CHECK(e->blocks_needed(s1, 40) == 3);
  REQUIRE(e->step({{&s1, a.data(), 40, false}, {&s2, b.data(), 30, false}}, &out, &err));  // 2 has 40 left
  CHECK(e->kv().free_blocks == 16 - 3 - 2);
  CHECK(s2.length() == 30);
  e->release(&s2);  // cancelled in the middle of its prompt
  CHECK(e->kv().free_blocks == 16 - 3);
  CHECK_FALSE(s2.started());
  const int32_t tok = 7;
  for (int i = 0; i < 9; ++i) REQUIRE(e->step({{&s1, &tok, 1, false}}, &out, &err));  // 49 tokens: 4 blocks
  CHECK(e->kv().free_blocks == 16 - 4);
  e->release(&s1);
  CHECK(e->kv().free_blocks == start.free_blocks);
  e->release(&s1);  // released already: a no-op
  CHECK(e->kv().free_blocks == start.free_blocks);
}

TEST_CASE("a step the kv cache cannot hold is refused with a clear error and changes nothing", "[kv]") {
  model::engine_options o;
  o.kv_cache_tokens = 64;
  auto e = make_engine("v3-bf16", o);
  std::string err;
  model::step_output out;
  CHECK(e->can_admit(64));
  CHECK_FALSE(e->can_admit(65));
  const std::vector<int32_t> p = ids(65, 3);
  model::kv_sequence s1;
  REQUIRE(e->start(&s1, nullptr, 0, &err) == 0);
  CHECK_FALSE(e->step({{&s1, p.data(), 65, false}}, &out, &err));
  CHECK(err.find("kv cache full") != std::string::npos);
  CHECK(s1.length() == 0);
  CHECK(e->kv().free_blocks == 4);
  REQUIRE(e->step({{&s1, p.data(), 64, false}}, &out, &err));
  CHECK(e->kv().free_blocks == 0);
  CHECK_FALSE(e->step({{&s1, p.data(), 1, false}}, &out, &err));
  CHECK(s1.length() == 64);
}

TEST_CASE("bad step input is an error, not a crash, and changes nothing", "[kv]") {
  model::engine_options o;
  o.kv_cache_tokens = 64;
  auto e = make_engine("v2lite-bf16", o);
  std::string err;
  model::step_output out;
  model::kv_sequence s1, s9;  // s9 is never started
  REQUIRE(e->start(&s1, nullptr, 0, &err) == 0);
  CHECK(e->start(&s1, nullptr, 0, &err) == -1);
  CHECK(err.find("already started") != std::string::npos);
  const int32_t bad[2] = {5, 1000};
  CHECK_FALSE(e->step({{&s1, bad, 2, false}}, &out, &err));
  CHECK(err.find("outside the vocabulary") != std::string::npos);
  const int32_t neg = -1;
  CHECK_FALSE(e->step({{&s1, &neg, 1, false}}, &out, &err));
  CHECK_FALSE(e->step({{&s9, bad, 1, false}}, &out, &err));
  CHECK(err.find("not started") != std::string::npos);
  CHECK_FALSE(e->step({{&s1, bad, 1, false}, {&s1, bad, 1, false}}, &out, &err));
  CHECK(err.find("twice") != std::string::npos);
  CHECK_FALSE(e->step({{&s1, bad, 0, false}}, &out, &err));
  // Past max_position_embeddings (163840): refused before the cache is even asked.
  const std::vector<int32_t> many(static_cast<size_t>(e->config().max_position_embeddings + 1), 3);
  CHECK_FALSE(e->step({{&s1, many.data(), static_cast<int64_t>(many.size()), false}}, &out, &err));
  CHECK(err.find("max_position_embeddings") != std::string::npos);
  CHECK(s1.length() == 0);
  CHECK(e->kv().free_blocks == 4);
}

TEST_CASE("a sequence record belongs to the engine that started it until it is released", "[kv]") {
  model::engine_options o;
  o.kv_cache_tokens = 64;  // 4 blocks of 16
  auto a = make_engine("v2lite-bf16", o), b = make_engine("v2lite-bf16", o);
  std::string err;
  model::step_output out;
  model::kv_sequence s;
  const int32_t tok[3] = {5, 6, 7};
  CHECK_FALSE(a->step({{nullptr, tok, 1, false}}, &out, &err));
  CHECK(err.find("not started") != std::string::npos);
  REQUIRE(a->start(&s, nullptr, 0, &err) == 0);
  REQUIRE(a->step({{&s, tok, 3, false}}, &out, &err));
  CHECK(a->kv().free_blocks == 3);
  CHECK_FALSE(b->step({{&s, tok, 1, false}}, &out, &err));  // another engine's sequence
  CHECK(err.find("batch entry 0: the sequence is not started") != std::string::npos);
  CHECK(b->start(&s, nullptr, 0, &err) == -1);
  b->release(&s);  // not b's: a no-op
  CHECK(s.started());
  CHECK(s.length() == 3);
  CHECK(s.blocks().size() == 1);
  CHECK(b->kv().free_blocks == 4);
  CHECK(b->blocks_needed(s, 16) == 1);  // counted by b as a new sequence of 16 tokens
  CHECK(a->blocks_needed(s, 13) == 0);  // 16 tokens: still one block
  CHECK(a->blocks_needed(s, 14) == 1);  // 17 tokens: a second block
  a->release(&s);
  CHECK_FALSE(s.started());
  CHECK(s.length() == 0);
  CHECK(s.blocks().empty());
  CHECK(a->kv().free_blocks == 4);
  REQUIRE(b->start(&s, nullptr, 0, &err) == 0);  // empty again: any engine may start it
  REQUIRE(b->step({{&s, tok, 3, false}}, &out, &err));
  CHECK(b->kv().free_blocks == 3);
  b->release(&s);
  CHECK(b->kv().free_blocks == 4);
}

TEST_CASE("a repeated prompt prefix is served from the prefix cache with the same logits", "[kv]") {
  const std::vector<int32_t> system = ids(40, 4);  // 2 full blocks + 8 tokens
  std::vector<int32_t> first = system, second = system;
  for (int32_t t : ids(5, 5)) first.push_back(t);
  for (int32_t t : ids(7, 6)) second.push_back(t);

  model::engine_options off;
  off.prefix_cache = false;
  auto plain = make_engine("v3-fp8", off);
  const std::vector<float> want = feed(*plain, second, 0);
  const int64_t V = plain->config().vocab_size;

  auto e = make_engine("v3-fp8");
  std::string err;
  model::step_output out;
  model::kv_sequence s1, s2, s3;
  REQUIRE(e->start(&s1, first.data(), static_cast<int64_t>(first.size()), &err) == 0);
  REQUIRE(e->step({{&s1, first.data(), static_cast<int64_t>(first.size()), false}}, &out, &err));
  CHECK(e->kv().cached_blocks == 2);
  e->release(&s1);  // its blocks stay findable while free
  const int64_t free_before = e->kv().free_blocks;
  const int64_t cached = e->start(&s2, second.data(), static_cast<int64_t>(second.size()), &err);
  CHECK(cached == 32);
  CHECK(e->kv().prefix_hit_tokens == 32);
  CHECK(e->kv().free_blocks == free_before - 2);
  CHECK(s2.length() == 32);
  const int64_t rest = static_cast<int64_t>(second.size()) - cached;
  REQUIRE(e->step({{&s2, second.data() + cached, rest, true}}, &out, &err));
  for (int64_t j = 0; j < rest; ++j) {
    INFO("position " << cached + j);
    CHECK(max_abs_diff(out.row(0, j), &want[(cached + j) * V], V) == 0.0f);
  }
  // A prompt that is exactly the cached blocks still feeds its last token.
  const std::vector<int32_t> exact(system.begin(), system.begin() + 32);
  CHECK(e->start(&s3, exact.data(), 32, &err) == 16);
  e->release(&s2);
  e->release(&s3);
  CHECK(e->kv().free_blocks == e->kv().total_blocks);
}

}  // namespace
}  // namespace rampart::test
