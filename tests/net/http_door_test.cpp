// The HTTP door over real loopback sockets, with a handler that plays the server: streams and whole answers,
// keep-alive, each bound (header bytes and count, body, timeouts, connections per address, slow readers), the
// deny list at accept, and a client that goes away cancelling its work.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/http_door.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// Plays the server: a generate is answered with accepted, one token event per word of its text (or of "one two
// three"), and done; text containing "hold" is never answered; "shed" is shed; "flood" streams 4000 large tokens.
class fake_server : public net::frontend_handler {
 public:
  net::http_door* door = nullptr;
  void on_message(const std::string& peer, const std::string& address, const std::string&,
                  net::client_message msg) override {
    std::lock_guard<std::mutex> lock(mu);
    const auto& g = msg.generate;
    last_address = address;
    last_key = g.api_key;
    ++messages;
    const std::string& text = g.kind == net::input_kind::chat ? g.messages[0]["content"].get_ref<const std::string&>()
                                                              : g.text;
    if (text.find("hold") != std::string::npos) return;
    if (text.find("shed") != std::string::npos) {
      door->post(peer, "shed", net::shed_body(g.request_id, "anonymous_closed", 2500));
      return;
    }
    door->post(peer, "accepted", {{"request_id", g.request_id}, {"prompt_tokens", 3}});
    const bool flood = text.find("flood") != std::string::npos;
    const int n = flood ? 20000 : 3;
    const char* words[] = {"one", " two", " three"};
    for (int i = 0; i < n; ++i) {
      door->post(peer, "token", {{"request_id", g.request_id}, {"index", i},
                                 {"text", flood ? std::string(1000, 'x') : std::string(words[i])}, {"ids", {i}}});
    }
    door->post(peer, "done", {{"request_id", g.request_id}, {"finish_reason", "stop"},
                              {"usage", {{"prompt_tokens", 3}, {"completion_tokens", n}, {"cached_prompt_tokens", 0}}}});
  }
  void on_peer_gone(const std::string& peer) override {
    std::lock_guard<std::mutex> lock(mu);
    gone.push_back(peer);
    cv.notify_all();
  }
  void on_slow_reader(const std::string& address) override {
    std::lock_guard<std::mutex> lock(mu);
    slow_readers.push_back(address);
  }
  bool wait_gone(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return gone.size() >= n; });
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> gone;
  std::vector<std::string> slow_readers;  // the addresses reported as slow readers (the monitor's signal)
  std::string last_address, last_key;
  std::atomic<int> messages{0};
};

struct door_fixture {
  fake_server server;
  std::unique_ptr<net::http_door> door;
  explicit door_fixture(net::http_door_options o = {}) {
    o.listen = "127.0.0.1:0";
    o.model_name = "m";
    door = std::make_unique<net::http_door>(o, &server);
    server.door = door.get();
    std::string error;
    REQUIRE(door->start(&error));
  }
  int port() const { return door->bound_port(); }
};

// A loopback TCP client that reads what it is sent.
class conn {
 public:
  explicit conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~conn() { close(fd_); }
  bool ok() const { return ok_; }
  bool send_all(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // Reads until UNTIL appears in what was read (or the peer closes, or TIMEOUT); returns everything read.
  std::string read_until(const std::string& until, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in_.find(until) == std::string::npos && !closed_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) closed_ = true;
      else in_.append(buf, static_cast<size_t>(n));
    }
    return in_;
  }
  // True when the server closes the connection within TIMEOUT (what it sent before is kept).
  bool closed_within(std::chrono::milliseconds timeout) {
    read_until(std::string(1, '\0') + "never", timeout);
    return closed_;
  }
  const std::string& received() const { return in_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  bool closed_ = false;
  std::string in_;
};

std::string post(const std::string& path, const std::string& body, const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

std::string chat_body(const std::string& text, bool stream) {
  return json({{"model", "m"}, {"messages", {{{"role", "user"}, {"content", text}}}}, {"stream", stream},
               {"stream_options", {{"include_usage", stream}}}})
      .dump();
}

// The JSON of each `data:` line of an event stream, "[DONE]" as a string.
std::vector<json> sse_data(const std::string& response) {
  std::vector<json> out;
  size_t at = 0;
  while ((at = response.find("data: ", at)) != std::string::npos) {
    size_t end = response.find("\n\n", at);
    std::string payload = response.substr(at + 6, end - at - 6);
    out.push_back(payload == "[DONE]" ? json("[DONE]") : json::parse(payload));
    at = end;
  }
  return out;
}

}  // namespace

