#include <catch2/catch.hpp>

#include <thread>

#include <caf/all.hpp>

#include "actors/supervisor.hpp"

using namespace rampart::actors;
using namespace std::chrono_literals;

namespace {

using echo_actor = caf::typed_actor<caf::replies_to<int>::with<int>>;

// Answers x with x + STEP. (Spawning with an argument also keeps clear of CAF 0.17's no-argument spawn path,
// which dereferences a null argument tuple and trips UBSan.)
echo_actor::behavior_type echo_stage(echo_actor::pointer, int step) {
  return {[step](int x) { return x + step; }};
}

echo_actor wait_for_new_handle(const stage_slot<echo_actor>& slot, const echo_actor& old) {
  for (int i = 0; i < 200; ++i) {
    auto h = slot.get();
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
  stage_slot<echo_actor> slot;
  int spawned = 0;
  auto sup = spawn_supervisor(sys, {make_stage("echo", &slot, [&](caf::actor_system& s) {
                                ++spawned;
                                return s.spawn(echo_stage, 1);
                              })},
                              &dir);
  caf::scoped_actor self{sys};
  echo_actor first = wait_for_new_handle(slot, {});
  REQUIRE(first);
  CHECK(dir.up("echo"));
  int answer = 0;
  self->request(first, 1s, 41).receive([&](int r) { answer = r; }, [](caf::error&) {});
  CHECK(answer == 42);

  self->send_exit(first, caf::exit_reason::kill);
  auto second = wait_for_new_handle(slot, first);
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
  stage_slot<echo_actor> slot;
  auto sup = spawn_supervisor(
      sys, {make_stage("echo", &slot, [](caf::actor_system& s) { return s.spawn(echo_stage, 1); })}, &dir);
  caf::scoped_actor self{sys};
  echo_actor first = wait_for_new_handle(slot, {});
  REQUIRE(first);
  self->send_exit(first, caf::exit_reason::user_shutdown);
  for (int i = 0; i < 100 && slot.get(); ++i) std::this_thread::sleep_for(10ms);
  CHECK_FALSE(slot.get());
  CHECK_FALSE(dir.up("echo"));
  CHECK(dir.restarts()["echo"] == 0);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}
