#include <algorithm>
#include <random>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/stages.hpp"
#include "admission/accounts.hpp"
#include "admission/deny_list.hpp"

namespace rampart::actors {
namespace {

std::string generated_name() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "tenant-%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void create(server_context* ctx, const std::string& peer, const std::string& requested, const std::string& curve_key) {
  const std::string name = requested.empty() ? generated_name() : requested;
  std::string error;
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  admission::accounts::create_failure why;
  auto created =
      ctx->accounts->create(name, ctx->config.admission.registration_class, curve_key, now_ms, &error, &why);
  if (!created) {
    const auto code = why == admission::accounts::create_failure::curve_key_taken ? net::error_code::curve_key_taken
                      : why == admission::accounts::create_failure::database ? net::error_code::internal
                                                                             : net::error_code::bad_parameter;
    ctx->reply(peer, "error", net::error_body("", code, error));
    return;
  }
  // Debug only: an open registration path must not cost one info line per message under a flood (the
  // tenants are in the accounts database: `rampart-admin list` shows them).
  spdlog::debug("registered tenant {} ({}), class {}{}", created->record.id, created->record.name,
               created->record.tenant_class, curve_key.empty() ? "" : ", with a CURVE key");
  if (!curve_key.empty() && ctx->curve) ctx->curve->refresh();  // the ZAP gate admits it now
  ctx->reply(peer, "registered",
                      {{"tenant_id", created->record.id},
                       {"name", created->record.name},
                       {"class", created->record.tenant_class},
                       {"api_key", created->api_key}});
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// How often unused trial tenants are looked for: a tenth of their time to live, between 1 s and 60 s.
std::chrono::milliseconds sweep_interval(int64_t ttl_s) {
  return std::chrono::milliseconds(std::clamp<int64_t>(ttl_s * 100, 1000, 60000));
}

void expire_trials(server_context* ctx, const std::set<int64_t>& unrecorded) {
  const int64_t ttl_s = ctx->config.admission.trial_ttl_s;
  if (ttl_s <= 0 || !ctx->accounts) return;
  if (!unrecorded.empty()) {
    // A first use that could not be written yet would look like no use at all: expire nothing until it is.
    spdlog::debug("expiry waits: {} first use(s) not recorded yet", unrecorded.size());
    return;
  }
  std::string error;
  const int64_t n =
      ctx->accounts->expire_unused(ctx->config.admission.registration_class, unix_ms() - ttl_s * 1000, &error);
  if (n < 0) {
    spdlog::warn("expiring unused {} tenants: {}", ctx->config.admission.registration_class, error);
  } else if (n > 0) {
    spdlog::info("expired {} {} tenant(s) that made no request within {} s of registering", n,
                 ctx->config.admission.registration_class, ttl_s);
    if (ctx->curve) ctx->curve->refresh();  // their CURVE keys leave the ZAP gate
  }
}

struct registrar_state {
  std::set<int64_t> unrecorded;  // tenants whose first use failed to be written (retried every second)
  static inline const char* name = "registrar";
};

registrar_actor::behavior_type registrar_stage(registrar_actor::stateful_pointer<registrar_state> self,
                                               server_context* ctx) {
  if (ctx->config.admission.trial_ttl_s > 0 && ctx->accounts) {
    self->delayed_send(self, sweep_interval(ctx->config.admission.trial_ttl_s), tick_atom::value);
  }
  return {
      [=](register_atom, const std::string& peer, const std::string& name, const std::string& curve_key) {
        create(ctx, peer, name, curve_key);
        ctx->registrations_pending--;
      },
      [=](used_atom, int64_t tenant_id) {
        std::string error;
        if (!ctx->accounts || !ctx->accounts->find(std::to_string(tenant_id)) ||  // revoked and gone meanwhile
            ctx->accounts->mark_used(tenant_id, unix_ms(), &error)) {
          self->state.unrecorded.erase(tenant_id);
          return;
        }
        // e.g. SQLITE_BUSY while rampart-admin writes: try again, and hold expiry back meanwhile.
        if (self->state.unrecorded.insert(tenant_id).second) {
          spdlog::warn("recording tenant {}'s first request: {} (retrying)", tenant_id, error);
        }
        self->delayed_send(self, std::chrono::seconds(1), used_atom::value, tenant_id);
      },
      [=](tick_atom) {
        expire_trials(ctx, self->state.unrecorded);
        self->delayed_send(self, sweep_interval(ctx->config.admission.trial_ttl_s), tick_atom::value);
      },
  };
}

}  // namespace

registrar_actor spawn_registrar_stage(caf::actor_system& system, server_context* context) {
  // Detached: a durable database write takes milliseconds and must not hold a shared scheduler thread.
  context->registrations_pending = 0;  // a restarted registrar starts with an empty mailbox
  return system.spawn<caf::detached>(registrar_stage, context);
}

}  // namespace rampart::actors
