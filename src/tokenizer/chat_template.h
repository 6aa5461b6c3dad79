// Chat formatting: turns a conversation into the prompt text a model was trained on.
//
// A GGUF carries its Hugging Face chat template as Jinja text (tokenizer.chat_template). We run
// that text with our Jinja renderer (jinja_template.h) the way llama.cpp's --jinja path does:
//  * globals: messages ([{role, content}]), add_generation_prompt, bos_token, eos_token (the
//    texts of the vocabulary's BOS/EOS) and strftime_now(format) (Llama 3.x prints today's date);
//  * a template that ignores or rejects a system message (Gemma raises "System role not
//    supported"; the first Phi-3-mini template drops it) gets it folded into the next user
//    message as "<system>\n<user>", exactly as llama.cpp does — found by a probe render at load;
//  * when the vocabulary adds BOS itself, a leading bos_token in the rendering is removed so the
//    prompt does not start with two (llama.cpp does the same; likewise a trailing EOS).
// When a template is absent, does not parse or fails to render, a built-in format for the family
// recognised from its text is used instead (Llama 3, Phi-3, Gemma, ChatML), and ChatML for an
// unrecognised one, with a warning the caller shows; the library never prints.
#pragma once

#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/reader.h"
#include "tokenizer/jinja_template.h"

namespace lightboat::tokenizer {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (any other role is passed to the template)
  std::string content;
};

// Template families recognised from the template text (llama.cpp's llm_chat_detect_template
// approach): for `info`, and for the built-in fallback format.
enum class ChatFamily { kUnknown, kChatMl, kLlama3, kPhi3, kGemma, kMistral };

std::string_view chat_family_name(ChatFamily family);  // "chatml", "llama3", … "unknown"
ChatFamily detect_chat_family(std::string_view template_text);

// Formats a conversation with a built-in format: what the fallback uses. kUnknown and kMistral
// format as ChatML. System messages of kGemma are folded into the next user message.
std::string format_builtin_chat(ChatFamily family, std::span<const ChatMessage> messages, bool add_generation_prompt,
                                std::string_view bos_token);

struct ChatOptions {
  bool add_generation_prompt = true;  // end with the opening of an assistant turn
  std::optional<std::time_t> now;     // the time strftime_now shows; the current time when empty
};

struct ChatPrompt {
  std::string text;     // the prompt: encode with add_special=true, parse_special=true
  std::string warning;  // non-empty when a fallback format was used, saying why
};

class ChatTemplate {
 public:
  struct Config {
    std::string source;     // Jinja text; empty when the model has none
    std::string bos_token;  // text of the BOS token ("" if the vocabulary has none)
    std::string eos_token;
    bool strip_bos = false;  // drop a leading bos_token (the tokenizer adds BOS itself)
    bool strip_eos = false;  // drop a trailing eos_token (the tokenizer adds EOS itself)
  };

  explicit ChatTemplate(Config config);
  // tokenizer.chat_template of the file, the tokenizer's BOS/EOS texts and add_bos/add_eos.
  static ChatTemplate from_gguf(const gguf::Reader& reader, const Tokenizer& tokenizer);

  const std::string& source() const { return config_.source; }
  ChatFamily family() const { return family_; }
  // True when the template text parsed and will be rendered (else the built-in format is used).
  bool renders() const { return parsed_.has_value(); }
  // Whether the template shows a system message itself (else it is folded into a user turn).
  bool supports_system_role() const { return supports_system_; }
  // Set when the template is absent or does not parse: why the built-in format is used.
  const std::string& warning() const { return warning_; }

  // The prompt for `messages`. Throws only for an empty conversation; a template that fails to
  // render (raise_exception included) falls back to the built-in format with a warning.
  ChatPrompt apply(std::span<const ChatMessage> messages, const ChatOptions& options = {}) const;

 private:
  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options) const;
  std::string strip_special(std::string text) const;

  Config config_;
  ChatFamily family_ = ChatFamily::kUnknown;
  std::optional<jinja::Template> parsed_;
  bool supports_system_ = true;
  std::string warning_;
};

}  // namespace lightboat::tokenizer
