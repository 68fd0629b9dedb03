#include "tokenizer/chat_template.hpp"

namespace rampart::model {
namespace {

// The chat_template of DeepSeek-V3's tokenizer_config.json, byte for byte.
const char kDeepSeekV3Template[] =
    R"TPL({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %})TPL"
    R"TPL({%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %})TPL"
    R"TPL({% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '

' + message['content'] %})TPL"
    R"TPL({%- endif %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %})TPL"
    R"TPL({%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}})TPL"
    R"TPL({%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%})TPL"
    R"TPL({%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'})TPL"
    R"TPL(}{%- set ns.is_first = true -%}{%- else %}{{'
' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '
' + '```json' + '
' + tool['function']['arguments'] + '
' + '```' + '<｜tool▁call▁end｜>'})TPL"
    R"TPL(}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %})TPL"
    R"TPL({%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%})TPL"
    R"TPL({%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %})TPL"
    R"TPL({%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'})TPL"
    R"TPL(}{%- set ns.is_output_first = false %}{%- else %}{{'
<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'})TPL"
    R"TPL(}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %})TPL"
    R"TPL({{'<｜Assistant｜>'}}{% endif %})TPL";

const char kUser[] = "<｜User｜>";
const char kAssistant[] = "<｜Assistant｜>";
const char kCallsBegin[] = "<｜tool▁calls▁begin｜>";
const char kCallsEnd[] = "<｜tool▁calls▁end｜>";
const char kCallBegin[] = "<｜tool▁call▁begin｜>";
const char kCallEnd[] = "<｜tool▁call▁end｜>";
const char kSep[] = "<｜tool▁sep｜>";
const char kOutputsBegin[] = "<｜tool▁outputs▁begin｜>";
const char kOutputsEnd[] = "<｜tool▁outputs▁end｜>";
const char kOutputBegin[] = "<｜tool▁output▁begin｜>";
const char kOutputEnd[] = "<｜tool▁output▁end｜>";
const char kEnd[] = "<｜end▁of▁sentence｜>";  // a literal in the template, not its eos_token

bool fail(std::string* error, size_t index, const std::string& what) {
  *error = "message " + std::to_string(index) + ": " + what;
  return false;
}

class renderer {
 public:
  explicit renderer(std::vector<chat_template::piece>* out) : out_(out) {}
  // Appends template text, merging with a preceding template piece.
  void tmpl(std::string_view s) {
    if (s.empty()) return;
    if (!out_->empty() && out_->back().is_template) {
      out_->back().text.append(s);
    } else {
      out_->push_back({std::string(s), true});
    }
  }
  void content(std::string_view s) {
    if (!s.empty()) out_->push_back({std::string(s), false});
  }

 private:
  std::vector<chat_template::piece>* out_;
};

bool read_string_field(const nlohmann::json& j, const char* key, std::string* out) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return false;
  *out = j[key].get<std::string>();
  return true;
}

}  // namespace

bool parse_chat_messages(const nlohmann::json& messages, std::vector<chat_message>* out, std::string* error) {
  if (!messages.is_array()) {
    *error = "messages must be a JSON array";
    return false;
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& m = messages[i];
    chat_message msg;
    if (!read_string_field(m, "role", &msg.role)) return fail(error, i, "needs a string \"role\"");
    if (m.contains("content") && !m["content"].is_null()) {
      if (!m["content"].is_string()) return fail(error, i, "\"content\" must be a string or null");
      msg.content = m["content"].get<std::string>();
    }
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      if (!m["tool_calls"].is_array()) return fail(error, i, "\"tool_calls\" must be an array");
      for (const nlohmann::json& call : m["tool_calls"]) {
        chat_tool_call c;
        const nlohmann::json fn = call.is_object() ? call.value("function", nlohmann::json()) : nlohmann::json();
        if (!read_string_field(call, "type", &c.type) || !read_string_field(fn, "name", &c.name) ||
            !read_string_field(fn, "arguments", &c.arguments)) {
          return fail(error, i, "each tool call needs a string \"type\", function.name and function.arguments");
        }
        msg.tool_calls.push_back(std::move(c));
      }
    }
    out->push_back(std::move(msg));
  }
  return true;
}

