// libpcap capture feeding a monitor: live on an interface (BPF filter, buffered TPACKET_V3 ring, kernel buffer
// size) or from a pcap / pcapng file. The loop parses each packet, advances the monitor's steps by packet time
// (and, live, by the clock when no packets come), and hands every event to an event_sink. A live capture runs on
// the process's live_timeline (monitor/timeline.hpp): a wall-clock step cannot stop or rush detection.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "monitor/event_sink.hpp"
#include "monitor/monitor.hpp"
#include "monitor/monitor_config.hpp"
#include "monitor/packet.hpp"
#include "monitor/timeline.hpp"

typedef struct pcap pcap_t;
struct pcap_pkthdr;

namespace rampart::monitor {

// The BPF filter a live capture uses for CFG.
// cfg.bpf_filter when set, as is. Otherwise only what the detectors read, derived from cfg.service_ports:
// TCP and UDP towards a service port, and from a service port only TCP segments carrying SYN, FIN or RST (the
// server's handshake answers and closes; its data and bare ACKs feed no detector). For port 5555:
//   tcp dst port 5555 or udp dst port 5555 or (tcp src port 5555 and
//   (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip6[53] & 7 != 0))
// No service ports: "" (everything). Pure. (On lo every packet reaches the ring twice, as sent and as received,
// and libpcap drops the sent copy itself; "inbound" cannot do it in the kernel: with the block ring that
// open_live() uses, libpcap 1.10's "inbound" on lo passes nothing.)
std::string derived_bpf_filter(const monitor_config& cfg);

// derived_bpf_filter(cfg): what open_live() sets.
std::string effective_bpf_filter(const monitor_config& cfg);

class capture {
 public:
  enum class open_status { ok, permission_denied, failed };

  // Live capture on CFG.interface (snaplen, buffer_bytes, non-promiscuous; buffered with buffer_timeout_ms
  // unless immediate_mode) with the effective BPF filter. Returns null with *error set (and *status:
  // permission_denied when the process lacks root / CAP_NET_RAW) on failure.
  static std::unique_ptr<capture> open_live(const monitor_config& cfg, std::string* error,
                                            open_status* status = nullptr);
  // A pcap or pcapng file, optionally filtered by BPF_FILTER ("" = everything).
  static std::unique_ptr<capture> open_offline(const std::string& path, const std::string& bpf_filter,
                                               std::string* error);
  ~capture();  // stops the thread if running
  capture(const capture&) = delete;
  capture& operator=(const capture&) = delete;

  // Runs the capture loop on the calling thread until the file ends (offline: then mon.finish() is
  // flushed to SINK too) or stop() is called. Returns false if reading failed (message in error()); events
  // produced before the failure were delivered.
  bool run(monitor& mon, event_sink& sink);
  // Runs run() on a new thread named "rampart-capture" (top -H, /proc/PID/task/TID/comm). MON and SINK must
  // outlive the capture or the next stop().
  void start(monitor& mon, event_sink& sink);
  // Asks the loop to end (within ~100 ms live) and joins the thread. Safe to call twice, or without start().
  void stop();
  bool running() const { return running_.load(); }

  link_type link() const { return link_; }
  int datalink() const { return dlt_; }
  bool live() const { return live_; }
  capture_stats stats() const;  // thread-safe
  const std::string& error() const { return error_; }  // valid after run() returned false

 private:
  capture(pcap_t* p, bool live);
  static void on_packet_cb(unsigned char* user, const ::pcap_pkthdr* h, const unsigned char* bytes);
  void deliver(std::vector<event>&& events);
  void refresh_stats();

  pcap_t* pcap_;
  bool live_;
  int dlt_;
  link_type link_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::string error_;
  monitor* mon_ = nullptr;
  event_sink* sink_ = nullptr;
  packet_summary summary_;  // reused per packet
  uint64_t seen_ = 0;       // packets delivered, owned by the capture thread; published in packets_
  live_timeline timeline_;  // live: packet stamps and steps on the process's monotonic timeline
  int64_t wall_lag_us_ = 0;  // how late the kernel may hand over a packet (buffered live capture)
  std::atomic<uint64_t> packets_{0}, kernel_drops_{0}, if_drops_{0}, errors_{0};
};

}  // namespace rampart::monitor
