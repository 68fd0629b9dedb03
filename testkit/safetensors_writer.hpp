// Writing safetensors files: a header laid out for a list of tensors, and a streaming writer that appends
// their bytes in order so that multi-GiB files never have to sit in memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"

namespace rampart::model {

struct tensor_entry {
  std::string name;
  dtype type = dtype::f32;
  std::vector<int64_t> shape;

  uint64_t nbytes() const;
};

// The header of a file holding ENTRIES back to back in that order: 8-byte little-endian length, then compact
// JSON {"__metadata__":{"format":"pt"},name:{"dtype","shape","data_offsets"},...} padded with spaces to a
// multiple of 8 bytes. *DATA_BYTES receives the size of the data section.
std::string safetensors_header(const std::vector<tensor_entry>& entries, uint64_t* data_bytes);

// Streams one safetensors file. Usage: open(), then for each entry in order write() exactly its nbytes(),
// then close(). Every call returns false with *err naming the file on an I/O error or a size mismatch.
class safetensors_stream {
 public:
  safetensors_stream() = default;
  ~safetensors_stream();
  safetensors_stream(const safetensors_stream&) = delete;
  safetensors_stream& operator=(const safetensors_stream&) = delete;

  bool open(const std::string& path, const std::vector<tensor_entry>& entries, std::string* err);
  bool write(const void* bytes, size_t n, std::string* err);
  bool close(std::string* err);

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  uint64_t expected_ = 0;
  uint64_t written_ = 0;
};

}  // namespace rampart::model
