#include "admission/api_key.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace rampart::admission::api_key {
namespace {

constexpr size_t kIdHex = 16, kSecretChars = 43, kKeyChars = 3 + kIdHex + 1 + kSecretChars;
constexpr size_t kSaltBytes = 16;

digest hash_impl(std::string_view salt, std::string_view secret) {
  // Both parts are short and fixed-size (16 + 43 bytes): one stack buffer, one SHA-256.
  unsigned char buf[kSaltBytes + kSecretChars];
  const size_t n = std::min(salt.size(), kSaltBytes);
  std::memcpy(buf, salt.data(), n);
  std::memcpy(buf + n, secret.data(), std::min(secret.size(), kSecretChars));
  digest d;
  SHA256(buf, n + std::min(secret.size(), kSecretChars), d.data());
  OPENSSL_cleanse(buf, sizeof buf);
  return d;
}

bool random_bytes(unsigned char* out, size_t n) { return RAND_bytes(out, static_cast<int>(n)) == 1; }

std::string hex(const unsigned char* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string base64url(const unsigned char* p, size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string s;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      s += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) s += alphabet[(acc << (6 - bits)) & 63];
  return s;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Splits "rk_<id>_<secret>"; false when KEY does not have exactly that shape.
bool split_impl(std::string_view key, std::string_view* id, std::string_view* secret) {
  if (key.size() != kKeyChars || key.substr(0, 3) != "rk_" || key[3 + kIdHex] != '_') return false;
  *id = key.substr(3, kIdHex);
  *secret = key.substr(4 + kIdHex);
  for (char c : *id) {
    if (!is_hex(c)) return false;
  }
  for (char c : *secret) {
    if (!is_b64url(c)) return false;
  }
  return true;
}

}  // namespace

bool generate(generated* out) {
  unsigned char id_bytes[kIdHex / 2], secret_bytes[32], salt[kSaltBytes];
  if (!random_bytes(id_bytes, sizeof id_bytes) || !random_bytes(secret_bytes, sizeof secret_bytes) ||
      !random_bytes(salt, sizeof salt)) {
    return false;
  }
  out->key_id = hex(id_bytes, sizeof id_bytes);
  out->secret = base64url(secret_bytes, sizeof secret_bytes);
  out->salt.assign(reinterpret_cast<const char*>(salt), sizeof salt);
  out->hash = hash_impl(out->salt, out->secret);
  OPENSSL_cleanse(secret_bytes, sizeof secret_bytes);
  return true;
}

std::string format(std::string_view key_id, std::string_view secret) {
  return "rk_" + std::string(key_id) + "_" + std::string(secret);
}

bool split(std::string_view key, std::string_view* key_id, std::string_view* secret) {
  return split_impl(key, key_id, secret);
}

digest hash(std::string_view salt, std::string_view secret) { return hash_impl(salt, secret); }

bool equal(const digest& a, const digest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

}  // namespace rampart::admission::api_key
