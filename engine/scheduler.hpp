// Continuous batching over engine::step: which sequences run in the next step, with how many tokens.
//
// Each step carries one decode token for every running sequence that has finished its prompt, plus prefill
// chunks of waiting or partly prefilled sequences up to a per-step token budget, so a long prompt never stalls
// running streams. A sequence is admitted only when the KV cache has free blocks for its whole prompt (no
// over-commit); when blocks run out during decode, the lowest-priority, most recently admitted sequence is
// preempted by recompute (its blocks are freed and it re-enters the queue with its generated tokens appended
// to its prompt). A waiting sequence of a higher rank preempts a running one of a lower rank, in the same
// step, when the cache is full or every sequence slot (max_running) is taken. Within a rank, the next sequence
// admitted belongs to the client with the fewest running sequences (ties: the longest-waiting request).
// Queues are bounded: add() refuses what does not fit.
//
// Budgeted work (anonymous and sheddable requests, sequence_request::budgeted) is a share of the engine, not a
// queue that fills it. It ranks below all other work of every class; it holds at most
// scheduler_budget::batch_share of the sequence slots; and while other work is in a step, it gets at most
// step_share of that step's tokens and of its sequences (deficit counters carry fractions from step to step, and
// its sequences take turns). With no other work running it stays rationed, at the last such step's earning and
// at least one sequence a step, until it has run budget_guard_s alone (a registered client between two requests
// comes back to a short step, not a whole step of anonymous work); after that it may use the whole step. The
// step's prefill tokens are split evenly between clients, so one client's long prompts cannot hold another's
// back.
//
// Plain C++, single-threaded: one owner calls every method.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "engine/engine.hpp"
#include "engine/sampler.hpp"

namespace rampart::model {

// expired: waited in the queue past its class's deadline (expire_waiting) without ever being admitted.
enum class finish_reason : uint8_t { stop, length, cancelled, error, expired };
const char* to_string(finish_reason r);

struct sequence_request {
  uint64_t id = 0;         // unique while the sequence lives
  int priority = 2;        // 0 is the highest class
  std::string client;      // fairness key (e.g. the client connection)
  std::vector<int32_t> prompt;
  sampling_params sampling;
  int64_t max_tokens = 1;
  std::vector<int32_t> eos_ids;  // generating one of these ends the sequence with finish_reason::stop
  int64_t arrival_ms = 0;  // when the request arrived, in steady_clock milliseconds (expire_waiting's clock)
  bool budgeted = false;   // anonymous or sheddable: runs within scheduler_budget (ranks below all other work)
};

// What budgeted work may hold; changed at run time (set_budget) when the threat level changes.
struct scheduler_budget {
  double batch_share = 1.0;  // of max_running; a positive share always allows at least one sequence
  double step_share = 1.0;   // of a step's tokens while other work is in the step, in [0, 1]
};

struct scheduler_options {
  int64_t max_running = 64;       // sequences in a batch
  int64_t max_step_tokens = 512;  // tokens per step (decode tokens + prefill chunks)
  int64_t max_waiting = 1024;     // queued sequences, all classes together
  int priority_classes = 4;
  scheduler_budget budget;
  // Seconds of steps that budgeted work runs alone, after the last step with other work, before it may take
  // whole steps (0: at once).
  double budget_guard_s = 0.1;
};

struct generated_token {
  uint64_t id;
  int32_t token;
  int64_t index;  // 0-based position in the completion
};

struct finished_sequence {
  uint64_t id;
  finish_reason reason;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache (first admission)
  int64_t queue_ms = 0;              // from arrival_ms to the first admission into the batch (or to the end)
  std::string error;                 // for finish_reason::error
};

struct step_report {
  std::vector<generated_token> tokens;
  std::vector<finished_sequence> finished;
  int64_t batch_sequences = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  double step_seconds = 0;
};

struct scheduler_stats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t preemptions = 0;
  int64_t steps = 0;
  int64_t budgeted_running = 0;  // budgeted sequences holding a slot
  int64_t budgeted_waiting = 0;
  kv_usage kv;
};

class batch_scheduler {
 public:
  batch_scheduler(engine* eng, scheduler_options options);
  ~batch_scheduler();

