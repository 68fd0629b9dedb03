#include <catch2/catch.hpp>

#include "net/protocol.hpp"

using namespace rampart::net;
using nlohmann::json;

namespace {
std::optional<client_message> decode(std::vector<std::string> frames, decode_error* err,
                                     decode_limits limits = {}) {
  std::vector<std::string_view> views(frames.begin(), frames.end());
  return decode_client_message(views, limits, err);
}
std::optional<client_message> decode_generate(const json& body, decode_error* err, decode_limits limits = {}) {
  return decode({"rampart/1", "generate", body.dump()}, err, limits);
}
}  // namespace

TEST_CASE("a generate with text and sampling parameters decodes field by field", "[protocol]") {
  decode_error err;
  auto m = decode_generate({{"request_id", "r1"}, {"text", "Hello"}, {"max_tokens", 7}, {"temperature", 0.5},
                            {"top_p", 0.9}, {"top_k", 40}, {"min_p", 0.05}, {"seed", 42},
                            {"stop", {"\n\n", "END"}}, {"priority", "high"}, {"api_key", "k"}},
                           &err);
  REQUIRE(m);
  CHECK(m->type == message_type::generate);
  const auto& g = m->generate;
  CHECK(g.request_id == "r1");
  CHECK(g.kind == input_kind::text);
  CHECK(g.text == "Hello");
  CHECK(g.max_tokens == 7);
  CHECK(g.params.temperature == 0.5);
  CHECK(g.params.top_p == 0.9);
  CHECK(g.params.top_k == 40);
  CHECK(g.params.min_p == 0.05);
  REQUIRE(g.params.seed);
  CHECK(*g.params.seed == 42u);
  CHECK(g.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(g.priority == priority::high);
  CHECK(g.api_key == "k");
}

TEST_CASE("chat messages and token ids are accepted as inputs", "[protocol]") {
  decode_error err;
  auto chat = decode_generate({{"request_id", "c"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}, &err);
  REQUIRE(chat);
  CHECK(chat->generate.kind == input_kind::chat);
  CHECK(chat->generate.messages.size() == 1);
  auto ids = decode_generate({{"request_id", "i"}, {"ids", {0, 15, 27}}}, &err);
  REQUIRE(ids);
  CHECK(ids->generate.ids == std::vector<int32_t>{0, 15, 27});
}

TEST_CASE("each malformed input class gets its specific error code", "[protocol]") {
  decode_error err;
  CHECK_FALSE(decode({"rampart/1", "generate"}, &err));
  CHECK(err.code == error_code::bad_frame);
  CHECK_FALSE(decode({"rampart/2", "ping", "{}"}, &err));
  CHECK(err.code == error_code::unsupported_protocol);
  CHECK_FALSE(decode({"rampart/1", "explode", "{}"}, &err));
  CHECK(err.code == error_code::unknown_type);
  CHECK_FALSE(decode({"rampart/1", "generate", "{\"request_id\": \"a\", \"text\": \"\xff\"}"}, &err));
  CHECK(err.code == error_code::bad_utf8);
  CHECK_FALSE(decode({"rampart/1", "generate", "{not json"}, &err));
  CHECK(err.code == error_code::bad_json);
  CHECK_FALSE(decode({"rampart/1", "generate", "[1, 2]"}, &err));
  CHECK(err.code == error_code::bad_json);
}

TEST_CASE("bad parameters are refused with a message naming the field", "[protocol]") {
  decode_error err;
  const json base = {{"request_id", "r"}, {"text", "x"}};
  auto with = [&](const char* key, json value) {
    json b = base;
    b[key] = std::move(value);
    return b;
  };
  CHECK_FALSE(decode_generate(with("max_tokens", 0), &err));
  CHECK(err.code == error_code::bad_parameter);
  CHECK(err.message.find("max_tokens") != std::string::npos);
  CHECK(err.request_id == "r");
  CHECK_FALSE(decode_generate(with("max_tokens", 100000), &err));
  CHECK_FALSE(decode_generate(with("max_tokens", "5"), &err));
  CHECK_FALSE(decode_generate(with("temperature", -1), &err));
  CHECK(err.message.find("temperature") != std::string::npos);
  CHECK_FALSE(decode_generate(with("top_p", 0), &err));
  CHECK_FALSE(decode_generate(with("top_p", 1.5), &err));
  CHECK_FALSE(decode_generate(with("top_k", -3), &err));
  CHECK_FALSE(decode_generate(with("min_p", 2), &err));
  CHECK_FALSE(decode_generate(with("seed", -1), &err));
  CHECK_FALSE(decode_generate(with("stop", {1, 2}), &err));
  CHECK_FALSE(decode_generate(with("stop", json::array({""})), &err));
  CHECK_FALSE(decode_generate(with("priority", "urgent"), &err));
  CHECK_FALSE(decode_generate(with("messages", json::array()), &err));  // two inputs
  CHECK(err.message.find("exactly one") != std::string::npos);
  CHECK_FALSE(decode_generate({{"request_id", "r"}}, &err));  // no input
  CHECK_FALSE(decode_generate({{"text", "x"}}, &err));        // no request id
  CHECK(err.code == error_code::bad_parameter);
  CHECK_FALSE(decode_generate({{"request_id", "r"}, {"messages", {{{"role", "robot"}, {"content", "x"}}}}}, &err));
  CHECK(err.message.find("role") != std::string::npos);
}

TEST_CASE("token ids must lie inside the vocabulary", "[protocol]") {
  decode_error err;
  decode_limits limits;
  limits.vocab_size = 1000;
  CHECK(decode_generate({{"request_id", "r"}, {"ids", {999}}}, &err, limits));
  CHECK_FALSE(decode_generate({{"request_id", "r"}, {"ids", {1000}}}, &err, limits));
  CHECK_FALSE(decode_generate({{"request_id", "r"}, {"ids", {-1}}}, &err, limits));
  CHECK_FALSE(decode_generate({{"request_id", "r"}, {"ids", {"a"}}}, &err, limits));
}

TEST_CASE("too many stop strings are refused at the configured limit", "[protocol]") {
  decode_error err;
  decode_limits limits;
  limits.max_stop_strings = 2;
  CHECK(decode_generate({{"request_id", "r"}, {"text", "x"}, {"stop", {"a", "b"}}}, &err, limits));
  CHECK_FALSE(decode_generate({{"request_id", "r"}, {"text", "x"}, {"stop", {"a", "b", "c"}}}, &err, limits));
}

TEST_CASE("UTF-8 validation follows RFC 3629", "[protocol]") {
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("\xe4\xbd\xa0\xe5\xa5\xbd"));        // 你好
  CHECK(valid_utf8("\xf0\x9f\x98\x80"));                // U+1F600
  CHECK_FALSE(valid_utf8("\xc0\xaf"));                  // overlong '/'
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));              // surrogate U+D800
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));          // past U+10FFFF
  CHECK_FALSE(valid_utf8("\xe4\xbd"));                  // truncated
  CHECK_FALSE(valid_utf8("\x80"));                      // lone continuation
}

