// Rampart's wire protocol codec (docs/protocol.md): pure functions from frames to messages and back.
// A client message is three frames: protocol id "rampart/1", message type, JSON body (UTF-8).
// Nothing here touches a socket, so it can be tested and fuzzed alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/priority.hpp"

namespace rampart::net {

inline constexpr std::string_view protocol_id = "rampart/1";

// Error codes carried by `error` events. Stable strings (to_string) are part of the protocol.
enum class error_code {
  bad_frame,             // wrong number of frames or empty frames
  unsupported_protocol,  // first frame is not "rampart/1"
  unknown_type,          // message type not understood
  bad_utf8,              // body is not valid UTF-8
  bad_json,              // body is not a JSON object
  bad_parameter,         // a field has the wrong type or an impossible value (message says which)
  prompt_too_long,       // prompt exceeds max_prompt_tokens
  duplicate_request_id,  // a request with this id from this client is still running
  unknown_request,       // cancel for a request id that is not running
  unauthorized,          // the api_key is malformed, unknown, wrong or revoked
  curve_key_taken,       // register: the key is the server's, the registration identity's or another tenant's
  unavailable,           // no model loaded, or a stage is down
  internal,              // a stage failed while serving the request
};
const char* to_string(error_code code);

enum class input_kind { chat, text, ids };

// Request classes (base/priority.hpp), highest first. A higher class may preempt a lower one.
using ::rampart::priority;

struct sampling {
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;   // 0: off
  double min_p = 0.0;  // 0: off
  std::optional<uint64_t> seed;
};

struct generate_request {
  std::string request_id;  // client-chosen, unique among the client's running requests
  input_kind kind = input_kind::text;
  nlohmann::json messages;  // chat: array of {role, content, ...} objects (validated)
  bool add_generation_prompt = true;
  std::string text;            // text
  std::vector<int32_t> ids;    // ids
  size_t input_bytes = 0;      // bytes of client text in the input (text, or every string in messages)
  int64_t max_tokens = 256;
  sampling params;
  std::vector<std::string> stop;
  ::rampart::priority priority = ::rampart::priority::normal;
  std::string api_key;  // empty: anonymous
  bool skip_special_tokens = true;
  bool ignore_eos = false;  // keep generating past end-of-sequence (benchmarks)
};

struct cancel_request {
  std::string request_id;
};

struct register_request {
  std::string name;              // tenant display name
  std::string curve_public_key;  // Z85 (40 characters): the new tenant's CURVE key; empty: none
};

enum class message_type { generate, cancel, ping, stats, register_tenant };

struct client_message {
  message_type type = message_type::ping;
  generate_request generate;
  cancel_request cancel;
  register_request registration;
  // The ping's body object ({} for an empty body), echoed back in pong when its text is at most
  // max_echo_bytes; a larger body is not echoed (echo_omitted), so a pong is never much larger than the
  // server's own report and a client that stops reading cannot make its queued events large.
  nlohmann::json ping_body;
  bool echo_omitted = false;

  // The request id the message names (generate, cancel), "" for the others.
  const std::string& request_id() const {
    static const std::string none;
    return type == message_type::generate ? generate.request_id
           : type == message_type::cancel ? cancel.request_id
                                          : none;
  }
};

// Limits a decoder enforces before anything else sees the request. The structural ones (depth, values, string
// bytes) are checked while the body is parsed, so nothing deeper or larger is ever built, copied or serialised;
// a body past one is refused with bad_frame naming the limit. The field ones are refused with bad_parameter
// (prompt_too_long for ids) naming the field.
struct decode_limits {
  size_t max_body_bytes = 1 << 20;    // the body frame (ZMQ_MAXMSGSIZE bounds the whole message before this)
  size_t max_depth = 32;              // nesting of arrays and objects; the body object itself is level 1
  size_t max_values = 65536;          // JSON values in a body: every object, array, key's value and element
  size_t max_string_bytes = 262144;   // any one string, object keys included
  size_t max_input_bytes = 262144;    // `text`, or all strings of `messages` together
  size_t max_messages = 256;
  int64_t max_prompt_tokens = 8192;   // length of `ids`
  int64_t max_tokens_limit = 4096;
  size_t max_stop_strings = 8;
  size_t max_stop_length = 256;
  size_t max_request_id_length = 128;
  size_t max_echo_bytes = 4096;       // ping bodies up to this size are echoed in pong
  int64_t vocab_size = 0;  // ids must be < vocab_size when > 0
};

// The limits as clients see them (the `limits` object of pong and stats).
nlohmann::json limits_body(const decode_limits& limits);

struct decode_error {
  error_code code = error_code::bad_frame;
  std::string message;
  std::string request_id;  // when the body was readable enough to tell
};

// Decodes the frames a client sent (without the ROUTER's routing-id frame). Returns nullopt and fills *err on
// any problem; never throws.
std::optional<client_message> decode_client_message(const std::vector<std::string_view>& frames,
                                                    const decode_limits& limits, decode_error* err);

// Parses TEXT (already checked to be UTF-8 and at most max_body_bytes) into a DOM, stopping at the first value
// past max_depth, max_values or max_string_bytes. Returns nullopt on any failure, with *VIOLATION naming the
// limit when one stopped it (empty for a syntax error).
std::optional<nlohmann::json> parse_bounded_json(std::string_view text, const decode_limits& limits,
                                                std::string* violation);

// The body of a `generate` (already parsed within LIMITS' structural bounds) checked field by field, as
// decode_client_message does: the one place a generate is validated, whichever door it came through.
std::optional<client_message> decode_generate_body(const nlohmann::json& body, const decode_limits& limits,
                                                   decode_error* err);

// The three frames of a server event: protocol id, event type, JSON body.
std::vector<std::string> encode_event(std::string_view type, const nlohmann::json& body);

// The body of a `token` event written directly, without building a JSON document (the one event sent per
// stream per step): byte for byte what encode_event writes for {request_id, index, text, ids} (keys in its
// order: ids, index, request_id, text). Strings that are not valid UTF-8 go through the document path, which
// replaces what is invalid.
std::string token_event_body(std::string_view request_id, int64_t index, std::string_view text,
                             const int32_t* ids, size_t n_ids);

// The three frames of a client message (used by the client library and tests).
std::vector<std::string> encode_client_message(std::string_view type, const nlohmann::json& body);

// Event bodies, so every sender spells them the same way.
nlohmann::json error_body(std::string_view request_id, error_code code, std::string_view message);
nlohmann::json shed_body(std::string_view request_id, std::string_view reason, int64_t retry_after_ms);

// True when TEXT is well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF).
bool valid_utf8(std::string_view text);

}  // namespace rampart::net
