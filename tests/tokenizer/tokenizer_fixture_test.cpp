// The reference vectors: every record of the five fixture files, encoded, decoded and stream-decoded.
#include <thread>

#include <catch2/catch.hpp>

#include "tests/tokenizer/tokenizer_test_support.hpp"
#include "tokenizer/detokenizer.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace rampart::model;
using rampart::test::read_fixture;

namespace {

void check_encode_decode(const tokenizer& tok, const std::string& file) {
  auto records = read_fixture(file);
  size_t encode_mismatches = 0, decode_mismatches = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    std::vector<token_id> ids = tok.encode(r.text);
    if (ids != r.ids && ++encode_mismatches <= 3) {
      INFO(file << " record " << i << ": " << nlohmann::json(r.text).dump());
      CHECK(ids == r.ids);
    }
    std::string text = tok.decode(r.ids);
    if (text != r.decoded && ++decode_mismatches <= 3) {
      INFO(file << " record " << i);
      CHECK(text == r.decoded);
    }
  }
  INFO(file << ": " << records.size() << " records");
  CHECK(encode_mismatches == 0);
  CHECK(decode_mismatches == 0);
}

// Feeds each record's ids one at a time; the deltas must add up to the one-shot decode, and every token must be
// accounted for by the end.
void check_streaming(const tokenizer& tok, const std::string& file, bool skip_special) {
  auto records = read_fixture(file);
  size_t mismatches = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    std::string error;
    auto detok = detokenizer::create(tok, {skip_special, {}}, &error);
    REQUIRE(detok);
    std::string streamed;
    size_t last_done = 0;
    for (token_id id : r.ids) {
      auto d = detok->feed(id);
      streamed.append(d.text);
      REQUIRE(d.tokens_done >= last_done);
      last_done = d.tokens_done;
    }
    auto end = detok->finish();
    streamed.append(end.text);
    REQUIRE(end.tokens_done == r.ids.size());
    if (streamed != tok.decode(r.ids, skip_special) && ++mismatches <= 3) {
      INFO(file << " record " << i);
      CHECK(streamed == tok.decode(r.ids, skip_special));
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("edge_cases.jsonl encodes to the reference ids and decodes to the reference text", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_encode_decode(*tok, "edge_cases.jsonl");
}

TEST_CASE("en_licenses.jsonl encodes to the reference ids and decodes to the reference text", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_encode_decode(*tok, "en_licenses.jsonl");
}

TEST_CASE("code_python.jsonl encodes to the reference ids and decodes to the reference text", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_encode_decode(*tok, "code_python.jsonl");
}

TEST_CASE("man_zh_CN.jsonl encodes to the reference ids and decodes to the reference text", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_encode_decode(*tok, "man_zh_CN.jsonl");
}

TEST_CASE("man_ja.jsonl encodes to the reference ids and decodes to the reference text", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_encode_decode(*tok, "man_ja.jsonl");
}

TEST_CASE("streaming every fixture one id at a time gives the one-shot decode", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  for (const char* file :
       {"edge_cases.jsonl", "en_licenses.jsonl", "code_python.jsonl", "man_zh_CN.jsonl", "man_ja.jsonl"}) {
    check_streaming(*tok, file, false);
  }
}

TEST_CASE("streaming with special tokens skipped gives the one-shot decode with skipping", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  check_streaming(*tok, "edge_cases.jsonl", true);
}

TEST_CASE("encoding from many threads at once gives the reference ids", "[tokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto records = read_fixture("man_ja.jsonl");
  auto more = read_fixture("code_python.jsonl");
  records.insert(records.end(), more.begin(), more.end());
  std::vector<size_t> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      // Each thread walks the records from a different start so the per-thread caches fill differently.
      for (size_t k = 0; k < records.size(); ++k) {
        const auto& r = records[(k + t * records.size() / 4) % records.size()];
        if (tok->encode(r.text) != r.ids) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t m : mismatches) CHECK(m == 0);
}
