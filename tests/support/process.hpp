// Real child processes for integration tests: start, wait for readiness, signal, and always clean up.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace rampart::test {

// A free TCP port on 127.0.0.1 (bound and released; a tiny race with other processes is accepted).
int free_port();

class child_process {
 public:
  // Starts PROGRAM with ARGS; stdout and stderr go to a log file (log_path()). Throws on fork/exec failure.
  child_process(const std::string& program, const std::vector<std::string>& args);
  // Kills the process (SIGKILL) if it is still running and reaps it.
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string log() const;  // everything the process wrote so far

  // Polls READY every 20 ms until it returns true (true) or TIMEOUT passes or the process exits (false).
  bool wait_ready(const std::function<bool()>& ready, std::chrono::milliseconds timeout);
  void signal(int sig);
  // Waits up to TIMEOUT for the exit; returns the exit status (128+signal when killed) or nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

// Runs a command to completion; returns the exit status, with stdout+stderr in *output.
int run_command(const std::string& program, const std::vector<std::string>& args, std::string* output,
                const std::string& stdin_text = "");

}  // namespace rampart::test
