// The whole pipeline as a real process over real sockets: streaming, cancel, vanished clients, concurrency,
// malformed input, stop strings, metrics and the Python example client.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <signal.h>

#include "tests/integration/server_fixture.hpp"
#include "net/protocol.hpp"
#include "tests/support/http.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

bool is_terminal(const std::string& type) { return type == "done" || type == "error" || type == "shed"; }

// Every event of REQUEST_ID until its terminal one (inclusive), or until TIMEOUT.
std::vector<net::client_event> collect(net::client& c, const std::string& request_id,
                                       std::chrono::milliseconds timeout = 60s) {
  std::vector<net::client_event> events;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (!ev || ev->body.value("request_id", "") != request_id) continue;
    events.push_back(*ev);
    if (is_terminal(ev->type)) break;
  }
  return events;
}

std::vector<int32_t> streamed_ids(const std::vector<net::client_event>& events) {
  std::vector<int32_t> ids;
  for (const auto& e : events) {
    if (e.type == "token") {
      for (const auto& id : e.body["ids"]) ids.push_back(id.get<int32_t>());
    }
  }
  return ids;
}

std::string streamed_text(const std::vector<net::client_event>& events) {
  std::string text;
  for (const auto& e : events) {
    if (e.type == "token") text += e.body["text"].get<std::string>();
  }
  return text;
}

json stats(const std::string& endpoint) {
  net::client c;
  c.connect(endpoint, nullptr);
  c.send("stats", json::object());
  for (int i = 0; i < 20; ++i) {
    auto ev = c.receive(500ms);
    if (ev && ev->type == "stats") return ev->body;
  }
  return {};
}

// Waits until the scheduler holds nothing and every KV block is free again.
bool wait_all_blocks_free(const std::string& endpoint, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = stats(endpoint);
    if (s.contains("scheduler") && s["scheduler"]["running"] == 0 && s["scheduler"]["waiting"] == 0 &&
        s["scheduler"]["kv"]["free_blocks"] == s["scheduler"]["kv"]["total_blocks"]) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::vector<int32_t> generate_tool(const std::string& ids, int n, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--model", RAMPART_SERVER_MODEL_DIR, "--ids", ids, "-n", std::to_string(n)};
  args.insert(args.end(), extra.begin(), extra.end());
  std::string out;
  int rc = test::run_command(test::bin("rampart-generate"), args, &out);
  INFO(out);
  REQUIRE(rc == 0);
  std::istringstream in(out.substr(0, out.find('\n')));
  std::vector<int32_t> result;
  int32_t v;
  while (in >> v) result.push_back(v);
  return result;
}

}  // namespace

TEST_CASE("streamed tokens equal rampart-generate's for the same prompt, greedy and seeded", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));

  c.send("generate", {{"request_id", "g"}, {"ids", {0, 15, 27}}, {"max_tokens", 12}, {"temperature", 0}});
  auto events = collect(c, "g");
  REQUIRE(!events.empty());
  CHECK(events.front().type == "accepted");
  CHECK(events.front().body["prompt_tokens"] == 3);
  REQUIRE(events.back().type == "done");
  auto ids = streamed_ids(events);
  auto expected = generate_tool("0 15 27", 12, {"--temperature", "0"});
  if (events.back().body["finish_reason"] == "length") CHECK(ids == expected);
  else CHECK(std::equal(ids.begin(), ids.end(), expected.begin()));  // stopped early on EOS
  CHECK(events.back().body["usage"]["completion_tokens"] == ids.size());
  CHECK(events.back().body["usage"]["prompt_tokens"] == 3);

  c.send("generate", {{"request_id", "s"}, {"ids", {5, 6, 7, 8}}, {"max_tokens", 10}, {"temperature", 0.9},
                      {"seed", 1234}});
  auto seeded = collect(c, "s");
  REQUIRE(seeded.back().type == "done");
  auto seeded_expected = generate_tool("5 6 7 8", 10, {"--temperature", "0.9", "--seed", "1234"});
  auto seeded_ids = streamed_ids(seeded);
  CHECK(std::equal(seeded_ids.begin(), seeded_ids.end(), seeded_expected.begin()));
}

