#include "config/server_config.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "base/device_name.hpp"
#include "config/curve_keys.hpp"
#include "config/monitor_config.hpp"
#include "config/policy.hpp"
#include "config/toml_schema.hpp"

namespace rampart::config {
namespace {

constexpr int64_t kMaxInt = int64_t{1} << 40;

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// The CURVE key file named at SECTION.KEY, when *PATH is set: resolved against BASE_DIR, read and checked into
// *PUBLIC_KEY and *SECRET_KEY. An unreadable file is reported at the setting that names it (with why: not a
// regular file, too large); a malformed one at its own line.
bool load_key_file(const toml::table* section, const std::string& file, const std::string& section_name,
                   const char* key, const std::string& base_dir, std::string* path, std::string* public_key,
                   std::string* secret_key, config_error* err) {
  if (path->empty()) return true;
  *path = resolve(base_dir, *path);
  curve_keypair keys;
  if (!load_curve_keypair(*path, &keys, err)) {
    if (err->line == 0) {
      toml_section s(section, file, section_name);
      const size_t why = err->message.find(": ");
      s.fail_at(section ? section->get(key) : nullptr, key,
                "cannot read the CURVE key file " + *path +
                    (why == std::string::npos ? "" : err->message.substr(why)));
      *err = *s.error();
    }
    return false;
  }
  *public_key = keys.public_key;
  *secret_key = keys.secret_key;
  return true;
}

// Every entry of KEYS (at SECTION.KEY) is a CURVE public key.
void check_public_keys(toml_section& s, std::string_view key, const std::vector<std::string>& keys) {
  const toml::array* a = s.node(key) ? s.node(key)->as_array() : nullptr;
  for (size_t i = 0; i < keys.size() && !s.error(); ++i)
    if (!is_valid_curve_key(keys[i]))
      s.fail_at(a ? a->get(i) : nullptr, key, "not a CURVE public key (40 characters of Z85): " + keys[i]);
}

bool parse_frontend(toml_section& s, frontend_config* f) {
  s.get("endpoint", &f->endpoint);
  s.get("max_message_size", &f->max_message_size, 256, int64_t{1} << 30);
  s.get("handshake_ivl_ms", &f->handshake_ivl_ms, 0, 600000);
  s.get("rcvhwm", &f->rcvhwm, 1, 10000000);  // 0 would mean no bound at all
  s.get("sndhwm", &f->sndhwm, 1, 10000000);
  s.get("connection_memory_budget", &f->connection_memory_budget, 1 << 20, int64_t{1} << 40);
  s.get("backlog", &f->backlog, 1, 65535);
  s.get("router_mandatory", &f->router_mandatory);
  s.get("heartbeat_ivl_ms", &f->heartbeat_ivl_ms, 0, 600000);
  s.get("heartbeat_timeout_ms", &f->heartbeat_timeout_ms, 0, 600000);
  s.get("heartbeat_ttl_ms", &f->heartbeat_ttl_ms, 0, 6553500);
  for (const char* key : {"heartbeat_ivl_ms", "heartbeat_timeout_ms", "heartbeat_ttl_ms"}) {
    const toml::node* n = s.node(key);
    if (!s.error() && n && n->value_or<int64_t>(0) != 0) {
      s.fail_at(n, key,
                "ZMTP heartbeats are off on the front end and must stay 0: libzmq 4.3.4 aborts the process when a "
                "heartbeat falls due on a connection whose reads are paused and that has failed (any client can "
                "cause that); vanished clients are found by tcp_keepalive_* instead");
    }
  }
  s.get("tcp_keepalive_idle_s", &f->tcp_keepalive_idle_s, 1, 86400);
  s.get("tcp_keepalive_intvl_s", &f->tcp_keepalive_intvl_s, 1, 3600);
  s.get("tcp_keepalive_cnt", &f->tcp_keepalive_cnt, 1, 100);
  s.get("source_bytes_per_s", &f->source_bytes_per_s, 1024, int64_t{1} << 40);
  s.get("source_burst_bytes", &f->source_burst_bytes, 1024, int64_t{1} << 40);
  s.get("connection_messages_per_s", &f->connection_messages_per_s, 1, 10000000);
  s.get("connection_message_burst", &f->connection_message_burst, 1, 10000000);
  s.get("max_prompt_tokens", &f->max_prompt_tokens, 1, kMaxInt);
  s.get("max_tokens_limit", &f->max_tokens_limit, 1, kMaxInt);
  s.get("max_stop_strings", &f->max_stop_strings, 0, 64);
  s.get("max_queued_requests", &f->max_queued_requests, 1, 10000000);
  s.get("curve_key_file", &f->curve_key_file);
  if (!s.error() && f->endpoint.empty()) s.fail_at(nullptr, "endpoint", "must not be empty");
  if (!s.error() && f->source_burst_bytes < f->max_message_size + 256) {
    const toml::node* at = s.node("source_burst_bytes") ? s.node("source_burst_bytes") : s.node("max_message_size");
    s.fail_at(at, at == s.node("source_burst_bytes") ? "source_burst_bytes" : "max_message_size",
              "source_burst_bytes " + std::to_string(f->source_burst_bytes) +
                  " is below max_message_size + 256: a largest message could never be read");
  }
  if (!s.error() && f->rcvhwm * f->max_message_size > f->connection_memory_budget) {
    const toml::node* at = s.node("rcvhwm") ? s.node("rcvhwm") : s.node("max_message_size");
    s.fail_at(at, at == s.node("rcvhwm") ? "rcvhwm" : "max_message_size",
              "rcvhwm " + std::to_string(f->rcvhwm) + " x max_message_size " + std::to_string(f->max_message_size) +
                  " bytes may queue " + std::to_string(f->rcvhwm * f->max_message_size) +
                  " bytes per connection, over connection_memory_budget " +
                  std::to_string(f->connection_memory_budget));
  }
  return s.finish();
}

bool parse_engine(toml_section& s, engine_config* e) {
  s.get("threads", &e->threads, 0, 1024);
  s.get("cpus", &e->cpus, 1024, 0, 1023);
  if (!s.error()) {
    std::vector<int64_t> sorted = e->cpus;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      s.fail_at(s.node("cpus"), "cpus", "lists a CPU twice");
    else if (!e->cpus.empty() && e->threads > static_cast<int64_t>(e->cpus.size()))
      s.fail_at(s.node("threads"), "threads",
                "more threads than engine.cpus lists: the engine's threads would share CPUs and wait on each other");
  }
  s.get("pack_weights", &e->pack_weights);
  s.get("device", &e->device);
  std::string device_error;
  if (!s.error() && rampart::parse_device_name(e->device, &device_error) == -2)
    s.fail_at(s.node("device"), "device", device_error);
  s.get("precision", &e->precision);
  if (!s.error() && e->precision != "exact" && e->precision != "fast")
    s.fail_at(s.node("precision"), "precision", "must be \"exact\" or \"fast\"");
  if (!s.error() && e->precision == "fast" && e->device == "cpu")
    s.fail_at(s.node("precision"), "precision", "\"fast\" is a GPU precision: it needs engine.device = \"cuda:N\"");
  s.get("kv_block_size", &e->kv_block_size, 1, 1024);
  s.get("kv_blocks", &e->kv_blocks, 1, int64_t{1} << 24);
  s.get("max_batch_sequences", &e->max_batch_sequences, 1, 4096);
  s.get("max_step_tokens", &e->max_step_tokens, 1, 1 << 20);
  s.get("budget_guard_ms", &e->budget_guard_ms, 0, 600000);
  s.get("shards", &e->shards, 1, 256);
  s.get("shard_deadline_ms", &e->shard_deadline_ms, 1, 600000);
  s.get("shard_step_deadline_ms", &e->shard_step_deadline_ms, 0, 3600000);
  s.get("shard_slow_factor", &e->shard_slow_factor, 0, 1000);
  s.get("shard_slow_hold_ms", &e->shard_slow_hold_ms, 1, 3600000);
  if (!s.error() && e->shard_slow_factor > 0 && e->shard_slow_factor < 1.5)
    s.fail_at(s.node("shard_slow_factor"), "shard_slow_factor",
              "must be 0 (off) or at least 1.5: below that, ordinary jitter would mark healthy shards slow");
  s.get("rebalance_window_steps", &e->rebalance_window_steps, 0, 1 << 30);
  s.get("rebalance_replicas", &e->rebalance_replicas, 0, 4096);
  s.get("shard_endpoints", &e->shard_endpoints, 4096);
  s.get("shard_curve_key_file", &e->shard_curve_key_file);
  s.get("shard_server_keys", &e->shard_server_keys, 4096);
  if (!s.error() && !e->shard_endpoints.empty() && e->shards > 1)
    s.fail_at(s.node("shard_endpoints"), "shard_endpoints", "excludes engine.shards > 1 (in-process shards)");
  if (!s.error() && e->device != "cpu" && (e->shards > 1 || !e->shard_endpoints.empty()))
    s.fail_at(s.node("device"), "device",
              "expert shards run on CPUs: engine.device = \"" + e->device +
                  "\" runs the whole forward pass on the GPU and excludes engine.shards > 1 and shard_endpoints");
  check_public_keys(s, "shard_server_keys", e->shard_server_keys);
  const bool curve = !e->shard_curve_key_file.empty();
  if (!s.error() && curve && e->shard_endpoints.empty())
    s.fail_at(s.node("shard_curve_key_file"), "shard_curve_key_file", "set without engine.shard_endpoints");
  if (!s.error() && curve && e->shard_server_keys.size() != e->shard_endpoints.size())
    s.fail_at(s.node("shard_server_keys") ? s.node("shard_server_keys") : s.node("shard_curve_key_file"),
              "shard_server_keys",
              "needs one shard public key per shard endpoint: " + std::to_string(e->shard_endpoints.size()) +
                  " endpoints, " + std::to_string(e->shard_server_keys.size()) + " keys");
  if (!s.error() && !curve && !e->shard_server_keys.empty())
    s.fail_at(s.node("shard_server_keys"), "shard_server_keys", "set without engine.shard_curve_key_file");
  const toml::array* eps = s.node("shard_endpoints") ? s.node("shard_endpoints")->as_array() : nullptr;
  for (size_t i = 0; !curve && i < e->shard_endpoints.size() && !s.error(); ++i)
    if (!is_loopback_endpoint(e->shard_endpoints[i]))
      s.fail_at(eps ? eps->get(i) : nullptr, "shard_endpoints",
                e->shard_endpoints[i] +
                    " is not on this host: a shard link off loopback must be authenticated (set "
                    "engine.shard_curve_key_file and engine.shard_server_keys)");
  return s.finish();
}

// [metrics].operator_token_file read and checked; the dashboard off loopback needs it.
void parse_operator_token(toml_section& s, const std::string& base_dir, metrics_config* m) {
  if (!m->operator_token_file.empty()) {
    m->operator_token_file = resolve(base_dir, m->operator_token_file);
    std::string token;
    config_error why;
    const bool read = read_config_file(m->operator_token_file, &token, &why);  // a regular file of sane size
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    const bool allowed = std::all_of(token.begin(), token.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || std::strchr("._~+/=-", ch) != nullptr;
    });
    if (!read) {
      s.fail_at(s.node("operator_token_file"), "operator_token_file",
                "cannot read the operator token file " + m->operator_token_file +
                    (why.message.find(": ") == std::string::npos ? "" : why.message.substr(why.message.find(": "))));
    } else if (token.size() < 16 || token.size() > 256 || !allowed) {
      s.fail_at(s.node("operator_token_file"), "operator_token_file",
                m->operator_token_file + " must hold one line of 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -");
    } else {
      m->operator_token = token;
    }
    return;
  }
  if (m->enabled && m->dashboard && !is_loopback_endpoint("tcp://" + m->listen)) {
    s.fail_at(s.node("listen"), "listen",
              m->listen + " is off loopback: the dashboard there needs metrics.operator_token_file (or set "
                          "metrics.dashboard = false)");
  }
}

bool parse_shard(toml_section& s, shard_config* c) {
  s.get("curve_key_file", &c->curve_key_file);
  s.get("client_keys", &c->client_keys, 4096);
  check_public_keys(s, "client_keys", c->client_keys);
  if (!s.error() && !c->curve_key_file.empty() && c->client_keys.empty())
    s.fail_at(s.node("curve_key_file"), "client_keys",
              "a CURVE shard needs the public key of every attention rank allowed to connect");
  if (!s.error() && c->curve_key_file.empty() && !c->client_keys.empty())
    s.fail_at(s.node("client_keys"), "client_keys", "set without shard.curve_key_file");
  return s.finish();
}

}  // namespace

