#include "cli/chat.h"

#include <algorithm>

#include "base/error.h"

namespace lightboat::cli {

size_t reusable_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt) {
  const auto mismatch = std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end());
  const auto common = static_cast<size_t>(mismatch.first - cached.begin());
  return prompt.empty() ? 0 : std::min(common, prompt.size() - 1);
}

ChatSession::ChatSession(model::Model& model, const tokenizer::Tokenizer& tokenizer,
                         const tokenizer::ChatTemplate& chat, std::string system_prompt)
    : model_(&model), tokenizer_(&tokenizer), chat_(&chat) {
  check(model.n_past() == 0, ErrorKind::kInternal, "a chat session needs a model with an empty KV cache");
  if (!system_prompt.empty()) messages_.push_back({"system", std::move(system_prompt)});
}

ChatTurn ChatSession::reply(const std::string& user, const GenerateRequest& params, ThreadPool& pool,
                            const std::function<void(std::string_view)>& on_text) {
  messages_.push_back({"user", user});
  try {
    ChatTurn turn = reply_to_last(params, pool, on_text);
    messages_.push_back({"assistant", turn.result.text});
    return turn;
  } catch (...) {
    // Undo the turn. The cache may hold part of its prompt beyond the tokens we track (or, if
    // it failed before evaluating, fewer): keep exactly the positions both agree on.
    messages_.pop_back();
    cached_.resize(std::min(cached_.size(), static_cast<size_t>(model_->n_past())));
    model_->truncate(static_cast<int64_t>(cached_.size()));
    throw;
  }
}

ChatTurn ChatSession::reply_to_last(const GenerateRequest& params, ThreadPool& pool,
                                    const std::function<void(std::string_view)>& on_text) {
  ChatTurn turn;
  const tokenizer::ChatPrompt prompt = chat_->apply(messages_, {.add_generation_prompt = true});
  turn.warning = prompt.warning;
  const std::vector<int32_t> tokens = tokenizer_->encode(prompt.text, /*add_special=*/true, /*parse_special=*/true);
  turn.n_prompt = static_cast<int64_t>(tokens.size());
  check(turn.n_prompt < model_->n_ctx(), ErrorKind::kInvalidArgument,
        "the conversation (" + std::to_string(turn.n_prompt) + " tokens) does not fit the context of " +
            std::to_string(model_->n_ctx()) + " tokens (-c)");

  const size_t keep = reusable_prefix(cached_, tokens);
  model_->truncate(static_cast<int64_t>(keep));
  cached_.resize(keep);
  turn.n_reused = static_cast<int64_t>(keep);

  GenerateRequest req = params;
  req.prompt.assign(tokens.begin() + static_cast<ptrdiff_t>(keep), tokens.end());
  req.history = cached_;
  // A fixed seed still gives each turn its own draws (the same seed every turn would repeat them).
  if (req.sampling.seed != sampling::kRandomSeed) req.sampling.seed += turns_;
  ++turns_;
  turn.result = generate(*model_, *tokenizer_, req, pool, on_text);
  // generate() evaluated the prompt and every sampled token but the last.
  cached_.insert(cached_.end(), req.prompt.begin(), req.prompt.end());
  const std::vector<int32_t>& gen = turn.result.tokens;
  if (!gen.empty()) cached_.insert(cached_.end(), gen.begin(), gen.end() - 1);
  check(static_cast<int64_t>(cached_.size()) == model_->n_past(), ErrorKind::kInternal,
        "chat: the KV cache holds " + std::to_string(model_->n_past()) + " tokens, expected " +
            std::to_string(cached_.size()));
  return turn;
}

}  // namespace lightboat::cli
