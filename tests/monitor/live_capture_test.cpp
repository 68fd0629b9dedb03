// Live capture on lo with a BPF filter on a free port while real TCP connects and UDP datagrams go to it.
// Needs root or CAP_NET_RAW; otherwise prints SKIPPED.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "monitor/capture.hpp"
#include "tests/support/process.hpp"

using namespace rampart::monitor;

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Whether a thread of this process is named NAME (/proc/self/task/*/comm), waiting up to a second.
bool thread_named(const std::string& name) {
  for (int tries = 0; tries < 100; ++tries) {
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
      std::ifstream comm(task.path() / "comm");
      std::string line;
      if (std::getline(comm, line) && line == name) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("live capture on lo counts real TCP connects and UDP datagrams to the filtered port",
          "[monitor][live]") {
  const int port = rampart::test::free_port();
  monitor_config cfg;
  cfg.interface = "lo";
  cfg.service_ports = {static_cast<uint16_t>(port)};
  std::string err;
  capture::open_status status;
  std::unique_ptr<capture> cap = capture::open_live(cfg, &err, &status);
  if (status == capture::open_status::permission_denied) {
    std::cout << "SKIPPED: live capture needs root or CAP_NET_RAW (" << err << ")\n";
    return;
  }
  INFO(err);
  REQUIRE(cap);
  CHECK(effective_bpf_filter(cfg) == derived_bpf_filter(cfg));

  monitor m(cfg);
  std::vector<event> events;
  callback_sink sink([&](const event& e) { events.push_back(e); });
  cap->start(m, sink);
  CHECK(thread_named("rampart-capture"));

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int udp = socket(AF_INET, SOCK_DGRAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(port);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(listener, 16) == 0);
  REQUIRE(bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the capture settle

  constexpr int connects = 5, datagrams = 20;
  for (int i = 0; i < connects; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const int s = accept(listener, nullptr, nullptr);
    REQUIRE(s >= 0);
    close(c);
    close(s);
  }
  const int sender = socket(AF_INET, SOCK_DGRAM, 0);
  const char payload[32] = {0};
  for (int i = 0; i < datagrams; ++i) {
    REQUIRE(sendto(sender, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ==
            static_cast<ssize_t>(sizeof payload));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  cap->stop();
  close(sender);
  close(udp);
  close(listener);

  // The capture thread has ended: closing one more step publishes every packet in the snapshot.
  m.advance(m.snapshot().last_ts_us + 2000000);
  const monitor_counters c = m.snapshot();
  CHECK(c.packets_by_proto[static_cast<size_t>(l4_proto::udp)] == datagrams);
  CHECK(c.tcp_syn == connects);
  CHECK(c.tcp_synack == connects);
  CHECK(c.malformed == 0);
  CHECK(c.capture_packets == c.packets);
  CHECK(cap->stats().packets == c.packets);
  CHECK(cap->stats().kernel_drops == 0);
  CHECK(cap->link() == link_type::ethernet);
}
