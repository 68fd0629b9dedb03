#include "base/priority.hpp"

namespace rampart {
namespace {

constexpr const char* kNames[priority_count] = {"critical", "high", "normal", "sheddable"};

}  // namespace

const char* priority_name(priority p) {
  const int i = static_cast<int>(p);
  return i >= 0 && i < priority_count ? kNames[i] : "normal";
}

bool priority_from_name(std::string_view name, priority* out) {
  for (int i = 0; i < priority_count; ++i) {
    if (name == kNames[i]) {
      *out = static_cast<priority>(i);
      return true;
    }
  }
  return false;
}

}  // namespace rampart