TEST_CASE("events encode as protocol id, type and a JSON body", "[protocol]") {
  auto frames = encode_event("error", error_body("r9", error_code::prompt_too_long, "too long"));
  REQUIRE(frames.size() == 3);
  CHECK(frames[0] == "rampart/1");
  CHECK(frames[1] == "error");
  auto body = json::parse(frames[2]);
  CHECK(body["code"] == "prompt_too_long");
  CHECK(body["request_id"] == "r9");
  auto shed = json::parse(encode_event("shed", shed_body("r", "over_capacity", 250))[2]);
  CHECK(shed["reason"] == "over_capacity");
  CHECK(shed["retry_after_ms"] == 250);
}

TEST_CASE("register takes an optional CURVE public key, which must be 40 characters of Z85", "[protocol]") {
  decode_error err;
  // The server public key from the libzmq CURVE documentation (zmq_curve(7)).
  auto ok = decode({"rampart/1", "register", R"({"name": "n", "curve_public_key": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"})"},
                   &err);
  REQUIRE(ok);
  CHECK(ok->registration.curve_public_key == "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
  auto none = decode({"rampart/1", "register", R"({"name": "n"})"}, &err);
  REQUIRE(none);
  CHECK(none->registration.curve_public_key.empty());
  for (const char* bad : {R"({"curve_public_key": "short"})", R"({"curve_public_key": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~"})",
                          R"({"curve_public_key": 7})", R"({"curve_public_key": "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7x"})"}) {
    INFO(bad);
    CHECK_FALSE(decode({"rampart/1", "register", bad}, &err));
    CHECK(err.code == error_code::bad_parameter);
  }
}
