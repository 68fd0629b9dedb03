#include "config/toml_schema.hpp"

#include <algorithm>
#include <sstream>

namespace rampart::config {

toml_section::toml_section(const toml::table* table, std::string file, std::string path)
    : table_(table), file_(std::move(file)), path_(std::move(path)) {}

std::string toml_section::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void toml_section::fail_at(const toml::node* node, std::string_view key, std::string message) {
  if (error_) return;
  config_error e;
  e.file = file_;
  const toml::source_region* src = node ? &node->source() : (table_ ? &table_->source() : nullptr);
  if (src) {
    e.line = static_cast<int>(src->begin.line);
    e.column = static_cast<int>(src->begin.column);
  }
  e.key = key_path(key);
  e.message = std::move(message);
  error_ = std::move(e);
}

namespace {
const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}
}  // namespace

bool toml_section::get(std::string_view key, int64_t* out, int64_t min, int64_t max) {
  seen_.emplace_back(key);
  if (!table_) return true;
  const toml::node* n = table_->get(key);
  if (!n) return true;
  auto v = n->value_exact<int64_t>();
  if (!v) {
    fail_at(n, key, std::string("expected an integer, found ") + type_name(*n));
    return false;
  }
  if (*v < min || *v > max) {
    std::ostringstream m;
    m << "value " << *v << " out of range [" << min << ", " << max << "]";
    fail_at(n, key, m.str());
    return false;
  }
  *out = *v;
  return true;
}

bool toml_section::get(std::string_view key, double* out, double min, double max) {
  seen_.emplace_back(key);
  if (!table_) return true;
  const toml::node* n = table_->get(key);
  if (!n) return true;
  std::optional<double> v;
  if (auto d = n->value_exact<double>()) v = *d;
  else if (auto i = n->value_exact<int64_t>()) v = static_cast<double>(*i);
  if (!v) {
    fail_at(n, key, std::string("expected a number, found ") + type_name(*n));
    return false;
  }
  if (!(*v >= min && *v <= max)) {
    std::ostringstream m;
    m << "value " << *v << " out of range [" << min << ", " << max << "]";
    fail_at(n, key, m.str());
    return false;
  }
  *out = *v;
  return true;
}

bool toml_section::get(std::string_view key, bool* out) {
  seen_.emplace_back(key);
  if (!table_) return true;
  const toml::node* n = table_->get(key);
  if (!n) return true;
  auto v = n->value_exact<bool>();
  if (!v) {
    fail_at(n, key, std::string("expected a boolean, found ") + type_name(*n));
    return false;
  }
  *out = *v;
  return true;
}

bool toml_section::get(std::string_view key, std::string* out) {
  seen_.emplace_back(key);
  if (!table_) return true;
  const toml::node* n = table_->get(key);
  if (!n) return true;
  auto v = n->value_exact<std::string>();
  if (!v) {
    fail_at(n, key, std::string("expected a string, found ") + type_name(*n));
    return false;
  }
  *out = *v;
  return true;
}

const toml::array* toml_section::array_at(std::string_view key, const char* of, size_t max_items, bool* ok) {
  *ok = true;
  seen_.emplace_back(key);
  const toml::node* n = table_ ? table_->get(key) : nullptr;
  if (!n) return nullptr;
  const toml::array* a = n->as_array();
  if (!a) {
    fail_at(n, key, std::string("expected an array of ") + of + ", found " + type_name(*n));
  } else if (a->size() > max_items) {
    fail_at(n, key, "at most " + std::to_string(max_items) + " entries, found " + std::to_string(a->size()));
  } else {
    return a;
  }
  *ok = false;
  return nullptr;
}

bool toml_section::get(std::string_view key, std::vector<std::string>* out, size_t max_items) {
  bool ok = true;
  const toml::array* a = array_at(key, "strings", max_items, &ok);
  if (!a) return ok;
  std::vector<std::string> items;
  for (const toml::node& item : *a) {
    const auto v = item.value_exact<std::string>();
    if (!v || v->empty()) {
      fail_at(&item, key, v ? "expected non-empty strings, found an empty one"
                            : std::string("expected non-empty strings, found ") + type_name(item));
      return false;
    }
    items.push_back(*v);
  }
  *out = std::move(items);
  return true;
}

bool toml_section::get(std::string_view key, std::vector<int64_t>* out, size_t max_items, int64_t min,
                       int64_t max) {
  bool ok = true;
  const toml::array* a = array_at(key, "integers", max_items, &ok);
  if (!a) return ok;
  std::vector<int64_t> items;
  for (const toml::node& item : *a) {
    const auto v = item.value_exact<int64_t>();
    if (!v || *v < min || *v > max) {
      fail_at(&item, key, v ? "expected integers in [" + std::to_string(min) + ", " + std::to_string(max) +
                                  "], found " + std::to_string(*v)
                            : std::string("expected integers, found ") + type_name(item));
      return false;
    }
    items.push_back(*v);
  }
  *out = std::move(items);
  return true;
}

bool toml_section::get_choice(std::string_view key, std::string* out,
                              std::initializer_list<std::string_view> choices) {
  std::string value = *out;
  if (!get(key, &value)) return false;
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    std::string list;
    for (auto c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
    fail_at(table_ ? table_->get(key) : nullptr, key, "\"" + value + "\" is not one of: " + list);
    return false;
  }
  *out = value;
  return true;
}

const toml::table* toml_section::table(std::string_view key) {
  seen_.emplace_back(key);
  if (!table_) return nullptr;
  const toml::node* n = table_->get(key);
  if (!n) return nullptr;
  if (!n->is_table()) {
    fail_at(n, key, std::string("expected a table, found ") + type_name(*n));
    return nullptr;
  }
  return n->as_table();
}

bool toml_section::finish(std::initializer_list<std::string_view> also_allowed) {
  if (table_ && !error_) {
    for (const auto& [k, node] : *table_) {
      std::string_view name = k.str();
      bool known = std::find(seen_.begin(), seen_.end(), name) != seen_.end() ||
                   std::find(also_allowed.begin(), also_allowed.end(), name) != also_allowed.end();
      if (!known) {
        fail_at(&node, name, "unknown key");
        // Point at the key itself, not at its value.
        if (error_ && k.source().begin.line > 0) {
          error_->line = static_cast<int>(k.source().begin.line);
          error_->column = static_cast<int>(k.source().begin.column);
        }
        break;
      }
    }
  }
  return !error_;
}

}  // namespace rampart::config
