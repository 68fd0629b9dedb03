#include "monitor/capture.hpp"

#include <poll.h>
#include <pcap/pcap.h>
#include <sys/time.h>

#include <chrono>

namespace rampart::monitor {

std::string effective_bpf_filter(const monitor_config& cfg) {
  if (!cfg.bpf_filter.empty()) return cfg.bpf_filter;
  std::string f;
  for (uint16_t p : cfg.service_ports) {
    if (!f.empty()) f += " or ";
    f += "tcp port " + std::to_string(p) + " or udp port " + std::to_string(p);
  }
  return f;
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

int64_t now_us() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return int64_t{tv.tv_sec} * 1000000 + tv.tv_usec;
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
  pcap_set_immediate_mode(p, 1);
  pcap_set_buffer_size(p, static_cast<int>(cfg.buffer_bytes > INT32_MAX ? INT32_MAX : cfg.buffer_bytes));
  pcap_set_timeout(p, 100);
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
  return std::unique_ptr<capture>(new capture(p, true));
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
  self->packets_.fetch_add(1, std::memory_order_relaxed);
  const int64_t ts = int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec;
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
      const int n = pcap_dispatch(pcap_, -1, &capture::on_packet_cb, reinterpret_cast<unsigned char*>(this));
      if (n == PCAP_ERROR) {
        errors_.fetch_add(1);
        error_ = std::string("capture failed: ") + pcap_geterr(pcap_);
        ok = false;
        break;
      }
      const int64_t now = now_us();
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
  thread_ = std::thread([this, &mon, &sink] { run(mon, sink); });
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
