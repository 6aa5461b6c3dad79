#include "tokenizer/chat_template.h"

#include <chrono>

#include "base/error.h"
#include "tokenizer/jinja_builtins.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::tokenizer {
namespace {

bool has(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

std::string trimmed(const std::string& s) {
  return jinja::strip_chars(s, nullptr, true, true);
}

// Folds system messages into the next user message ("<system>\n<user>"), as llama.cpp's
// polyfill does for templates without a system role; a system message followed by no user
// message becomes a user message of its own.
std::vector<ChatMessage> fold_system(std::span<const ChatMessage> messages) {
  std::vector<ChatMessage> out;
  std::string pending;
  auto flush = [&] {
    if (!pending.empty()) out.push_back({"user", pending});
    pending.clear();
  };
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      if (!pending.empty()) pending += "\n";
      pending += m.content;
    } else if (m.role == "user") {
      ChatMessage u = m;
      if (!pending.empty()) u.content = pending + (m.content.empty() ? "" : "\n" + m.content);
      pending.clear();
      out.push_back(std::move(u));
    } else {
      flush();
      out.push_back(m);
    }
  }
  flush();
  return out;
}

std::string strftime_text(std::time_t t, const std::string& format) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[256];
  const size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
  return std::string(buf, n);
}

}  // namespace

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatMl:
      return "chatml";
    case ChatFamily::kLlama3:
      return "llama3";
    case ChatFamily::kPhi3:
      return "phi3";
    case ChatFamily::kGemma:
      return "gemma";
    case ChatFamily::kMistral:
      return "mistral";
    case ChatFamily::kUnknown:
      break;
  }
  return "unknown";
}

ChatFamily detect_chat_family(std::string_view t) {
  if (has(t, "<|start_header_id|>") && has(t, "<|end_header_id|>")) return ChatFamily::kLlama3;
  if (has(t, "<|im_start|>")) return ChatFamily::kChatMl;
  if (has(t, "<start_of_turn>")) return ChatFamily::kGemma;
  if (has(t, "<|user|>") && has(t, "<|end|>")) return ChatFamily::kPhi3;
  if (has(t, "[INST]")) return ChatFamily::kMistral;
  return ChatFamily::kUnknown;
}

std::string format_builtin_chat(ChatFamily family, std::span<const ChatMessage> messages, bool add_generation_prompt,
                                std::string_view bos_token) {
  std::string out;
  switch (family) {
    case ChatFamily::kLlama3:
      // Llama 3 Instruct: BOS, then each message as a header block; content trimmed.
      out += bos_token;
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trimmed(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatFamily::kPhi3:
      for (const ChatMessage& m : messages) out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      if (add_generation_prompt) out += "<|assistant|>\n";
      return out;
    case ChatFamily::kGemma:
      // Gemma has no system role; the assistant is "model"; content trimmed.
      out += bos_token;
      for (const ChatMessage& m : fold_system(messages)) {
        out += "<start_of_turn>" + (m.role == "assistant" ? std::string("model") : m.role) + "\n" + trimmed(m.content) +
               "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      return out;
    case ChatFamily::kChatMl:
    case ChatFamily::kMistral:
    case ChatFamily::kUnknown:
      break;
  }
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

ChatTemplate::ChatTemplate(Config config) : config_(std::move(config)) {
  family_ = detect_chat_family(config_.source);
  if (config_.source.empty()) {
    warning_ = "the model has no chat template (tokenizer.chat_template); formatting the chat as ChatML";
    return;
  }
  try {
    parsed_ = jinja::Template::parse(config_.source);
  } catch (const Error& e) {
    warning_ = std::string("the chat template cannot be used (") + e.what() + "); formatting the chat as " +
               std::string(family_ == ChatFamily::kUnknown ? "ChatML" : chat_family_name(family_));
    return;
  }
  // Probe: does a system message show up in the rendering? (Gemma raises, old Phi-3 drops it.)
  const std::string needle = "<System Needle>";
  const ChatMessage probe[] = {{"system", needle}, {"user", "<User Needle>"}};
  try {
    supports_system_ = has(render(probe, {.add_generation_prompt = false, .now = 0}), needle);
  } catch (const Error&) {
    supports_system_ = false;
  }
}

ChatTemplate ChatTemplate::from_gguf(const gguf::Reader& reader, const Tokenizer& tokenizer) {
  Config c;
  c.source = reader.try_string("tokenizer.chat_template").value_or("");
  if (tokenizer.bos() != kNoToken) c.bos_token = tokenizer.token_text(tokenizer.bos());
  if (tokenizer.eos() != kNoToken) c.eos_token = tokenizer.token_text(tokenizer.eos());
  c.strip_bos = tokenizer.add_bos();
  c.strip_eos = tokenizer.add_eos();
  return ChatTemplate(std::move(c));
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatOptions& options) const {
  using jinja::Value;
  Value::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.set("role", Value(m.role));
    d.set("content", Value(m.content));
    list.push_back(Value::dict(std::move(d)));
  }
  const std::time_t now = options.now.value_or(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
  jinja::Dict globals;
  globals.set("messages", Value::list(std::move(list)));
  globals.set("add_generation_prompt", Value(options.add_generation_prompt));
  globals.set("bos_token", Value(config_.bos_token));
  globals.set("eos_token", Value(config_.eos_token));
  globals.set("strftime_now", Value::function("strftime_now", [now](const jinja::Args& a) {
                const Value* f = a.get(0, "format");
                check(f != nullptr && f->is_string(), ErrorKind::kInvalidArgument,
                      "strftime_now needs a format string");
                return Value(strftime_text(now, f->as_string()));
              }));
  return parsed_->render(globals);
}

std::string ChatTemplate::strip_special(std::string text) const {
  if (config_.strip_bos && !config_.bos_token.empty() && text.starts_with(config_.bos_token)) {
    text.erase(0, config_.bos_token.size());
  }
  if (config_.strip_eos && !config_.eos_token.empty() && text.ends_with(config_.eos_token)) {
    text.erase(text.size() - config_.eos_token.size());
  }
  return text;
}

ChatPrompt ChatTemplate::apply(std::span<const ChatMessage> messages, const ChatOptions& options) const {
  check(!messages.empty(), ErrorKind::kInvalidArgument, "the conversation is empty");
  ChatPrompt out;
  if (parsed_) {
    try {
      if (supports_system_) {
        out.text = render(messages, options);
      } else {
        const std::vector<ChatMessage> folded = fold_system(messages);
        out.text = render(folded, options);
      }
      out.text = strip_special(std::move(out.text));
      return out;
    } catch (const Error& e) {
      out.warning = std::string("the chat template failed (") + e.what() + "); formatting the chat as " +
                    std::string(family_ == ChatFamily::kUnknown ? "ChatML" : chat_family_name(family_));
    }
  } else {
    out.warning = warning_;
  }
  out.text = strip_special(format_builtin_chat(family_, messages, options.add_generation_prompt, config_.bos_token));
  return out;
}

}  // namespace lightboat::tokenizer
