// rampartd: the Rampart server.
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "actors/logging.hpp"
#include "actors/server.hpp"
#include "actors/shard_server.hpp"
#include "config/policy.hpp"
#include "config/server_config.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampartd [--config FILE] [--check-config FILE] [--endpoint EP] [--metrics-listen ADDR|off]\n"
    "                [--alerts-publish EP|off]\n"
    "                [--model DIR] [--tokenizer DIR] [--log-format text|json] [--log-level LEVEL]\n"
    "                [--help] [--version]\n"
    "       rampartd --role shard --shard-id K --listen EP --model DIR [--shards N] [--threads N]\n"
    "\n"
    "Serves DeepSeek-V3-architecture models over ZeroMQ (docs/protocol.md).\n"
    "  --config FILE        server configuration (TOML); default: the embedded config/rampart.toml\n"
    "  --check-config FILE  validate FILE (a server config, or a policy file when its root has [policy])\n"
    "                       and exit: 0 when valid, 2 with file:line:column when not\n"
    "  --endpoint EP        override [frontend].endpoint, e.g. tcp://127.0.0.1:5555\n"
    "  --metrics-listen A   override [metrics].listen (host:port), or off\n"
    "  --alerts-publish EP  override [alerts].publish (the operators' alert stream), or off\n"
    "  --model DIR          override [model].path (a Hugging Face checkpoint directory)\n"
    "  --tokenizer DIR      override [model].tokenizer\n"
    "  --log-format FMT     text (default) or json lines\n"
    "  --log-level LEVEL    trace, debug, info, warn, error, critical, off\n"
    "Signals: SIGINT/SIGTERM drain and exit 0; SIGHUP reloads the configuration file.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "rampartd: %s\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // An expert-shard process takes its own flags (actors/shard_server.hpp).
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--role") == 0) return rampart::actors::shard_main(argc, argv);
  std::string config_path, check_path, endpoint, metrics_listen, alerts_publish, model, tokenizer, log_format, log_level;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("rampartd %s\n", RAMPART_VERSION);
      return 0;
    } else if (arg == "--config") {
      if (!value(&config_path)) return usage_error("--config needs a file");
    } else if (arg == "--check-config") {
      if (!value(&check_path)) return usage_error("--check-config needs a file");
    } else if (arg == "--endpoint") {
      if (!value(&endpoint)) return usage_error("--endpoint needs a value");
    } else if (arg == "--metrics-listen") {
      if (!value(&metrics_listen)) return usage_error("--metrics-listen needs host:port or off");
    } else if (arg == "--alerts-publish") {
      if (!value(&alerts_publish)) return usage_error("--alerts-publish needs an endpoint or off");
    } else if (arg == "--model") {
      if (!value(&model)) return usage_error("--model needs a directory");
    } else if (arg == "--tokenizer") {
      if (!value(&tokenizer)) return usage_error("--tokenizer needs a directory");
    } else if (arg == "--log-format") {
      if (!value(&log_format) || (log_format != "text" && log_format != "json")) {
        return usage_error("--log-format must be text or json");
      }
    } else if (arg == "--log-level") {
      if (!value(&log_level)) return usage_error("--log-level needs a level");
    } else {
      return usage_error("unknown option " + arg);
    }
  }

  rampart::config::config_error err;
  if (!check_path.empty() && rampart::config::is_policy_file(check_path)) {
    rampart::config::policy checked;
    if (!rampart::config::load_policy(check_path, &checked, &err)) {
      std::fprintf(stderr, "%s\n", err.to_string().c_str());
      return 2;
    }
    std::printf("%s: ok (policy)\n", check_path.c_str());
    return 0;
  }
  if (!check_path.empty()) {
    rampart::config::server_config checked;
    if (!rampart::config::load_server_config(check_path, &checked, &err)) {
      std::fprintf(stderr, "%s\n", err.to_string().c_str());
      return 2;
    }
    std::printf("%s: ok\n", check_path.c_str());
    return 0;
  }

  rampart::actors::server_options options;
  if (config_path.empty()) {
    if (!rampart::config::parse_server_config(rampart::config::embedded_default_config(),
                                              "<embedded default>", "", &options.config, &err)) {
      std::fprintf(stderr, "%s\n", err.to_string().c_str());
      return 2;
    }
  } else if (!rampart::config::load_server_config(config_path, &options.config, &err)) {
    std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 2;
  }
  options.config_path = config_path;
  auto& cfg = options.config;
  if (!endpoint.empty()) cfg.frontend.endpoint = endpoint;
  if (metrics_listen == "off") {
    cfg.metrics.enabled = false;
  } else if (!metrics_listen.empty()) {
    cfg.metrics.enabled = true;
    cfg.metrics.listen = metrics_listen;
  }
  if (alerts_publish == "off") {
    cfg.alerts.publish.clear();
  } else if (!alerts_publish.empty()) {
    cfg.alerts.publish = alerts_publish;
  }
  if (!model.empty()) {
    cfg.model.path = model;
    if (tokenizer.empty() && cfg.model.tokenizer.empty()) cfg.model.tokenizer = model;
  }
  if (!tokenizer.empty()) cfg.model.tokenizer = tokenizer;
  if (!log_format.empty()) cfg.log.format = log_format;
  if (!log_level.empty()) {
    if (spdlog::level::from_str(log_level) == spdlog::level::off && log_level != "off") {
      return usage_error("unknown log level " + log_level);
    }
    cfg.log.level = log_level;
  }

  std::string error;
  if (!rampart::actors::setup_logging(cfg.log, &error)) {
    std::fprintf(stderr, "rampartd: %s\n", error.c_str());
    return 2;
  }
  return rampart::actors::run_server(options);
}
