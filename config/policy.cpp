#include "config/policy.hpp"

#include <cmath>
#include <sstream>

#include "config/toml_schema.hpp"

namespace rampart::config {
namespace {

constexpr std::array<const char*, threat_level_count> kLevelNames = {"green", "yellow", "orange", "red"};
constexpr std::array<const char*, priority_count> kPriorityNames = {"critical", "high", "normal", "sheddable"};
constexpr int64_t kMaxTokens = int64_t{1} << 40;

class_limits named_class(std::string name, priority max_priority) {
  class_limits c;
  c.name = std::move(name);
  c.max_priority = max_priority;
  return c;
}

int64_t seconds_to_ms(double s) { return static_cast<int64_t>(std::llround(s * 1000.0)); }

// Reads the four per-priority keys of TABLE (absent keys keep *OUT's values).
template <typename T, typename Get>
bool parse_per_priority(const toml::table* table, const std::string& file, const std::string& path,
                        std::array<T, priority_count>* out, config_error* err, Get get) {
  toml_section s(table, file, path);
  for (int i = 0; i < priority_count; ++i) get(s, kPriorityNames[i], &(*out)[i]);
  if (!s.finish()) {
    *err = *s.error();
    return false;
  }
  return true;
}

bool parse_class(const toml::table* table, const std::string& file, const std::string& path,
                 class_limits* c, config_error* err) {
  toml_section s(table, file, path);
  s.get("requests_per_s", &c->requests_per_s, 0.001, 1e9);
  s.get("requests_burst", &c->requests_burst, 1, 1e12);
  s.get("tokens_per_s", &c->tokens_per_s, 0.001, 1e12);
  s.get("tokens_burst", &c->tokens_burst, 1, 1e15);
  s.get("max_streams", &c->max_streams, 1, 1000000);
  std::string prio = kPriorityNames[static_cast<int>(c->max_priority)];
  s.get_choice("max_priority", &prio, {"critical", "high", "normal", "sheddable"});
  if (!s.finish()) {
    *err = *s.error();
    return false;
  }
  for (int i = 0; i < priority_count; ++i) {
    if (prio == kPriorityNames[i]) c->max_priority = static_cast<priority>(i);
  }
  return true;
}

bool parse_classes(const toml::table* table, const std::string& file, const std::string& path,
                   level_policy* lv, config_error* err) {
  if (!table) return true;
  toml_section s(table, file, path);
  for (const auto& [key, node] : *table) {
    std::string name(key.str());
    if (!is_valid_class_name(name)) {
      s.fail_at(&node, name, "a class name is 1 to 32 characters of a-z, 0-9, '_' and '-'");
      *err = *s.error();  // at the name itself, not at its table
      err->line = static_cast<int>(key.source().begin.line);
      err->column = static_cast<int>(key.source().begin.column);
      return false;
    }
    const toml::table* ct = s.table(name);
    if (!ct) {
      *err = *s.error();
      return false;
    }
    class_limits* c = nullptr;
    for (auto& existing : lv->classes) {
      if (existing.name == name) c = &existing;
    }
    if (!c) {
      lv->classes.push_back(named_class(name, priority::normal));
      c = &lv->classes.back();
    }
    if (!parse_class(ct, file, s.key_path(name), c, err)) return false;
  }
  return true;
}

// Rules that tie keys together. NODE_OF finds where a key was written in this level's table (null when it was
// inherited); errors point there, or at the level's table.
bool check_level(const toml::table* table, const std::string& file, const std::string& path,
                 const level_policy& lv, config_error* err) {
  toml_section s(table, file, path);
  auto node_of = [&](std::string_view sub, std::string_view key) -> const toml::node* {
    if (!table) return nullptr;
    const toml::node* n = sub.empty() ? table : table->get(sub);
    if (!n || !n->is_table()) return nullptr;
    return n->as_table()->get(key);
  };
  auto fail = [&](const toml::node* n, const std::string& key, const std::string& message) {
    s.fail_at(n, key, message);
    *err = *s.error();
    return false;
  };
  for (int i = 1; i < priority_count; ++i) {
    if (lv.queue_delay_ms[i] > lv.queue_delay_ms[i - 1]) {
      const toml::node* n = node_of("queue_delay_ms", kPriorityNames[i]);
      if (!n) n = node_of("queue_delay_ms", kPriorityNames[i - 1]);
      return fail(n, std::string("queue_delay_ms.") + kPriorityNames[i],
                  std::string("must not exceed queue_delay_ms.") + kPriorityNames[i - 1] +
                      " (lower classes wait less)");
    }
    if (lv.max_utilization[i] > lv.max_utilization[i - 1]) {
      const toml::node* n = node_of("max_utilization", kPriorityNames[i]);
      if (!n) n = node_of("max_utilization", kPriorityNames[i - 1]);
      return fail(n, std::string("max_utilization.") + kPriorityNames[i],
                  std::string("must not exceed max_utilization.") + kPriorityNames[i - 1] +
                      " (lower classes are shed first)");
    }
  }
  const double largest = static_cast<double>(lv.max_prompt_tokens + lv.max_tokens);
  for (const auto& c : lv.classes) {
    if (c.tokens_burst >= largest) continue;
    const toml::node* classes = table ? table->get("classes") : nullptr;
    const toml::node* n = nullptr;
    if (classes && classes->is_table()) {
      if (const toml::node* ct = classes->as_table()->get(c.name); ct && ct->is_table()) {
        n = ct->as_table()->get("tokens_burst");
      }
    }
    if (!n) n = node_of("", "max_tokens");
    if (!n) n = node_of("", "max_prompt_tokens");
    std::ostringstream m;
    m << "tokens_burst " << c.tokens_burst << " is below max_prompt_tokens + max_tokens = " << largest
      << ": the largest allowed request could never be admitted";
    return fail(n, "classes." + c.name + ".tokens_burst", m.str());
  }
  return true;
}

bool parse_level(const toml::table* table, const std::string& file, const std::string& path,
                 level_policy* lv, config_error* err) {
  toml_section s(table, file, path);
  const toml::table* reg = s.table("registration");
  const toml::table* anon = s.table("anonymous");
  const toml::table* delays = s.table("queue_delay_ms");
  const toml::table* util = s.table("max_utilization");
  const toml::table* classes = s.table("classes");
  double ttl_s = static_cast<double>(lv->deny_ttl_ms) / 1000.0;
  s.get("max_streams_per_source", &lv->max_streams_per_source, 1, 1000000);
  s.get("max_prompt_tokens", &lv->max_prompt_tokens, 1, kMaxTokens);
  s.get("max_tokens", &lv->max_tokens, 1, kMaxTokens);
  s.get("deny_heavy_hitters", &lv->deny_heavy_hitters);
  s.get("deny_ttl_s", &ttl_s, 1, 30 * 86400);
  s.get("handshake_ivl_ms", &lv->handshake_ivl_ms, 100, 600000);
  s.get("retry_after_ms", &lv->retry_after_ms, 0, 3600000);
  if (!s.finish()) {
    *err = *s.error();
    return false;
  }
  lv->deny_ttl_ms = seconds_to_ms(ttl_s);

  toml_section r(reg, file, path + ".registration");
  std::string mode = registration_mode_name(lv->registration.mode);
  r.get_choice("mode", &mode, {"open", "rate_limited", "closed"});
  r.get("rate", &lv->registration.rate, 0.001, 1e6);
  r.get("burst", &lv->registration.burst, 1, 1e9);
  r.get("per_source_rate", &lv->registration.per_source_rate, 0.001, 1e6);
  r.get("per_source_burst", &lv->registration.per_source_burst, 1, 1e9);
  r.get("message", &lv->registration.message);
  if (!r.error() && lv->registration.message.size() > 512) {
    r.fail_at(reg->get("message"), "message", "longer than 512 bytes");
  }
  if (!r.finish()) {
    *err = *r.error();
    return false;
  }
  lv->registration.mode = mode == "open"           ? registration_mode::open
                          : mode == "rate_limited" ? registration_mode::rate_limited
                                                   : registration_mode::closed;

  toml_section a(anon, file, path + ".anonymous");
  a.get("admitted", &lv->anonymous_admitted);
  a.get("share", &lv->anonymous_share, 0, 1);
  a.get("batch_share", &lv->budget_batch_share, 0, 1);
  a.get("step_share", &lv->budget_step_share, 0, 1);
  if (!a.finish()) {
    *err = *a.error();
    return false;
  }
  if (!parse_per_priority(delays, file, path + ".queue_delay_ms", &lv->queue_delay_ms, err,
                          [](toml_section& t, const char* k, int64_t* v) { t.get(k, v, 1, 3600000); })) {
    return false;
  }
  if (!parse_per_priority(util, file, path + ".max_utilization", &lv->max_utilization, err,
                          [](toml_section& t, const char* k, double* v) { t.get(k, v, 0, 1); })) {
    return false;
  }
  if (!parse_classes(classes, file, path + ".classes", lv, err)) return false;
  return check_level(table, file, path, *lv, err);
}

}  // namespace

bool threat_level_from_name(std::string_view name, threat_level* out) {
  for (int i = 0; i < threat_level_count; ++i) {
    if (name == kLevelNames[i]) {
      *out = static_cast<threat_level>(i);
      return true;
    }
  }
  return false;
}

const char* registration_mode_name(registration_mode m) {
  switch (m) {
    case registration_mode::open: return "open";
    case registration_mode::rate_limited: return "rate_limited";
    case registration_mode::closed: return "closed";
  }
  return "closed";
}

const class_limits* level_policy::find_class(std::string_view name) const {
  for (const auto& c : classes) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

policy base_policy() {
  policy p;
  level_policy lv;
  lv.classes = {named_class("registered", priority::critical), named_class("trial", priority::normal),
                named_class("anonymous", priority::normal)};
  p.levels.fill(lv);
  return p;
}

policy default_policy() {
  policy p;
  config_error err;
  // The embedded text is the shipped file, checked by the policy tests; base values only if it ever fails.
  if (!parse_policy(embedded_default_policy(), "<embedded policy>", &p, &err)) p = base_policy();
  return p;
}

bool parse_policy(std::string_view text, const std::string& file, policy* out, config_error* err) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    *err = config_error{file, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                        "", std::string(e.description())};
    return false;
  }
  auto fail = [&](const toml_section& s) {
    *err = *s.error();
    return false;
  };
  toml_section top(&root, file, "");
  const toml::table* ptable = top.table("policy");
  if (!top.finish()) return fail(top);
  if (!ptable) {
    *err = config_error{file, 1, 1, "policy", "missing: a policy file needs a [policy] table"};
    return false;
  }

