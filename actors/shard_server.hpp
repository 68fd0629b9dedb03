// Expert shards as rampartd and the tools see them: the sharded backend for an engine (in-process shard actors
// or `rampartd --role shard` processes), and the shard process's entry point. Plain C++: users do not compile CAF.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.hpp"
#include "net/shard_link.hpp"
#include "shards/shard_transport.hpp"
#include "shards/sharded_expert_backend.hpp"

namespace rampart::actors {

struct expert_shards_options {
  int in_process = 0;                  // > 0: this many shard actors
  std::vector<std::string> endpoints;  // else: one `rampartd --role shard` process per endpoint
  int deadline_ms = 1000;              // per MoE layer exchange
  int step_deadline_ms = 0;            // all MoE layers of one forward pass (0: none)
  int threads = 0;                     // in-process: threads of all shards together (0: all cores)
  std::vector<int> cpus;               // in-process: the CPUs their threads run on (empty: anywhere)
  int connect_timeout_ms = 10000;      // processes: how long to wait for every shard to answer a ping
  bool require_connected = true;       // false: start even when shards do not answer yet (they may come later)
  net::shard_link_keys keys;           // processes: CURVE (this rank's keypair, each shard's public key) or plain
  model::sharded_options backend;      // its deadline is taken from deadline_ms
};

// The sharded backend for CK with a contiguous placement. nullptr + *err when the options are inconsistent
// (no shards, both kinds, more shards than experts), an endpoint is malformed, or (require_connected) a shard
// process does not answer within connect_timeout_ms. *TRANSPORT, when given, receives the transport.
std::shared_ptr<model::sharded_expert_backend> make_expert_shards(
    std::shared_ptr<const model::checkpoint> ck, const expert_shards_options& options, std::string* err,
    std::shared_ptr<model::shard_transport>* transport = nullptr);

// For command-line tools: N_IN_PROCESS shard actors (> 0), or the comma-separated ENDPOINTS_CSV (loopback only:
// a plain link), with the default deadline. nullptr + *err when both or neither are given, an endpoint is not
// loopback, or make_expert_shards fails.
std::shared_ptr<model::sharded_expert_backend> expert_shards_from_flags(std::shared_ptr<const model::checkpoint> ck,
                                                                        int n_in_process,
                                                                        const std::string& endpoints_csv,
                                                                        int threads, std::string* err);

// "tcp://a:1,tcp://b:2" -> its endpoints. False + *err for an empty list or an empty entry.
bool parse_endpoint_list(const std::string& text, std::vector<std::string>* out, std::string* err);

struct shard_options {
  int shard_id = 0;
  int n_shards = 0;    // > 0: warm the contiguous share of shard_id at start (the default placement)
  std::string listen;  // e.g. tcp://127.0.0.1:7001
  std::string model;   // checkpoint directory
  int threads = 0;     // 0: all cores
  int device = -1;     // >= 0: the experts run on CUDA device N (`--device cuda:N`), else on the CPU
  net::shard_link_keys keys;  // CURVE (this shard's keypair, the attention ranks' public keys) or plain
};

// Serves the experts of OPTIONS.model on OPTIONS.listen until SIGINT or SIGTERM. Returns the exit code:
// 0 after a signal, 1 when the model cannot be loaded or the endpoint bound (the reason on stderr).
int run_shard(const shard_options& options);

// `rampartd --role shard --shard-id K --listen EP --model DIR [--shards N] [--threads N] [--device cuda:N]
// [--config FILE]`:
// parses ARGV (rampartd's own) and runs the shard. FILE is a rampartd configuration whose [shard] section gives
// the CURVE keys; without them the shard serves a plain link, which it refuses to do on an --listen endpoint
// that is not loopback. Exit code 2 for bad arguments or a bad configuration.
int shard_main(int argc, char** argv);

}  // namespace rampart::actors
