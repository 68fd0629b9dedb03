// rampart-bench: closed-loop load against rampartd; prints one JSON object of throughput and latency figures.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/client.hpp"
#include "net/protocol.hpp"
#include "tools/flags.hpp"
#include "tools/stats.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-bench [--connect EP] [--clients N] [--requests M] [--prompt-tokens A..B]\n"
    "                     [--max-tokens C..D] [--temperature T] [--top-p P] [--top-k K] [--min-p P]\n"
    "                     [--priority P] [--api-key KEY] [--seed S]\n"
    "                     [--timeout-ms MS] [--http HOST:PORT --model NAME]\n"
    "       rampart-bench --encode-events N\n"
    "\n"
    "Each of N clients runs M requests one after another (token-id prompts of A..B tokens, max_tokens C..D,\n"
    "ignore_eos) and the run prints requests/s, output tokens/s, time to first token and time per output token\n"
    "percentiles (client-observed), and the counts of done, error and shed. The clock starts once every client\n"
    "has connected and been answered a ping; the clients share one ZeroMQ I/O thread.\n"
    "--http sends the same requests to the OpenAI-compatible HTTP door instead (POST /v1/completions, streamed,\n"
    "one keep-alive connection per client; MODEL is the served model's name), for comparing the two doors.\n"
    "--encode-events N connects nowhere: it encodes N token events (a word of text and one id each, as a decode\n"
    "step sends them) as a JSON document and with the direct writer the server uses, alternating rounds, and\n"
    "prints the nanoseconds per event of each.\n";

struct range {
  int64_t lo = 0, hi = 0;
};

bool parse_range(const std::string& s, range* r) {
  try {
    auto dots = s.find("..");
    if (dots == std::string::npos) {
      r->lo = r->hi = std::stoll(s);
    } else {
      r->lo = std::stoll(s.substr(0, dots));
      r->hi = std::stoll(s.substr(dots + 2));
    }
  } catch (const std::exception&) {
    return false;
  }
  return r->lo >= 1 && r->hi >= r->lo;
}

// Holds every client until all have connected, then lets them go together (the run's clock starts then).
struct start_line {
  std::mutex mutex;
  std::condition_variable cv;
  int waiting = 0;  // clients still connecting
  bool go = false;
  void ready() {
    std::lock_guard<std::mutex> lock(mutex);
    --waiting;
    cv.notify_all();
  }
  void wait_go() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [&] { return go; });
  }
};

struct results {
  std::mutex mutex;
  std::vector<double> ttft_ms, tpot_ms;
  int64_t done = 0, error = 0, shed = 0, output_tokens = 0, lost = 0;
  std::vector<std::string> first_errors;
};

struct options {
  std::string endpoint = "tcp://127.0.0.1:5555", priority = "normal", api_key;
  std::string http;  // HOST:PORT of the HTTP door; empty: ZeroMQ
  std::string model;
  int clients = 4, requests = 8;
  int64_t encode_events = 0;  // --encode-events: time the token event's two encodings instead
  long timeout_ms = 60000;
  double temperature = 0.0, top_p = 1.0, min_p = 0.0;
  int top_k = 0;
  uint64_t seed = 1;
  range prompt{16, 64}, max_tokens{16, 32};
};

