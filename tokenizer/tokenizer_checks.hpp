// Checks of the small sections of tokenizer.json and of tokenizer_config.json: everything but the vocab and the
// merges. Each returns false with a one-line *ERROR (without the file name) for anything not reproduced exactly.
// Private to model/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"

namespace rampart::model {

// normalizer, pre_tokenizer, post_processor, decoder, truncation and padding of tokenizer.json's top level.
bool check_pipeline(const std::map<std::string, nlohmann::json>& top, std::string* error);

// The options of "model" other than vocab and merges.
bool check_model_options(const std::map<std::string, nlohmann::json>& model, std::string* error);

struct added_token_spec {
  std::string content;
  token_id id = -1;
  bool special = false;
  bool normalized = false;
};
bool read_added_tokens(const nlohmann::json& added, std::vector<added_token_spec>* out, std::string* error);

struct tokenizer_config {
  std::string bos_token;
  std::string eos_token;
  bool add_bos_token = false;
  std::string chat_template;  // empty when the file has none
};
bool read_tokenizer_config(std::string_view text, tokenizer_config* out, std::string* error);

}  // namespace rampart::model
