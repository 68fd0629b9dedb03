// Streaming detokenization: UTF-8 held across tokens, U+FFFD as in the one-shot decode, stop strings that span
// tokens, and the count of tokens behind each delta. Inputs are fed one byte token at a time (ids by the rule of
// shared/specs/tokenizer.md §2), so every possible split point is exercised; expectations are written by hand.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/tokenizer/tokenizer_test_support.hpp"
#include "tokenizer/detokenizer.hpp"

using namespace rampart::model;
using rampart::test::byte_tokens;

namespace {

struct run_result {
  std::vector<std::string> deltas;  // one per feed, then finish()'s
  std::vector<size_t> done;         // tokens_done after each
  std::string text;
  bool stopped = false;
  int stop_index = -1;
};

run_result run(const tokenizer& tok, const std::vector<token_id>& ids, std::vector<std::string> stops,
               bool skip_special = false) {
  std::string error;
  auto d = detokenizer::create(tok, {skip_special, std::move(stops)}, &error);
  REQUIRE(d);
  run_result r;
  auto record = [&r](const detokenizer::delta& delta) {
    r.deltas.emplace_back(delta.text);
    r.done.push_back(delta.tokens_done);
    r.text += delta.text;
    r.stopped = delta.stopped;
  };
  for (token_id id : ids) record(d->feed(id));
  record(d->finish());
  r.stop_index = d->stop_index();
  return r;
}

const std::string kReplacement = "\xEF\xBF\xBD";

}  // namespace

TEST_CASE("a character split across tokens comes out once, when complete", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto r = run(*tok, byte_tokens("a😀b"), {});
  CHECK(r.deltas == std::vector<std::string>{"a", "", "", "", "😀", "b", ""});
  CHECK(r.done == std::vector<size_t>{1, 1, 1, 1, 5, 6, 6});
}

TEST_CASE("bytes that cannot complete become U+FFFD by maximal subparts, as soon as that is known", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  // F0 9F 98 then "a": the three bytes are one maximal subpart, replaced when "a" arrives.
  auto r = run(*tok, byte_tokens("\xF0\x9F\x98" "a"), {});
  CHECK(r.deltas == std::vector<std::string>{"", "", "", kReplacement + "a", ""});
  // A stray continuation byte is replaced at once; a truncated sequence at the end is flushed by finish().
  r = run(*tok, byte_tokens("\x80x\xE4\xB8"), {});
  CHECK(r.deltas == std::vector<std::string>{kReplacement, "x", "", "", kReplacement});
  // ED A0: ED must be followed by 80..9F, so ED alone is a part, then A0.
  r = run(*tok, byte_tokens("\xED\xA0"), {});
  CHECK(r.text == kReplacement + kReplacement);
}

TEST_CASE("special tokens are skipped before bytes are joined when asked", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  CHECK(run(*tok, {28927, 128805, 225}, {}, true).text == "😀");
  CHECK(run(*tok, {28927, 128805, 225}, {}, false).text == kReplacement + "<|EOT|>" + kReplacement);
  // Ids without a token produce nothing and are counted as done at once.
  auto r = run(*tok, {3, 128900, 3}, {});
  CHECK(r.text == "!!");
  CHECK(r.done == std::vector<size_t>{1, 2, 3, 3});
}

TEST_CASE("a stop string spanning tokens is held back and never emitted", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto r = run(*tok, byte_tokens("abcENDdef"), {"END"});
  CHECK(r.text == "abc");
  CHECK(r.stopped);
  CHECK(r.stop_index == 0);
  for (const auto& d : r.deltas) CHECK(d.find('E') == std::string::npos);
  // Deltas: a, b, c, (E held), (N held), stop at D; nothing after.
  CHECK(r.deltas == std::vector<std::string>{"a", "b", "c", "", "", "", "", "", "", ""});
}

TEST_CASE("held text is released as soon as it can no longer start a stop string", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto r = run(*tok, byte_tokens("aXb"), {"ab"});
  CHECK(r.deltas == std::vector<std::string>{"", "aX", "b", ""});
  CHECK(!r.stopped);
  // At the end, a held prefix of a stop string is text like any other.
  r = run(*tok, byte_tokens("abcEN"), {"END"});
  CHECK(r.text == "abcEN");
  CHECK(r.deltas.back() == "EN");
  // The same text as one token: "EN" is held inside a single delta's worth of text.
  CHECK(run(*tok, tok->encode("xENDy"), {"END"}).text == "x");
}

TEST_CASE("a multi-byte stop string split inside its characters still stops", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto r = run(*tok, byte_tokens("你好世界!"), {"世界"});
  CHECK(r.text == "你好");
  CHECK(r.stopped);
}

TEST_CASE("the stop string that completes first wins", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  auto r = run(*tok, byte_tokens("xabcd"), {"abcd", "bc"});
  CHECK(r.text == "xa");
  CHECK(r.stop_index == 1);
  // Fed as one token the outcome is the same.
  r = run(*tok, tok->encode("xabcd"), {"abcd", "bc"});
  CHECK(r.text == "xa");
  CHECK(r.stop_index == 1);
}

TEST_CASE("tokens_done counts each token in the delta that completes its text", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  // "Hello" with stop "lo": the first l is held until the second arrives; the stop then consumes the rest.
  auto r = run(*tok, byte_tokens("Hello"), {"lo"});
  CHECK(r.deltas == std::vector<std::string>{"H", "e", "", "l", "", ""});
  CHECK(r.done == std::vector<size_t>{1, 2, 2, 3, 5, 5});
  CHECK(r.text == "Hel");
}

TEST_CASE("after a stop, feeding produces nothing", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  std::string error;
  auto d = detokenizer::create(*tok, {false, {"!"}}, &error);
  REQUIRE(d);
  CHECK(d->feed(3).stopped);
  auto after = d->feed(byte_tokens("a")[0]);
  CHECK(after.text.empty());
  CHECK(after.stopped);
  CHECK(d->finish().text.empty());
}

TEST_CASE("empty or invalid stop strings are refused", "[detokenizer]") {
  RAMPART_REQUIRE_TOKENIZER(tok);
  std::string error;
  CHECK(!detokenizer::create(*tok, {false, {"ok", ""}}, &error));
  CHECK(error.find("stop string 1") != std::string::npos);
  CHECK(!detokenizer::create(*tok, {false, {"\xFF"}}, &error));
  CHECK(error.find("UTF-8") != std::string::npos);
}
