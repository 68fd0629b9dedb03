// The OpenAI request and response codec: each field onto the protocol's generate, refusals naming the field,
// limits as on the ZeroMQ door, and the JSON shapes the openai SDKs read (from OpenAI's API reference).
#include <catch2/catch.hpp>

#include "net/openai.hpp"

using namespace rampart::net;
using nlohmann::json;
using openai::endpoint;

namespace {

const decode_limits limits;

std::optional<openai::request> chat(const json& body, openai::api_error* err, std::string_view key = "") {
  return openai::decode_request(endpoint::chat_completions, body.dump(), key, "chatcmpl-1-1", "m", limits, err);
}

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

}  // namespace

TEST_CASE("a chat request maps each supported field onto the same generate the ZeroMQ door decodes", "[openai]") {
  openai::api_error err;
  auto r = chat({{"model", "m"},
                 {"messages", user("hi")},
                 {"max_tokens", 7},
                 {"temperature", 0.5},
                 {"top_p", 0.9},
                 {"top_k", 40},
                 {"min_p", 0.05},
                 {"seed", 11},
                 {"stop", {"\n\n", "END"}},
                 {"priority", "high"},
                 {"stream", true},
                 {"stream_options", {{"include_usage", true}}},
                 {"user", "someone"},
                 {"n", 1},
                 {"presence_penalty", 0}},
                &err, "rk_key");
  REQUIRE(r);
  const generate_request& g = r->message.generate;
  CHECK(r->message.type == message_type::generate);
  CHECK(g.request_id == "chatcmpl-1-1");
  CHECK(g.kind == input_kind::chat);
  CHECK(g.messages == json::array({{{"role", "user"}, {"content", "hi"}}}));
  CHECK(g.max_tokens == 7);
  CHECK(g.params.temperature == 0.5);
  CHECK(g.params.top_p == 0.9);
  CHECK(g.params.top_k == 40);
  CHECK(g.params.min_p == 0.05);
  CHECK(g.params.seed == uint64_t{11});
  CHECK(g.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(g.priority == rampart::priority::high);
  CHECK(g.api_key == "rk_key");
  CHECK(r->stream);
  CHECK(r->include_usage);
  CHECK(r->model == "m");
}

TEST_CASE("defaults: chat takes the protocol's 256 tokens, completions OpenAI's 16, null means absent", "[openai]") {
  openai::api_error err;
  auto c = chat({{"model", "m"}, {"messages", user("hi")}, {"temperature", nullptr}, {"stop", nullptr}}, &err);
  REQUIRE(c);
  CHECK(c->message.generate.max_tokens == 256);
  CHECK(c->message.generate.params.temperature == 1.0);
  CHECK_FALSE(c->stream);
  auto p = openai::decode_request(endpoint::completions, R"({"model":"m","prompt":"Once"})", "", "cmpl-1", "m",
                                  limits, &err);
  REQUIRE(p);
  CHECK(p->message.generate.max_tokens == 16);
  CHECK(p->message.generate.kind == input_kind::text);
  CHECK(p->message.generate.text == "Once");
}

TEST_CASE("max_completion_tokens is max_tokens, giving both with different values is refused", "[openai]") {
  openai::api_error err;
  auto r = chat({{"model", "m"}, {"messages", user("hi")}, {"max_completion_tokens", 9}}, &err);
  REQUIRE(r);
  CHECK(r->message.generate.max_tokens == 9);
  CHECK_FALSE(chat({{"model", "m"}, {"messages", user("hi")}, {"max_completion_tokens", 9}, {"max_tokens", 8}}, &err));
  CHECK(err.status == 400);
  CHECK(err.param == "max_completion_tokens");
  CHECK_FALSE(chat({{"model", "m"}, {"messages", user("hi")}, {"max_completion_tokens", 0}}, &err));
  CHECK(err.param == "max_completion_tokens");
  CHECK(err.code == "bad_parameter");
}

TEST_CASE("fields that would change the output are refused by name, neutral values of them accepted", "[openai]") {
  openai::api_error err;
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{{"n", 2},
                                                                               {"logit_bias", {{"5", 1}}},
                                                                               {"tools", json::array()},
                                                                               {"presence_penalty", 0.5},
                                                                               {"frequency_penalty", -1},
                                                                               {"logprobs", true},
                                                                               {"response_format", {{"type", "json_object"}}},
                                                                               {"seed", "seven"}}) {
    json body = {{"model", "m"}, {"messages", user("hi")}};
    body[field] = value;
    INFO(field);
    CHECK_FALSE(chat(body, &err));
    CHECK(err.status == 400);
    CHECK(err.param == field);
    CHECK(err.message.find(field) != std::string::npos);
  }
  json neutral = {{"model", "m"},          {"messages", user("hi")}, {"n", 1},
                  {"logprobs", false},     {"frequency_penalty", 0}, {"response_format", {{"type", "text"}}},
                  {"parallel_tool_calls", false}};
  CHECK(chat(neutral, &err));
}

