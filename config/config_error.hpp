// A configuration error with its location: "file:line:column: key.path: message".
#pragma once

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

// Reads the whole of FILE into *TEXT. False with *ERR ("FILE: MESSAGE", no position) when it cannot be read.
bool read_config_file(const std::string& file, std::string* text, config_error* err,
                      const char* message = "cannot read file");

}  // namespace rampart::config
