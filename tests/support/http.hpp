// A minimal HTTP/1.0 GET over a loopback TCP socket, for tests of the metrics endpoint.
#pragma once

#include <string>

namespace rampart::test {

// GETs PATH from 127.0.0.1:PORT; returns the whole response (status line, headers, body) or "" on failure.
std::string http_get(int port, const std::string& path);

}  // namespace rampart::test