TEST_CASE("token events are indexed in order and their text is valid UTF-8", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  c.send("generate", {{"request_id", "u"},
                      {"messages", {{{"role", "user"}, {"content", "写一首关于春天的诗"}}}},
                      {"max_tokens", 40},
                      {"temperature", 1.0},
                      {"seed", 7}});
  auto events = collect(c, "u");
  REQUIRE(events.back().type == "done");
  int64_t expected_index = 0;
  for (const auto& e : events) {
    if (e.type != "token") continue;
    CHECK(e.body["index"] == expected_index++);
    CHECK(net::valid_utf8(e.body["text"].get<std::string>()));
  }
  CHECK(expected_index > 0);
}

TEST_CASE("cancel mid-stream ends with done(cancelled) and frees the KV blocks", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  c.send("generate", {{"request_id", "long"}, {"text", "Tell me everything."}, {"max_tokens", 4000},
                      {"temperature", 0}});
  int tokens = 0;
  std::vector<net::client_event> events;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  bool cancel_sent = false;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (!ev) continue;
    events.push_back(*ev);
    if (ev->type == "token" && ++tokens == 3 && !cancel_sent) {
      c.send("cancel", {{"request_id", "long"}});
      cancel_sent = true;
    }
    if (is_terminal(ev->type)) break;
  }
  REQUIRE(cancel_sent);
  REQUIRE(!events.empty());
  CHECK(events.back().type == "done");
  CHECK(events.back().body["finish_reason"] == "cancelled");
  // No second terminal event follows.
  auto extra = c.receive(300ms);
  CHECK_FALSE((extra && is_terminal(extra->type)));
  CHECK(wait_all_blocks_free(server.endpoint, 5s));
  // A cancel for a request that is no longer running is an error naming it.
  c.send("cancel", {{"request_id", "long"}});
  auto ev = c.receive(2s);
  REQUIRE(ev);
  CHECK(ev->type == "error");
  CHECK(ev->body["code"] == "unknown_request");
}

TEST_CASE("a client that vanishes has its generation cancelled and its blocks freed", "[pipeline]") {
  test::model_server server;
  {
    net::client gone;
    REQUIRE(gone.connect(server.endpoint, nullptr));
    gone.send("generate", {{"request_id", "v"}, {"text", "Keep talking."}, {"max_tokens", 4000},
                           {"temperature", 0}});
    int tokens = 0;
    for (int i = 0; i < 200 && tokens < 2; ++i) {
      auto ev = gone.receive(100ms);
      if (ev && ev->type == "token") ++tokens;
    }
    REQUIRE(tokens == 2);
  }  // the socket closes here, mid-stream
  const auto closed = std::chrono::steady_clock::now();
  CHECK(wait_all_blocks_free(server.endpoint, 5s));
  const double observed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - closed).count();
  auto metrics = test::http_get(server.metrics_port, "/metrics");
  CHECK(metrics.find("rampart:client_gone_to_kv_freed_seconds_count 1") != std::string::npos);
  auto at = metrics.find("rampart:client_gone_to_kv_freed_seconds_sum ");
  REQUIRE(at != std::string::npos);
  const double server_ms = 1000.0 * std::stod(metrics.substr(at + 44));
  std::printf("vanished client: blocks free %.1f ms after the socket closed (client-observed, 20 ms polling); "
              "server: %.2f ms from noticing to freeing\n", observed_ms, server_ms);
}

TEST_CASE("64 concurrent clients each get exactly one terminal event per request", "[pipeline]") {
  test::model_server server;
  constexpr int kClients = 64, kPerClient = 2;
  std::vector<std::unique_ptr<net::client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<net::client>());
    REQUIRE(clients.back()->connect(server.endpoint, nullptr));
  }
  for (int i = 0; i < kClients; ++i) {
    for (int k = 0; k < kPerClient; ++k) {
      clients[i]->send("generate", {{"request_id", "r" + std::to_string(k)},
                                    {"text", "Client " + std::to_string(i) + " asks question " + std::to_string(k)},
                                    {"max_tokens", 6}, {"temperature", 0.7}, {"seed", i * 10 + k}});
    }
  }
  std::map<std::pair<int, std::string>, int> terminals;
  std::map<std::pair<int, std::string>, int64_t> next_index;
  int total_terminals = 0;
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (total_terminals < kClients * kPerClient && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < kClients; ++i) {
      while (auto ev = clients[i]->receive(0ms)) {
        auto key = std::make_pair(i, ev->body.value("request_id", ""));
        if (ev->type == "token") {
          CHECK(terminals[key] == 0);  // nothing after the terminal event
          CHECK(ev->body["index"] == next_index[key]++);
        }
        if (is_terminal(ev->type)) {
          ++terminals[key];
          ++total_terminals;
        }
      }
    }
    std::this_thread::sleep_for(2ms);
  }
  std::this_thread::sleep_for(300ms);  // late duplicates would arrive now
  for (int i = 0; i < kClients; ++i) {
    while (auto ev = clients[i]->receive(0ms)) {
      if (is_terminal(ev->type)) ++terminals[{i, ev->body.value("request_id", "")}];
    }
  }
  CHECK(total_terminals == kClients * kPerClient);
  for (int i = 0; i < kClients; ++i) {
    for (int k = 0; k < kPerClient; ++k) CHECK(terminals[{i, "r" + std::to_string(k)}] == 1);
  }
  CHECK(wait_all_blocks_free(server.endpoint, 5s));
}

