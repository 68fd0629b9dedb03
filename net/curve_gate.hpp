// With CURVE on, what the ZAP gate admits: the CURVE keys of unrevoked tenants (from the accounts database) and
// the policy's registration identity while registration is not closed. The allow list is rebuilt and swapped in
// whole when any of these change; every method may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "net/zap_handler.hpp"

namespace rampart::admission {
class accounts;
}

namespace rampart::net {

// Whether PUBLIC_KEY is the public half of SECRET_KEY (both Z85, 40 characters): a server refuses to start with
// a key file whose halves do not belong together.
bool curve_keys_match(const std::string& secret_key, const std::string& public_key);

class curve_gate {
 public:
  // ACCOUNTS may be null (no tenant keys); ZAP must outlive the gate.
  curve_gate(std::shared_ptr<const admission::accounts> accounts, zap_handler* zap)
      : accounts_(std::move(accounts)), zap_(zap) {}

  // Admits (OPEN) or refuses the registration identity KEY (empty: none). True when that changed anything.
  bool set_registration(bool open, const std::string& key);
  // Re-reads the tenants' keys (after one was created or revoked).
  void refresh();

 private:
  void publish_locked();

  std::shared_ptr<const admission::accounts> accounts_;
  zap_handler* zap_;
  std::mutex mutex_;
  bool registration_open_ = false;
  std::string registration_key_;
};

}  // namespace rampart::net
