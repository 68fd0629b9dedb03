// Strict reading of a TOML table against a schema: every key must be known, of the exact type, and in range.
// Errors carry file:line:column and the dotted key path. Used by every config section parser.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config_error.hpp"

namespace rampart::config {

class toml_section {
 public:
  // TABLE may be null (section absent: every getter keeps its default). PATH is the dotted name of the table.
  toml_section(const toml::table* table, std::string file, std::string path);

  // Each getter leaves *out unchanged when the key is absent; on a wrong type or out-of-range value it
  // records the first error and returns false.
  bool get(std::string_view key, int64_t* out, int64_t min, int64_t max);
  bool get(std::string_view key, double* out, double min, double max);
  bool get(std::string_view key, bool* out);
  bool get(std::string_view key, std::string* out);
  // An array of non-empty strings, at most MAX_ITEMS of them.
  bool get(std::string_view key, std::vector<std::string>* out, size_t max_items);
  // An array of integers, each in [MIN, MAX], at most MAX_ITEMS of them.
  bool get(std::string_view key, std::vector<int64_t>* out, size_t max_items, int64_t min, int64_t max);
  // A string that must be one of CHOICES.
  bool get_choice(std::string_view key, std::string* out, std::initializer_list<std::string_view> choices);
  // A sub-table (null when absent); a non-table value is an error.
  const toml::table* table(std::string_view key);

  // After all getters: any key not asked for is an "unknown key" error. Returns false if any error occurred.
  bool finish(std::initializer_list<std::string_view> also_allowed = {});

  // The value at KEY, for errors about how values combine (null when absent).
  const toml::node* node(std::string_view key) const { return table_ ? table_->get(key) : nullptr; }

  const std::optional<config_error>& error() const { return error_; }
  std::string key_path(std::string_view key) const;
  void fail_at(const toml::node* node, std::string_view key, std::string message);

 private:
  const toml::table* table_;
  std::string file_;
  std::string path_;
  // The array under KEY (marked seen), at most MAX_ITEMS long; nullptr when absent (*OK true) or when it is not
  // an array of OF or too long (*OK false, the error recorded).
  const toml::array* array_at(std::string_view key, const char* of, size_t max_items, bool* ok);

  std::optional<config_error> error_;
  std::vector<std::string> seen_;
};

}  // namespace rampart::config
