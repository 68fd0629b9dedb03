#include "monitor/event_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rampart::monitor {
namespace {

// Opens PATH for appending, created 0640 when absent: alerts name client addresses, so they are records for the
// operators (owner and group), not for every local user.
std::FILE* open_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return nullptr;
  std::FILE* f = ::fdopen(fd, "a");
  if (!f) ::close(fd);
  return f;
}

}  // namespace

std::unique_ptr<eve_file_sink> eve_file_sink::open(const std::string& path, const std::string& sensor,
                                                   std::string* error) {
  std::FILE* f = open_append(path);
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
  std::FILE* f = open_append(path_);
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