TEST_CASE("message content: a string, null, or text parts joined, other parts and message fields are refused",
          "[openai]") {
  openai::api_error err;
  json parts = json::array({{{"role", "user"},
                             {"content", json::array({{{"type", "text"}, {"text", "Hel"}},
                                                      {{"type", "text"}, {"text", "lo"}}})}}});
  auto r = chat({{"model", "m"}, {"messages", parts}}, &err);
  REQUIRE(r);
  CHECK(r->message.generate.messages[0]["content"] == "Hello");
  json image = json::array({{{"role", "user"},
                             {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}})}}});
  CHECK_FALSE(chat({{"model", "m"}, {"messages", image}}, &err));
  CHECK(err.param == "messages[0].content");
  json named = json::array({{{"role", "user"}, {"content", "hi"}, {"name", "bob"}}});
  CHECK_FALSE(chat({{"model", "m"}, {"messages", named}}, &err));
  CHECK(err.param == "messages[0].name");
  json bad_role = json::array({{{"role", "wizard"}, {"content", "hi"}}});
  CHECK_FALSE(chat({{"model", "m"}, {"messages", bad_role}}, &err));
  CHECK(err.code == "bad_parameter");
}

TEST_CASE("a completions prompt may be text or token ids, one prompt per request", "[openai]") {
  openai::api_error err;
  auto ids = openai::decode_request(endpoint::completions, R"({"model":"m","prompt":[1,2,3]})", "", "c", "m",
                                    limits, &err);
  REQUIRE(ids);
  CHECK(ids->message.generate.kind == input_kind::ids);
  CHECK(ids->message.generate.ids == std::vector<int32_t>{1, 2, 3});
  auto nested = openai::decode_request(endpoint::completions, R"({"model":"m","prompt":[[4,5]]})", "", "c", "m",
                                       limits, &err);
  REQUIRE(nested);
  CHECK(nested->message.generate.ids == std::vector<int32_t>{4, 5});
  CHECK_FALSE(openai::decode_request(endpoint::completions, R"({"model":"m","prompt":["a","b"]})", "", "c", "m",
                                     limits, &err));
  CHECK(err.param == "prompt");
  CHECK_FALSE(openai::decode_request(endpoint::completions, R"({"model":"m","prompt":"x","messages":[]})", "", "c",
                                     "m", limits, &err));
  CHECK(err.param == "messages");  // chat's field is not one of completions'
}

TEST_CASE("the model must be the one served: 404 model_not_found otherwise", "[openai]") {
  openai::api_error err;
  CHECK_FALSE(chat({{"model", "gpt-4o"}, {"messages", user("hi")}}, &err));
  CHECK(err.status == 404);
  CHECK(err.code == "model_not_found");
  CHECK(err.param == "model");
  CHECK_FALSE(chat({{"messages", user("hi")}}, &err));
  CHECK(err.status == 400);
  CHECK(err.param == "model");
}

TEST_CASE("structural limits hold while the body is parsed, as on the ZeroMQ door", "[openai]") {
  openai::api_error err;
  std::string deep = R"({"model":"m","messages":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK_FALSE(openai::decode_request(endpoint::chat_completions, deep, "", "c", "m", limits, &err));
  CHECK(err.status == 400);
  CHECK(err.message.find("max_depth") != std::string::npos);
  CHECK_FALSE(openai::decode_request(endpoint::chat_completions, "{\"model\":", "", "c", "m", limits, &err));
  CHECK(err.code == "bad_json");
  CHECK_FALSE(openai::decode_request(endpoint::chat_completions, "\xff\xfe", "", "c", "m", limits, &err));
  CHECK(err.code == "bad_utf8");
  decode_limits small;
  small.max_body_bytes = 64;
  CHECK_FALSE(openai::decode_request(endpoint::chat_completions, std::string(65, ' '), "", "c", "m", small, &err));
  CHECK(err.status == 413);
  json many_stops = {{"model", "m"}, {"messages", user("hi")}, {"stop", json::array()}};
  for (int i = 0; i < 9; ++i) many_stops["stop"].push_back("s" + std::to_string(i));
  CHECK_FALSE(chat(many_stops, &err));
  CHECK(err.param == "stop");
  json long_prompt = {{"model", "m"}, {"prompt", json::array()}};
  for (int i = 0; i < 8193; ++i) long_prompt["prompt"].push_back(1);
  CHECK_FALSE(openai::decode_request(endpoint::completions, long_prompt.dump(), "", "c", "m", limits, &err));
  CHECK(err.code == "prompt_too_long");
}

