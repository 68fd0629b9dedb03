// rampartd: the Rampart server.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "actors/logging.hpp"
#include "actors/server.hpp"
#include "actors/shard_server.hpp"
#include "config/policy.hpp"
#include "config/server_config.hpp"
#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampartd [--config FILE] [--check-config FILE] [--endpoint EP] [--metrics-listen ADDR|off]\n"
    "                [--alerts-publish EP|off] [--http-listen ADDR|off]\n"
    "                [--model DIR] [--tokenizer DIR] [--log-format text|json] [--log-level LEVEL]\n"
    "                [--fault-injection FILE] [--help] [--version]\n"
    "       rampartd --role shard --shard-id K --listen EP --model DIR [--shards N] [--threads N] [--config FILE]\n"
    "\n"
    "Serves DeepSeek-V3-architecture models over ZeroMQ (docs/protocol.md) and OpenAI's HTTP API\n"
    "(docs/http-api.md).\n"
    "  --config FILE        server configuration (TOML); default: the embedded config/rampart.toml\n"
    "  --check-config FILE  validate FILE (a server config, or a policy file when its root has [policy])\n"
    "                       and exit: 0 when valid, 2 with file:line:column when not\n"
    "  --endpoint EP        override [frontend].endpoint, e.g. tcp://127.0.0.1:5555\n"
    "  --metrics-listen A   override [metrics].listen (host:port), or off\n"
    "  --alerts-publish EP  override [alerts].publish (the operators' alert stream), or off\n"
    "  --http-listen A      override [http].listen (the OpenAI-compatible HTTP door, host:port), or off\n"
    "  --model DIR          override [model].path (a Hugging Face checkpoint directory)\n"
    "  --tokenizer DIR      override [model].tokenizer\n"
    "  --log-format FMT     text (default) or json lines\n"
    "  --log-level LEVEL    trace, debug, info, warn, error, critical, off\n"
    "  --fault-injection F  for crash tests only: on SIGUSR2, kill the stage named in file F as a crash would\n"
    "                       (gateway, registrar, tokenizer-N, scheduler, detokenizer, shard-K)\n"
    "Signals: SIGINT/SIGTERM drain and exit 0; SIGHUP reloads the configuration file.\n";

// Command-line settings that override the configuration file's.
struct overrides {
  std::string config_path, check_path, endpoint, metrics_listen, alerts_publish, http_listen, model, tokenizer,
      log_format, log_level, fault_file;
};

overrides read_flags(rampart::tools::flags& f) {
  overrides o;
  while (f.next()) {
    if (f.is("--version")) {
      std::printf("rampartd %s\n", RAMPART_VERSION);
      std::exit(0);
    }
    if (f.is("--config")) o.config_path = f.value();
    else if (f.is("--check-config")) o.check_path = f.value();
    else if (f.is("--endpoint")) o.endpoint = f.value();
    else if (f.is("--metrics-listen")) o.metrics_listen = f.value();
    else if (f.is("--alerts-publish")) o.alerts_publish = f.value();
    else if (f.is("--http-listen")) o.http_listen = f.value();
    else if (f.is("--model")) o.model = f.value();
    else if (f.is("--tokenizer")) o.tokenizer = f.value();
    else if (f.is("--fault-injection")) o.fault_file = f.value();
    else if (f.is("--log-format")) {
      o.log_format = f.value();
      if (o.log_format != "text" && o.log_format != "json") f.fail("--log-format must be text or json");
    } else if (f.is("--log-level")) {
      o.log_level = f.value();
      if (spdlog::level::from_str(o.log_level) == spdlog::level::off && o.log_level != "off") {
        f.fail("unknown log level " + o.log_level);
      }
    } else f.unknown();
  }
  return o;
}

// --check-config FILE: a policy file when its root has [policy], otherwise a server configuration.
int check_config(const std::string& path) {
  rampart::config::config_error err;
  const bool policy = rampart::config::is_policy_file(path);
  bool ok;
  if (policy) {
    rampart::config::policy checked;
    ok = rampart::config::load_policy(path, &checked, &err);
  } else {
    rampart::config::server_config checked;
    ok = rampart::config::load_server_config(path, &checked, &err);
  }
  if (!ok) {
    std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 2;
  }
  std::printf("%s: ok%s\n", path.c_str(), policy ? " (policy)" : "");
  return 0;
}

// The configuration file (or the embedded default) with the command line's overrides applied.
bool load_config(const overrides& o, rampart::actors::server_options* options) {
  rampart::config::config_error err;
  const bool loaded = o.config_path.empty()
                          ? rampart::config::parse_server_config(rampart::config::embedded_default_config(),
                                                                 "<embedded default>", "", &options->config, &err)
                          : rampart::config::load_server_config(o.config_path, &options->config, &err);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return false;
  }
  options->config_path = o.config_path;
  auto& cfg = options->config;
  if (!o.endpoint.empty()) cfg.frontend.endpoint = o.endpoint;
  if (o.metrics_listen == "off") {
    cfg.metrics.enabled = false;
  } else if (!o.metrics_listen.empty()) {
    cfg.metrics.enabled = true;
    cfg.metrics.listen = o.metrics_listen;
  }
  if (o.http_listen == "off") {
    cfg.http.enabled = false;
  } else if (!o.http_listen.empty()) {
    cfg.http.enabled = true;
    cfg.http.listen = o.http_listen;
  }
  if (o.alerts_publish == "off") {
    cfg.alerts.publish.clear();
  } else if (!o.alerts_publish.empty()) {
    cfg.alerts.publish = o.alerts_publish;
  }
  if (!o.model.empty()) {
    cfg.model.path = o.model;
    if (o.tokenizer.empty() && cfg.model.tokenizer.empty()) cfg.model.tokenizer = o.model;
  }
  if (!o.tokenizer.empty()) cfg.model.tokenizer = o.tokenizer;
  if (!o.log_format.empty()) cfg.log.format = o.log_format;
  if (!o.log_level.empty()) cfg.log.level = o.log_level;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // An expert-shard process takes its own flags (actors/shard_server.hpp).
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--role") == 0) return rampart::actors::shard_main(argc, argv);
  rampart::tools::flags f(argc, argv, "rampartd", kUsage);
  const overrides o = read_flags(f);
  if (!o.check_path.empty()) return check_config(o.check_path);
  rampart::actors::server_options options;
  if (!load_config(o, &options)) return 2;
  options.fault_file = o.fault_file;
  std::string error;
  if (!rampart::actors::setup_logging(options.config.log, &error)) {
    std::fprintf(stderr, "rampartd: %s\n", error.c_str());
    return 2;
  }
  return rampart::actors::run_server(options);
}
