#include "config/monitor_config.hpp"

#include <limits>
#include <string>
#include <vector>

#include "config/toml_schema.hpp"

namespace rampart::config {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr size_t max_ports = 64;  // per list: each port is a term of the capture's kernel filter

bool detector_table(const toml::table& t, const std::string& file, const std::string& path,
                    monitor::detector_id id, monitor::detector_config* d, config_error* err) {
  toml_section s(&t, file, path);
  int64_t raise = d->raise_after, clear = d->clear_after, every = d->update_every, severity = d->severity;
  s.get("enabled", &d->enabled);
  s.get("floor", &d->floor, 0, id == monitor::detector_id::entropy_shift ? 1 : 1e12);
  s.get("factor", &d->factor, 1, 1e6);
  s.get("baseline_tau_s", &d->baseline_tau_s, 0.001, 1e7);
  s.get("raise_after", &raise, 1, 100000);
  s.get("clear_after", &clear, 1, 100000);
  s.get("update_every", &every, 1, 100000);
  s.get("severity", &severity, 1, 3);
  if (id == monitor::detector_id::entropy_shift) {
    s.get("initial_baseline", &d->initial_baseline, -1, 1);
    s.get("min_pps", &d->min_pps, 0, 1e12);
    s.get("min_sources", &d->min_sources, 0, 1e9);
  } else {
    s.get("initial_baseline", &d->initial_baseline, 0, 1e12);
    // At least 1 a second and 1% of the evidence: lower, a flood of spoofed sources would each qualify.
    s.get("culprit_min", &d->culprit_min, 1, 1e12);  // entropy_shift names no culprits
  }
  if (id == monitor::detector_id::heavy_hitter) s.get("min_share", &d->min_share, 0, 1);
  int64_t outlier_severity = d->outlier_severity;
  if (id == monitor::detector_id::conn_flood || id == monitor::detector_id::request_flood) {
    s.get("outlier_floor", &d->outlier_floor, 0, 1e12);
    s.get("outlier_factor", &d->outlier_factor, 2, 1e6);
    s.get("outlier_severity", &outlier_severity, 1, 3);
  }
  if (id == monitor::detector_id::request_flood) s.get("token_outlier_floor", &d->token_outlier_floor, 0, 1e12);
  for (const char* key : {"outlier_floor", "token_outlier_floor"}) {  // 0 turns the rule off; else at least 1/s
    const double v = std::string(key) == "outlier_floor" ? d->outlier_floor : d->token_outlier_floor;
    if (!s.error() && v > 0 && v < 1) s.fail_at(t.get(key), key, "must be 0 (off) or at least 1");
  }
  if (!s.finish()) {
    *err = *s.error();
    return false;
  }
  if (id == monitor::detector_id::entropy_shift && d->floor <= 0) {
    s.fail_at(t.get("floor"), "floor", "must be greater than 0 (a distance in normalised entropy)");
    *err = *s.error();
    return false;
  }
  d->raise_after = static_cast<int>(raise);
  d->clear_after = static_cast<int>(clear);
  d->update_every = static_cast<int>(every);
  d->severity = static_cast<int>(severity);
  d->outlier_severity = static_cast<int>(outlier_severity);
  return true;
}

// A list of ports under `key`, each in [1, 65535], at most `max` of them. Absent: `out` keeps its default.
bool port_list(const toml::table& t, const char* key, size_t max, toml_section* s, std::vector<uint16_t>* out) {
  const toml::node* ports = t.get(key);
  if (!ports) return true;
  const toml::array* arr = ports->as_array();
  if (!arr) {
    s->fail_at(ports, key, "expected an array of port numbers");
    return false;
  }
  if (arr->size() > max) {
    s->fail_at(ports, key, "at most " + std::to_string(max) + " ports");
    return false;
  }
  out->clear();
  for (const toml::node& p : *arr) {
    const auto v = p.value_exact<int64_t>();
    if (!v || *v < 1 || *v > 65535) {
      s->fail_at(&p, key, "each port must be an integer in [1, 65535]");
      return false;
    }
    out->push_back(static_cast<uint16_t>(*v));
  }
  return true;
}

}  // namespace

