#include "net/openai.hpp"

#include <cctype>
#include <cmath>
#include <initializer_list>

namespace rampart::net::openai {
namespace {

using json = nlohmann::json;

api_error invalid(std::string param, std::string message, std::string code = "bad_parameter") {
  api_error e;
  e.status = 400;
  e.type = "invalid_request_error";
  e.code = std::move(code);
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

// A key as it may appear in an error message: at most 64 bytes, and only when it is printable ASCII.
std::string shown_key(const std::string& key) {
  std::string s = key.substr(0, 64);
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return "(unprintable)";
  }
  return s;
}

bool is_one_of(const std::string& key, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (key == n) return true;
  }
  return false;
}

// A field Rampart does not implement is accepted only at the value that leaves the output unchanged.
bool neutral(const std::string& key, const json& v) {
  if (v.is_null()) return true;
  if (key == "n" || key == "best_of") return v.is_number_integer() && v.get<int64_t>() == 1;
  if (key == "presence_penalty" || key == "frequency_penalty") return v.is_number() && v.get<double>() == 0.0;
  if (key == "logprobs" || key == "echo" || key == "parallel_tool_calls") return v.is_boolean() && !v.get<bool>();
  if (key == "response_format") {
    return v.is_object() && v.size() == 1 && v.contains("type") && v["type"] == "text";
  }
  if (key == "suffix") return v.is_string() && v.get_ref<const std::string&>().empty();
  return false;
}

// Fields each endpoint reads (Rampart's extensions included: top_k, min_p, priority, ignore_eos,
// skip_special_tokens), those accepted at their neutral value only, and `user`, which changes nothing.
const std::initializer_list<const char*> chat_fields = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "top_k", "min_p", "seed", "stop", "priority", "ignore_eos", "skip_special_tokens", "user"};
const std::initializer_list<const char*> completion_fields = {
    "model", "prompt", "stream", "stream_options", "max_tokens", "temperature", "top_p", "top_k", "min_p",
    "seed", "stop", "priority", "ignore_eos", "skip_special_tokens", "user"};
const std::initializer_list<const char*> neutral_fields = {
    "n", "best_of", "presence_penalty", "frequency_penalty", "logprobs", "echo", "parallel_tool_calls",
    "response_format", "suffix"};

// OpenAI message content: a string, null, or an array of text parts (joined).
bool read_content(const json& content, size_t index, std::string* out, api_error* err) {
  const std::string param = "messages[" + std::to_string(index) + "].content";
  if (content.is_string()) {
    *out = content.get<std::string>();
    return true;
  }
  if (!content.is_array()) {
    *err = invalid(param, param + " must be a string or an array of text parts");
    return false;
  }
  for (const auto& part : content) {
    auto type = part.is_object() ? part.find("type") : part.end();
    auto text = part.is_object() ? part.find("text") : part.end();
    if (!part.is_object() || type == part.end() || *type != "text" || text == part.end() || !text->is_string() ||
        part.size() != 2) {
      *err = invalid(param, param + ": only parts {\"type\": \"text\", \"text\": ...} are supported",
                     "unsupported_parameter");
      return false;
    }
    *out += text->get_ref<const std::string&>();
  }
  return true;
}

bool read_messages(const json& messages, json* out, api_error* err) {
  if (!messages.is_array() || messages.empty()) {
    *err = invalid("messages", "messages must be a non-empty array");
    return false;
  }
  *out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) {
      *err = invalid(param, param + " must be an object");
      return false;
    }
    json copy = json::object();
    for (const auto& [key, value] : m.items()) {
      if (key == "role") {
        copy["role"] = value;  // checked by the protocol's decoder
      } else if (key == "content") {
        if (value.is_null()) {
          copy["content"] = nullptr;
          continue;
        }
        std::string text;
        if (!read_content(value, i, &text, err)) return false;
        copy["content"] = std::move(text);
      } else {
        *err = invalid(param + "." + shown_key(key),
                       param + "." + shown_key(key) + " is not supported (messages take role and content)",
                       "unsupported_parameter");
        return false;
      }
    }
    out->push_back(std::move(copy));
  }
  return true;
}

// `prompt`: a string, an array of one string, an array of token ids, or an array of one array of ids.
bool read_prompt(const json& prompt, json* body, api_error* err) {
  if (prompt.is_string()) {
    (*body)["text"] = prompt;
    return true;
  }
  if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    (*body)["text"] = prompt[0];
    return true;
  }
  if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_array()) {
    (*body)["ids"] = prompt[0];
    return true;
  }
  if (prompt.is_array() && !prompt.empty() && prompt[0].is_number()) {
    (*body)["ids"] = prompt;
    return true;
  }
  *err = invalid("prompt", "prompt must be a string or an array of token ids (one prompt per request)");
  return false;
}

