// Text generation for the CLI: evaluate the prompt, then sample one token at a time, streaming
// text as it becomes complete, until EOG, a stop string or the token limit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/thread_pool.h"
#include "model/model.h"
#include "sampling/params.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::cli {

struct GenerateRequest {
  std::vector<int32_t> prompt;         // token ids, BOS included as the tokenizer decided
  std::vector<int32_t> history;        // tokens already in the KV cache before `prompt` (a chat's
                                       // earlier turns): not evaluated, but the penalties see them
  int64_t max_tokens = 128;            // -n; < 0 = until EOG or the context is full
  sampling::SamplingParams sampling;
  std::vector<std::string> stop;       // stop strings
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids (an EOG token that ended it included)
  std::string text;             // generated text as streamed (stop string excluded)
  std::string finish_reason;    // "stop" (EOG or stop string), "length" (token limit or context full)
  double prompt_ms = 0;
  double gen_ms = 0;
  int64_t n_prompt = 0;
  int64_t n_gen = 0;            // tokens sampled (and evaluated but the last)
};

// on_text receives each piece of text as soon as it is valid UTF-8 and clear of stop strings.
GenerateResult generate(model::Model& model, const tokenizer::Tokenizer& tok, const GenerateRequest& req,
                        ThreadPool& pool, const std::function<void(std::string_view)>& on_text);

}  // namespace lightboat::cli