options read_flags(rampart::tools::flags& f) {
  options o;
  while (f.next()) {
    if (f.is("--connect")) o.endpoint = f.value();
    else if (f.is("--clients")) o.clients = static_cast<int>(f.integer(1, 100000));
    else if (f.is("--requests")) o.requests = static_cast<int>(f.integer(1, INT32_MAX));
    else if (f.is("--prompt-tokens")) {
      if (!parse_range(f.value(), &o.prompt)) f.fail("--prompt-tokens wants A..B with 1 <= A <= B");
    } else if (f.is("--max-tokens")) {
      if (!parse_range(f.value(), &o.max_tokens)) f.fail("--max-tokens wants C..D with 1 <= C <= D");
    } else if (f.is("--temperature")) o.temperature = f.real(0, 1e6);
    else if (f.is("--top-p")) o.top_p = f.real(0, 1);
    else if (f.is("--top-k")) o.top_k = static_cast<int>(f.integer(0, INT32_MAX));
    else if (f.is("--min-p")) o.min_p = f.real(0, 1);
    else if (f.is("--priority")) o.priority = f.value();
    else if (f.is("--api-key")) o.api_key = f.value();
    else if (f.is("--seed")) o.seed = f.uinteger(0, ~0ull);
    else if (f.is("--timeout-ms")) o.timeout_ms = static_cast<long>(f.integer(1, INT32_MAX));
    else if (f.is("--http")) o.http = f.value();
    else if (f.is("--model")) o.model = f.value();
    else if (f.is("--encode-events")) o.encode_events = f.integer(1, int64_t{1} << 30);
    else f.unknown();
  }
  if (!o.http.empty() && o.model.empty()) f.fail("--http needs --model NAME (the served model, GET /v1/models)");
  return o;
}

using clock_type = std::chrono::steady_clock;

