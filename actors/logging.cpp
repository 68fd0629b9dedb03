#include "actors/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace rampart::actors {
namespace {

// %* : the message payload escaped for a JSON string.
class json_message_flag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            dest.append(std::string_view(buf));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

// %~ : the message payload with control characters escaped (\n, \r, \t, \xNN), so a client-supplied string
// in a message (a request id, a name) cannot end the line and forge the next one, or drive the terminal.
class text_message_flag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '\n') dest.append(std::string_view("\\n"));
      else if (c == '\r') dest.append(std::string_view("\\r"));
      else if (c == '\t') dest.append(std::string_view("\\t"));
      else if (u < 0x20 || u == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        dest.append(std::string_view(buf));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<text_message_flag>();
  }
};

}  // namespace

bool setup_logging(const config::log_config& config, std::string* error) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (config.file.empty()) {
      logger = spdlog::stderr_color_mt("rampart");
    } else {
      logger = spdlog::basic_logger_mt("rampart", config.file, false);
    }
  } catch (const spdlog::spdlog_ex& e) {
    *error = std::string("cannot open log file: ") + e.what();
    return false;
  }
  if (config.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_message_flag>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l","logger":"%n","tid":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<text_message_flag>('~').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %~");
    logger->set_formatter(std::move(formatter));
  }
  logger->set_level(spdlog::level::from_str(config.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace rampart::actors
