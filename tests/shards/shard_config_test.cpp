// [engine] keys of the expert shards: shard_endpoints (array of strings), shard_deadline_ms and
// shard_step_deadline_ms.
#include <catch2/catch.hpp>

#include "config/server_config.hpp"

using namespace rampart::config;

namespace {
bool parse(const std::string& text, server_config* c, config_error* err) {
  return parse_server_config(text, "t.toml", "", c, err);
}
}  // namespace

TEST_CASE("engine.shard_endpoints, shard_deadline_ms and shard_step_deadline_ms are read and checked", "[shards][config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("[engine]\nshard_endpoints = [\"tcp://127.0.0.1:7001\", \"tcp://127.0.0.1:7002\"]\n"
                "shard_deadline_ms = 250\nshard_step_deadline_ms = 5000\n",
                &c, &err));
  CHECK(c.engine.shard_step_deadline_ms == 5000);
  CHECK(c.engine.shard_endpoints == std::vector<std::string>{"tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"});
  CHECK(c.engine.shard_deadline_ms == 250);
  REQUIRE(parse("", &c, &err));
  CHECK(c.engine.shard_endpoints.empty());
  CHECK(c.engine.shard_deadline_ms == 1000);
  CHECK(c.engine.shard_step_deadline_ms == 30000);

  CHECK_FALSE(parse("[engine]\nshard_endpoints = \"tcp://127.0.0.1:7001\"\n", &c, &err));
  CHECK(err.key == "engine.shard_endpoints");
  CHECK(err.line == 2);
  CHECK_FALSE(parse("[engine]\nshard_endpoints = [\"tcp://a:1\", 5]\n", &c, &err));
  CHECK(err.message == "expected non-empty endpoint strings");
  CHECK_FALSE(parse("[engine]\nshard_endpoints = [\"\"]\n", &c, &err));
  CHECK_FALSE(parse("[engine]\nshards = 2\nshard_endpoints = [\"tcp://a:1\"]\n", &c, &err));
  CHECK(err.message.find("excludes engine.shards") != std::string::npos);
  CHECK_FALSE(parse("[engine]\nshard_deadline_ms = 0\n", &c, &err));
  CHECK(err.key == "engine.shard_deadline_ms");
  CHECK_FALSE(parse("[engine]\nshard_step_deadline_ms = -1\n", &c, &err));
  CHECK(err.key == "engine.shard_step_deadline_ms");
}
