// rampart-admin: operators' tool for the tenant accounts database (admission/accounts.hpp).
// Exit codes: 0 done, 1 the operation failed (no such tenant, taken name, database error), 2 usage error.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <zmq.h>

#include "admission/accounts.hpp"
#include "config/curve_keys.hpp"
#include "tools/flags.hpp"

namespace {

constexpr const char* kUsage =
    "usage: rampart-admin --db FILE COMMAND ...\n"
    "       rampart-admin keygen [--out FILE]\n"
    "\n"
    "Commands:\n"
    "  list                                      tenants (never keys or hashes)\n"
    "  create NAME [--class CLASS] [--curve-key Z85]\n"
    "                                            new tenant; prints its API key once (default class: registered)\n"
    "  revoke ID|NAME                            the tenant's key and CURVE key stop working\n"
    "  set-class ID|NAME CLASS                   change the tenant's class (a class of the policy)\n"
    "  keygen [--out FILE]                       a new CURVE keypair as a key file (TOML: public, secret) on\n"
    "                                            stdout or in FILE (created with mode 0600; never overwritten)\n"
    "\n"
    "A running rampartd picks up changes when it reloads its accounts (SIGHUP).\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "rampart-admin: %s\n%s", message.c_str(), kUsage);
  return 2;
}

int failure(const std::string& message) {
  std::fprintf(stderr, "rampart-admin: %s\n", message.c_str());
  return 1;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string utc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int list(rampart::admission::accounts& db) {
  std::printf("%-6s %-24s %-12s %-6s %-20s %s\n", "id", "name", "class", "curve", "created", "revoked");
  for (const auto& t : db.list()) {
    std::printf("%-6lld %-24s %-12s %-6s %-20s %s\n", static_cast<long long>(t.id), t.name.c_str(),
                t.tenant_class.c_str(), t.curve_public_key.empty() ? "no" : "yes", utc(t.created_at_ms).c_str(),
                t.revoked_at_ms ? utc(*t.revoked_at_ms).c_str() : "-");
  }
  return 0;
}

int create(rampart::admission::accounts& db, const std::vector<std::string>& args) {
  std::string name, tenant_class = "registered", curve_key;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--class" || args[i] == "--curve-key") {
      if (i + 1 >= args.size()) return usage_error(args[i] + " needs a value");
      std::string& target = args[i] == "--class" ? tenant_class : curve_key;
      target = args[++i];
    } else if (args[i].rfind("--", 0) == 0) {
      return usage_error("unknown option " + args[i]);
    } else if (name.empty()) {
      name = args[i];
    } else {
      return usage_error("create takes one NAME");
    }
  }
  if (name.empty()) return usage_error("create needs a NAME");
  std::string error;
  auto created = db.create(name, tenant_class, curve_key, now_ms(), &error);
  if (!created) return failure("create " + name + ": " + error);
  std::printf("tenant %lld created: name %s, class %s\n", static_cast<long long>(created->record.id),
              created->record.name.c_str(), created->record.tenant_class.c_str());
  std::printf("api_key: %s\n", created->api_key.c_str());
  std::printf("The key is shown only this once and cannot be recovered; store it now.\n");
  return 0;
}

// A CURVE keypair for the server ([frontend].curve_key_file), a tenant (create --curve-key takes its public
// key) or the policy's registration identity.
int keygen(const std::vector<std::string>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) out = args[++i];
    else return usage_error("keygen takes only --out FILE");
  }
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return failure(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  const std::string text = rampart::config::format_curve_keypair({pub, sec});
  if (out.empty()) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return failure("cannot create " + out + ": " + std::strerror(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return failure("cannot write " + out);
  std::printf("public = \"%s\"   (written with the secret key to %s)\n", pub, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string db_path;
  std::vector<std::string> rest;
  rampart::tools::flags f(argc, argv, "rampart-admin", kUsage);
  while (f.next()) {
    if (f.is("--db")) db_path = f.value();
    else rest.push_back(f.arg());
  }
  if (!rest.empty() && rest[0] == "keygen") return keygen(std::vector<std::string>(rest.begin() + 1, rest.end()));
  if (db_path.empty()) return usage_error("--db FILE is required");
  if (rest.empty()) return usage_error("no command");
  const std::string command = rest[0];
  const std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (command != "list" && command != "create" && command != "revoke" && command != "set-class") {
    return usage_error("unknown command " + command);
  }
  if (command == "list" && !args.empty()) return usage_error("list takes no arguments");
  if (command == "revoke" && args.size() != 1) return usage_error("revoke needs exactly one ID or NAME");
  if (command == "set-class" && args.size() != 2) return usage_error("set-class needs ID|NAME and CLASS");

  std::string error;
  auto db = rampart::admission::accounts::open(db_path, &error);
  if (!db) return failure(error);
  if (command == "list") return list(*db);
  if (command == "create") return create(*db, args);
  if (command == "revoke") {
    if (!db->revoke(args[0], now_ms(), &error)) return failure("revoke " + args[0] + ": " + error);
    std::printf("tenant %s revoked\n", args[0].c_str());
    return 0;
  }
  if (!db->set_class(args[0], args[1], &error)) return failure("set-class " + args[0] + ": " + error);
  std::printf("tenant %s now has class %s\n", args[0].c_str(), args[1].c_str());
  return 0;
}
