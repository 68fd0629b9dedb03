// The four request priority classes, most important first: what a client asks for (docs/protocol.md, the
// `priority` field), what the policy caps each tenant class at (docs/policy.md, max_priority), and, as an
// index (0 highest), the scheduler's class.
#pragma once

#include <cstdint>
#include <string_view>

namespace rampart {

enum class priority : uint8_t { critical = 0, high = 1, normal = 2, sheddable = 3 };
constexpr int priority_count = 4;

// "critical", "high", "normal", "sheddable".
const char* priority_name(priority p);
// The inverse of priority_name; false for any other text.
bool priority_from_name(std::string_view name, priority* out);

}  // namespace rampart
