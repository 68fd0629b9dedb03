#include "monitor/event_sink.hpp"

#include <cerrno>
#include <cstring>

namespace rampart::monitor {

std::unique_ptr<eve_file_sink> eve_file_sink::open(const std::string& path, const std::string& sensor,
                                                   std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) {
    if (error) *error = "cannot open " + path + " for appending: " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<eve_file_sink>(new eve_file_sink(f, path, sensor));
}

eve_file_sink::eve_file_sink(std::FILE* f, std::string path, std::string sensor)
    : file_(f), path_(std::move(path)), sensor_(std::move(sensor)) {}

eve_file_sink::~eve_file_sink() {
  if (file_) std::fclose(file_);
}

void eve_file_sink::write(const event& e) {
  std::string line = to_eve_json(e, sensor_);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    ++write_errors_;
  }
}

bool eve_file_sink::reopen(std::string* error) {
  std::FILE* f = std::fopen(path_.c_str(), "a");
  if (!f) {
    if (error) *error = "cannot reopen " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::fclose(file_);
  file_ = f;
  return true;
}

uint64_t eve_file_sink::write_errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_errors_;
}

}  // namespace rampart::monitor
