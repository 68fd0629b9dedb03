// rampart-client: streams a completion from rampartd to the terminal (docs/protocol.md).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "config/curve_keys.hpp"
#include "net/client.hpp"
#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-client [--connect EP] (--prompt TEXT | --chat FILE | --ping | --stats)\n"
    "                      [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--seed S]\n"
    "                      [--stop TEXT]... [--priority critical|high|normal|sheddable] [--api-key KEY] [--json]\n"
    "                      [--timeout-ms MS] [--server-key Z85 --curve-keys FILE]\n"
    "\n"
    "Text appears as it is generated; --json prints one event per line. Ctrl-C sends cancel.\n"
    "--stop may be given up to 8 times: generation ends before the first of them (never printed).\n"
    "CURVE: --server-key is the server's public key, --curve-keys this client's key file (rampart-admin keygen).\n";

std::atomic<bool> interrupted{false};
void on_sigint(int) { interrupted = true; }

struct options {
  std::string endpoint = "tcp://127.0.0.1:5555", prompt, chat_file, api_key, server_key, curve_keys_file, priority;
  std::vector<std::string> stop;
  double top_p = 1.0, min_p = 0.0;
  long top_k = 0;
  bool json_out = false, ping = false, stats = false;
  long max_tokens = 128, timeout_ms = 30000;
  double temperature = 0.0;
  long long seed = -1;
};

options read_flags(rampart::tools::flags& f) {
  options o;
  while (f.next()) {
    if (f.is("--connect")) o.endpoint = f.value();
    else if (f.is("--prompt")) o.prompt = f.value();
    else if (f.is("--chat")) o.chat_file = f.value();
    else if (f.is("--max-tokens")) o.max_tokens = static_cast<long>(f.integer(0, INT32_MAX));
    else if (f.is("--temperature")) o.temperature = f.real(0, 1e6);
    else if (f.is("--seed")) o.seed = f.integer(-1, INT64_MAX);
    else if (f.is("--top-p")) o.top_p = f.real(1e-9, 1);
    else if (f.is("--top-k")) o.top_k = static_cast<long>(f.integer(0, INT32_MAX));
    else if (f.is("--min-p")) o.min_p = f.real(0, 1);
    else if (f.is("--stop")) {
      o.stop.push_back(f.value());
      if (o.stop.back().empty() || o.stop.back().size() > 256) f.fail("--stop wants 1 to 256 bytes");
      if (o.stop.size() > 8) f.fail("--stop may be given at most 8 times");
    } else if (f.is("--priority")) {
      o.priority = f.value();
      if (o.priority != "critical" && o.priority != "high" && o.priority != "normal" && o.priority != "sheddable" &&
          o.priority != "low")
        f.fail("--priority wants critical, high, normal or sheddable");
    }
    else if (f.is("--api-key")) o.api_key = f.value();
    else if (f.is("--timeout-ms")) o.timeout_ms = static_cast<long>(f.integer(1, INT32_MAX));
    else if (f.is("--server-key")) o.server_key = f.value();
    else if (f.is("--curve-keys")) o.curve_keys_file = f.value();
    else if (f.is("--json")) o.json_out = true;
    else if (f.is("--ping")) o.ping = true;
    else if (f.is("--stats")) o.stats = true;
    else f.unknown();
  }
  if (o.server_key.empty() != o.curve_keys_file.empty()) f.fail("CURVE needs both --server-key and --curve-keys");
  return o;
}

// The generate request the options describe.
nlohmann::json generate_body(rampart::tools::flags& f, const options& o) {
  nlohmann::json body = {{"request_id", "cli-" + std::to_string(::getpid())},
                         {"max_tokens", o.max_tokens},
                         {"temperature", o.temperature}};
  if (o.seed >= 0) body["seed"] = o.seed;
  if (o.top_p < 1) body["top_p"] = o.top_p;
  if (o.top_k > 0) body["top_k"] = o.top_k;
  if (o.min_p > 0) body["min_p"] = o.min_p;
  if (!o.stop.empty()) body["stop"] = o.stop;
  if (!o.priority.empty()) body["priority"] = o.priority;
  if (!o.api_key.empty()) body["api_key"] = o.api_key;
  if (!o.chat_file.empty()) {
    std::ifstream in(o.chat_file);
    if (!in) f.fail("cannot read " + o.chat_file);
    auto messages = nlohmann::json::parse(in, nullptr, false);
    if (messages.is_discarded() || !messages.is_array()) f.fail(o.chat_file + " is not a JSON array");
    body["messages"] = messages;
  } else if (!o.prompt.empty()) {
    body["text"] = o.prompt;
  } else {
    f.fail("give --prompt, --chat, --ping or --stats");
  }
  return body;
}