bool parse_monitor_config(const toml::table& monitor_table, const std::string& file,
                          monitor::monitor_config* out, config_error* err) {
  monitor::monitor_config c = *out;
  toml_section s(&monitor_table, file, "monitor");
  int64_t snaplen = c.snaplen, flows = static_cast<int64_t>(c.flow_table_entries);
  int64_t buffer_timeout = c.buffer_timeout_ms;
  int64_t v4 = c.prefix_v4, v6 = c.prefix_v6;
  s.get("interface", &c.interface);
  s.get("bpf_filter", &c.bpf_filter);
  s.get("buffer_bytes", &c.buffer_bytes, 65536, int64_t{1} << 31);
  s.get("snaplen", &snaplen, 64, 262144);
  s.get("immediate_mode", &c.immediate_mode);
  s.get("buffer_timeout_ms", &buffer_timeout, 1, 1000);
  s.get("window_s", &c.window_s, 0.001, 3600);
  s.get("step_s", &c.step_s, 0.001, 60);
  s.get("stats_interval_s", &c.stats_interval_s, 0, 86400);
  s.get("handshake_timeout_s", &c.handshake_timeout_s, 0.001, 3600);
  s.get("flow_table_entries", &flows, 4, int64_t{1} << 26);
  s.get("prefix_v4", &v4, 1, 32);
  s.get("prefix_v6", &v6, 1, 128);
  s.get("culprit_min_share", &c.culprit_min_share, 0.01, 1);
  s.get("sensor_name", &c.sensor_name);
  s.get("eve_log", &c.eve_log);
  if (s.error()) {
    *err = *s.error();
    return false;
  }
  if (!port_list(monitor_table, "service_ports", max_ports, &s, &c.service_ports) ||
      !port_list(monitor_table, "amplifier_ports", max_ports, &s, &c.amplifier_ports)) {
    *err = *s.error();
    return false;
  }
  const toml::table* detectors = s.table("detectors");
  if (!s.finish({"service_ports", "amplifier_ports"})) {
    *err = *s.error();
    return false;
  }
  if (detectors) {
    toml_section ds(detectors, file, "monitor.detectors");
    for (const auto& [key, node] : *detectors) {
      monitor::detector_id id;
      const std::string name(key.str());
      if (!monitor::detector_from_name(name, &id)) continue;  // reported by finish() below
      const toml::table* t = ds.table(name);
      if (!t) break;
      if (!detector_table(*t, file, "monitor.detectors." + name, id, &c.detector(id), err)) return false;
    }
    if (!ds.finish()) {
      *err = *ds.error();
      err->message = ds.error()->message == "unknown key" ? "unknown detector" : ds.error()->message;
      return false;
    }
  }
  c.snaplen = static_cast<int>(snaplen);
  c.buffer_timeout_ms = static_cast<int>(buffer_timeout);
  c.flow_table_entries = static_cast<size_t>(flows);
  c.prefix_v4 = static_cast<int>(v4);
  c.prefix_v6 = static_cast<int>(v6);
  // Cross-field rules (window a multiple of step, ...) come from the monitor's own validation.
  const std::string problem = c.validate();
  if (!problem.empty()) {
    err->file = file;
    err->line = static_cast<int>(monitor_table.source().begin.line);
    err->column = static_cast<int>(monitor_table.source().begin.column);
    err->key = "monitor";
    err->message = problem;
    return false;
  }
  *out = std::move(c);
  return true;
}

bool load_monitor_config(const std::string& path, monitor::monitor_config* out, config_error* err) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    err->file = path;
    err->line = static_cast<int>(e.source().begin.line);
    err->column = static_cast<int>(e.source().begin.column);
    err->key.clear();
    err->message = std::string(e.description());
    return false;
  }
  const toml::node* m = root.get("monitor");
  if (!m) return true;
  if (!m->is_table()) {
    err->file = path;
    err->line = static_cast<int>(m->source().begin.line);
    err->column = static_cast<int>(m->source().begin.column);
    err->key = "monitor";
    err->message = "expected a table";
    return false;
  }
  return parse_monitor_config(*m->as_table(), path, out, err);
}

}  // namespace rampart::config
