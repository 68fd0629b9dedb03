// The expert-shard wire format: round trips, and every kind of malformed frame rejected with a reason.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "net/shard_link.hpp"

using namespace rampart;

namespace {

// Two rows of width 4, three items (shard_batch holds an atomic: filled in place).
void sample_batch(model::shard_batch& b) {
  b.layer = 3;
  b.hidden = 4;
  b.n_rows = 2;
  b.n_items = 3;
  b.rows = {1, 2, 3, 4, -1, -2, -3, -4.5f};
  b.item_row = {0, 1, 1};
  b.item_expert = {7, 2, 9};
}

// Limits that any of the small frames here meets: 1024 rows, 8 experts a row, any width, any expert count.
const model::shard_frame_limits kAny{};

}  // namespace

TEST_CASE("a run request and its result survive the wire bit for bit", "[shards][link]") {
  model::shard_batch b;
  sample_batch(b);
  std::vector<uint8_t> frame;
  model::encode_run_request(42, b, &frame);
  CHECK(frame.size() == 16 + 16 + 8 * 3 + 4 * 8);
  // Header: magic "RSHK", version 1, kind 1, request id 42 little-endian.
  CHECK(std::memcmp(frame.data(), "RSHK", 4) == 0);
  CHECK(frame[4] == 1);
  CHECK(frame[5] == 1);
  CHECK(frame[8] == 42);
  model::shard_batch got;
  std::string err;
  REQUIRE(model::decode_run_request(frame.data(), frame.size(), kAny, &got, &err));
  CHECK(got.layer == 3);
  CHECK(got.hidden == 4);
  CHECK(got.n_rows == 2);
  CHECK(got.n_items == 3);
  CHECK(std::vector<float>(got.rows.begin(), got.rows.begin() + 8) == b.rows);
  CHECK(std::vector<int32_t>(got.item_row.begin(), got.item_row.begin() + 3) == b.item_row);
  CHECK(std::vector<int32_t>(got.item_expert.begin(), got.item_expert.begin() + 3) == b.item_expert);

  got.out.assign(12, 0.0f);
  for (int i = 0; i < 12; ++i) got.out[static_cast<size_t>(i)] = 0.1f * static_cast<float>(i) - 0.3f;
  got.compute_ns = 123456789;
  model::encode_run_result(42, got, &frame);
  model::shard_batch back;
  sample_batch(back);
  REQUIRE(model::decode_run_result(frame.data(), frame.size(), &back, &err));
  CHECK(back.out == got.out);
  CHECK(back.compute_ns == 123456789);
  model::shard_frame f;
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err));
  CHECK(f.kind == model::shard_frame_kind::run_result);
  CHECK(f.request_id == 42);
}

TEST_CASE("a run with no items and no rows round-trips, and so does its empty result", "[shards][link]") {
  model::shard_batch b;
  b.layer = 1;
  b.hidden = 4;
  std::vector<uint8_t> frame;
  model::encode_run_request(7, b, &frame);
  CHECK(frame.size() == 16 + 16);
  model::shard_batch got;
  std::string err;
  REQUIRE(model::decode_run_request(frame.data(), frame.size(), kAny, &got, &err));
  CHECK(got.n_items == 0);
  CHECK(got.n_rows == 0);
  model::encode_run_result(7, got, &frame);
  CHECK(frame.size() == 16 + 16);
  REQUIRE(model::decode_run_result(frame.data(), frame.size(), &got, &err));
  CHECK(got.out.empty());
}

TEST_CASE("warm, error and ping frames round-trip", "[shards][link]") {
  std::vector<uint8_t> frame;
  model::shard_frame f;
  std::string err;
  model::encode_warm(7, {1, 5, 9}, &frame);
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err));
  CHECK(f.kind == model::shard_frame_kind::warm);
  CHECK(f.experts == std::vector<int32_t>{1, 5, 9});
  model::encode_error(8, "expert 99 is outside [0, 16)", &frame);
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err));
  CHECK(f.kind == model::shard_frame_kind::error);
  CHECK(f.message == "expert 99 is outside [0, 16)");
  model::encode_simple(model::shard_frame_kind::ping, 9, &frame);
  REQUIRE(frame.size() == 16);
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err));
  CHECK(f.kind == model::shard_frame_kind::ping);
  CHECK(f.request_id == 9);
}

