// API key material (private to admission/): "rk_<16 hex id>_<43 base64url secret>". The id is public and
// indexes the tenant; the 256-bit secret is never stored, only SHA-256(salt || secret) with a 16-byte random salt.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace rampart::admission::api_key {

using digest = std::array<unsigned char, 32>;

struct generated {
  std::string key_id;  // 16 lowercase hex characters (64 random bits)
  std::string secret;  // 43 base64url characters (256 random bits)
  std::string salt;    // 16 random bytes
  digest hash{};       // hash(salt, secret)
};

// Fresh key material from OpenSSL's RAND_bytes; false when no randomness is available.
bool generate(generated* out);
std::string format(std::string_view key_id, std::string_view secret);
// Splits a key of exactly the format above into its id and secret; false for anything else.
bool split(std::string_view key, std::string_view* key_id, std::string_view* secret);
digest hash(std::string_view salt, std::string_view secret);
// Constant-time comparison (CRYPTO_memcmp), so timing does not reveal how much of a hash matched.
bool equal(const digest& a, const digest& b);

}  // namespace rampart::admission::api_key
