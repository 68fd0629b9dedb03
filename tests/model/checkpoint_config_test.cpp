// model_config::parse on the fixtures' config.json files (values checked by hand against the files and spec
// §1, §4) and on damaged variants of them, each of which must name the offending field.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/model_config.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::model;
using nlohmann::json;

namespace {

json fixture_config(const std::string& name) {
  std::ifstream in(rampart::test::source_dir() + "/tests/fixtures/model/" + name + ".config.json");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string parse_error(const json& j) {
  model_config c;
  std::string err;
  CHECK_FALSE(model_config::parse(j.dump(), "x/config.json", &c, &err));
  return err;
}

model_config parse_ok(const json& j) {
  model_config c;
  std::string err;
  INFO(j.dump());
  if (!model_config::parse(j.dump(), "x/config.json", &c, &err)) FAIL(err);
  return c;
}

}  // namespace

TEST_CASE("the v3 fixture config parses to the tiny DeepSeek-V3 shapes", "[config]") {
  const model_config c = parse_ok(fixture_config("v3-fp8"));
  CHECK(c.family == model_family::deepseek_v3);
  CHECK(c.vocab_size == 1000);
  CHECK(c.hidden_size == 256);
  CHECK(c.num_hidden_layers == 4);
  CHECK(c.num_nextn_predict_layers == 0);
  CHECK(c.first_k_dense_replace == 1);
  CHECK(c.intermediate_size == 512);
  CHECK(c.moe_intermediate_size == 96);
  CHECK(c.n_routed_experts == 16);
  CHECK(c.n_shared_experts == 1);
  CHECK(c.num_experts_per_tok == 4);
  CHECK(c.n_group == 4);
  CHECK(c.topk_group == 2);
  CHECK(c.scoring == router_scoring::sigmoid);
  CHECK(c.topk_method == router_topk::noaux_tc);
  CHECK(c.norm_topk_prob);
  CHECK(c.routed_scaling_factor == 2.5);
  CHECK(c.num_attention_heads == 4);
  CHECK(c.q_lora_rank == 64);
  CHECK(c.kv_lora_rank == 32);
  CHECK(c.qk_nope_head_dim == 32);
  CHECK(c.qk_rope_head_dim == 16);
  CHECK(c.qk_head_dim() == 48);
  CHECK(c.v_head_dim == 32);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.max_position_embeddings == 163840);
  CHECK(c.yarn.enabled);
  CHECK(c.yarn.factor == 40.0);
  CHECK(c.yarn.original_max_position_embeddings == 4096);
  CHECK(c.yarn.beta_fast == 32.0);
  CHECK(c.yarn.beta_slow == 1.0);
  CHECK(c.yarn.mscale == 1.0);
  CHECK(c.yarn.mscale_all_dim == 1.0);
  CHECK(c.bos_token_id == 0);
  CHECK(c.eos_token_id == 1);
  CHECK(c.fp8_block_quantized);
  CHECK_FALSE(c.is_moe_layer(0));
  CHECK(c.is_moe_layer(1));
  CHECK(c.is_moe_layer(3));
  CHECK_FALSE(parse_ok(fixture_config("v3-bf16")).fp8_block_quantized);
}

TEST_CASE("the v2-lite fixture config parses to a softmax greedy router without q LoRA", "[config]") {
  const model_config c = parse_ok(fixture_config("v2lite-bf16"));
  CHECK(c.family == model_family::deepseek_v2);
  CHECK(c.q_lora_rank == 0);
  CHECK(c.n_shared_experts == 2);
  CHECK(c.n_group == 1);
  CHECK(c.topk_group == 1);
  CHECK(c.scoring == router_scoring::softmax);
  CHECK(c.topk_method == router_topk::greedy);
  CHECK_FALSE(c.norm_topk_prob);
  CHECK(c.routed_scaling_factor == 1.0);
  CHECK(c.yarn.mscale == 0.707);
  CHECK(c.yarn.mscale_all_dim == 0.707);
  CHECK_FALSE(c.fp8_block_quantized);
}

TEST_CASE("DeepSeek-V2 group_limited_greedy and optional fields parse", "[config]") {
  json j = fixture_config("v2lite-bf16");
  j["topk_method"] = "group_limited_greedy";
  j["n_group"] = 4;
  j["topk_group"] = 2;
  j["q_lora_rank"] = 64;
  j["eos_token_id"] = json::array({7, 9});
  j["rope_scaling"].erase("mscale_all_dim");
  model_config c = parse_ok(j);
  CHECK(c.topk_method == router_topk::group_limited_greedy);
  CHECK(c.q_lora_rank == 64);
  CHECK(c.eos_token_id == 7);
  CHECK(c.yarn.mscale_all_dim == 0.0);  // absent: no attention-scale correction (spec §3.4)
  j["rope_scaling"] = nullptr;
  c = parse_ok(j);
  CHECK_FALSE(c.yarn.enabled);
  j.erase("architectures");  // model_type alone identifies the family
  CHECK(parse_ok(j).family == model_family::deepseek_v2);
}

TEST_CASE("an unsupported architecture or model_type is an error naming the field", "[config]") {
  json j = fixture_config("v3-bf16");
  j["architectures"] = {"LlamaForCausalLM"};
  CHECK_THAT(parse_error(j), Catch::Contains("x/config.json") && Catch::Contains("architectures") &&
                                 Catch::Contains("LlamaForCausalLM"));
  j = fixture_config("v3-bf16");
  j["model_type"] = "deepseek_v2";
  CHECK_THAT(parse_error(j), Catch::Contains("model_type") && Catch::Contains("contradicts"));
  j.erase("architectures");
  j.erase("model_type");
  CHECK_THAT(parse_error(j), Catch::Contains("architectures"));
}