TEST_CASE("malformed shard frames are rejected with a reason", "[shards][link]") {
  model::shard_batch b;
  sample_batch(b);
  std::vector<uint8_t> good;
  model::encode_run_request(1, b, &good);
  model::shard_batch out;
  model::shard_frame f;
  std::string err;

  auto rejects = [&](std::vector<uint8_t> frame, const std::string& reason) {
    err.clear();
    const bool ok = model::decode_run_request(frame.data(), frame.size(), kAny, &out, &err);
    INFO("reason wanted: " << reason << ", got: " << err);
    CHECK_FALSE(ok);
    CHECK(err.find(reason) != std::string::npos);
  };
  rejects({}, "shorter than the header");
  rejects(std::vector<uint8_t>(good.begin(), good.begin() + 10), "shorter than the header");
  auto bad_magic = good;
  bad_magic[0] = 'X';
  rejects(bad_magic, "bad magic");
  auto bad_version = good;
  bad_version[4] = 2;
  rejects(bad_version, "unsupported version 2");
  auto bad_kind = good;
  bad_kind[5] = 0x42;
  rejects(bad_kind, "unknown kind 66");
  auto not_run = good;
  not_run[5] = 0x81;
  rejects(not_run, "not a run request");
  rejects(std::vector<uint8_t>(good.begin(), good.end() - 1), "its counts need");
  auto longer = good;
  longer.push_back(0);
  rejects(longer, "its counts need");
  auto huge = good;
  huge[16 + 12] = 0xff;  // n_items low byte
  huge[16 + 15] = 0x7f;  // n_items high byte: far beyond the limit
  rejects(huge, "out of range");
  auto zero_hidden = good;
  std::memset(&zero_hidden[16 + 4], 0, 4);
  rejects(zero_hidden, "out of range");

  // A result that answers a different batch shape is refused.
  std::vector<uint8_t> res;
  model::shard_batch r;
  sample_batch(r);
  r.out.assign(12, 1.0f);
  model::encode_run_result(1, r, &res);
  model::shard_batch other;
  sample_batch(other);
  other.n_items = 2;
  CHECK_FALSE(model::decode_run_result(res.data(), res.size(), &other, &err));
  CHECK(err.find("sent 2 of 4") != std::string::npos);
  CHECK_FALSE(model::decode_run_result(res.data(), res.size() - 4, &r, &err));

  // Warm and error bodies must match their counts; ping has no body.
  std::vector<uint8_t> warm;
  model::encode_warm(3, {1, 2}, &warm);
  warm.pop_back();
  CHECK_FALSE(model::decode_shard_frame(warm.data(), warm.size(), &f, &err));
  std::vector<uint8_t> ping;
  model::encode_simple(model::shard_frame_kind::ping, 3, &ping);
  ping.push_back(1);
  CHECK_FALSE(model::decode_shard_frame(ping.data(), ping.size(), &f, &err));
  CHECK(err == "unexpected body");
}

