// checkpoint::open on whole directories: sharded vs single file, fp8 scale linking, and damaged directories
// (truncated file, missing shard, wrong scale shape, missing config), each with an error naming file and
// tensor.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/checkpoint.hpp"
#include "testkit/synthetic_checkpoint.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::model;
namespace fs = std::filesystem;

namespace {

synthetic_spec tiny(const std::string& variant = "v3") {
  synthetic_spec s;
  std::string err;
  REQUIRE(synthetic_preset("tiny", variant, &s, &err));
  return s;
}

std::string write(const synthetic_spec& spec, const std::string& name) {
  const std::string dir = rampart::test::make_temp_dir("rampart-ckpt-" + name);
  std::string err;
  if (!write_synthetic_checkpoint(spec, dir, 2, &err)) FAIL(err);
  return dir;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string image(const std::string& header_json, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header_json.size() >> (8 * i)) & 0xff);
  return out + header_json + std::string(data_bytes, '\0');
}

std::string open_error(const std::string& dir) {
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  CHECK(ck == nullptr);
  return err.message;
}

}  // namespace

TEST_CASE("a sharded checkpoint loads the same tensors as the single file", "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.fp8 = true;
  const std::string single_dir = write(spec, "single");
  spec.shards = 3;
  const std::string shard_dir = write(spec, "sharded");
  CHECK_FALSE(fs::exists(shard_dir + "/model.safetensors"));
  CHECK(fs::exists(shard_dir + "/model.safetensors.index.json"));
  CHECK(fs::exists(shard_dir + "/model-00003-of-00003.safetensors"));

  load_error err;
  auto single = checkpoint::open(single_dir, &err);
  INFO(err.message);
  REQUIRE(single);
  auto sharded = checkpoint::open(shard_dir, &err);
  INFO(err.message);
  REQUIRE(sharded);
  REQUIRE(single->names().size() == sharded->names().size());
  CHECK(single->mapped_bytes() == sharded->mapped_bytes());
  int files_seen = 0;
  std::string last_file;
  for (const std::string& name : single->names()) {
    const tensor_view* a = single->find(name);
    const tensor_view* b = sharded->find(name);
    REQUIRE(b);
    CHECK(a->type == b->type);
    CHECK(a->shape == b->shape);
    REQUIRE(a->nbytes == b->nbytes);
    CHECK(std::memcmp(a->data, b->data, a->nbytes) == 0);
    CHECK((a->scale_inv == nullptr) == (b->scale_inv == nullptr));
    if (b->file != last_file) {
      ++files_seen;
      last_file = b->file;
    }
  }
  CHECK(files_seen == 3);
  fs::remove_all(single_dir);
  fs::remove_all(shard_dir);
}

