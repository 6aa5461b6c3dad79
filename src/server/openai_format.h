// Response bodies in OpenAI's shapes: chat.completion, chat.completion.chunk, text_completion,
// the model list, and the SSE framing of chunks. Pure functions, unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lightboat/engine.h"
#include "server/request.h"

namespace lightboat::server {

// What every response of one request repeats.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string id;       // "chatcmpl-…" or "cmpl-…"
  int64_t created = 0;  // unix seconds
  std::string model;
  std::string fingerprint;  // system_fingerprint: the serving version's prefix ("" = null)
  bool logprobs = false;    // the request asked for logprobs
};

// The system_fingerprint of a model version: its first 23 characters ("sha256:" + 16 hex digits).
std::string version_fingerprint(const std::string& version);

ResponseMeta make_meta(Endpoint endpoint, const std::string& model);  // fresh random id, now

// "stop" or "length" (the only two a finished answer has; the others are errors).
const char* openai_finish_reason(FinishReason r);

nlohmann::json usage_json(const Completion& c);

// The whole answer of a non-streaming request.
nlohmann::json completion_json(const ResponseMeta& meta, const Completion& c);

// One streamed chunk. Chat: the first chunk carries {"role":"assistant"}, text chunks
// {"content":…}, the last an empty delta with finish_reason (and usage). Completions: text.
// `logprobs`: the entries of the tokens this chunk's text came from; `offset`: the bytes of
// completion text before the first of them (completions' text_offset).
nlohmann::json chunk_json(const ResponseMeta& meta, const std::string& text, bool first, const Completion* finished,
                          const std::vector<TokenLogprob>* logprobs = nullptr, int64_t offset = 0);

// choices[].logprobs. Chat: {"content":[{"token","logprob","bytes","top_logprobs":[{"token",
// "logprob","bytes"}]}],"refusal":null}. Completions: {"tokens","token_logprobs","top_logprobs":
// [{token: logprob}],"text_offset"} with offsets in bytes of the completion text from `offset`.
// A token's text that is not valid UTF-8 (part of a character) is shown with U+FFFD; its
// "bytes" are exact.
nlohmann::json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& entries, int64_t offset = 0);
// stream_options.include_usage: the extra last chunk with no choices and the usage.
nlohmann::json usage_chunk_json(const ResponseMeta& meta, const Completion& c);

nlohmann::json models_json(const std::vector<std::string>& ids, int64_t created);
nlohmann::json model_json(const std::string& id, int64_t created);

// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace lightboat::server
