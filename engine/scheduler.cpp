#include "engine/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

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
  kv_sequence kv;  // its KV blocks while admitted; kv.length(): the leading tokens already in the cache
  bool cancelled = false;
  int64_t cached_prompt_tokens = -1;  // from the first admission
  int64_t first_admitted_ms = -1;     // steady clock, at the first admission
  uint64_t admitted_at = 0;           // admission counter, for choosing preemption victims
  std::unique_ptr<sampler> smp;
};

batch_scheduler::batch_scheduler(engine* eng, scheduler_options options)
    : engine_(eng),
      options_(options),
      classes_(std::max(1, options.priority_classes)),
      waiting_(2 * static_cast<size_t>(classes_)) {}

int batch_scheduler::rank(const sequence_request& r) const { return r.priority + (r.budgeted ? classes_ : 0); }

int64_t batch_scheduler::budgeted_slots() const {
  const double share = options_.budget.batch_share;
  if (!(share > 0)) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(std::floor(std::min(share, 1.0) *
                                                              static_cast<double>(options_.max_running))));
}

batch_scheduler::~batch_scheduler() {
  for (auto& s : running_) engine_->release(&s->kv);
}

status<batch_scheduler::add_result> batch_scheduler::add(sequence_request req) {
  using result = status<add_result>;
  if (req.prompt.empty()) return result::failure(add_result::bad_request, "empty prompt");
  if (by_id_.count(req.id)) return result::failure(add_result::bad_request, "sequence id already in use");
  if (req.priority < 0 || req.priority >= classes_) {
    return result::failure(add_result::bad_request, "priority class out of range");
  }
  if (req.max_tokens < 1) return result::failure(add_result::bad_request, "max_tokens must be at least 1");
  if (std::string err; !sampler::validate(req.sampling, &err)) {
    return result::failure(add_result::bad_request, std::move(err));
  }
  const auto& cfg = engine_->config();
  const int64_t vocab = cfg.vocab_size;
  for (int32_t t : req.prompt) {
    if (t < 0 || t >= vocab) {
      return result::failure(add_result::bad_request, "token id " + std::to_string(t) + " outside the vocabulary");
    }
  }
  const int64_t total = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
  const auto kv = engine_->kv();
  if ((cfg.max_position_embeddings > 0 && total > cfg.max_position_embeddings) ||
      (total + kv.block_tokens - 1) / kv.block_tokens > kv.total_blocks) {
    return result::failure(add_result::too_long, "prompt plus max_tokens (" + std::to_string(total) +
                                                     " tokens) exceeds the KV cache (" +
                                                     std::to_string(kv.total_blocks * kv.block_tokens) +
                                                     " tokens) or the model's context");
  }
  int64_t waiting = 0;
  for (const auto& q : waiting_) waiting += static_cast<int64_t>(q.size());
  if (waiting >= options_.max_waiting) return result::failure(add_result::queue_full, "the waiting queue is full");
  auto s = std::make_unique<sequence>();
  s->tokens = req.prompt;
  s->prompt_len = static_cast<int64_t>(req.prompt.size());
  s->smp = std::make_unique<sampler>(req.sampling);
  s->req = std::move(req);
  by_id_[s->req.id] = s.get();
  const int r = rank(s->req);
  waiting_[static_cast<size_t>(r)].push_back(std::move(s));
  return result::success();
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
  for (size_t r = 0; r < waiting_.size(); ++r) {
    const size_t c = r % static_cast<size_t>(classes_);
    if (c >= max_wait_ms.size() || max_wait_ms[c] <= 0) continue;
    auto& q = waiting_[r];
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
  if (s->kv.started()) {
    engine_->release(&s->kv);
    if (--running_per_client_[s->req.client] <= 0) running_per_client_.erase(s->req.client);
    if (s->req.budgeted) --budgeted_running_;
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

bool batch_scheduler::preempt_one(int max_rank_to_spare) {
  // Victim: the lowest rank (largest number) above MAX_RANK_TO_SPARE, most recently admitted first.
  auto victim = running_.end();
  int victim_rank = -1;
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    const int r = rank((*it)->req);
    if (r <= max_rank_to_spare) continue;
    if (victim == running_.end() || r > victim_rank ||
        (r == victim_rank && (*it)->admitted_at > (*victim)->admitted_at)) {
      victim = it;
      victim_rank = r;
    }
  }
  if (victim == running_.end()) return false;
  std::unique_ptr<sequence> s = std::move(*victim);
  running_.erase(victim);
  engine_->release(&s->kv);
  if (--running_per_client_[s->req.client] <= 0) running_per_client_.erase(s->req.client);
  if (s->req.budgeted) --budgeted_running_;
  ++preemptions_;
  waiting_[static_cast<size_t>(victim_rank)].push_front(std::move(s));
  return true;
}

bool batch_scheduler::admit_waiting(int64_t* budget) {
  while (*budget > 0) {
    // The highest non-empty rank; within it the client with the fewest running sequences.
    std::deque<std::unique_ptr<sequence>>* queue = nullptr;
    int queue_rank = 0;
    for (auto& q : waiting_) {
      if (!q.empty()) {
        queue = &q;
        break;
      }
      ++queue_rank;
    }
    if (!queue) return true;
    if (static_cast<int64_t>(running_.size()) >= options_.max_running ||
        (queue_rank >= classes_ && budgeted_running_ >= budgeted_slots())) {
      // Every slot (or every slot budgeted work may hold) is taken: a waiting sequence of a higher rank takes
      // the slot of the lowest rank running (preempted by recompute, like a preemption for blocks), in this
      // same step; otherwise it waits.
      if (preempt_one(queue_rank)) continue;
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
    for (const auto& r : running_) reserve += engine_->blocks_needed(r->kv, 1);
    const int64_t need = engine_->blocks_needed(s->kv, static_cast<int64_t>(s->tokens.size()));
    if (need + reserve > engine_->kv().free_blocks) {
      if (preempt_one(queue_rank)) continue;  // a lower rank gives way, then try again
      return false;
    }
    std::string err;
    int64_t cached = engine_->start(&s->kv, s->tokens.data(), static_cast<int64_t>(s->tokens.size()), &err);
    std::unique_ptr<sequence> owned = std::move(*pick);
    queue->erase(pick);
    if (cached < 0) {
      step_report ignored;
      finish(owned.get(), finish_reason::error, &ignored, err);
      continue;
    }
    if (owned->cached_prompt_tokens < 0) owned->cached_prompt_tokens = std::min(cached, owned->prompt_len);
    if (owned->first_admitted_ms < 0) owned->first_admitted_ms = steady_ms();
    owned->admitted_at = ++admissions_;
    running_per_client_[owned->req.client]++;
    if (owned->req.budgeted) ++budgeted_running_;
    *budget -= std::min<int64_t>(*budget, static_cast<int64_t>(owned->tokens.size()) - owned->kv.length());
    running_.push_back(std::move(owned));
  }
  return true;
}

namespace {
// Adds prefill tokens to the sequences at INDICES (their remaining input is REMAINING[i] - CHUNK[i]) from
// *LEFT, split evenly between clients (a client's own sequences oldest first), until *LEFT or the input runs out.
template <class ClientOf>
void fill_evenly(const std::vector<size_t>& indices, const std::vector<int64_t>& remaining, ClientOf client_of,
                 std::vector<int64_t>* chunk, int64_t* left) {
  std::vector<std::pair<const std::string*, std::vector<size_t>>> clients;
  for (size_t i : indices) {
    if (remaining[i] <= (*chunk)[i]) continue;
    const std::string* c = &client_of(i);
    auto it = std::find_if(clients.begin(), clients.end(), [&](const auto& g) { return *g.first == *c; });
    if (it == clients.end()) {
      clients.push_back({c, {i}});
    } else {
      it->second.push_back(i);
    }
  }
  while (*left > 0 && !clients.empty()) {
    const int64_t quantum = std::max<int64_t>(1, *left / static_cast<int64_t>(clients.size()));
    for (auto g = clients.begin(); g != clients.end() && *left > 0;) {
      int64_t give = std::min(quantum, *left);
      for (size_t i : g->second) {
        const int64_t extra = std::min(give, remaining[i] - (*chunk)[i]);
        if (extra <= 0) continue;
        (*chunk)[i] += extra;
        give -= extra;
        *left -= extra;
        if (give == 0) break;
      }
      const bool pending = std::any_of(g->second.begin(), g->second.end(),
                                       [&](size_t i) { return remaining[i] > (*chunk)[i]; });
      g = pending ? g + 1 : clients.erase(g);
    }
  }
}
}  // namespace

void batch_scheduler::plan_tokens(std::vector<int64_t>* chunk, budget_state* budget) const {
  const size_t n = running_.size();
  chunk->assign(n, 0);
  std::vector<int64_t> remaining(n);
  std::vector<size_t> other, budgeted;
  int64_t left = options_.max_step_tokens;
  for (size_t i = 0; i < n; ++i) {
    remaining[i] = static_cast<int64_t>(running_[i]->tokens.size()) - running_[i]->kv.length();
    if (running_[i]->req.budgeted) {
      budgeted.push_back(i);
    } else {
      (*chunk)[i] = 1;  // every sequence of other work moves every step
      left -= 1;
      other.push_back(i);
    }
  }
  auto client_of = [&](size_t i) -> const std::string& { return running_[i]->req.client; };
  fill_evenly(other, remaining, client_of, chunk, &left);
  int64_t other_tokens = 0;
  for (size_t i : other) other_tokens += (*chunk)[i];
  budget->alone = other.empty() && !budgeted.empty();
  if (!other.empty()) {
    budget->last_other_tokens = static_cast<double>(other_tokens);
    budget->last_other_sequences = static_cast<double>(other.size());
    budget->alone_s = 0;
  }
  if (budgeted.empty()) {
    budget->tokens = budget->sequences = 0;  // nothing is banked while no budgeted work runs
    return;
  }
  // Budgeted work: the whole rest of the step when nothing else runs; otherwise STEP_SHARE of the step, earned
  // as credit in proportion to the other work's tokens, and as much of the step's sequences, earned in
  // proportion to the other work's sequences: a sequence costs a step more than its tokens say (its own
  // attention, and a row of logits over the whole vocabulary when it yields a token), so thirty budgeted
  // sequences of one token each would cost a step of six registered ones several times over.
  const double share = std::clamp(options_.budget.step_share, 0.0, 1.0);
  int64_t allowance = std::max<int64_t>(0, left);
  const size_t k = budgeted.size();
  size_t seq_allowance = k;
  // Alone in the step shortly after other work ran: still rationed, as if that work were here, so that a
  // step begun in the gap between two of its requests stays as short as the steps beside it.
  const bool guarded = other.empty() && budget->last_other_sequences > 0 &&
                       budget->alone_s < options_.budget_guard_s;
  const bool rationed = (!other.empty() || guarded) && share < 1.0;
  if (rationed) {
    const double base_tokens = other.empty() ? budget->last_other_tokens : static_cast<double>(other_tokens);
    const double base_sequences = other.empty() ? budget->last_other_sequences : static_cast<double>(other.size());
    // What a step earns is spent in that step or the next: the banks carry fractions (at most one token, one
    // sequence beyond the step's earning), not a prefill's worth of tokens into a later step of decodes.
    const double earn = share / (1.0 - share);
    const double earned_tokens = earn * base_tokens;
    const double earned_sequences = earn * base_sequences;
    budget->tokens = std::min({budget->tokens + earned_tokens, earned_tokens + 1.0,
                               static_cast<double>(options_.max_step_tokens)});
    allowance = std::min<int64_t>(allowance, static_cast<int64_t>(std::floor(budget->tokens)));
    budget->sequences = std::min({budget->sequences + earned_sequences, earned_sequences + 1.0,
                                  static_cast<double>(options_.max_running)});
    seq_allowance = std::min(k, static_cast<size_t>(std::floor(budget->sequences)));
    if (other.empty()) {  // a step must move something: one sequence by one token at least
      allowance = std::max<int64_t>(allowance, std::min<int64_t>(1, left));
      seq_allowance = std::max<size_t>(seq_allowance, 1);
    }
  }
  // Budgeted sequences take turns: one token each from where the last step stopped, then prefill evenly.
  const size_t first = static_cast<size_t>(budget->turn % k);
  int64_t used = 0;
  size_t served = 0;
  std::vector<size_t> picked;
  for (; served < seq_allowance && used < allowance; ++served) {
    const size_t i = budgeted[(first + served) % k];
    (*chunk)[i] = 1;
    ++used;
    picked.push_back(i);
  }
  int64_t rest = allowance - used;
  fill_evenly(picked, remaining, client_of, chunk, &rest);
  used = allowance - rest;
  budget->turn += served;
  if (rationed) {  // a guarded step's minimum may overdraw the banks, by at most one step's minimum
    budget->tokens = std::max(budget->tokens - static_cast<double>(used), -1.0);
    budget->sequences = std::max(budget->sequences - static_cast<double>(served), -1.0);
  }
}

bool batch_scheduler::plan_step(std::vector<int64_t>* chunk, step_report* out) {
  budget_state budget;
  for (;;) {
    budget = budget_;
    plan_tokens(chunk, &budget);
    int64_t need = 0;
    for (size_t i = 0; i < running_.size(); ++i) {
      if ((*chunk)[i] > 0) need += engine_->blocks_needed(running_[i]->kv, (*chunk)[i]);
    }
    if (need <= engine_->kv().free_blocks) break;
    if (running_.size() <= 1 || !preempt_one(-1)) {
      // A single sequence that cannot grow: add() guarantees this does not happen; end it rather than spin.
      for (auto& s : running_) finish(s.get(), finish_reason::error, out, "the KV cache is exhausted");
      running_.clear();
      return false;
    }
  }
  budget_ = budget;
  return !running_.empty();
}

std::vector<seq_input> batch_scheduler::build_batch(const std::vector<int64_t>& chunk, std::vector<size_t>* row,
                                                     step_report* out) {
  std::vector<seq_input> batch;
  row->assign(running_.size(), SIZE_MAX);
  batch.reserve(running_.size());
  for (size_t i = 0; i < running_.size(); ++i) {
    if (chunk[i] == 0) continue;  // budgeted work waiting for its turn
    auto* s = running_[i].get();
    seq_input in;
    in.seq = &s->kv;
    in.tokens = s->tokens.data() + s->kv.length();
    in.n_tokens = chunk[i];
    (*row)[i] = batch.size();
    // The prompt is fed by this step: its next token is due. A device that samples picks it where the logits
    // are, with this sequence's next draw.
    if (engine_->samples_on_device() && s->kv.length() + chunk[i] == static_cast<int64_t>(s->tokens.size())) {
      in.sample = &s->smp->params();
      in.uniform = s->smp->next_uniform();
    }
    batch.push_back(in);
    if (s->kv.length() + chunk[i] == static_cast<int64_t>(s->tokens.size()) && s->generated > 0) {
      out->decode_tokens += 1;
      out->prefill_tokens += chunk[i] - 1;
    } else {
      out->prefill_tokens += chunk[i];
    }
  }
  return batch;
}

void batch_scheduler::take_tokens(const std::vector<int64_t>& chunk, const std::vector<size_t>& row,
                                  const step_output& result, step_report* out) {
  const int64_t max_pos = engine_->config().max_position_embeddings;
  // Each sequence whose prompt is now fed samples its next token (samplers are independent: spread over the
  // engine's threads for a large batch). The step has advanced every kv.length() by its chunk.
  sampled_.assign(running_.size(), 0);
  engine_->parallel(static_cast<int64_t>(running_.size()), [&](int64_t j) {
    const size_t i = static_cast<size_t>(j);
    const sequence& s = *running_[i];
    if (chunk[i] > 0 && s.kv.length() >= static_cast<int64_t>(s.tokens.size()))
      sampled_[i] = result.tokens[row[i]] != -2
                        ? result.tokens[row[i]]  // sampled on the device
                        : s.smp->sample(result.row(row[i]), static_cast<size_t>(result.vocab_size));
  });
  std::vector<std::unique_ptr<sequence>> still_running;
  still_running.reserve(running_.size());
  for (size_t i = 0; i < running_.size(); ++i) {
    auto& s = running_[i];
    if (chunk[i] == 0 || s->kv.length() < static_cast<int64_t>(s->tokens.size())) {  // not its turn, or prompt not done
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

void batch_scheduler::step(step_report* out) {
  *out = step_report{};
  reap_cancelled(out);
  if (!has_work()) return;
  // Budget: one token for every running sequence first, then prefill chunks.
  int64_t budget = options_.max_step_tokens - static_cast<int64_t>(running_.size());
  admit_waiting(&budget);
  std::vector<int64_t> chunk;
  if (!plan_step(&chunk, out)) return;
  std::vector<size_t> row;
  const std::vector<seq_input> batch = build_batch(chunk, &row, out);
  if (batch.empty()) return;
  std::string err;
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = engine_->step(batch, &result_, &err);
  out->step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out->batch_sequences = static_cast<int64_t>(batch.size());
  if (budget_.alone) budget_.alone_s += out->step_seconds;
  ++steps_;
  if (!ok) {
    for (auto& s : running_) finish(s.get(), finish_reason::error, out, err);
    running_.clear();
    return;
  }
  take_tokens(chunk, row, result_, out);
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
  st.budgeted_running = budgeted_running_;
  for (size_t r = static_cast<size_t>(classes_); r < waiting_.size(); ++r)
    st.budgeted_waiting += static_cast<int64_t>(waiting_[r].size());
  st.kv = engine_->kv();
  return st;
}

}  // namespace rampart::model
