#include <caf/all.hpp>

#include "actors/stages.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

namespace rampart::actors {
namespace {

tokenized tokenize(server_context* ctx, const request_ptr& r) {
  tokenized out;
  out.request = r;
  const auto& model = *ctx->model;
  const auto& req = r->req;
  switch (req.kind) {
    case net::input_kind::ids:
      for (int32_t id : req.ids) {
        if (id < 0 || id >= model.vocab_size) {
          out.code = net::error_code::bad_parameter;
          out.message = "token id " + std::to_string(id) + " outside the model's vocabulary";
          return out;
        }
      }
      r->prompt = req.ids;
      break;
    case net::input_kind::text:
      model.tokenizer->encode(req.text, false, &r->prompt);
      break;
    case net::input_kind::chat: {
      if (!model.chat) {
        out.code = net::error_code::bad_parameter;
        out.message = "this model's tokenizer has no chat template; send text or ids";
        return out;
      }
      std::vector<model::chat_message> messages;
      std::string error;
      if (!model::parse_chat_messages(req.messages, &messages, &error) ||
          !model.chat->encode(messages, req.add_generation_prompt, &r->prompt, &error)) {
        out.code = net::error_code::bad_parameter;
        out.message = error;
        return out;
      }
      break;
    }
  }
  if (r->prompt.empty()) {
    out.code = net::error_code::bad_parameter;
    out.message = "the prompt is empty after tokenization";
    return out;
  }
  const int64_t limit = std::min(ctx->config.frontend.max_prompt_tokens, ctx->level.max_prompt_tokens.load());
  if (static_cast<int64_t>(r->prompt.size()) > limit) {
    out.code = net::error_code::prompt_too_long;
    out.message = "the prompt has " + std::to_string(r->prompt.size()) + " tokens; the limit is " +
                  std::to_string(limit);
    return out;
  }
  out.ok = true;
  return out;
}

tokenizer_actor::behavior_type tokenizer_stage(tokenizer_actor::pointer, server_context* ctx) {
  return {[=](tokenize_atom, const request_ptr& r) { return tokenize(ctx, r); }};
}

}  // namespace

tokenizer_actor spawn_tokenizer_stage(caf::actor_system& system, server_context* context) {
  return system.spawn(tokenizer_stage, context);
}

}  // namespace rampart::actors
