// Where monitor events go. The server plugs in its ZMQ publisher; eve_file_sink writes eve.json.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "monitor/event.hpp"

namespace rampart::monitor {

// write() is called on the capture thread, in event order. Implementations must not block for long:
// a slow sink delays packet processing (the kernel buffer absorbs bursts, then drops are reported).
class event_sink {
 public:
  virtual ~event_sink() = default;
  virtual void write(const event& e) = 0;
};

// Calls a function for each event (tests, tools, adapters).
class callback_sink : public event_sink {
 public:
  explicit callback_sink(std::function<void(const event&)> fn) : fn_(std::move(fn)) {}
  void write(const event& e) override { fn_(e); }

 private:
  std::function<void(const event&)> fn_;
};

// Appends one EVE JSON line per event to a file, flushed per line. Thread-safe: write() and reopen() may
// race (reopen is meant for log rotation, called by whoever handles SIGHUP outside the signal handler).
class eve_file_sink : public event_sink {
 public:
  // Opens PATH for appending (created if missing). Returns null and sets *error when it cannot.
  static std::unique_ptr<eve_file_sink> open(const std::string& path, const std::string& sensor,
                                             std::string* error);
  ~eve_file_sink() override;

  void write(const event& e) override;
  // Closes and reopens the same path (after logrotate renamed it). On failure keeps writing to the old file
  // and returns false with *error set.
  bool reopen(std::string* error);
  // Lines that could not be written (I/O errors).
  uint64_t write_errors() const;

 private:
  eve_file_sink(std::FILE* f, std::string path, std::string sensor);

  mutable std::mutex mu_;
  std::FILE* file_;
  std::string path_;
  std::string sensor_;
  uint64_t write_errors_ = 0;
};

}  // namespace rampart::monitor
