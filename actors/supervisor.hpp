// Supervision of the server's stages: the supervisor spawns each stage from its factory, monitors it, and
// respawns it when it dies abnormally. The current handle of every stage lives in a stage_directory that other
// stages read when they address a stage, so a restart is invisible to them.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

namespace rampart::actors {

class stage_directory {
 public:
  void set(const std::string& name, caf::actor handle);
  // The current handle, or an invalid actor when the stage is not running.
  caf::actor get(const std::string& name) const;
  // How many times each stage was restarted after dying.
  std::map<std::string, int> restarts() const;
  void count_restart(const std::string& name);
  std::vector<std::string> names() const;
  // Drops every handle: the directory's strong references would otherwise keep detached actors (and the actor
  // system's shutdown) waiting forever.
  void clear();

 private:
  mutable std::mutex mutex_;
  std::map<std::string, caf::actor> handles_;
  std::map<std::string, int> restarts_;
};

struct stage_spec {
  std::string name;
  // Spawns the stage. Called once at start and again after each abnormal exit.
  std::function<caf::actor(caf::actor_system&)> spawn;
};

// Spawns the supervisor, which spawns every stage at once. Exiting the supervisor (send_exit) stops the stages.
caf::actor spawn_supervisor(caf::actor_system& system, std::vector<stage_spec> stages,
                            stage_directory* directory);

}  // namespace rampart::actors