std::optional<chat_template> chat_template::create(const tokenizer& tok, std::string* error) {
  if (tok.chat_template_source().empty()) {
    *error = "tokenizer_config.json has no chat_template";
    return std::nullopt;
  }
  if (tok.chat_template_source() != kDeepSeekV3Template) {
    *error = "tokenizer_config.json's chat_template is not DeepSeek-V3's; refusing to guess its format";
    return std::nullopt;
  }
  return chat_template(tok);
}

bool chat_template::render(const std::vector<chat_message>& messages, bool add_generation_prompt,
                           std::vector<piece>* out, std::string* error) const {
  for (size_t i = 0; i < messages.size(); ++i) {
    const chat_message& m = messages[i];
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      return fail(error, i, "unknown role \"" + m.role + "\"");
    }
    if (!m.content && m.role != "assistant") return fail(error, i, "a " + m.role + " message needs content");
    if (!m.content && m.tool_calls.empty()) {
      return fail(error, i, "an assistant message needs content or tool calls");
    }
  }
  renderer r(out);
  r.tmpl(tok_->bos_text());
  bool first_system = true;
  for (const chat_message& m : messages) {
    if (m.role != "system") continue;
    if (!first_system) r.tmpl("\n\n");
    first_system = false;
    r.content(*m.content);
  }
  // The template's namespace state; is_first and is_output_first are never reset (quirks kept on purpose).
  bool is_first = false, is_tool = false, is_output_first = true;
  for (const chat_message& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      r.tmpl(kUser);
      r.content(*m.content);
    } else if (m.role == "assistant" && !m.content) {
      is_tool = false;
      for (const chat_tool_call& call : m.tool_calls) {
        if (!is_first) {
          r.tmpl(std::string(kAssistant) + kCallsBegin + kCallBegin);
        } else {
          r.tmpl(std::string("\n") + kCallBegin);
        }
        r.content(call.type);
        r.tmpl(kSep);
        r.content(call.name);
        r.tmpl("\n```json\n");
        r.content(call.arguments);
        r.tmpl(std::string("\n```") + kCallEnd);
        if (is_first) r.tmpl(std::string(kCallsEnd) + kEnd);
        is_first = true;
      }
    } else if (m.role == "assistant") {
      r.tmpl(is_tool ? kOutputsEnd : kAssistant);
      is_tool = false;
      r.content(*m.content);
      r.tmpl(kEnd);
    } else if (m.role == "tool") {
      is_tool = true;
      r.tmpl(is_output_first ? std::string(kOutputsBegin) + kOutputBegin : std::string("\n") + kOutputBegin);
      is_output_first = false;
      r.content(*m.content);
      r.tmpl(kOutputEnd);
    }
  }
  if (is_tool) r.tmpl(kOutputsEnd);
  if (add_generation_prompt && !is_tool) r.tmpl(kAssistant);
  return true;
}

bool chat_template::render_text(const std::vector<chat_message>& messages, bool add_generation_prompt,
                                std::string* out, std::string* error) const {
  std::vector<piece> pieces;
  if (!render(messages, add_generation_prompt, &pieces, error)) return false;
  for (const piece& p : pieces) out->append(p.text);
  return true;
}

bool chat_template::encode(const std::vector<chat_message>& messages, bool add_generation_prompt,
                           std::vector<token_id>* out, std::string* error, bool content_specials) const {
  std::vector<piece> pieces;
  if (!render(messages, add_generation_prompt, &pieces, error)) return false;
  std::vector<text_segment> segments;
  segments.reserve(pieces.size());
  for (const piece& p : pieces) segments.push_back({p.text, p.is_template || content_specials});
  tok_->encode_segments(segments, out);
  return true;
}

}  // namespace rampart::model
