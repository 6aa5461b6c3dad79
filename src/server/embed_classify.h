// POST /v1/embeddings (OpenAI's shape) and POST /v1/classify (Lightboat's): request bodies to
// engine requests and engine outcomes to response bodies. Pure functions, unit-tested.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lightboat/engine.h"
#include "server/request.h"

namespace lightboat::server {

struct EmbeddingsBody {
  EmbedRequest request;
  std::string model;    // as the client named it; "" when absent
  bool base64 = false;  // encoding_format "base64": little-endian fp32 bytes, base64-encoded
  std::optional<std::chrono::milliseconds> keep_alive;  // keep_alive_field()
};

// {model?, input: string | [strings], encoding_format?: "float" | "base64", dimensions? (refused),
//  user? (ignored), priority?, deadline_ms?, keep_alive?}
EmbeddingsBody parse_embeddings(const nlohmann::json& body, const RequestLimits& limits,
                                const std::vector<std::string>& models);

// {"object":"list","data":[{"object":"embedding","index":i,"embedding":[...] | "base64"}],
//  "model":…,"usage":{"prompt_tokens","total_tokens"}}
nlohmann::json embeddings_json(const std::string& model, const EmbedOutcome& outcome, bool base64);

struct ClassifyBody {
  std::vector<ClassifyRequest> requests;  // one per input, same labels and template
  std::string model;
  std::optional<std::chrono::milliseconds> keep_alive;  // keep_alive_field()
};

// {model?, input: string | [strings], labels: [strings] (1 .. limits.max_labels, each non-empty,
//  at most 256 bytes), template?: string with "{text}", priority?, deadline_ms?, keep_alive?}
ClassifyBody parse_classify(const nlohmann::json& body, const RequestLimits& limits,
                            const std::vector<std::string>& models);

// {"object":"list","model":…,"data":[{"object":"classification","index":i,"label":best,
//  "scores":[{"label","logprob","probability"}] (in the request's order)}],
//  "usage":{"prompt_tokens","total_tokens"}}
nlohmann::json classify_json(const std::string& model, const std::vector<ClassifyOutcome>& outcomes);

// Standard base64 (RFC 4648, padded) of raw bytes.
std::string base64_encode(const void* data, size_t size);

}  // namespace lightboat::server
