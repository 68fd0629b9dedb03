// Reading tokenizer.json and tokenizer_config.json into tokenizer::impl, rejecting anything not reproduced
// exactly. The vocab and merges are read by json_reader; the small sections by nlohmann::json.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "base/utf8.hpp"
#include "tokenizer/tokenizer_checks.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/tokenizer_json_reader.hpp"

namespace rampart::model {
namespace {

using nlohmann::json;

constexpr int64_t kMaxTokenId = 1 << 24;  // far above any real vocabulary; bounds memory for hostile files

// The byte-level alphabet: the character that stands for each byte, and back.
struct byte_alphabet {
  uint32_t char_of[256];
  int16_t byte_of[0x144];  // -1: not in the alphabet
  byte_alphabet() {
    std::fill(std::begin(byte_of), std::end(byte_of), int16_t{-1});
    uint32_t next = 0x100;
    for (uint32_t b = 0; b < 256; ++b) {
      bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      char_of[b] = self ? b : next++;
      byte_of[char_of[b]] = static_cast<int16_t>(b);
    }
  }
};
const byte_alphabet kAlphabet;

// The bytes a token string stands for, as the reference's ByteLevel decoder computes them: the alphabet's bytes
// when every character is in the alphabet, else the string's own UTF-8.
void token_string_bytes(std::string_view s, std::string* out) {
  size_t start = out->size();
  auto* p = reinterpret_cast<const unsigned char*>(s.data());
  auto* end = p + s.size();
  while (p < end) {
    int len;
    uint32_t cp = utf8::decode_valid(p, &len);
    if (cp >= 0x144 || kAlphabet.byte_of[cp] < 0) {
      out->resize(start);
      out->append(s);
      return;
    }
    out->push_back(static_cast<char>(kAlphabet.byte_of[cp]));
    p += len;
  }
}

// Token string -> id, over strings kept in one arena.
class vocab_index {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, -1);
  }
  // Returns false if S is already present.
  bool insert(std::string_view s, token_id id) {
    size_t i = hash(s) & (slots_.size() - 1);
    while (slots_[i] >= 0) {
      if (key(static_cast<size_t>(slots_[i])) == s) return false;
      i = (i + 1) & (slots_.size() - 1);
    }
    slots_[i] = static_cast<int32_t>(entries_.size());
    entries_.push_back({static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size()), id});
    arena_.append(s);
    return true;
  }
  token_id find(std::string_view s) const {
    size_t i = hash(s) & (slots_.size() - 1);
    while (slots_[i] >= 0) {
      if (key(static_cast<size_t>(slots_[i])) == s) return entries_[static_cast<size_t>(slots_[i])].id;
      i = (i + 1) & (slots_.size() - 1);
    }
    return -1;
  }
  size_t size() const { return entries_.size(); }
  std::string_view key(size_t e) const { return std::string_view(arena_).substr(entries_[e].offset, entries_[e].length); }
  token_id id(size_t e) const { return entries_[e].id; }
  bool full() const { return (entries_.size() + 1) * 2 > slots_.size(); }

 private:
  static size_t hash(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
  struct entry {
    uint32_t offset, length;
    token_id id;
  };
  std::string arena_;
  std::vector<entry> entries_;
  std::vector<int32_t> slots_;
};

struct raw_model {
  std::map<std::string, json> small;  // every key but vocab and merges
  vocab_index vocab;
  bool has_vocab = false, has_merges = false;
  std::string merge_arena;                    // "left" "right" strings back to back
  std::vector<uint32_t> merge_parts;          // per merge: offset of left, offset of right, end of right
};

bool read_vocab(json_reader& r, raw_model* m) {
  m->vocab.reserve(1 << 17);
  std::string key;
  if (!r.begin_object()) return false;
  while (r.next_key(&key)) {
    int64_t id;
    if (!r.read_int(&id)) return false;
    if (id < 0 || id >= kMaxTokenId) return r.fail("vocab id out of range");
    if (m->vocab.full()) {
      vocab_index bigger;
      bigger.reserve(m->vocab.size() * 2);
      for (size_t e = 0; e < m->vocab.size(); ++e) bigger.insert(m->vocab.key(e), m->vocab.id(e));
      m->vocab = std::move(bigger);
    }
    if (!m->vocab.insert(key, static_cast<token_id>(id))) return r.fail("duplicate vocab entry");
  }
  return !r.failed();
}

