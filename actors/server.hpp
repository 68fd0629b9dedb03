// rampartd's server: the actor system, the supervised stages and the front end, wired from a server_config.
// This header is plain C++ so the tools that start a server do not compile CAF.
#pragma once

#include <string>

#include "config/server_config.hpp"

namespace rampart::actors {

struct server_options {
  config::server_config config;
  std::string config_path;  // empty: the embedded default; SIGHUP re-reads this file
  // Tests only (`rampartd --fault-injection FILE`, never a configuration key): on SIGUSR2 the server reads FILE
  // and kills the stage it names as a crash would (gateway, registrar, tokenizer-N, scheduler, detokenizer, or
  // shard-K for an in-process expert shard). Empty: SIGUSR2 keeps its default action.
  std::string fault_file;
};

// Runs the server until SIGINT or SIGTERM (graceful drain: stop accepting, finish or cancel what is in flight,
// then return 0). SIGHUP reloads the configuration file. Returns a process exit code: 0 on a clean stop,
// 1 when the server could not start (the reason is logged).
int run_server(const server_options& options);

}  // namespace rampart::actors
