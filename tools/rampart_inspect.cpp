// rampart-inspect: offline analysis of a pcap/pcapng file with Rampart's packet monitor, like
// `suricata -r`. EVE JSON events (alerts, threat-level changes; stats with --stats) on stdout, one per line;
// a summary on stderr. Window time follows packet timestamps.
//
//   rampart-inspect -r FILE [--config FILE] [--filter BPF] [--stats] [--bench]
//   rampart-inspect --synth FILE N [--pps R]     write an N-packet benchmark capture
//
// Exit status: 0 done; 1 the file broke off mid-way (everything before was analysed); 2 bad arguments,
// unreadable file or bad config.
#include <pcap/pcap.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "config/monitor_config.hpp"
#include "monitor/capture.hpp"
#include "monitor/monitor.hpp"
#include "monitor/synth.hpp"
#include "tools/flags.hpp"

namespace mon = rampart::monitor;

namespace {

constexpr const char* kUsage =
    "usage: rampart-inspect -r FILE [--config FILE] [--filter BPF] [--stats] [--bench]\n"
    "       rampart-inspect --synth FILE N [--pps R]\n"
    "\n"
    "Runs Rampart's packet monitor over a pcap or pcapng file (window time follows packet timestamps) and prints\n"
    "its EVE JSON events on stdout, one per line; a summary goes to stderr.\n"
    "  -r FILE          the capture to read\n"
    "  --config FILE    a TOML file with a [monitor] table (thresholds, windows); default: built-in settings\n"
    "  --filter BPF     a BPF expression applied while reading\n"
    "  --stats          also print each window's stats events\n"
    "  --bench          read the whole file first, then time parse + features + detectors (packets/s)\n"
    "  --synth FILE N   write an N-packet benchmark capture to FILE instead, at --pps R packets/s (1e6)\n"
    "Exit status: 0 done; 1 the file broke off mid-way (everything before was analysed); 2 bad arguments,\n"
    "unreadable file or bad config.\n";

// Input that cannot be used (unreadable file, bad filter): one line, exit 2.
int input_error(const std::string& msg) {
  std::cerr << "rampart-inspect: " << msg << "\n";
  return 2;
}

struct options {
  std::string read, config, filter, synth;
  uint64_t synth_n = 0;
  double pps = 1e6;
  bool bench = false, stats = false;
};

// Collects events; prints the ones asked for as EVE lines.
class stdout_sink : public mon::event_sink {
 public:
  stdout_sink(bool stats, std::string sensor, std::string file)
      : stats_(stats), sensor_(std::move(sensor)), file_(std::move(file)) {}
  void write(const mon::event& e) override {
    if (e.type == mon::event_type::stats && !stats_) return;
    if (e.type == mon::event_type::alert) ++alerts_[static_cast<size_t>(e.alert.detector)][static_cast<size_t>(e.alert.phase)];
    std::string line = mon::to_eve_json(e, sensor_, file_);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  uint64_t alerts(size_t d, mon::alert_phase p) const { return alerts_[d][static_cast<size_t>(p)]; }

 private:
  bool stats_;
  std::string sensor_, file_;
  uint64_t alerts_[mon::detector_count][3] = {};
};

// Per enabled detector, how close the capture came to alerting: the metric's peak against its threshold then.
void print_closest(const mon::monitor& m) {
  std::fprintf(stderr, "closest to alerting (each detector's metric at its peak against the threshold then):\n");
  for (size_t d = 0; d < mon::detector_count; ++d) {
    const mon::detector_id id = static_cast<mon::detector_id>(d);
    if (!m.config().detector(id).enabled) continue;
    const mon::closest_approach& c = m.detectors().closest(id);
    if (c.ratio < 0) {
      std::fprintf(stderr, "  %-18s no window with enough traffic to judge\n", mon::detector_name(id));
    } else {
      std::fprintf(stderr, "  %-18s %s %.6g against %.6g (%.2fx)%s\n", mon::detector_name(id), c.metric, c.value,
                   c.threshold, c.ratio, c.ratio >= 1 ? " over" : "");
    }
  }
}

void print_summary(const mon::monitor_counters& c, const stdout_sink& sink) {
  std::fprintf(stderr, "packets: %llu, bytes: %llu, ipv4: %llu, ipv6: %llu, fragments: %llu\n",
               static_cast<unsigned long long>(c.packets), static_cast<unsigned long long>(c.bytes),
               static_cast<unsigned long long>(c.ipv4), static_cast<unsigned long long>(c.ipv6),
               static_cast<unsigned long long>(c.fragments));
  std::fprintf(stderr, "by protocol:");
  for (size_t p = 0; p < mon::l4_proto_count; ++p) {
    std::fprintf(stderr, " %s %llu", mon::l4_proto_name(static_cast<mon::l4_proto>(p)),
                 static_cast<unsigned long long>(c.packets_by_proto[p]));
  }
  std::fprintf(stderr, "\nmalformed: %llu", static_cast<unsigned long long>(c.malformed));
  for (size_t k = 1; k < mon::malformed_kind_count; ++k) {
    if (c.malformed_by_kind[k]) {
      std::fprintf(stderr, ", %s %llu", mon::malformed_kind_name(static_cast<mon::malformed_kind>(k)),
                   static_cast<unsigned long long>(c.malformed_by_kind[k]));
    }
  }
  std::fprintf(stderr, "\nalerts (start/update/end):");
  bool any = false;
  for (size_t d = 0; d < mon::detector_count; ++d) {
    const uint64_t s = sink.alerts(d, mon::alert_phase::start);
    if (!s) continue;
    any = true;
    std::fprintf(stderr, " %s %llu/%llu/%llu", mon::detector_name(static_cast<mon::detector_id>(d)),
                 static_cast<unsigned long long>(s),
                 static_cast<unsigned long long>(sink.alerts(d, mon::alert_phase::update)),
                 static_cast<unsigned long long>(sink.alerts(d, mon::alert_phase::end)));
  }
  std::fprintf(stderr, "%s\n", any ? "" : " none");
}

// --bench: loads the file into memory, then times parse + features + detectors alone on this thread.
int run_bench(const options& o, const mon::monitor_config& cfg, stdout_sink* sink) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline(o.read.c_str(), errbuf);
  if (!p) return input_error(std::string("cannot read ") + o.read + ": " + errbuf);
  const mon::link_type link = mon::link_type_from_dlt(pcap_datalink(p));
  struct rec {
    int64_t ts;
    uint32_t caplen, len;
    size_t off;
  };
  std::vector<rec> recs;
  std::vector<uint8_t> data;
  pcap_pkthdr* h;
  const u_char* b;
  int rc;
  while ((rc = pcap_next_ex(p, &h, &b)) == 1) {
    recs.push_back({int64_t{h->ts.tv_sec} * 1000000 + h->ts.tv_usec, h->caplen, h->len, data.size()});
    data.insert(data.end(), b, b + h->caplen);
  }
  const std::string read_error = rc == PCAP_ERROR ? pcap_geterr(p) : "";
  pcap_close(p);
  mon::monitor m(cfg);
  std::vector<mon::event> events;
  mon::packet_summary s;
  const auto t0 = std::chrono::steady_clock::now();
  for (const rec& r : recs) {
    if (m.due(r.ts)) {
      auto ev = m.advance(r.ts);
      events.insert(events.end(), ev.begin(), ev.end());
    }
    s.ts_us = r.ts;
    mon::parse_packet(link, data.data() + r.off, r.caplen, r.len, &s);
    m.on_packet(s);
  }
  auto ev = m.finish();
  const auto t1 = std::chrono::steady_clock::now();
  events.insert(events.end(), ev.begin(), ev.end());
  for (const mon::event& e : events) sink->write(e);
  const double secs = std::chrono::duration<double>(t1 - t0).count();
  print_summary(m.snapshot(), *sink);
  print_closest(m);
  std::fprintf(stderr, "bench: %zu packets in %.3f s: %.0f packets/s (parse + features + detectors, one core)\n",
               recs.size(), secs, secs > 0 ? static_cast<double>(recs.size()) / secs : 0.0);
  if (!read_error.empty()) {
    std::cerr << "rampart-inspect: " << o.read << ": read error after " << recs.size() << " packets: " << read_error
              << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  rampart::tools::flags f(argc, argv, "rampart-inspect", kUsage);
  while (f.next()) {
    if (f.is("-r")) o.read = f.value();
    else if (f.is("--config")) o.config = f.value();
    else if (f.is("--filter")) o.filter = f.value();
    else if (f.is("--bench")) o.bench = true;
    else if (f.is("--stats")) o.stats = true;
    else if (f.is("--synth")) {
      o.synth = f.value();
      o.synth_n = static_cast<uint64_t>(f.integer(1, INT64_MAX));
    } else if (f.is("--pps")) o.pps = f.real(1, 1e9);
    else f.unknown();
  }
  if (!o.synth.empty()) {
    std::string err;
    if (!mon::synth::write_benchmark_pcap(o.synth, o.synth_n, o.pps, &err)) return input_error(err);
    std::fprintf(stderr, "wrote %llu packets at %.0f packets/s of capture time to %s\n",
                 static_cast<unsigned long long>(o.synth_n), o.pps, o.synth.c_str());
    return 0;
  }
  if (o.read.empty()) f.fail("no input file (-r FILE)");

  mon::monitor_config cfg;
  if (!o.config.empty()) {
    rampart::config::config_error err;
    if (!rampart::config::load_monitor_config(o.config, &cfg, &err)) {
      std::cerr << "rampart-inspect: " << err.to_string() << "\n";
      return 2;
    }
  }
  stdout_sink sink(o.stats, cfg.sensor_name, o.read);
  if (o.bench) {
    if (!o.filter.empty()) f.fail("--filter cannot be combined with --bench");
    return run_bench(o, cfg, &sink);
  }
  std::string err;
  std::unique_ptr<mon::capture> cap = mon::capture::open_offline(o.read, o.filter, &err);
  if (!cap) return input_error(err);
  if (cap->link() == mon::link_type::unsupported) {
    std::cerr << "rampart-inspect: " << o.read << ": unsupported link type " << cap->datalink() << "\n";
    return 2;
  }
  mon::monitor m(cfg);
  const bool ok = cap->run(m, sink);
  std::fflush(stdout);
  print_summary(m.snapshot(), sink);
  print_closest(m);
  if (!ok) {
    std::cerr << "rampart-inspect: " << o.read << ": " << cap->error() << "\n";
    return 1;
  }
  return 0;
}
