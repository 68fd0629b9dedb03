#include "actors/server.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <cctype>
#include <cstdlib>

#include <mutex>

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <spdlog/spdlog.h>

#include "actors/context.hpp"
#include "actors/gateway.hpp"
#include "actors/logging.hpp"
#include "actors/monitor_service.hpp"
#include "actors/privileges.hpp"
#include "actors/shard_actor.hpp"
#include "actors/shard_server.hpp"
#include "actors/stages.hpp"
#include "actors/supervisor.hpp"
#include "admission/accounts.hpp"
#include "base/cpu_affinity.hpp"
#include "base/device_name.hpp"
#include "base/file.hpp"
#include "config/policy.hpp"
#include "engine/engine.hpp"
#if RAMPART_WITH_CUDA
#include "gpu/cuda_engine.hpp"
#endif
#include "model/checkpoint.hpp"
#include "net/http_listener.hpp"
#include "net/curve_gate.hpp"
#include "net/zap_handler.hpp"
#include "shards/sharded_expert_backend.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

namespace rampart::actors {
namespace {

// Runs on the front end's I/O thread: hands messages to the gateway without blocking.
class gateway_bridge : public net::frontend_handler {
 public:
  explicit gateway_bridge(server_context* context) : context_(context) {}

  void on_message(const std::string& peer, const std::string& peer_address, const std::string& user_id,
                  net::client_message msg) override {
    auto gateway = context_->stages.gateway.get();
    if (!gateway) {
      context_->reply(peer, "error",
                               net::error_body(msg.request_id(), net::error_code::unavailable,
                                               "the gateway is restarting"));
      return;
    }
    // The gateway's mailbox is bounded too: past max_gateway_backlog decoded messages waiting for it, the I/O
    // thread answers at once (generate and register are shed, the rest refused as unavailable) instead of
    // queueing more.
    if (context_->gateway_backlog.fetch_add(1) >= server_context::max_gateway_backlog) {
      context_->gateway_backlog--;
      if (msg.type == net::message_type::generate || msg.type == net::message_type::register_tenant) {
        if (context_->metrics) context_->metrics->shed("over_capacity").Increment();
        context_->reply(peer, "shed", net::shed_body(msg.request_id(), "over_capacity", 100));
      } else {
        context_->reply(peer, "error", net::error_body(msg.request_id(), net::error_code::unavailable,
                                                                "the server is busy: try again"));
      }
      return;
    }
    caf::anon_send(gateway, inbound_message{peer, peer_address, user_id,
                                            std::make_shared<const net::client_message>(std::move(msg))});
  }

  void on_connection_event(connection_event e) override {
    if (!context_->monitor) return;
    if (e == connection_event::accepted) context_->monitor->signal(monitor::app_signal::zmtp_accepted, "");
    if (e == connection_event::handshake_succeeded) {
      context_->monitor->signal(monitor::app_signal::zmtp_succeeded, "");
    }
    // A failed handshake is not counted as an authentication failure here: the ZAP gate reports refused keys
    // itself, by source, and the retries of deny-listed sources are not new failures.
  }

  void on_register_refused(const std::string& peer_address) override {
    if (context_->monitor) context_->monitor->signal(monitor::app_signal::registration, peer_address);
    if (context_->metrics) context_->metrics->shed("registration_closed").Increment();
  }

  void on_auth_refused(const std::string& peer_address) override {
    if (context_->monitor) context_->monitor->signal(monitor::app_signal::auth_failure, peer_address);
  }

  void on_slow_reader(const std::string& peer_address) override {
    if (context_->monitor) context_->monitor->signal(monitor::app_signal::slow_reader, peer_address);
  }

  void on_malformed(net::error_code code) override {
    if (context_->metrics) context_->metrics->malformed(net::to_string(code)).Increment();
  }

  void on_peer_gone(const std::string& peer) override {
    auto gateway = context_->stages.gateway.get();
    if (gateway) caf::anon_send(gateway, peer_gone_atom::value, peer);
  }

