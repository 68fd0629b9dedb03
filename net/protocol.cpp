#include "net/protocol.hpp"

#include "base/utf8.hpp"

#include <cmath>

#include <zmq.h>

namespace rampart::net {

const char* to_string(error_code code) {
  switch (code) {
    case error_code::bad_frame: return "bad_frame";
    case error_code::unsupported_protocol: return "unsupported_protocol";
    case error_code::unknown_type: return "unknown_type";
    case error_code::bad_utf8: return "bad_utf8";
    case error_code::bad_json: return "bad_json";
    case error_code::bad_parameter: return "bad_parameter";
    case error_code::prompt_too_long: return "prompt_too_long";
    case error_code::duplicate_request_id: return "duplicate_request_id";
    case error_code::unknown_request: return "unknown_request";
    case error_code::unauthorized: return "unauthorized";
    case error_code::curve_key_taken: return "curve_key_taken";
    case error_code::unavailable: return "unavailable";
    case error_code::internal: return "internal";
  }
  return "internal";
}

bool valid_utf8(std::string_view s) { return model::utf8::is_valid(s); }

namespace {

using json = nlohmann::json;

struct field_error {
  std::string message;
  bool too_long = false;  // the prompt itself is over its limit: prompt_too_long rather than bad_parameter
};

// Builds the body's DOM through nlohmann's SAX interface and stops at the first value past a structural limit,
// so a hostile body is refused after reading at most its first over-deep or over-long value. Everything that
// later copies, walks or serialises a decoded body (ping echo, event encoder, chat template) relies on this
// bound: it recurses once per nesting level.
class bounded_dom_builder {
 public:
  bounded_dom_builder(json& root, const decode_limits& limits) : dom_(root, false), limits_(limits) {}

  bool null() { return value() && dom_.null(); }
  bool boolean(bool v) { return value() && dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return value() && dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value() && dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const std::string& s) { return value() && dom_.number_float(v, s); }
  bool string(std::string& v) { return value() && fits(v) && dom_.string(v); }
  bool binary(json::binary_t& v) { return value() && dom_.binary(v); }
  bool start_object(std::size_t n) { return value() && open() && dom_.start_object(n); }
  bool key(std::string& k) { return fits(k) && dom_.key(k); }
  bool end_object() {
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) { return value() && open() && dom_.start_array(n); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  bool parse_error(std::size_t pos, const std::string& token, const nlohmann::detail::exception& ex) {
    return dom_.parse_error(pos, token, ex);
  }

  // Empty unless a limit stopped the parse: then which one, in the words of the error message.
  const std::string& violation() const { return violation_; }

 private:
  bool value() {
    if (++values_ <= limits_.max_values) return true;
    return refuse("more than " + std::to_string(limits_.max_values) + " JSON values (limit max_values)");
  }
  bool open() {
    if (++depth_ <= limits_.max_depth) return true;
    return refuse("nested deeper than " + std::to_string(limits_.max_depth) + " levels (limit max_depth)");
  }
  bool fits(const std::string& s) {
    if (s.size() <= limits_.max_string_bytes) return true;
    return refuse("a string is longer than " + std::to_string(limits_.max_string_bytes) +
                  " bytes (limit max_string_bytes)");
  }
  bool refuse(std::string why) {
    violation_ = std::move(why);
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  const decode_limits& limits_;
  size_t depth_ = 0;
  size_t values_ = 0;
  std::string violation_;
};

// Each reader returns false and sets *e when the field is present with a wrong type or value.
bool read_string(const json& body, const char* key, std::string* out, size_t max_len, field_error* e) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_string()) {
    e->message = std::string(key) + " must be a string";
    return false;
  }
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_len) {
    e->message = std::string(key) + " is longer than " + std::to_string(max_len) + " bytes";
    return false;
  }
  *out = s;
  return true;
}

bool read_number(const json& body, const char* key, double* out, double lo, double hi, field_error* e) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number()) {
    e->message = std::string(key) + " must be a number";
    return false;
  }
  double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    e->message = std::string(key) + " must be in [" + json(lo).dump() + ", " + json(hi).dump() + "]";
    return false;
  }
  *out = v;
  return true;
}

