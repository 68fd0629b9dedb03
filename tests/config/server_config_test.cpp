#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "config/server_config.hpp"
#include "tests/support/paths.hpp"

using namespace rampart::config;

namespace {
bool parse(const std::string& text, server_config* out, config_error* err) {
  return parse_server_config(text, "test.toml", "/base", out, err);
}
}  // namespace

TEST_CASE("the embedded default parses and matches the shipped file", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse_server_config(embedded_default_config(), "<embedded>", "", &c, &err));
  CHECK(c.frontend.endpoint == "tcp://127.0.0.1:5555");
  CHECK(c.frontend.max_message_size == 1048576);
  CHECK(c.metrics.listen == "127.0.0.1:9464");
  server_config shipped;
  REQUIRE(load_server_config(rampart::test::source_dir() + "/config/rampart.toml", &shipped, &err));
  CHECK(shipped.frontend.endpoint == c.frontend.endpoint);
  CHECK(shipped.engine.kv_blocks == c.engine.kv_blocks);
}

TEST_CASE("an empty file gives the documented defaults", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("", &c, &err));
  CHECK(c.frontend.endpoint == "tcp://127.0.0.1:5555");
  CHECK(c.frontend.handshake_ivl_ms == 2000);
  CHECK(c.log.level == "info");
  CHECK(c.actors.scheduler_policy == "sharing");
  CHECK(c.engine.pack_weights);
}

TEST_CASE("engine.pack_weights is a boolean", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("[engine]\npack_weights = false\n", &c, &err));
  CHECK_FALSE(c.engine.pack_weights);
  REQUIRE_FALSE(parse("[engine]\npack_weights = 1\n", &c, &err));
  CHECK(err.key == "engine.pack_weights");
}

TEST_CASE("a syntax error reports file, line and column", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(parse("[frontend]\nendpoint = \"tcp://x:1\"\nrcvhwm = = 5\n", &c, &err));
  CHECK(err.file == "test.toml");
  CHECK(err.line == 3);
  CHECK(err.column == 10);
  CHECK(err.to_string().rfind("test.toml:3:10: ", 0) == 0);
}

TEST_CASE("an unknown key is an error naming the key path and its position", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(parse("[frontend]\n\nrcvhvm = 5\n", &c, &err));
  CHECK(err.key == "frontend.rcvhvm");
  CHECK(err.line == 3);
  CHECK(err.column == 1);
  CHECK(err.message == "unknown key");
}

TEST_CASE("an unknown section is an error", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(parse("[frontdoor]\nx = 1\n", &c, &err));
  CHECK(err.key == "frontdoor");
  CHECK(err.line == 1);
}

TEST_CASE("a wrong type is an error, booleans are not integers", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(parse("[frontend]\nrcvhwm = true\n", &c, &err));
  CHECK(err.key == "frontend.rcvhwm");
  CHECK(err.message == "expected an integer, found a boolean");
  CHECK(err.line == 2);
  CHECK(err.column == 10);
}

TEST_CASE("an impossible value is an error", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(parse("[engine]\nkv_block_size = 0\n", &c, &err));
  CHECK(err.key == "engine.kv_block_size");
  CHECK(err.message.find("out of range") != std::string::npos);
  REQUIRE_FALSE(parse("[log]\nlevel = \"loud\"\n", &c, &err));
  CHECK(err.key == "log.level");
}

TEST_CASE("a failed parse leaves the output untouched", "[config]") {
  server_config c;
  c.name = "before";
  config_error err;
  REQUIRE_FALSE(parse("[server]\nname = \"after\"\n[engine]\nshards = -1\n", &c, &err));
  CHECK(c.name == "before");
}

TEST_CASE("relative model paths resolve against the config file's folder", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("[model]\npath = \"models/demo\"\n", &c, &err));
  CHECK(c.model.path == "/base/models/demo");
  CHECK(c.model.tokenizer == "/base/models/demo");
  REQUIRE(parse("[model]\npath = \"/abs/m\"\ntokenizer = \"tok\"\n", &c, &err));
  CHECK(c.model.path == "/abs/m");
  CHECK(c.model.tokenizer == "/base/tok");
}

