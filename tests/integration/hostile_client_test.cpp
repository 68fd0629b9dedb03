// rampartd against a hostile client, as a real process over real sockets: every decoder limit at and past its
// bound, 200,000-level nesting in every position, invalid UTF-8, bursts, many connections from one address and
// an oversized message. A registered tenant keeps streaming throughout, every bad message gets its documented
// error, and the attacker's own connection stays usable.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cstring>
#include <thread>

#include <zmq.hpp>

#include "net/protocol.hpp"
#include "tests/integration/server_fixture.hpp"
#include "tests/support/alert_stream.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

bool is_terminal(const std::string& type) { return type == "done" || type == "error" || type == "shed"; }

// The next event that is not a token or accepted event of another request, within TIMEOUT.
std::optional<net::client_event> next_answer(net::client& c, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (ev) return ev;
  }
  return std::nullopt;
}

// Sends FRAMES and expects one `error` with CODE whose message mentions NEEDLE.
void expect_error(net::client& c, const std::vector<std::string>& frames, const std::string& code,
                  const std::string& needle) {
  REQUIRE(c.send_frames(frames));
  auto ev = next_answer(c);
  REQUIRE(ev);
  INFO(ev->type << " " << ev->body.dump());
  CHECK(ev->type == "error");
  CHECK(ev->body.value("code", "") == code);
  CHECK(ev->body.value("message", "").find(needle) != std::string::npos);
}

std::string nested(size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// A streaming client on its own thread: one long greedy generation, counted token by token.
struct streamer {
  std::atomic<int> tokens{0};
  std::atomic<bool> done{false};
  std::string finish;
  std::thread thread;

  streamer(const std::string& endpoint, const std::string& api_key, int max_tokens) {
    thread = std::thread([this, endpoint, api_key, max_tokens] {
      net::client c;
      c.connect(endpoint, nullptr);
      c.send("generate", {{"request_id", "victim"}, {"ids", {1, 2, 3}}, {"max_tokens", max_tokens},
                          {"temperature", 0}, {"ignore_eos", true}, {"api_key", api_key}});
      const auto deadline = std::chrono::steady_clock::now() + 120s;
      while (std::chrono::steady_clock::now() < deadline) {
        auto ev = c.receive(200ms);
        if (!ev) continue;
        if (ev->type == "token") tokens += static_cast<int>(ev->body["ids"].size());
        if (is_terminal(ev->type)) {
          finish = ev->type + ":" + ev->body.value("finish_reason", ev->body.value("code", ""));
          break;
        }
      }
      done = true;
    });
  }
  ~streamer() {
    if (thread.joinable()) thread.join();
  }
};

// A tenant of class `registered` in a fresh accounts database made with rampart-admin; returns its API key.
std::string registered_tenant(const std::string& db) {
  std::string out;
  REQUIRE(test::run_command(test::bin("rampart-admin"), {"--db", db, "create", "victim", "--class", "registered"},
                            &out) == 0);
  const auto at = out.find("api_key: ");
  REQUIRE(at != std::string::npos);
  return out.substr(at + 9, out.find('\n', at) - at - 9);
}

}  // namespace

