// CPU affinity (Linux): the CPUs this thread may run on, and pinning the calling thread to some of them. The
// server keeps the engine's threads on CPUs of their own ([engine] cpus) so that the threads that handle the
// network (and whatever a flood makes them do) never take the engine's CPU.
#pragma once

#include <string>
#include <vector>

namespace rampart {

// The CPUs the calling thread may run on now, ascending; empty when the kernel does not say.
std::vector<int> allowed_cpus();

// Restricts the calling thread to CPUS (non-empty, each in [0, 1024)); threads it creates afterwards inherit
// that. False with *error when the kernel refuses.
bool pin_current_thread(const std::vector<int>& cpus, std::string* error);

// "0-3,6" for {0, 1, 2, 3, 6}; the input need not be sorted.
std::string cpu_list_text(std::vector<int> cpus);

}  // namespace rampart
