#include "testkit/safetensors_writer.hpp"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace rampart::model {

uint64_t tensor_entry::nbytes() const {
  uint64_t n = dtype_size(type);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string safetensors_header(const std::vector<tensor_entry>& entries, uint64_t* data_bytes) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}";
  uint64_t offset = 0;
  for (const tensor_entry& e : entries) {
    json += ',';
    json += nlohmann::json(e.name).dump();
    json += ":{\"dtype\":\"";
    json += dtype_name(e.type);
    json += "\",\"shape\":[";
    for (size_t i = 0; i < e.shape.size(); ++i) {
      if (i) json += ',';
      json += std::to_string(e.shape[i]);
    }
    const uint64_t end = offset + e.nbytes();
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t len = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  if (data_bytes) *data_bytes = offset;
  return out + json;
}

safetensors_stream::~safetensors_stream() {
  if (file_) std::fclose(file_);
}

bool safetensors_stream::open(const std::string& path, const std::vector<tensor_entry>& entries,
                              std::string* err) {
  path_ = path;
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) {
    *err = path + ": cannot create: " + std::strerror(errno);
    return false;
  }
  const std::string header = safetensors_header(entries, &expected_);
  written_ = 0;
  if (std::fwrite(header.data(), 1, header.size(), file_) != header.size()) {
    *err = path + ": write error: " + std::strerror(errno);
    return false;
  }
  return true;
}

bool safetensors_stream::write(const void* bytes, size_t n, std::string* err) {
  if (!file_) {
    *err = path_ + ": not open";
    return false;
  }
  if (written_ + n > expected_) {
    *err = path_ + ": more tensor data than the header declares";
    return false;
  }
  if (std::fwrite(bytes, 1, n, file_) != n) {
    *err = path_ + ": write error: " + std::strerror(errno);
    return false;
  }
  written_ += n;
  return true;
}

bool safetensors_stream::close(std::string* err) {
  if (!file_) {
    *err = path_ + ": not open";
    return false;
  }
  const bool complete = written_ == expected_;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!complete) {
    *err = path_ + ": wrote " + std::to_string(written_) + " of " + std::to_string(expected_) + " data bytes";
    return false;
  }
  if (!closed) {
    *err = path_ + ": close failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace rampart::model
