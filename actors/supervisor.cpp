#include "actors/supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace rampart::actors {

void stage_directory::set_up(const std::string& name, bool up) {
  std::lock_guard<std::mutex> lock(mutex_);
  up_[name] = up;
}

bool stage_directory::up(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = up_.find(name);
  return it != up_.end() && it->second;
}

std::map<std::string, int> stage_directory::restarts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return restarts_;
}

void stage_directory::count_restart(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  restarts_[name]++;
}

std::vector<std::string> stage_directory::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, up] : up_) out.push_back(name);
  return out;
}

namespace {

struct supervisor_state {
  std::vector<stage_spec> stages;
  stage_directory* directory = nullptr;
  std::map<caf::actor_addr, size_t> by_address;
  static inline const char* name = "supervisor";
};

void start_stage(caf::stateful_actor<supervisor_state>* self, size_t index) {
  auto& spec = self->state.stages[index];
  caf::actor child = spec.spawn(self->system());
  self->monitor(child);
  self->state.by_address[child.address()] = index;
  self->state.directory->set_up(spec.name, true);
}

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, std::vector<stage_spec> stages,
                         stage_directory* directory) {
  self->state.stages = std::move(stages);
  self->state.directory = directory;
  // Exiting the supervisor takes the stages with it.
  self->set_exit_handler([=](const caf::exit_msg& msg) {
    for (const auto& [addr, index] : self->state.by_address) {
      (void)index;
      if (auto child = caf::actor_cast<caf::actor>(addr)) self->send_exit(child, msg.reason);
    }
    self->quit(msg.reason);
  });
  self->set_down_handler([=](const caf::down_msg& msg) {
    auto it = self->state.by_address.find(msg.source);
    if (it == self->state.by_address.end()) return;
    size_t index = it->second;
    self->state.by_address.erase(it);
    const auto& name = self->state.stages[index].name;
    if (msg.reason == caf::exit_reason::normal || msg.reason == caf::exit_reason::user_shutdown) {
      self->state.stages[index].clear();
      self->state.directory->set_up(name, false);
      return;
    }
    spdlog::error("stage {} died ({}); restarting", name, caf::to_string(msg.reason));
    self->state.directory->count_restart(name);
    start_stage(self, index);
  });
  for (size_t i = 0; i < self->state.stages.size(); ++i) start_stage(self, i);
  return {[=](caf::get_atom) { return static_cast<int64_t>(self->state.stages.size()); }};
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& system, std::vector<stage_spec> stages,
                            stage_directory* directory) {
  return system.spawn(supervisor, std::move(stages), directory);
}

}  // namespace rampart::actors
