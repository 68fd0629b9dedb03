// Crash tests through rampartd's fault injection (--fault-injection FILE, SIGUSR2): with 16 streams running,
// each stage in turn (tokenizer, scheduler, detokenizer, registrar, gateway, an in-process expert shard) is
// killed as a crash would kill it. Every request either ends with exactly one terminal event within 2 s of the
// crash or keeps streaming; none is lost (silent) and none is answered twice; the stage is back up with its
// restart counted; new requests succeed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <fstream>
#include <thread>

#include "tests/integration/server_fixture.hpp"

using namespace rampart;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

bool is_terminal(const std::string& type) { return type == "done" || type == "error" || type == "shed"; }

// N streaming requests, each on its own connection, and what each has received.
struct streams {
  struct one {
    std::unique_ptr<net::client> client;
    std::string id;
    int tokens = 0;
    int terminals = 0;
    std::string terminal;
    clock_type::time_point ended;
  };
  std::vector<one> all;

  streams(const std::string& endpoint, const std::string& tag, int n) {
    for (int i = 0; i < n; ++i) {
      one s;
      s.client = std::make_unique<net::client>();
      s.client->connect(endpoint, nullptr);
      s.id = tag + "-" + std::to_string(i);
      s.client->send("generate", {{"request_id", s.id},
                                  {"ids", {1 + i, 2, 3 + i}},
                                  {"max_tokens", 4000},
                                  {"temperature", 0},
                                  {"ignore_eos", true}});
      all.push_back(std::move(s));
    }
  }
  void pump(std::chrono::milliseconds for_how_long) {
    const auto until = clock_type::now() + for_how_long;
    while (clock_type::now() < until)
      for (one& s : all)
        while (auto ev = s.client->receive(1ms)) {
          if (ev->body.value("request_id", "") != s.id) continue;
          if (ev->type == "token") ++s.tokens;
          if (is_terminal(ev->type)) {
            ++s.terminals;
            s.terminal = ev->type + " " + ev->body.dump();
            s.ended = clock_type::now();
          }
        }
  }
  bool all_streaming() const {
    for (const one& s : all)
      if (s.tokens == 0) return false;
    return true;
  }
};

std::string run_one(const std::string& endpoint, const std::string& id) {
  net::client c;
  c.connect(endpoint, nullptr);
  c.send("generate", {{"request_id", id}, {"ids", {5, 6, 7}}, {"max_tokens", 6}, {"temperature", 0}});
  const auto deadline = clock_type::now() + 20s;
  while (clock_type::now() < deadline)
    if (auto ev = c.receive(200ms); ev && ev->body.value("request_id", "") == id && is_terminal(ev->type))
      return ev->type == "done" ? ev->type : ev->type + " " + ev->body.dump();
  return "";
}

nlohmann::json pong(const std::string& endpoint) {
  net::client c;
  c.connect(endpoint, nullptr);
  nlohmann::json p;
  return c.ping(2s, &p) ? p : nlohmann::json();
}

}  // namespace

TEST_CASE("a stage killed under 16 streams ends only what it held, each once within 2 s, and comes back",
          "[integration][faults]") {
  const std::string dir = test::make_temp_dir("rampart-faults");
  const std::string fault_file = dir + "/fault";
  test::model_server server("",
                            "[engine]\nshards = 2\nshard_deadline_ms = 500\n[admission]\naccounts_db = \"" + dir +
                                "/accounts.db\"\n",
                            {"--fault-injection", fault_file});
  REQUIRE(run_one(server.endpoint, "warm-up") == "done");

  struct scenario {
    const char* stage;    // as the fault file names it
    const char* in_pong;  // as pong lists it
    bool ends_all;        // every running stream ends (its state lived in the stage); else none does
  };
  for (const scenario& sc : {scenario{"tokenizer-0", "tokenizer-0", false}, scenario{"registrar", "registrar", false},
                             scenario{"gateway", "gateway", false}, scenario{"detokenizer", "detokenizer", true},
                             scenario{"scheduler", "scheduler", true}, scenario{"shard-1", "", true}}) {
    {
      INFO("killing " << sc.stage);
      const int restarts_before = sc.in_pong[0] ? pong(server.endpoint)["stages"][sc.in_pong]["restarts"].get<int>() : 0;
      streams s(server.endpoint, sc.stage, 16);
      const auto start_deadline = clock_type::now() + 30s;
      while (!s.all_streaming() && clock_type::now() < start_deadline) s.pump(20ms);
      std::string status;
      for (const auto& one : s.all) status += one.id + ": " + std::to_string(one.tokens) + " tokens " + one.terminal + "\n";
      INFO(status);
      REQUIRE(s.all_streaming());

      std::vector<int> before;
      for (const auto& one : s.all) before.push_back(one.tokens);
      std::ofstream(fault_file) << sc.stage << "\n";
      const auto killed_at = clock_type::now();
      server.proc->signal(SIGUSR2);
      s.pump(3s);  // 2 s for the terminal events, then a second in which none may repeat

      for (size_t i = 0; i < s.all.size(); ++i) {
        const auto& one = s.all[i];
        INFO(one.id << ": " << before[i] << " tokens before the crash, " << one.tokens << " after; " << one.terminal);
        CHECK(one.terminals <= 1);
        if (sc.ends_all) {
          CHECK(one.terminals == 1);
        } else {
          CHECK(one.terminals == 0);
          CHECK(one.tokens > before[i] + 5);  // still streaming, not stalled
        }
        if (one.terminals == 1) {
          CHECK(std::chrono::duration<double>(one.ended - killed_at).count() <= 2.0);
          CHECK(one.terminal.rfind("error", 0) == 0);
        }
      }

      // The stage is back (restart counted) and new requests succeed.
      if (sc.in_pong[0]) {
        nlohmann::json p;
        const auto back_deadline = clock_type::now() + 5s;
        do {
          p = pong(server.endpoint);
        } while (!(p["stages"][sc.in_pong]["up"] == true && p["ready"] == true) && clock_type::now() < back_deadline);
        INFO(p.dump());
        CHECK(p["stages"][sc.in_pong]["up"] == true);
        CHECK(p["stages"][sc.in_pong]["restarts"] == restarts_before + 1);
        CHECK(p["ready"] == true);
      }

      // What still runs is cancelled: exactly one terminal event each, never a second.
      for (auto& one : s.all)
        if (one.terminals == 0) one.client->send("cancel", {{"request_id", one.id}});
      s.pump(1500ms);
      for (const auto& one : s.all) {
        INFO(one.id << ": " << one.terminal);
        CHECK(one.terminals == 1);
      }
      CHECK(run_one(server.endpoint, std::string("after-") + sc.stage) == "done");
    }
  }
  CHECK(server.proc->log().find("fault injection is on") != std::string::npos);
}
