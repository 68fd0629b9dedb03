// Loading: a small well-formed tokenizer.json built here loads and encodes as its merges say; every kind of
// malformed or unsupported file gets a one-line error naming the file and the problem, never a crash.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/paths.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_pretokenizer.hpp"

using namespace rampart::model;
using nlohmann::json;

namespace {

// The character of byte B in the byte-level alphabet (shared/specs/tokenizer.md §3.2 step 4), as UTF-8.
std::string alphabet_char(int b) {
  int next = 0x100;
  for (int x = 0; x < 256; ++x) {
    bool self = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
    int cp = self ? x : next++;
    if (x != b) continue;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
  }
  return {};
}

// A minimal DeepSeek-V3-shaped tokenizer: BOS 0, EOS 1, bytes 2..257, merges "Ġ t" -> 258, "Ġt he" -> 259
// ... built up so that " the" is one token.
json minimal_tokenizer() {
  json vocab = json::object();
  vocab["<s>"] = 0;
  vocab["</s>"] = 1;
  for (int b = 0; b < 256; ++b) vocab[alphabet_char(b)] = 2 + b;
  vocab["Ġt"] = 258;
  vocab["he"] = 259;
  vocab["Ġthe"] = 260;
  auto split = [](const char* pattern) -> json {
    return json{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}};
  };
  return json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       json::array({{{"id", 0}, {"content", "<s>"}, {"special", true}, {"normalized", false}, {"lstrip", false},
                     {"rstrip", false}, {"single_word", false}},
                    {{"id", 1}, {"content", "</s>"}, {"special", true}, {"normalized", false}, {"lstrip", false},
                     {"rstrip", false}, {"single_word", false}}})},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({split(kDeepSeekV3SplitPatterns[0]), split(kDeepSeekV3SplitPatterns[1]),
                      split(kDeepSeekV3SplitPatterns[2]),
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                       {"use_regex", false}}})}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", json::array({"Ġ t", "h e", "Ġt he"})}}}};
}

const char* kConfig = R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true})";

// Loads TOKENIZER_JSON; returns the error (empty when it loaded).
std::string load_error(const std::string& tokenizer_json, const std::string& config = kConfig) {
  std::string error;
  auto tok = tokenizer::from_json(tokenizer_json, config, &error);
  if (tok) return "";
  CHECK(!error.empty());
  CHECK(error.find('\n') == std::string::npos);
  return error;
}

}  // namespace

TEST_CASE("a minimal well-formed tokenizer.json loads and merges by its ranks", "[tokenizer]") {
  std::string error;
  auto tok = tokenizer::from_json(minimal_tokenizer().dump(), kConfig, &error);
  INFO(error);
  REQUIRE(tok);
  // " the" -> Ġ t h e -> (rank 0) Ġt h e -> (rank 1) Ġt he -> (rank 2) Ġthe.
  CHECK(tok->encode(" the") == std::vector<token_id>{260});
  CHECK(tok->encode("<s> th") == std::vector<token_id>{0, 258, 2 + 'h'});
  CHECK(tok->decode({0, 260, 1}, true) == " the");
  CHECK(tok->bos_id() == 0);
  CHECK(tok->eos_id() == 1);
  // Merges in the newer two-element form load the same way.
  json pairs = minimal_tokenizer();
  pairs["model"]["merges"] = json::array({{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}});
  auto tok2 = tokenizer::from_json(pairs.dump(), kConfig, &error);
  REQUIRE(tok2);
  CHECK(tok2->encode(" the") == std::vector<token_id>{260});
}

TEST_CASE("text that is not JSON is refused with its position", "[tokenizer]") {
  CHECK(load_error("").find("tokenizer.json") != std::string::npos);
  CHECK(load_error("not json").find("not valid JSON") != std::string::npos);
  std::string text = minimal_tokenizer().dump();
  CHECK(load_error(text.substr(0, text.size() / 2)).find("not valid JSON") != std::string::npos);
  CHECK(load_error(text + "}").find("after the top-level object") != std::string::npos);
  CHECK(load_error("[1, 2]").find("not valid JSON") != std::string::npos);
  CHECK(load_error("{\"model\": {\"vocab\": {\"a\": 1.5}}}").find("integer") != std::string::npos);
  CHECK(load_error("{\"model\": {\"vocab\": {\"\\ud800\": 1}}}").find("surrogate") != std::string::npos);
  CHECK(load_error("{\"model\": {\"vocab\": {\"\xFF\": 1}}}").find("UTF-8") != std::string::npos);
}

