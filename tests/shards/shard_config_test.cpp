// [engine] keys of the expert shards: shard_endpoints (array of strings), shard_deadline_ms and
// shard_step_deadline_ms.
#include <catch2/catch.hpp>

#include <fstream>

#include "config/curve_keys.hpp"
#include "config/server_config.hpp"
#include "tests/support/paths.hpp"

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
  CHECK_FALSE(parse("[engine]\nshard_endpoints = [\"tcp://127.0.0.1:1\", 5]\n", &c, &err));
  CHECK(err.message == "expected non-empty strings, found an integer");
  CHECK(err.column == 41);
  CHECK_FALSE(parse("[engine]\nshard_endpoints = [\"\"]\n", &c, &err));
  CHECK_FALSE(parse("[engine]\nshards = 2\nshard_endpoints = [\"tcp://a:1\"]\n", &c, &err));
  CHECK(err.message.find("excludes engine.shards") != std::string::npos);
  CHECK_FALSE(parse("[engine]\nshard_deadline_ms = 0\n", &c, &err));
  CHECK(err.key == "engine.shard_deadline_ms");
  CHECK_FALSE(parse("[engine]\nshard_step_deadline_ms = -1\n", &c, &err));
  CHECK(err.key == "engine.shard_step_deadline_ms");
}

namespace {
// Two syntactically valid CURVE keys (40 characters of Z85); whether they form a pair is checked at start.
const std::string kPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const std::string kSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

std::string key_file() {
  static const std::string path = [] {
    const std::string dir = rampart::test::make_temp_dir("shard-keys");
    std::ofstream(dir + "/link.key") << format_curve_keypair(curve_keypair{kPublic, kSecret});
    return dir + "/link.key";
  }();
  return path;
}
}  // namespace

TEST_CASE("a plain shard link is allowed to loopback endpoints only", "[shards][config]") {
  for (const char* local : {"tcp://127.0.0.1:7001", "tcp://127.255.0.9:1", "tcp://127.0.10.0:7001", "tcp://localhost:7001", "tcp://[::1]:7001",
                            "ipc:///run/rampart/shard0", "inproc://shard0", "tcp://eth0;127.0.0.1:7001"}) {
    INFO(local);
    CHECK(is_loopback_endpoint(local));
  }
  for (const char* remote : {"tcp://*:7001", "tcp://0.0.0.0:7001", "tcp://10.0.0.2:7001", "tcp://128.0.0.1:7001",
                             "tcp://127.0.0.1.example.com:7001", "tcp://1270.0.0.1:7001", "tcp://127.0.0:7001",
                             "tcp://127.0.0.1", "tcp://127.0.0.1;10.0.0.2:7001", "udp://127.0.0.1:7001",
                             "tcp://[::2]:7001", "tcp://127.0.0.256:7001", "tcp://shard0.internal:7001",
                             "tcp://0127.0.0.1:7001", "tcp://127.00.0.1:7001", "tcp://127.0.0.01:7001"}) {
    INFO(remote);
    CHECK_FALSE(is_loopback_endpoint(remote));
  }
  server_config c;
  config_error err;
  CHECK_FALSE(parse("[engine]\nshard_endpoints = [\"tcp://127.0.0.1:7001\", \"tcp://10.0.0.3:7001\"]\n", &c, &err));
  CHECK(err.key == "engine.shard_endpoints");
  CHECK(err.line == 2);
  CHECK(err.column == 44);  // the offending entry, not the array
  CHECK(err.message.find("10.0.0.3:7001 is not on this host") != std::string::npos);
}

