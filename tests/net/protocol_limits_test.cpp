// The decoder's structural and field limits: every client-controlled position, at and past each bound.
#include <catch2/catch.hpp>

#include "net/protocol.hpp"

using namespace rampart::net;
using nlohmann::json;

namespace {

std::optional<client_message> decode_text(const std::string& type, const std::string& body, decode_error* err,
                                          decode_limits limits = {}) {
  std::vector<std::string_view> frames = {"rampart/1", type, body};
  return decode_client_message(frames, limits, err);
}

// LEVELS nested arrays: "[[[...]]]" (LEVELS opening brackets).
std::string nested_arrays(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

constexpr size_t kHostileDepth = 200000;

}  // namespace

TEST_CASE("a value nested 200,000 levels deep is refused in every position a client controls", "[protocol]") {
  const std::string deep = nested_arrays(kHostileDepth);
  // Every message type and every place a client value can sit: the body itself, messages[i], an unknown extra
  // field, stop, and the content of a message.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ping", R"({"a":)" + deep + "}"},
      {"stats", R"({"a":)" + deep + "}"},
      {"register", R"({"name":"n","extra":)" + deep + "}"},
      {"cancel", R"({"request_id":"r","extra":)" + deep + "}"},
      {"generate", R"({"request_id":"r","messages":[)" + deep + "]}"},
      {"generate", R"({"request_id":"r","messages":[{"role":"user","content":)" + deep + "}]}"},
      {"generate", R"({"request_id":"r","text":"x","unknown":)" + deep + "}"},
      {"generate", R"({"request_id":"r","text":"x","stop":)" + deep + "}"},
      {"generate", R"({"request_id":"r","ids":)" + deep + "}"},
  };
  for (const auto& [type, body] : cases) {
    INFO(type << " " << body.substr(0, 60));
    decode_error err;
    CHECK_FALSE(decode_text(type, body, &err));
    CHECK(err.code == error_code::bad_frame);
    CHECK(err.message.find("max_depth") != std::string::npos);
  }
}

TEST_CASE("nesting is counted from the body object: 32 levels pass, 33 are refused", "[protocol]") {
  decode_error err;
  // The body object is level 1, so 31 arrays inside it make 32 levels.
  auto at_limit = decode_text("ping", R"({"a":)" + nested_arrays(31) + "}", &err);
  REQUIRE(at_limit);
  CHECK(at_limit->ping_body.dump() == R"({"a":)" + nested_arrays(31) + "}");
  CHECK_FALSE(decode_text("ping", R"({"a":)" + nested_arrays(32) + "}", &err));
  CHECK(err.code == error_code::bad_frame);
  CHECK(err.message.find("32") != std::string::npos);
}

TEST_CASE("a body with more JSON values than max_values is refused before it is built", "[protocol]") {
  decode_limits limits;
  limits.max_values = 10;
  decode_error err;
  // The body object, the key's array and its elements: 1 + 1 + 8 = 10 values pass; one more is refused.
  CHECK(decode_text("ping", R"({"a":[1,2,3,4,5,6,7,8]})", &err, limits));
  CHECK_FALSE(decode_text("ping", R"({"a":[1,2,3,4,5,6,7,8,9]})", &err, limits));
  CHECK(err.code == error_code::bad_frame);
  CHECK(err.message.find("max_values") != std::string::npos);
  // The default bound refuses a 1 MiB body of empty arrays (about 349,000 values).
  std::string many = R"({"a":[)";
  while (many.size() < (1 << 20) - 8) many += "[],";
  many += "0]}";
  CHECK_FALSE(decode_text("ping", many, &err));
  CHECK(err.message.find("max_values") != std::string::npos);
}

TEST_CASE("strings and object keys longer than max_string_bytes are refused", "[protocol]") {
  decode_limits limits;
  limits.max_string_bytes = 16;
  decode_error err;
  CHECK(decode_text("ping", R"({"k":")" + std::string(16, 'x') + R"("})", &err, limits));
  CHECK_FALSE(decode_text("ping", R"({"k":")" + std::string(17, 'x') + R"("})", &err, limits));
  CHECK(err.message.find("max_string_bytes") != std::string::npos);
  CHECK_FALSE(decode_text("ping", R"({")" + std::string(17, 'k') + R"(":1})", &err, limits));
  CHECK(err.code == error_code::bad_frame);
}