bool parse_server_config(std::string_view text, const std::string& file, const std::string& base_dir,
                         server_config* out, config_error* err) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    err->file = file;
    err->line = static_cast<int>(e.source().begin.line);
    err->column = static_cast<int>(e.source().begin.column);
    err->key.clear();
    err->message = std::string(e.description());
    return false;
  }
  server_config c;
  c.source = file;
  toml_section top(&root, file, "");
  const toml::table* server = top.table("server");
  const toml::table* frontend = top.table("frontend");
  const toml::table* model = top.table("model");
  const toml::table* engine = top.table("engine");
  const toml::table* shard = top.table("shard");
  const toml::table* metrics = top.table("metrics");
  const toml::table* http = top.table("http");
  const toml::table* actors = top.table("actors");
  const toml::table* log = top.table("log");
  const toml::table* alerts = top.table("alerts");
  const toml::table* admission = top.table("admission");
  const toml::table* monitor = top.table("monitor");
  auto fail = [&](const toml_section& s) {
    *err = *s.error();
    return false;
  };
  if (!top.finish()) return fail(top);

  toml_section s_server(server, file, "server");
  s_server.get("name", &c.name);
  s_server.get("user", &c.user);
  if (!s_server.finish()) return fail(s_server);

  toml_section s_frontend(frontend, file, "frontend");
  if (!parse_frontend(s_frontend, &c.frontend)) return fail(s_frontend);

  if (!load_key_file(frontend, file, "frontend", "curve_key_file", base_dir, &c.frontend.curve_key_file,
                     &c.frontend.curve_public_key, &c.frontend.curve_secret_key, err))
    return false;

  toml_section s_model(model, file, "model");
  s_model.get("path", &c.model.path);
  s_model.get("tokenizer", &c.model.tokenizer);
  if (!s_model.finish()) return fail(s_model);
  c.model.path = resolve(base_dir, c.model.path);
  c.model.tokenizer = resolve(base_dir, c.model.tokenizer);
  if (c.model.tokenizer.empty()) c.model.tokenizer = c.model.path;

  toml_section s_engine(engine, file, "engine");
  if (!parse_engine(s_engine, &c.engine)) return fail(s_engine);
  if (!load_key_file(engine, file, "engine", "shard_curve_key_file", base_dir, &c.engine.shard_curve_key_file,
                     &c.engine.shard_curve_public_key, &c.engine.shard_curve_secret_key, err))
    return false;

  toml_section s_shard(shard, file, "shard");
  if (!parse_shard(s_shard, &c.shard)) return fail(s_shard);
  if (!load_key_file(shard, file, "shard", "curve_key_file", base_dir, &c.shard.curve_key_file,
                     &c.shard.curve_public_key, &c.shard.curve_secret_key, err))
    return false;


  toml_section s_metrics(metrics, file, "metrics");
  s_metrics.get("enabled", &c.metrics.enabled);
  s_metrics.get("listen", &c.metrics.listen);
  s_metrics.get("dashboard", &c.metrics.dashboard);
  s_metrics.get("operator_token_file", &c.metrics.operator_token_file);
  if (!s_metrics.error()) parse_operator_token(s_metrics, base_dir, &c.metrics);
  if (!s_metrics.finish()) return fail(s_metrics);

  toml_section s_http(http, file, "http");
  s_http.get("enabled", &c.http.enabled);
  s_http.get("listen", &c.http.listen);
  s_http.get("max_header_bytes", &c.http.max_header_bytes, 1024, 1 << 20);
  s_http.get("max_headers", &c.http.max_headers, 8, 1024);
  s_http.get("header_timeout_ms", &c.http.header_timeout_ms, 100, 600000);
  s_http.get("body_timeout_ms", &c.http.body_timeout_ms, 100, 600000);
  s_http.get("idle_timeout_ms", &c.http.idle_timeout_ms, 100, 3600000);
  s_http.get("write_timeout_ms", &c.http.write_timeout_ms, 100, 3600000);
  s_http.get("max_pending_bytes", &c.http.max_pending_bytes, 4096, int64_t{1} << 30);
  s_http.get("max_connections", &c.http.max_connections, 1, 1000000);
  s_http.get("max_connections_per_source", &c.http.max_connections_per_source, 1, 1000000);
  if (!s_http.finish()) return fail(s_http);

  toml_section s_actors(actors, file, "actors");
  s_actors.get_choice("scheduler_policy", &c.actors.scheduler_policy, {"sharing", "stealing"});
  s_actors.get("max_threads", &c.actors.max_threads, 0, 1024);
  s_actors.get("request_timeout_ms", &c.actors.request_timeout_ms, 1, 3600000);
  if (!s_actors.finish()) return fail(s_actors);

  toml_section s_alerts(alerts, file, "alerts");
  s_alerts.get("enabled", &c.alerts.enabled);
  s_alerts.get("publish", &c.alerts.publish);
  if (!s_alerts.finish()) return fail(s_alerts);
  if (monitor && !parse_monitor_config(*monitor, file, &c.monitor, err)) return false;
  c.monitor.eve_log = resolve(base_dir, c.monitor.eve_log);

  toml_section s_adm(admission, file, "admission");
  s_adm.get("policy_file", &c.admission.policy_file);
  s_adm.get("accounts_db", &c.admission.accounts_db);
  s_adm.get("registration_class", &c.admission.registration_class);
  s_adm.get("policy_poll_ms", &c.admission.policy_poll_ms, 0, 3600000);
  s_adm.get("trial_ttl_s", &c.admission.trial_ttl_s, 0, int64_t{10} * 365 * 86400);
  if (!s_adm.finish()) return fail(s_adm);
  c.admission.policy_file = resolve(base_dir, c.admission.policy_file);
  c.admission.accounts_db = resolve(base_dir, c.admission.accounts_db);

  toml_section s_log(log, file, "log");
  s_log.get_choice("level", &c.log.level, {"trace", "debug", "info", "warn", "error", "critical", "off"});
  s_log.get_choice("format", &c.log.format, {"text", "json"});
  s_log.get("file", &c.log.file);
  if (!s_log.finish()) return fail(s_log);

  *out = std::move(c);
  return true;
}

bool is_loopback_endpoint(std::string_view endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string_view rest = endpoint.substr(6);
  if (const size_t semi = rest.find(';'); semi != std::string_view::npos) rest = rest.substr(semi + 1);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 written as a dotted quad: four decimal numbers 0-255 without leading zeros (the resolver would
  // read 0127 as octal, 87), the first 127.
  int parts = 0, value = -1, digits = 0;
  bool first_is_127 = false, leading_zero = false;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (value < 0 || (leading_zero && digits > 1)) return false;
      if (parts == 0) first_is_127 = value == 127;
      ++parts;
      value = -1;
      digits = 0;
    } else if (host[i] >= '0' && host[i] <= '9') {
      if (digits == 0) leading_zero = host[i] == '0';
      ++digits;
      value = (value < 0 ? 0 : value * 10) + (host[i] - '0');
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  return parts == 4 && first_is_127;
}

bool load_server_config(const std::string& file, server_config* out, config_error* err) {
  std::string text;
  if (!read_config_file(file, &text, err)) return false;
  std::string dir;
  auto slash = file.rfind('/');
  if (slash != std::string::npos) dir = file.substr(0, slash);
  else dir = ".";
  return parse_server_config(text, file, dir, out, err);
}

}  // namespace rampart::config
