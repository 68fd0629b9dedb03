#include "model/scheduler.hpp"

#include <algorithm>
#include <chrono>

namespace rampart::model {

const char* to_string(finish_reason r) {
  switch (r) {
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::cancelled: return "cancelled";
    case finish_reason::error: return "error";
    case finish_reason::expired: return "expired";
  }
  return "error";
}

namespace {
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct batch_scheduler::sequence {
  sequence_request req;
  std::vector<int32_t> tokens;  // prompt followed by every generated token
  int64_t prompt_len = 0;
  int64_t generated = 0;
  int64_t fed = 0;  // leading tokens already in the KV cache
  bool started = false;
  bool cancelled = false;
  int64_t cached_prompt_tokens = -1;  // from the first admission
  int64_t first_admitted_ms = -1;     // steady clock, at the first admission
  uint64_t admitted_at = 0;           // admission counter, for choosing preemption victims
  std::unique_ptr<sampler> smp;
};

batch_scheduler::batch_scheduler(engine* eng, scheduler_options options)
    : engine_(eng), options_(options), waiting_(static_cast<size_t>(std::max(1, options.priority_classes))) {}

batch_scheduler::~batch_scheduler() {
  for (auto& s : running_) engine_->release(s->req.id);
}

batch_scheduler::add_result batch_scheduler::add(sequence_request req, std::string* err) {
  if (req.prompt.empty()) {
    *err = "empty prompt";
    return add_result::bad_request;
  }
  if (by_id_.count(req.id)) {
    *err = "sequence id already in use";
    return add_result::bad_request;
  }
  if (req.priority < 0 || req.priority >= static_cast<int>(waiting_.size())) {
    *err = "priority class out of range";
    return add_result::bad_request;
  }
  if (req.max_tokens < 1) {
    *err = "max_tokens must be at least 1";
    return add_result::bad_request;
  }
  if (!sampler::validate(req.sampling, err)) return add_result::bad_request;
  const auto& cfg = engine_->config();
  const int64_t vocab = cfg.vocab_size;
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= vocab) {
      *err = "token id " + std::to_string(t) + " outside the vocabulary";
      return add_result::bad_request;
    }
  }
  const int64_t total = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
  const auto kv = engine_->kv();
  if ((cfg.max_position_embeddings > 0 && total > cfg.max_position_embeddings) ||
      (total + kv.block_tokens - 1) / kv.block_tokens > kv.total_blocks) {
    *err = "prompt plus max_tokens (" + std::to_string(total) + " tokens) exceeds the KV cache (" +
           std::to_string(kv.total_blocks * kv.block_tokens) + " tokens) or the model's context";
    return add_result::too_long;
  }
  int64_t waiting = 0;
  for (const auto& q : waiting_) waiting += static_cast<int64_t>(q.size());
  if (waiting >= options_.max_waiting) {
    *err = "the waiting queue is full";
    return add_result::queue_full;
  }
  auto s = std::make_unique<sequence>();
  s->tokens = req.prompt;
  s->prompt_len = static_cast<int64_t>(req.prompt.size());
  s->smp = std::make_unique<sampler>(req.sampling);
  s->req = std::move(req);
  by_id_[s->req.id] = s.get();
  waiting_[static_cast<size_t>(s->req.priority)].push_back(std::move(s));
  return add_result::queued;
}

bool batch_scheduler::cancel(uint64_t id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  it->second->cancelled = true;
  return true;
}

