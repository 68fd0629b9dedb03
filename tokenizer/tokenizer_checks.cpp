#include "tokenizer/tokenizer_checks.hpp"

#include "base/utf8.hpp"
#include "tokenizer/tokenizer_pretokenizer.hpp"

namespace rampart::model {
namespace {

using nlohmann::json;

std::string type_of(const json& j) {
  if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
  return j.dump().substr(0, 60);
}

bool fail(std::string* error, std::string message) {
  *error = std::move(message);
  return false;
}

// True if J has KEY equal to VALUE, or lacks KEY and VALUE is the default.
bool field_is(const json& j, const char* key, const json& value, bool absent_ok) {
  if (!j.contains(key)) return absent_ok;
  return j[key] == value;
}

bool check_split(const json& split, int index, std::string* error) {
  std::string where = "pre_tokenizer step " + std::to_string(index + 1);
  if (!split.is_object() || type_of(split) != "Split") {
    return fail(error, "unsupported pre_tokenizer: " + where + " is " + type_of(split) + ", expected Split");
  }
  const json& pattern = split.value("pattern", json());
  if (!pattern.is_object() || !pattern.contains("Regex") || !pattern["Regex"].is_string() ||
      pattern["Regex"].get<std::string>() != kDeepSeekV3SplitPatterns[index]) {
    return fail(error, "unsupported pre_tokenizer: " + where + " has a pattern other than DeepSeek-V3's");
  }
  if (!field_is(split, "behavior", "Isolated", false) || !field_is(split, "invert", false, true)) {
    return fail(error, "unsupported pre_tokenizer: " + where + " is not an Isolated, non-inverted Split");
  }
  return true;
}

}  // namespace

bool check_pipeline(const std::map<std::string, json>& top, std::string* error) {
  auto get = [&](const char* key) -> json {
    auto it = top.find(key);
    return it == top.end() ? json() : it->second;
  };
  for (const char* key : {"truncation", "padding"}) {
    if (!get(key).is_null()) return fail(error, std::string("unsupported: \"") + key + "\" is set");
  }
  const json normalizer = get("normalizer");
  if (!normalizer.is_null() &&
      !(type_of(normalizer) == "Sequence" && normalizer.value("normalizers", json()) == json::array())) {
    return fail(error, "unsupported normalizer: " + type_of(normalizer));
  }
  const json pre = get("pre_tokenizer");
  if (type_of(pre) != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) {
    return fail(error, "unsupported pre_tokenizer: " + type_of(pre) + " (expected DeepSeek-V3's Sequence)");
  }
  const json& steps = pre["pretokenizers"];
  if (steps.size() != 4) return fail(error, "unsupported pre_tokenizer: Sequence does not have 4 steps");
  for (int i = 0; i < 3; ++i) {
    if (!check_split(steps[static_cast<size_t>(i)], i, error)) return false;
  }
  const json& byte_level = steps[3];
  if (type_of(byte_level) != "ByteLevel" || !field_is(byte_level, "add_prefix_space", false, false) ||
      !field_is(byte_level, "use_regex", false, false)) {
    return fail(error, "unsupported pre_tokenizer: step 4 is not ByteLevel without prefix space and regex");
  }
  const json post = get("post_processor");
  if (!post.is_null() && type_of(post) != "ByteLevel") {
    return fail(error, "unsupported post_processor: " + type_of(post));
  }
  if (type_of(get("decoder")) != "ByteLevel") {
    return fail(error, "unsupported decoder: " + type_of(get("decoder")));
  }
  return true;
}

bool check_model_options(const std::map<std::string, json>& model, std::string* error) {
  auto get = [&](const char* key) -> json {
    auto it = model.find(key);
    return it == model.end() ? json() : it->second;
  };
  if (get("type") != "BPE") return fail(error, "unsupported model type: " + get("type").dump());
  if (!get("dropout").is_null()) return fail(error, "unsupported model option: dropout");
  if (!get("unk_token").is_null()) return fail(error, "unsupported model option: unk_token");
  if (!get("continuing_subword_prefix").is_null() && get("continuing_subword_prefix") != "") {
    return fail(error, "unsupported model option: continuing_subword_prefix");
  }
  if (!get("end_of_word_suffix").is_null() && get("end_of_word_suffix") != "") {
    return fail(error, "unsupported model option: end_of_word_suffix");
  }
  for (const char* flag : {"fuse_unk", "byte_fallback", "ignore_merges"}) {
    json v = get(flag);
    if (!v.is_null() && v != false) return fail(error, std::string("unsupported model option: ") + flag);
  }
  return true;
}

bool read_added_tokens(const json& added, std::vector<added_token_spec>* out, std::string* error) {
  if (added.is_null()) return true;
  if (!added.is_array()) return fail(error, "added_tokens is not an array");
  for (const json& t : added) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
        !t["content"].is_string()) {
      return fail(error, "added token without an integer id and a string content");
    }
    added_token_spec spec;
    spec.id = static_cast<token_id>(t["id"].get<int64_t>());
    if (t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() >= (1 << 24)) {
      return fail(error, "added token id out of range");
    }
    spec.content = t["content"].get<std::string>();
    if (spec.content.empty()) return fail(error, "added token with empty content");
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (t.value(flag, false) != false) {
        return fail(error, std::string("unsupported added token option \"") + flag + "\" on " + spec.content);
      }
    }
    spec.special = t.value("special", false);
    spec.normalized = t.value("normalized", !spec.special);
    out->push_back(std::move(spec));
  }
  return true;
}

bool read_tokenizer_config(std::string_view text, tokenizer_config* out, std::string* error) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return fail(error, "not valid JSON");
  if (!j.is_object()) return fail(error, "not a JSON object");
  auto token_text = [&](const char* key, std::string* value) {
    if (!j.contains(key)) return fail(error, std::string("missing \"") + key + "\"");
    const json& t = j[key];
    if (t.is_string()) {
      *value = t.get<std::string>();
    } else if (t.is_object() && t.contains("content") && t["content"].is_string()) {
      *value = t["content"].get<std::string>();
    } else {
      return fail(error, std::string("\"") + key + "\" is neither a string nor an object with a content");
    }
    return true;
  };
  if (!token_text("bos_token", &out->bos_token) || !token_text("eos_token", &out->eos_token)) return false;
  if (j.contains("add_bos_token") && !j["add_bos_token"].is_boolean()) {
    return fail(error, "\"add_bos_token\" is not a boolean");
  }
  out->add_bos_token = j.value("add_bos_token", false);
  if (j.value("add_eos_token", false) != false) return fail(error, "unsupported: add_eos_token is true");
  if (j.contains("chat_template") && !j["chat_template"].is_null()) {
    if (!j["chat_template"].is_string()) return fail(error, "\"chat_template\" is not a string");
    out->chat_template = j["chat_template"].get<std::string>();
  }
  return true;
}

}  // namespace rampart::model