// One keep-alive HTTP/1.1 connection reading streamed answers (chunked server-sent events), blocking.
class http_stream_client {
 public:
  bool connect(const std::string& host_port, long timeout_ms) {
    const auto colon = host_port.rfind(':');
    if (colon == std::string::npos) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(host_port.c_str() + colon + 1)));
    if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr) != 1) return false;
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~http_stream_client() {
    if (fd_ >= 0) close(fd_);
  }
  bool post(const std::string& path, const std::string& body, const std::string& api_key) {
    std::string req = "POST " + path + " HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n";
    if (!api_key.empty()) req += "Authorization: Bearer " + api_key + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  // The status line's code, after reading the head; 0 on failure.
  int read_head() {
    if (!fill_until("\r\n\r\n")) return 0;
    const size_t end = in_.find("\r\n\r\n");
    const int status = std::atoi(in_.c_str() + 9);
    chunked_ = in_.substr(0, end).find("Transfer-Encoding: chunked") != std::string::npos;
    size_t length = 0;
    if (auto cl = in_.substr(0, end).find("Content-Length: "); cl != std::string::npos) {
      length = static_cast<size_t>(std::atoll(in_.c_str() + cl + 16));
    }
    in_.erase(0, end + 4);
    if (!chunked_) {  // a whole JSON answer (an error): read and keep it
      while (in_.size() < length && read_more()) {
      }
      whole_ = in_.substr(0, length);
      in_.erase(0, std::min(length, in_.size()));
    }
    return status;
  }
  // The next chunk's payload; false at the last chunk or on failure.
  bool next_chunk(std::string* payload) {
    if (!fill_until("\r\n")) return false;
    const size_t line = in_.find("\r\n");
    const size_t size = std::strtoul(in_.c_str(), nullptr, 16);
    in_.erase(0, line + 2);
    while (in_.size() < size + 2) {
      if (!read_more()) return false;
    }
    *payload = in_.substr(0, size);
    in_.erase(0, size + 2);
    return size > 0;
  }
  const std::string& whole() const { return whole_; }

 private:
  bool read_more() {
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool fill_until(const char* marker) {
    while (in_.find(marker) == std::string::npos) {
      if (!read_more()) return false;
    }
    return true;
  }
  int fd_ = -1;
  std::string in_, whole_;
  bool chunked_ = false;
};

struct one_answer {
  std::string terminal;  // done, error, shed or "" (none came)
  std::string detail;
  int64_t tokens = 0, events = 0;
  clock_type::time_point first{}, last{};
};

// One request over HTTP: the same token-id prompt as a completions prompt, streamed with usage.
one_answer http_request(http_stream_client& client, const options& o, nlohmann::json body) {
  one_answer a;
  body.erase("request_id");
  body.erase("api_key");
  body["prompt"] = body["ids"];
  body.erase("ids");
  body["model"] = o.model;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (!client.post("/v1/completions", body.dump(), o.api_key)) return a;
  const int status = client.read_head();
  if (status != 200) {
    a.terminal = status == 429 || status == 503 ? "shed" : status == 0 ? "" : "error";
    a.detail = std::to_string(status) + " " + client.whole();
    return a;
  }
  std::string payload;
  bool accepted = false;
  while (client.next_chunk(&payload)) {
    for (size_t at = 0; (at = payload.find("data: ", at)) != std::string::npos;) {
      const size_t end = payload.find("\n\n", at);
      const std::string data = payload.substr(at + 6, end - at - 6);
      at = end;
      if (data == "[DONE]") continue;
      const auto chunk = nlohmann::json::parse(data, nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("error")) {
        a.terminal = "error";
        a.detail = data;
        continue;
      }
      if (chunk.contains("usage") && chunk["choices"].empty()) {
        a.tokens = chunk["usage"].value("completion_tokens", int64_t{0});
        if (a.terminal.empty()) a.terminal = "done";
        continue;
      }
      if (!accepted) {  // the first chunk answers the request's acceptance, before any token
        accepted = true;
        continue;
      }
      const auto& choice = chunk["choices"][0];
      if (!choice["finish_reason"].is_null()) continue;
      a.last = clock_type::now();
      if (a.events++ == 0) a.first = a.last;
    }
  }
  return a;
}

// Client C's requests, one after another, each counted into RES when its terminal event (or the timeout) comes;
// the first is sent when START says go.
void run_client(const options& o, int c, rampart::net::client_context* context, start_line* start, results* res) {
  std::mt19937_64 rng(o.seed * 1000003u + static_cast<uint64_t>(c));
  rampart::net::client client({}, context);
  http_stream_client http;
  const bool connected = o.http.empty() ? client.connect(o.endpoint, nullptr) &&
                                              client.ping(std::chrono::milliseconds(o.timeout_ms))
                                        : http.connect(o.http, o.timeout_ms);
  start->ready();
  start->wait_go();
  if (!connected) {
    std::lock_guard<std::mutex> lock(res->mutex);
    res->lost += o.requests;
    return;
  }
  for (int k = 0; k < o.requests; ++k) {
    const int64_t n_prompt = std::uniform_int_distribution<int64_t>(o.prompt.lo, o.prompt.hi)(rng);
    const int64_t n_out = std::uniform_int_distribution<int64_t>(o.max_tokens.lo, o.max_tokens.hi)(rng);
    nlohmann::json ids = nlohmann::json::array();
    for (int64_t t = 0; t < n_prompt; ++t) ids.push_back(std::uniform_int_distribution<int>(1000, 100000)(rng));
    const std::string id = "b" + std::to_string(c) + "-" + std::to_string(k);
    nlohmann::json body = {{"request_id", id},       {"ids", ids},         {"max_tokens", n_out},
                           {"temperature", o.temperature}, {"priority", o.priority}, {"ignore_eos", true},
                           {"seed", static_cast<int64_t>(rng() >> 2)}};
    if (o.top_p < 1) body["top_p"] = o.top_p;
    if (o.top_k > 0) body["top_k"] = o.top_k;
    if (o.min_p > 0) body["min_p"] = o.min_p;
    if (!o.api_key.empty()) body["api_key"] = o.api_key;
    const auto sent = clock_type::now();
    clock_type::time_point first{}, last{};
    int64_t events = 0, tokens = 0;
    std::string terminal;
    nlohmann::json terminal_body;
    if (!o.http.empty()) {
      one_answer a = http_request(http, o, body);
      first = a.first;
      last = a.last;
      events = a.events;
      tokens = a.tokens;
      terminal = a.terminal;
      terminal_body = a.detail;
    } else {
      client.send("generate", body);
    }
    while (terminal.empty() && o.http.empty()) {
      auto ev = client.receive(std::chrono::milliseconds(o.timeout_ms));
      if (!ev) break;
      if (ev->body.value("request_id", "") != id) continue;
      if (ev->type == "token") {
        last = clock_type::now();
        if (events++ == 0) first = last;
        tokens += static_cast<int64_t>(ev->body["ids"].size());
      } else if (ev->type == "done" || ev->type == "error" || ev->type == "shed") {
        terminal = ev->type;
        terminal_body = ev->body;
      }
    }
    std::lock_guard<std::mutex> lock(res->mutex);
    res->output_tokens += tokens;
    if (terminal == "done") {
      ++res->done;
      if (events > 0) res->ttft_ms.push_back(std::chrono::duration<double, std::milli>(first - sent).count());
      if (events > 1) {
        res->tpot_ms.push_back(std::chrono::duration<double, std::milli>(last - first).count() /
                               static_cast<double>(events - 1));
      }
    } else if (terminal == "error") {
      ++res->error;
      if (res->first_errors.size() < 3) res->first_errors.push_back(terminal_body.dump());
    } else if (terminal == "shed") {
      ++res->shed;
    } else {
      ++res->lost;
    }
  }
}

}  // namespace