TEST_CASE("an unreadable file is an error without a position", "[config]") {
  server_config c;
  config_error err;
  REQUIRE_FALSE(load_server_config("/nonexistent/rampart.toml", &c, &err));
  CHECK(err.line == 0);
  CHECK(err.to_string() == "/nonexistent/rampart.toml: cannot read file");
}

TEST_CASE("engine.cpus is a list of distinct CPU numbers", "[config]") {
  server_config c;
  config_error err;
  CHECK(c.engine.cpus.empty());
  REQUIRE(parse("[engine]\ncpus = [0, 2, 3]\n", &c, &err));
  CHECK(c.engine.cpus == std::vector<int64_t>{0, 2, 3});
  REQUIRE_FALSE(parse("[engine]\ncpus = [1, 1]\n", &c, &err));
  CHECK(err.key == "engine.cpus");
  CHECK(err.message == "lists a CPU twice");
  REQUIRE_FALSE(parse("[engine]\ncpus = [1024]\n", &c, &err));
  CHECK(err.message == "expected integers in [0, 1023], found 1024");
  CHECK(err.line == 2);
  CHECK(err.column == 9);
  REQUIRE_FALSE(parse("[engine]\ncpus = \"0-3\"\n", &c, &err));
  CHECK(err.message == "expected an array of integers, found a string");
  REQUIRE_FALSE(parse("[engine]\ncpus = [0, \"1\"]\n", &c, &err));
  CHECK(err.message == "expected integers, found a string");
  REQUIRE(parse("[engine]\nthreads = 2\ncpus = [0, 1]\n", &c, &err));
  REQUIRE_FALSE(parse("[engine]\nthreads = 3\ncpus = [0, 1]\n", &c, &err));
  CHECK(err.key == "engine.threads");
}

TEST_CASE("engine.budget_guard_ms is milliseconds from 0 to 600000, 100 by default", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("", &c, &err));
  CHECK(c.engine.budget_guard_ms == 100);
  REQUIRE(parse("[engine]\nbudget_guard_ms = 0\n", &c, &err));
  CHECK(c.engine.budget_guard_ms == 0);
  REQUIRE(parse("[engine]\nbudget_guard_ms = 250\n", &c, &err));
  CHECK(c.engine.budget_guard_ms == 250);
  REQUIRE_FALSE(parse("[engine]\nbudget_guard_ms = -1\n", &c, &err));
  CHECK(err.key == "engine.budget_guard_ms");
  REQUIRE_FALSE(parse("[engine]\nbudget_guard_ms = 600001\n", &c, &err));
  CHECK(err.key == "engine.budget_guard_ms");
}

TEST_CASE("automatic expert rebalancing is configured in [engine]", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("[engine]\nshards = 2\nrebalance_window_steps = 64\nrebalance_replicas = 4\n", &c, &err));
  CHECK(c.engine.rebalance_window_steps == 64);
  CHECK(c.engine.rebalance_replicas == 4);
  REQUIRE_FALSE(parse("[engine]\nrebalance_replicas = -1\n", &c, &err));
  CHECK(err.key == "engine.rebalance_replicas");
}

TEST_CASE("rcvhwm x max_message_size must fit the per-connection memory budget", "[config]") {
  server_config c;
  config_error err;
  // The shipped defaults fit: 64 x 1 MiB = 64 MiB, the budget exactly.
  REQUIRE(parse("", &c, &err));
  CHECK(c.frontend.rcvhwm * c.frontend.max_message_size <= c.frontend.connection_memory_budget);
  // 10000 x 1 MiB is about 10 GB a connection could hold unread.
  CHECK_FALSE(parse("[frontend]\nrcvhwm = 10000\n", &c, &err));
  CHECK(err.line == 2);
  CHECK(err.column == 10);
  CHECK(err.key == "frontend.rcvhwm");
  CHECK(err.message.find("10485760000") != std::string::npos);
  CHECK(err.message.find("connection_memory_budget 67108864") != std::string::npos);
  // Raising the budget, or shrinking messages, makes the same rcvhwm fine.
  CHECK(parse("[frontend]\nrcvhwm = 10000\nconnection_memory_budget = 10485760000\n", &c, &err));
  CHECK(parse("[frontend]\nrcvhwm = 1024\nmax_message_size = 65536\n", &c, &err));
  // Zero would mean no bound at all.
  CHECK_FALSE(parse("[frontend]\nrcvhwm = 0\n", &c, &err));
  CHECK_FALSE(parse("[frontend]\nsndhwm = 0\n", &c, &err));
}

