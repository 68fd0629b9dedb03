// rampart-client: streams a completion from rampartd to the terminal (docs/protocol.md).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "config/curve_keys.hpp"
#include "net/client.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-client [--connect EP] (--prompt TEXT | --chat FILE | --ping | --stats)\n"
    "                      [--max-tokens N] [--temperature T] [--seed S] [--api-key KEY] [--json]\n"
    "                      [--timeout-ms MS] [--server-key Z85 --curve-keys FILE]\n"
    "Text appears as it is generated; --json prints one event per line. Ctrl-C sends cancel.\n"
    "CURVE: --server-key is the server's public key, --curve-keys this client's key file (rampart-admin keygen).\n";

std::atomic<bool> interrupted{false};
void on_sigint(int) { interrupted = true; }

int usage_error(const std::string& message) {
  std::fprintf(stderr, "rampart-client: %s\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint = "tcp://127.0.0.1:5555", prompt, chat_file, api_key, server_key, curve_keys_file;
  bool json_out = false, ping = false, stats = false;
  long max_tokens = 128, timeout_ms = 30000;
  double temperature = 0.0;
  long long seed = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    try {
      if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (arg == "--connect") {
        if (!(v = next())) return usage_error("--connect needs an endpoint");
        endpoint = v;
      } else if (arg == "--prompt") {
        if (!(v = next())) return usage_error("--prompt needs text");
        prompt = v;
      } else if (arg == "--chat") {
        if (!(v = next())) return usage_error("--chat needs a file");
        chat_file = v;
      } else if (arg == "--max-tokens") {
        if (!(v = next())) return usage_error("--max-tokens needs a number");
        max_tokens = std::stol(v);
      } else if (arg == "--temperature") {
        if (!(v = next())) return usage_error("--temperature needs a number");
        temperature = std::stod(v);
      } else if (arg == "--seed") {
        if (!(v = next())) return usage_error("--seed needs a number");
        seed = std::stoll(v);
      } else if (arg == "--api-key") {
        if (!(v = next())) return usage_error("--api-key needs a key");
        api_key = v;
      } else if (arg == "--timeout-ms") {
        if (!(v = next())) return usage_error("--timeout-ms needs a number");
        timeout_ms = std::stol(v);
      } else if (arg == "--server-key") {
        if (!(v = next())) return usage_error("--server-key needs a Z85 public key");
        server_key = v;
      } else if (arg == "--curve-keys") {
        if (!(v = next())) return usage_error("--curve-keys needs a key file");
        curve_keys_file = v;
      } else if (arg == "--json") {
        json_out = true;
      } else if (arg == "--ping") {
        ping = true;
      } else if (arg == "--stats") {
        stats = true;
      } else {
        return usage_error("unknown option " + arg);
      }
    } catch (const std::exception&) {
      return usage_error("bad value for " + arg);
    }
  }

  rampart::net::client_options options;
  if (server_key.empty() != curve_keys_file.empty()) return usage_error("CURVE needs both --server-key and --curve-keys");
  if (!curve_keys_file.empty()) {
    rampart::config::curve_keypair keys;
    rampart::config::config_error kerr;
    if (!rampart::config::load_curve_keypair(curve_keys_file, &keys, &kerr)) return usage_error(kerr.to_string());
    options.curve_server_key = server_key;
    options.curve_public_key = keys.public_key;
    options.curve_secret_key = keys.secret_key;
  }
  rampart::net::client client(options);
  std::string error;
  if (!client.connect(endpoint, &error)) {
    std::fprintf(stderr, "rampart-client: %s\n", error.c_str());
    return 1;
  }
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  if (ping || stats) {
    if (stats) client.send("stats", nlohmann::json::object());
    else client.send("ping", nlohmann::json::object());
    auto ev = client.receive(timeout);
    if (!ev) {
      std::fprintf(stderr, "rampart-client: no answer from %s within %ld ms\n", endpoint.c_str(), timeout_ms);
      return 1;
    }
    std::printf("%s\n", json_out ? nlohmann::json{{"type", ev->type}, {"body", ev->body}}.dump().c_str()
                                 : ev->body.dump(2).c_str());
    return 0;
  }

  nlohmann::json body = {{"request_id", "cli-" + std::to_string(::getpid())},
                         {"max_tokens", max_tokens},
                         {"temperature", temperature}};
  if (seed >= 0) body["seed"] = seed;
  if (!api_key.empty()) body["api_key"] = api_key;
  if (!chat_file.empty()) {
    std::ifstream in(chat_file);
    if (!in) return usage_error("cannot read " + chat_file);
    auto messages = nlohmann::json::parse(in, nullptr, false);
    if (messages.is_discarded() || !messages.is_array()) return usage_error(chat_file + " is not a JSON array");
    body["messages"] = messages;
  } else if (!prompt.empty()) {
    body["text"] = prompt;
  } else {
    return usage_error("give --prompt, --chat, --ping or --stats");
  }

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
      if (std::chrono::steady_clock::now() - last_event > timeout) {
        std::fprintf(stderr, "\nrampart-client: no event for %ld ms\n", timeout_ms);
        return 1;
      }
      continue;
    }
    last_event = std::chrono::steady_clock::now();
    if (json_out) {
      std::printf("%s\n", nlohmann::json{{"type", ev->type}, {"body", ev->body}}.dump().c_str());
      std::fflush(stdout);
    } else if (ev->type == "token") {
      std::fputs(ev->body.value("text", "").c_str(), stdout);
      std::fflush(stdout);
    }
    if (ev->type == "done") {
      if (!json_out) {
        std::printf("\n[%s: %s prompt tokens, %s completion tokens]\n",
                    ev->body.value("finish_reason", "").c_str(),
                    ev->body["usage"].value("prompt_tokens", nlohmann::json(0)).dump().c_str(),
                    ev->body["usage"].value("completion_tokens", nlohmann::json(0)).dump().c_str());
      }
      return 0;
    }
    if (ev->type == "error" || ev->type == "shed") {
      if (!json_out) std::fprintf(stderr, "\nrampart-client: %s: %s\n", ev->type.c_str(), ev->body.dump().c_str());
      return 1;
    }
  }
}