// The protocol decoder's message starts with the field it blames; OpenAI clients read it from `param`.
std::string blamed_field(const std::string& message) {
  size_t n = 0;
  while (n < message.size() && (std::isalnum(static_cast<unsigned char>(message[n])) || message[n] == '_')) ++n;
  std::string word = message.substr(0, n);
  if (word == "text") return "prompt";
  if (word == "ids") return "prompt";
  if (is_one_of(word, chat_fields) || is_one_of(word, completion_fields)) return word;
  return "";
}

}  // namespace

json error_json(const api_error& e) {
  json inner = {{"message", e.message}, {"type", e.type}};
  inner["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  inner["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return {{"error", std::move(inner)}};
}

std::optional<std::string> bearer_key(std::string_view header) {
  if (header.empty()) return std::string();
  constexpr std::string_view scheme = "bearer ";
  if (header.size() <= scheme.size()) return std::nullopt;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return std::nullopt;
  }
  std::string_view key = header.substr(scheme.size());
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  if (key.empty() || key.size() > 256) return std::nullopt;
  for (char c : key) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) > 0x7e) return std::nullopt;
  }
  return std::string(key);
}

std::optional<request> decode_request(endpoint kind, std::string_view body, std::string_view api_key,
                                      std::string_view request_id, std::string_view served_model,
                                      const decode_limits& limits, api_error* err) {
  if (body.size() > limits.max_body_bytes) {
    *err = invalid("", "the body is larger than " + std::to_string(limits.max_body_bytes) +
                           " bytes (limit max_message_size)", "bad_frame");
    err->status = 413;
    return std::nullopt;
  }
  if (!valid_utf8(body)) {
    *err = invalid("", "the body is not valid UTF-8", "bad_utf8");
    return std::nullopt;
  }
  std::string violation;
  auto parsed = parse_bounded_json(body, limits, &violation);
  if (!parsed || !parsed->is_object()) {
    if (!violation.empty()) *err = invalid("", "the body is " + violation, "bad_frame");
    else *err = invalid("", "the body must be a JSON object", "bad_json");
    return std::nullopt;
  }
  const json& in = *parsed;
  const auto& fields = kind == endpoint::chat_completions ? chat_fields : completion_fields;
  for (const auto& [key, value] : in.items()) {
    if (is_one_of(key, fields)) continue;
    if (is_one_of(key, neutral_fields) && neutral(key, value)) continue;
    *err = invalid(shown_key(key),
                   is_one_of(key, neutral_fields)
                       ? shown_key(key) + " is supported only at its default value"
                       : shown_key(key) + " is not supported by this server",
                   "unsupported_parameter");
    return std::nullopt;
  }

  request r;
  r.kind = kind;
  auto model = in.find("model");
  if (model == in.end() || !model->is_string()) {
    *err = invalid("model", "model must be a string naming the served model (GET /v1/models)");
    return std::nullopt;
  }
  r.model = model->get<std::string>();
  if (r.model != served_model) {
    *err = invalid("model", "the model \"" + r.model.substr(0, 128) + "\" is not served here; this server serves \"" +
                                std::string(served_model) + "\"",
                   "model_not_found");
    err->status = 404;
    if (!valid_utf8(err->message)) err->message = "the model named is not served here";
    return std::nullopt;
  }
  auto stream = in.find("stream");
  if (stream != in.end() && !stream->is_null()) {
    if (!stream->is_boolean()) {
      *err = invalid("stream", "stream must be a boolean");
      return std::nullopt;
    }
    r.stream = stream->get<bool>();
  }
  auto options = in.find("stream_options");
  if (options != in.end() && !options->is_null()) {
    if (!options->is_object()) {
      *err = invalid("stream_options", "stream_options must be an object");
      return std::nullopt;
    }
    for (const auto& [key, value] : options->items()) {
      if (key != "include_usage" || !value.is_boolean()) {
        *err = invalid("stream_options", "stream_options takes include_usage (a boolean) only",
                       "unsupported_parameter");
        return std::nullopt;
      }
      r.include_usage = value.get<bool>();
    }
  }

  // The same generate the ZeroMQ door decodes, checked by the same code.
  json g = json::object();
  g["request_id"] = request_id;
  if (kind == endpoint::chat_completions) {
    auto messages = in.find("messages");
    if (messages == in.end()) {
      *err = invalid("messages", "messages is required");
      return std::nullopt;
    }
    json m;
    if (!read_messages(*messages, &m, err)) return std::nullopt;
    g["messages"] = std::move(m);
  } else {
    auto prompt = in.find("prompt");
    if (prompt == in.end()) {
      *err = invalid("prompt", "prompt is required");
      return std::nullopt;
    }
    if (!read_prompt(*prompt, &g, err)) return std::nullopt;
  }
  auto max_tokens = in.find("max_tokens");
  auto max_completion = in.find("max_completion_tokens");
  const bool has_max = max_tokens != in.end() && !max_tokens->is_null();
  const bool has_completion = max_completion != in.end() && !max_completion->is_null();
  if (has_max && has_completion && *max_tokens != *max_completion) {
    *err = invalid("max_completion_tokens", "max_tokens and max_completion_tokens differ: give one");
    return std::nullopt;
  }
  if (has_completion) g["max_tokens"] = *max_completion;
  else if (has_max) g["max_tokens"] = *max_tokens;
  else if (kind == endpoint::completions) g["max_tokens"] = std::min(default_completion_tokens, limits.max_tokens_limit);
  for (const char* key : {"temperature", "top_p", "top_k", "min_p", "seed", "stop", "priority", "ignore_eos",
                          "skip_special_tokens"}) {
    auto it = in.find(key);
    if (it != in.end() && !it->is_null()) g[key] = *it;
  }
  if (!api_key.empty()) g["api_key"] = api_key;

  decode_error de;
  auto msg = decode_generate_body(g, limits, &de);
  if (!msg) {
    std::string param = blamed_field(de.message);
    if (de.message.rfind("max_tokens", 0) == 0 && has_completion) param = "max_completion_tokens";
    *err = invalid(param, de.message, to_string(de.code));
    return std::nullopt;
  }
  r.message = std::move(*msg);
  return r;
}