  enum class add_result { queued, queue_full, too_long, bad_request };
  // Queues REQ. too_long: prompt + max_tokens can never fit in the KV cache or the model's context;
  // bad_request: empty prompt, duplicate id, invalid sampling or priority (the message says which).
  status<add_result> add(sequence_request req);

  // Ends sequence ID at the next step (or now, when it is only queued) with finish_reason::cancelled.
  // False when no such sequence exists.
  bool cancel(uint64_t id);

  // Ends every waiting sequence that was never admitted and has waited longer than MAX_WAIT_MS[its priority]
  // (a value <= 0 means no limit) at NOW_MS, with finish_reason::expired. Preempted sequences are not expired.
  std::vector<finished_sequence> expire_waiting(int64_t now_ms, const std::vector<int64_t>& max_wait_ms);

  void set_budget(scheduler_budget budget) { options_.budget = budget; }

  bool has_work() const;
  // Runs one engine step (when there is work) and reports generated tokens and finished sequences. Cancelled
  // sequences are reported even when no step runs.
  void step(step_report* out);

  scheduler_stats stats() const;
  // Milliseconds running sequence ID waited from its arrival_ms to its first admission; -1 when ID is not
  // running. A scan of the running batch: call it once per sequence, not per token.
  int64_t queue_ms(uint64_t id) const;

 private:
  struct sequence;
  int rank(const sequence_request& r) const;  // queue index: other work by class, then budgeted by class
  int64_t budgeted_slots() const;
  bool admit_waiting(int64_t* budget);
  bool preempt_one(int max_rank_to_spare);
  // The step's tokens per running sequence (0: a budgeted sequence waiting for its turn), from the budget
  // credit *CREDIT and turn *TURN, which it advances.
  // Budgeted work's standing between steps (deficit round robin): tokens and sequences earned and not yet
  // used, and which budgeted sequence goes first in the next step.
  struct budget_state {
    double tokens = 0;
    double sequences = 0;
    uint64_t turn = 0;
    // The last step that held other work: its tokens and sequences (what a step alone earns while guarded),
    // and the seconds of steps budgeted work has run alone since.
    double last_other_tokens = 0;
    double last_other_sequences = 0;
    double alone_s = 0;
    bool alone = false;  // the step being planned holds budgeted work only
  };
  void plan_tokens(std::vector<int64_t>* chunk, budget_state* budget) const;
  // Plans the step's tokens (*CHUNK per running sequence) within the KV cache, preempting when blocks run short.
  // False when nothing runs this step (every sequence was ended for want of blocks).
  bool plan_step(std::vector<int64_t>* chunk, step_report* out);
  // The engine's batch for CHUNK; *ROW maps a running_ index to its batch entry (SIZE_MAX: not in this step).
  std::vector<seq_input> build_batch(const std::vector<int64_t>& chunk, std::vector<size_t>* row, step_report* out);
  // Samples every sequence whose prompt is now fed, appends its token, and ends those that are done.
  void take_tokens(const std::vector<int64_t>& chunk, const std::vector<size_t>& row, const step_output& result,
                   step_report* out);
  void finish(sequence* s, finish_reason reason, step_report* out, std::string error = {});
  void reap_cancelled(step_report* out);

  engine* engine_;
  scheduler_options options_;
  int classes_;
  std::vector<std::deque<std::unique_ptr<sequence>>> waiting_;  // per rank, arrival order
  std::vector<std::unique_ptr<sequence>> running_;              // admission order
  std::vector<int32_t> sampled_;                                 // a step's sampled token per running sequence
  std::map<uint64_t, sequence*> by_id_;
  std::map<std::string, int> running_per_client_;
  int64_t budgeted_running_ = 0;
  budget_state budget_;
  int64_t preemptions_ = 0;
  uint64_t admissions_ = 0;
  int64_t steps_ = 0;
  std::vector<int32_t> step_tokens_;  // scratch: token storage for the step's inputs
  // The last step's logits, kept between steps: a batch of 64 over DeepSeek-V3's vocabulary is 33 MB, which a
  // fresh buffer would take from the system and zero on every step.
  step_output result_;
};

}  // namespace rampart::model
