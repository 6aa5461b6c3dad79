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
};

ResponseMeta make_meta(Endpoint endpoint, const std::string& model);  // fresh random id, now

// "stop" or "length" (the only two a finished answer has; the others are errors).
const char* openai_finish_reason(FinishReason r);

nlohmann::json usage_json(const Completion& c);

// The whole answer of a non-streaming request.
nlohmann::json completion_json(const ResponseMeta& meta, const Completion& c);

// One streamed chunk. Chat: the first chunk carries {"role":"assistant"}, text chunks
// {"content":…}, the last an empty delta with finish_reason (and usage). Completions: text.
nlohmann::json chunk_json(const ResponseMeta& meta, const std::string& text, bool first, const Completion* finished);
// stream_options.include_usage: the extra last chunk with no choices and the usage.
nlohmann::json usage_chunk_json(const ResponseMeta& meta, const Completion& c);

nlohmann::json models_json(const std::vector<std::string>& ids, int64_t created);
nlohmann::json model_json(const std::string& id, int64_t created);

// "data: <json>\n\n"
std::string sse_event(const nlohmann::json& j);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace lightboat::server
