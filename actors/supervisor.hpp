// Supervision of the server's stages: the supervisor spawns each stage from its factory, monitors it, and
// respawns it when it dies abnormally. Each stage's current handle lives in a typed stage_slot that senders read
// when they address it, so a restart is invisible to them and the compiler checks what they send.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/fwd.hpp>

namespace rampart::actors {

// One stage's current handle: set by the stage's spec when the supervisor (re)spawns it, cleared when it stops
// for good. Any thread may read it.
template <class Handle>
class stage_slot {
 public:
  Handle get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return handle_;
  }
  void set(Handle handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    handle_ = std::move(handle);
  }

 private:
  mutable std::mutex mutex_;
  Handle handle_;
};

// Which stages exist, whether each is running and how often each was restarted: the health report's view.
class stage_directory {
 public:
  void set_up(const std::string& name, bool up);
  bool up(const std::string& name) const;
  // Every stage running: the server is ready.
  bool all_up() const;
  // How many times each stage was restarted after dying.
  std::map<std::string, int> restarts() const;
  void count_restart(const std::string& name);
  std::vector<std::string> names() const;
  // A stage that crashed more often than the restart policy allows: the supervisor stopped restarting it and
  // the server should exit non-zero so that its service manager starts it afresh. Empty while none has.
  void set_given_up(const std::string& name);
  std::string given_up() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, bool> up_;
  std::map<std::string, int> restarts_;
  std::string given_up_;
};

// How the supervisor restarts a stage that died: after FIRST_DELAY, doubling with each further crash inside
// WINDOW up to MAX_DELAY; a stage that crashes more than MAX_RESTARTS times inside WINDOW is given up.
struct restart_policy {
  std::chrono::milliseconds first_delay{50};
  std::chrono::milliseconds max_delay{5000};
  int max_restarts = 10;
  std::chrono::milliseconds window{60000};
};

struct stage_spec {
  std::string name;
  // Spawns the stage and publishes its typed handle; returns it for the supervisor to monitor. Called once at
  // start and again after each abnormal exit.
  std::function<caf::actor(caf::actor_system&)> spawn;
  // Withdraws the published handle: the stage stopped for good.
  std::function<void()> clear;
};

// A stage whose handle SPAWN returns and SLOT publishes.
template <class Handle, class Spawn>
stage_spec make_stage(std::string name, stage_slot<Handle>* slot, Spawn spawn) {
  return {std::move(name),
          [slot, spawn](caf::actor_system& system) {
            Handle handle = spawn(system);
            slot->set(handle);
            return caf::actor_cast<caf::actor>(handle);
          },
          [slot] { slot->set(Handle{}); }};
}

// Spawns the supervisor, which spawns every stage at once. Exiting the supervisor (send_exit) stops the stages.
// While a dead stage waits for its restart, its slot is empty (senders see it is restarting).
caf::actor spawn_supervisor(caf::actor_system& system, std::vector<stage_spec> stages, stage_directory* directory,
                            restart_policy policy = {});

}  // namespace rampart::actors