TEST_CASE("text and the strings of messages are bounded together by max_input_bytes", "[protocol]") {
  decode_limits limits;
  limits.max_input_bytes = 10;
  decode_error err;
  CHECK(decode_text("generate", R"({"request_id":"r","text":"0123456789"})", &err, limits));
  CHECK_FALSE(decode_text("generate", R"({"request_id":"r","text":"0123456789a"})", &err, limits));
  CHECK(err.code == error_code::bad_parameter);
  CHECK(err.message.find("max_input_bytes") != std::string::npos);
  // Counted: every key and string of every message. "role"+"user"+"content"+"ab" = 4+4+7+2 = 17 bytes.
  limits.max_input_bytes = 17;
  auto ok = decode_text("generate", R"({"request_id":"r","messages":[{"role":"user","content":"ab"}]})", &err, limits);
  REQUIRE(ok);
  CHECK(ok->generate.input_bytes == 17);
  CHECK_FALSE(decode_text("generate", R"({"request_id":"r","messages":[{"role":"user","content":"abc"}]})", &err,
                          limits));
  CHECK(err.message.find("max_input_bytes") != std::string::npos);
}

TEST_CASE("more messages than max_messages are refused naming the limit", "[protocol]") {
  decode_limits limits;
  limits.max_messages = 2;
  decode_error err;
  const json m = {{"role", "user"}, {"content", "x"}};
  CHECK(decode_text("generate", json{{"request_id", "r"}, {"messages", {m, m}}}.dump(), &err, limits));
  CHECK_FALSE(decode_text("generate", json{{"request_id", "r"}, {"messages", {m, m, m}}}.dump(), &err, limits));
  CHECK(err.code == error_code::bad_parameter);
  CHECK(err.message.find("max_messages") != std::string::npos);
}

TEST_CASE("ids longer than max_prompt_tokens are refused as prompt_too_long before they are copied", "[protocol]") {
  decode_limits limits;
  limits.max_prompt_tokens = 4;
  decode_error err;
  CHECK(decode_text("generate", R"({"request_id":"r","ids":[1,2,3,4]})", &err, limits));
  CHECK_FALSE(decode_text("generate", R"({"request_id":"r","ids":[1,2,3,4,5]})", &err, limits));
  CHECK(err.code == error_code::prompt_too_long);
  CHECK(err.request_id == "r");
}

TEST_CASE("a body past max_message_size is refused as bad_frame naming the limit", "[protocol]") {
  decode_limits limits;
  limits.max_body_bytes = 8;
  decode_error err;
  CHECK(decode_text("ping", R"({"a":1})", &err, limits));
  CHECK_FALSE(decode_text("ping", R"({"a":123})", &err, limits));
  CHECK(err.code == error_code::bad_frame);
  CHECK(err.message.find("max_message_size") != std::string::npos);
}

TEST_CASE("ping echoes its body object, an empty body as {}", "[protocol]") {
  decode_error err;
  auto empty = decode_text("ping", "", &err);
  REQUIRE(empty);
  CHECK(empty->ping_body == json::object());
  auto braces = decode_text("ping", "{}", &err);
  REQUIRE(braces);
  CHECK(braces->ping_body == json::object());
  auto tagged = decode_text("ping", R"({"tag":[1,"two"]})", &err);
  REQUIRE(tagged);
  CHECK(tagged->ping_body == json{{"tag", {1, "two"}}});
}

TEST_CASE("the limits object names every bound a client can hit", "[protocol]") {
  decode_limits limits;
  limits.vocab_size = 129280;
  const json l = limits_body(limits);
  CHECK(l["vocab_size"] == 129280);
  CHECK(l["max_depth"] == 32);
  CHECK(l["max_message_size"] == 1 << 20);
  CHECK(l["max_prompt_tokens"] == 8192);
  CHECK(l["max_tokens_limit"] == 4096);
  CHECK(l["max_stop_strings"] == 8);
}

TEST_CASE("a ping body over max_echo_bytes is accepted but not echoed", "[protocol]") {
  decode_limits limits;
  limits.max_echo_bytes = 16;
  decode_error err;
  auto small = decode_text("ping", R"({"tag":"0123456"})", &err, limits);  // 17 bytes
  REQUIRE(small);
  CHECK(small->echo_omitted);
  CHECK(small->ping_body == json::object());
  auto fits = decode_text("ping", R"({"tag":"012345"})", &err, limits);  // 16 bytes
  REQUIRE(fits);
  CHECK_FALSE(fits->echo_omitted);
  CHECK(fits->ping_body == json{{"tag", "012345"}});
}

TEST_CASE("an error about a client's string quotes at most 32 bytes of it", "[protocol]") {
  decode_error err;
  const std::string role(100000, 'r');
  CHECK_FALSE(decode_text("generate", json{{"request_id", "r"}, {"messages", {{{"role", role}}}}}.dump(), &err));
  CHECK(err.code == error_code::bad_parameter);
  CHECK(err.message.size() < 128);
}