 private:
  server_context* context_;
};

net::frontend_options frontend_options_from(const config::frontend_config& f) {
  net::frontend_options o;
  o.endpoint = f.endpoint;
  o.max_message_size = static_cast<int>(f.max_message_size);
  o.handshake_ivl_ms = static_cast<int>(f.handshake_ivl_ms);
  o.rcvhwm = static_cast<int>(f.rcvhwm);
  o.sndhwm = static_cast<int>(f.sndhwm);
  o.backlog = static_cast<int>(f.backlog);
  o.router_mandatory = f.router_mandatory;
  o.tcp_keepalive_idle_s = static_cast<int>(f.tcp_keepalive_idle_s);
  o.tcp_keepalive_intvl_s = static_cast<int>(f.tcp_keepalive_intvl_s);
  o.tcp_keepalive_cnt = static_cast<int>(f.tcp_keepalive_cnt);
  o.source_bytes_per_s = static_cast<double>(f.source_bytes_per_s);
  o.source_burst_bytes = static_cast<double>(f.source_burst_bytes);
  o.connection_messages_per_s = static_cast<double>(f.connection_messages_per_s);
  o.connection_message_burst = static_cast<double>(f.connection_message_burst);
  o.limits.max_body_bytes = static_cast<size_t>(f.max_message_size);
  o.limits.max_tokens_limit = f.max_tokens_limit;
  o.limits.max_stop_strings = static_cast<size_t>(f.max_stop_strings);
  o.limits.max_prompt_tokens = f.max_prompt_tokens;
  // `ids` must fit in the value budget whatever max_prompt_tokens is set to.
  o.limits.max_values = std::max<size_t>(o.limits.max_values, static_cast<size_t>(f.max_prompt_tokens) + 1024);
  o.curve_secret_key = f.curve_secret_key;
  return o;
}

net::http_door_options http_options_from(const config::server_config& cfg, const net::decode_limits& limits) {
  const config::http_config& h = cfg.http;
  net::http_door_options o;
  o.listen = h.listen;
  o.model_name = served_model_name(cfg.model.path);
  o.max_header_bytes = static_cast<size_t>(h.max_header_bytes);
  o.max_headers = static_cast<size_t>(h.max_headers);
  o.header_timeout = std::chrono::milliseconds(h.header_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(h.body_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(h.idle_timeout_ms);
  o.write_timeout = std::chrono::milliseconds(h.write_timeout_ms);
  o.max_pending_bytes = static_cast<size_t>(h.max_pending_bytes);
  o.max_connections = static_cast<size_t>(h.max_connections);
  o.max_connections_per_source = static_cast<size_t>(h.max_connections_per_source);
  o.limits = limits;  // [frontend]'s: the same body, JSON and prompt bounds on both doors, and read budgets
  o.source_bytes_per_s = static_cast<double>(cfg.frontend.source_bytes_per_s);
  o.source_burst_bytes = static_cast<double>(cfg.frontend.source_burst_bytes);
  o.connection_requests_per_s = static_cast<double>(cfg.frontend.connection_messages_per_s);
  o.connection_request_burst = static_cast<double>(cfg.frontend.connection_message_burst);
  return o;
}

// Loads the checkpoint, engine and tokenizer named by CFG. Returns false with a one-line *error.
bool load_model(const config::server_config& cfg, loaded_model* out, std::string* error) {
  model::load_error lerr;
  std::shared_ptr<const model::checkpoint> ck = model::checkpoint::open(cfg.model.path, &lerr);
  if (!ck) {
    *error = "cannot load the model: " + lerr.message;
    return false;
  }
  model::engine_options eo;
  eo.cpus.assign(cfg.engine.cpus.begin(), cfg.engine.cpus.end());
  // Pinned without a thread count: one thread per CPU given (not one per core of the machine on fewer CPUs).
  eo.threads = cfg.engine.threads > 0 || eo.cpus.empty() ? static_cast<int>(cfg.engine.threads)
                                                          : static_cast<int>(eo.cpus.size());
  eo.pack_weights = cfg.engine.pack_weights;
  eo.kv_block_tokens = static_cast<int>(cfg.engine.kv_block_size);
  eo.kv_cache_tokens = cfg.engine.kv_blocks * cfg.engine.kv_block_size;
  if (cfg.engine.shards > 1 || !cfg.engine.shard_endpoints.empty()) {
    expert_shards_options so;  // routed experts on shard actors or `rampartd --role shard` processes
    so.in_process = cfg.engine.shard_endpoints.empty() ? static_cast<int>(cfg.engine.shards) : 0;
    so.endpoints = cfg.engine.shard_endpoints;
    so.deadline_ms = static_cast<int>(cfg.engine.shard_deadline_ms);
    so.step_deadline_ms = static_cast<int>(cfg.engine.shard_step_deadline_ms);
    so.threads = eo.threads;
    so.cpus = eo.cpus;
    so.require_connected = false;  // a shard process may come later; until then its steps fail
    so.backend.rebalance_window_steps = static_cast<int>(cfg.engine.rebalance_window_steps);
    so.backend.rebalance_replicas = static_cast<int>(cfg.engine.rebalance_replicas);
    so.backend.slow_factor = cfg.engine.shard_slow_factor;
    so.backend.slow_hold = std::chrono::milliseconds(cfg.engine.shard_slow_hold_ms);
    so.connect_timeout_ms = 3000;
    so.keys.public_key = cfg.engine.shard_curve_public_key;
    so.keys.secret_key = cfg.engine.shard_curve_secret_key;
    so.keys.peer_keys = cfg.engine.shard_server_keys;
    if (!so.endpoints.empty() && !so.keys.curve())  // the configuration allows this on loopback only
      spdlog::warn("expert shards: the shard link is plain (no CURVE): anyone on this host can impersonate a shard");
    std::string serr;
    if (!(eo.experts = make_expert_shards(ck, so, &serr))) {
      *error = "cannot start the expert shards: " + serr;
      return false;
    }
    out->shards = std::dynamic_pointer_cast<model::sharded_expert_backend>(eo.experts);
  }
  std::string err;
  const int device = rampart::parse_device_name(cfg.engine.device, &err);  // validated with the config
  if (device >= 0) {
#if RAMPART_WITH_CUDA
    eo.device = gpu::cuda_device(device, true,
                                 cfg.engine.precision == "fast" ? gpu::precision::fast : gpu::precision::exact);
#else
    *error = "engine.device = \"" + cfg.engine.device +
             "\": this rampartd has no CUDA backend (CUDA was not found when it was built)";
    return false;
#endif
  }
  auto engine = model::engine::create(ck, eo, &err);
  if (!engine) {
    *error = "cannot start the engine: " + err;
    return false;
  }
  std::shared_ptr<const model::tokenizer> tok = model::tokenizer::load(cfg.model.tokenizer, &err);
  if (!tok) {
    *error = "cannot load the tokenizer: " + err;
    return false;
  }
  if (tok->vocab_size() > engine->config().vocab_size) {
    *error = "the tokenizer has " + std::to_string(tok->vocab_size()) + " tokens but the model's vocabulary only " +
             std::to_string(engine->config().vocab_size);
    return false;
  }
  out->vocab_size = engine->config().vocab_size;
  out->eos_ids = {tok->eos_id()};
  if (auto chat = model::chat_template::create(*tok, &err)) {
    out->chat = std::make_shared<const model::chat_template>(*chat);
  } else {
    spdlog::warn("chat requests disabled: {}", err);
  }
  out->tokenizer = std::move(tok);
  out->engine = std::move(engine);
  spdlog::info("model {}: {} layers, vocab {}, kernels {}, {} threads, KV cache {} blocks of {} tokens",
               cfg.model.path, out->engine->config().num_hidden_layers, out->vocab_size,
               out->engine->kernel_name(), out->engine->threads(), out->engine->kv().total_blocks,
               out->engine->kv().block_tokens);
  return true;
}

// Loads the policy file named in the configuration (or the embedded default). False with *error.
bool load_policy_file(const config::server_config& cfg, std::shared_ptr<const config::policy>* out,
                      config::config_error* err) {
  auto p = std::make_shared<config::policy>();
  if (cfg.admission.policy_file.empty()) {
    *p = config::default_policy();
  } else if (!config::load_policy(cfg.admission.policy_file, p.get(), err)) {
    return false;
  }
  *out = std::move(p);
  return true;
}

// Reloads the policy; a bad file keeps the policy in force and says why in the log and on the alert stream.
void reload_policy(server_context* context) {
  std::shared_ptr<const config::policy> fresh;
  config::config_error err;
  if (!load_policy_file(context->config, &fresh, &err)) {
    spdlog::error("policy not reloaded, the old one stays: {}", err.to_string());
    if (context->monitor) {
      context->monitor->publish_notice("policy", {{"event_type", "policy"},
                                                  {"policy", {{"action", "reload_refused"},
                                                              {"error", err.to_string()}}}});
    }
    return;
  }
  // Urgent, like the monitor's notices: a reloaded policy applies ahead of queued client messages.
  if (auto gw = context->stages.gateway.get()) caf::anon_send<caf::message_priority::high>(gw, fresh);
  spdlog::info("policy reloaded from {}", fresh->source);
}

int64_t file_mtime_ns(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void reload(const server_options& options, server_context* context) {
  // Tenants changed by rampart-admin while the server runs take effect now.
  if (context->accounts) {
    std::string error;
    if (context->accounts->reload(&error)) {
      spdlog::info("SIGHUP: accounts reloaded");
      if (context->curve) context->curve->refresh();
    }
    else spdlog::error("SIGHUP: accounts not reloaded, the cached ones stay: {}", error);
  }
  if (options.config_path.empty()) {
    spdlog::info("SIGHUP: running on the embedded default configuration; nothing to reload");
    return;
  }
  config::server_config fresh;
  config::config_error err;
  if (!config::load_server_config(options.config_path, &fresh, &err)) {
    spdlog::error("SIGHUP: configuration not reloaded, the old one stays: {}", err.to_string());
    return;
  }
  // Settings that take effect without a restart: log level. Endpoints and model paths need a restart.
  spdlog::set_level(spdlog::level::from_str(fresh.log.level));
  context->counters.config_reloads++;
  spdlog::info("SIGHUP: configuration reloaded from {} (log level {})", options.config_path, fresh.log.level);
}

// The running server: what it holds, in the order run() builds it (and the reverse order it is torn down in).
class server {
 public:
  explicit server(const server_options& options) : options_(options), cfg_(options.config) {}

  int run() {
    block_signals();
    context_ = std::make_unique<server_context>();
    context_->config = cfg_;
    context_->metrics = &metrics_;
    if (int rc = place_threads()) return rc;
    if (int rc = load_model_and_policy()) return rc;
    if (int rc = start_defence()) return rc;
    start_actor_system();
    if (int rc = start_front_end()) return rc;
    start_stages();
    if (int rc = open_the_door()) return rc;
    const bool signalled = serve_until_signal();
    drain();
    return signalled ? 0 : 3;
  }

 private:
  // Signals are taken synchronously by this thread; every thread started later inherits the blocked mask. A
  // shell may start us with SIGINT ignored (background jobs); an ignored signal never reaches sigwait.
  void block_signals() {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGHUP);
    if (!options_.fault_file.empty()) {
      sigaddset(&signals_, SIGUSR2);
      spdlog::warn("fault injection is on: SIGUSR2 kills the stage named in {}; never run this in production",
                   options_.fault_file);
    }
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  }

  // SIGUSR2 with --fault-injection: kills the stage named in the fault file as a crash would (an abnormal exit
  // its supervisor sees), for the crash tests (docs/development.md, "Fault injection").
  void inject_fault() {
    std::string text, why;
    if (!read_regular_file(options_.fault_file, 256, &text, &why)) {
      spdlog::error("fault injection: cannot read {}: {}", options_.fault_file, why);
      return;
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    stage_handles& h = context_->stages;
    auto kill = [&](const auto& handle) {
      if (!handle) return false;
      caf::anon_send_exit(handle, caf::exit_reason::kill);
      return true;
    };
    bool done = false;
    if (text == "gateway") done = kill(h.gateway.get());
    else if (text == "registrar") done = kill(h.registrar.get());
    else if (text == "scheduler") done = kill(h.scheduler.get());
    else if (text == "detokenizer") done = kill(h.detokenizer.get());
    else if (text.rfind("tokenizer-", 0) == 0 && text.size() == 11 && std::isdigit(static_cast<unsigned char>(text[10])))
      done = text[10] - '0' < context_->tokenizer_stages && kill(h.tokenizers[static_cast<size_t>(text[10] - '0')].get());
    else if (text.rfind("shard-", 0) == 0 && text.size() > 6 && context_->model && context_->model->shards) {
      char* end = nullptr;
      const long shard = std::strtol(text.c_str() + 6, &end, 10);
      done = *end == '\0' && shard >= 0 && shard < 4096 &&
             kill_shard_actor(*context_->model->shards, static_cast<int>(shard));
    }
    if (done) spdlog::warn("fault injection: killed {}", text);
    else spdlog::error("fault injection: no running stage named \"{}\"", text);
  }

  // The model (when configured), the policy and the accounts database.
  // [engine] cpus: the engine's threads pin themselves there (model::thread_pool); this thread, and with it
  // every thread started from here on (network, actors, capture), keeps to the CPUs left, so nothing a flood
  // makes the front end do can take the engine's CPU.
  int place_threads() {
    if (cfg_.engine.cpus.empty()) return 0;
    const std::vector<int> allowed = allowed_cpus();
    const std::vector<int> engine(cfg_.engine.cpus.begin(), cfg_.engine.cpus.end());
    for (int c : engine) {
      if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
        spdlog::critical("engine.cpus: CPU {} is not one this process may run on ({})", c, cpu_list_text(allowed));
        return 1;
      }
    }
    std::vector<int> rest;
    for (int c : allowed) {
      if (std::find(engine.begin(), engine.end(), c) == engine.end()) rest.push_back(c);
    }
    if (rest.empty()) {
      spdlog::warn("engine.cpus lists every CPU this process may run on ({}): the other threads share them",
                   cpu_list_text(allowed));
      return 0;
    }
    std::string error;
    if (!pin_current_thread(rest, &error)) {
      spdlog::critical("cannot keep the server's threads on CPUs {}: {}", cpu_list_text(rest), error);
      return 1;
    }
    spdlog::info("the engine runs on CPUs {}, the server's other threads on {}", cpu_list_text(engine),
                 cpu_list_text(rest));
    return 0;
  }

  int load_model_and_policy() {
    if (!cfg_.model.path.empty()) {
      loaded_model model;
      std::string error;
      if (!load_model(cfg_, &model, &error)) {
        spdlog::critical("{}", error);
        return 1;
      }
      context_->model = std::move(model);
    } else {
      spdlog::warn("no model configured ([model].path): generate requests are answered with `unavailable`");
    }
    config::config_error perr;
    if (!load_policy_file(cfg_, &context_->initial_policy, &perr)) {
      spdlog::critical("{}", perr.to_string());
      return 2;
    }
    spdlog::info("policy: {}{}", context_->initial_policy->source,
                 context_->initial_policy->dry_run ? " (dry run)" : "");
    if (!cfg_.admission.accounts_db.empty()) {
      std::string error;
      std::shared_ptr<admission::accounts> accounts = admission::accounts::open(cfg_.admission.accounts_db, &error);
      if (!accounts) {
        spdlog::critical("cannot open the accounts database: {}", error);
        return 1;
      }
      context_->accounts = std::move(accounts);
    }
    return 0;
  }

  // The packet monitor with its alert stream, and the metrics endpoint: they run before anything is served.
  int start_defence() {
    std::string error;
    // /healthz and /readyz read only the context's own thread-safe parts (the stage directory, the draining
    // flag, the model and its shards), which live as long as the listener: drain() stops it.
    const server_context* ctx = context_.get();
    auto health = [ctx] {
      nlohmann::json stages = nlohmann::json::object();
      for (const auto& name : ctx->directory.names()) stages[name] = ctx->directory.up(name);
      const bool ok = stages_healthy(*ctx);
      return net::probe_answer{ok, nlohmann::json{{"status", ok ? "ok" : "degraded"}, {"stages", stages}}.dump()};
    };
    auto ready = [ctx] {
      const std::vector<std::string> why = not_ready_reasons(*ctx);
      return net::probe_answer{why.empty(), nlohmann::json{{"ready", why.empty()}, {"not_ready", why}}.dump()};
    };
    // The monitor first: a wrong operator token on the dashboard is an authentication failure for it
    // (guessing shows as auth_failure_spike, and its address can be deny-listed).
    if (cfg_.alerts.enabled) {
      monitor_ = std::make_unique<monitor_service>(cfg_, &metrics_);
      if (!monitor_->start(&error)) {
        spdlog::critical("{}", error);
        return 1;
      }
      context_->monitor = monitor_.get();
      metrics_.on_operator_token_refused([m = monitor_.get()](const std::string& address) {
        m->signal(monitor::app_signal::auth_failure, address);
      });
    }
    if (cfg_.metrics.enabled && !metrics_.serve(cfg_.metrics.listen, health, ready, cfg_.metrics.dashboard,
                                                cfg_.metrics.operator_token, &error)) {
      spdlog::critical("{}", error);
      return 1;
    }
    return 0;
  }

  void start_actor_system() {
    caf::actor_system_config caf_cfg;
    caf_cfg.set("scheduler.policy", cfg_.actors.scheduler_policy == "sharing" ? caf::atom("sharing")
                                                                               : caf::atom("stealing"));
    if (cfg_.actors.max_threads > 0) caf_cfg.set("scheduler.max-threads", cfg_.actors.max_threads);
    system_ = std::make_unique<caf::actor_system>(caf_cfg);
  }

  // The front end's socket (not yet bound), the ZAP gate and, with CURVE on, the keys it admits.
  int start_front_end() {
    bridge_ = std::make_unique<gateway_bridge>(context_.get());
    auto fopts = frontend_options_from(cfg_.frontend);
    if (context_->model) fopts.limits.vocab_size = context_->model->vocab_size;
    fopts.zap_domain = "rampart";  // every connection passes the ZAP gate (deny-listed sources are refused)
    frontend_ = std::make_unique<net::frontend>(fopts, bridge_.get());
    context_->frontend = frontend_.get();
    if (cfg_.http.enabled) {  // the second door: the same bridge, so the same gateway, admission and policy
      http_ = std::make_unique<net::http_door>(http_options_from(cfg_, fopts.limits), bridge_.get());
      context_->http = http_.get();
    }
    zap_ = std::make_unique<net::zap_handler>(frontend_->zmq_context());
    if (auto* m = context_->monitor) {
      zap_->set_on_key_denied(
          [m](std::string_view address) { m->signal(monitor::app_signal::auth_failure, address); });
    }
    std::string error;
    if (!zap_->start(&error)) {
      spdlog::critical("{}", error);
      return 1;
    }
    context_->zap = zap_.get();
    curve_ = std::make_unique<net::curve_gate>(context_->accounts, zap_.get());
    if (cfg_.frontend.curve_secret_key.empty()) return 0;
    if (!net::curve_keys_match(cfg_.frontend.curve_secret_key, cfg_.frontend.curve_public_key)) {
      spdlog::critical("{}: the public key does not belong to the secret key", cfg_.frontend.curve_key_file);
      return 2;
    }
    // Tenants' keys are admitted from now on; the registration identity too until the gateway applies the level
    // in force (it sets the identity's gate from then on).
    const std::string& key = context_->initial_policy->registration_curve_key;
    curve_->set_registration(!key.empty(), key);
    context_->curve = curve_.get();
    spdlog::info("CURVE on: server public key {} ({} tenant keys admitted)", cfg_.frontend.curve_public_key,
                 context_->accounts ? context_->accounts->curve_keys().size() : 0);
    return 0;
  }

  // The supervised stages, and the monitor's notices routed to the gateway.
  void start_stages() {
    std::vector<stage_spec> stages;
    server_context* ctx = context_.get();
    stage_handles& h = ctx->stages;
    stages.push_back(
        make_stage("gateway", &h.gateway, [ctx](caf::actor_system& sys) { return spawn_gateway(sys, ctx); }));
    if (context_->accounts) {
      stages.push_back(make_stage("registrar", &h.registrar,
                                  [ctx](caf::actor_system& sys) { return spawn_registrar_stage(sys, ctx); }));
    }
    if (context_->model) {
      context_->tokenizer_stages = 2;
      for (int i = 0; i < context_->tokenizer_stages; ++i) {
        stages.push_back(make_stage("tokenizer-" + std::to_string(i), &h.tokenizers[static_cast<size_t>(i)],
                                    [ctx](caf::actor_system& sys) { return spawn_tokenizer_stage(sys, ctx); }));
      }
      stages.push_back(make_stage("scheduler", &h.scheduler,
                                  [ctx](caf::actor_system& sys) { return spawn_scheduler_stage(sys, ctx); }));
      stages.push_back(make_stage("detokenizer", &h.detokenizer,
                                  [ctx](caf::actor_system& sys) { return spawn_detokenizer_stage(sys, ctx); }));
    }
    supervisor_ = spawn_supervisor(*system_, std::move(stages), &context_->directory);
    if (monitor_) monitor_->set_listener([ctx](const monitor::event& e) { forward_to_gateway(ctx, e); });
  }

  // Threat levels and the culprits alerts name go to the gateway, which applies the policy, as urgent messages:
  // CAF takes them ahead of the client messages queued in its mailbox, so a flood that fills the mailbox does
  // not delay the defence. Only culprits: an alert's top sources describe the traffic and include whoever
  // happened to be seen during the flood.
  static void forward_to_gateway(server_context* ctx, const monitor::event& e) {
    monitor_notice n;
    if (e.type == monitor::event_type::threat_level) {
      n.level = e.threat.to;
    } else if (e.type == monitor::event_type::alert) {
      admission::alert_news news;
      news.detector = e.alert.detector;
      news.phase = e.alert.phase;
      news.evidence = e.alert.evidence;
      for (const auto& c : e.alert.culprits) {
        admission::ip_prefix p;
        if (admission::parse_prefix(c.key, &p)) news.culprits.push_back(p);
      }
      n.alert = std::move(news);
    } else {
      return;
    }
    if (auto gw = ctx->stages.gateway.get()) caf::anon_send<caf::message_priority::high>(gw, std::move(n));
  }

  // Binds the front end, then drops root when configured to. On failure the stages are stopped again.
  int open_the_door() {
    std::string error;
    if (!frontend_->start(&error) || (http_ && !http_->start(&error)) ||
        (!cfg_.user.empty() && !drop_privileges(cfg_.user, &error))) {
      spdlog::critical("{}", error);
      stop_stages();
      return 1;
    }
    if (!cfg_.user.empty()) spdlog::info("running as user {} with no capabilities", cfg_.user);
    spdlog::info("rampartd ready: endpoint {}, HTTP {}, metrics {}, alerts {} (config: {})",
                 frontend_->bound_endpoint(), http_ ? "http://" + cfg_.http.listen + "/v1" : std::string("off"),
                 cfg_.metrics.enabled ? "http://" + cfg_.metrics.listen + "/metrics" : std::string("off"),
                 monitor_ && !monitor_->alerts_endpoint().empty() ? monitor_->alerts_endpoint() : std::string("off"),
                 cfg_.source);
    return 0;
  }

  // Until SIGINT or SIGTERM (true), or a stage the supervisor gave up on (false): SIGHUP reloads the
  // configuration, the accounts and the policy; the policy file is also polled for changes.
  bool serve_until_signal() {
    int64_t policy_mtime = file_mtime_ns(cfg_.admission.policy_file);
    const int64_t poll_ms = cfg_.admission.policy_poll_ms > 0 ? cfg_.admission.policy_poll_ms : 1000;
    for (;;) {
      timespec wait{poll_ms / 1000, (poll_ms % 1000) * 1000000};
      const int sig = sigtimedwait(&signals_, nullptr, &wait);
      if (const std::string stage = context_->directory.given_up(); !stage.empty()) {
        spdlog::critical("stage {} keeps crashing: draining and exiting with status 3", stage);
        return false;
      }
      if (sig < 0) {  // timeout: has the policy file changed?
        if (cfg_.admission.policy_poll_ms > 0) {
          const int64_t m = file_mtime_ns(cfg_.admission.policy_file);
          if (m != policy_mtime) {
            policy_mtime = m;
            reload_policy(context_.get());
          }
        }
        continue;
      }
      if (sig == SIGUSR2) {
        inject_fault();
        continue;
      }
      if (sig == SIGHUP) {
        reload(options_, context_.get());
        reload_policy(context_.get());
        policy_mtime = file_mtime_ns(cfg_.admission.policy_file);
        if (monitor_) monitor_->reopen_logs();
        continue;
      }
      spdlog::info("{} received: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
      return true;
    }
  }

  // Graceful drain: new generations are shed, running ones get up to the drain timeout to finish.
  void drain() {
    context_->draining = true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (context_->counters.requests_in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (context_->counters.requests_in_flight.load() > 0) {
      spdlog::warn("drain timeout: {} request(s) still running end with an error",
                   context_->counters.requests_in_flight.load());
    }
    stop_stages();  // stage destructors send the terminal events of what was still running
    metrics_.stop_serving();  // /readyz said 503 (draining) until here
    if (http_) http_->stop();  // after the terminal events: it writes what is queued, then closes
    frontend_->stop();
    zap_->stop();
    if (monitor_) monitor_->stop();
    spdlog::info("rampartd stopped cleanly");
    spdlog::default_logger()->flush();
  }

  void stop_stages() {
    caf::anon_send_exit(supervisor_, caf::exit_reason::user_shutdown);
    system_->await_all_actors_done();
    context_->stages.clear();
  }

  const server_options& options_;
  const config::server_config& cfg_;
  sigset_t signals_{};
  std::unique_ptr<server_context> context_;
  net::server_metrics metrics_;
  std::unique_ptr<monitor_service> monitor_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<gateway_bridge> bridge_;
  std::unique_ptr<net::frontend> frontend_;
  std::unique_ptr<net::http_door> http_;
  std::unique_ptr<net::zap_handler> zap_;
  std::unique_ptr<net::curve_gate> curve_;
  caf::actor supervisor_;
};

}  // namespace

int run_server(const server_options& options) { return server(options).run(); }

}  // namespace rampart::actors
