// What the web dashboard reads from a request's headers before it answers (net/http_listener.cpp): pure
// functions over untrusted text, fuzzed (tests/fuzz/fuzz_dashboard_access.cpp).
#pragma once

#include <cstdint>
#include <string_view>

namespace rampart::net {

// Whether a Host header names this machine's loopback: 127.0.0.1, localhost or [::1], with or without a port.
bool loopback_host(std::string_view host);
// The value of cookie NAME in a Cookie header ("a=1; b=2"), a view into COOKIES; empty when absent.
std::string_view cookie_value(std::string_view cookies, std::string_view name);
// A Last-Event-ID: a decimal number of 1 to 19 digits, else 0 (start afresh).
uint64_t parse_event_id(std::string_view text);
// A == B, in a time that does not depend on where they first differ (their lengths are not secret).
bool same_secret(std::string_view a, std::string_view b);

}  // namespace rampart::net
