// The shared vocabulary: one IP address type (IPv4 kept mapped, prefixes in the family's own bits), the
// priority names of the protocol and the policy, the status value, and CPU affinity. Expected texts and bytes
// are written out by hand.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "base/cpu_affinity.hpp"
#include "base/device_name.hpp"
#include "base/ip_address.hpp"
#include "base/priority.hpp"
#include "base/status.hpp"

using rampart::ip_address;

TEST_CASE("an IPv4 address is one key whether written dotted or IPv4-mapped", "[base]") {
  ip_address a, b, c;
  REQUIRE(ip_address::parse("192.0.2.7", &a));
  REQUIRE(ip_address::parse("::ffff:192.0.2.7", &b));
  CHECK(a.family == 4);
  CHECK(a == b);
  CHECK(a.hash() == b.hash());
  const std::array<uint8_t, 16> mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
  CHECK(a.bytes == mapped);
  CHECK(a.to_string() == "192.0.2.7");
  CHECK(a == ip_address::v4(192, 0, 2, 7));
  REQUIRE(ip_address::parse("2001:db8::1", &c));
  CHECK(c.family == 6);
  CHECK(c.to_string() == "2001:db8::1");
  CHECK(c != a);
}

TEST_CASE("a prefix clears the bits past its length, counted in the family's own bits", "[base]") {
  ip_address a, v6;
  REQUIRE(ip_address::parse("198.51.100.77", &a));
  CHECK(a.prefix(24).to_string() == "198.51.100.0");
  CHECK(a.prefix(20).to_string() == "198.51.96.0");
  CHECK(a.prefix(0).to_string() == "0.0.0.0");
  CHECK(a.prefix(99).to_string() == "198.51.100.77");  // clamped to 32
  REQUIRE(ip_address::parse("2001:db8:1234:5678::9", &v6));
  CHECK(v6.prefix(48).to_string() == "2001:db8:1234::");
  CHECK(v6.prefix(64).to_string() == "2001:db8:1234:5678::");
}

TEST_CASE("text that is not an address is refused and leaves the output alone", "[base]") {
  ip_address a = ip_address::v4(10, 0, 0, 1);
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.1:80", "[::1]", "host.example", "1.2.3.4/24",
                          "0123456789012345678901234567890123456789012345678901"}) {
    INFO(bad);
    CHECK_FALSE(ip_address::parse(bad, &a));
  }
  CHECK(a == ip_address::v4(10, 0, 0, 1));
  CHECK(ip_address{}.to_string().empty());
}

TEST_CASE("priority names are the protocol's and round-trip", "[base]") {
  using rampart::priority;
  CHECK(std::string(rampart::priority_name(priority::critical)) == "critical");
  CHECK(std::string(rampart::priority_name(priority::sheddable)) == "sheddable");
  for (int i = 0; i < rampart::priority_count; ++i) {
    priority p = priority::normal;
    REQUIRE(rampart::priority_from_name(rampart::priority_name(static_cast<priority>(i)), &p));
    CHECK(static_cast<int>(p) == i);
  }
  priority p = priority::high;
  CHECK_FALSE(rampart::priority_from_name("low", &p));
  CHECK_FALSE(rampart::priority_from_name("Critical", &p));
  CHECK(p == priority::high);
}

TEST_CASE("a status is ok only with the success code", "[base]") {
  enum class why { fine, full, broken };
  CHECK(rampart::status<why>::success().ok());
  auto s = rampart::status<why>::failure(why::full, "the queue is full");
  CHECK_FALSE(s.ok());
  CHECK(s.code == why::full);
  CHECK(s.message == "the queue is full");
}

TEST_CASE("CPU lists are written as ranges, and a thread pinned to one CPU may run only there", "[base]") {
  CHECK(rampart::cpu_list_text({}) == "");
  CHECK(rampart::cpu_list_text({3}) == "3");
  CHECK(rampart::cpu_list_text({6, 0, 2, 1, 3, 6}) == "0-3,6");
  CHECK(rampart::cpu_list_text({1, 3, 5}) == "1,3,5");
  const std::vector<int> allowed = rampart::allowed_cpus();
  REQUIRE_FALSE(allowed.empty());
  // On a thread of its own, so the test runner keeps its CPUs.
  std::vector<int> seen;
  bool pinned = false;
  std::string error;
  std::thread t([&] {
    pinned = rampart::pin_current_thread({allowed.back()}, &error);
    seen = rampart::allowed_cpus();
  });
  t.join();
  INFO(error);
  CHECK(pinned);
  CHECK(seen == std::vector<int>{allowed.back()});
  CHECK(rampart::allowed_cpus() == allowed);
  CHECK_FALSE(rampart::pin_current_thread({}, &error));
  CHECK_FALSE(rampart::pin_current_thread({-1}, &error));
  CHECK(error == "CPU -1 is outside 0-1023");
}

TEST_CASE("device names parse as cpu or cuda:N", "[base]") {
  std::string err;
  CHECK(rampart::parse_device_name("cpu", &err) == -1);
  CHECK(rampart::parse_device_name("cuda:0", &err) == 0);
  CHECK(rampart::parse_device_name("cuda:13", &err) == 13);
  CHECK(rampart::parse_device_name("cuda:255", &err) == 255);
  for (const char* bad : {"", "gpu", "cuda", "cuda:", "cuda:256", "cuda:-1", "cuda:01", "cuda:1x", "CUDA:0", "cuda:1000"}) {
    INFO(bad);
    err.clear();
    CHECK(rampart::parse_device_name(bad, &err) == -2);
    CHECK(err.find("device must be") == 0);
  }
}