TEST_CASE("fp8 matrices are linked to their block scales and dequantize close to the recipe",
          "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.fp8 = true;
  const std::string dir = write(spec, "fp8");
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  REQUIRE(ck);
  // kv_a_proj_with_mqa is [48, 256]: one row block, two column blocks. Experts are 96 wide: partial blocks.
  const std::string name = "model.layers.1.mlp.experts.5.down_proj.weight";
  const tensor_view* w = ck->require(name, {256, 96}, &err);
  REQUIRE(w);
  REQUIRE(w->type == dtype::f8_e4m3);
  REQUIRE(w->scale_inv);
  CHECK(w->scale_inv->name == name + "_scale_inv");
  CHECK(w->scale_inv->shape == std::vector<int64_t>{2, 1});
  CHECK(ck->find(name + "_scale_inv") == w->scale_inv);
  // Recipe amplitude for down_proj: 0.6 * sqrt(3) / sqrt(96); a 3-bit mantissa keeps |error| <= 1/16 relative
  // for normals, and subnormal codes are 2^-9 * s apart.
  const double amp = 0.6 * std::sqrt(3.0) / std::sqrt(96.0);
  for (int64_t r = 0; r < 256; r += 7) {
    for (int64_t c = 0; c < 96; c += 5) {
      float s;
      std::memcpy(&s, w->scale_inv->data + 4 * (r / 128), 4);
      const double got = e4m3_to_float(static_cast<uint8_t>(w->data[r * 96 + c])) * s;
      const double want = synthetic_value(0, name, 0.0, amp, static_cast<uint64_t>(r * 96 + c));
      CHECK(std::fabs(got - want) <= std::fabs(want) / 16 + s * 0x1p-10);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("v3 with MTP writes the module as layer num_hidden_layers", "[checkpoint]") {
  const std::string dir = write(tiny(), "mtp");
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  REQUIRE(ck);
  CHECK(ck->config().num_hidden_layers == 4);
  CHECK(ck->config().num_nextn_predict_layers == 1);
  CHECK(ck->require("model.layers.4.eh_proj.weight", {256, 512}, &err));
  CHECK(ck->require("model.layers.4.mlp.experts.15.up_proj.weight", {96, 256}, &err));
  const tensor_view* head = ck->find("model.layers.4.shared_head.head.weight");
  const tensor_view* lm = ck->find("lm_head.weight");
  REQUIRE(head);
  REQUIRE(lm);
  CHECK(std::memcmp(head->data, lm->data, lm->nbytes) == 0);  // the MTP head is a copy of lm_head
  CHECK(ck->find("model.layers.5.input_layernorm.weight") == nullptr);
  fs::remove_all(dir);
}

TEST_CASE("require names the tensor when it is missing or has another shape", "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.config.num_nextn_predict_layers = 0;
  const std::string dir = write(spec, "require");
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  REQUIRE(ck);
  CHECK(ck->require("model.norm.weight", {255}, &err) == nullptr);
  CHECK_THAT(err.message, Catch::Contains("model.safetensors") && Catch::Contains("model.norm.weight") &&
                              Catch::Contains("[256]") && Catch::Contains("[255]"));
  CHECK(ck->require("model.layers.9.mlp.gate.weight", {16, 256}, &err) == nullptr);
  CHECK_THAT(err.message, Catch::Contains("model.layers.9.mlp.gate.weight") && Catch::Contains("not found"));
  fs::remove_all(dir);
}

TEST_CASE("a truncated safetensors file is an error naming the file and the cut tensor", "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.config.num_nextn_predict_layers = 0;
  const std::string dir = write(spec, "trunc");
  const std::string file = dir + "/model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  const std::string msg = open_error(dir);
  CHECK_THAT(msg, Catch::Contains(file) && Catch::Contains("lm_head.weight"));
  fs::resize_file(file, 4);
  CHECK_THAT(open_error(dir), Catch::Contains(file) && Catch::Contains("too short"));
  fs::remove_all(dir);
}

TEST_CASE("a missing shard is an error naming the shard and a tensor it should hold", "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.shards = 3;
  const std::string dir = write(spec, "noshard");
  fs::remove(dir + "/model-00002-of-00003.safetensors");
  const std::string msg = open_error(dir);
  CHECK_THAT(msg, Catch::Contains("model-00002-of-00003.safetensors") && Catch::Contains("missing") &&
                      Catch::Contains("model.layers."));
  fs::remove_all(dir);
}

TEST_CASE("an index that disagrees with its shards is rejected", "[checkpoint]") {
  synthetic_spec spec = tiny();
  spec.shards = 2;
  const std::string dir = write(spec, "badindex");
  const std::string index = dir + "/model.safetensors.index.json";
  write_file(index, R"({"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors"}})");
  CHECK_THAT(open_error(dir), Catch::Contains("lm_head.weight") && Catch::Contains("not in this file"));
  write_file(index, R"({"weight_map":{"lm_head.weight":"../model-00002-of-00002.safetensors"}})");
  CHECK_THAT(open_error(dir), Catch::Contains("lm_head.weight") && Catch::Contains("not a file name"));
  write_file(index, R"({"weight_map":{"lm_head.weight":"model-00002-of-00002.safetensors"}})");
  CHECK_THAT(open_error(dir), Catch::Contains("does not list"));
  write_file(index, "{not json");
  CHECK_THAT(open_error(dir), Catch::Contains(index));
  fs::remove_all(dir);
}

TEST_CASE("fp8 block scales of the wrong shape or dtype, or missing, are rejected", "[checkpoint]") {
  const std::string dir = rampart::test::make_temp_dir("rampart-ckpt-scales");
  write_file(dir + "/config.json", synthetic_config_json(tiny()));
  const std::string file = dir + "/model.safetensors";
  // w is [130, 10]: two row blocks, one column block.
  auto with_scale = [&](const std::string& scale_entry, size_t scale_bytes) {
    write_file(file, image(R"({"w":{"dtype":"F8_E4M3","shape":[130,10],"data_offsets":[0,1300]})" +
                               scale_entry + "}",
                           1300 + scale_bytes));
  };
  with_scale(R"(,"w_scale_inv":{"dtype":"F32","shape":[2,1],"data_offsets":[1300,1308]})", 8);
  load_error err;
  auto ck = checkpoint::open(dir, &err);
  INFO(err.message);
  REQUIRE(ck);
  REQUIRE(ck->find("w")->scale_inv == ck->find("w_scale_inv"));
  ck.reset();

  with_scale(R"(,"w_scale_inv":{"dtype":"F32","shape":[1,1],"data_offsets":[1300,1304]})", 4);
  CHECK_THAT(open_error(dir),
             Catch::Contains(file) && Catch::Contains("w_scale_inv") && Catch::Contains("[2, 1]"));
  with_scale(R"(,"w_scale_inv":{"dtype":"BF16","shape":[2,1],"data_offsets":[1300,1304]})", 4);
  CHECK_THAT(open_error(dir), Catch::Contains("w_scale_inv") && Catch::Contains("F32"));
  with_scale("", 0);
  CHECK_THAT(open_error(dir),
             Catch::Contains(file) && Catch::Contains("'w'") && Catch::Contains("w_scale_inv"));
  write_file(file, image(R"({"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("v_scale_inv":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}})",
                         12));
  CHECK_THAT(open_error(dir), Catch::Contains("v_scale_inv") && Catch::Contains("without an F8_E4M3"));
  fs::remove_all(dir);
}

TEST_CASE("a directory without config.json or weights is an error naming the file", "[checkpoint]") {
  const std::string dir = rampart::test::make_temp_dir("rampart-ckpt-empty");
  CHECK_THAT(open_error(dir), Catch::Contains(dir + "/config.json"));
  write_file(dir + "/config.json", synthetic_config_json(tiny()));
  CHECK_THAT(open_error(dir), Catch::Contains(dir + "/model.safetensors") && Catch::Contains("missing"));
  write_file(dir + "/config.json", R"({"architectures":["LlamaForCausalLM"]})");
  CHECK_THAT(open_error(dir), Catch::Contains("config.json") && Catch::Contains("architectures"));
  fs::remove_all(dir);
}
