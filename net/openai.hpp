// The OpenAI-compatible HTTP API's codec (docs/http-api.md): pure functions from a request body to the same
// `generate` the ZeroMQ protocol carries, and from the server's events back to OpenAI's JSON. Nothing here
// touches a socket, so it is tested and fuzzed alone (tests/fuzz/fuzz_openai.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "net/protocol.hpp"

namespace rampart::net::openai {

enum class endpoint { chat_completions, completions };

// An error as OpenAI clients read it: the HTTP status, and {"error": {message, type, param, code}}.
struct api_error {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string code;     // Rampart's error code or shed reason ("bad_parameter", "rate_limited", ...)
  std::string param;    // the field to blame, when there is one
  std::string message;
  int64_t retry_after_s = 0;  // > 0: sent as Retry-After (429 and 503)
};
nlohmann::json error_json(const api_error& e);

struct request {
  endpoint kind = endpoint::chat_completions;
  client_message message;  // a generate, request_id and api_key set
  std::string model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage and no choices
};

// Default max_tokens when the body names none: OpenAI's 16 for completions; for chat, the protocol's default.
inline constexpr int64_t default_completion_tokens = 16;

// Decodes BODY, sent to KIND by a client whose Authorization header carried API_KEY ("" for none), into a
// generate named REQUEST_ID for the model SERVED_MODEL. Every limit of LIMITS applies as on the ZeroMQ door,
// structural ones while parsing; a field Rampart does not support is refused naming it, unless it is given its
// neutral value (n = 1, presence_penalty = 0, logprobs = false, ...). Never throws.
std::optional<request> decode_request(endpoint kind, std::string_view body, std::string_view api_key,
                                      std::string_view request_id, std::string_view served_model,
                                      const decode_limits& limits, api_error* err);

// The key in an Authorization header value: "Bearer <key>" (scheme case-insensitive). Empty header: "" (anonymous).
// Anything else (another scheme, no key, a key with spaces or longer than 256 bytes) is nullopt: refuse it.
std::optional<std::string> bearer_key(std::string_view header);

// The HTTP error for a Rampart `error` or `shed` event body.
api_error from_error_event(const nlohmann::json& body);
api_error from_shed_event(const nlohmann::json& body);

// OpenAI's usage object from a `done` event body.
nlohmann::json usage_json(const nlohmann::json& done_body);

// One streamed chunk: the text delta (chat: in `delta.content`; the first chunk also carries the role), or the
// last one with FINISH_REASON set. CREATED is Unix seconds.
nlohmann::json chunk_json(endpoint kind, std::string_view id, int64_t created, std::string_view model,
                          std::string_view text, bool first, const std::string* finish_reason);
// The chunk after the last choice when include_usage was asked: no choices, usage set.
nlohmann::json usage_chunk_json(endpoint kind, std::string_view id, int64_t created, std::string_view model,
                                const nlohmann::json& usage);
// A whole (non-streamed) answer.
nlohmann::json completion_json(endpoint kind, std::string_view id, int64_t created, std::string_view model,
                               std::string_view text, std::string_view finish_reason, const nlohmann::json& usage);
// GET /v1/models.
nlohmann::json models_json(std::string_view model, int64_t created);

}  // namespace rampart::net::openai
