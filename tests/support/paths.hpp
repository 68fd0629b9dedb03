// Where tests find the repository and the built binaries.
#pragma once

#include <string>

namespace rampart::test {

std::string source_dir();                           // the repository root
std::string bin_dir();                              // build/bin of the build running the tests
std::string bin(const std::string& name);           // bin_dir() + "/" + name
std::string tokenizer_dir();                        // models/deepseek-v3-tokenizer (fetched by tools/setup.sh)
// A fresh empty directory under the system temp dir, removed by the caller (or left for inspection).
std::string make_temp_dir(const std::string& prefix);

}  // namespace rampart::test
