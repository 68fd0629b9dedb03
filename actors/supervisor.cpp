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

bool stage_directory::all_up() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [name, up] : up_) {
    if (!up) return false;
  }
  return given_up_.empty();
}

void stage_directory::set_given_up(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (given_up_.empty()) given_up_ = name;
}

std::string stage_directory::given_up() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return given_up_;
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

using restart_atom = caf::atom_constant<caf::atom("restart")>;
using clock_type = std::chrono::steady_clock;

struct supervisor_state {
  std::vector<stage_spec> stages;
  stage_directory* directory = nullptr;
  restart_policy policy;
  std::map<caf::actor_addr, size_t> by_address;
  std::vector<std::deque<clock_type::time_point>> crashes;  // per stage, inside the policy's window
  static inline const char* name = "supervisor";
};

void start_stage(caf::stateful_actor<supervisor_state>* self, size_t index) {
  auto& spec = self->state.stages[index];
  caf::actor child = spec.spawn(self->system());
  self->monitor(child);
  self->state.by_address[child.address()] = index;
  self->state.directory->set_up(spec.name, true);
}

// Stage INDEX died abnormally: restart it after the back-off its recent crashes call for, or give it up.
void on_crash(caf::stateful_actor<supervisor_state>* self, size_t index, const caf::error& reason) {
  auto& st = self->state;
  const auto& name = st.stages[index].name;
  const auto now = clock_type::now();
  auto& recent = st.crashes[index];
  recent.push_back(now);
  while (!recent.empty() && now - recent.front() > st.policy.window) recent.pop_front();
  if (static_cast<int>(recent.size()) > st.policy.max_restarts) {
    spdlog::critical("stage {} died {} times within {} s ({}); not restarting it", name, recent.size(),
                     std::chrono::duration_cast<std::chrono::seconds>(st.policy.window).count(),
                     caf::to_string(reason));
    st.directory->set_given_up(name);
    return;
  }
  auto delay = st.policy.first_delay;
  for (size_t i = 1; i < recent.size() && delay < st.policy.max_delay; ++i) delay *= 2;
  delay = std::min(delay, st.policy.max_delay);
  spdlog::error("stage {} died ({}); restarting in {} ms", name, caf::to_string(reason), delay.count());
  st.directory->count_restart(name);
  self->delayed_send(self, delay, restart_atom::value, static_cast<uint64_t>(index));
}

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, std::vector<stage_spec> stages,
                         stage_directory* directory, restart_policy policy) {
  self->state.stages = std::move(stages);
  self->state.directory = directory;
  self->state.policy = policy;
  self->state.crashes.resize(self->state.stages.size());
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
    const size_t index = it->second;
    self->state.by_address.erase(it);
    // Senders see an empty slot (the stage is restarting) rather than a dead handle that drops what it gets.
    self->state.stages[index].clear();
    self->state.directory->set_up(self->state.stages[index].name, false);
    if (msg.reason == caf::exit_reason::normal || msg.reason == caf::exit_reason::user_shutdown) return;
    on_crash(self, index, msg.reason);
  });
  for (size_t i = 0; i < self->state.stages.size(); ++i) start_stage(self, i);
  return {
      [=](caf::get_atom) { return static_cast<int64_t>(self->state.stages.size()); },
      [=](restart_atom, uint64_t index) {
        if (index < self->state.stages.size()) start_stage(self, static_cast<size_t>(index));
      },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& system, std::vector<stage_spec> stages, stage_directory* directory,
                            restart_policy policy) {
  return system.spawn(supervisor, std::move(stages), directory, policy);
}

}  // namespace rampart::actors
