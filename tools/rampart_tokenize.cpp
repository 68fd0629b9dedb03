// rampart-tokenize: DeepSeek-V3 tokenization from the command line (encode, decode, chat prompts, benchmark).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tools/flags.hpp"

using namespace rampart::model;
using nlohmann::json;

namespace {

const char kUsage[] =
    "usage: rampart-tokenize --tokenizer DIR [--mode lines|file|jsonl] [--decode] [--skip-special] [--bos]\n"
    "                        [--chat] [--count] [--bench FILE]\n"
    "\n"
    "  Reads standard input and writes one JSON object per line.\n"
    "  --mode lines   encode each line (without its newline): {\"ids\": [...]} per line (the default)\n"
    "  --mode file    encode the whole input as one text\n"
    "  --mode jsonl   encode the \"text\" field of each JSON object line\n"
    "  --decode       read {\"ids\": [...]} lines, write {\"text\": ...}; --skip-special drops BOS/EOS and the like\n"
    "  --bos          put the BOS id before each encoding (what transformers' Python does for plain text)\n"
    "  --chat         read a JSON array of messages, write the DeepSeek-V3 chat prompt's ids (with the\n"
    "                 generation prompt)\n"
    "  --count        write only the number of tokens of each encoding\n"
    "  --bench FILE   time loading tokenizer.json, then encoding and decoding FILE on one thread (a .jsonl FILE\n"
    "                 is taken record by record, its \"text\" fields; anything else as one text)\n";

struct options {
  std::string dir, mode = "lines", bench_file;
  bool decode = false, skip_special = false, bos = false, chat = false, count = false;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "rampart-tokenize: %s\n", message.c_str());
  std::exit(1);
}

void parse_args(int argc, char** argv, options* o) {
  rampart::tools::flags f(argc, argv, "rampart-tokenize", kUsage);
  while (f.next()) {
    if (f.is("--tokenizer")) o->dir = f.value();
    else if (f.is("--mode")) {
      o->mode = f.value();
      if (o->mode != "lines" && o->mode != "file" && o->mode != "jsonl") f.fail("--mode must be lines, file or jsonl");
    } else if (f.is("--bench")) o->bench_file = f.value();
    else if (f.is("--decode")) o->decode = true;
    else if (f.is("--skip-special")) o->skip_special = true;
    else if (f.is("--bos")) o->bos = true;
    else if (f.is("--chat")) o->chat = true;
    else if (f.is("--count")) o->count = true;
    else f.unknown();
  }
  if (o->dir.empty()) f.fail("--tokenizer DIR is required");
  if (o->decode + o->chat + !o->bench_file.empty() > 1) f.fail("--decode, --chat and --bench exclude each other");
}

void print_ids(const std::vector<token_id>& ids, bool count) {
  if (count) {
    std::printf("%zu\n", ids.size());
    return;
  }
  std::string line = "{\"ids\": [";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ", ";
    line += std::to_string(ids[i]);
  }
  line += "]}\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

