// rampart-mkmodel as a command: its flags reach the written checkpoint, and bad flags are refused by name.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "model/checkpoint.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

using namespace rampart::model;
namespace fs = std::filesystem;

namespace {

int mkmodel(const std::vector<std::string>& args, std::string* output) {
  return rampart::test::run_command(rampart::test::bin("rampart-mkmodel"), args, output);
}

}  // namespace

TEST_CASE("mkmodel --dtype f32 stores the values the bf16 fixture rounds", "[mkmodel]") {
  const std::string dir = rampart::test::make_temp_dir("rampart-mkmodel-f32");
  std::string out;
  REQUIRE(mkmodel({"--out", dir, "--dtype", "f32", "--seed", "0", "--vocab", "1000", "--no-mtp"}, &out) == 0);
  load_error err;
  auto f32 = checkpoint::open(dir, &err);
  INFO(err.message);
  REQUIRE(f32);
  auto bf16 = checkpoint::open(std::string(RAMPART_TEST_MODELS_DIR) + "/v3-bf16", &err);
  REQUIRE(bf16);
  REQUIRE(f32->names().size() == bf16->names().size());
  for (const std::string& name : bf16->names()) {
    const tensor_view* a = f32->find(name);
    const tensor_view* b = bf16->find(name);
    REQUIRE(a);
    INFO(name);
    CHECK(a->shape == b->shape);
    if (b->type == dtype::f32) {  // the router bias is F32 in both
      CHECK(std::memcmp(a->data, b->data, b->nbytes) == 0);
      continue;
    }
    REQUIRE(a->type == dtype::f32);
    REQUIRE(b->type == dtype::bf16);
    size_t mismatches = 0;
    for (int64_t i = 0; i < b->numel(); ++i) {
      float f;
      uint16_t h;
      std::memcpy(&f, a->data + 4 * i, 4);
      std::memcpy(&h, b->data + 2 * i, 2);
      mismatches += float_to_bf16(f) != h;
    }
    CHECK(mismatches == 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("mkmodel applies --preset, --layers, --vocab and --shards", "[mkmodel]") {
  const std::string dir = rampart::test::make_temp_dir("rampart-mkmodel-small");
  std::string out;
  REQUIRE(mkmodel({"--out", dir, "--preset", "small", "--layers", "2", "--vocab", "500", "--shards", "2",
                   "--seed", "7"},
                  &out) == 0);
  CHECK(fs::exists(dir + "/model-00001-of-00002.safetensors"));
  CHECK(fs::exists(dir + "/model-00002-of-00002.safetensors"));
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  INFO(err.message);
  REQUIRE(ck);
  CHECK(ck->config().num_hidden_layers == 2);
  CHECK(ck->config().vocab_size == 500);
  CHECK(ck->config().hidden_size == 512);
  CHECK(ck->require("model.embed_tokens.weight", {500, 512}, &err));
  CHECK(ck->find("model.layers.2.input_layernorm.weight") == nullptr);
  fs::remove_all(dir);
}

TEST_CASE("mkmodel refuses bad flags with a message naming them", "[mkmodel]") {
  const std::string scratch = rampart::test::make_temp_dir("rampart-mkmodel-bad");
  const std::string x = scratch + "/x";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--preset", "tiny"}, "--out"},
      {{"--out", x, "--dtype", "f16"}, "--dtype"},
      {{"--out", x, "--shards", "0"}, "--shards"},
      {{"--out", x, "--seed", "-1"}, "--seed"},
      {{"--out", x, "--vocab", "12abc"}, "--vocab"},
      {{"--out", x, "--variant", "v4"}, "v4"},
      {{"--out", x, "--preset", "huge"}, "huge"},
      {{"--out", x, "--frobnicate"}, "--frobnicate"},
      {{"--out", x, "--variant", "v2-lite", "--mtp"}, "--mtp"},
      {{"--out", x, "--shards", "5000"}, "shards"},
  };
  for (const auto& [args, needle] : cases) {
    std::string out;
    INFO(args.back());
    CHECK(mkmodel(args, &out) != 0);
    CHECK_THAT(out, Catch::Contains(needle));
  }
  CHECK_FALSE(fs::exists(x + "/model.safetensors"));
  fs::remove_all(scratch);
}
