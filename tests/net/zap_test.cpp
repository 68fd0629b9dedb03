// The ZAP gate with real sockets: deny-listed source addresses and unknown CURVE keys are refused at the
// handshake (the client's socket monitor sees HANDSHAKE_FAILED_AUTH with status 400), everyone else connects.
// Each test has its own context: one ZAP handler per context for the context's life.
#include <catch2/catch.hpp>

#include <zmq.hpp>

#include <atomic>
#include <cstring>
#include <thread>

#include "net/curve_gate.hpp"
#include "net/zap_handler.hpp"

using namespace rampart;
using namespace std::chrono_literals;

namespace {

struct handshake_event {
  int event = 0;
  int value = 0;
};

// Watches CLIENT's handshake outcomes through its socket monitor (set up before it connects).
class handshake_watch {
 public:
  handshake_watch(zmq::context_t& ctx, zmq::socket_t& client, const std::string& name)
      : pair_(ctx, zmq::socket_type::pair) {
    pair_.set(zmq::sockopt::linger, 0);
    const std::string ep = "inproc://monitor-" + name;
    REQUIRE(zmq_socket_monitor(client.handle(), ep.c_str(),
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0);
    pair_.connect(ep);
  }
  // The first handshake event within TIMEOUT ({0, 0} when none came).
  handshake_event next(std::chrono::milliseconds timeout = 3000ms) {
    pair_.set(zmq::sockopt::rcvtimeo, static_cast<int>(timeout.count()));
    zmq::message_t head, endpoint;
    if (!pair_.recv(head) || head.size() < 6) return {};
    (void)pair_.recv(endpoint);
    uint16_t event;
    int32_t value;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    return {event, value};
  }

 private:
  zmq::socket_t pair_;
};

struct server {
  zmq::socket_t router;
  int port = 0;
  server(zmq::context_t& ctx, const char* curve_secret = nullptr) : router(ctx, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::zap_domain, "rampart");
    if (curve_secret) {
      router.set(zmq::sockopt::curve_server, true);
      router.set(zmq::sockopt::curve_secretkey, curve_secret);
    }
    router.set(zmq::sockopt::rcvtimeo, 3000);
    router.bind("tcp://127.0.0.1:0");
    std::string ep = router.get(zmq::sockopt::last_endpoint);
    port = std::stoi(ep.substr(ep.rfind(':') + 1));
  }
  // Receives one [routing id, payload] message; returns the payload's User-Id property.
  std::string receive_user_id() {
    zmq::message_t id, payload;
    REQUIRE(router.recv(id));
    REQUIRE(router.recv(payload));
    const char* user = payload.gets("User-Id");
    return user ? user : "";
  }
};

struct curve_keys {
  char pub[41], sec[41];
  curve_keys() { REQUIRE(zmq_curve_keypair(pub, sec) == 0); }
};

zmq::socket_t dealer(zmq::context_t& ctx) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  return s;
}

void use_curve(zmq::socket_t& s, const curve_keys& mine, const char* server_public) {
  s.set(zmq::sockopt::curve_serverkey, server_public);
  s.set(zmq::sockopt::curve_publickey, mine.pub);
  s.set(zmq::sockopt::curve_secretkey, mine.sec);
}

std::string from(const char* source, int port) {
  return "tcp://" + std::string(source) + ":0;127.0.0.1:" + std::to_string(port);
}

}  // namespace