std::string read_all(std::istream& in) {
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

std::vector<token_id> encode_one(const tokenizer& tok, const std::string& text, const options& o) {
  std::vector<token_id> ids;
  if (o.bos) ids.push_back(tok.bos_id());
  tok.encode(text, true, &ids);
  return ids;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of the calling thread: steadier than wall time on a shared machine.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int bench(const options& o) {
  std::ifstream in(o.bench_file, std::ios::binary);
  if (!in) die(o.bench_file + ": cannot read the file");
  std::string raw = read_all(in);
  std::vector<std::string> texts;
  if (o.bench_file.size() > 6 && o.bench_file.compare(o.bench_file.size() - 6, 6, ".jsonl") == 0) {
    std::istringstream lines(raw);
    std::string line;
    for (size_t n = 1; std::getline(lines, line); ++n) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
        die(o.bench_file + ":" + std::to_string(n) + ": expected an object with a string \"text\"");
      }
      texts.push_back(j["text"].get<std::string>());
    }
  } else {
    texts.push_back(raw);
  }
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();

  std::vector<double> loads;
  std::unique_ptr<tokenizer> tok;
  for (int i = 0; i < 5; ++i) {
    std::string error;
    auto t0 = std::chrono::steady_clock::now();
    tok = tokenizer::load(o.dir, &error);
    loads.push_back(seconds_since(t0));
    if (!tok) die(error);
  }
  std::sort(loads.begin(), loads.end());

  std::vector<std::vector<token_id>> ids(texts.size());
  auto encode_pass = [&] {
    for (size_t i = 0; i < texts.size(); ++i) {
      ids[i].clear();
      tok->encode(texts[i], true, &ids[i]);
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  encode_pass();  // the first pass fills this thread's piece cache
  double cold = seconds_since(t0);
  size_t tokens = 0;
  for (const auto& v : ids) tokens += v.size();

  // Repeat each measurement for at least two seconds; report the median pass, by wall and by thread CPU time.
  struct timing {
    double wall, cpu;
  };
  auto median_pass = [](auto&& pass) {
    std::vector<double> walls, cpus;
    auto start = std::chrono::steady_clock::now();
    while (walls.size() < 3 || (seconds_since(start) < 2.0 && walls.size() < 500)) {
      auto t = std::chrono::steady_clock::now();
      double c = thread_cpu_seconds();
      pass();
      cpus.push_back(thread_cpu_seconds() - c);
      walls.push_back(seconds_since(t));
    }
    std::sort(walls.begin(), walls.end());
    std::sort(cpus.begin(), cpus.end());
    return timing{walls[walls.size() / 2], cpus[cpus.size() / 2]};
  };
  timing encode_s = median_pass(encode_pass);
  std::string text;
  timing decode_s = median_pass([&] {
    for (const auto& v : ids) {
      text.clear();
      tok->decode(v.data(), v.size(), false, &text);
    }
  });
  double mb = static_cast<double>(bytes) / 1e6;
  std::printf("file: %s (%zu texts, %.2f MB, %zu tokens, %.2f bytes/token)\n", o.bench_file.c_str(), texts.size(),
              mb, tokens, static_cast<double>(bytes) / static_cast<double>(tokens));
  std::printf("load tokenizer.json + tokenizer_config.json: %.1f ms (median of 5; min %.1f ms)\n",
              loads[loads.size() / 2] * 1e3, loads[0] * 1e3);
  std::printf("encode, one thread: %.1f MB/s wall, %.1f MB/s by CPU time (first pass, cold piece cache: %.1f MB/s)\n",
              mb / encode_s.wall, mb / encode_s.cpu, mb / cold);
  std::printf("decode, one thread: %.1f MB/s wall, %.1f MB/s by CPU time (%.1f M tokens/s)\n", mb / decode_s.wall,
              mb / decode_s.cpu, static_cast<double>(tokens) / decode_s.wall / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  parse_args(argc, argv, &o);
  if (!o.bench_file.empty()) return bench(o);

  std::string error;
  auto tok = tokenizer::load(o.dir, &error);
  if (!tok) die(error);

  if (o.chat) {
    json messages = json::parse(read_all(std::cin), nullptr, false);
    if (messages.is_discarded()) die("standard input is not valid JSON (expected an array of messages)");
    std::vector<chat_message> parsed;
    if (!parse_chat_messages(messages, &parsed, &error)) die(error);
    auto tmpl = chat_template::create(*tok, &error);
    if (!tmpl) die(error);
    std::vector<token_id> ids;
    if (!tmpl->encode(parsed, true, &ids, &error)) die(error);
    print_ids(ids, o.count);
    return 0;
  }
  if (o.mode == "file" && !o.decode) {
    print_ids(encode_one(*tok, read_all(std::cin), o), o.count);
    return 0;
  }
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    if (o.decode || o.mode == "jsonl") {
      json j = json::parse(line, nullptr, false);
      const char* field = o.decode ? "ids" : "text";
      if (j.is_discarded() || !j.is_object() || !j.contains(field)) {
        die("line " + std::to_string(n) + ": expected a JSON object with \"" + field + "\"");
      }
      if (o.decode) {
        std::vector<token_id> ids;
        for (const json& v : j["ids"].is_array() ? j["ids"] : json::array({nullptr})) {
          if (!v.is_number_integer()) die("line " + std::to_string(n) + ": \"ids\" must be an array of integers");
          int64_t id = v.get<int64_t>();
          ids.push_back(id < INT32_MIN || id > INT32_MAX ? -1 : static_cast<token_id>(id));
        }
        std::printf("%s\n", json{{"text", tok->decode(ids, o.skip_special)}}.dump().c_str());
      } else {
        if (!j["text"].is_string()) die("line " + std::to_string(n) + ": \"text\" must be a string");
        print_ids(encode_one(*tok, j["text"].get<std::string>(), o), o.count);
      }
    } else {
      print_ids(encode_one(*tok, line, o), o.count);
    }
  }
  return 0;
}
