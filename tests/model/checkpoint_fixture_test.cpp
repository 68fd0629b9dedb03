// The checkpoints rebuilt by the CTest fixture model.fixtures.build (rampart-mkmodel --preset tiny with each
// golden file's args) must be the fixtures byte for byte (sha256 from the golden files) and load to the
// fixtures' configs.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/checkpoint.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::model;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string fixture_path(const std::string& file) {
  return rampart::test::source_dir() + "/tests/fixtures/model/" + file;
}

const char* const fixtures[] = {"v3-bf16", "v3-fp8", "v2lite-bf16"};

}  // namespace

TEST_CASE("rebuilt fixture checkpoints have the golden sha256", "[fixtures]") {
  for (const char* name : fixtures) {
    INFO(name);
    const auto golden = nlohmann::json::parse(read_file(fixture_path(std::string(name) + ".golden.json")));
    const std::string want = golden.at("generator").at("sha256").at("model.safetensors").get<std::string>();
    const std::string got =
        sha256_hex(read_file(std::string(RAMPART_TEST_MODELS_DIR) + "/" + name + "/model.safetensors"));
    CHECK(got == want);
  }
}

TEST_CASE("rebuilt fixture checkpoints load with the fixtures' configs", "[fixtures]") {
  // Tensor counts from the fixtures' headers: 4 layers, 16 experts, plus one scale per fp8 matrix.
  const size_t tensor_counts[] = {201, 377, 190};
  for (int i = 0; i < 3; ++i) {
    const std::string name = fixtures[i];
    INFO(name);
    load_error err;
    auto ck = checkpoint::open(std::string(RAMPART_TEST_MODELS_DIR) + "/" + name, &err);
    INFO(err.message);
    REQUIRE(ck);
    CHECK(ck->names().size() == tensor_counts[i]);

    model_config want;
    std::string config_err;
    REQUIRE(model_config::parse(read_file(fixture_path(name + ".config.json")), name, &want, &config_err));
    const model_config& got = ck->config();
    CHECK(got.family == want.family);
    CHECK(got.vocab_size == want.vocab_size);
    CHECK(got.hidden_size == want.hidden_size);
    CHECK(got.num_hidden_layers == want.num_hidden_layers);
    CHECK(got.num_nextn_predict_layers == want.num_nextn_predict_layers);
    CHECK(got.first_k_dense_replace == want.first_k_dense_replace);
    CHECK(got.moe_layer_freq == want.moe_layer_freq);
    CHECK(got.intermediate_size == want.intermediate_size);
    CHECK(got.moe_intermediate_size == want.moe_intermediate_size);
    CHECK(got.n_routed_experts == want.n_routed_experts);
    CHECK(got.n_shared_experts == want.n_shared_experts);
    CHECK(got.num_experts_per_tok == want.num_experts_per_tok);
    CHECK(got.n_group == want.n_group);
    CHECK(got.topk_group == want.topk_group);
    CHECK(got.scoring == want.scoring);
    CHECK(got.topk_method == want.topk_method);
    CHECK(got.norm_topk_prob == want.norm_topk_prob);
    CHECK(got.routed_scaling_factor == want.routed_scaling_factor);
    CHECK(got.num_attention_heads == want.num_attention_heads);
    CHECK(got.q_lora_rank == want.q_lora_rank);
    CHECK(got.kv_lora_rank == want.kv_lora_rank);
    CHECK(got.qk_nope_head_dim == want.qk_nope_head_dim);
    CHECK(got.qk_rope_head_dim == want.qk_rope_head_dim);
    CHECK(got.v_head_dim == want.v_head_dim);
    CHECK(got.rms_norm_eps == want.rms_norm_eps);
    CHECK(got.rope_theta == want.rope_theta);
    CHECK(got.yarn.enabled == want.yarn.enabled);
    CHECK(got.yarn.factor == want.yarn.factor);
    CHECK(got.yarn.original_max_position_embeddings == want.yarn.original_max_position_embeddings);
    CHECK(got.yarn.beta_fast == want.yarn.beta_fast);
    CHECK(got.yarn.beta_slow == want.yarn.beta_slow);
    CHECK(got.yarn.mscale == want.yarn.mscale);
    CHECK(got.yarn.mscale_all_dim == want.yarn.mscale_all_dim);
    CHECK(got.max_position_embeddings == want.max_position_embeddings);
    CHECK(got.bos_token_id == want.bos_token_id);
    CHECK(got.eos_token_id == want.eos_token_id);
    CHECK(got.fp8_block_quantized == want.fp8_block_quantized);

    // Hand-checked against the fixture README: hidden 256, 4 layers, vocab 1000, 16 experts of width 96.
    CHECK(got.hidden_size == 256);
    CHECK(got.num_hidden_layers == 4);
    CHECK(got.vocab_size == 1000);
    CHECK(got.n_routed_experts == 16);
    CHECK(got.moe_intermediate_size == 96);
    CHECK(ck->require("model.embed_tokens.weight", {1000, 256}, &err));
    CHECK(ck->require("lm_head.weight", {1000, 256}, &err));
    CHECK(ck->require("model.layers.3.mlp.experts.15.down_proj.weight", {256, 96}, &err));
  }
}
