// What /healthz, /readyz and pong report: the stages' health, and every reason the server cannot serve now.
#include <catch2/catch.hpp>

#include "actors/context.hpp"
#include "actors/gateway.hpp"

using namespace rampart;

TEST_CASE("readiness lists every reason the server cannot serve, and health only the stages", "[actors]") {
  actors::server_context ctx;
  ctx.directory.set_up("gateway", true);
  ctx.directory.set_up("scheduler", true);
  // No model loaded: healthy, not ready.
  CHECK(actors::stages_healthy(ctx));
  CHECK(actors::not_ready_reasons(ctx) == std::vector<std::string>{"no model is loaded"});

  ctx.model.emplace();
  CHECK(actors::not_ready_reasons(ctx).empty());
  CHECK(actors::health_report(ctx)["ready"] == true);
  CHECK(actors::health_report(ctx)["status"] == "ok");

  ctx.directory.set_up("scheduler", false);  // restarting
  CHECK_FALSE(actors::stages_healthy(ctx));
  CHECK(actors::not_ready_reasons(ctx) == std::vector<std::string>{"stage scheduler is down"});
  CHECK(actors::health_report(ctx)["status"] == "degraded");

  ctx.draining = true;
  CHECK(actors::not_ready_reasons(ctx) == std::vector<std::string>{"stage scheduler is down", "draining"});
  CHECK(actors::health_report(ctx)["status"] == "draining");
  CHECK(actors::health_report(ctx)["not_ready"] == nlohmann::json::array({"stage scheduler is down", "draining"}));

  ctx.draining = false;
  ctx.directory.set_up("scheduler", true);
  ctx.directory.set_given_up("tokenizer-0");  // crashed past the restart policy
  CHECK_FALSE(actors::stages_healthy(ctx));
  CHECK(actors::not_ready_reasons(ctx) == std::vector<std::string>{"stage tokenizer-0 was given up"});
}
