// The load-shedding policy in the running server: registration, API keys, threat levels, policy reloads.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include <zmq.hpp>

#include "config/curve_keys.hpp"
#include "tests/integration/server_fixture.hpp"
#include "tests/support/alert_stream.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::optional<net::client_event> next_event(net::client& c, std::chrono::milliseconds timeout = 10s) {
  return c.receive(timeout);
}

// A terminal event (or a registration answer) for REQUEST_ID; empty id matches events without one.
std::optional<net::client_event> answer(net::client& c, const std::string& request_id = "",
                                        std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (!ev) continue;
    if (ev->type == "accepted" || ev->type == "token") continue;
    if (ev->body.value("request_id", "") == request_id) return ev;
  }
  return std::nullopt;
}

std::string write_policy(const std::string& dir, const std::string& extra) {
  std::string path = dir + "/policy.toml";
  std::ofstream(path) << "[policy]\nhold_s = 0\ncool_down_s = 0\n" << extra;
  return path;
}

struct admission_server {
  std::string dir = test::make_temp_dir("rampart-adm");
  std::string policy;
  std::unique_ptr<test::model_server> server;
  explicit admission_server(const std::string& policy_extra, const std::string& admission_extra = "") {
    policy = write_policy(dir, policy_extra);
    server = std::make_unique<test::model_server>(
        "", "[admission]\naccounts_db = \"" + dir + "/accounts.db\"\npolicy_file = \"" + policy +
                "\"\npolicy_poll_ms = 200\n" + admission_extra);
  }
};

}  // namespace