TEST_CASE("refusals with a model loaded carry their codes and the server keeps serving", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  // Token ids outside the model's vocabulary.
  c.send("generate", {{"request_id", "bad-ids"}, {"ids", {129280}}, {"max_tokens", 2}});
  auto ev = collect(c, "bad-ids", 5s);
  REQUIRE(!ev.empty());
  CHECK(ev.back().type == "error");
  CHECK(ev.back().body["code"] == "bad_parameter");
  // Duplicate request ids while the first still runs.
  c.send("generate", {{"request_id", "dup"}, {"text", "one"}, {"max_tokens", 4000}, {"temperature", 0}});
  c.send("generate", {{"request_id", "dup"}, {"text", "two"}, {"max_tokens", 4}});
  bool saw_duplicate = false;
  for (int i = 0; i < 100 && !saw_duplicate; ++i) {
    auto e = c.receive(100ms);
    if (e && e->type == "error" && e->body["code"] == "duplicate_request_id") saw_duplicate = true;
  }
  CHECK(saw_duplicate);
  c.send("cancel", {{"request_id", "dup"}});
  auto rest = collect(c, "dup", 10s);
  REQUIRE(!rest.empty());
  CHECK(rest.back().body["finish_reason"] == "cancelled");
  CHECK(c.ping(2s));
}

TEST_CASE("prompts too long for the limit or for the KV cache are refused with prompt_too_long", "[pipeline]") {
  test::model_server server("max_prompt_tokens = 8\n", "[engine]\nkv_blocks = 8\n");
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  c.send("generate", {{"request_id", "p"}, {"text", "one two three four five six seven eight nine ten"},
                      {"max_tokens", 2}});
  auto ev = collect(c, "p", 5s);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == "error");
  CHECK(ev[0].body["code"] == "prompt_too_long");
  // 8 blocks of 16 tokens hold 128 tokens: 3 + 200 can never fit.
  c.send("generate", {{"request_id", "kv"}, {"ids", {1, 2, 3}}, {"max_tokens", 200}});
  ev = collect(c, "kv", 5s);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == "error");
  CHECK(ev[0].body["code"] == "prompt_too_long");
  c.send("generate", {{"request_id", "ok"}, {"ids", {1, 2, 3}}, {"max_tokens", 4}});
  ev = collect(c, "ok", 10s);
  REQUIRE(!ev.empty());
  CHECK(ev.back().type == "done");
}

TEST_CASE("a stop string spanning tokens ends the stream before it and never leaks", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  const json base = {{"text", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}};
  json first = base;
  first["request_id"] = "free";
  c.send("generate", first);
  auto events = collect(c, "free");
  REQUIRE(events.back().type == "done");
  // Pick a stop string that starts inside one token's text and ends inside a later one.
  std::vector<std::string> pieces;
  for (const auto& e : events) {
    if (e.type == "token" && !e.body["text"].get<std::string>().empty()) pieces.push_back(e.body["text"]);
  }
  REQUIRE(pieces.size() >= 4);
  std::string full;
  for (const auto& p : pieces) full += p;
  size_t start = pieces[0].size() + pieces[1].size() - 1;  // last byte of piece 1 ...
  while (start > 0 && (static_cast<unsigned char>(full[start]) & 0xc0) == 0x80) --start;
  size_t end = pieces[0].size() + pieces[1].size() + pieces[2].size() + 1;  // ... into piece 3
  while (end < full.size() && (static_cast<unsigned char>(full[end]) & 0xc0) == 0x80) ++end;
  std::string stop = full.substr(start, end - start);
  json second = base;
  second["request_id"] = "stopped";
  second["stop"] = {stop};
  c.send("generate", second);
  auto stopped = collect(c, "stopped");
  REQUIRE(stopped.back().type == "done");
  CHECK(stopped.back().body["finish_reason"] == "stop");
  CHECK(streamed_text(stopped) == full.substr(0, full.find(stop)));
  CHECK(wait_all_blocks_free(server.endpoint, 5s));
}

