// Minimal HTTP over a loopback TCP socket, for tests of the metrics listener.
#pragma once

#include <string>

namespace rampart::test {

// A TCP connection to 127.0.0.1:PORT whose reads give up after RECV_TIMEOUT_MS; the descriptor, or -1 (closed)
// when it cannot connect.
int connect_loopback(int port, int recv_timeout_ms);

// GETs PATH from 127.0.0.1:PORT; returns the whole response (status line, headers, body) or "" on failure.
std::string http_get(int port, const std::string& path);
// Sends RAW (any bytes, not necessarily HTTP) to 127.0.0.1:PORT and returns everything answered until the server
// closes (or 5 s of silence); "" when it cannot connect or send.
std::string http_exchange(int port, const std::string& raw);

}  // namespace rampart::test