TEST_CASE("CURVE on the shard link: the rank's key file and one public key per shard", "[shards][config]") {
  server_config c;
  config_error err;
  const std::string endpoints = "shard_endpoints = [\"tcp://10.0.0.2:7001\", \"tcp://10.0.0.3:7001\"]\n";
  const std::string keyfile = "shard_curve_key_file = \"" + key_file() + "\"\n";
  REQUIRE(parse("[engine]\n" + endpoints + keyfile + "shard_server_keys = [\"" + kPublic + "\", \"" + kPublic + "\"]\n",
                &c, &err));
  CHECK(c.engine.shard_curve_public_key == kPublic);
  CHECK(c.engine.shard_curve_secret_key == kSecret);
  CHECK(c.engine.shard_server_keys == std::vector<std::string>{kPublic, kPublic});

  CHECK_FALSE(parse("[engine]\n" + endpoints + keyfile + "shard_server_keys = [\"" + kPublic + "\"]\n", &c, &err));
  CHECK(err.key == "engine.shard_server_keys");
  CHECK(err.message.find("2 endpoints, 1 keys") != std::string::npos);
  CHECK_FALSE(parse("[engine]\n" + endpoints + keyfile, &c, &err));
  CHECK(err.key == "engine.shard_server_keys");
  CHECK_FALSE(parse("[engine]\n" + endpoints + keyfile + "shard_server_keys = [\"" + kPublic + "\", \"short\"]\n", &c,
                    &err));
  CHECK(err.key == "engine.shard_server_keys");
  CHECK(err.line == 4);
  CHECK(err.column == 66);
  CHECK(err.message.find("not a CURVE public key") != std::string::npos);
  CHECK_FALSE(parse("[engine]\n" + endpoints + "shard_server_keys = [\"" + kPublic + "\", \"" + kPublic + "\"]\n", &c,
                    &err));
  CHECK(err.message.find("set without engine.shard_curve_key_file") != std::string::npos);
  CHECK_FALSE(parse("[engine]\n" + keyfile, &c, &err));
  CHECK(err.message.find("set without engine.shard_endpoints") != std::string::npos);
  CHECK_FALSE(parse("[engine]\n" + endpoints + "shard_curve_key_file = \"/nonexistent/link.key\"\n" +
                        "shard_server_keys = [\"" + kPublic + "\", \"" + kPublic + "\"]\n",
                    &c, &err));
  CHECK(err.key == "engine.shard_curve_key_file");
  CHECK(err.line == 3);
}

TEST_CASE("[shard]: a shard process's keypair and the attention ranks it admits", "[shards][config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("[shard]\ncurve_key_file = \"" + key_file() + "\"\nclient_keys = [\"" + kPublic + "\"]\n", &c, &err));
  CHECK(c.shard.curve_public_key == kPublic);
  CHECK(c.shard.curve_secret_key == kSecret);
  CHECK(c.shard.client_keys == std::vector<std::string>{kPublic});
  REQUIRE(parse("", &c, &err));
  CHECK(c.shard.curve_secret_key.empty());

  CHECK_FALSE(parse("[shard]\ncurve_key_file = \"" + key_file() + "\"\n", &c, &err));
  CHECK(err.key == "shard.client_keys");
  CHECK(err.message.find("needs the public key of every attention rank") != std::string::npos);
  CHECK_FALSE(parse("[shard]\nclient_keys = [\"" + kPublic + "\"]\n", &c, &err));
  CHECK(err.message.find("set without shard.curve_key_file") != std::string::npos);
  CHECK_FALSE(parse("[shard]\nclient_keys = []\nlisten = \"tcp://*:7001\"\n", &c, &err));
  CHECK(err.key == "shard.listen");
  CHECK(err.line == 3);
  CHECK_FALSE(parse("[shard]\ncurve_key_file = \"" + key_file() + "\"\nclient_keys = [\"" + kPublic + "x\"]\n", &c,
                    &err));
  CHECK(err.key == "shard.client_keys");
}

TEST_CASE("engine.shard_slow_factor and shard_slow_hold_ms: off, or a factor no jitter reaches", "[shards][config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("", &c, &err));
  CHECK(c.engine.shard_slow_factor == 4.0);
  CHECK(c.engine.shard_slow_hold_ms == 10000);
  REQUIRE(parse("[engine]\nshard_slow_factor = 0\nshard_slow_hold_ms = 500\n", &c, &err));
  CHECK(c.engine.shard_slow_factor == 0.0);
  CHECK(c.engine.shard_slow_hold_ms == 500);
  REQUIRE(parse("[engine]\nshard_slow_factor = 2.5\n", &c, &err));
  CHECK(c.engine.shard_slow_factor == 2.5);
  CHECK_FALSE(parse("[engine]\nshard_slow_factor = 1.2\n", &c, &err));
  CHECK(err.key == "engine.shard_slow_factor");
  CHECK(err.line == 2);
  CHECK_FALSE(parse("[engine]\nshard_slow_hold_ms = 0\n", &c, &err));
  CHECK(err.key == "engine.shard_slow_hold_ms");
}