bool read_int(const json& body, const char* key, int64_t* out, int64_t lo, int64_t hi, field_error* e) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_number_integer()) {
    e->message = std::string(key) + " must be an integer";
    return false;
  }
  if (it->is_number_unsigned() ? it->get<uint64_t>() > static_cast<uint64_t>(hi) : it->get<int64_t>() > hi) {
    e->message = std::string(key) + " must be at most " + std::to_string(hi);
    return false;
  }
  int64_t v = it->get<int64_t>();
  if (v < lo) {
    e->message = std::string(key) + " must be at least " + std::to_string(lo);
    return false;
  }
  *out = v;
  return true;
}

// Bytes of every string (keys included) in V; recursion is bounded by decode_limits::max_depth.
size_t string_bytes(const json& v) {
  size_t n = 0;
  if (v.is_string()) return v.get_ref<const std::string&>().size();
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) n += k.size() + string_bytes(x);
  } else if (v.is_array()) {
    for (const auto& x : v) n += string_bytes(x);
  }
  return n;
}

bool read_messages(const json& body, const decode_limits& limits, generate_request* r, field_error* e) {
  const json& m = body.at("messages");
  if (!m.is_array() || m.empty()) {
    e->message = "messages must be a non-empty array";
    return false;
  }
  if (m.size() > limits.max_messages) {
    e->message = "more than " + std::to_string(limits.max_messages) + " messages (limit max_messages)";
    return false;
  }
  size_t input_bytes = 0;
  for (const auto& msg : m) {
    if (!msg.is_object()) {
      e->message = "each message must be an object";
      return false;
    }
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string()) {
      e->message = "each message needs a string role";
      return false;
    }
    const auto& rs = role->get_ref<const std::string&>();
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "tool") {
      std::string shown = rs.substr(0, 32);  // bounded: error events stay small whatever the client sent
      if (!valid_utf8(shown)) shown = "(cut inside a character)";
      e->message = "role must be system, user, assistant or tool, not \"" + shown + "\"";
      return false;
    }
    auto content = msg.find("content");
    if (content != msg.end() && !content->is_string() && !content->is_null()) {
      e->message = "message content must be a string";
      return false;
    }
    input_bytes += string_bytes(msg);
    if (input_bytes > limits.max_input_bytes) {
      e->message = "messages hold more than " + std::to_string(limits.max_input_bytes) +
                   " bytes of text (limit max_input_bytes)";
      return false;
    }
  }
  r->kind = input_kind::chat;
  r->messages = m;  // bounded by max_depth and max_values: the copy cannot recurse far or grow large
  r->input_bytes = input_bytes;
  return true;
}

bool read_text(const json& body, const decode_limits& limits, generate_request* r, field_error* e) {
  const json& t = body.at("text");
  if (!t.is_string() || t.get_ref<const std::string&>().empty()) {
    e->message = "text must be a non-empty string";
    return false;
  }
  if (t.get_ref<const std::string&>().size() > limits.max_input_bytes) {
    e->message = "text is longer than " + std::to_string(limits.max_input_bytes) + " bytes (limit max_input_bytes)";
    return false;
  }
  r->kind = input_kind::text;
  r->text = t.get<std::string>();
  r->input_bytes = r->text.size();
  return true;
}