api_error from_error_event(const json& body) {
  api_error e;
  e.code = body.value("code", std::string("internal"));
  e.message = body.value("message", std::string());
  if (e.code == "unauthorized") {
    e.status = 401;
    e.type = "authentication_error";
  } else if (e.code == "unavailable") {
    e.status = 503;
    e.type = "server_error";
    e.retry_after_s = 1;
  } else if (e.code == "internal") {
    e.status = 500;
    e.type = "server_error";
  } else {
    e.status = 400;
    e.type = "invalid_request_error";
  }
  return e;
}

api_error from_shed_event(const json& body) {
  api_error e;
  e.code = body.value("reason", std::string("over_capacity"));
  const int64_t ms = body.value("retry_after_ms", int64_t{0});
  e.retry_after_s = std::max<int64_t>(1, (ms + 999) / 1000);
  if (e.code == "shutting_down") {
    e.status = 503;
    e.type = "server_error";
    e.message = "the server is shutting down";
  } else if (e.code == "denied_source") {
    e.status = 403;
    e.type = "permission_error";
    e.message = "requests from this address are refused for now";
  } else {
    e.status = 429;
    e.type = "rate_limit_error";
    e.message = "the server shed this request (" + e.code + "); retry after " + std::to_string(e.retry_after_s) + " s";
  }
  return e;
}

json usage_json(const json& done_body) {
  const json& u = done_body.contains("usage") ? done_body["usage"] : json::object();
  const int64_t prompt = u.value("prompt_tokens", int64_t{0});
  const int64_t completion = u.value("completion_tokens", int64_t{0});
  json usage = {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  if (u.contains("cached_prompt_tokens")) {
    usage["prompt_tokens_details"] = {{"cached_tokens", u["cached_prompt_tokens"]}};
  }
  return usage;
}

json chunk_json(endpoint kind, std::string_view id, int64_t created, std::string_view model, std::string_view text,
                bool first, const std::string* finish_reason) {
  json choice = {{"index", 0}};
  if (kind == endpoint::chat_completions) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || first) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  return {{"id", id},
          {"object", kind == endpoint::chat_completions ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})}};
}

json usage_chunk_json(endpoint kind, std::string_view id, int64_t created, std::string_view model,
                      const json& usage) {
  return {{"id", id},
          {"object", kind == endpoint::chat_completions ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage}};
}

json completion_json(endpoint kind, std::string_view id, int64_t created, std::string_view model,
                     std::string_view text, std::string_view finish_reason, const json& usage) {
  json choice = {{"index", 0}};
  if (kind == endpoint::chat_completions) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason;
  return {{"id", id},
          {"object", kind == endpoint::chat_completions ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({std::move(choice)})},
          {"usage", usage}};
}

json models_json(std::string_view model, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "rampart"}}})}};
}

}  // namespace rampart::net::openai
