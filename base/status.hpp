// The outcome of a call at a room's edge whose callers branch on why it failed: a reason code (the code's
// default value, its first enumerator, means success) and one line for people. Callers switch on the code and
// pass the message on; nobody parses the message.
#pragma once

#include <string>
#include <utility>

namespace rampart {

template <class Code>
struct status {
  Code code{};
  std::string message;  // empty on success

  bool ok() const { return code == Code{}; }
  static status success() { return {}; }
  static status failure(Code code, std::string message) { return {code, std::move(message)}; }
};

}  // namespace rampart