TEST_CASE("a shard refuses run frames past its model's limits before sizing anything from them", "[shards][link]") {
  model::shard_frame_limits limits;
  limits.max_rows = 4;
  limits.experts_per_row = 2;
  limits.hidden = 4;
  limits.n_experts = 16;
  model::shard_batch b;
  sample_batch(b);  // 2 rows of width 4, 3 items: within the limits
  std::vector<uint8_t> frame;
  model::encode_run_request(1, b, &frame);
  model::shard_batch got;
  std::string err;
  CHECK(model::decode_run_request(frame.data(), frame.size(), limits, &got, &err));

  // One row asked for more experts than the model routes a token to (the 480 GB frame, in small).
  model::shard_batch many;
  many.layer = 3;
  many.hidden = 4;
  many.n_rows = 1;
  many.rows.assign(4, 0.5f);
  many.n_items = 3;
  many.item_row = {0, 0, 0};
  many.item_expert = {1, 2, 3};
  model::encode_run_request(2, many, &frame);
  model::shard_batch untouched;
  CHECK_FALSE(model::decode_run_request(frame.data(), frame.size(), limits, &untouched, &err));
  CHECK(err.find("at most 4 rows of 2 experts each") != std::string::npos);
  CHECK(untouched.item_row.empty());
  CHECK(untouched.rows.empty());

  limits.max_rows = 1;  // two rows are now too many
  model::encode_run_request(3, b, &frame);
  CHECK_FALSE(model::decode_run_request(frame.data(), frame.size(), limits, &untouched, &err));
  limits.max_rows = 4;
  limits.hidden = 8;  // another model's width
  CHECK_FALSE(model::decode_run_request(frame.data(), frame.size(), limits, &untouched, &err));
  CHECK(err == "run request of width 4, the model's is 8");
  // The socket takes nothing larger than the largest valid request: header, counts, items, rows.
  limits.hidden = 4;
  CHECK(limits.max_request_bytes() == 16 + 16 + 8 * 4 * 2 + 4 * 4 * 4);
  // ... and the rank takes no answer larger than the largest result (or error frame) a shard can owe.
  CHECK(limits.max_answer_bytes() == 16 + 4 + 4096);  // a 4-wide result is smaller than an error frame
  limits.hidden = 1024;
  CHECK(limits.max_answer_bytes() == 16 + 16 + 4 * 4 * 2 * 1024);
}

TEST_CASE("warm lists are capped at the model's experts and de-duplicated, error texts are capped",
          "[shards][link]") {
  model::shard_frame_limits limits;
  limits.n_experts = 4;
  std::vector<uint8_t> frame;
  model::shard_frame f;
  std::string err;
  model::encode_warm(5, {3, 1, 3, 0, 1}, &frame);
  CHECK_FALSE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err, &limits));  // 5 entries > 4 experts
  CHECK(err == "warm lists 5 experts, the model has 4");
  model::encode_warm(5, {3, 1, 3, 1}, &frame);
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err, &limits));
  CHECK(f.experts == std::vector<int32_t>{1, 3});

  model::encode_error(6, std::string(10000, 'x'), &frame);
  CHECK(frame.size() == 16 + 4 + model::max_error_bytes);  // cut when encoded
  REQUIRE(model::decode_shard_frame(frame.data(), frame.size(), &f, &err));
  CHECK(f.message.size() == model::max_error_bytes);
  // A peer that writes a longer one itself is refused.
  const uint32_t n = model::max_error_bytes + 1;
  std::vector<uint8_t> longer(frame.begin(), frame.begin() + 16);
  longer.insert(longer.end(), reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 4);
  longer.insert(longer.end(), n, 'y');
  CHECK_FALSE(model::decode_shard_frame(longer.data(), longer.size(), &f, &err));
  CHECK(err == "error text of 4097 bytes");
}

TEST_CASE("a run result with a non-finite value or an absurd compute time fails the shard's step",
          "[shards][link]") {
  model::shard_batch r;
  sample_batch(r);
  r.out.assign(12, 0.25f);
  r.compute_ns = 1000;
  std::vector<uint8_t> res;
  model::shard_batch back;
  sample_batch(back);
  std::string err;
  model::encode_run_result(1, r, &res);
  REQUIRE(model::decode_run_result(res.data(), res.size(), &back, &err));
  for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    r.out[7] = bad;
    model::encode_run_result(1, r, &res);
    CHECK_FALSE(model::decode_run_result(res.data(), res.size(), &back, &err));
    CHECK(err == "run result holds a non-finite value");
  }
  r.out[7] = 0.25f;
  r.compute_ns = 3601ull * 1000 * 1000 * 1000;  // over an hour for one layer's experts
  model::encode_run_result(1, r, &res);
  CHECK_FALSE(model::decode_run_result(res.data(), res.size(), &back, &err));
}
