#include "tests/support/paths.hpp"

#include <stdlib.h>

#include <stdexcept>

namespace rampart::test {

std::string source_dir() { return RAMPART_SOURCE_DIR; }
std::string bin_dir() { return RAMPART_BIN_DIR; }
std::string bin(const std::string& name) { return bin_dir() + "/" + name; }
std::string tokenizer_dir() { return source_dir() + "/models/deepseek-v3-tokenizer"; }

std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace rampart::test
