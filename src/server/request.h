// Request bodies of the OpenAI-compatible endpoints to engine requests: every field checked for
// type and range, every failure an ApiError (4xx) naming the field. Pure functions over JSON,
// unit-tested without a network or a model.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lightboat/engine.h"

namespace lightboat::server {

// Per-request limits (flags of `lightboat serve`).
struct RequestLimits {
  int64_t max_prompt_bytes = 64 * 1024;  // prompt text, or all message contents together
  int64_t max_tokens = 2048;             // the largest max_tokens accepted; also the default
  int64_t max_messages = 512;
  int64_t max_stop = 8;          // stop strings per request
  int64_t max_stop_bytes = 256;  // bytes of one stop string
  int64_t max_deadline_ms = 24 * 3600 * 1000;
  int max_json_depth = 32;  // nesting of arrays/objects in a body
  int64_t max_inputs = 64;  // texts of one /v1/embeddings or /v1/classify request
  int64_t max_labels = 64;  // labels of one /v1/classify request
};

enum class Endpoint { kChatCompletions, kCompletions };

struct ParsedRequest {
  GenerateRequest generate;
  bool stream = false;
  bool include_usage = false;                           // stream_options.include_usage: an extra usage-only chunk
  std::string model;                                    // as the client named it (echoed in responses); "" when absent
  bool logprobs = false;                                // the response carries logprobs (generate.top_logprobs >= 0)
  std::optional<std::chrono::milliseconds> keep_alive;  // keep_alive_field()
};

// The body as a JSON object. Throws ApiError 400 (code "invalid_json") for malformed JSON, a
// body nested deeper than limits.max_json_depth, or anything but an object.
nlohmann::json parse_body(std::string_view body, const RequestLimits& limits);

// The fields of a chat completion (messages) or a completion (prompt). `models` are the ids the
// server answers to: a "model" naming another is a 404 model_not_found. Fields the engine cannot
// honour yet (n > 1, tools, ...) are 400 "unsupported" naming them; unknown fields are ignored,
// as OpenAI clients send extras. Logprobs: chat takes "logprobs": true and "top_logprobs" 0..20;
// completions take "logprobs": 0..20 (the number of alternatives).
ParsedRequest parse_generate(const nlohmann::json& body, Endpoint endpoint, const RequestLimits& limits,
                             const std::vector<std::string>& models);

// ---- Field readers shared by every endpoint (each throws ApiError naming the field) ----

// "model": "" when absent; 404 model_not_found when it names none of `models` (empty: any name;
// the server checks it against its models).
std::string model_field(const nlohmann::json& body, const std::vector<std::string>& models);
// "priority" ("high" | "normal" | "low") and "deadline_ms" (1 .. limits.max_deadline_ms).
void schedule_fields(const nlohmann::json& body, const RequestLimits& limits, Priority& priority,
                     std::optional<std::chrono::milliseconds>& deadline);
// "keep_alive" (Ollama's): how long the model stays loaded once idle after this request and those
// that follow (ModelManager::set_keep_alive). A duration string ("5m", "30s", "1h", "-1") or a
// number of seconds; 0 = unload when idle, negative = keep loaded. nullopt when absent; 400
// naming the field otherwise.
std::optional<std::chrono::milliseconds> keep_alive_field(const nlohmann::json& body);
// "input": a string or a non-empty array of strings (at most limits.max_inputs), each non-empty
// and at most limits.max_prompt_bytes ("input[i]" named when one is at fault).
std::vector<std::string> input_field(const nlohmann::json& body, const RequestLimits& limits);

}  // namespace lightboat::server
