#include "config/curve_keys.hpp"

#include "config/policy.hpp"
#include "config/toml_schema.hpp"

namespace rampart::config {

bool load_curve_keypair(const std::string& path, curve_keypair* out, config_error* err) {
  std::string text;
  if (!read_config_file(path, &text, err, "cannot read the CURVE key file")) return false;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    *err = config_error{path, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                        "", std::string(e.description())};
    return false;
  }
  curve_keypair keys;
  toml_section s(&root, path, "");
  s.get("public", &keys.public_key);
  s.get("secret", &keys.secret_key);
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"public", &keys.public_key},
                                   {"secret", &keys.secret_key}}) {
    if (s.error()) break;
    if (value->empty()) s.fail_at(nullptr, key, "missing: a CURVE key file needs `public` and `secret`");
    else if (!is_valid_curve_key(*value)) s.fail_at(root.get(key), key, "not a CURVE key (40 characters of Z85)");
  }
  if (!s.finish()) {
    *err = *s.error();
    return false;
  }
  *out = std::move(keys);
  return true;
}

std::string format_curve_keypair(const curve_keypair& keys) {
  return "# CURVE keypair (Z85). Keep this file private: it holds the secret key.\npublic = \"" + keys.public_key +
         "\"\nsecret = \"" + keys.secret_key + "\"\n";
}

}  // namespace rampart::config