TEST_CASE("a model other than byte-level BPE is refused", "[tokenizer]") {
  json j = minimal_tokenizer();
  j["model"]["type"] = "WordPiece";
  CHECK(load_error(j.dump()).find("unsupported model type") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["dropout"] = 0.1;
  CHECK(load_error(j.dump()).find("dropout") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["ignore_merges"] = true;
  CHECK(load_error(j.dump()).find("ignore_merges") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["unk_token"] = "<unk>";
  CHECK(load_error(j.dump()).find("unk_token") != std::string::npos);
}

TEST_CASE("missing or inconsistent vocab and merges are refused", "[tokenizer]") {
  json j = minimal_tokenizer();
  j["model"].erase("merges");
  CHECK(load_error(j.dump()).find("no \"merges\"") != std::string::npos);
  j = minimal_tokenizer();
  j["model"].erase("vocab");
  CHECK(load_error(j.dump()).find("no \"vocab\"") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["merges"].push_back("x y z");
  CHECK(load_error(j.dump()).find("one space") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["merges"].push_back("Ġthe Ġthe");  // makes a token the vocab lacks
  CHECK(load_error(j.dump()).find("missing from the vocab") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["merges"].push_back("h e");
  CHECK(load_error(j.dump()).find("repeats") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["vocab"].erase(alphabet_char(0x41));
  CHECK(load_error(j.dump()).find("byte 0x41") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["vocab"]["x"] = -4;
  CHECK(load_error(j.dump()).find("out of range") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["vocab"]["Ġthe"] = 1 << 20;  // a merge makes it; the merge table holds ids below 2^20 - 1
  CHECK(load_error(j.dump()).find("merge table's limits") != std::string::npos);
  j = minimal_tokenizer();
  j["model"]["vocab"][alphabet_char('h')] = 1 << 20;
  CHECK(load_error(j.dump()).find("merge table's limit") != std::string::npos);
}

TEST_CASE("pre-tokenizers, normalizers and decoders other than DeepSeek-V3's are refused", "[tokenizer]") {
  json j = minimal_tokenizer();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  CHECK(load_error(j.dump()).find("unsupported pre_tokenizer") != std::string::npos);
  j = minimal_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][2]["pattern"]["Regex"] = "\\s+";
  CHECK(load_error(j.dump()).find("pattern other than DeepSeek-V3's") != std::string::npos);
  j = minimal_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  CHECK(load_error(j.dump()).find("Isolated") != std::string::npos);
  j = minimal_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][3]["add_prefix_space"] = true;
  CHECK(load_error(j.dump()).find("ByteLevel") != std::string::npos);
  j = minimal_tokenizer();
  j["normalizer"] = {{"type", "NFKC"}};
  CHECK(load_error(j.dump()).find("unsupported normalizer: NFKC") != std::string::npos);
  j = minimal_tokenizer();
  j["decoder"] = {{"type", "Metaspace"}};
  CHECK(load_error(j.dump()).find("unsupported decoder") != std::string::npos);
  j = minimal_tokenizer();
  j["post_processor"] = {{"type", "TemplateProcessing"}};
  CHECK(load_error(j.dump()).find("unsupported post_processor") != std::string::npos);
  j = minimal_tokenizer();
  j["truncation"] = {{"max_length", 5}};
  CHECK(load_error(j.dump()).find("truncation") != std::string::npos);
}

TEST_CASE("added tokens and tokenizer_config.json are checked", "[tokenizer]") {
  json j = minimal_tokenizer();
  j["added_tokens"][0]["lstrip"] = true;
  CHECK(load_error(j.dump()).find("lstrip") != std::string::npos);
  j = minimal_tokenizer();
  j["added_tokens"][0]["special"] = "yes";
  CHECK(load_error(j.dump()).find("tokenizer.json") != std::string::npos);
  j = minimal_tokenizer();
  j["added_tokens"].push_back({{"id", 9}, {"content", "<s>"}});
  CHECK(load_error(j.dump()).find("appears twice") != std::string::npos);
  std::string ok = minimal_tokenizer().dump();
  CHECK(load_error(ok, "{").find("tokenizer_config.json") != std::string::npos);
  CHECK(load_error(ok, "{\"eos_token\": \"</s>\"}").find("bos_token") != std::string::npos);
  CHECK(load_error(ok, "{\"bos_token\": \"<nope>\", \"eos_token\": \"</s>\"}").find("not a token") !=
        std::string::npos);
  CHECK(load_error(ok, "{\"bos_token\": 3, \"eos_token\": \"</s>\"}").find("bos_token") != std::string::npos);
}

TEST_CASE("a directory without the files gets an error naming the file", "[tokenizer]") {
  std::string error;
  CHECK(!tokenizer::load("/nonexistent-rampart-dir", &error));
  CHECK(error.find("/nonexistent-rampart-dir/tokenizer.json") != std::string::npos);
}

TEST_CASE("a tokenizer file that is a device or a FIFO is refused without reading it", "[tokenizer]") {
  const std::string dir = rampart::test::make_temp_dir("tokenizer-files");
  REQUIRE(::symlink("/dev/zero", (dir + "/tokenizer.json").c_str()) == 0);  // would fill memory if read
  std::ofstream(dir + "/tokenizer_config.json") << kConfig;
  std::string error;
  CHECK(!tokenizer::load(dir, &error));
  CHECK(error == dir + "/tokenizer.json: cannot read the file: not a regular file");
  REQUIRE(::unlink((dir + "/tokenizer.json").c_str()) == 0);
  REQUIRE(::mkfifo((dir + "/tokenizer.json").c_str(), 0600) == 0);  // nobody writes: must not block
  CHECK(!tokenizer::load(dir, &error));
  CHECK(error == dir + "/tokenizer.json: cannot read the file: not a regular file");
}
