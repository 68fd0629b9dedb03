#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <vector>

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

namespace {

// Dies as soon as it starts, abnormally.
echo_actor::behavior_type crashing_stage(echo_actor::pointer self, int) {
  self->quit(caf::exit_reason::kill);
  return {[](int x) { return x; }};
}

}  // namespace

TEST_CASE("a stage that keeps crashing is restarted after growing delays, then given up", "[actors]") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  stage_directory dir;
  stage_slot<echo_actor> slot;
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> spawns;
  restart_policy policy;
  policy.first_delay = 40ms;
  policy.max_delay = 160ms;
  policy.max_restarts = 4;
  policy.window = 10s;
  auto sup = spawn_supervisor(sys,
                              {make_stage("crash", &slot,
                                          [&](caf::actor_system& s) {
                                            std::lock_guard<std::mutex> lock(mutex);
                                            spawns.push_back(std::chrono::steady_clock::now());
                                            return s.spawn(crashing_stage, 0);
                                          })},
                              &dir, policy);
  for (int i = 0; i < 300 && dir.given_up().empty(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(dir.given_up() == "crash");
  CHECK_FALSE(dir.all_up());
  CHECK_FALSE(dir.up("crash"));
  CHECK_FALSE(slot.get());
  CHECK(dir.restarts()["crash"] == 4);
  std::this_thread::sleep_for(300ms);  // nothing more is restarted once given up
  std::lock_guard<std::mutex> lock(mutex);
  REQUIRE(spawns.size() == 5);  // the first start and four restarts
  // Delays of 40, 80, 160 and 160 ms (doubling, capped): each gap at least its delay.
  const std::chrono::milliseconds want[] = {40ms, 80ms, 160ms, 160ms};
  for (size_t i = 1; i < spawns.size(); ++i) {
    INFO("restart " << i);
    CHECK(spawns[i] - spawns[i - 1] >= want[i - 1]);
  }
  caf::scoped_actor self{sys};
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}