// ping or stats: one question, one answer printed.
int ask(rampart::net::client& client, const options& o) {
  client.send(o.stats ? "stats" : "ping", nlohmann::json::object());
  auto ev = client.receive(std::chrono::milliseconds(o.timeout_ms));
  if (!ev) {
    std::fprintf(stderr, "rampart-client: no answer from %s within %ld ms\n", o.endpoint.c_str(), o.timeout_ms);
    return 1;
  }
  std::printf("%s\n", o.json_out ? nlohmann::json{{"type", ev->type}, {"body", ev->body}}.dump().c_str()
                                 : ev->body.dump(2).c_str());
  return 0;
}

// Sends BODY and prints the stream until its terminal event; Ctrl-C sends cancel. 0 on done.
int stream_generation(rampart::net::client& client, const nlohmann::json& body, const options& o) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  client.send("generate", body);
  bool cancel_sent = false;
  auto last_event = std::chrono::steady_clock::now();
  for (;;) {
    if (interrupted && !cancel_sent) {
      client.send("cancel", {{"request_id", body["request_id"]}});
      cancel_sent = true;
    }
    auto ev = client.receive(std::chrono::milliseconds(100));
    if (!ev) {
      if (std::chrono::steady_clock::now() - last_event > std::chrono::milliseconds(o.timeout_ms)) {
        std::fprintf(stderr, "\nrampart-client: no event for %ld ms\n", o.timeout_ms);
        return 1;
      }
      continue;
    }
    last_event = std::chrono::steady_clock::now();
    if (o.json_out) {
      std::printf("%s\n", nlohmann::json{{"type", ev->type}, {"body", ev->body}}.dump().c_str());
      std::fflush(stdout);
    } else if (ev->type == "token") {
      std::fputs(ev->body.value("text", "").c_str(), stdout);
      std::fflush(stdout);
    }
    if (ev->type == "done") {
      if (!o.json_out) {
        std::printf("\n[%s: %s prompt tokens, %s completion tokens]\n",
                    ev->body.value("finish_reason", "").c_str(),
                    ev->body["usage"].value("prompt_tokens", nlohmann::json(0)).dump().c_str(),
                    ev->body["usage"].value("completion_tokens", nlohmann::json(0)).dump().c_str());
      }
      return 0;
    }
    if (ev->type == "error" || ev->type == "shed") {
      if (!o.json_out) std::fprintf(stderr, "\nrampart-client: %s: %s\n", ev->type.c_str(), ev->body.dump().c_str());
      return 1;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  rampart::tools::flags f(argc, argv, "rampart-client", kUsage);
  const options o = read_flags(f);
  rampart::net::client_options copts;
  if (!o.curve_keys_file.empty()) {
    rampart::config::curve_keypair keys;
    rampart::config::config_error kerr;
    if (!rampart::config::load_curve_keypair(o.curve_keys_file, &keys, &kerr)) f.fail(kerr.to_string());
    copts.curve_server_key = o.server_key;
    copts.curve_public_key = keys.public_key;
    copts.curve_secret_key = keys.secret_key;
  }
  // Read before connecting: a bad --chat file is a usage error whatever the server does.
  const nlohmann::json body = o.ping || o.stats ? nlohmann::json() : generate_body(f, o);
  rampart::net::client client(copts);
  std::string error;
  if (!client.connect(o.endpoint, &error)) {
    std::fprintf(stderr, "rampart-client: %s\n", error.c_str());
    return 1;
  }
  return o.ping || o.stats ? ask(client, o) : stream_generation(client, body, o);
}