TEST_CASE("rampart-client sends --stop, --priority and the sampling options, and refuses bad ones", "[pipeline]") {
  test::model_server server;
  const std::vector<std::string> base = {"--connect", server.endpoint, "--prompt", "Once upon a time",
                                         "--max-tokens", "24", "--temperature", "0", "--json"};
  // The --json stream's text and terminal event.
  const auto run_client = [&](const std::vector<std::string>& extra, std::string* text, json* done) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    std::string out;
    const int rc = test::run_command(test::bin("rampart-client"), args, &out);
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      const json ev = json::parse(line, nullptr, false);
      if (ev.is_discarded()) continue;
      if (ev["type"] == "token") *text += ev["body"]["text"].get<std::string>();
      if (ev["type"] == "done") *done = ev["body"];
    }
    return rc;
  };
  std::string full, cut;
  json done, stopped;
  REQUIRE(run_client({}, &full, &done) == 0);
  REQUIRE(full.size() >= 8);
  // A stop string from the middle of the greedy text (whole UTF-8 characters).
  size_t start = full.size() / 2;
  while (start > 0 && (static_cast<unsigned char>(full[start]) & 0xc0) == 0x80) --start;
  size_t end = start + 3;
  while (end < full.size() && (static_cast<unsigned char>(full[end]) & 0xc0) == 0x80) ++end;
  const std::string stop = full.substr(start, end - start);
  REQUIRE(run_client({"--stop", stop, "--stop", "never appears", "--priority", "high", "--top-k", "1", "--top-p",
                      "0.9", "--min-p", "0.01"},
                     &cut, &stopped) == 0);
  CHECK(stopped["finish_reason"] == "stop");
  CHECK(cut == full.substr(0, full.find(stop)));

  std::string out;
  CHECK(test::run_command(test::bin("rampart-client"), {"--prompt", "x", "--priority", "urgent"}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--priority wants critical, high, normal or sheddable"));
  CHECK(test::run_command(test::bin("rampart-client"), {"--prompt", "x", "--stop", ""}, &out) == 2);
  CHECK_THAT(out, Catch::Contains("--stop wants 1 to 256 bytes"));
}

TEST_CASE("metrics are served in Prometheus text format", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  c.send("generate", {{"request_id", "m"}, {"text", "hi"}, {"max_tokens", 3}, {"temperature", 0}});
  auto events = collect(c, "m");
  REQUIRE(events.back().type == "done");
  auto text = test::http_get(server.metrics_port, "/metrics");
  CHECK(text.find("200 OK") != std::string::npos);
  CHECK(text.find("# TYPE rampart:time_to_first_token_seconds histogram") != std::string::npos);
  CHECK(text.find("rampart:generation_tokens_total") != std::string::npos);
  CHECK(text.find("rampart:num_requests_running 0") != std::string::npos);
  const std::string reason = events.back().body["finish_reason"];
  INFO(text);
  CHECK(text.find("rampart:request_success_total{finished_reason=\"" + reason + "\"} 1") != std::string::npos);
}

TEST_CASE("the Python example client streams a completion", "[pipeline]") {
  test::model_server server;
  std::string out;
  int rc = test::run_command("/usr/bin/python3",
                             {test::source_dir() + "/docs/examples/client.py", "--connect", server.endpoint,
                              "--prompt", "Hello from Python", "--max-tokens", "8"},
                             &out);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("[done: ") != std::string::npos);
}