bool read_ids(const json& body, const decode_limits& limits, generate_request* r, field_error* e) {
  const json& ids = body.at("ids");
  if (!ids.is_array() || ids.empty()) {
    e->message = "ids must be a non-empty array of token ids";
    return false;
  }
  if (static_cast<int64_t>(ids.size()) > limits.max_prompt_tokens) {
    e->too_long = true;
    e->message = "ids holds " + std::to_string(ids.size()) + " tokens, more than max_prompt_tokens " +
                 std::to_string(limits.max_prompt_tokens);
    return false;
  }
  r->kind = input_kind::ids;
  r->ids.reserve(ids.size());
  for (const auto& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        (limits.vocab_size > 0 && id.get<int64_t>() >= limits.vocab_size) || id.get<int64_t>() > INT32_MAX) {
      e->message = "ids must be integers in [0, vocab_size)";
      return false;
    }
    r->ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return true;
}

bool read_sampling(const json& body, generate_request* r, field_error* e) {
  if (!read_number(body, "temperature", &r->params.temperature, 0.0, 100.0, e)) return false;
  if (!read_number(body, "top_p", &r->params.top_p, 0.0, 1.0, e)) return false;
  if (body.contains("top_p") && r->params.top_p <= 0.0) {
    e->message = "top_p must be in (0, 1]";
    return false;
  }
  if (!read_int(body, "top_k", &r->params.top_k, 0, 1 << 30, e)) return false;
  if (!read_number(body, "min_p", &r->params.min_p, 0.0, 1.0, e)) return false;
  if (body.contains("seed") && !body.at("seed").is_null()) {
    int64_t seed = 0;
    if (!read_int(body, "seed", &seed, 0, INT64_MAX, e)) return false;
    r->params.seed = static_cast<uint64_t>(seed);
  }
  return true;
}

bool read_stop(const json& body, const decode_limits& limits, generate_request* r, field_error* e) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return true;
  if (it->is_string()) {
    r->stop.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& s : *it) {
      if (!s.is_string()) {
        e->message = "stop must be a string or an array of strings";
        return false;
      }
      r->stop.push_back(s.get<std::string>());
    }
  } else {
    e->message = "stop must be a string or an array of strings";
    return false;
  }
  if (r->stop.size() > limits.max_stop_strings) {
    e->message = "stop holds more than " + std::to_string(limits.max_stop_strings) + " strings (limit max_stop_strings)";
    return false;
  }
  for (const auto& s : r->stop) {
    if (s.empty() || s.size() > limits.max_stop_length) {
      e->message = "stop strings must be 1 to " + std::to_string(limits.max_stop_length) + " bytes";
      return false;
    }
  }
  return true;
}

// An optional boolean field: absent keeps *OUT.
bool read_bool(const json& body, const char* name, bool* out, field_error* e) {
  auto it = body.find(name);
  if (it == body.end()) return true;
  if (!it->is_boolean()) {
    e->message = std::string(name) + " must be a boolean";
    return false;
  }
  *out = it->get<bool>();
  return true;
}

bool read_generate(const json& body, const decode_limits& limits, generate_request* r, field_error* e) {
  int inputs = body.contains("messages") + body.contains("text") + body.contains("ids");
  if (inputs != 1) {
    e->message = "exactly one of messages, text or ids is required";
    return false;
  }
  const bool input_ok = body.contains("messages") ? read_messages(body, limits, r, e)
                        : body.contains("text")   ? read_text(body, limits, r, e)
                                                  : read_ids(body, limits, r, e);
  if (!input_ok) return false;
  if (!read_int(body, "max_tokens", &r->max_tokens, 1, limits.max_tokens_limit, e)) return false;
  if (!read_sampling(body, r, e) || !read_stop(body, limits, r, e)) return false;
  std::string asked = "normal";
  if (!read_string(body, "priority", &asked, 32, e)) return false;
  if (asked == "low") asked = "sheddable";  // accepted as a synonym
  if (!priority_from_name(asked, &r->priority)) {
    e->message = "priority must be critical, high, normal or sheddable";
    return false;
  }
  return read_string(body, "api_key", &r->api_key, 256, e) &&
         read_bool(body, "add_generation_prompt", &r->add_generation_prompt, e) &&
         read_bool(body, "ignore_eos", &r->ignore_eos, e) &&
         read_bool(body, "skip_special_tokens", &r->skip_special_tokens, e);
}

}  // namespace

