// rampart-alerts: the operators' live view of rampartd's alert stream (ZeroMQ SUB).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-alerts [--connect EP] [--min-severity N] [--json] [--stats] [--count N] [--timeout-ms MS]\n"
    "\n"
    "Shows rampartd's alert stream (default tcp://127.0.0.1:5556): one line per alert, threat-level changes\n"
    "highlighted. Severity 1 is the most severe; --min-severity 2 shows severities 1 and 2. Reconnects by itself\n"
    "when the server restarts. --count N exits after N events; --timeout-ms exits 1 when nothing arrives in time.\n";

struct colours {
  bool on;
  const char* red() const { return on ? "\033[1;31m" : ""; }
  const char* yellow() const { return on ? "\033[33m" : ""; }
  const char* green() const { return on ? "\033[32m" : ""; }
  const char* bold() const { return on ? "\033[1m" : ""; }
  const char* inverse() const { return on ? "\033[7;1m" : ""; }
  const char* reset() const { return on ? "\033[0m" : ""; }
};

std::string fmt_number(const nlohmann::json& v) {
  if (!v.is_number()) return v.dump();
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
  return buf;
}

void print_alert(const nlohmann::json& e, const colours& c) {
  const auto& a = e.value("alert", nlohmann::json::object());
  const auto& r = e.value("rampart", nlohmann::json::object());
  const int sev = a.value("severity", 3);
  const std::string phase = r.value("phase", "");
  const char* colour = phase == "end" ? c.green() : sev <= 1 ? c.red() : sev == 2 ? c.yellow() : "";
  std::printf("%s %s[sev %d] %-18s %-6s%s %s:%s -> %s:%s %s=%s (threshold %s, baseline %s) level=%s\n",
              e.value("timestamp", "").c_str(), colour, sev, r.value("detector", "?").c_str(), phase.c_str(),
              c.reset(), e.value("src_ip", "-").c_str(), fmt_number(e.value("src_port", nlohmann::json(0))).c_str(),
              e.value("dest_ip", "-").c_str(), fmt_number(e.value("dest_port", nlohmann::json(0))).c_str(),
              r.value("metric", "value").c_str(), fmt_number(r.value("value", nlohmann::json(0))).c_str(),
              fmt_number(r.value("threshold", nlohmann::json(0))).c_str(),
              fmt_number(r.value("baseline", nlohmann::json(0))).c_str(), r.value("threat_level", "?").c_str());
}

void print_level(const nlohmann::json& e, const colours& c) {
  const auto& t = e.value("threat_level", nlohmann::json::object());
  std::string active;
  for (const auto& d : t.value("active", nlohmann::json::array())) active += (active.empty() ? "" : ",") + d.get<std::string>();
  std::printf("%s %s THREAT LEVEL %s -> %s %s active: %s\n", e.value("timestamp", "").c_str(), c.inverse(),
              t.value("from", "?").c_str(), t.value("to", "?").c_str(), c.reset(),
              active.empty() ? "none" : active.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string endpoint = "tcp://127.0.0.1:5556";
  int min_severity = 3;
  bool json = false, stats = false;
  long count = -1, timeout_ms = -1;
  rampart::tools::flags f(argc, argv, "rampart-alerts", kUsage);
  while (f.next()) {
    if (f.is("--connect")) endpoint = f.value();
    else if (f.is("--min-severity")) min_severity = static_cast<int>(f.integer(1, 9));
    else if (f.is("--count")) count = static_cast<long>(f.integer(1, INT32_MAX));
    else if (f.is("--timeout-ms")) timeout_ms = static_cast<long>(f.integer(1, INT32_MAX));
    else if (f.is("--json")) json = true;
    else if (f.is("--stats")) stats = true;
    else f.unknown();
  }

  zmq::context_t ctx{1};
  zmq::socket_t sub{ctx, zmq::socket_type::sub};
  try {
    sub.set(zmq::sockopt::reconnect_ivl, 200);
    sub.set(zmq::sockopt::reconnect_ivl_max, 2000);
    sub.set(zmq::sockopt::linger, 0);
    for (int s = 1; s <= min_severity; ++s) sub.set(zmq::sockopt::subscribe, "alert." + std::to_string(s));
    sub.set(zmq::sockopt::subscribe, "threat_level");
    sub.set(zmq::sockopt::subscribe, "policy");
    if (stats) sub.set(zmq::sockopt::subscribe, "stats");
    sub.connect(endpoint);
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "rampart-alerts: cannot connect to %s: %s\n", endpoint.c_str(), e.what());
    return 1;
  }
  const colours c{isatty(STDOUT_FILENO) == 1 && !json};
  long seen = 0;
  auto last = std::chrono::steady_clock::now();
  while (count < 0 || seen < count) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(200));
    if (!(item.revents & ZMQ_POLLIN)) {
      if (timeout_ms >= 0 && std::chrono::steady_clock::now() - last > std::chrono::milliseconds(timeout_ms)) {
        std::fprintf(stderr, "rampart-alerts: no event within %ld ms\n", timeout_ms);
        return 1;
      }
      continue;
    }
    zmq::message_t topic, body;
    (void)sub.recv(topic);
    if (!topic.more()) continue;
    (void)sub.recv(body);
    while (body.more()) {  // ignore unexpected extra frames
      zmq::message_t extra;
      (void)sub.recv(extra);
    }
    last = std::chrono::steady_clock::now();
    ++seen;
    if (json) {
      std::printf("%s\n", body.to_string().c_str());
      std::fflush(stdout);
      continue;
    }
    auto e = nlohmann::json::parse(body.to_string_view(), nullptr, false);
    if (e.is_discarded()) {
      std::printf("(unreadable event on topic %s)\n", topic.to_string().c_str());
    } else if (e.value("event_type", "") == "alert") {
      print_alert(e, c);
    } else if (e.value("event_type", "") == "threat_level") {
      print_level(e, c);
    } else {
      std::printf("%s %s%s%s %s\n", e.value("timestamp", "").c_str(), c.bold(), topic.to_string().c_str(),
                  c.reset(), body.to_string().c_str());
    }
    std::fflush(stdout);
  }
  return 0;
}
