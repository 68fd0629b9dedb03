// rampart-bench: closed-loop load against rampartd; prints one JSON object of throughput and latency figures.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/client.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-bench [--connect EP] [--clients N] [--requests M] [--prompt-tokens A..B]\n"
    "                     [--max-tokens C..D] [--temperature T] [--top-p P] [--top-k K] [--min-p P]\n"
    "                     [--priority P] [--api-key KEY] [--seed S]\n"
    "                     [--timeout-ms MS]\n"
    "Each of N clients runs M requests one after another (token-id prompts of A..B tokens, max_tokens C..D,\n"
    "ignore_eos) and the run prints requests/s, output tokens/s, time to first token and time per output token\n"
    "percentiles (client-observed), and the counts of done, error and shed.\n";

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

struct results {
  std::mutex mutex;
  std::vector<double> ttft_ms, tpot_ms;
  int64_t done = 0, error = 0, shed = 0, output_tokens = 0, lost = 0;
  std::vector<std::string> first_errors;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

int usage_error(const std::string& m) {
  std::fprintf(stderr, "rampart-bench: %s\n%s", m.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint = "tcp://127.0.0.1:5555", priority = "normal", api_key;
  int clients = 4, requests = 8;
  long timeout_ms = 60000;
  double temperature = 0.0, top_p = 1.0, min_p = 0.0;
  int top_k = 0;
  uint64_t seed = 1;
  range prompt{16, 64}, max_tokens{16, 32};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto need = [&]() {
      if (!v) return false;
      ++i;
      return true;
    };
    try {
      if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (a == "--connect" && need()) {
        endpoint = v;
      } else if (a == "--clients" && need()) {
        clients = std::stoi(v);
      } else if (a == "--requests" && need()) {
        requests = std::stoi(v);
      } else if (a == "--prompt-tokens" && need()) {
        if (!parse_range(v, &prompt)) return usage_error("--prompt-tokens wants A..B with 1 <= A <= B");
      } else if (a == "--max-tokens" && need()) {
        if (!parse_range(v, &max_tokens)) return usage_error("--max-tokens wants C..D with 1 <= C <= D");
      } else if (a == "--temperature" && need()) {
        temperature = std::stod(v);
      } else if (a == "--top-p" && need()) {
        top_p = std::stod(v);
      } else if (a == "--top-k" && need()) {
        top_k = std::stoi(v);
      } else if (a == "--min-p" && need()) {
        min_p = std::stod(v);
      } else if (a == "--priority" && need()) {
        priority = v;
      } else if (a == "--api-key" && need()) {
        api_key = v;
      } else if (a == "--seed" && need()) {
        seed = std::stoull(v);
      } else if (a == "--timeout-ms" && need()) {
        timeout_ms = std::stol(v);
      } else {
        return usage_error("unknown or incomplete option " + a);
      }
    } catch (const std::exception&) {
      return usage_error("bad value for " + a);
    }
  }
  if (clients < 1 || requests < 1) return usage_error("--clients and --requests must be at least 1");

  results res;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(seed * 1000003u + static_cast<uint64_t>(c));
      rampart::net::client client;
      if (!client.connect(endpoint, nullptr)) return;
      for (int k = 0; k < requests; ++k) {
        const int64_t n_prompt = std::uniform_int_distribution<int64_t>(prompt.lo, prompt.hi)(rng);
        const int64_t n_out = std::uniform_int_distribution<int64_t>(max_tokens.lo, max_tokens.hi)(rng);
        nlohmann::json ids = nlohmann::json::array();
        for (int64_t t = 0; t < n_prompt; ++t) ids.push_back(std::uniform_int_distribution<int>(1000, 100000)(rng));
        const std::string id = "b" + std::to_string(c) + "-" + std::to_string(k);
        nlohmann::json body = {{"request_id", id},       {"ids", ids},         {"max_tokens", n_out},
                               {"temperature", temperature}, {"priority", priority}, {"ignore_eos", true},
                               {"seed", static_cast<int64_t>(rng() >> 2)}};
        if (top_p < 1) body["top_p"] = top_p;
        if (top_k > 0) body["top_k"] = top_k;
        if (min_p > 0) body["min_p"] = min_p;
        if (!api_key.empty()) body["api_key"] = api_key;
        const auto sent = clock::now();
        client.send("generate", body);
        clock::time_point first{}, last{};
        int64_t events = 0, tokens = 0;
        std::string terminal;
        nlohmann::json terminal_body;
        while (terminal.empty()) {
          auto ev = client.receive(std::chrono::milliseconds(timeout_ms));
          if (!ev) break;
          if (ev->body.value("request_id", "") != id) continue;
          if (ev->type == "token") {
            last = clock::now();
            if (events++ == 0) first = last;
            tokens += static_cast<int64_t>(ev->body["ids"].size());
          } else if (ev->type == "done" || ev->type == "error" || ev->type == "shed") {
            terminal = ev->type;
            terminal_body = ev->body;
          }
        }
        std::lock_guard<std::mutex> lock(res.mutex);
        res.output_tokens += tokens;
        if (terminal == "done") {
          ++res.done;
          if (events > 0) res.ttft_ms.push_back(std::chrono::duration<double, std::milli>(first - sent).count());
          if (events > 1) {
            res.tpot_ms.push_back(std::chrono::duration<double, std::milli>(last - first).count() /
                                  static_cast<double>(events - 1));
          }
        } else if (terminal == "error") {
          ++res.error;
          if (res.first_errors.size() < 3) res.first_errors.push_back(terminal_body.dump());
        } else if (terminal == "shed") {
          ++res.shed;
        } else {
          ++res.lost;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(clock::now() - start).count();
  auto pct = [](const std::vector<double>& v) {
    return nlohmann::json{{"p50", percentile(v, 0.5)}, {"p90", percentile(v, 0.9)}, {"p99", percentile(v, 0.99)}};
  };
  nlohmann::json out = {
      {"clients", clients},
      {"requests", clients * requests},
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
