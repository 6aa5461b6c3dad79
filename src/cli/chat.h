// Multi-turn chat over one model instance, keeping the KV cache between turns.
//
// Each turn renders the whole conversation with the chat template and tokenizes it, but only
// evaluates what the cache does not already hold: the cache keeps the tokens of the previous
// prompt and of the answer (all but its last, unevaluated token). The new prompt normally
// extends them; where it does not (the template re-tokenizes the answer differently, a date in
// the system header changed), the cache is truncated to the common prefix and the rest is
// evaluated. The whole conversation is never re-read.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/thread_pool.h"
#include "cli/generate.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::cli {

// How many tokens of `cached` (what the KV cache holds, position by position) the new `prompt`
// can reuse: their common prefix, but never all of the prompt — its last token must be
// evaluated to get the logits that sample the answer.
size_t reusable_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt);

struct ChatTurn {
  GenerateResult result;
  int64_t n_prompt = 0;  // tokens of the rendered conversation
  int64_t n_reused = 0;  // of which were already in the KV cache
  std::string warning;   // the chat template's fallback warning, if any
};

class ChatSession {
 public:
  // `model` must start with an empty cache and is driven only by this session from then on.
  // An empty system_prompt means no system message (the template may add its default one).
  ChatSession(model::Model& model, const tokenizer::Tokenizer& tokenizer, const tokenizer::ChatTemplate& chat,
              std::string system_prompt);

  // Adds the user message, evaluates the new part of the prompt, generates the answer (as
  // `params` say; params.prompt is ignored) streaming it to on_text, and adds it to the history.
  ChatTurn reply(const std::string& user, const GenerateRequest& params, ThreadPool& pool,
                 const std::function<void(std::string_view)>& on_text);

  const std::vector<tokenizer::ChatMessage>& messages() const { return messages_; }
  const std::vector<int32_t>& cached_tokens() const { return cached_; }

 private:
  ChatTurn reply_to_last(const GenerateRequest& params, ThreadPool& pool,
                         const std::function<void(std::string_view)>& on_text);

  model::Model* model_;
  const tokenizer::Tokenizer* tokenizer_;
  const tokenizer::ChatTemplate* chat_;
  std::vector<tokenizer::ChatMessage> messages_;
  std::vector<int32_t> cached_;  // token at each KV cache position 0 .. n_past-1
  uint64_t turns_ = 0;
};

}  // namespace lightboat::cli
