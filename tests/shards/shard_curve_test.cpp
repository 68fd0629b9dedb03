// CURVE on the expert-shard link, with real shard processes: a rank holding an admitted key gets the same golden
// results as in-process shards; a rank with any other key, a rank that pins the wrong server key, and a plain
// peer never get a frame through; a shard refuses to serve a plain link off loopback.
#include <zmq.h>

#include <csignal>
#include <fstream>
#include <zmq.hpp>

#include "config/curve_keys.hpp"
#include "net/shard_link.hpp"
#include "tests/shards/shard_test_helpers.hpp"

namespace rampart::test {
namespace {

struct keypair {
  std::string pub, sec;
  keypair() {
    char p[41], s[41];
    REQUIRE(zmq_curve_keypair(p, s) == 0);
    pub = p;
    sec = s;
  }
};

// A shard configuration admitting CLIENTS, written into DIR; returns its path.
std::string shard_config(const std::string& dir, const std::string& name, const keypair& shard,
                         const std::vector<std::string>& clients) {
  std::ofstream(dir + "/" + name + ".key") << config::format_curve_keypair({shard.pub, shard.sec});
  std::string list;
  for (const auto& c : clients) list += (list.empty() ? "\"" : ", \"") + c + "\"";
  std::ofstream(dir + "/" + name + ".toml") << "[shard]\ncurve_key_file = \"" << name << ".key\"\nclient_keys = ["
                                            << list << "]\n";
  return dir + "/" + name + ".toml";
}

net::shard_link_keys rank_keys(const keypair& mine, const std::vector<std::string>& servers) {
  net::shard_link_keys k;
  k.public_key = mine.pub;
  k.secret_key = mine.sec;
  k.peer_keys = servers;
  return k;
}

// Whether a transport with KEYS gets a pong from every endpoint within TIMEOUT.
bool answers(const std::vector<std::string>& endpoints, const net::shard_link_keys& keys,
             std::chrono::milliseconds timeout) {
  std::string err;
  auto t = net::zmq_shard_transport::create(endpoints, 1 << 20, keys, &err);
  INFO(err);
  REQUIRE(t);
  return t->wait_ready(timeout, &err);
}

}  // namespace

TEST_CASE("a CURVE shard link serves the admitted rank bit for bit and nobody else", "[shards][curve]") {
  const std::string dir = make_temp_dir("shard-curve");
  const std::string model = test_model_dir("v3-bf16");
  keypair rank, stranger, s0_keys, s1_keys;
  shard_process s0(model, 0, 2, shard_config(dir, "s0", s0_keys, {rank.pub}));
  shard_process s1(model, 1, 2, shard_config(dir, "s1", s1_keys, {stranger.pub, rank.pub}));  // two ranks admitted
  CHECK(s0.proc->log().find("plain") == std::string::npos);

  // The admitted rank: the fixture's greedy tokens, and the logits of an unsharded engine.
  actors::expert_shards_options so;
  so.endpoints = {s0.endpoint, s1.endpoint};
  so.keys = rank_keys(rank, {s0_keys.pub, s1_keys.pub});
  std::shared_ptr<model::sharded_expert_backend> backend;
  auto sharded = sharded_engine("v3-bf16", so, &backend);
  const nlohmann::json golden = load_golden("v3-bf16");
  const case_run got = run_golden_cases(*sharded, golden);
  auto single = make_engine("v3-bf16");
  const case_run want = run_golden_cases(*single, golden);
  REQUIRE(got.tokens.size() == golden["cases"].size());
  for (size_t i = 0; i < got.tokens.size(); ++i) {
    CHECK(got.tokens[i] == golden["cases"][i]["greedy"].get<std::vector<int32_t>>());
    REQUIRE(got.logits[i].size() == want.logits[i].size());
    CHECK(max_abs_diff(got.logits[i].data(), want.logits[i].data(), static_cast<int64_t>(want.logits[i].size())) <=
          1e-5f);
  }

  // A key s0 does not list, though it pins s0's key correctly.
  CHECK_FALSE(answers({s0.endpoint}, rank_keys(stranger, {s0_keys.pub}), std::chrono::milliseconds(1500)));
  // The admitted key, but pinning a server key s0 does not hold: the rank refuses the shard.
  CHECK_FALSE(answers({s0.endpoint}, rank_keys(rank, {s1_keys.pub}), std::chrono::milliseconds(1500)));
  // A plain peer gets nothing: not a pong, not an error frame.
  CHECK_FALSE(answers({s0.endpoint}, net::shard_link_keys{}, std::chrono::milliseconds(1500)));
  // s1 admits both keys it lists.
  CHECK(answers({s1.endpoint}, rank_keys(stranger, {s1_keys.pub}), std::chrono::seconds(10)));

  s0.proc->signal(SIGTERM);
  REQUIRE(s0.proc->wait_exit(std::chrono::seconds(10)) == 0);
  INFO(s0.proc->log());
  CHECK(s0.proc->log().find("connections refused for their key") != std::string::npos);
  CHECK(s0.proc->log().find(", 0 connections refused") == std::string::npos);
}

TEST_CASE("a shard refuses to serve a plain link off loopback, and a mismatched keypair", "[shards][curve]") {
  const std::string dir = make_temp_dir("shard-curve-refusals");
  const std::string model = test_model_dir("v3-bf16");
  std::string out;
  CHECK(run_command(bin("rampartd"), {"--role", "shard", "--shard-id", "0", "--listen", "tcp://0.0.0.0:17399",
                                      "--model", model},
                    &out) == 2);
  CHECK(out.find("is not loopback") != std::string::npos);

  keypair a, b, rank;
  // The public half of one pair with the secret half of another: refused at start, never served.
  std::ofstream(dir + "/mixed.key") << config::format_curve_keypair({a.pub, b.sec});
  std::ofstream(dir + "/mixed.toml") << "[shard]\ncurve_key_file = \"mixed.key\"\nclient_keys = [\"" << rank.pub
                                     << "\"]\n";
  CHECK(run_command(bin("rampartd"), {"--role", "shard", "--shard-id", "0", "--listen", "tcp://0.0.0.0:17399",
                                      "--model", model, "--config", dir + "/mixed.toml"},
                    &out) == 1);
  CHECK(out.find("not the public half of its secret key") != std::string::npos);
  // A configuration error names the file, line and key.
  std::ofstream(dir + "/bad.toml") << "[shard]\ncurve_key_file = \"mixed.key\"\n";
  CHECK(run_command(bin("rampartd"), {"--role", "shard", "--shard-id", "0", "--listen", "tcp://127.0.0.1:17399",
                                      "--model", model, "--config", dir + "/bad.toml"},
                    &out) == 2);
  CHECK(out.find("bad.toml:2:") != std::string::npos);
  CHECK(out.find("shard.client_keys") != std::string::npos);
}

}  // namespace rampart::test

namespace rampart::test {

TEST_CASE("the tools reach shard processes over a plain link on loopback only", "[shards][curve]") {
  std::string err;
  auto ck = open_checkpoint("v3-bf16");
  CHECK(actors::expert_shards_from_flags(ck, 0, "tcp://127.0.0.1:1,tcp://10.0.0.2:7001", 1, &err) == nullptr);
  CHECK(err.find("tcp://10.0.0.2:7001 is not loopback") != std::string::npos);
  CHECK(actors::expert_shards_from_flags(ck, 0, "tcp://*:7001", 1, &err) == nullptr);
  CHECK(err.find("is not loopback") != std::string::npos);
}

}  // namespace rampart::test
