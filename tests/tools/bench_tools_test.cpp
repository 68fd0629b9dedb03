// The engine's measuring tools as commands: rampart-generate computes the same greedy tokens from the kernels'
// layout and from the mapped checkpoint (--no-pack), profiles a bench run's phases (--profile), and
// rampart-kernels-bench refuses bad options by name.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

namespace {

int run(const std::string& tool, const std::vector<std::string>& args, std::string* output) {
  return rampart::test::run_command(rampart::test::bin(tool), args, output);
}

}  // namespace

TEST_CASE("rampart-generate --no-pack gives the packed run's greedy tokens", "[tools]") {
  const std::string model = std::string(RAMPART_TEST_MODELS_DIR) + "/v3-bf16";
  const std::vector<std::string> args = {"--model", model, "--ids", "0 15 27 3 999", "-n", "12", "--threads", "2"};
  std::string packed, unpacked;
  REQUIRE(run("rampart-generate", args, &packed) == 0);
  std::vector<std::string> no_pack = args;
  no_pack.push_back("--no-pack");
  REQUIRE(run("rampart-generate", no_pack, &unpacked) == 0);
  CHECK_FALSE(packed.empty());
  CHECK(packed == unpacked);
}

TEST_CASE("rampart-generate --bench --profile prints each phase for both batch sizes", "[tools]") {
  const std::string model = std::string(RAMPART_TEST_MODELS_DIR) + "/v3-bf16";
  std::string out;
  REQUIRE(run("rampart-generate", {"--model", model, "--ids", "0 15 27", "-n", "4", "--bench", "--profile", "--batch",
                                   "3", "--threads", "2"},
              &out) == 0);
  INFO(out);
  for (const char* line : {"profile batch 1: ", "profile batch 3: ", "attention projections", "attention scores",
                           "attention output", "router", "routed experts", "shared experts", "dense mlp", "lm_head",
                           "other"})
    CHECK_THAT(out, Catch::Contains(line));
  // --bench decodes max(n, 32) steps per run, three runs per batch size.
  CHECK_THAT(out, Catch::Contains("over 96 steps"));
  CHECK_THAT(out, Catch::Contains("median step over 96 steps each: batch 1 "));
  CHECK_THAT(out, Catch::Contains(", batch 3 "));

  std::string refused;
  CHECK(run("rampart-generate", {"--model", model, "--ids", "0 15 27", "--profile"}, &refused) == 2);
  CHECK_THAT(refused, Catch::Contains("--profile needs --bench"));
}

TEST_CASE("rampart-generate --serve runs every client's requests through the scheduler and counts their tokens",
          "[tools]") {
  const std::string model = std::string(RAMPART_TEST_MODELS_DIR) + "/v3-bf16";
  std::string out;
  REQUIRE(run("rampart-generate", {"--model", model, "--ids", "0 15 27", "-n", "5", "--serve", "2", "--batch", "3",
                                   "--threads", "2", "--temperature", "0.7", "--top-p", "0.95"},
              &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::StartsWith("served batch 3: "));
  // 3 clients x 2 requests x 5 tokens, every request to its length.
  CHECK_THAT(out, Catch::Contains("2 requests per client of 3 prompt tokens and 5 output tokens, 30 tokens in all"));
  CHECK_THAT(out, Catch::Contains("time per output token p50 "));

  std::string refused;
  CHECK(run("rampart-generate", {"--model", model, "--ids", "0 15 27", "--serve", "2", "--bench"}, &refused) == 2);
  CHECK_THAT(refused, Catch::Contains("--serve and --bench are separate runs"));
}

TEST_CASE("rampart-generate --help lists every option on its own", "[tools]") {
  std::string out;
  REQUIRE(run("rampart-generate", {"--help"}, &out) == 0);
  for (const char* flag : {"--model DIR", "--ids", "[-n N]", "[--temperature T]", "[--seed S]", "[--threads N]",
                           "[--logits FILE]", "[--chunk N]", "[--batch N]", "[--kv-tokens N]", "[--bench [--profile]]",
                           "[--no-pack] ", "[--shards N", "--shard-endpoints", "[--serve R]"})
    CHECK_THAT(out, Catch::Contains(flag));
  CHECK_THAT(out, !Catch::Contains("]  "));  // no two usage lines run together
}

TEST_CASE("rampart-kernels-bench refuses bad options with its usage", "[tools]") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--layout", "tiled"}, {"--threads", "0"}, {"--offset", "3"}, {"--offset", "64"},
        {"--frobnicate"}}) {
    std::string out;
    INFO(args.front());
    CHECK(run("rampart-kernels-bench", args, &out) == 2);
    CHECK_THAT(out, Catch::Contains("rampart-kernels-bench"));
  }
}
