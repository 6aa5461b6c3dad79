#include "server/openai_format.h"

#include <chrono>
#include <random>

#include "server/api_error.h"

namespace lightboat::server {
namespace {

using nlohmann::json;

bool is_chat(const ResponseMeta& m) {
  return m.endpoint == Endpoint::kChatCompletions;
}

// The token text as valid UTF-8 (invalid bytes become U+FFFD), so that it can be an object key.
std::string utf8_text(const std::string& raw) {
  const std::string quoted = json(raw).dump(-1, ' ', false, json::error_handler_t::replace);
  return json::parse(quoted).get<std::string>();
}

json bytes_json(const std::string& raw) {
  json b = json::array();
  for (unsigned char c : raw) b.push_back(static_cast<int>(c));
  return b;
}

json envelope(const ResponseMeta& m, const char* object) {
  json j = {{"id", m.id}, {"object", object}, {"created", m.created}, {"model", m.model}};
  if (m.fingerprint.empty()) {
    j["system_fingerprint"] = nullptr;
  } else {
    j["system_fingerprint"] = m.fingerprint;
  }
  return j;
}

}  // namespace

std::string version_fingerprint(const std::string& version) {
  return version.substr(0, 23);
}

ResponseMeta make_meta(Endpoint endpoint, const std::string& model) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* kHex = "0123456789abcdef";
  std::string id = endpoint == Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-";
  uint64_t bits = rng();
  for (int i = 0; i < 16; ++i, bits >>= 4) id += kHex[bits & 15];
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return {.endpoint = endpoint,
          .id = std::move(id),
          .created = std::chrono::duration_cast<std::chrono::seconds>(now).count(),
          .model = model};
}

const char* openai_finish_reason(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

json usage_json(const Completion& c) {
  return {{"prompt_tokens", c.prompt_tokens},
          {"completion_tokens", c.completion_tokens},
          {"total_tokens", c.prompt_tokens + c.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", c.cached_prompt_tokens}}}};
}

json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& entries, int64_t offset) {
  if (endpoint == Endpoint::kChatCompletions) {
    json content = json::array();
    for (const TokenLogprob& e : entries) {
      json top = json::array();
      for (const TokenAlternative& t : e.top) {
        top.push_back({{"token", utf8_text(t.token)}, {"logprob", t.logprob}, {"bytes", bytes_json(t.token)}});
      }
      content.push_back({{"token", utf8_text(e.token)},
                         {"logprob", e.logprob},
                         {"bytes", bytes_json(e.token)},
                         {"top_logprobs", std::move(top)}});
    }
    return {{"content", std::move(content)}, {"refusal", nullptr}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(),
       text_offset = json::array();
  for (const TokenLogprob& e : entries) {
    tokens.push_back(utf8_text(e.token));
    token_logprobs.push_back(e.logprob);
    json top = json::object();
    for (const TokenAlternative& t : e.top) top[utf8_text(t.token)] = t.logprob;
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    offset += static_cast<int64_t>(e.token.size());
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(text_offset)}};
}

json completion_json(const ResponseMeta& m, const Completion& c) {
  json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(c.finish_reason)}, {"logprobs", nullptr}};
  if (m.logprobs) choice["logprobs"] = logprobs_json(m.endpoint, c.logprobs);
  if (is_chat(m)) {
    choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
  } else {
    choice["text"] = c.text;
  }
  json out = envelope(m, is_chat(m) ? "chat.completion" : "text_completion");
  out["choices"] = json::array({std::move(choice)});
  out["usage"] = usage_json(c);
  out["timings"] = {{"queue_ms", c.queue_ms}, {"ttft_ms", c.ttft_ms}, {"total_ms", c.total_ms}};
  return out;
}

json chunk_json(const ResponseMeta& m, const std::string& text, bool first, const Completion* finished,
                const std::vector<TokenLogprob>* logprobs, int64_t offset) {
  json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", finished ? json(openai_finish_reason(finished->finish_reason)) : json(nullptr)}};
  if (m.logprobs && logprobs && !logprobs->empty()) choice["logprobs"] = logprobs_json(m.endpoint, *logprobs, offset);
  if (is_chat(m)) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (!finished && !first)) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  json out = envelope(m, is_chat(m) ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array({std::move(choice)});
  if (finished) out["usage"] = usage_json(*finished);
  return out;
}

json usage_chunk_json(const ResponseMeta& m, const Completion& c) {
  json out = envelope(m, is_chat(m) ? "chat.completion.chunk" : "text_completion");
  out["choices"] = json::array();
  out["usage"] = usage_json(c);
  return out;
}

json model_json(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "lightboat"}};
}

json models_json(const std::vector<std::string>& ids, int64_t created) {
  json data = json::array();
  for (const std::string& id : ids) data.push_back(model_json(id, created));
  return {{"object", "list"}, {"data", std::move(data)}};
}

std::string sse_event(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

}  // namespace lightboat::server
