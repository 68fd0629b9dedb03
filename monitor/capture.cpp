#include "monitor/capture.hpp"

#include <poll.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace rampart::monitor {

std::string derived_bpf_filter(const monitor_config& cfg) {
  if (!cfg.bpf_filter.empty()) return cfg.bpf_filter;
  std::string to_service, from_service;
  for (uint16_t p : cfg.service_ports) {
    const std::string port = std::to_string(p);
    if (!to_service.empty()) to_service += " or ";
    to_service += "tcp dst port " + port + " or udp dst port " + port;
    if (!from_service.empty()) from_service += " or ";
    from_service += "tcp src port " + port;
  }
  std::string f;
  if (!to_service.empty()) {
    if (cfg.service_ports.size() > 1) from_service = "(" + from_service + ")";
    // tcp[] reads IPv4 only; ip6[53] is the flags octet of a TCP header right after the IPv6 header, which is
    // where "tcp src port" looks for the ports.
    f = to_service + " or (" + from_service +
        " and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip6[53] & 7 != 0))";
    // What `reflection` reads: datagrams from amplifier ports to any port, and IP fragments (IPv4: more
    // fragments or an offset; IPv6: a fragment header right after the fixed one).
    std::string amplifiers;
    for (uint16_t p : cfg.amplifier_ports) {
      amplifiers += (amplifiers.empty() ? "" : " or ") + std::string("udp src port ") + std::to_string(p);
    }
    if (!amplifiers.empty()) f += " or " + amplifiers;
    f += " or (ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] == 44)";
  }
  return f;
}

std::string effective_bpf_filter(const monitor_config& cfg) {
  if (!cfg.bpf_filter.empty()) return cfg.bpf_filter;
  return derived_bpf_filter(cfg);
}

namespace {

bool apply_filter(pcap_t* p, const std::string& filter, std::string* error) {
  if (filter.empty()) return true;
  bpf_program prog{};
  if (pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    *error = "bad BPF filter '" + filter + "': " + pcap_geterr(p);
    return false;
  }
  const int rc = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (rc != 0) {
    *error = "cannot set BPF filter: " + std::string(pcap_geterr(p));
    return false;
  }
  return true;
}

}  // namespace

capture::capture(pcap_t* p, bool live)
    : pcap_(p), live_(live), dlt_(pcap_datalink(p)), link_(link_type_from_dlt(dlt_)) {}

capture::~capture() {
  stop();
  pcap_close(pcap_);
}

std::unique_ptr<capture> capture::open_live(const monitor_config& cfg, std::string* error, open_status* status) {
  if (status) *status = open_status::failed;
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_create(cfg.interface.c_str(), errbuf);
  if (!p) {
    *error = "pcap_create(" + cfg.interface + "): " + errbuf;
    return nullptr;
  }
  pcap_set_snaplen(p, cfg.snaplen);
  pcap_set_promisc(p, 0);
  // Not immediate, libpcap uses a TPACKET_V3 ring on Linux: the kernel fills blocks of packets and wakes the
  // thread once per full block, or buffer_timeout_ms after the block opened. Immediate mode (TPACKET_V2)
  // wakes it for nearly every packet, which under a flood costs far more than the packets' own processing.
  pcap_set_immediate_mode(p, cfg.immediate_mode ? 1 : 0);
  pcap_set_buffer_size(p, static_cast<int>(cfg.buffer_bytes > INT32_MAX ? INT32_MAX : cfg.buffer_bytes));
  pcap_set_timeout(p, cfg.buffer_timeout_ms);
  const int rc = pcap_activate(p);
  if (rc < 0) {
    *error = "cannot capture on " + cfg.interface + ": " + pcap_statustostr(rc) + ": " + pcap_geterr(p);
    if (status && (rc == PCAP_ERROR_PERM_DENIED || rc == PCAP_ERROR_PROMISC_PERM_DENIED)) {
      *status = open_status::permission_denied;
    }
    pcap_close(p);
    return nullptr;
  }
  if (!apply_filter(p, effective_bpf_filter(cfg), error) || pcap_setnonblock(p, 1, errbuf) != 0) {
    if (error->empty()) *error = std::string("pcap_setnonblock: ") + errbuf;
    pcap_close(p);
    return nullptr;
  }
  if (status) *status = open_status::ok;
  std::unique_ptr<capture> c(new capture(p, true));
  // A packet reaches the thread at most about two timeouts after it arrived: the kernel looks at the open
  // block on a timer of that period and retires it once it has held packets for a whole period.
  c->wall_lag_us_ = cfg.immediate_mode ? 0 : 2 * int64_t{cfg.buffer_timeout_ms} * 1000;
  return c;
}