TEST_CASE("a streamed chat completion arrives as server-sent events in HTTP/1.1 chunks, ending with [DONE]",
          "[http_door]") {
  door_fixture f;
  conn c(f.port());
  REQUIRE(c.ok());
  REQUIRE(c.send_all(post("/v1/chat/completions", chat_body("hello", true), "Authorization: Bearer rk_k\r\n")));
  const std::string r = c.read_until("0\r\n\r\n");
  CHECK(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(r.find("Content-Type: text/event-stream\r\n") != std::string::npos);
  CHECK(r.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  auto events = sse_data(r);
  REQUIRE(events.size() == 7);  // role, three words, finish, usage, [DONE]
  CHECK(events[0]["choices"][0]["delta"] == json({{"role", "assistant"}, {"content", ""}}));
  std::string text;
  for (size_t i = 1; i <= 3; ++i) text += events[i]["choices"][0]["delta"]["content"].get<std::string>();
  CHECK(text == "one two three");
  CHECK(events[4]["choices"][0]["finish_reason"] == "stop");
  CHECK(events[5]["usage"]["total_tokens"] == 6);
  CHECK(events[6] == "[DONE]");
  CHECK(f.server.last_key == "rk_k");
  CHECK(f.server.last_address == "127.0.0.1");
}

TEST_CASE("whole answers, keep-alive and pipelined requests are answered in order on one connection",
          "[http_door]") {
  door_fixture f;
  conn c(f.port());
  const std::string completion = json({{"model", "m"}, {"prompt", "a b"}}).dump();
  REQUIRE(c.send_all(post("/v1/chat/completions", chat_body("hi", false)) + post("/v1/completions", completion) +
                     "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string r = c.read_until("\"owned_by\"");
  const size_t first = r.find("\"object\":\"chat.completion\"");
  const size_t second = r.find("\"object\":\"text_completion\"");
  const size_t third = r.find("\"object\":\"list\"");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  REQUIRE(third != std::string::npos);
  CHECK(first < second);
  CHECK(second < third);
  CHECK(r.find("\"content\":\"one two three\"") != std::string::npos);
  CHECK(r.find("\"text\":\"one two three\"") != std::string::npos);
}

TEST_CASE("each bound of the request is answered with its status and ends the connection", "[http_door]") {
  net::http_door_options o;
  o.max_header_bytes = 2048;
  o.max_headers = 16;
  o.limits.max_body_bytes = 4096;
  door_fixture f(o);
  auto exchange = [&](const std::string& raw) {
    conn c(f.port());
    c.send_all(raw);
    c.closed_within(3s);
    return c.received();
  };
  CHECK(exchange(post("/v1/chat/completions", "{}", "X-Big: " + std::string(4096, 'a') + "\r\n"))
            .rfind("HTTP/1.1 431", 0) == 0);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  CHECK(exchange(post("/v1/chat/completions", "{}", many)).rfind("HTTP/1.1 431", 0) == 0);
  CHECK(exchange(post("/v1/chat/completions", std::string(5000, ' '))).rfind("HTTP/1.1 413", 0) == 0);
  CHECK(exchange("GARBAGE\r\n\r\n").rfind("HTTP/1.1 400", 0) == 0);
  CHECK(exchange("GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 405", 0) == 0);
  CHECK(exchange(post("/v1/chat/completions", chat_body("hi", false), "Authorization: Basic eDp5\r\n"))
            .rfind("HTTP/1.1 401", 0) == 0);
  // Refusals of the body keep the connection (the request was read whole): the next request is answered.
  conn c(f.port());
  c.send_all(post("/v1/chat/completions", R"({"model":"m","messages":)" + std::string(40, '[') +
                                              std::string(40, ']') + "}") +
             "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string r = c.read_until("HTTP/1.1 404");
  CHECK(r.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(r.find("max_depth") != std::string::npos);
  CHECK(r.find("HTTP/1.1 404") != std::string::npos);
  CHECK(f.server.messages == 0);
}

TEST_CASE("a slowloris client is closed at the header timeout, an idle one at the idle timeout", "[http_door]") {
  net::http_door_options o;
  o.header_timeout = 400ms;
  o.idle_timeout = 600ms;
  door_fixture f(o);
  conn slow(f.port());
  const auto start = std::chrono::steady_clock::now();
  std::thread trickle([&] {
    const std::string line = "POST /v1/chat/completions HTTP/1.1\r\nX-Slow: ";
    for (char ch : line + std::string(40, 'z')) {
      if (!slow.send_all(std::string(1, ch))) break;
      std::this_thread::sleep_for(50ms);
    }
  });
  CHECK(slow.closed_within(3s));
  const auto took = std::chrono::steady_clock::now() - start;
  trickle.join();
  CHECK(took >= 350ms);
  CHECK(took < 1500ms);
  CHECK(f.door->counters().timed_out >= 1);

  conn idle(f.port());
  idle.send_all("GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(idle.read_until("owned_by").find("200 OK") != std::string::npos);
  const auto after = std::chrono::steady_clock::now();
  CHECK(idle.closed_within(3s));
  CHECK(std::chrono::steady_clock::now() - after >= 500ms);
}

TEST_CASE("connections past the per-address cap, and from deny-listed addresses, are closed at accept",
          "[http_door]") {
  net::http_door_options o;
  o.max_connections_per_source = 3;
  door_fixture f(o);
  std::vector<std::unique_ptr<conn>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<conn>(f.port()));
  for (auto& c : held) CHECK_FALSE(c->closed_within(100ms));
  conn fourth(f.port());
  CHECK(fourth.closed_within(2s));
  CHECK(f.door->counters().refused_connections == 1);
  held.pop_back();  // one goes: a new one is let in
  std::this_thread::sleep_for(100ms);
  conn fifth(f.port());
  fifth.send_all("GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(fifth.read_until("owned_by").find("200 OK") != std::string::npos);

  auto list = std::make_shared<admission::deny_list>();
  std::string error;
  REQUIRE(list->add("127.0.0.1", admission::monotonic_ms() + 60000, &error, /*spare_tenants=*/false));
  f.door->set_deny_list(list);
  conn denied(f.port());
  CHECK(denied.closed_within(2s));
  CHECK(denied.received().empty());
  CHECK(f.door->counters().denied == 1);
}

TEST_CASE("a client that goes away cancels its request, and one that does not read is closed", "[http_door]") {
  net::http_door_options o;
  o.max_pending_bytes = 64 * 1024;
  o.write_timeout = 1000ms;
  door_fixture f(o);
  {
    conn c(f.port());
    c.send_all(post("/v1/chat/completions", chat_body("please hold", true)));
    for (int i = 0; i < 100 && f.server.messages == 0; ++i) std::this_thread::sleep_for(10ms);
  }  // closed while its answer is being made
  REQUIRE(f.server.wait_gone(1, 3s));
  {
    std::lock_guard<std::mutex> lock(f.server.mu);
    CHECK(net::is_http_peer(f.server.gone[0]));
  }

  conn reader(f.port());  // asks for 20 MB of tokens and reads none of them
  reader.send_all(post("/v1/chat/completions", chat_body("flood", true)));
  REQUIRE(f.server.wait_gone(2, 5s));
  CHECK(f.door->counters().slow_readers == 1);
  std::lock_guard<std::mutex> lock(f.server.mu);
  CHECK(f.server.slow_readers == std::vector<std::string>{"127.0.0.1"});
}

TEST_CASE("a shed becomes 429 with Retry-After and an error body naming the reason", "[http_door]") {
  door_fixture f;
  conn c(f.port());
  c.send_all(post("/v1/chat/completions", chat_body("shed me", true)));
  const std::string r = c.read_until("}\n");
  CHECK(r.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0) == 0);
  CHECK(r.find("Retry-After: 3\r\n") != std::string::npos);
  const json body = json::parse(r.substr(r.find("\r\n\r\n") + 4));
  CHECK(body["error"]["code"] == "anonymous_closed");
  CHECK(body["error"]["type"] == "rate_limit_error");
}

TEST_CASE("stop ends every connection and reports the ones with work as gone", "[http_door]") {
  door_fixture f;
  conn c(f.port());
  c.send_all(post("/v1/chat/completions", chat_body("hold on", true)));
  for (int i = 0; i < 100 && f.server.messages == 0; ++i) std::this_thread::sleep_for(10ms);
  f.door->stop();
  CHECK(c.closed_within(3s));
  CHECK(f.server.gone.size() == 1);
  CHECK(f.door->counters().open == 0);
}

TEST_CASE("requests past a connection's or an address's read budget are answered 429 unread and end the connection",
          "[http_door]") {
  net::http_door_options o;
  o.connection_requests_per_s = 1;
  o.connection_request_burst = 5;
  o.source_bytes_per_s = 1000;
  o.source_burst_bytes = 40000;
  door_fixture f(o);
  conn c(f.port());
  std::string six;
  for (int i = 0; i < 6; ++i) six += "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send_all(six);
  CHECK(c.closed_within(3s));
  const std::string r = c.received();
  size_t ok = 0;
  for (size_t at = 0; (at = r.find("HTTP/1.1 200 OK", at)) != std::string::npos; ++at) ++ok;
  CHECK(ok == 5);
  CHECK(r.find("HTTP/1.1 429 Too Many Requests") != std::string::npos);
  CHECK(r.find("Retry-After: 1\r\n") != std::string::npos);
  CHECK(r.find("\"code\":\"rate_limited\"") != std::string::npos);
  // The address's bytes: a 30,000-byte body fits the 40,000-byte burst once, not twice; the second is refused
  // before its body is read (the server never sees it).
  const std::string big = chat_body("hold " + std::string(30000, 'a'), false);
  conn first(f.port());
  first.send_all(post("/v1/chat/completions", big));
  for (int i = 0; i < 100 && f.server.messages == 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.server.messages == 1);
  conn second(f.port());
  second.send_all(post("/v1/chat/completions", big));
  CHECK(second.closed_within(3s));
  CHECK(second.received().rfind("HTTP/1.1 429", 0) == 0);
  CHECK(f.server.messages == 1);
  CHECK(f.door->counters().rate_limited == 2);
}