TEST_CASE("ZAP decisions from memory: deny list first, then mechanism and key, a prefix spares tenant keys",
          "[zap]") {
  admission::deny_list deny;
  std::string error;
  REQUIRE(deny.add("10.0.0.0/8", 1000, &error));
  curve_keys a, reg;
  uint8_t a_raw[32], reg_raw[32];
  REQUIRE(zmq_z85_decode(a_raw, a.pub));
  REQUIRE(zmq_z85_decode(reg_raw, reg.pub));
  const std::string a_cred(reinterpret_cast<char*>(a_raw), 32), reg_cred(reinterpret_cast<char*>(reg_raw), 32);
  net::curve_allow_list allow;
  allow.tenants[a.pub] = 7;
  allow.registration_key = reg.pub;
  allow.registration_open = true;
  net::zap_counters c;
  CHECK(net::decide_zap("10.1.2.3", "NULL", "", &deny, &allow, 999, &c).status_code == "400");
  // A prefix rule never locks out a tenant presenting its own CURVE key.
  auto r = net::decide_zap("10.1.2.3", "CURVE", a_cred, &deny, &allow, 999, &c);
  CHECK((r.status_code == "200" && r.user_id == "tenant:7"));
  CHECK(net::decide_zap("10.1.2.3", "NULL", "", &deny, &allow, 1000, &c).status_code == "200");  // expired
  r = net::decide_zap("192.0.2.1", "CURVE", a_cred, &deny, &allow, 0, &c);
  CHECK((r.status_code == "200" && r.user_id == "tenant:7"));
  r = net::decide_zap("192.0.2.1", "CURVE", reg_cred, &deny, &allow, 0, &c);
  CHECK((r.status_code == "200" && r.user_id == "registration"));
  allow.registration_open = false;
  CHECK(net::decide_zap("192.0.2.1", "CURVE", reg_cred, &deny, &allow, 0, &c).status_code == "400");
  CHECK(net::decide_zap("192.0.2.1", "CURVE", std::string(32, 'x'), &deny, &allow, 0, &c).status_code == "400");
  CHECK(net::decide_zap("192.0.2.1", "CURVE", "short", &deny, &allow, 0, &c).status_code == "500");
  CHECK(net::decide_zap("192.0.2.1", "PLAIN", "", &deny, &allow, 0, &c).status_code == "400");
  CHECK(net::decide_zap("192.0.2.1", "CURVE", a_cred, nullptr, nullptr, 0, &c).status_code == "400");
  CHECK(c.denied_address == 1);
  CHECK(c.accepted == 3);
  CHECK(c.accepted_registration == 1);
  CHECK(c.denied_key == 3);
  CHECK(c.denied_mechanism == 1);
  CHECK(c.malformed == 1);
}

TEST_CASE("a tenant's CURVE key passes entries that spare tenants, never one that refuses everyone",
          "[zap]") {
  admission::deny_list deny;
  std::string error;
  REQUIRE(deny.add("198.51.100.0/24", 1000, &error));        // a prefix: spares tenants
  REQUIRE(deny.add("203.0.113.8", 1000, &error, true));      // an address listed on forgeable evidence
  REQUIRE(deny.add("203.0.113.7", 1000, &error));            // an address that behaved as an attacker itself
  curve_keys tenant, stranger, shared, reg;
  uint8_t raw[4][32];
  REQUIRE(zmq_z85_decode(raw[0], tenant.pub));
  REQUIRE(zmq_z85_decode(raw[1], stranger.pub));
  REQUIRE(zmq_z85_decode(raw[2], shared.pub));
  REQUIRE(zmq_z85_decode(raw[3], reg.pub));
  auto cred = [&](int i) { return std::string(reinterpret_cast<char*>(raw[i]), 32); };
  net::curve_allow_list allow;
  allow.tenants[tenant.pub] = 7;
  allow.tenants[shared.pub] = 8;
  allow.ambiguous.insert(shared.pub);
  allow.registration_key = reg.pub;
  allow.registration_open = true;
  net::zap_counters c;
  for (const char* spared : {"198.51.100.20", "203.0.113.8"}) {
    INFO(spared);
    auto r = net::decide_zap(spared, "CURVE", cred(0), &deny, &allow, 0, &c);
    CHECK((r.status_code == "200" && r.user_id == "tenant:7"));
    // Anyone else from there is refused for the address, which is not an authentication failure.
    for (int other : {1, 2, 3}) {
      r = net::decide_zap(spared, "CURVE", cred(other), &deny, &allow, 0, &c);
      CHECK(r.status_code == "400");
      CHECK(r.status_text == "address denied");
      CHECK_FALSE(r.key_refused);
    }
    CHECK(net::decide_zap(spared, "NULL", "", &deny, &allow, 0, &c).status_code == "400");
    CHECK(net::decide_zap(spared, "CURVE", "short", &deny, &allow, 0, &c).status_code == "400");
  }
  auto r = net::decide_zap("203.0.113.7", "CURVE", cred(0), &deny, &allow, 0, &c);
  CHECK(r.status_code == "400");
  CHECK(r.status_text == "address denied");
  CHECK(c.accepted == 2);
  CHECK(c.denied_address == 2 * 5 + 1);
  CHECK(c.denied_key == 0);
  CHECK(c.malformed == 0);
}