TEST_CASE("with a model loaded, SIGTERM drains: running requests get their terminal event and rampartd exits 0",
          "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  c.send("generate", {{"request_id", "drain"}, {"text", "Go on."}, {"max_tokens", 4000}, {"temperature", 0},
                      {"ignore_eos", true}});
  int tokens = 0;
  for (int i = 0; i < 100 && tokens < 2; ++i) {
    auto ev = c.receive(100ms);
    if (ev && ev->type == "token") ++tokens;
  }
  REQUIRE(tokens == 2);
  const auto first_line = [](const std::string& r) { return r.substr(0, r.find("\r\n")); };
  CHECK(first_line(test::http_get(server.metrics_port, "/readyz")) == "HTTP/1.1 200 OK");
  server.proc->signal(SIGTERM);
  // Readiness says no at once (a load balancer stops sending), health stays yes while the stages drain.
  std::string ready;
  for (int i = 0; i < 100; ++i) {
    ready = test::http_get(server.metrics_port, "/readyz");
    if (first_line(ready) != "HTTP/1.1 200 OK") break;
    std::this_thread::sleep_for(20ms);
  }
  INFO(ready);
  CHECK(first_line(ready) == "HTTP/1.1 503 Service Unavailable");
  CHECK(ready.find(R"("not_ready":["draining"])") != std::string::npos);
  CHECK(first_line(test::http_get(server.metrics_port, "/healthz")) == "HTTP/1.1 200 OK");
  // New work is shed while draining.
  net::client late;
  REQUIRE(late.connect(server.endpoint, nullptr));
  late.send("generate", {{"request_id", "late"}, {"text", "hi"}, {"max_tokens", 2}});
  auto shed = late.receive(5s);
  REQUIRE(shed);
  CHECK(shed->type == "shed");
  CHECK(shed->body["reason"] == "shutting_down");
  auto events = collect(c, "drain", 30s);
  REQUIRE(!events.empty());
  CHECK(is_terminal(events.back().type));
  auto status = server.proc->wait_exit(30s);
  INFO(server.proc->log());
  REQUIRE(status);
  CHECK(*status == 0);
}

TEST_CASE("requests still running when the drain limit runs out end with shed shutting_down", "[pipeline]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  // Eight generations of 4000 tokens share the engine: far more than the 10 s drain limit lets them finish.
  for (int i = 0; i < 8; ++i) {
    c.send("generate", {{"request_id", "long-" + std::to_string(i)}, {"ids", {1, 2, 3 + i}}, {"max_tokens", 4000},
                        {"temperature", 0}, {"ignore_eos", true}});
  }
  std::set<std::string> started;
  for (int i = 0; i < 300 && started.size() < 8; ++i) {
    auto ev = c.receive(100ms);
    if (ev && ev->type == "token") started.insert(ev->body["request_id"].get<std::string>());
  }
  REQUIRE(started.size() == 8);
  server.proc->signal(SIGTERM);
  std::map<std::string, json> terminal;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (terminal.size() < 8 && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.receive(200ms);
    if (ev && is_terminal(ev->type)) terminal[ev->body.value("request_id", "")] = json{{"type", ev->type}, {"body", ev->body}};
  }
  INFO(server.proc->log());
  REQUIRE(terminal.size() == 8);
  for (const auto& [id, t] : terminal) {
    INFO(id << " " << t.dump());
    CHECK(t["type"] == "shed");
    CHECK(t["body"]["reason"] == "shutting_down");
  }
  auto status = server.proc->wait_exit(30s);
  REQUIRE(status);
  CHECK(*status == 0);
}

TEST_CASE("max_tokens 1 yields one token event carrying its id, and done.timing has queue_ms", "[pipeline][protocol]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  for (int i = 0; i < 5; ++i) {
    const std::string id = "one-" + std::to_string(i);
    c.send("generate", {{"request_id", id}, {"messages", {{{"role", "user"}, {"content", "写"}}}}, {"max_tokens", 1},
                        {"temperature", 1.0}, {"seed", 100 + i}, {"ignore_eos", true}});
    auto events = collect(c, id);
    REQUIRE(events.size() == 3);
    CHECK(events[0].type == "accepted");
    CHECK(events[1].type == "token");
    CHECK(events[1].body["ids"].size() == 1);
    REQUIRE(events[2].type == "done");
    const auto& timing = events[2].body["timing"];
    REQUIRE(timing.contains("queue_ms"));
    CHECK(timing["queue_ms"].get<double>() >= 0);
    CHECK(timing["queue_ms"].get<double>() <= timing["total_ms"].get<double>());
  }
  // A longer completion: the ids of all token events are every generated token, each once.
  c.send("generate", {{"request_id", "long"}, {"messages", {{{"role", "user"}, {"content", "写一首诗"}}}},
                      {"max_tokens", 48}, {"temperature", 1.0}, {"seed", 9}, {"ignore_eos", true}});
  auto events = collect(c, "long");
  REQUIRE(events.back().type == "done");
  CHECK(streamed_ids(events).size() == events.back().body["usage"]["completion_tokens"].get<size_t>());
}