TEST_CASE("the Authorization header: Bearer and a printable key, or nothing", "[openai]") {
  CHECK(openai::bearer_key("") == std::string());
  CHECK(openai::bearer_key("Bearer rk_abc") == std::string("rk_abc"));
  CHECK(openai::bearer_key("bearer   rk_abc  ") == std::string("rk_abc"));
  CHECK_FALSE(openai::bearer_key("Basic dXNlcjpwYXNz"));
  CHECK_FALSE(openai::bearer_key("Bearer "));
  CHECK_FALSE(openai::bearer_key("Bearer a b"));
  CHECK_FALSE(openai::bearer_key("Bearer " + std::string(257, 'k')));
  CHECK_FALSE(openai::bearer_key(std::string("Bearer k\x01")));
}

TEST_CASE("errors and sheds become OpenAI errors with their HTTP status and Retry-After", "[openai]") {
  auto unauthorized = openai::from_error_event({{"code", "unauthorized"}, {"message", "api_key refused"}});
  CHECK(unauthorized.status == 401);
  CHECK(unauthorized.type == "authentication_error");
  CHECK(openai::from_error_event({{"code", "prompt_too_long"}}).status == 400);
  CHECK(openai::from_error_event({{"code", "internal"}}).status == 500);
  CHECK(openai::from_error_event({{"code", "unavailable"}}).status == 503);
  auto shed = openai::from_shed_event({{"reason", "anonymous_closed"}, {"retry_after_ms", 4321}});
  CHECK(shed.status == 429);
  CHECK(shed.type == "rate_limit_error");
  CHECK(shed.code == "anonymous_closed");
  CHECK(shed.retry_after_s == 5);  // rounded up: never earlier than the server said
  CHECK(openai::from_shed_event({{"reason", "rate_limited"}, {"retry_after_ms", 0}}).retry_after_s == 1);
  CHECK(openai::from_shed_event({{"reason", "shutting_down"}}).status == 503);
  CHECK(openai::error_json(shed) == json::parse(R"({"error":{"message":")" + shed.message +
                                                R"(","type":"rate_limit_error","param":null,"code":"anonymous_closed"}})"));
}

TEST_CASE("responses have the shapes of OpenAI's API reference", "[openai]") {
  const json done = {{"request_id", "x"},
                     {"finish_reason", "length"},
                     {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"cached_prompt_tokens", 0}}}};
  const json usage = openai::usage_json(done);
  CHECK(usage == json::parse(
                     R"({"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,"prompt_tokens_details":{"cached_tokens":0}})"));
  CHECK(openai::completion_json(endpoint::chat_completions, "id1", 100, "m", "Hi", "stop", usage) ==
        json::parse(R"({"id":"id1","object":"chat.completion","created":100,"model":"m","choices":[{"index":0,
          "message":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":"stop"}],"usage":)" +
                    usage.dump() + "}"));
  CHECK(openai::chunk_json(endpoint::chat_completions, "id1", 100, "m", "", true, nullptr) ==
        json::parse(R"({"id":"id1","object":"chat.completion.chunk","created":100,"model":"m","choices":[{"index":0,
          "delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})"));
  const std::string length = "length";
  CHECK(openai::chunk_json(endpoint::completions, "c1", 100, "m", "", false, &length) ==
        json::parse(R"({"id":"c1","object":"text_completion","created":100,"model":"m","choices":[{"index":0,
          "text":"","logprobs":null,"finish_reason":"length"}]})"));
  CHECK(openai::usage_chunk_json(endpoint::chat_completions, "id1", 100, "m", usage)["choices"] == json::array());
  CHECK(openai::models_json("m", 7) ==
        json::parse(R"({"object":"list","data":[{"id":"m","object":"model","created":7,"owned_by":"rampart"}]})"));
}
