#include "base/cpu_affinity.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rampart {

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

bool pin_current_thread(const std::vector<int>& cpus, std::string* error) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) {
      *error = "CPU " + std::to_string(c) + " is outside 0-" + std::to_string(CPU_SETSIZE - 1);
      return false;
    }
    CPU_SET(c, &set);
  }
  if (cpus.empty()) {
    *error = "no CPU given";
    return false;
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    *error = std::strerror(errno);
    return false;
  }
  return true;
}

std::string cpu_list_text(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace rampart
