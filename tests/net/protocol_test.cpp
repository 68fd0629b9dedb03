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

namespace {
// The reference: the token event as a JSON document, dumped the way encode_event dumps bodies.
std::string token_document(const std::string& request_id, int64_t index, const std::string& text,
                           const std::vector<int32_t>& ids) {
  return json{{"request_id", request_id}, {"index", index}, {"text", text}, {"ids", ids}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}
std::string token_direct(const std::string& request_id, int64_t index, const std::string& text,
                         const std::vector<int32_t>& ids) {
  return token_event_body(request_id, index, text, ids.data(), ids.size());
}
}  // namespace

TEST_CASE("a token event written directly is byte for byte the JSON document's encoding", "[protocol]") {
  CHECK(token_direct("r1", 0, "Hello", {9906}) == R"({"ids":[9906],"index":0,"request_id":"r1","text":"Hello"})");
  CHECK(token_direct("", 12, "", {}) == R"({"ids":[],"index":12,"request_id":"","text":""})");
  std::vector<std::string> texts = {
      "plain", "quote \" and backslash \\ and slash /", "tab\tnewline\ncr\rbs\bff\f",
      std::string("nul \0 and \x01 \x1f \x7f", 15), "two-byte \xc3\xa9, three \xe2\x82\xac, four \xf0\x9f\x98\x80",
      "edges \xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf",
      // Not UTF-8: lone continuation, truncated sequences, overlong forms, surrogates, past U+10FFFF, 0xff.
      "\x80", "a\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
      "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "ok \xfe then ok"};
  for (const auto& t : texts) {
    INFO(json(t).dump(-1, ' ', true, json::error_handler_t::replace));
    CHECK(token_direct("id-\"x\"", 3, t, {1, 2, 129279}) == token_document("id-\"x\"", 3, t, {1, 2, 129279}));
    CHECK(token_direct(t, 3, "t", {}) == token_document(t, 3, "t", {}));
  }
  // Random bytes, mostly ASCII with some of every kind: 20,000 texts of up to 40 bytes.
  uint64_t x = 88172645463325252ull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const char* pieces[] = {"a", "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x80", "\xed\xa0\x80", "\xf8"};
  int mismatches = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string t;
    const int parts = static_cast<int>(next() % 12);
    for (int p = 0; p < parts; ++p) t += pieces[next() % (sizeof pieces / sizeof pieces[0])];
    const std::vector<int32_t> ids = {static_cast<int32_t>(next() % 129280)};
    mismatches += token_direct("r", n, t, ids) != token_document("r", n, t, ids);
  }
  CHECK(mismatches == 0);
}

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
