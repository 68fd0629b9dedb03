#include "net/curve_gate.hpp"

#include <zmq.h>

#include "admission/accounts.hpp"

namespace rampart::net {

bool curve_keys_match(const std::string& secret_key, const std::string& public_key) {
  char derived[41] = {};
  return secret_key.size() == 40 && zmq_curve_public(derived, secret_key.c_str()) == 0 && public_key == derived;
}

bool curve_gate::set_registration(bool open, const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool changed = open != registration_open_ || key != registration_key_;
  registration_open_ = open;
  registration_key_ = key;
  publish_locked();
  return changed;
}

void curve_gate::refresh() {
  std::lock_guard<std::mutex> lock(mutex_);
  publish_locked();
}

void curve_gate::publish_locked() {
  auto list = std::make_shared<curve_allow_list>();
  if (accounts_) {
    for (auto& [key, id] : accounts_->curve_keys()) {
      if (!list->tenants.emplace(key, id).second) list->ambiguous.insert(std::move(key));
    }
  }
  list->registration_key = registration_key_;
  list->registration_open = registration_open_;
  zap_->set_allow_list(std::move(list));
}

}  // namespace rampart::net
