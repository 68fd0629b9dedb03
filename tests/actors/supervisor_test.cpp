#include <catch2/catch.hpp>

#include <thread>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"

using namespace rampart::actors;
using namespace std::chrono_literals;

namespace {

// Answers x with x + STEP. (Spawning with an argument also keeps clear of CAF 0.17's no-argument spawn path,
// which dereferences a null argument tuple and trips UBSan.)
caf::behavior echo_stage(caf::event_based_actor*, int step) {
  return {[step](int x) { return x + step; }};
}

caf::actor wait_for_new_handle(const stage_directory& dir, const caf::actor& old) {
  for (int i = 0; i < 200; ++i) {
    auto h = dir.get("echo");
    if (h && h != old) return h;
    std::this_thread::sleep_for(10ms);
  }
  return {};
}

}  // namespace

TEST_CASE("the supervisor restarts a stage that dies and the new one serves", "[actors]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  stage_directory dir;
  int spawned = 0;
  auto sup = spawn_supervisor(sys, {{"echo", [&](caf::actor_system& s) {
                                       ++spawned;
                                       return s.spawn(echo_stage, 1);
                                     }}},
                              &dir);
  caf::scoped_actor self{sys};
  caf::actor first;
  for (int i = 0; i < 200 && !first; ++i) {
    first = dir.get("echo");
    if (!first) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(first);
  int answer = 0;
  self->request(first, 1s, 41).receive([&](int r) { answer = r; }, [](caf::error&) {});
  CHECK(answer == 42);

  self->send_exit(first, caf::exit_reason::kill);
  auto second = wait_for_new_handle(dir, first);
  REQUIRE(second);
  CHECK(dir.restarts()["echo"] == 1);
  answer = 0;
  self->request(second, 1s, 1).receive([&](int r) { answer = r; }, [](caf::error&) {});
  CHECK(answer == 2);
  CHECK(spawned == 2);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("a stage that exits normally is not restarted", "[actors]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  stage_directory dir;
  auto sup = spawn_supervisor(sys, {{"echo", [](caf::actor_system& s) { return s.spawn(echo_stage, 1); }}}, &dir);
  caf::scoped_actor self{sys};
  caf::actor first;
  for (int i = 0; i < 200 && !first; ++i) {
    first = dir.get("echo");
    if (!first) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(first);
  self->send_exit(first, caf::exit_reason::user_shutdown);
  for (int i = 0; i < 100 && dir.get("echo"); ++i) std::this_thread::sleep_for(10ms);
  CHECK_FALSE(dir.get("echo"));
  CHECK(dir.restarts()["echo"] == 0);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}