TEST_CASE("register returns an API key once, the key authenticates and a wrong one is refused", "[admission]") {
  admission_server s("");
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("register", {{"name", "alice"}});
  auto reg = next_event(c);
  REQUIRE(reg);
  REQUIRE(reg->type == "registered");
  CHECK(reg->body["name"] == "alice");
  CHECK(reg->body["class"] == "trial");
  const std::string key = reg->body["api_key"];
  CHECK(key.rfind("rk_", 0) == 0);
  // The same name again is refused.
  c.send("register", {{"name", "alice"}});
  auto again = next_event(c);
  REQUIRE(again);
  CHECK(again->type == "error");
  CHECK(again->body["code"] == "bad_parameter");

  c.send("generate", {{"request_id", "k"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", key}});
  auto ok = answer(c, "k");
  REQUIRE(ok);
  CHECK(ok->type == "done");
  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  c.send("generate", {{"request_id", "w"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", wrong}});
  auto refused = answer(c, "w");
  REQUIRE(refused);
  CHECK(refused->type == "error");
  CHECK(refused->body["code"] == "unauthorized");
  // The key is in no log line.
  CHECK(s.server->proc->log().find(key.substr(20)) == std::string::npos);
}

TEST_CASE("at red, registrations and anonymous requests are shed while registered keys are served",
          "[admission]") {
  admission_server s("");
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("register", {{"name", "bob"}});
  auto reg = next_event(c);
  REQUIRE(reg);
  REQUIRE(reg->type == "registered");
  const std::string key = reg->body["api_key"];
  // The operator overrides the level: the file changes, the server reloads it by itself.
  std::this_thread::sleep_for(50ms);
  write_policy(s.dir, "override = \"red\"\n[policy.levels.red]\nregistration = { mode = \"closed\", message = \"closed for now\" }\n"
                      "anonymous = { admitted = false }\n"
                      "[policy.levels.red.classes.trial]\nrequests_per_s = 100\nrequests_burst = 100\nmax_streams = 8\n");
  REQUIRE(s.server->proc->wait_ready(
      [&] { return s.server->proc->log().find("threat level in force green -> red") != std::string::npos; }, 5s));
  c.send("register", {{"name", "carol"}});
  auto closed = next_event(c);
  REQUIRE(closed);
  CHECK(closed->type == "shed");
  CHECK(closed->body["reason"] == "registration_closed");
  CHECK(closed->body["message"] == "closed for now");
  CHECK(closed->body["retry_after_ms"].get<int64_t>() > 0);
  c.send("generate", {{"request_id", "anon"}, {"text", "hi"}, {"max_tokens", 2}});
  auto anon = answer(c, "anon");
  REQUIRE(anon);
  CHECK(anon->type == "shed");
  CHECK(anon->body["reason"] == "anonymous_closed");
  c.send("generate", {{"request_id", "reg"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", key}});
  auto served = answer(c, "reg");
  REQUIRE(served);
  CHECK(served->type == "done");
}

TEST_CASE("an invalid policy file is refused, the old policy stays, and the alert stream says why",
          "[admission]") {
  admission_server s("");
  zmq::context_t ctx{1};
  zmq::socket_t sub{ctx, zmq::socket_type::sub};
  REQUIRE(test::subscribe_and_wait(sub, "tcp://127.0.0.1:" + std::to_string(s.server->alerts_port), {"policy"}));
  write_policy(s.dir, "[policy.levels.green]\nregistration = { mode = \"sometimes\" }\n");
  REQUIRE(s.server->proc->wait_ready(
      [&] { return s.server->proc->log().find("policy not reloaded, the old one stays") != std::string::npos; }, 5s));
  bool refused_event = false;
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!refused_event && std::chrono::steady_clock::now() < deadline) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 100ms);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t topic, body;
    (void)sub.recv(topic);
    (void)sub.recv(body);
    auto e = json::parse(body.to_string_view(), nullptr, false);
    if (e.is_object() && e.contains("policy") && e["policy"].value("action", "") == "reload_refused") {
      refused_event = true;
      CHECK(e["policy"]["error"].get<std::string>().find("policy.toml:5:") != std::string::npos);
    }
  }
  CHECK(refused_event);
  // Still serving under the old policy: registration open.
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("register", {{"name", "dave"}});
  auto reg = next_event(c);
  REQUIRE(reg);
  CHECK(reg->type == "registered");
}

TEST_CASE("tenants created and revoked with rampart-admin take effect at SIGHUP", "[admission]") {
  admission_server s("");
  std::string out;
  REQUIRE(test::run_command(test::bin("rampart-admin"),
                            {"--db", s.dir + "/accounts.db", "create", "erin", "--class", "registered"}, &out) == 0);
  const auto at = out.find("api_key: ");
  REQUIRE(at != std::string::npos);
  const std::string key = out.substr(at + 9, out.find_first_of(" \n", at + 9) - at - 9);
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("generate", {{"request_id", "before"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", key}});
  auto before = answer(c, "before");
  REQUIRE(before);
  CHECK(before->type == "error");  // not known to the running server yet
  s.server->proc->signal(SIGHUP);
  REQUIRE(s.server->proc->wait_ready(
      [&] { return s.server->proc->log().find("SIGHUP: accounts reloaded") != std::string::npos; }, 5s));
  c.send("generate", {{"request_id", "after"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", key}});
  auto after = answer(c, "after");
  REQUIRE(after);
  CHECK(after->type == "done");
  REQUIRE(test::run_command(test::bin("rampart-admin"), {"--db", s.dir + "/accounts.db", "revoke", "erin"}, &out) == 0);
  s.server->proc->signal(SIGHUP);
  REQUIRE(s.server->proc->wait_ready([&] {
    const std::string log = s.server->proc->log();
    const std::string line = "SIGHUP: accounts reloaded";
    return log.find(line, log.find(line) + 1) != std::string::npos;
  }, 5s));
  c.send("generate", {{"request_id", "revoked"}, {"text", "hi"}, {"max_tokens", 2}, {"api_key", key}});
  auto revoked = answer(c, "revoked");
  REQUIRE(revoked);
  CHECK(revoked->type == "error");
  CHECK(revoked->body["code"] == "unauthorized");
}

namespace {

// A keypair made by `rampart-admin keygen --out FILE`, read back from its file.
config::curve_keypair keygen(const std::string& path) {
  std::string out;
  REQUIRE(test::run_command(test::bin("rampart-admin"), {"keygen", "--out", path}, &out) == 0);
  config::curve_keypair keys;
  config::config_error err;
  INFO(out);
  REQUIRE(config::load_curve_keypair(path, &keys, &err));
  CHECK(out.find(keys.public_key) != std::string::npos);
  CHECK(out.find(keys.secret_key) == std::string::npos);  // the secret stays in the file
  return keys;
}

std::unique_ptr<net::client> curve_client(const std::string& endpoint, const std::string& server_key,
                                          const config::curve_keypair& mine) {
  net::client_options o;
  o.curve_server_key = server_key;
  o.curve_public_key = mine.public_key;
  o.curve_secret_key = mine.secret_key;
  auto c = std::make_unique<net::client>(o);
  REQUIRE(c->connect(endpoint, nullptr));
  return c;
}

}  // namespace

TEST_CASE("with CURVE, tenants connect with their keys and the registration identity may only register, while open",
          "[admission][curve]") {
  const std::string dir = test::make_temp_dir("rampart-curve");
  const auto server_keys = keygen(dir + "/server.key");
  const auto tenant_keys = keygen(dir + "/tenant.key");
  const auto registration_keys = keygen(dir + "/registration.key");
  const auto stranger_keys = keygen(dir + "/stranger.key");
  const auto newcomer_keys = keygen(dir + "/newcomer.key");
  // keygen never overwrites a key file.
  std::string out;
  CHECK(test::run_command(test::bin("rampart-admin"), {"keygen", "--out", dir + "/server.key"}, &out) == 1);
  REQUIRE(test::run_command(test::bin("rampart-admin"), {"--db", dir + "/accounts.db", "create", "dana", "--class",
                                                         "registered", "--curve-key", tenant_keys.public_key},
                            &out) == 0);
  const std::string policy_head = "registration_curve_key = \"" + registration_keys.public_key + "\"\n";
  const std::string policy = write_policy(dir, policy_head);
  const int port = test::free_port();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::ofstream(dir + "/rampart.toml")
      << "[frontend]\nendpoint = \"" << endpoint << "\"\ncurve_key_file = \"server.key\"\n"
      << "[model]\npath = \"" << RAMPART_SERVER_MODEL_DIR << "\"\ntokenizer = \"" << test::tokenizer_dir() << "\"\n"
      << "[metrics]\nenabled = false\n[alerts]\nenabled = false\n"
      << "[admission]\naccounts_db = \"accounts.db\"\npolicy_file = \"policy.toml\"\npolicy_poll_ms = 200\n";
  test::child_process server(test::bin("rampartd"), {"--config", dir + "/rampart.toml"});
  REQUIRE(server.wait_ready([&] { return server.log().find("rampartd ready") != std::string::npos; }, 30s));
  INFO(server.log());
  CHECK(server.log().find("CURVE on: server public key " + server_keys.public_key) != std::string::npos);
  CHECK(server.log().find(server_keys.secret_key) == std::string::npos);

  // The tenant's CURVE key is its credential: no api_key needed.
  auto tenant = curve_client(endpoint, server_keys.public_key, tenant_keys);
  REQUIRE(tenant->ping(10s));
  tenant->send("generate", {{"request_id", "t1"}, {"text", "hi"}, {"max_tokens", 2}});
  auto served = answer(*tenant, "t1");
  REQUIRE(served);
  CHECK(served->type == "done");
  // The Python example client (pyzmq) with the same key file.
  std::string py;
  CHECK(test::run_command("/usr/bin/python3",
                          {test::source_dir() + "/docs/examples/client.py", "--connect", endpoint, "--prompt", "hi",
                           "--max-tokens", "2", "--server-key", server_keys.public_key, "--curve-keys",
                           dir + "/tenant.key", "--timeout-ms", "20000"},
                          &py) == 0);
  CHECK(py.find("[done: length]") != std::string::npos);

  // No CURVE, or an unknown key: the handshake is refused, nothing is ever answered.
  net::client plain;
  REQUIRE(plain.connect(endpoint, nullptr));
  CHECK_FALSE(plain.ping(1500ms));
  CHECK_FALSE(curve_client(endpoint, server_keys.public_key, stranger_keys)->ping(1500ms));

  // The registration identity registers (with the newcomer's own CURVE key) and does nothing else.
  auto registering = curve_client(endpoint, server_keys.public_key, registration_keys);
  REQUIRE(registering->ping(10s));
  registering->send("generate", {{"request_id", "r1"}, {"text", "hi"}, {"max_tokens", 2}});
  auto refused = answer(*registering, "r1");
  REQUIRE(refused);
  CHECK(refused->type == "error");
  CHECK(refused->body["code"] == "unauthorized");
  registering->send("register", {{"name", "newcomer"}, {"curve_public_key", newcomer_keys.public_key}});
  auto reg = answer(*registering);
  REQUIRE(reg);
  REQUIRE(reg->type == "registered");
  registering->send("register", {{"name", "bad-key"}, {"curve_public_key", "not a key"}});
  auto bad = answer(*registering);
  REQUIRE(bad);
  CHECK(bad->type == "error");
  CHECK(bad->body["code"] == "bad_parameter");
  // The newcomer's key is admitted at once.
  auto newcomer = curve_client(endpoint, server_keys.public_key, newcomer_keys);
  newcomer->send("generate", {{"request_id", "n1"}, {"text", "hi"}, {"max_tokens", 2}});
  auto newcomer_served = answer(*newcomer, "n1");
  REQUIRE(newcomer_served);
  CHECK(newcomer_served->type == "done");

  // No identity a client does not own: the registration identity's key, the server's key and the keys of
  // existing tenants (made by rampart-admin or by register) are refused with curve_key_taken, over CURVE.
  for (const auto& [what, key] : {std::pair<std::string, std::string>{"registration identity", registration_keys.public_key},
                                  {"server", server_keys.public_key},
                                  {"tenant dana", tenant_keys.public_key},
                                  {"tenant newcomer", newcomer_keys.public_key}}) {
    INFO(what);
    registering->send("register", {{"curve_public_key", key}});
    auto taken = answer(*registering);
    REQUIRE(taken);
    CHECK(taken->type == "error");
    CHECK(taken->body["code"] == "curve_key_taken");
  }
  // Nothing changed: the registration identity still may only register, dana is still served as dana.
  registering->send("generate", {{"request_id", "r2"}, {"text", "hi"}, {"max_tokens", 2}});
  auto still_refused = answer(*registering, "r2");
  REQUIRE(still_refused);
  CHECK(still_refused->body["code"] == "unauthorized");
  tenant->send("generate", {{"request_id", "t2"}, {"text", "hi"}, {"max_tokens", 2}});
  auto still_served = answer(*tenant, "t2");
  REQUIRE(still_served);
  CHECK(still_served->type == "done");
  // rampart-admin refuses a duplicate key too (the same database, another process).
  CHECK(test::run_command(test::bin("rampart-admin"), {"--db", dir + "/accounts.db", "create", "copycat", "--class",
                                                       "registered", "--curve-key", tenant_keys.public_key},
                          &out) != 0);
  CHECK(out.find("the CURVE key belongs to another tenant") != std::string::npos);

  // Registration closes at red: the registration identity can no longer connect; tenants still can.
  std::this_thread::sleep_for(50ms);
  write_policy(dir, policy_head + "override = \"red\"\n[policy.levels.red]\nregistration = { mode = \"closed\" }\n");
  REQUIRE(server.wait_ready([&] { return server.log().find("CURVE: the registration identity is refused") !=
                                         std::string::npos; }, 5s));
  CHECK_FALSE(curve_client(endpoint, server_keys.public_key, registration_keys)->ping(1500ms));
  CHECK(curve_client(endpoint, server_keys.public_key, tenant_keys)->ping(10s));
}

TEST_CASE("rampart-client needs both CURVE options and a readable key file", "[admission][curve]") {
  const std::string dir = test::make_temp_dir("rampart-curve-client");
  std::ofstream(dir + "/bad.key") << "public = 1\n";
  const std::string server_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  for (const auto& [args, expected] :
       {std::pair<std::vector<std::string>, std::string>{{"--ping", "--server-key", server_key}, "needs both"},
        {{"--ping", "--curve-keys", dir + "/bad.key"}, "needs both"},
        {{"--ping", "--server-key", server_key, "--curve-keys", dir + "/absent.key"}, "cannot read"},
        {{"--ping", "--server-key", server_key, "--curve-keys", dir + "/bad.key"}, "public"}}) {
    std::string out;
    CHECK(test::run_command(test::bin("rampart-client"), args, &out) == 2);
    INFO(out);
    CHECK(out.find(expected) != std::string::npos);
  }
}

TEST_CASE("a CURVE key file that is missing or malformed stops rampartd at start with the reason", "[admission][curve]") {
  const std::string dir = test::make_temp_dir("rampart-curve-bad");
  std::ofstream(dir + "/bad.key") << "public = \"short\"\nsecret = \"short\"\n";
  for (const auto& [file, expected] : {std::pair<std::string, std::string>{"absent.key", "frontend.curve_key_file"},
                                       {"bad.key", "not a CURVE key"}}) {
    std::ofstream(dir + "/rampart.toml") << "[frontend]\ncurve_key_file = \"" << file << "\"\n";
    std::string out;
    CHECK(test::run_command(test::bin("rampartd"), {"--check-config", dir + "/rampart.toml"}, &out) == 2);
    CHECK(out.find(expected) != std::string::npos);
  }
}

TEST_CASE("registered tenants that never make a request expire after trial_ttl_s, used ones stay",
          "[admission]") {
  admission_server s("", "trial_ttl_s = 1\n");
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  std::string keys[2];
  for (int i = 0; i < 2; ++i) {
    c.send("register", {{"name", i == 0 ? "idle" : "busy"}});
    auto reg = next_event(c);
    REQUIRE(reg);
    REQUIRE(reg->type == "registered");
    keys[i] = reg->body["api_key"];
  }
  c.send("generate", {{"request_id", "use"}, {"text", "hi"}, {"max_tokens", 1}, {"api_key", keys[1]}});
  auto used = answer(c, "use");
  REQUIRE(used);
  REQUIRE(used->type == "done");
  // The sweep runs every second; after 1 s of life plus a sweep or two the idle tenant is gone.
  std::this_thread::sleep_for(3500ms);
  c.send("generate", {{"request_id", "idle"}, {"text", "hi"}, {"max_tokens", 1}, {"api_key", keys[0]}});
  auto idle = answer(c, "idle");
  REQUIRE(idle);
  CHECK(idle->type == "error");
  CHECK(idle->body["code"] == "unauthorized");
  c.send("generate", {{"request_id", "busy"}, {"text", "hi"}, {"max_tokens", 1}, {"api_key", keys[1]}});
  auto busy = answer(c, "busy");
  REQUIRE(busy);
  CHECK(busy->type == "done");
  INFO(s.server->proc->log());
  CHECK(s.server->proc->log().find("expired 1 trial tenant(s)") != std::string::npos);
}

TEST_CASE("when the level stops admitting anonymous requests, the running ones end with shed anonymous_closed",
          "[admission]") {
  admission_server s("");
  net::client c;
  REQUIRE(c.connect(s.server->endpoint, nullptr));
  c.send("register", {{"name", "erin"}});
  auto reg = next_event(c);
  REQUIRE(reg);
  REQUIRE(reg->type == "registered");
  const std::string key = reg->body["api_key"];
  // Two long generations, one anonymous and one the tenant's, both streaming.
  c.send("generate", {{"request_id", "anon"}, {"ids", {1, 2, 3}}, {"max_tokens", 4000}, {"ignore_eos", true}});
  c.send("generate", {{"request_id", "mine"}, {"ids", {4, 5, 6}}, {"max_tokens", 300}, {"ignore_eos", true},
                      {"api_key", key}});
  std::set<std::string> streaming;
  for (int i = 0; i < 300 && streaming.size() < 2; ++i) {
    auto ev = c.receive(100ms);
    if (ev && ev->type == "token") streaming.insert(ev->body["request_id"].get<std::string>());
  }
  REQUIRE(streaming.size() == 2);
  std::this_thread::sleep_for(50ms);
  write_policy(s.dir, "override = \"red\"\n[policy.levels.red]\nretry_after_ms = 4321\n"
                      "anonymous = { admitted = false }\n"
                      "[policy.levels.red.classes.trial]\nmax_streams = 8\n");
  std::map<std::string, std::vector<net::client_event>> terminals;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (terminals["mine"].empty() && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (!ev || ev->type == "token" || ev->type == "accepted") continue;
    terminals[ev->body.value("request_id", "")].push_back(*ev);
  }
  INFO(s.server->proc->log());
  REQUIRE(terminals["anon"].size() == 1);  // exactly one terminal event
  CHECK(terminals["anon"][0].type == "shed");
  CHECK(terminals["anon"][0].body["reason"] == "anonymous_closed");
  CHECK(terminals["anon"][0].body["retry_after_ms"] == 4321);
  REQUIRE(terminals["mine"].size() == 1);
  CHECK(terminals["mine"][0].type == "done");
  CHECK(terminals["mine"][0].body["finish_reason"] == "length");
  CHECK(s.server->proc->log().find("ending 1 running anonymous request(s)") != std::string::npos);
}