TEST_CASE("a cancel sent right behind its generate still gets accepted first, then done", "[pipeline][protocol]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  for (int i = 0; i < 20; ++i) {
    const std::string id = "quick-" + std::to_string(i);
    c.send("generate", {{"request_id", id}, {"ids", {1, 2, 3}}, {"max_tokens", 400}, {"ignore_eos", true}});
    c.send("cancel", {{"request_id", id}});
    auto events = collect(c, id);
    REQUIRE(events.size() >= 2);
    CHECK(events.front().type == "accepted");
    CHECK(events.back().type == "done");
    CHECK(events.back().body["finish_reason"] == "cancelled");
    CHECK(events.back().body["timing"].contains("queue_ms"));
  }
}

TEST_CASE("every cancel is answered once: by the request's end or by unknown_request", "[pipeline][protocol]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  // Two cancels back to back: the first stops the request, the second is refused.
  c.send("generate", {{"request_id", "twice"}, {"ids", {1, 2, 3}}, {"max_tokens", 400}, {"ignore_eos", true}});
  auto first = c.receive(10s);
  REQUIRE(first);
  REQUIRE(first->type == "accepted");
  c.send("cancel", {{"request_id", "twice"}});
  c.send("cancel", {{"request_id", "twice"}});
  int done = 0, unknown = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && done + unknown < 2) {
    auto ev = c.receive(200ms);
    if (!ev || ev->body.value("request_id", "") != "twice") continue;
    done += ev->type == "done";
    unknown += ev->type == "error" && ev->body["code"] == "unknown_request";
  }
  CHECK(done == 1);
  CHECK(unknown == 1);
  // Cancels racing the natural end: each request ends once, and a cancel that found it already ended gets
  // unknown_request; none is answered twice.
  for (int i = 0; i < 40; ++i) {
    const std::string id = "race-" + std::to_string(i);
    c.send("generate", {{"request_id", id}, {"ids", {4, 5, 6}}, {"max_tokens", 2}, {"ignore_eos", true}});
    std::this_thread::sleep_for(std::chrono::milliseconds(i % 8));
    c.send("cancel", {{"request_id", id}});
    int terminals = 0, refusals = 0;
    std::string reason;
    // Until the terminal event, then 300 ms more for a refusal (which comes right behind it when it comes).
    auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      auto ev = c.receive(50ms);
      if (!ev || ev->body.value("request_id", "") != id) continue;
      if (ev->type == "done") {
        ++terminals;
        reason = ev->body["finish_reason"];
        until = std::min(until, std::chrono::steady_clock::now() + 300ms);
      }
      if (ev->type == "error") refusals += ev->body["code"] == "unknown_request";
    }
    INFO(id << " ended " << reason);
    CHECK(terminals == 1);
    CHECK(refusals <= 1);
    if (reason == "cancelled") CHECK(refusals == 0);
  }
}

TEST_CASE("ping echoes its body, {} for an empty frame, and pong names the limits", "[pipeline][protocol]") {
  test::model_server server;
  net::client c;
  REQUIRE(c.connect(server.endpoint, nullptr));
  for (const char* body : {"", "{}"}) {
    c.send_frames({"rampart/1", "ping", body});
    auto ev = c.receive(5s);
    REQUIRE(ev);
    REQUIRE(ev->type == "pong");
    CHECK(ev->body["echo"] == json::object());
  }
  c.send("ping", {{"tag", {1, "two"}}});
  auto ev = c.receive(5s);
  REQUIRE(ev);
  CHECK(ev->body["echo"] == json{{"tag", {1, "two"}}});
  CHECK(ev->body["limits"]["max_prompt_tokens"] == 8192);
  c.send("ping", {{"big", std::string(5000, 'x')}});
  ev = c.receive(5s);
  REQUIRE(ev);
  CHECK_FALSE(ev->body.contains("echo"));
  CHECK(ev->body["echo_omitted"] == true);
}