TEST_CASE("a hostile client cannot crash rampartd, lose its own connection or stop another client's stream",
          "[integration][hostile]") {
  const std::string db = test::make_temp_dir("rampart-hostile") + "/accounts.db";
  const std::string key = registered_tenant(db);
  test::model_server server("", "[admission]\naccounts_db = \"" + db + "\"\n");
  const int kVictimTokens = 400;
  streamer victim(server.endpoint, key, kVictimTokens);  // a registered tenant, streaming throughout

  net::client attacker;
  REQUIRE(attacker.connect(server.endpoint, nullptr));
  json pong;
  REQUIRE(attacker.ping(5s, &pong));
  // The limits are discoverable, and the model is named without its path.
  CHECK(pong["limits"]["vocab_size"] == 129280);  // the fixture model's vocabulary (--vocab 129280)
  CHECK(pong["limits"]["max_depth"] == 32);
  CHECK(pong["limits"]["max_message_size"] == 1 << 20);
  CHECK(pong["model"].get<std::string>().find('/') == std::string::npos);

  // 200,000 nesting levels in every message type and every position a client controls.
  const std::string deep = nested(200000);
  for (const auto& [type, body] : std::vector<std::pair<std::string, std::string>>{
           {"ping", R"({"a":)" + deep + "}"},
           {"stats", R"({"a":)" + deep + "}"},
           {"register", R"({"name":"n","x":)" + deep + "}"},
           {"cancel", R"({"request_id":"r","x":)" + deep + "}"},
           {"generate", R"({"request_id":"r","messages":[)" + deep + "]}"},
           {"generate", R"({"request_id":"r","text":"x","unknown":)" + deep + "}"},
           {"generate", R"({"request_id":"r","text":"x","stop":)" + deep + "}"}}) {
    INFO(type);
    expect_error(attacker, {"rampart/1", type, body}, "bad_frame", "max_depth");
  }

  // Invalid UTF-8, broken JSON, wrong frames.
  expect_error(attacker, {"rampart/1", "generate", "{\"request_id\":\"r\",\"text\":\"\xc0\xaf\"}"}, "bad_utf8", "UTF-8");
  expect_error(attacker, {"rampart/1", "generate", "{\"request_id\":"}, "bad_json", "JSON");
  expect_error(attacker, {"rampart/1", "generate"}, "bad_frame", "3 frames");
  // A message of 100,000 empty frames: counted, not kept, and refused naming the count.
  expect_error(attacker, std::vector<std::string>(100000, ""), "bad_frame", "got 100000");

  // Each field limit just past its bound (the bound itself is accepted: see below).
  const json text_base = {{"request_id", "p"}, {"text", "hello"}};
  auto with = [&](const char* key, json v) {
    json b = text_base;
    b[key] = std::move(v);
    return b.dump();
  };
  expect_error(attacker, {"rampart/1", "generate", with("request_id", std::string(129, 'r'))}, "bad_parameter",
               "request_id");
  expect_error(attacker, {"rampart/1", "generate", with("max_tokens", 4097)}, "bad_parameter", "max_tokens");
  expect_error(attacker, {"rampart/1", "generate", with("stop", json(std::vector<std::string>(9, "s")))},
               "bad_parameter", "stop");
  expect_error(attacker, {"rampart/1", "generate", with("stop", std::string(257, 's'))}, "bad_parameter", "stop");
  expect_error(attacker, {"rampart/1", "generate", with("seed", 9223372036854775808ull)}, "bad_parameter", "seed");
  expect_error(attacker,
               {"rampart/1", "generate", json{{"request_id", "p"}, {"ids", std::vector<int>(8193, 1)}}.dump()},
               "prompt_too_long", "max_prompt_tokens");
  expect_error(attacker,
               {"rampart/1", "generate", json{{"request_id", "p"}, {"ids", {129280}}}.dump()}, "bad_parameter",
               "vocab_size");
  expect_error(attacker, {"rampart/1", "generate", with("text", std::string(262145, 't'))}, "bad_frame",
               "max_string_bytes");
  const json message = {{"role", "user"}, {"content", "x"}};
  expect_error(attacker,
               {"rampart/1", "generate",
                json{{"request_id", "p"}, {"messages", std::vector<json>(257, message)}}.dump()},
               "bad_parameter", "max_messages");
  expect_error(attacker, {"rampart/1", "ping", "[" + std::string(100000 * 2, ' ') + "]"}, "bad_json", "object");
  std::string many = "{\"a\":[";
  for (int i = 0; i < 70000; ++i) many += "0,";
  many += "0]}";
  expect_error(attacker, {"rampart/1", "ping", many}, "bad_frame", "max_values");

  // At the bounds: accepted (and cancelled at once).
  attacker.send("generate", {{"request_id", std::string(128, 'b')},
                             {"text", "hello"},
                             {"max_tokens", 4096},
                             {"stop", std::vector<std::string>(8, std::string(256, 's'))}});
  auto accepted = next_answer(attacker);
  REQUIRE(accepted);
  INFO(accepted->body.dump());
  CHECK(accepted->type == "accepted");
  attacker.send("cancel", {{"request_id", std::string(128, 'b')}});
  bool cancelled = false;
  for (int i = 0; i < 200 && !cancelled; ++i) {
    auto ev = next_answer(attacker, 2s);
    cancelled = ev && ev->type == "done";
  }
  CHECK(cancelled);

  // A burst of 2,000 malformed messages: every one is answered, bad_json up to the connection's burst of 1,000
  // messages (plus what refills at 500 a second while they are read), `shed` rate_limited past it (fewer than
  // a further burst: the connection stays), and the connection stays usable.
  for (int i = 0; i < 2000; ++i) attacker.send_frames({"rampart/1", "generate", "{bad"});
  int bad_json = 0, limited = 0;
  while (bad_json + limited < 2000) {
    auto ev = next_answer(attacker, 10s);
    if (!ev) break;
    bad_json += ev->type == "error" && ev->body["code"] == "bad_json";
    limited += ev->type == "shed" && ev->body["reason"] == "rate_limited";
  }
  CHECK(bad_json + limited == 2000);
  CHECK(bad_json >= 1000);
  std::this_thread::sleep_for(100ms);  // 50 messages' worth of refill

  // A message past max_message_size: libzmq drops that connection; a new one is served.
  {
    net::client big;
    REQUIRE(big.connect(server.endpoint, nullptr));
    REQUIRE(big.ping(5s));
    big.send_frames({"rampart/1", "ping", "{\"a\":\"" + std::string((1 << 20) + 16, 'x') + "\"}"});
    std::this_thread::sleep_for(200ms);
  }
  // Many connections from one address, each served.
  {
    std::vector<std::unique_ptr<net::client>> crowd;
    for (int i = 0; i < 64; ++i) {
      crowd.push_back(std::make_unique<net::client>());
      REQUIRE(crowd.back()->connect(server.endpoint, nullptr));
    }
    int pongs = 0;
    for (auto& c : crowd) pongs += c->ping(5s);
    CHECK(pongs == 64);
  }

  REQUIRE(attacker.ping(5s));  // the attacker's own connection still works
  victim.thread.join();
  INFO(server.proc->log());
  CHECK(victim.finish == "done:length");
  CHECK(victim.tokens == kVictimTokens);
  CHECK(server.proc->running());
}

