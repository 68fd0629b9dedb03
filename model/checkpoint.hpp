// A Hugging Face checkpoint directory: config.json plus one model.safetensors or shards listed in
// model.safetensors.index.json. Files are mmapped read-only and every header is validated on open.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/tensor.hpp"
#include "model/model_config.hpp"

namespace rampart::model {

// Errors as values at the room's edge: ok() or a message naming the file (and the tensor when there is one).
struct load_error {
  std::string message;
};

class checkpoint {
 public:
  // Opens DIR: parses config.json (model_config::parse) and maps every safetensors file. On failure returns
  // nullptr and fills *err with a one-line message naming the file and tensor. Thread-safe after open.
  static std::unique_ptr<checkpoint> open(const std::string& dir, load_error* err);

  ~checkpoint();
  checkpoint(const checkpoint&) = delete;
  checkpoint& operator=(const checkpoint&) = delete;

  const model_config& config() const { return config_; }
  const std::string& dir() const { return dir_; }

  // The tensor called NAME, or nullptr when the checkpoint has none. An F8_E4M3 tensor's scale_inv is linked.
  const tensor_view* find(std::string_view name) const;
  // Like find, but a missing tensor or one whose shape differs from SHAPE fills *err and returns nullptr.
  const tensor_view* require(std::string_view name, const std::vector<int64_t>& shape, load_error* err) const;

  const std::vector<std::string>& names() const { return names_; }
  // Total bytes of tensor data mapped.
  size_t mapped_bytes() const;

 private:
  checkpoint() = default;
  struct mapped_file;
  // Maps PATH and adds its tensors; with SHARDED, exactly the EXPECTED ones (the index's list for it).
  bool map_file(const std::string& path, const std::vector<std::string>& expected, bool sharded, load_error* err);
  std::string dir_;
  model_config config_;
  std::vector<std::unique_ptr<mapped_file>> files_;
  std::unordered_map<std::string, tensor_view> tensors_;
  std::vector<std::string> names_;
};

// Parses and validates one safetensors file image (BYTES of length SIZE, named FILE for errors): header length
// bounded (<= 100 MiB) and inside the file, valid JSON, known dtypes, shapes consistent with byte ranges, ranges
// inside the data section and not overlapping. Pure function, fuzzable. Returns false and fills *err on failure.
bool parse_safetensors(const std::byte* bytes, size_t size, const std::string& file,
                       std::vector<tensor_view>* out, load_error* err);

}  // namespace rampart::model