std::optional<nlohmann::json> parse_bounded_json(std::string_view text, const decode_limits& limits,
                                                std::string* violation) {
  violation->clear();
  json root;
  bounded_dom_builder builder(root, limits);
  if (!json::sax_parse(text.begin(), text.end(), &builder)) {
    *violation = builder.violation();
    return std::nullopt;  // ROOT, with whatever was built before the stop, is freed iteratively by nlohmann
  }
  return root;
}

std::optional<client_message> decode_generate_body(const nlohmann::json& body, const decode_limits& limits,
                                                   decode_error* err) {
  err->request_id.clear();
  auto fail = [&](error_code code, std::string message) -> std::optional<client_message> {
    err->code = code;
    err->message = std::move(message);
    return std::nullopt;
  };
  if (!body.is_object()) return fail(error_code::bad_json, "body must be a JSON object");
  auto it = body.find("request_id");
  if (it == body.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
      it->get_ref<const std::string&>().size() > limits.max_request_id_length) {
    return fail(error_code::bad_parameter, "request_id must be a non-empty string of at most " +
                                               std::to_string(limits.max_request_id_length) + " bytes");
  }
  client_message msg;
  msg.type = message_type::generate;
  msg.generate.request_id = it->get<std::string>();
  err->request_id = msg.generate.request_id;
  field_error fe;
  if (!read_generate(body, limits, &msg.generate, &fe)) {
    return fail(fe.too_long ? error_code::prompt_too_long : error_code::bad_parameter, fe.message);
  }
  return msg;
}

std::optional<client_message> decode_client_message(const std::vector<std::string_view>& frames,
                                                    const decode_limits& limits, decode_error* err) {
  auto fail = [&](error_code code, std::string message) -> std::optional<client_message> {
    err->code = code;
    err->message = std::move(message);
    return std::nullopt;
  };
  err->request_id.clear();
  if (frames.size() != 3) {
    return fail(error_code::bad_frame,
                "expected 3 frames (protocol, type, body), got " + std::to_string(frames.size()));
  }
  if (frames[0] != protocol_id) {
    return fail(error_code::unsupported_protocol, "first frame must be \"rampart/1\"");
  }
  client_message msg;
  const std::string_view type = frames[1];
  if (type == "generate") msg.type = message_type::generate;
  else if (type == "cancel") msg.type = message_type::cancel;
  else if (type == "ping") msg.type = message_type::ping;
  else if (type == "stats") msg.type = message_type::stats;
  else if (type == "register") msg.type = message_type::register_tenant;
  else {
    std::string shown(type.substr(0, 32));
    if (!valid_utf8(shown)) shown = "(binary)";
    return fail(error_code::unknown_type, "unknown message type \"" + shown + "\"");
  }
  const std::string_view body_text = frames[2];
  if (body_text.size() > limits.max_body_bytes) {
    return fail(error_code::bad_frame,
                "body is larger than " + std::to_string(limits.max_body_bytes) + " bytes (limit max_message_size)");
  }
  if (!valid_utf8(body_text)) return fail(error_code::bad_utf8, "body is not valid UTF-8");
  json body = json::object();
  if (!body_text.empty()) {
    std::string violation;
    auto parsed = parse_bounded_json(body_text, limits, &violation);
    if (!parsed) {
      if (!violation.empty()) return fail(error_code::bad_frame, "body " + violation);
      return fail(error_code::bad_json, "body must be a JSON object");
    }
    body = std::move(*parsed);
  }
  if (!body.is_object()) return fail(error_code::bad_json, "body must be a JSON object");
  field_error fe;
  if (msg.type == message_type::generate) return decode_generate_body(body, limits, err);
  if (msg.type == message_type::cancel) {
    std::string id;
    auto it = body.find("request_id");
    if (it == body.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
        it->get_ref<const std::string&>().size() > limits.max_request_id_length) {
      return fail(error_code::bad_parameter, "request_id must be a non-empty string of at most " +
                                                 std::to_string(limits.max_request_id_length) + " bytes");
    }
    id = it->get<std::string>();
    err->request_id = id;
    msg.cancel.request_id = id;
    return msg;
  }
  if (msg.type == message_type::register_tenant) {
    if (!read_string(body, "name", &msg.registration.name, 128, &fe) ||
        !read_string(body, "curve_public_key", &msg.registration.curve_public_key, 40, &fe)) {
      return fail(error_code::bad_parameter, fe.message);
    }
    const std::string& key = msg.registration.curve_public_key;
    uint8_t decoded[32];
    if (!key.empty() && (key.size() != 40 || zmq_z85_decode(decoded, key.c_str()) == nullptr)) {
      return fail(error_code::bad_parameter, "curve_public_key must be a CURVE public key (40 characters of Z85)");
    }
    return msg;
  }
  if (msg.type == message_type::ping) {
    if (body_text.size() <= limits.max_echo_bytes) msg.ping_body = std::move(body);
    else {
      msg.ping_body = json::object();
      msg.echo_omitted = true;
    }
  }
  return msg;
}

