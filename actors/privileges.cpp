#include "actors/privileges.hpp"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace rampart::actors {

long long capabilities_of_all_threads() {
  DIR* tasks = opendir("/proc/self/task");
  if (!tasks) return -1;
  long long all = 0;
  bool read_any = false;
  while (dirent* d = readdir(tasks)) {
    if (d->d_name[0] == '.') continue;
    std::ifstream status(std::string("/proc/self/task/") + d->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      for (const char* field : {"CapPrm:", "CapEff:", "CapAmb:"}) {
        if (line.rfind(field, 0) == 0) {
          all |= std::stoll(line.substr(7), nullptr, 16);
          read_any = true;
        }
      }
    }
  }
  closedir(tasks);
  return read_any ? all : -1;
}

bool drop_privileges(const std::string& user, std::string* error) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    *error = "no user \"" + user + "\" in the password database";
    return false;
  }
  if (geteuid() == pw.pw_uid && getuid() == pw.pw_uid) return true;
  if (geteuid() != 0) {
    *error = "running as uid " + std::to_string(geteuid()) + ", which can switch neither to \"" + user +
             "\" nor stay: start as root or as that user";
    return false;
  }
  // Groups first (they need root), then the user; glibc applies each call to every thread of the process.
  if (setgroups(0, nullptr) != 0 || setgid(pw.pw_gid) != 0 || setuid(pw.pw_uid) != 0) {
    *error = std::string("cannot switch to \"") + user + "\": " + std::strerror(errno);
    return false;
  }
  if (setuid(0) == 0) {  // a drop that can be undone is no drop
    *error = "switched to \"" + user + "\" but could become root again";
    return false;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {  // this thread's, inherited by whatever it starts
    *error = std::string("no_new_privs: ") + std::strerror(errno);
    return false;
  }
  const long long caps = capabilities_of_all_threads();
  if (caps != 0) {
    *error = caps < 0 ? "cannot read the threads' capabilities from /proc"
                      : "a thread kept capabilities after switching to \"" + user + "\"";
    return false;
  }
  return true;
}

}  // namespace rampart::actors