// The token event's two encodings, N events each, in alternating rounds: nanoseconds per event (best round).
nlohmann::json encode_events(int64_t n) {
  const std::string request_id = "bench-request-0017";
  const std::vector<std::string> words = {" the", " model", " streams", ",", " caf\xc3\xa9", "\n", " \"quoted\""};
  std::vector<double> document_ns, direct_ns;
  size_t bytes = 0;  // kept live, so neither loop is optimised away
  for (int round = 0; round < 5; ++round) {
    for (int path = 0; path < 2; ++path) {
      const auto t0 = clock_type::now();
      for (int64_t i = 0; i < n; ++i) {
        const std::string& text = words[static_cast<size_t>(i) % words.size()];
        const int32_t id = static_cast<int32_t>(1000 + i % 128000);
        if (path == 0) {
          bytes += rampart::net::encode_event(
                       "token", {{"request_id", request_id}, {"index", i}, {"text", text}, {"ids", {id}}})[2]
                       .size();
        } else {
          bytes += rampart::net::token_event_body(request_id, i, text, &id, 1).size();
        }
      }
      const double ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() /
                        static_cast<double>(n);
      (path == 0 ? document_ns : direct_ns).push_back(ns);
    }
  }
  const double document = *std::min_element(document_ns.begin(), document_ns.end());
  const double direct = *std::min_element(direct_ns.begin(), direct_ns.end());
  return {{"events", n}, {"document_ns_per_event", document}, {"direct_ns_per_event", direct},
          {"speedup", document / direct}, {"bytes", bytes}};
}

int main(int argc, char** argv) {
  rampart::tools::flags f(argc, argv, "rampart-bench", kUsage);
  const options o = read_flags(f);
  if (o.encode_events > 0) {
    std::printf("%s\n", encode_events(o.encode_events).dump().c_str());
    return 0;
  }
  results res;
  rampart::net::client_context context;
  start_line line;
  line.waiting = o.clients;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) threads.emplace_back(run_client, std::cref(o), c, &context, &line, &res);
  clock_type::time_point start;
  {
    std::unique_lock<std::mutex> lock(line.mutex);
    line.cv.wait(lock, [&] { return line.waiting == 0; });
    start = clock_type::now();
    line.go = true;
  }
  line.cv.notify_all();
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  auto pct = [](const std::vector<double>& v) {
    using rampart::tools::percentile;
    return nlohmann::json{{"p50", percentile(v, 0.5)}, {"p90", percentile(v, 0.9)}, {"p99", percentile(v, 0.99)}};
  };
  nlohmann::json out = {
      {"door", o.http.empty() ? "zeromq" : "http"},
      {"clients", o.clients},
      {"requests", o.clients * o.requests},
      {"duration_s", seconds},
      {"requests_per_s", static_cast<double>(res.done) / seconds},
      {"output_tokens_per_s", static_cast<double>(res.output_tokens) / seconds},
      {"time_to_first_token_ms", pct(res.ttft_ms)},
      {"time_per_output_token_ms", pct(res.tpot_ms)},
      {"done", res.done},
      {"error", res.error},
      {"shed", res.shed},
      {"no_terminal_event", res.lost},
  };
  if (!res.first_errors.empty()) out["first_errors"] = res.first_errors;
  std::printf("%s\n", out.dump().c_str());
  return res.lost == 0 ? 0 : 1;
}