TEST_CASE("a client that stops reading is dropped at sndhwm, its generation is cancelled and the monitor counts it",
          "[integration][hostile]") {
  test::model_server server("", "[monitor]\nstats_interval_s = 1\n");
  zmq::context_t alerts_ctx(1);
  zmq::socket_t alerts(alerts_ctx, zmq::socket_type::sub);
  REQUIRE(test::subscribe_and_wait(alerts, "tcp://127.0.0.1:" + std::to_string(server.alerts_port), {"stats"}));
  net::client other;
  REQUIRE(other.connect(server.endpoint, nullptr));
  // The last answer `other` got that was not stats (an error, a shed) is kept for the failure message.
  std::string other_saw;
  auto stats = [&] {
    for (int i = 0; i < 10; ++i) {
      other.send("stats", json::object());
      auto ev = next_answer(other, 5s);
      if (ev && ev->type == "stats") return ev->body;
      other_saw = ev ? ev->type + " " + ev->body.dump() : "nothing in 5 s";
      std::this_thread::sleep_for(100ms);
    }
    return json();
  };
  auto count = [](const json& s, const char* table, const char* key) {
    return s.is_object() && s.contains(table) ? s[table].value(key, int64_t{-1}) : int64_t{-1};
  };
  zmq::context_t ctx(1);
  zmq::socket_t slow(ctx, zmq::socket_type::dealer);
  slow.set(zmq::sockopt::linger, 0);
  slow.set(zmq::sockopt::rcvhwm, 1);     // its own queue holds one message, then libzmq stops reading TCP
  slow.set(zmq::sockopt::rcvbuf, 4096);  // and the kernel's window stays small
  slow.connect(server.endpoint);
  // Never blocks: once the server has dropped the connection, nothing takes these any more.
  auto send = [&](const std::string& type, const json& body) {
    const std::string text = body.dump();
    if (!slow.send(zmq::str_buffer("rampart/1"), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
    slow.send(zmq::buffer(type), zmq::send_flags::sndmore);
    slow.send(zmq::buffer(text), zmq::send_flags::none);
  };
  send("generate", {{"request_id", "long"}, {"ids", {1, 2, 3}}, {"max_tokens", 4000}, {"ignore_eos", true}});
  // Pongs of about 5 KB (4 KB echoed) that it never reads, 400 a second: kernel buffers, then sndhwm (1000) fill
  // up while it stays inside its budgets (500 messages a second per connection, 8 MiB/s per address), so it is
  // a slow reader, not a flooder. The client cannot see the drop itself (libzmq stopped reading its socket);
  // the server's counters show it.
  const json ping = {{"pad", std::string(4000, 'p')}};
  json s;
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 100; ++i) send("ping", ping);
    std::this_thread::sleep_for(250ms);
    s = stats();
    if (count(s, "frontend", "slow_consumers") >= 1) break;
  }
  INFO("stats: " << s.dump() << "\nother's last other answer: " << other_saw << "\nrampartd's log:\n"
                 << server.proc->log());
  REQUIRE(count(s, "frontend", "slow_consumers") >= 1);
  CHECK(count(s, "frontend", "disconnects") >= 1);  // the server's side of the connection is closed
  // Its generation is cancelled: nothing runs any more, nothing is in flight.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = stats();
    if (s["scheduler"]["running"] == 0 && s["requests"]["in_flight"] == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(s["scheduler"]["running"] == 0);
  CHECK(s["requests"]["in_flight"] == 0);
  CHECK(other.ping(5s));
  CHECK(server.proc->running());
  // The front end told the monitor (the slow_readers detector's signal, keyed by the client's address): the
  // monitor's statistics on the alert stream, once a second here, count it. The gateway and the detokenizer
  // told it too: one request, and the tokens streamed to it (request_flood's signals).
  uint64_t counted = 0, requests = 0, tokens = 0;
  const auto stats_deadline = std::chrono::steady_clock::now() + 5s;
  while ((counted == 0 || tokens == 0) && std::chrono::steady_clock::now() < stats_deadline) {
    zmq::pollitem_t item{alerts.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 100ms);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t topic, body;
    (void)alerts.recv(topic);
    if (!topic.more()) continue;
    (void)alerts.recv(body);
    const json e = json::parse(body.to_string_view(), nullptr, false);
    if (e.is_object() && e.contains("stats")) {
      const json& app = e["stats"]["rampart"]["app_signals"];
      counted = app.value("slow_reader", uint64_t{0});
      requests = app.value("request", uint64_t{0});
      tokens = app.value("generated_tokens", uint64_t{0});
    }
  }
  CHECK(counted >= 1);
  CHECK(requests >= 1);  // the stats requests are no generations: the one `generate`
  CHECK(tokens >= 1);
}

TEST_CASE("a client that floods until its reads pause and then resets its connection cannot abort rampartd",
          "[integration][hostile]") {
  // With ZMTP heartbeats on, libzmq 4.3.4 aborted the process here (Assertion failed: !_io_error): 1 MiB pings
  // that take the server a few milliseconds each pause the connection's reads at rcvhwm, the client goes away
  // with answers unread, and the next heartbeat of that connection hit the failed socket.
  test::model_server server;
  std::string big = "{\"a\":[";
  for (int i = 0; i < 1000; ++i) big += "\"" + std::string(998, 'x') + "\",";
  big += "0]}";
  for (int round = 0; round < 5; ++round) {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(server.endpoint);
    for (int i = 0; i < 200; ++i) {
      if (!s.send(zmq::str_buffer("rampart/1"), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) break;
      s.send(zmq::str_buffer("ping"), zmq::send_flags::sndmore);
      s.send(zmq::buffer(big), zmq::send_flags::none);
    }
    std::this_thread::sleep_for(200ms);
  }  // each socket closes with its answers unread
  std::this_thread::sleep_for(3s);  // several heartbeat intervals, had there been heartbeats
  INFO(server.proc->log());
  REQUIRE(server.proc->running());
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  CHECK(c.ping(5s));
}

TEST_CASE("a source that sends more than its read budget is shed rate_limited undecoded, other sources are not",
          "[integration][hostile]") {
  test::model_server server;
  // 1,000,004 bytes that decode (a thousand strings of 998 bytes): each is answered `pong`, without the echo.
  std::string body = "{\"a\":[";
  for (int i = 0; i < 1000; ++i) body += "\"" + std::string(998, 'x') + "\",";
  body += "0]}";
  auto stats = [&](net::client& c) {
    c.send("stats", json::object());
    for (int i = 0; i < 20; ++i) {
      auto ev = next_answer(c, 5s);
      if (ev && ev->type == "stats") return ev->body;
    }
    return json();
  };
  // Just past the budget: 28 pings from 127.0.0.4. The 16 MiB burst (and the refill while they arrive) pays for
  // most; the rest are shed rate_limited with a retry time, too few (under 16 MiB) to cost the connection.
  {
    net::client_options from4;
    from4.source_address = "127.0.0.4";
    net::client c(from4);
    REQUIRE(c.connect(server.endpoint, nullptr));
    for (int i = 0; i < 28; ++i) c.send_frames({"rampart/1", "ping", body});
    int limited = 0, pongs = 0;
    int64_t retry_after = 0;
    while (limited + pongs < 28) {
      auto ev = next_answer(c, 10s);
      if (!ev) break;
      pongs += ev->type == "pong";
      if (ev->type == "shed" && ev->body["reason"] == "rate_limited") {
        ++limited;
        retry_after = ev->body["retry_after_ms"];
      }
    }
    CHECK(limited + pongs == 28);
    CHECK(limited >= 1);
    CHECK(pongs >= 16);
    CHECK(retry_after > 0);
    CHECK(stats(c)["frontend"]["flooders_dropped"] == 0);
  }
  // A flood: 40 more from 127.0.0.2. Once a further 16 MiB has been refused (17 of these), the connection goes;
  // what reaches the flooder before that is a matter of timing, the server's counters are not.
  net::client_options from2;
  from2.source_address = "127.0.0.2";
  net::client flooder(from2);
  REQUIRE(flooder.connect(server.endpoint, nullptr));
  for (int i = 0; i < 40; ++i) flooder.send_frames({"rampart/1", "ping", body});
  net::client other;  // 127.0.0.1 has its own budget
  REQUIRE(other.connect(server.endpoint, nullptr));
  json s;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = stats(other);
    if (s["frontend"]["flooders_dropped"].get<int>() >= 1) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(s.dump());
  CHECK(s["frontend"]["flooders_dropped"].get<int>() >= 1);
  CHECK(s["frontend"]["rate_limited"].get<int>() >= 17 + 1);
  CHECK(other.ping(5s));
}

TEST_CASE("a connection that floods small messages is dropped, another from the same address is served",
          "[integration][hostile]") {
  test::model_server server;
  net::client_options from5;
  from5.source_address = "127.0.0.5";
  net::client neighbour(from5);
  REQUIRE(neighbour.connect(server.endpoint, nullptr));
  REQUIRE(neighbour.ping(5s));
  // 5,000 pings as fast as the socket takes them, never read: a connection may have 500 a second decoded, 1,000
  // at once. Past the burst they are shed rate_limited undecoded; once a further 1,000 have been refused the
  // connection is dropped.
  net::client flooder(from5);
  REQUIRE(flooder.connect(server.endpoint, nullptr));
  for (int i = 0; i < 5000; ++i) flooder.send_frames({"rampart/1", "ping", "{}"});
  json s;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    neighbour.send("stats", json::object());
    for (int i = 0; i < 20; ++i) {
      auto ev = next_answer(neighbour, 5s);
      if (ev && ev->type == "stats") {
        s = ev->body;
        break;
      }
    }
    if (s.contains("frontend") && s["frontend"]["flooders_dropped"].get<int>() >= 1) break;
    std::this_thread::sleep_for(100ms);
  }
  INFO(s.dump());
  REQUIRE(s.contains("frontend"));
  CHECK(s["frontend"]["flooders_dropped"].get<int>() >= 1);
  CHECK(s["frontend"]["rate_limited"].get<int>() >= 1001);
  // The neighbour, on its own connection from the same address, is untouched: 20 pings, every one answered.
  for (int i = 0; i < 20; ++i) CHECK(neighbour.ping(5s));
  // A new connection from the flooder's address starts with 10 messages, refilled at 500 a second: a client
  // that behaves is served.
  net::client again(from5);
  REQUIRE(again.connect(server.endpoint, nullptr));
  for (int i = 0; i < 5; ++i) {
    CHECK(again.ping(5s));
    std::this_thread::sleep_for(10ms);
  }
}

TEST_CASE("a client that vanishes while its prompts are being tokenized leaves no request and no slot behind",
          "[integration][hostile]") {
  test::model_server server;
  {
    net::client c;
    REQUIRE(c.connect(server.endpoint, nullptr));
    REQUIRE(c.ping(5s));
    // Long prompts keep the tokenizer busy; the first `accepted` to this vanished client fails, which marks the
    // rest gone while they are still being tokenized.
    const std::string text(200000, 'a');
    for (int i = 0; i < 10; ++i) {
      c.send("generate", {{"request_id", "t" + std::to_string(i)}, {"text", text}, {"max_tokens", 4}});
    }
  }  // closes at once
  net::client other;
  REQUIRE(other.connect(server.endpoint, nullptr));
  json s;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    other.send("stats", json::object());
    auto ev = next_answer(other, 5s);
    if (ev && ev->type == "stats") {
      s = ev->body;
      if (s["requests"]["in_flight"] == 0 && s["scheduler"]["running"] == 0 && s["scheduler"]["waiting"] == 0) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  INFO(s.dump());
  CHECK(s["requests"]["in_flight"] == 0);
  // Every admission ticket came back: a fresh anonymous client is admitted as before.
  other.send("generate", {{"request_id", "after"}, {"ids", {1, 2}}, {"max_tokens", 2}});
  std::optional<net::client_event> end;
  for (int i = 0; i < 50 && !(end && is_terminal(end->type)); ++i) end = next_answer(other, 5s);
  REQUIRE(end);
  CHECK(end->type == "done");
}
