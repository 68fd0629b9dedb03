// A configuration error with its location: "file:line:column: key.path: message".
#pragma once

#include <cstdint>
#include <string>

namespace rampart::config {

struct config_error {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (e.g. unreadable file)
  int column = 0;  // 1-based
  std::string key;  // dotted key path, may be empty
  std::string message;

  std::string to_string() const;
};

// The largest configuration, policy or key file read: far above any real one, so that a path naming a device
// or a huge file is refused instead of read into memory.
constexpr int64_t kMaxConfigFileBytes = int64_t{4} << 20;

// Reads the whole of FILE into *TEXT. False with *ERR ("FILE: MESSAGE", no position) when it cannot be read, is
// not a regular file (a device, a FIFO, a directory) or is larger than kMaxConfigFileBytes.
bool read_config_file(const std::string& file, std::string* text, config_error* err,
                      const char* message = "cannot read file");

}  // namespace rampart::config