bool read_merges(json_reader& r, raw_model* m) {
  std::string s, second;
  if (!r.begin_array()) return false;
  while (r.next_element()) {
    if (r.accept('[')) {  // the newer form: ["left", "right"]
      if (!r.read_string(&s) || !r.expect(',') || !r.read_string(&second) || !r.expect(']')) return false;
    } else {  // "left right"
      if (!r.read_string(&s)) return false;
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return r.fail("merge is not two tokens separated by one space");
      }
      second = s.substr(space + 1);
      s.resize(space);
    }
    if (s.empty() || second.empty()) return r.fail("merge with an empty token");
    m->merge_parts.push_back(static_cast<uint32_t>(m->merge_arena.size()));
    m->merge_arena += s;
    m->merge_parts.push_back(static_cast<uint32_t>(m->merge_arena.size()));
    m->merge_arena += second;
    m->merge_parts.push_back(static_cast<uint32_t>(m->merge_arena.size()));
  }
  return !r.failed();
}

bool parse_small(json_reader& r, json* out) {
  std::string_view span;
  if (!r.skip_value(&span)) return false;
  *out = json::parse(span.begin(), span.end(), nullptr, false);
  if (out->is_discarded()) return r.fail("malformed JSON value");
  return true;
}

bool read_model(json_reader& r, raw_model* m) {
  std::string key;
  if (!r.begin_object()) return false;
  while (r.next_key(&key)) {
    if ((key == "vocab" && m->has_vocab) || (key == "merges" && m->has_merges)) {
      return r.fail("\"" + key + "\" appears twice");
    }
    if (key == "vocab") {
      if (!read_vocab(r, m)) return false;
      m->has_vocab = true;
    } else if (key == "merges") {
      if (!read_merges(r, m)) return false;
      m->has_merges = true;
    } else if (!parse_small(r, &m->small[key])) {
      return false;
    }
  }
  return !r.failed();
}

bool fail(std::string* error, const char* file, const std::string& message) {
  *error = std::string(file) + ": " + message;
  return false;
}

bool read_tokenizer_json(std::string_view text, std::map<std::string, json>* top, raw_model* model,
                         std::string* error) {
  json_reader r(text);
  std::string key;
  bool has_model = false;
  if (r.begin_object()) {
    while (r.next_key(&key)) {
      if (key == "model") {
        if (!read_model(r, model)) break;
        has_model = true;
      } else if (!parse_small(r, &(*top)[key])) {
        break;
      }
    }
  }
  if (!r.failed() && !r.at_end()) r.fail("text after the top-level object");
  if (r.failed()) return fail(error, "tokenizer.json", "not valid JSON: " + r.error());
  if (!has_model) return fail(error, "tokenizer.json", "no \"model\"");
  if (!model->has_vocab) return fail(error, "tokenizer.json", "model has no \"vocab\"");
  if (!model->has_merges) return fail(error, "tokenizer.json", "model has no \"merges\"");
  return true;
}

// Fills the token byte table and flags of OUT from the vocab and the added tokens.
void build_token_table(const vocab_index& vocab, const std::vector<added_token_spec>& added,
                       tokenizer::impl* out) {
  token_id size = 0;
  for (size_t e = 0; e < vocab.size(); ++e) size = std::max(size, vocab.id(e) + 1);
  for (const auto& a : added) size = std::max(size, a.id + 1);
  std::vector<std::string_view> text(static_cast<size_t>(size));
  out->flags.assign(static_cast<size_t>(size), 0);
  for (size_t e = 0; e < vocab.size(); ++e) {
    text[static_cast<size_t>(vocab.id(e))] = vocab.key(e);
    out->flags[static_cast<size_t>(vocab.id(e))] = kHasToken;
  }
  for (const auto& a : added) {  // an added token's content wins over a vocab entry with the same id
    text[static_cast<size_t>(a.id)] = a.content;
    out->flags[static_cast<size_t>(a.id)] = kHasToken | kAdded | (a.special ? kSpecial : 0);
  }
  out->offsets.assign(static_cast<size_t>(size) + 1, 0);
  for (size_t id = 0; id < static_cast<size_t>(size); ++id) {
    token_string_bytes(text[id], &out->bytes);
    out->offsets[id + 1] = static_cast<uint32_t>(out->bytes.size());
  }
}

}  // namespace

