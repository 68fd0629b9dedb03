#include "tokenizer/detokenizer.hpp"

#include <algorithm>

#include "base/utf8.hpp"

namespace rampart::model {

std::optional<detokenizer> detokenizer::create(const tokenizer& tok, detokenizer_options options,
                                                std::string* error) {
  for (size_t i = 0; i < options.stop_strings.size(); ++i) {
    const std::string& s = options.stop_strings[i];
    if (s.empty()) {
      *error = "stop string " + std::to_string(i) + " is empty";
      return std::nullopt;
    }
    if (!utf8::is_valid(s)) {
      *error = "stop string " + std::to_string(i) + " is not valid UTF-8";
      return std::nullopt;
    }
  }
  return detokenizer(tok, std::move(options));
}

detokenizer::delta detokenizer::feed(token_id id) {
  out_.clear();
  if (stopped() || finished_) return make_delta();
  std::string_view bytes = tok_->token_bytes(id, options_.skip_special);
  ++tokens_fed_;
  input_bytes_ += bytes.size();
  tokens_.push_back({input_bytes_, kUnknown});
  if (!bytes.empty()) {
    std::string_view input = bytes;
    std::string joined;
    if (!pending_bytes_.empty()) {
      joined = pending_bytes_;
      joined.append(bytes);
      input = joined;
    }
    size_t before = held_text_.size();
    size_t consumed = utf8::append_lossy(input, false, &held_text_);
    converted_text_ += held_text_.size() - before;
    converted_input_ += consumed;
    pending_bytes_.assign(input.substr(consumed));
  }
  release_text(false);
  return make_delta();
}

detokenizer::delta detokenizer::finish() {
  out_.clear();
  if (stopped() || finished_) return make_delta();
  finished_ = true;
  size_t before = held_text_.size();
  utf8::append_lossy(pending_bytes_, true, &held_text_);
  converted_text_ += held_text_.size() - before;
  converted_input_ += pending_bytes_.size();
  pending_bytes_.clear();
  release_text(true);
  return make_delta();
}

void detokenizer::release_text(bool final) {
  const std::vector<std::string>& stops = options_.stop_strings;
  // The match that completes first in the text wins (on a tie, the one starting first), so the outcome does not
  // depend on how the text was split into tokens.
  size_t best_start = std::string::npos, best_end = std::string::npos;
  for (size_t i = 0; i < stops.size(); ++i) {
    size_t at = held_text_.find(stops[i]);
    if (at == std::string::npos) continue;
    size_t end = at + stops[i].size();
    if (end < best_end || (end == best_end && at < best_start)) {
      best_start = at;
      best_end = end;
      stop_index_ = static_cast<int>(i);
    }
  }
  size_t emit = held_text_.size();
  if (best_start != std::string::npos) {
    emit = best_start;
  } else if (!final) {
    // Hold back the longest suffix that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const std::string& s : stops) {
      for (size_t k = std::min(s.size() - 1, held_text_.size()); k > keep; --k) {
        if (held_text_.compare(held_text_.size() - k, k, s, 0, k) == 0) {
          keep = k;
          break;
        }
      }
    }
    emit = held_text_.size() - keep;
  }
  out_.append(held_text_, 0, emit);
  emitted_text_ += emit;
  if (stopped()) {
    held_text_.clear();
    pending_bytes_.clear();
  } else {
    held_text_.erase(0, emit);
  }
}

detokenizer::delta detokenizer::make_delta() {
  if (stopped() || finished_) {
    tokens_.clear();
    tokens_done_ = tokens_fed_;
  } else {
    for (pending_token& t : tokens_) {
      if (t.text_end != kUnknown) continue;
      if (t.input_end > converted_input_) break;
      t.text_end = converted_text_;
    }
    while (!tokens_.empty() && tokens_.front().text_end != kUnknown && tokens_.front().text_end <= emitted_text_) {
      tokens_.pop_front();
      ++tokens_done_;
    }
  }
  delta d;
  d.text = out_;
  d.stopped = stopped();
  d.tokens_done = tokens_done_;
  return d;
}

}  // namespace rampart::model
