// Reading a whole file that names what it is: a regular file of bounded size. A path that names a device
// (/dev/zero), a FIFO or a directory, or a file larger than the caller's bound, is refused before anything is
// read or allocated for it; a FIFO never blocks the reader.
#pragma once

#include <cstdint>
#include <string>

namespace rampart {

// Reads the whole of PATH into *OUT when it is a regular file of at most MAX_BYTES. False with *WHY otherwise:
// "cannot open: <errno text>", "not a regular file", "larger than N bytes" or "read error: <errno text>".
bool read_regular_file(const std::string& path, int64_t max_bytes, std::string* out, std::string* why);

}  // namespace rampart