TEST_CASE("a source's read burst must hold the largest message", "[config]") {
  server_config c;
  config_error err;
  CHECK(parse("[frontend]\nsource_burst_bytes = 1048832\n", &c, &err));  // 1 MiB + 256
  CHECK_FALSE(parse("[frontend]\nsource_burst_bytes = 1048831\n", &c, &err));
  CHECK(err.key == "frontend.source_burst_bytes");
  CHECK(parse("[frontend]\nconnection_messages_per_s = 2000\nconnection_message_burst = 4000\n", &c, &err));
  CHECK(c.frontend.connection_messages_per_s == 2000);
  CHECK(c.frontend.connection_message_burst == 4000);
  CHECK_FALSE(parse("[frontend]\nconnection_messages_per_s = 0\n", &c, &err));
  CHECK(err.key == "frontend.connection_messages_per_s");
  CHECK(err.line == 2);
}

TEST_CASE("a configuration, policy or key file is read only when it is a regular file of sane size",
          "[config]") {
  const std::string dir = rampart::test::make_temp_dir("config-files");
  std::string text;
  config_error err;
  // A device: never read (/dev/zero would fill memory).
  CHECK_FALSE(read_config_file("/dev/zero", &text, &err));
  CHECK(err.message == "cannot read file: not a regular file");
  // A FIFO nobody writes to: refused at once instead of blocking the reader.
  REQUIRE(::mkfifo((dir + "/fifo").c_str(), 0600) == 0);
  CHECK_FALSE(read_config_file(dir + "/fifo", &text, &err));
  CHECK(err.message == "cannot read file: not a regular file");
  CHECK_FALSE(read_config_file(dir, &text, &err));  // a directory
  // One byte over the limit, and exactly at it.
  std::ofstream(dir + "/big.toml") << std::string(static_cast<size_t>(kMaxConfigFileBytes) + 1, '#');
  CHECK_FALSE(read_config_file(dir + "/big.toml", &text, &err));
  CHECK(err.message == "cannot read file: larger than 4194304 bytes");
  std::ofstream(dir + "/edge.toml") << std::string(static_cast<size_t>(kMaxConfigFileBytes), '#');
  REQUIRE(read_config_file(dir + "/edge.toml", &text, &err));
  CHECK(text.size() == 4194304);
  CHECK_FALSE(read_config_file(dir + "/missing.toml", &text, &err));
  CHECK(err.message == "cannot read file");
  // Named as a key file, the reason reaches the setting's error.
  server_config c;
  CHECK_FALSE(parse_server_config("[frontend]\ncurve_key_file = \"/dev/zero\"\n", "t.toml", "", &c, &err));
  CHECK(err.to_string() == "t.toml:2:18: frontend.curve_key_file: cannot read the CURVE key file /dev/zero: not a "
                           "regular file");
}

