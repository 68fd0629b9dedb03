#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <cstring>

#include "base/file.hpp"
#include "base/utf8.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "tokenizer/tokenizer_pretokenizer.hpp"

namespace rampart::model {

// ---- added_token_matcher ----

void added_token_matcher::add(std::string_view content, token_id id) {
  int32_t n = 0;
  for (unsigned char b : content) {
    int32_t next = child(n, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[static_cast<size_t>(n)].children.emplace_back(b, next);
      nodes_.emplace_back();
    }
    n = next;
  }
  nodes_[static_cast<size_t>(n)].token = id;
  auto first = static_cast<unsigned char>(content[0]);
  if (!first_byte_[first]) {
    first_byte_[first] = true;
    ++distinct_first_bytes_;
    only_first_byte_ = first;
  }
}

size_t added_token_matcher::find(std::string_view text, size_t from, size_t to, size_t* length,
                                 token_id* id) const {
  if (empty()) return to;
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t pos = from; pos < to; ++pos) {
    if (distinct_first_bytes_ == 1) {
      const void* hit = std::memchr(p + pos, only_first_byte_, to - pos);
      if (hit == nullptr) return to;
      pos = static_cast<size_t>(static_cast<const unsigned char*>(hit) - p);
    } else if (!first_byte_[p[pos]]) {
      continue;
    }
    int32_t n = 0;
    size_t best = 0;
    for (size_t k = pos; k < to; ++k) {
      n = child(n, p[k]);
      if (n < 0) break;
      if (nodes_[static_cast<size_t>(n)].token >= 0) {
        best = k + 1 - pos;
        *id = nodes_[static_cast<size_t>(n)].token;
      }
    }
    if (best > 0) {
      *length = best;
      return pos;
    }
  }
  return to;
}

namespace {

// ---- per-thread cache of merged pieces ----

struct cache_entry {
  uint64_t owner;  // tokenizer serial; 0 = empty
  uint8_t length;
  uint8_t count;
  char bytes[62];
  int32_t ids[14];
};
static_assert(sizeof(cache_entry) == 128, "two cache lines per entry");
constexpr size_t kCacheEntries = 1 << 14;
constexpr size_t kCacheMaxBytes = sizeof(cache_entry::bytes);
constexpr size_t kCacheMaxIds = sizeof(cache_entry::ids) / sizeof(int32_t);

// Direct-mapped: a colliding piece overwrites the older one, so memory stays at 2 MiB per thread.
struct piece_cache {
  std::unique_ptr<cache_entry[]> entries;
  cache_entry& slot(const unsigned char* p, size_t n) {
    if (!entries) entries.reset(new cache_entry[kCacheEntries]());
    uint64_t h = n * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i += 8) {
      uint64_t w = 0;
      std::memcpy(&w, p + i, std::min<size_t>(8, n - i));
      h = (h ^ w) * 0xFF51AFD7ED558CCDull;
      h ^= h >> 32;
    }
    return entries[h & (kCacheEntries - 1)];
  }
};

struct encode_scratch {
  std::vector<uint8_t> classes;
  std::vector<size_t> ends;
  std::vector<int32_t> start_ids;
  piece_cache cache;
};
thread_local encode_scratch t_scratch;

// Writes to OUT the tokens that BPE of the piece P[0..N) starts from: each character's start from the table, or
// else its bytes; returns how many (at most N). Pieces hold whole characters of valid UTF-8; should a sequence be
// cut short anyway, its bytes are used.
size_t start_tokens(const tokenizer::impl& t, const unsigned char* p, size_t n, int32_t* out) {
  size_t m = 0;
  for (size_t i = 0; i < n;) {
    unsigned char b = p[i];
    if (b < 0x80) {
      out[m++] = t.byte_ids[b];
      ++i;
      continue;
    }
    if (b >= 0xC0 && b < 0xF0) {
      size_t length = b < 0xE0 ? 2 : 3;
      if (i + length <= n) {
        uint32_t cp = length == 2 ? (uint32_t{b} & 0x1F) << 6 | (p[i + 1] & 0x3Fu)
                                  : (uint32_t{b} & 0x0F) << 12 | (p[i + 1] & 0x3Fu) << 6 | (p[i + 2] & 0x3Fu);
        const bpe_char_starts::start& s = t.char_starts.of(cp);
        if (s.first >= 0) {
          out[m++] = s.first;
          if (s.second >= 0) out[m++] = s.second;
          i += length;
          continue;
        }
      }
    }
    out[m++] = t.byte_ids[b];
    ++i;
  }
  return m;
}

