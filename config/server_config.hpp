// rampartd's configuration: the schema of config/rampart.toml with its defaults, and a strict parser.
// The shipped config/rampart.toml is embedded in the binary and is what rampartd runs with when given no file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "monitor/monitor_config.hpp"

namespace rampart::config {

struct frontend_config {
  std::string endpoint = "tcp://127.0.0.1:5555";
  int64_t max_message_size = 1 << 20;  // ZMQ_MAXMSGSIZE, bytes per message
  int64_t handshake_ivl_ms = 2000;     // ZMQ_HANDSHAKE_IVL
  int64_t rcvhwm = 64;                 // ZMQ_RCVHWM, messages queued per connection before its reads pause
  int64_t sndhwm = 1000;               // ZMQ_SNDHWM, events queued per connection; a client that lets more pile
                                       // up is too slow: its requests are cancelled and its connection dropped
  // The most one connection's received-but-unread messages may hold: rcvhwm x max_message_size must fit.
  int64_t connection_memory_budget = int64_t{64} << 20;
  int64_t backlog = 256;               // ZMQ_BACKLOG
  bool router_mandatory = true;        // ZMQ_ROUTER_MANDATORY
  // ZMTP heartbeats must stay off on the front end (0): libzmq 4.3.4 aborts the whole process when a heartbeat
  // falls due on a connection whose reads were paused at rcvhwm and which then failed, which any client can
  // bring about by flooding and resetting its connection. Vanished hosts are found by TCP keepalive instead.
  int64_t heartbeat_ivl_ms = 0;
  int64_t heartbeat_timeout_ms = 0;
  int64_t heartbeat_ttl_ms = 0;
  int64_t tcp_keepalive_idle_s = 10;  // TCP keepalive: first probe after this much silence
  int64_t tcp_keepalive_intvl_s = 2;  // then one probe every this many seconds
  int64_t tcp_keepalive_cnt = 3;      // the connection is dead after this many unanswered probes
  // Bytes one source (a CURVE tenant, else an address) may have read and decoded per second, and its burst
  // (at least max_message_size + 256); past it a message is shed rate_limited before it is decoded.
  int64_t source_bytes_per_s = int64_t{8} << 20;
  int64_t source_burst_bytes = int64_t{16} << 20;
  int64_t connection_messages_per_s = 500;  // messages one connection may have decoded per second
  int64_t connection_message_burst = 1000;
  int64_t max_prompt_tokens = 8192;    // longer prompts are refused with prompt_too_long
  int64_t max_tokens_limit = 4096;     // largest max_tokens a request may ask for
  int64_t max_stop_strings = 8;
  int64_t max_queued_requests = 1024;  // requests waiting for the engine; beyond this: shed over_capacity
  // CURVE: the server's keypair file (config/curve_keys.hpp); empty: NULL security (no encryption, anyone may
  // connect unless deny-listed). Loaded and checked with the configuration; the keys stay in memory only.
  std::string curve_key_file;
  std::string curve_public_key;  // from curve_key_file
  std::string curve_secret_key;  // from curve_key_file; never logged
};

struct model_config {
  std::string path;       // Hugging Face checkpoint directory (config.json + safetensors); empty: no model
  std::string tokenizer;  // directory with tokenizer.json + tokenizer_config.json; empty: same as path
};

struct engine_config {
  int64_t threads = 0;            // 0: all cores
  // CPUs the engine's threads run on; every other thread of the process (network, actors, capture) is kept
  // off them when CPUs are left for it. Empty: no pinning.
  std::vector<int64_t> cpus;
  bool pack_weights = true;       // rewrite the matrices into the kernels' layout at load (model::engine_options)
  std::string device = "cpu";     // where the forward pass runs: "cpu" or "cuda:N" (model::engine_options::device)
  std::string precision = "exact";  // on a GPU: "exact" or "fast" (gpu::precision)
  int64_t kv_block_size = 16;     // tokens per KV block
  int64_t kv_blocks = 4096;       // blocks in the pool
  int64_t max_batch_sequences = 64;
  int64_t max_step_tokens = 512;  // per-step token budget (prefill chunks + decode tokens)
  // Budgeted (anonymous, sheddable) work that runs alone stays rationed this long after other work last ran
  // (model::scheduler_options::budget_guard_s).
  int64_t budget_guard_ms = 100;
  int64_t shards = 1;             // in-process expert shards
  std::vector<std::string> shard_endpoints;  // expert shards in `rampartd --role shard` processes
  int64_t shard_deadline_ms = 1000;  // per MoE layer, all shards must answer within this, else the step fails
  int64_t shard_step_deadline_ms = 30000;  // all MoE layers of a step (or slice) together; 0: no such limit
  // A shard whose answer time per expert of its batches averages more than this many times its peers' median is
  // marked slow for shard_slow_hold_ms: replicas of its experts take its work (0: never marked).
  double shard_slow_factor = 4.0;
  int64_t shard_slow_hold_ms = 10000;
  // CURVE on the shard link: this rank's keypair file and each shard's public key (Z85, in the order of
  // shard_endpoints). Without them the link is plain, which is allowed to loopback endpoints only.
  std::string shard_curve_key_file;
  std::vector<std::string> shard_server_keys;
  std::string shard_curve_public_key;  // from shard_curve_key_file
  std::string shard_curve_secret_key;  // from shard_curve_key_file; never logged
  int64_t rebalance_window_steps = 0;  // > 0: plan an EPLB rebalance after every window of this many steps
  int64_t rebalance_replicas = 0;      // extra expert copies an automatic rebalance may place
};

// [shard]: read by an expert-shard process (`rampartd --role shard --config FILE`), ignored by the server.
struct shard_config {
  // CURVE: this shard's keypair file and the public keys (Z85) of the attention ranks allowed to connect.
  // Without them the shard serves a plain link, which it allows on a loopback --listen endpoint only.
  std::string curve_key_file;
  std::vector<std::string> client_keys;
  std::string curve_public_key;  // from curve_key_file
  std::string curve_secret_key;  // from curve_key_file; never logged
};

struct metrics_config {
  bool enabled = true;
  std::string listen = "127.0.0.1:9464";
  bool dashboard = true;  // the web dashboard beside /metrics (net/http_listener.hpp)
  // A file holding the operator token the dashboard asks for (16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -,
  // one line). Required when `listen` is off loopback and the dashboard is on.
  std::string operator_token_file;
  std::string operator_token;  // read from operator_token_file
};

// [http]: the OpenAI-compatible HTTP door (net/http_door.hpp). Its body and JSON limits are [frontend]'s.
struct http_config {
  bool enabled = false;
  std::string listen = "127.0.0.1:8000";
  int64_t max_header_bytes = 8192;
  int64_t max_headers = 64;
  int64_t header_timeout_ms = 5000;
  int64_t body_timeout_ms = 10000;
  int64_t idle_timeout_ms = 60000;
  int64_t write_timeout_ms = 30000;
  int64_t max_pending_bytes = 1 << 20;
  int64_t max_connections = 4096;
  int64_t max_connections_per_source = 256;
};

struct actors_config {
  std::string scheduler_policy = "sharing";  // CAF scheduler: sharing or stealing
  int64_t max_threads = 0;                   // 0: number of cores
  int64_t request_timeout_ms = 5000;         // timeout on requests between stages
};

struct alerts_config {
  bool enabled = true;                         // run the packet monitor and publish its events
  std::string publish = "tcp://127.0.0.1:5556";  // ZeroMQ PUB socket for operators; "" = none
};

struct admission_config {
  std::string policy_file;  // load-shedding policy (docs/policy.md); empty: the embedded config/policy.toml
  std::string accounts_db;  // SQLite tenant database; empty: no accounts (every request is anonymous)
  std::string registration_class = "trial";  // class of tenants created through `register`
  int64_t policy_poll_ms = 1000;  // how often the policy file's modification time is checked (0: only SIGHUP)
  // Tenants of registration_class that never made a request are deleted this long after registering (0: never).
  int64_t trial_ttl_s = 86400;
};

struct log_config {
  std::string level = "info";   // trace, debug, info, warn, error, critical, off
  std::string format = "text";  // text or json
  std::string file;             // empty: stderr
};

struct server_config {
  std::string name = "rampart";
  // Non-empty: once the capture handle and every socket are open, rampartd switches to this user (and its
  // group) and keeps no capability. Empty: it keeps running as whoever started it.
  std::string user;
  std::string source = "<embedded default>";  // where this config came from
  frontend_config frontend;
  model_config model;
  engine_config engine;
  shard_config shard;
  metrics_config metrics;
  http_config http;
  actors_config actors;
  alerts_config alerts;
  admission_config admission;
  monitor::monitor_config monitor;  // [monitor]: capture, windows, detectors (config/monitor_config.hpp)
  log_config log;
};

// Parses TEXT (named FILE in errors) into *out, starting from the defaults above. Relative paths in [model]
// are resolved against BASE_DIR when it is not empty. Returns false with *err filled (file:line:column, key path)
// on a syntax error, an unknown key, a wrong type or an impossible value.
bool parse_server_config(std::string_view text, const std::string& file, const std::string& base_dir,
                         server_config* out, config_error* err);

// Reads and parses FILE; an unreadable file is an error with line 0. Relative paths resolve against the
// file's directory.
bool load_server_config(const std::string& file, server_config* out, config_error* err);

// Whether ENDPOINT stays on this host: ipc:// and inproc://, or tcp:// to localhost, 127.0.0.0/8 or ::1 (the
// address after `;` when a source address is given). A wildcard (`tcp://*:7001`) or any other host is not.
bool is_loopback_endpoint(std::string_view endpoint);

// The shipped config/rampart.toml, compiled in.
std::string_view embedded_default_config();

}  // namespace rampart::config
