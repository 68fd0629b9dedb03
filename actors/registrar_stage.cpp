#include <random>

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
    ctx->frontend->post(peer, "error", net::error_body("", code, error));
    return;
  }
  // Debug only: an open registration path must not cost one info line per message under a flood (the
  // tenants are in the accounts database: `rampart-admin list` shows them).
  spdlog::debug("registered tenant {} ({}), class {}{}", created->record.id, created->record.name,
               created->record.tenant_class, curve_key.empty() ? "" : ", with a CURVE key");
  if (!curve_key.empty() && ctx->on_tenants_changed) ctx->on_tenants_changed();  // the ZAP gate admits it now
  ctx->frontend->post(peer, "registered",
                      {{"tenant_id", created->record.id},
                       {"name", created->record.name},
                       {"class", created->record.tenant_class},
                       {"api_key", created->api_key}});
}

registrar_actor::behavior_type registrar_stage(registrar_actor::pointer, server_context* ctx) {
  return {[=](register_atom, const std::string& peer, const std::string& name, const std::string& curve_key) {
    create(ctx, peer, name, curve_key);
    ctx->registrations_pending--;
  }};
}

}  // namespace

registrar_actor spawn_registrar_stage(caf::actor_system& system, server_context* context) {
  // Detached: a durable database write takes milliseconds and must not hold a shared scheduler thread.
  context->registrations_pending = 0;  // a restarted registrar starts with an empty mailbox
  return system.spawn<caf::detached>(registrar_stage, context);
}

}  // namespace rampart::actors
