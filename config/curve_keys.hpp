// CURVE key files: the server's keypair ([frontend].curve_key_file) and a client's (rampart-client
// --curve-keys). A key file is TOML with two Z85 strings, as `rampart-admin keygen` writes it:
//
//   public = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
//   secret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
//
// Only the format is checked here (40 characters of Z85 each); that the two belong together is checked by
// whoever has libzmq (zmq_curve_public). Keep the file readable by its owner only: it holds a secret.
#pragma once

#include <string>

#include "config/config_error.hpp"

namespace rampart::config {

struct curve_keypair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// Reads PATH. False with *ERR (file:line:column, key path) when it cannot be read, is not TOML, has unknown
// keys, or a key is missing or not Z85.
bool load_curve_keypair(const std::string& path, curve_keypair* out, config_error* err);
// The file's text for KEYS.
std::string format_curve_keypair(const curve_keypair& keys);

}  // namespace rampart::config