TEST_CASE("a deny-listed source is refused at the handshake until its entry expires", "[zap]") {
  zmq::context_t ctx, client_ctx;
  net::zap_handler gate(ctx.handle());
  // Refusals of deny-listed addresses are not authentication failures: the callback must stay silent.
  std::atomic<int> key_failures{0};
  gate.set_on_key_denied([&](std::string_view) { key_failures++; });
  std::string error;
  REQUIRE(gate.start(&error));
  auto deny = std::make_shared<admission::deny_list>();
  const int64_t expires = admission::monotonic_ms() + 1500;
  REQUIRE(deny->add("127.0.0.2", expires, &error));
  gate.set_deny_list(deny);
  server srv(ctx);

  {
    auto bad = dealer(client_ctx);
    handshake_watch watch(client_ctx, bad, "bad");
    bad.connect(from("127.0.0.2", srv.port));
    auto e = watch.next();
    CHECK(e.event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    CHECK(e.value == 400);
  }
  auto good = dealer(client_ctx);
  handshake_watch good_watch(client_ctx, good, "good");
  good.connect(from("127.0.0.1", srv.port));
  CHECK(good_watch.next().event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  good.send(zmq::str_buffer("hello"));
  CHECK(srv.receive_user_id().empty());
  CHECK(gate.counters().denied_address >= 1);

  // After the TTL the same address connects again.
  while (admission::monotonic_ms() <= expires + 20) std::this_thread::sleep_for(50ms);
  auto again = dealer(client_ctx);
  handshake_watch again_watch(client_ctx, again, "again");
  again.connect(from("127.0.0.2", srv.port));
  CHECK(again_watch.next().event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);

  // A new snapshot takes effect for the next handshake.
  auto deny2 = std::make_shared<admission::deny_list>();
  REQUIRE(deny2->add("127.0.0.0/8", admission::monotonic_ms() + 60000, &error));
  gate.set_deny_list(deny2);
  auto late = dealer(client_ctx);
  handshake_watch late_watch(client_ctx, late, "late");
  late.connect(from("127.0.0.1", srv.port));
  CHECK(late_watch.next().event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  gate.stop();
  gate.stop();
  CHECK(gate.counters().denied_address >= 2);
  CHECK(key_failures == 0);
}

TEST_CASE("with CURVE only registered keys and, while open, the registration identity connect", "[zap]") {
  zmq::context_t ctx, client_ctx;
  net::zap_handler gate(ctx.handle());
  std::string error;
  REQUIRE(gate.start(&error));
  curve_keys server_keys, tenant, stranger, reg;
  auto allow = std::make_shared<net::curve_allow_list>();
  allow->tenants[tenant.pub] = 7;
  allow->registration_key = reg.pub;
  allow->registration_open = true;
  gate.set_allow_list(allow);
  server srv(ctx, server_keys.sec);

  auto known = dealer(client_ctx);
  use_curve(known, tenant, server_keys.pub);
  handshake_watch known_watch(client_ctx, known, "known");
  known.connect(from("127.0.0.1", srv.port));
  CHECK(known_watch.next().event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  known.send(zmq::str_buffer("hi"));
  CHECK(srv.receive_user_id() == "tenant:7");

  {
    auto unknown = dealer(client_ctx);
    use_curve(unknown, stranger, server_keys.pub);
    handshake_watch watch(client_ctx, unknown, "unknown");
    unknown.connect(from("127.0.0.1", srv.port));
    auto e = watch.next();
    CHECK(e.event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    CHECK(e.value == 400);
  }
  auto registering = dealer(client_ctx);
  use_curve(registering, reg, server_keys.pub);
  handshake_watch reg_watch(client_ctx, registering, "reg");
  registering.connect(from("127.0.0.1", srv.port));
  CHECK(reg_watch.next().event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  registering.send(zmq::str_buffer("register"));
  CHECK(srv.receive_user_id() == "registration");

  auto closed = std::make_shared<net::curve_allow_list>(*allow);
  closed->registration_open = false;
  gate.set_allow_list(closed);
  auto late = dealer(client_ctx);
  use_curve(late, reg, server_keys.pub);
  handshake_watch late_watch(client_ctx, late, "late");
  late.connect(from("127.0.0.1", srv.port));
  CHECK(late_watch.next().event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  CHECK(gate.counters().accepted >= 1);
  CHECK(gate.counters().accepted_registration >= 1);
  CHECK(gate.counters().denied_key >= 2);
}

TEST_CASE("the registration identity is resolved before tenant keys, and a key two tenants hold is refused",
          "[zap]") {
  curve_keys reg, shared, own;
  uint8_t raw[32];
  auto credential = [&](const curve_keys& k) {
    REQUIRE(zmq_z85_decode(raw, k.pub));
    return std::string(reinterpret_cast<char*>(raw), 32);
  };
  net::curve_allow_list allow;
  allow.tenants[reg.pub] = 3;  // a tenant that somehow holds the published registration key
  allow.tenants[shared.pub] = 4;
  allow.ambiguous.insert(shared.pub);
  allow.tenants[own.pub] = 5;
  allow.registration_key = reg.pub;
  allow.registration_open = true;
  auto r = net::decide_zap("192.0.2.1", "CURVE", credential(reg), nullptr, &allow, 0);
  CHECK((r.status_code == "200" && r.user_id == "registration"));
  allow.registration_open = false;  // closed registration does not fall through to the tenant
  r = net::decide_zap("192.0.2.1", "CURVE", credential(reg), nullptr, &allow, 0);
  CHECK(r.status_code == "400");
  CHECK_FALSE(r.key_refused);  // an expected refusal its holders retry: not an authentication failure
  CHECK(net::decide_zap("192.0.2.1", "CURVE", credential(shared), nullptr, &allow, 0).status_code == "400");
  r = net::decide_zap("192.0.2.1", "CURVE", credential(own), nullptr, &allow, 0);
  CHECK((r.status_code == "200" && r.user_id == "tenant:5"));
}

TEST_CASE("only refusals of the key itself count as authentication failures, not deny-listed retries", "[zap]") {
  admission::deny_list deny;
  std::string error;
  REQUIRE(deny.add("10.0.0.0/8", 1000, &error));
  curve_keys stranger;
  uint8_t raw[32];
  REQUIRE(zmq_z85_decode(raw, stranger.pub));
  const std::string cred(reinterpret_cast<char*>(raw), 32);
  net::curve_allow_list allow;
  auto denied = net::decide_zap("10.1.2.3", "CURVE", cred, &deny, &allow, 0);
  CHECK(denied.status_code == "400");
  CHECK_FALSE(denied.key_refused);
  auto unknown = net::decide_zap("192.0.2.1", "CURVE", cred, &deny, &allow, 0);
  CHECK(unknown.status_code == "400");
  CHECK(unknown.key_refused);
  CHECK_FALSE(net::decide_zap("192.0.2.1", "PLAIN", "", &deny, &allow, 0).key_refused);
}

TEST_CASE("over a real CURVE handshake, a key two tenants hold cannot connect", "[zap]") {
  zmq::context_t ctx, client_ctx;
  net::zap_handler gate(ctx.handle());
  std::atomic<int> failures{0};
  std::string failed_from;
  gate.set_on_key_denied([&](std::string_view address) {
    failed_from = std::string(address);
    failures++;
  });
  std::string error;
  REQUIRE(gate.start(&error));
  curve_keys server_keys, shared;
  auto allow = std::make_shared<net::curve_allow_list>();
  allow->tenants[shared.pub] = 4;
  allow->ambiguous.insert(shared.pub);
  gate.set_allow_list(allow);
  server srv(ctx, server_keys.sec);
  auto client = dealer(client_ctx);
  use_curve(client, shared, server_keys.pub);
  handshake_watch watch(client_ctx, client, "shared");
  client.connect(from("127.0.0.1", srv.port));
  auto e = watch.next();
  CHECK(e.event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  CHECK(e.value == 400);
  gate.stop();  // joins the handler's thread: its writes are visible from here
  CHECK(failures >= 1);
  CHECK(failed_from == "127.0.0.1");
}

TEST_CASE("a second ZAP handler in the same context is refused with a reason", "[zap]") {
  zmq::context_t ctx;
  net::zap_handler first(ctx.handle()), second(ctx.handle());
  std::string error;
  REQUIRE(first.start(&error));
  CHECK_FALSE(second.start(&error));
  CHECK(error.find("inproc://zeromq.zap.01") != std::string::npos);
}

TEST_CASE("a CURVE key file's halves must belong together", "[zap]") {
  char pub_a[41], sec_a[41], pub_b[41], sec_b[41];
  REQUIRE(zmq_curve_keypair(pub_a, sec_a) == 0);
  REQUIRE(zmq_curve_keypair(pub_b, sec_b) == 0);
  CHECK(net::curve_keys_match(sec_a, pub_a));
  CHECK(net::curve_keys_match(sec_b, pub_b));
  CHECK_FALSE(net::curve_keys_match(sec_a, pub_b));
  CHECK_FALSE(net::curve_keys_match(sec_b, pub_a));
  CHECK_FALSE(net::curve_keys_match(std::string(sec_a).substr(0, 39), pub_a));  // not 40 characters of Z85
  CHECK_FALSE(net::curve_keys_match("", ""));
}