void encode_piece(const tokenizer::impl& t, const unsigned char* p, size_t n, std::vector<token_id>* out) {
  if (n == 1) {
    out->push_back(t.byte_ids[p[0]]);
    return;
  }
  cache_entry* entry = nullptr;
  if (n <= kCacheMaxBytes) {
    entry = &t_scratch.cache.slot(p, n);
    if (entry->owner == t.serial && entry->length == n && std::memcmp(entry->bytes, p, n) == 0) {
      out->insert(out->end(), entry->ids, entry->ids + entry->count);
      return;
    }
    int32_t ids[kCacheMaxBytes];
    size_t before = out->size();
    bpe_merge(t.merges, ids, start_tokens(t, p, n, ids), out);
    size_t count = out->size() - before;
    if (count <= kCacheMaxIds) {
      entry->owner = t.serial;
      entry->length = static_cast<uint8_t>(n);
      entry->count = static_cast<uint8_t>(count);
      std::memcpy(entry->bytes, p, n);
      std::copy(out->begin() + static_cast<std::ptrdiff_t>(before), out->end(), entry->ids);
    }
    return;
  }
  std::vector<int32_t>& ids = t_scratch.start_ids;
  ids.resize(n);
  bpe_merge(t.merges, ids.data(), start_tokens(t, p, n, ids.data()), out);
}

// Encodes valid UTF-8 TEXT with no added-token matching.
void encode_plain(const tokenizer::impl& t, std::string_view text, std::vector<token_id>* out) {
  if (text.empty()) return;
  std::vector<size_t>& ends = t_scratch.ends;
  ends.clear();
  pretokenize(text, &t_scratch.classes, &ends);
  auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t start = 0;
  for (size_t end : ends) {
    encode_piece(t, p + start, end - start, out);
    start = end;
  }
}

struct special_match {
  size_t pos, length;
  token_id id;
};

// Appends the added tokens found in TEXT[FROM, TO) to *MATCHES, in order: raw ones first, then normalized ones
// in the stretches between.
void find_specials(const tokenizer::impl& t, std::string_view text, size_t from, size_t to,
                   std::vector<special_match>* matches) {
  size_t pos = from;
  for (;;) {
    size_t length = 0;
    token_id id = -1;
    size_t raw = t.raw_added.find(text, pos, to, &length, &id);
    for (size_t q = pos;;) {
      size_t nlength = 0;
      token_id nid = -1;
      size_t hit = t.normalized_added.find(text, q, raw, &nlength, &nid);
      if (hit == raw) break;
      matches->push_back({hit, nlength, nid});
      q = hit + nlength;
    }
    if (raw == to) return;
    matches->push_back({raw, length, id});
    pos = raw + length;
  }
}

void encode_with_matches(const tokenizer::impl& t, std::string_view text,
                         const std::vector<special_match>& matches, std::vector<token_id>* out) {
  size_t pos = 0;
  for (const special_match& m : matches) {
    encode_plain(t, text.substr(pos, m.pos - pos), out);
    out->push_back(m.id);
    pos = m.pos + m.length;
  }
  encode_plain(t, text.substr(pos), out);
}

// tokenizer.json of DeepSeek-V3 is 7.5 MiB; this leaves room for any real vocabulary.
constexpr int64_t kMaxTokenizerFileBytes = int64_t{64} << 20;

}  // namespace

// ---- tokenizer ----

tokenizer::tokenizer(std::unique_ptr<impl> impl) : impl_(std::move(impl)) {}
tokenizer::~tokenizer() = default;

std::unique_ptr<tokenizer> tokenizer::from_json(std::string_view tokenizer_json, std::string_view config_json,
                                                std::string* error) {
  auto state = std::make_unique<impl>();
  if (!load_tokenizer(tokenizer_json, config_json, state.get(), error)) return nullptr;
  return std::unique_ptr<tokenizer>(new tokenizer(std::move(state)));
}