std::vector<finished_sequence> batch_scheduler::expire_waiting(int64_t now_ms,
                                                              const std::vector<int64_t>& max_wait_ms) {
  step_report out;
  for (size_t c = 0; c < waiting_.size() && c < max_wait_ms.size(); ++c) {
    if (max_wait_ms[c] <= 0) continue;
    auto& q = waiting_[c];
    for (auto it = q.begin(); it != q.end();) {
      sequence* s = it->get();
      if (s->cached_prompt_tokens < 0 && now_ms - s->req.arrival_ms > max_wait_ms[c]) {
        finish(s, finish_reason::expired, &out);
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  return std::move(out.finished);
}

bool batch_scheduler::has_work() const {
  if (!running_.empty()) return true;
  for (const auto& q : waiting_) {
    if (!q.empty()) return true;
  }
  return false;
}

void batch_scheduler::finish(sequence* s, finish_reason reason, step_report* out, std::string error) {
  finished_sequence f;
  f.id = s->req.id;
  f.reason = reason;
  f.prompt_tokens = s->prompt_len;
  f.completion_tokens = s->generated;
  f.cached_prompt_tokens = std::max<int64_t>(0, s->cached_prompt_tokens);
  f.queue_ms = std::max<int64_t>(0, (s->first_admitted_ms >= 0 ? s->first_admitted_ms : steady_ms()) -
                                        s->req.arrival_ms);
  f.error = std::move(error);
  out->finished.push_back(std::move(f));
  if (s->started) {
    engine_->release(s->req.id);
    s->started = false;
    if (--running_per_client_[s->req.client] <= 0) running_per_client_.erase(s->req.client);
  }
  by_id_.erase(s->req.id);
}

void batch_scheduler::reap_cancelled(step_report* out) {
  for (auto& q : waiting_) {
    for (auto it = q.begin(); it != q.end();) {
      if ((*it)->cancelled) {
        finish(it->get(), finish_reason::cancelled, out);
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = running_.begin(); it != running_.end();) {
    if ((*it)->cancelled) {
      finish(it->get(), finish_reason::cancelled, out);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

bool batch_scheduler::preempt_one(int max_priority_to_spare) {
  // Victim: the lowest class (largest number) above MAX_PRIORITY_TO_SPARE, most recently admitted first.
  auto victim = running_.end();
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if ((*it)->req.priority <= max_priority_to_spare) continue;
    if (victim == running_.end() || (*it)->req.priority > (*victim)->req.priority ||
        ((*it)->req.priority == (*victim)->req.priority && (*it)->admitted_at > (*victim)->admitted_at)) {
      victim = it;
    }
  }
  if (victim == running_.end()) return false;
  std::unique_ptr<sequence> s = std::move(*victim);
  running_.erase(victim);
  engine_->release(s->req.id);
  s->started = false;
  s->fed = 0;
  if (--running_per_client_[s->req.client] <= 0) running_per_client_.erase(s->req.client);
  ++preemptions_;
  waiting_[static_cast<size_t>(s->req.priority)].push_front(std::move(s));
  return true;
}

bool batch_scheduler::admit_waiting(int64_t* budget) {
  while (*budget > 0) {
    // The highest non-empty class; within it the client with the fewest running sequences.
    std::deque<std::unique_ptr<sequence>>* queue = nullptr;
    for (auto& q : waiting_) {
      if (!q.empty()) {
        queue = &q;
        break;
      }
    }
    if (!queue) return true;
    if (static_cast<int64_t>(running_.size()) >= options_.max_running) {
      // Every slot is taken: a waiting sequence of a higher class takes the slot of the lowest class running
      // (preempted by recompute, like a preemption for blocks), in this same step; otherwise it waits.
      if (preempt_one(queue->front()->req.priority)) continue;
      return true;
    }
    auto pick = queue->begin();
    int fewest = INT32_MAX;
    for (auto it = queue->begin(); it != queue->end(); ++it) {
      auto c = running_per_client_.find((*it)->req.client);
      int n = c == running_per_client_.end() ? 0 : c->second;
      if (n < fewest) {
        fewest = n;
        pick = it;
      }
    }
    sequence* s = pick->get();
    // Blocks for the whole remaining input, plus the next decode token of every running sequence.
    int64_t reserve = 0;
    for (const auto& r : running_) reserve += engine_->blocks_needed(r->req.id, 1);
    const int64_t need = engine_->blocks_needed(s->req.id, static_cast<int64_t>(s->tokens.size()));
    if (need + reserve > engine_->kv().free_blocks) {
      if (preempt_one(s->req.priority)) continue;  // a lower class gives way, then try again
      return false;
    }
    std::string err;
    int64_t cached = engine_->start(s->req.id, s->tokens.data(), static_cast<int64_t>(s->tokens.size()), &err);
    std::unique_ptr<sequence> owned = std::move(*pick);
    queue->erase(pick);
    if (cached < 0) {
      step_report ignored;
      finish(owned.get(), finish_reason::error, &ignored, err);
      continue;
    }
    owned->started = true;
    owned->fed = cached;
    if (owned->cached_prompt_tokens < 0) owned->cached_prompt_tokens = std::min(cached, owned->prompt_len);
    if (owned->first_admitted_ms < 0) owned->first_admitted_ms = steady_ms();
    owned->admitted_at = ++admissions_;
    running_per_client_[owned->req.client]++;
    *budget -= std::min<int64_t>(*budget, static_cast<int64_t>(owned->tokens.size()) - owned->fed);
    running_.push_back(std::move(owned));
  }
  return true;
}

void batch_scheduler::step(step_report* out) {
  *out = step_report{};
  reap_cancelled(out);
  if (!has_work()) return;

  // Budget: one token for every running sequence first, then prefill chunks, oldest first.
  int64_t budget = options_.max_step_tokens - static_cast<int64_t>(running_.size());
  admit_waiting(&budget);

  std::vector<int64_t> chunk;
  for (;;) {
    chunk.assign(running_.size(), 0);
    int64_t left = options_.max_step_tokens;
    for (size_t i = 0; i < running_.size(); ++i) {
      chunk[i] = 1;
      left -= 1;
    }
    for (size_t i = 0; i < running_.size() && left > 0; ++i) {
      const auto* s = running_[i].get();
      int64_t remaining = static_cast<int64_t>(s->tokens.size()) - s->fed;
      int64_t extra = std::min(left, remaining - chunk[i]);
      if (extra > 0) {
        chunk[i] += extra;
        left -= extra;
      }
    }
    int64_t need = 0;
    for (size_t i = 0; i < running_.size(); ++i) need += engine_->blocks_needed(running_[i]->req.id, chunk[i]);
    if (need <= engine_->kv().free_blocks) break;
    if (running_.size() <= 1 || !preempt_one(-1)) {
      // A single sequence that cannot grow: add() guarantees this does not happen; end it rather than spin.
      for (auto& s : running_) finish(s.get(), finish_reason::error, out, "the KV cache is exhausted");
      running_.clear();
      return;
    }
  }
  if (running_.empty()) return;

  std::vector<seq_input> batch;
  batch.reserve(running_.size());
  for (size_t i = 0; i < running_.size(); ++i) {
    auto* s = running_[i].get();
    seq_input in;
    in.seq = s->req.id;
    in.tokens = s->tokens.data() + s->fed;
    in.n_tokens = chunk[i];
    batch.push_back(in);
    if (s->fed + chunk[i] == static_cast<int64_t>(s->tokens.size()) && s->generated > 0) {
      out->decode_tokens += 1;
      out->prefill_tokens += chunk[i] - 1;
    } else {
      out->prefill_tokens += chunk[i];
    }
  }
  step_output result;
  std::string err;
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = engine_->step(batch, &result, &err);
  out->step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out->batch_sequences = static_cast<int64_t>(batch.size());
  ++steps_;
  if (!ok) {
    for (auto& s : running_) finish(s.get(), finish_reason::error, out, err);
    running_.clear();
    return;
  }
  const int64_t max_pos = engine_->config().max_position_embeddings;
  // Each sequence whose prompt is now fed samples its next token (samplers are independent: spread over the
  // engine's threads for a large batch).
  sampled_.assign(running_.size(), 0);
  engine_->parallel(static_cast<int64_t>(running_.size()), [&](int64_t j) {
    const size_t i = static_cast<size_t>(j);
    const sequence& s = *running_[i];
    if (s.fed + chunk[i] >= static_cast<int64_t>(s.tokens.size()))
      sampled_[i] = s.smp->sample(result.row(i), static_cast<size_t>(result.vocab_size));
  });
  std::vector<std::unique_ptr<sequence>> still_running;
  still_running.reserve(running_.size());
  for (size_t i = 0; i < running_.size(); ++i) {
    auto& s = running_[i];
    s->fed += chunk[i];
    if (s->fed < static_cast<int64_t>(s->tokens.size())) {  // prompt not finished yet
      still_running.push_back(std::move(s));
      continue;
    }
    const int32_t token = sampled_[i];
    if (token < 0) {
      finish(s.get(), finish_reason::error, out, "no finite logit to sample from");
      continue;
    }
    s->tokens.push_back(token);
    out->tokens.push_back({s->req.id, token, s->generated});
    s->generated += 1;
    const bool eos = std::find(s->req.eos_ids.begin(), s->req.eos_ids.end(), token) != s->req.eos_ids.end();
    if (eos) {
      finish(s.get(), finish_reason::stop, out);
    } else if (s->generated >= s->req.max_tokens ||
               (max_pos > 0 && static_cast<int64_t>(s->tokens.size()) >= max_pos)) {
      finish(s.get(), finish_reason::length, out);
    } else {
      still_running.push_back(std::move(s));
    }
  }
  running_ = std::move(still_running);
}

int64_t batch_scheduler::queue_ms(uint64_t id) const {
  for (const auto& s : running_) {
    if (s->req.id == id && s->first_admitted_ms >= 0) return std::max<int64_t>(0, s->first_admitted_ms - s->req.arrival_ms);
  }
  return -1;
}

scheduler_stats batch_scheduler::stats() const {
  scheduler_stats st;
  st.running = static_cast<int64_t>(running_.size());
  for (const auto& q : waiting_) st.waiting += static_cast<int64_t>(q.size());
  st.preemptions = preemptions_;
  st.steps = steps_;
  st.kv = engine_->kv();
  return st;
}

}  // namespace rampart::model
