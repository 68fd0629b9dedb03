// libFuzzer target for stop-string matching in the streaming detokenizer. The input holds up to three stop
// strings (each ended by a 0x00 byte) and then generated ids (three bytes each, taken modulo the vocabulary).
// Fed one id at a time, the emitted text must never contain a stop string; without a stop it must equal the
// one-shot decode; with a stop, the one-shot decode of the ids fed so far must read as the emitted text followed
// by the matched stop string. Tokenizer directory as in fuzz_tokenizer.
#include <cstdint>
#include <string>
#include <string_view>

#include "base/utf8.hpp"
#include "tests/fuzz/real_tokenizer.hpp"
#include "tokenizer/detokenizer.hpp"

using namespace rampart::model;

namespace {

void check(bool ok, const char* what) { rampart::fuzz::check(ok, "fuzz_stop", what); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const tokenizer& tok = rampart::fuzz::real_tokenizer("fuzz_stop");
  std::string_view in(reinterpret_cast<const char*>(data), size);
  detokenizer_options opts;
  while (opts.stop_strings.size() < 3) {
    const size_t end = in.find('\0');
    if (end == std::string_view::npos) break;
    opts.stop_strings.emplace_back(in.substr(0, std::min<size_t>(end, 256)));
    in.remove_prefix(end + 1);
  }
  bool options_ok = true;
  for (const auto& s : opts.stop_strings) options_ok = options_ok && !s.empty() && utf8::is_valid(s);
  std::string error;
  auto detok = detokenizer::create(tok, opts, &error);
  check(detok.has_value() == options_ok, "stop strings accepted or refused against the documented rule");
  if (!detok) return 0;

  std::vector<token_id> ids;
  std::string emitted;
  for (size_t i = 0; i + 3 <= in.size() && !detok->stopped(); i += 3) {
    const uint32_t raw = uint8_t(in[i]) | uint32_t(uint8_t(in[i + 1])) << 8 | uint32_t(uint8_t(in[i + 2])) << 16;
    const token_id id = static_cast<token_id>(raw % static_cast<uint32_t>(tok.vocab_size()));
    ids.push_back(id);
    emitted.append(detok->feed(id).text);
  }
  if (!detok->stopped()) emitted.append(detok->finish().text);
  for (const auto& s : opts.stop_strings) check(emitted.find(s) == std::string::npos, "a stop string was emitted");
  const std::string full = tok.decode(ids);
  if (!detok->stopped()) {
    check(emitted == full, "without a stop the streamed text differs from the one-shot decode");
  } else {
    const std::string& stop = opts.stop_strings[static_cast<size_t>(detok->stop_index())];
    check(full.compare(0, emitted.size(), emitted) == 0, "the streamed text is not a prefix of the decode");
    check(full.compare(emitted.size(), stop.size(), stop) == 0, "the matched stop string does not follow the text");
  }
  return 0;
}