std::unique_ptr<tokenizer> tokenizer::load(const std::string& dir, std::string* error) {
  std::string tokenizer_json, config_json;
  for (auto [name, text] : {std::pair{"tokenizer.json", &tokenizer_json}, {"tokenizer_config.json", &config_json}}) {
    std::string why;
    if (!read_regular_file(dir + "/" + name, kMaxTokenizerFileBytes, text, &why)) {
      *error = dir + "/" + name + ": cannot read the file: " + why;
      return nullptr;
    }
  }
  auto result = from_json(tokenizer_json, config_json, error);
  if (!result) *error = dir + "/" + *error;
  return result;
}

void tokenizer::encode(std::string_view text, bool parse_special, std::vector<token_id>* out) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::to_valid(text);
    text = repaired;
  }
  if (!parse_special) {
    encode_plain(*impl_, text, out);
    return;
  }
  std::vector<special_match> matches;
  find_specials(*impl_, text, 0, text.size(), &matches);
  encode_with_matches(*impl_, text, matches, out);
}

std::vector<token_id> tokenizer::encode(std::string_view text, bool parse_special) const {
  std::vector<token_id> out;
  encode(text, parse_special, &out);
  return out;
}

void tokenizer::encode_segments(const std::vector<text_segment>& segments, std::vector<token_id>* out) const {
  std::string text;
  std::vector<special_match> matches;
  for (const text_segment& s : segments) {
    size_t from = text.size();
    if (utf8::is_valid(s.text)) {
      text.append(s.text);
    } else {
      utf8::append_lossy(s.text, true, &text);
    }
    if (s.parse_special) find_specials(*impl_, text, from, text.size(), &matches);
  }
  encode_with_matches(*impl_, text, matches, out);
}

std::string_view tokenizer::token_bytes(token_id id, bool skip_special) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->flags.size()) return {};
  uint8_t f = impl_->flags[static_cast<size_t>(id)];
  if (!(f & kHasToken) || (skip_special && (f & kSpecial))) return {};
  uint32_t begin = impl_->offsets[static_cast<size_t>(id)];
  return std::string_view(impl_->bytes).substr(begin, impl_->offsets[static_cast<size_t>(id) + 1] - begin);
}

void tokenizer::decode(const token_id* ids, size_t n, bool skip_special, std::string* out) const {
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += token_bytes(ids[i], skip_special).size();
  size_t start = out->size();
  out->resize(start + total);
  char* w = out->data() + start;
  for (size_t i = 0; i < n; ++i) {
    std::string_view b = token_bytes(ids[i], skip_special);
    if (b.empty()) continue;  // memcpy from an empty view's null pointer is undefined
    std::memcpy(w, b.data(), b.size());
    w += b.size();
  }
  if (!utf8::is_valid(std::string_view(*out).substr(start))) {
    std::string raw = out->substr(start);
    out->resize(start);
    utf8::append_lossy(raw, true, out);
  }
}

std::string tokenizer::decode(const std::vector<token_id>& ids, bool skip_special) const {
  std::string out;
  decode(ids.data(), ids.size(), skip_special, &out);
  return out;
}

bool tokenizer::has_token(token_id id) const { return !token_bytes(id).empty(); }

bool tokenizer::is_special(token_id id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->flags.size() &&
         (impl_->flags[static_cast<size_t>(id)] & kSpecial);
}

std::optional<token_id> tokenizer::added_token_id(std::string_view content) const {
  auto it = std::lower_bound(impl_->added_by_content.begin(), impl_->added_by_content.end(), content,
                             [](const auto& entry, std::string_view c) { return entry.first < c; });
  if (it != impl_->added_by_content.end() && it->first == content) return it->second;
  return std::nullopt;
}

token_id tokenizer::vocab_size() const { return static_cast<token_id>(impl_->flags.size()); }
token_id tokenizer::bos_id() const { return impl_->bos; }
token_id tokenizer::eos_id() const { return impl_->eos; }
const std::string& tokenizer::bos_text() const { return impl_->bos_text; }
const std::string& tokenizer::eos_text() const { return impl_->eos_text; }
bool tokenizer::add_bos_token() const { return impl_->add_bos; }
const std::string& tokenizer::chat_template_source() const { return impl_->chat_template; }

}  // namespace rampart::model