nlohmann::json limits_body(const decode_limits& l) {
  return {{"max_message_size", l.max_body_bytes},
          {"max_depth", l.max_depth},
          {"max_values", l.max_values},
          {"max_string_bytes", l.max_string_bytes},
          {"max_input_bytes", l.max_input_bytes},
          {"max_messages", l.max_messages},
          {"max_prompt_tokens", l.max_prompt_tokens},
          {"max_tokens_limit", l.max_tokens_limit},
          {"max_stop_strings", l.max_stop_strings},
          {"max_stop_length", l.max_stop_length},
          {"max_request_id_length", l.max_request_id_length},
          {"max_echo_bytes", l.max_echo_bytes},
          {"vocab_size", l.vocab_size}};
}

std::vector<std::string> encode_event(std::string_view type, const nlohmann::json& body) {
  return {std::string(protocol_id), std::string(type),
          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

namespace {
// Appends S, valid UTF-8, as a JSON string the way nlohmann's dump writes it (ensure_ascii off).
void append_json_string(std::string* out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(hex[c >> 4]);
          out->push_back(hex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}
}  // namespace

std::string token_event_body(std::string_view request_id, int64_t index, std::string_view text,
                             const int32_t* ids, size_t n_ids) {
  if (!valid_utf8(request_id) || !valid_utf8(text)) {  // the document path, which replaces invalid UTF-8
    return nlohmann::json{{"request_id", request_id},
                          {"index", index},
                          {"text", text},
                          {"ids", std::vector<int32_t>(ids, ids + n_ids)}}
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out;
  out.reserve(48 + request_id.size() + text.size() + 8 * n_ids);
  out.append("{\"ids\":[");
  for (size_t i = 0; i < n_ids; ++i) {
    if (i > 0) out.push_back(',');
    out.append(std::to_string(ids[i]));
  }
  out.append("],\"index\":");
  out.append(std::to_string(index));
  out.append(",\"request_id\":");
  append_json_string(&out, request_id);
  out.append(",\"text\":");
  append_json_string(&out, text);
  out.push_back('}');
  return out;
}

std::vector<std::string> encode_client_message(std::string_view type, const nlohmann::json& body) {
  return encode_event(type, body);
}

nlohmann::json error_body(std::string_view request_id, error_code code, std::string_view message) {
  nlohmann::json b = {{"code", to_string(code)}, {"message", message}};
  if (!request_id.empty()) b["request_id"] = request_id;
  return b;
}

nlohmann::json shed_body(std::string_view request_id, std::string_view reason, int64_t retry_after_ms) {
  nlohmann::json b = {{"reason", reason}, {"retry_after_ms", retry_after_ms}};
  if (!request_id.empty()) b["request_id"] = request_id;
  return b;
}

}  // namespace rampart::net