TEST_CASE("a missing or mistyped required field is an error naming it", "[config]") {
  for (const char* field : {"hidden_size", "vocab_size", "num_hidden_layers", "kv_lora_rank",
                            "qk_rope_head_dim", "moe_intermediate_size", "num_experts_per_tok"}) {
    json j = fixture_config("v3-bf16");
    j.erase(field);
    CHECK_THAT(parse_error(j), Catch::Contains(std::string("'") + field + "'") && Catch::Contains("missing"));
    j[field] = "256";
    CHECK_THAT(parse_error(j), Catch::Contains(field) && Catch::Contains("integer"));
  }
  json j = fixture_config("v3-bf16");
  j["hidden_size"] = -4;
  CHECK_THAT(parse_error(j), Catch::Contains("hidden_size"));
  j = fixture_config("v3-bf16");
  j["norm_topk_prob"] = 1;
  CHECK_THAT(parse_error(j), Catch::Contains("norm_topk_prob"));
  CHECK_THAT(parse_error(json::array()), Catch::Contains("x/config.json"));
  model_config c;
  std::string err;
  CHECK_FALSE(model_config::parse("{\"vocab_size\": 10,", "x/config.json", &c, &err));
  CHECK_THAT(err, Catch::Contains("x/config.json"));
}

TEST_CASE("a quantization_config other than fp8 e4m3 128x128 is an error naming the field", "[config]") {
  const std::vector<std::pair<std::string, json>> bad = {
      {"quant_method", "awq"},
      {"fmt", "e5m2"},
      {"weight_block_size", json::array({64, 64})},
      {"weight_block_size", json::array({128})},
      {"activation_scheme", "static"},
  };
  for (const auto& [field, value] : bad) {
    json j = fixture_config("v3-fp8");
    j["quantization_config"][field] = value;
    CHECK_THAT(parse_error(j), Catch::Contains("quantization_config." + field));
  }
  json j = fixture_config("v3-fp8");
  j["quantization_config"].erase("weight_block_size");
  CHECK_THAT(parse_error(j), Catch::Contains("weight_block_size"));
  j["quantization_config"] = "fp8";
  CHECK_THAT(parse_error(j), Catch::Contains("quantization_config"));
}

TEST_CASE("unsupported router, rope and layer settings are errors naming the field", "[config]") {
  const std::vector<std::pair<std::string, json>> bad = {
      {"scoring_func", "sqrtsoftplus"},
      {"topk_method", "random"},
      {"hidden_act", "gelu"},
      {"tie_word_embeddings", true},
      {"attention_bias", true},
      {"topk_group", 5},
      {"n_group", 3},
      {"num_experts_per_tok", 17},
      {"qk_rope_head_dim", 15},
      {"first_k_dense_replace", 5},
      {"moe_layer_freq", 0},
      {"eos_token_id", 1000},
  };
  for (const auto& [field, value] : bad) {
    json j = fixture_config("v3-bf16");
    j[field] = value;
    INFO(field);
    CHECK_THAT(parse_error(j), Catch::Contains("'" + field + "'"));
  }
  json j = fixture_config("v3-bf16");
  j["rope_scaling"]["type"] = "linear";
  CHECK_THAT(parse_error(j), Catch::Contains("rope_scaling.type") && Catch::Contains("linear"));
  j = fixture_config("v3-bf16");
  j["rope_scaling"].erase("factor");
  CHECK_THAT(parse_error(j), Catch::Contains("rope_scaling.factor"));
  j = fixture_config("v3-bf16");
  j["rope_scaling"]["original_max_position_embeddings"] = 4096.5;
  CHECK_THAT(parse_error(j), Catch::Contains("original_max_position_embeddings"));
  // noaux_tc scores groups by their two best experts, so groups of one expert are invalid.
  j = fixture_config("v3-bf16");
  j["n_group"] = 16;
  j["topk_group"] = 8;
  CHECK_THAT(parse_error(j), Catch::Contains("n_group"));
}

TEST_CASE("sizes far past any DeepSeek model are refused before anything is sized from them", "[config]") {
  const std::pair<const char*, int64_t> absurd[] = {
      {"hidden_size", int64_t{1} << 40}, {"vocab_size", (int64_t{1} << 24) + 1}, {"num_hidden_layers", 1025},
      {"kv_lora_rank", int64_t{1} << 20}, {"n_routed_experts", int64_t{1} << 17},
      {"max_position_embeddings", int64_t{1} << 30}, {"num_experts_per_tok", 4096}};
  for (const auto& [field, value] : absurd) {
    json j = fixture_config("v3-bf16");
    j[field] = value;
    INFO(field);
    CHECK_THAT(parse_error(j), Catch::Contains(std::string("'") + field + "'") && Catch::Contains("must be <="));
  }
  // The real DeepSeek-V3 sizes (spec §1) are well inside.
  json v3 = fixture_config("v3-bf16");
  v3["vocab_size"] = 129280;
  v3["hidden_size"] = 7168;
  v3["num_hidden_layers"] = 61;
  v3["n_routed_experts"] = 256;
  v3["max_position_embeddings"] = 163840;
  const model_config c = parse_ok(v3);
  CHECK(c.hidden_size == 7168);
}