  policy p = base_policy();
  p.source = file;
  toml_section s(ptable, file, "policy");
  const toml::table* levels = s.table("levels");
  double hold_s = static_cast<double>(p.hold_ms) / 1000.0, cool_s = static_cast<double>(p.cool_down_ms) / 1000.0;
  std::string override_name = "none";
  s.get("dry_run", &p.dry_run);
  s.get("hold_s", &hold_s, 0, 86400);
  s.get("cool_down_s", &cool_s, 0, 86400);
  s.get_choice("override", &override_name, {"none", "green", "yellow", "orange", "red"});
  s.get("fallback_class", &p.fallback_class);
  s.get("registration_curve_key", &p.registration_curve_key);
  if (!s.finish()) return fail(s);
  p.hold_ms = seconds_to_ms(hold_s);
  p.cool_down_ms = seconds_to_ms(cool_s);
  threat_level forced;
  if (threat_level_from_name(override_name, &forced)) p.override_level = forced;
  if (!p.registration_curve_key.empty() && !is_valid_curve_key(p.registration_curve_key)) {
    s.fail_at(ptable->get("registration_curve_key"), "registration_curve_key",
              "not a CURVE public key (40 characters of Z85)");
    return fail(s);
  }

  toml_section ls(levels, file, "policy.levels");
  std::array<const toml::table*, threat_level_count> level_tables{};
  for (int i = 0; i < threat_level_count; ++i) level_tables[i] = ls.table(kLevelNames[i]);
  if (!ls.finish()) return fail(ls);
  for (int i = 0; i < threat_level_count; ++i) {
    if (i > 0) p.levels[i] = p.levels[i - 1];
    if (!parse_level(level_tables[i], file, std::string("policy.levels.") + kLevelNames[i], &p.levels[i], err)) {
      return false;
    }
  }
  if (!p.levels[0].find_class(p.fallback_class)) {
    s.fail_at(ptable->get("fallback_class"), "fallback_class",
              "\"" + p.fallback_class + "\" is not a class of the policy");
    return fail(s);
  }
  *out = std::move(p);
  return true;
}

bool load_policy(const std::string& file, policy* out, config_error* err) {
  std::string text;
  if (!read_config_file(file, &text, err)) return false;
  return parse_policy(text, file, out, err);
}

bool is_policy_file(const std::string& file) {
  std::string text;
  config_error unused;
  if (!read_config_file(file, &text, &unused)) return false;
  try {
    toml::table root = toml::parse(text, std::string_view(file));
    return root.get("policy") != nullptr && root.get("policy")->is_table();
  } catch (const toml::parse_error&) {
    return false;
  }
}

bool is_valid_curve_key(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (text.size() != 40) return false;
  for (size_t group = 0; group < text.size(); group += 5) {
    uint64_t value = 0;
    for (size_t i = group; i < group + 5; ++i) {
      size_t digit = kAlphabet.find(text[i]);
      if (digit == std::string_view::npos) return false;
      value = value * 85 + digit;
    }
    if (value > 0xffffffffULL) return false;
  }
  return true;
}

bool is_valid_class_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace rampart::config