bool load_tokenizer(std::string_view tokenizer_json, std::string_view config_json, tokenizer::impl* out,
                    std::string* error) {
  static std::atomic<uint64_t> next_serial{1};
  std::map<std::string, json> top;
  raw_model model;
  std::vector<added_token_spec> added;
  tokenizer_config config;
  try {
    if (!read_tokenizer_json(tokenizer_json, &top, &model, error)) return false;
    std::string message;
    if (!check_model_options(model.small, &message) || !check_pipeline(top, &message) ||
        !read_added_tokens(top.count("added_tokens") ? top["added_tokens"] : json(), &added, &message)) {
      return fail(error, "tokenizer.json", message);
    }
    if (!read_tokenizer_config(config_json, &config, &message)) return fail(error, "tokenizer_config.json", message);
  } catch (const json::exception& e) {
    return fail(error, "tokenizer.json", std::string("unexpected JSON content: ") + e.what());
  }

  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8::append_code_point(kAlphabet.char_of[b], &ch);
    out->byte_ids[b] = model.vocab.find(ch);
    if (out->byte_ids[b] < 0) {
      char msg[64];
      std::snprintf(msg, sizeof msg, "vocab has no token for byte 0x%02X", b);
      return fail(error, "tokenizer.json", msg);
    }
  }
  size_t merge_count = model.merge_parts.size() / 3;
  out->merges.reserve(merge_count);
  std::string joined;
  for (size_t r = 0; r < merge_count; ++r) {
    const uint32_t* part = &model.merge_parts[r * 3];
    std::string_view arena(model.merge_arena);
    std::string_view left = arena.substr(part[0], part[1] - part[0]);
    std::string_view right = arena.substr(part[1], part[2] - part[1]);
    joined.assign(left).append(right);
    token_id l = model.vocab.find(left), rt = model.vocab.find(right), merged = model.vocab.find(joined);
    if (l < 0 || rt < 0 || merged < 0) {
      return fail(error, "tokenizer.json",
                  "merge " + std::to_string(r) + " (\"" + std::string(left) + " " + std::string(right) +
                      "\") uses or makes a token missing from the vocab");
    }
    if (std::max({l, rt, merged}) >= bpe_merge_table::kIdLimit || r >= bpe_merge_table::kRankLimit) {
      return fail(error, "tokenizer.json",
                  "merge " + std::to_string(r) + " is beyond the merge table's limits (ids below " +
                      std::to_string(bpe_merge_table::kIdLimit) + ", ranks below " +
                      std::to_string(bpe_merge_table::kRankLimit) + ")");
    }
    if (!out->merges.insert(l, rt, static_cast<uint32_t>(r), merged)) {
      return fail(error, "tokenizer.json", "merge " + std::to_string(r) + " repeats an earlier merge");
    }
  }

  build_token_table(model.vocab, added, out);
  // The starts are derived from the bytes in the token table, where an added token's content replaces a vocab
  // entry with the same id; should a merge use such an id, every character keeps starting from its bytes.
  bool merges_use_added = false;
  out->merges.for_each([&](int32_t left, int32_t right, uint32_t, int32_t merged) {
    for (int32_t id : {left, right, merged}) merges_use_added |= (out->flags[static_cast<size_t>(id)] & kAdded) != 0;
  });
  if (!merges_use_added) out->char_starts.build(out->merges, out->byte_ids, out->bytes, out->offsets);
  for (const auto& a : added) {
    (a.normalized ? out->normalized_added : out->raw_added).add(a.content, a.id);
    out->added_by_content.emplace_back(a.content, a.id);
  }
  std::sort(out->added_by_content.begin(), out->added_by_content.end());
  for (size_t i = 1; i < out->added_by_content.size(); ++i) {
    if (out->added_by_content[i].first == out->added_by_content[i - 1].first) {
      return fail(error, "tokenizer.json", "added token \"" + out->added_by_content[i].first + "\" appears twice");
    }
  }

  auto id_of = [&](const std::string& content) -> token_id {
    auto it = std::lower_bound(out->added_by_content.begin(), out->added_by_content.end(),
                               std::make_pair(content, token_id{-1}));
    if (it != out->added_by_content.end() && it->first == content) return it->second;
    return model.vocab.find(content);
  };
  out->bos = id_of(config.bos_token);
  out->eos = id_of(config.eos_token);
  if (out->bos < 0) return fail(error, "tokenizer_config.json", "bos_token \"" + config.bos_token + "\" is not a token");
  if (out->eos < 0) return fail(error, "tokenizer_config.json", "eos_token \"" + config.eos_token + "\" is not a token");
  out->bos_text = config.bos_token;
  out->eos_text = config.eos_token;
  out->add_bos = config.add_bos_token;
  out->chat_template = config.chat_template;
  out->serial = next_serial.fetch_add(1);
  return true;
}

}  // namespace rampart::model
