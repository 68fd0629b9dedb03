// The operators' web dashboard in a real browser: rampartd serves it, headless Chromium (Debian's, driven over
// the DevTools protocol by tests/integration/dashboard/browser_check.py) opens it, the project's own flood tool
// makes the monitor raise an alert, and the page must show the alert and the level change within 2 s of the
// monitor raising them, with no script or policy error. The screenshot is kept in build/test-artifacts/.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/integration/server_fixture.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/process.hpp"

using namespace rampart;
using nlohmann::json;

TEST_CASE("the dashboard in headless Chromium shows a registration flood's alert and level change within 2 s",
          "[integration][dashboard]") {
  const std::string dir = test::make_temp_dir("rampart-dashboard");
  test::model_server server("", "[admission]\naccounts_db = \"" + dir + "/accounts.db\"\n");
  const std::string url = "http://127.0.0.1:" + std::to_string(server.metrics_port) + "/";
  const std::string artifacts = test::bin_dir() + "/../test-artifacts";
  std::string out;
  const int rc = test::run_command(
      "/usr/bin/python3",
      {test::source_dir() + "/tests/integration/dashboard/browser_check.py", url, artifacts, "registration_flood",
       "--", test::bin("rampart-flood"), "--kind", "register", "--target", "127.0.0.1:" + std::to_string(server.port),
       "--rate", "300", "--duration", "2"},
      &out);
  INFO(out);
  INFO(server.proc->log());
  CHECK(rc == 0);
  json r;  // the script's one JSON line (stderr may hold other lines)
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("{\"detector\"", 0) == 0) r = json::parse(line, nullptr, false);
  }
  REQUIRE(r.is_object());
  CHECK(r.value("charts", 0) == 5);  // every Chart.js chart was built: the library loaded under the page's CSP
  REQUIRE(r.contains("alert_shown_ms_after_raised"));
  CHECK(r["alert_shown_ms_after_raised"].get<double>() <= 2000);
  REQUIRE(r.contains("level_shown_ms_after_change"));
  CHECK(r["level_shown_ms_after_change"].get<double>() <= 2000);
  CHECK(r["level"] != "green");
  CHECK(r["page_errors"].empty());
  std::ifstream png(artifacts + "/dashboard.png", std::ios::binary);
  char magic[8] = {0};
  png.read(magic, 8);
  CHECK(std::string(magic, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
}