std::unique_ptr<capture> capture::open_offline(const std::string& path, const std::string& bpf_filter,
                                               std::string* error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, errbuf);
  if (!p) {
    *error = "cannot read " + path + ": " + errbuf;
    return nullptr;
  }
  if (!apply_filter(p, bpf_filter, error)) {
    pcap_close(p);
    return nullptr;
  }
  return std::unique_ptr<capture>(new capture(p, false));
}

void capture::deliver(std::vector<event>&& events) {
  for (const event& e : events) sink_->write(e);
}

void capture::refresh_stats() {
  if (live_) {
    struct pcap_stat ps {};
    if (pcap_stats(pcap_, &ps) == 0) {
      kernel_drops_.store(ps.ps_drop);
      if_drops_.store(ps.ps_ifdrop);
    }
  }
  capture_stats s = stats();
  mon_->on_capture_stats(s);
}

void capture::on_packet_cb(unsigned char* user, const struct pcap_pkthdr* h, const unsigned char* bytes) {
  capture* self = reinterpret_cast<capture*>(user);
  self->packets_.store(++self->seen_, std::memory_order_relaxed);  // one writer: a plain store, no locked add
  const int64_t wall_ts = int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec;
  const int64_t ts = self->live_ ? self->timeline_.packet_time(wall_ts) : wall_ts;  // a file keeps its own time
  if (self->mon_->due(ts)) {
    self->refresh_stats();
    self->deliver(self->mon_->advance(ts));
  }
  packet_summary& s = self->summary_;
  s.ts_us = ts;
  parse_packet(self->link_, bytes, h->caplen, h->len, &s);
  self->mon_->on_packet(s);
}

bool capture::run(monitor& mon, event_sink& sink) {
  mon_ = &mon;
  sink_ = &sink;
  running_.store(true);
  bool ok = true;
  if (live_) {
    pollfd pfd{pcap_get_selectable_fd(pcap_), POLLIN, 0};
    while (!stop_.load(std::memory_order_relaxed)) {
      if (pfd.fd >= 0) poll(&pfd, 1, 100);
      timeline_.resync();
      const int n = pcap_dispatch(pcap_, -1, &capture::on_packet_cb, reinterpret_cast<unsigned char*>(this));
      if (n == PCAP_ERROR) {
        errors_.fetch_add(1);
        error_ = std::string("capture failed: ") + pcap_geterr(pcap_);
        ok = false;
        break;
      }
      // The wall clock closes a step only once the packets of that step can no longer be in the kernel's
      // open block; packet timestamps close steps as they arrive.
      const int64_t now = timeline_.now() - wall_lag_us_;
      if (mon.due(now)) {
        refresh_stats();
        deliver(mon.advance(now));
      }
    }
  } else {
    while (!stop_.load(std::memory_order_relaxed)) {
      struct pcap_pkthdr* h = nullptr;
      const unsigned char* bytes = nullptr;
      const int rc = pcap_next_ex(pcap_, &h, &bytes);
      if (rc == 1) {
        on_packet_cb(reinterpret_cast<unsigned char*>(this), h, bytes);
        continue;
      }
      if (rc == PCAP_ERROR) {
        errors_.fetch_add(1);
        error_ = std::string("read error after ") + std::to_string(packets_.load()) +
                 " packets: " + pcap_geterr(pcap_);
        ok = false;
      }
      break;  // PCAP_ERROR_BREAK: end of file
    }
    refresh_stats();
    deliver(mon.finish());
  }
  running_.store(false);
  return ok;
}

void capture::start(monitor& mon, event_sink& sink) {
  stop();
  stop_.store(false);
  running_.store(true);
  thread_ = std::thread([this, &mon, &sink] {
    pthread_setname_np(pthread_self(), "rampart-capture");  // at most 15 characters
    run(mon, sink);
  });
}

void capture::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

capture_stats capture::stats() const {
  capture_stats s;
  s.packets = packets_.load();
  s.kernel_drops = kernel_drops_.load();
  s.interface_drops = if_drops_.load();
  s.errors = errors_.load();
  return s;
}

}  // namespace rampart::monitor
