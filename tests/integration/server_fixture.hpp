// A rampartd process serving the end-to-end test model on free loopback ports.
#pragma once

#include <catch2/catch.hpp>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "net/client.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

namespace rampart::test {

struct model_server {
  int port = free_port();
  int metrics_port = free_port();
  int alerts_port = free_port();
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  std::string config_path;
  std::unique_ptr<child_process> proc;

  // FRONTEND_EXTRA goes into the [frontend] table of the generated config, EXTRA_TOML at its end; EXTRA_ARGS
  // follow --config on rampartd's command line.
  explicit model_server(const std::string& frontend_extra = "", const std::string& extra_toml = "",
                        const std::vector<std::string>& extra_args = {}) {
    auto dir = make_temp_dir("rampart-it");
    config_path = dir + "/rampart.toml";
    std::ofstream(config_path) << "[frontend]\nendpoint = \"" << endpoint << "\"\n"
                               << "tcp_keepalive_idle_s = 1\ntcp_keepalive_intvl_s = 1\ntcp_keepalive_cnt = 2\n" << frontend_extra
                               << "[model]\npath = \"" << RAMPART_SERVER_MODEL_DIR << "\"\n"
                               << "tokenizer = \"" << tokenizer_dir() << "\"\n"
                               << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port << "\"\n"
                               << "[alerts]\npublish = \"tcp://127.0.0.1:" << alerts_port << "\"\n"
                               << extra_toml;
    std::vector<std::string> args{"--config", config_path};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    proc = std::make_unique<child_process>(bin("rampartd"), args);
    bool ready = proc->wait_ready([&] {
      net::client c;
      c.connect(endpoint, nullptr);
      return c.ping(std::chrono::milliseconds(200));
    }, std::chrono::seconds(30));
    INFO(proc->log());
    REQUIRE(ready);
  }
};

}  // namespace rampart::test