TEST_CASE("the dashboard off loopback needs an operator token file, which is checked when read", "[config]") {
  const std::string dir = rampart::test::make_temp_dir("config-token");
  server_config c;
  config_error err;
  CHECK(c.metrics.dashboard);  // on by default, on loopback
  REQUIRE(parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n", &c, &err));
  CHECK(c.metrics.operator_token.empty());
  // Off loopback (a wildcard, another address, a bare port civetweb binds everywhere): refused without a token.
  for (const std::string listen : {"0.0.0.0:9464", "10.1.2.3:9464", "9464"}) {
    INFO(listen);
    CHECK_FALSE(parse("[metrics]\nlisten = \"" + listen + "\"\n", &c, &err));
    CHECK(err.key == "metrics.listen");
    CHECK(err.line == 2);
    CHECK(err.message.find("needs metrics.operator_token_file") != std::string::npos);
  }
  CHECK(parse("[metrics]\nlisten = \"0.0.0.0:9464\"\ndashboard = false\n", &c, &err));
  CHECK(parse("[metrics]\nenabled = false\nlisten = \"0.0.0.0:9464\"\n", &c, &err));
  // A good token: one line, 16 to 256 characters of the allowed set, the newline dropped.
  std::ofstream(dir + "/good") << "Abc.def_ghi~jkl+mno/pq=rs-0123\n";
  REQUIRE(parse("[metrics]\nlisten = \"0.0.0.0:9464\"\noperator_token_file = \"" + dir + "/good\"\n", &c, &err));
  CHECK(c.metrics.operator_token == "Abc.def_ghi~jkl+mno/pq=rs-0123");
  // Too short, too long, a character that could break a header or cookie, two lines, missing, not a file.
  std::ofstream(dir + "/short") << "abc123\n";
  std::ofstream(dir + "/long") << std::string(257, 'a');
  std::ofstream(dir + "/semicolon") << "abcdefghijklmnop;q\n";
  std::ofstream(dir + "/space") << "abcdefghijklmnop q\n";
  std::ofstream(dir + "/lines") << "abcdefghijklmnop\nqrstuvwxyz\n";
  for (const std::string f : {"short", "long", "semicolon", "space", "lines"}) {
    INFO(f);
    server_config before;
    CHECK_FALSE(parse("[metrics]\noperator_token_file = \"" + dir + "/" + f + "\"\n", &before, &err));
    CHECK(err.key == "metrics.operator_token_file");
    CHECK(err.message.find("must hold one line of 16 to 256 characters") != std::string::npos);
    CHECK(before.metrics.operator_token.empty());
  }
  CHECK_FALSE(parse("[metrics]\noperator_token_file = \"" + dir + "/missing\"\n", &c, &err));
  CHECK(err.message == "cannot read the operator token file " + dir + "/missing");
  CHECK_FALSE(parse("[metrics]\noperator_token_file = \"/dev/zero\"\n", &c, &err));
  CHECK(err.message == "cannot read the operator token file /dev/zero: not a regular file");
  // Relative to the configuration's folder.
  CHECK_FALSE(parse("[metrics]\noperator_token_file = \"token\"\n", &c, &err));
  CHECK(err.message == "cannot read the operator token file /base/token");
}

TEST_CASE("engine.device is cpu or cuda:N, and a GPU forward pass excludes CPU expert shards", "[config]") {
  server_config c;
  config_error err;
  REQUIRE(parse("", &c, &err));
  CHECK(c.engine.device == "cpu");
  REQUIRE(parse("[engine]\ndevice = \"cuda:1\"\n", &c, &err));
  CHECK(c.engine.device == "cuda:1");
  for (const char* bad : {"\"gpu\"", "\"cuda:\"", "\"cuda:300\"", "3"}) {
    INFO(bad);
    CHECK_FALSE(parse(std::string("[engine]\ndevice = ") + bad + "\n", &c, &err));
    CHECK(err.line == 2);
  }
  CHECK_FALSE(parse("[engine]\ndevice = \"cuda:0\"\nshards = 2\n", &c, &err));
  CHECK(err.message.find("excludes engine.shards > 1") != std::string::npos);
  CHECK(c.engine.precision == "exact");
  REQUIRE(parse("[engine]\ndevice = \"cuda:0\"\nprecision = \"fast\"\n", &c, &err));
  CHECK(c.engine.precision == "fast");
  CHECK_FALSE(parse("[engine]\ndevice = \"cuda:0\"\nprecision = \"bf16\"\n", &c, &err));
  CHECK(err.line == 3);
  CHECK_FALSE(parse("[engine]\nprecision = \"fast\"\n", &c, &err));  // on the CPU
  CHECK(err.message.find("needs engine.device") != std::string::npos);
}

