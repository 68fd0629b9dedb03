// DeepSeek-V3's chat format (the chat_template of its tokenizer_config.json), rendered by hand rather than by a
// Jinja engine, including the template's quirks (see shared/specs/tokenizer.md §5):
//   BOS, then every system message's content joined by "\n\n" (wherever they occur), then per message:
//   user -> <｜User｜>content; assistant -> <｜Assistant｜>content<｜end▁of▁sentence｜> (after tool output the prefix
//   is <｜tool▁outputs▁end｜>); assistant with null content -> its tool calls; tool -> tool output blocks; and at
//   the end <｜tool▁outputs▁end｜> after a tool message, else <｜Assistant｜> when a generation prompt is asked for.
//   Quirks kept: a single tool call is never closed with <｜tool▁calls▁end｜><｜end▁of▁sentence｜>, later calls
//   are each followed by it, and the "first call" / "first output" state never resets across turns.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"

namespace rampart::model {

struct chat_tool_call {
  std::string type = "function";
  std::string name;
  std::string arguments;  // the JSON text of the arguments, as the model writes it
};

struct chat_message {
  std::string role;                    // "system", "user", "assistant" or "tool"
  std::optional<std::string> content;  // may be null only for an assistant message with tool calls
  std::vector<chat_tool_call> tool_calls;
};

// Parses an OpenAI-style JSON array of messages ({"role", "content", "tool_calls": [{"type", "function":
// {"name", "arguments"}}]}). Returns false with a one-line *ERROR naming the message index.
bool parse_chat_messages(const nlohmann::json& messages, std::vector<chat_message>* out, std::string* error);

class chat_template {
 public:
  // Succeeds only when TOK's tokenizer_config.json carries DeepSeek-V3's template byte for byte; any other
  // template is refused with *ERROR rather than rendered wrongly. TOK must outlive the chat_template.
  static std::optional<chat_template> create(const tokenizer& tok, std::string* error);

  // A rendered prompt: template text and message content, in order.
  struct piece {
    std::string text;
    bool is_template;  // false: text that came from a message
  };

  // Renders MESSAGES. Returns false with *ERROR for a message the template cannot render (unknown role,
  // missing content, assistant with neither content nor tool calls).
  bool render(const std::vector<chat_message>& messages, bool add_generation_prompt, std::vector<piece>* out,
              std::string* error) const;
  // The rendered prompt as one string, as the Jinja template would print it.
  bool render_text(const std::vector<chat_message>& messages, bool add_generation_prompt, std::string* out,
                   std::string* error) const;
  // Renders and encodes, appending to *OUT: exactly one BOS (written by the template), added tokens recognized
  // in template text, and in message content only when CONTENT_SPECIALS is set (off by default, so user text
  // cannot forge control tokens such as <｜Assistant｜>).
  bool encode(const std::vector<chat_message>& messages, bool add_generation_prompt, std::vector<token_id>* out,
              std::string* error, bool content_specials = false) const;

 private:
  explicit chat_template(const tokenizer& tok) : tok_(&tok) {}
  const tokenizer* tok_;
};

}  // namespace rampart::model
