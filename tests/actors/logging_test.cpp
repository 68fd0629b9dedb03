// Text and JSON log lines keep one line per message whatever a client put into the message.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include <fstream>
#include <sstream>

#include "actors/logging.hpp"
#include "tests/support/paths.hpp"

using namespace rampart;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string log_one(const std::string& format, const std::string& client_text) {
  const std::string path = test::make_temp_dir("rampart-log") + "/rampart.log";
  config::log_config cfg;
  cfg.format = format;
  cfg.file = path;
  std::string error;
  REQUIRE(actors::setup_logging(cfg, &error));
  spdlog::info("request {} would be shed", client_text);
  spdlog::default_logger()->flush();
  spdlog::drop_all();
  return read_all(path);
}

// A request id that tries to end the line, forge an error line and recolour the terminal.
const std::string kForgery = "r1\n2026-01-01 00:00:00.000 error [rampart] forged\x1b[31m\r\x7f";

}  // namespace

TEST_CASE("a text log line escapes newlines and control characters from a client's string", "[logging]") {
  const std::string text = log_one("text", kForgery);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);  // the line's own end only
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find("r1\\n2026-01-01 00:00:00.000 error [rampart] forged\\x1b[31m\\r\\x7f would be shed") !=
        std::string::npos);
}

TEST_CASE("a JSON log line stays one JSON object whatever the client's string holds", "[logging]") {
  const std::string text = log_one("json", kForgery);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  auto line = nlohmann::json::parse(text);
  CHECK(line["msg"] == "request " + kForgery + " would be shed");
}
