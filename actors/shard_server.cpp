#include "actors/shard_server.hpp"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "base/device_name.hpp"
#include "config/server_config.hpp"
#include "engine/engine.hpp"
#include "net/shard_link.hpp"
#include "shards/expert_placement.hpp"
#include "shards/shard_compute.hpp"
#if RAMPART_WITH_CUDA
#include "gpu/cuda_engine.hpp"
#endif

namespace rampart::actors {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) { g_stop.store(true); }

void print_bound(const std::string& endpoint) {
  std::fprintf(stderr, "rampartd shard: ready on %s\n", endpoint.c_str());
  std::fflush(stderr);
}

bool parse_count(const char* text, long lo, long hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

bool parse_endpoint_list(const std::string& text, std::vector<std::string>* out, std::string* err) {
  out->clear();
  size_t at = 0;
  for (;;) {
    const size_t comma = text.find(',', at);
    const std::string ep = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (ep.empty()) {
      *err = "empty endpoint in '" + text + "'";
      return false;
    }
    out->push_back(ep);
    if (comma == std::string::npos) return true;
    at = comma + 1;
  }
}

std::shared_ptr<model::sharded_expert_backend> expert_shards_from_flags(std::shared_ptr<const model::checkpoint> ck,
                                                                        int n_in_process,
                                                                        const std::string& endpoints_csv,
                                                                        int threads, std::string* err) {
  expert_shards_options so;
  so.in_process = n_in_process;
  so.threads = threads;
  if (!endpoints_csv.empty() && !parse_endpoint_list(endpoints_csv, &so.endpoints, err)) {
    *err = "--shard-endpoints: " + *err;
    return nullptr;
  }
  if ((n_in_process > 0) == !so.endpoints.empty()) {
    *err = "give either --shards N or --shard-endpoints, not both";
    return nullptr;
  }
  for (const std::string& ep : so.endpoints)
    if (!config::is_loopback_endpoint(ep)) {  // the tools hold no CURVE keys: a plain link, loopback only
      *err = "--shard-endpoints: " + ep + " is not loopback; shards on other hosts are reached by rampartd with " +
             "CURVE keys (docs/operations.md, \"Shards on other hosts\")";
      return nullptr;
    }
  return make_expert_shards(std::move(ck), so, err);
}

int run_shard(const shard_options& o) {
  model::load_error lerr;
  std::shared_ptr<const model::checkpoint> ck = model::checkpoint::open(o.model, &lerr);
  if (!ck) {
    std::fprintf(stderr, "rampartd shard: cannot load the model: %s\n", lerr.message.c_str());
    return 1;
  }
  std::string err;
  auto weights = model::load_shared_weights(ck, &err);
  if (!weights) {
    std::fprintf(stderr, "rampartd shard: cannot load the model: %s\n", err.c_str());
    return 1;
  }
  std::unique_ptr<model::expert_compute> owned;
  if (o.device >= 0) {
#if RAMPART_WITH_CUDA
    owned = gpu::cuda_shard_compute(o.device, weights, static_cast<int>(ck->config().hidden_size), &err);
    if (!owned) {
      std::fprintf(stderr, "rampartd shard: %s\n", err.c_str());
      return 1;
    }
#else
    std::fprintf(stderr, "rampartd shard: --device cuda:%d: this rampartd has no CUDA backend\n", o.device);
    return 1;
#endif
  } else {
    owned = std::make_unique<model::shard_compute>(weights, static_cast<int>(ck->config().hidden_size), o.threads);
  }
  model::expert_compute& compute = *owned;
  if (o.n_shards > 0) {
    model::expert_placement p;
    if (!model::expert_placement::contiguous(compute.n_experts(), o.n_shards, &p, &err) ||
        o.shard_id >= o.n_shards) {
      std::fprintf(stderr, "rampartd shard: --shards %d --shard-id %d: %s\n", o.n_shards, o.shard_id,
                   err.empty() ? "the shard id must be below the shard count" : err.c_str());
      return 1;
    }
    std::vector<int32_t> mine;
    for (int e : p.experts_of(o.shard_id)) mine.push_back(e);
    compute.warm(mine, &err);
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  net::shard_server_stats stats;
  // What one frame may ask of this shard: the attention rank's step slice of rows, the model's experts per row,
  // hidden size and expert count.
  model::shard_frame_limits limits;
  limits.max_rows = model::engine_options{}.max_step_tokens;
  limits.experts_per_row = ck->config().num_experts_per_tok;
  limits.hidden = ck->config().hidden_size;
  limits.n_experts = compute.n_experts();
  if (!o.keys.curve())  // shard_main allows this on loopback only
    std::fprintf(stderr, "rampartd shard: warning: the shard link is plain (no CURVE): anyone on this host can "
                         "send it frames\n");
  if (!net::serve_shard(o.listen, o.keys, compute, limits, g_stop, &stats, print_bound, &err)) {
    std::fprintf(stderr, "rampartd shard: %s\n", err.c_str());
    return 1;
  }
  std::fprintf(stderr,
               "rampartd shard %d: stopped after %llu batches (%llu items), %llu malformed frames, %llu connections "
               "refused for their key\n",
               o.shard_id, static_cast<unsigned long long>(stats.batches.load()),
               static_cast<unsigned long long>(stats.items.load()),
               static_cast<unsigned long long>(stats.malformed.load()),
               static_cast<unsigned long long>(stats.refused_keys.load()));
  return 0;
}

int shard_main(int argc, char** argv) {
  shard_options o;
  bool have_id = false;
  std::string config_file;
  auto bad = [](const std::string& m) {
    std::fprintf(stderr,
                 "rampartd: %s\nusage: rampartd --role shard --shard-id K --listen EP --model DIR [--shards N] "
                 "[--threads N] [--device cuda:N] [--config FILE]\n",
                 m.c_str());
    return 2;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return bad(a + " needs a value (or is unknown)");
    const char* v = argv[++i];
    if (a == "--role") {
      if (std::string(v) != "shard") return bad("--role must be shard");
    } else if (a == "--shard-id") {
      if (!parse_count(v, 0, 4095, &o.shard_id)) return bad("--shard-id needs an integer in [0, 4095]");
      have_id = true;
    } else if (a == "--shards") {
      if (!parse_count(v, 1, 4096, &o.n_shards)) return bad("--shards needs an integer in [1, 4096]");
    } else if (a == "--threads") {
      if (!parse_count(v, 0, 1024, &o.threads)) return bad("--threads needs an integer in [0, 1024]");
    } else if (a == "--device") {
      std::string derr;
      o.device = parse_device_name(v, &derr);
      if (o.device == -2) return bad("--device: " + derr);
    } else if (a == "--listen") {
      o.listen = v;
    } else if (a == "--model") {
      o.model = v;
    } else if (a == "--config") {
      config_file = v;
    } else {
      return bad("unknown option for --role shard: " + a);
    }
  }
  if (!have_id) return bad("--shard-id is required");
  if (o.listen.empty()) return bad("--listen is required");
  if (o.model.empty()) return bad("--model is required");
  if (!config_file.empty()) {
    config::server_config cfg;
    config::config_error cerr;
    if (!config::load_server_config(config_file, &cfg, &cerr)) {
      std::fprintf(stderr, "rampartd: %s\n", cerr.to_string().c_str());
      return 2;
    }
    o.keys.public_key = cfg.shard.curve_public_key;
    o.keys.secret_key = cfg.shard.curve_secret_key;
    o.keys.peer_keys = cfg.shard.client_keys;
  }
  if (!o.keys.curve() && !config::is_loopback_endpoint(o.listen))
    return bad("--listen " + o.listen +
               " is not loopback: a shard off loopback must be authenticated (give --config with a [shard] section "
               "naming curve_key_file and client_keys)");
  return run_shard(o);
}

}  // namespace rampart::actors
