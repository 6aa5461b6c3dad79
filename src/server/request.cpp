#include "server/request.h"

#include <algorithm>
#include <limits>

#include "base/error.h"
#include "lightboat/model_manager.h"
#include "server/api_error.h"

namespace lightboat::server {
namespace {

using nlohmann::json;

const char* json_type(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

ApiError wrong_type(const std::string& field, const char* expected, const json& v) {
  return invalid(field, "'" + field + "' must be " + expected + ", got " + json_type(v), "invalid_type");
}

// The value of `field`, or nullptr when absent or null (OpenAI clients send null for "unset").
const json* get(const json& body, const char* field) {
  auto it = body.find(field);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& body, const char* field, double lo, double hi, bool lo_open = false) {
  const json& v = *get(body, field);
  if (!v.is_number()) throw wrong_type(field, "a number", v);
  const double x = v.get<double>();
  if (!(lo_open ? x > lo : x >= lo) || !(x <= hi)) {
    throw invalid(field, "'" + std::string(field) + "' must be in " + (lo_open ? "(" : "[") + json(lo).dump() + ", " +
                             json(hi).dump() + "], got " + v.dump());
  }
  return x;
}

int64_t integer(const json& body, const char* field, int64_t lo, int64_t hi) {
  const json& v = *get(body, field);
  // 3.0 is accepted as 3 (JavaScript clients cannot tell them apart); 3.5 is not an integer.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d != static_cast<double>(static_cast<int64_t>(d)) || d < -9e18 || d > 9e18) {
      throw wrong_type(field, "an integer", v);
    }
  } else if (!v.is_number_integer()) {
    throw wrong_type(field, "an integer", v);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    throw invalid(field, "'" + std::string(field) + "' must be at most " + std::to_string(hi) + ", got " + v.dump());
  }
  const int64_t x = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  if (x < lo || x > hi) {
    throw invalid(field, "'" + std::string(field) + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                             "], got " + v.dump());
  }
  return x;
}

bool boolean(const json& body, const char* field) {
  const json& v = *get(body, field);
  if (!v.is_boolean()) throw wrong_type(field, "a boolean", v);
  return v.get<bool>();
}

// The depth of the deepest array/object in `text`, strings skipped; stops counting past `limit`.
// Checked before parsing so that a hostile body cannot make the parser or the destructor recurse.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      deepest = std::max(deepest, ++depth);
    else if (c == ']' || c == '}')
      --depth;
    if (deepest > limit) break;
  }
  return deepest;
}

void parse_sampling(const json& body, SamplingOptions& s) {
  if (get(body, "temperature")) s.temperature = static_cast<float>(number(body, "temperature", 0.0, 2.0));
  if (get(body, "top_p")) s.top_p = static_cast<float>(number(body, "top_p", 0.0, 1.0, /*lo_open=*/true));
  if (get(body, "top_k")) s.top_k = static_cast<int32_t>(integer(body, "top_k", 0, 1 << 20));
  if (get(body, "min_p")) s.min_p = static_cast<float>(number(body, "min_p", 0.0, 1.0));
  if (get(body, "presence_penalty")) {
    s.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2.0, 2.0));
  }
  if (get(body, "frequency_penalty")) {
    s.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2.0, 2.0));
  }
  if (get(body, "repeat_penalty")) {  // llama.cpp's multiplicative penalty, an extension
    s.repeat_penalty = static_cast<float>(number(body, "repeat_penalty", 0.0, 10.0, /*lo_open=*/true));
  }
  if (const json* seed = get(body, "seed")) {
    if (seed->is_number_unsigned())
      s.seed = seed->get<uint64_t>();
    else
      s.seed = static_cast<uint64_t>(
          integer(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  }
}

// OpenAI's two spellings: chat "logprobs": bool + "top_logprobs": 0..20; completions
// "logprobs": the number of alternatives (0..20; OpenAI stops at 5, we allow the chat range).
void parse_logprobs(const json& body, Endpoint endpoint, ParsedRequest& r) {
  if (endpoint == Endpoint::kChatCompletions) {
    const bool on = get(body, "logprobs") && boolean(body, "logprobs");
    if (get(body, "top_logprobs")) {
      const int64_t top = integer(body, "top_logprobs", 0, 20);
      if (!on) throw invalid("top_logprobs", "'top_logprobs' needs \"logprobs\": true");
      r.generate.top_logprobs = static_cast<int32_t>(top);
    } else if (on) {
      r.generate.top_logprobs = 0;
    }
  } else if (get(body, "logprobs")) {
    r.generate.top_logprobs = static_cast<int32_t>(integer(body, "logprobs", 0, 20));
  }
  r.logprobs = r.generate.top_logprobs >= 0;
}

void parse_stop(const json& body, const RequestLimits& limits, std::vector<std::string>& stop) {
  const json* v = get(body, "stop");
  if (!v) return;
  if (v->is_string()) {
    stop.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (static_cast<int64_t>(v->size()) > limits.max_stop) {
      throw invalid("stop", "'stop' holds at most " + std::to_string(limits.max_stop) + " strings");
    }
    for (const json& s : *v) {
      if (!s.is_string()) throw invalid("stop", "every element of 'stop' must be a string", "invalid_type");
      stop.push_back(s.get<std::string>());
    }
  } else {
    throw wrong_type("stop", "a string or an array of strings", *v);
  }
  for (const std::string& s : stop) {
    if (s.empty()) throw invalid("stop", "a stop string must not be empty");
    if (static_cast<int64_t>(s.size()) > limits.max_stop_bytes) {
      throw invalid("stop", "a stop string is longer than " + std::to_string(limits.max_stop_bytes) + " bytes");
    }
  }
}

// Fields a client may send that this server does not implement: refused by name, not ignored,
// since ignoring them would silently change what the client gets.
void refuse_unsupported(const json& body, Endpoint endpoint) {
  if (const json* n = get(body, "n"); n && !(n->is_number_integer() && n->get<int64_t>() == 1)) {
    throw unsupported("n", "only n = 1 is supported");
  }
  for (const char* f : {"tools", "functions", "logit_bias"}) {
    const json* v = get(body, f);
    if (v && !(v->is_array() && v->empty()) && !(v->is_object() && v->empty())) {
      throw unsupported(f, std::string("'") + f + "' is not supported");
    }
  }
  if (const json* rf = get(body, "response_format")) {
    const auto type = rf->is_object() ? rf->find("type") : rf->end();
    const bool text = rf->is_object() && (type == rf->end() || (type->is_string() && *type == "text"));
    if (!text) {
      throw unsupported("response_format", "only response_format {\"type\":\"text\"} is supported");
    }
  }
  if (endpoint == Endpoint::kCompletions) {
    if (const json* e = get(body, "echo"); e && !(e->is_boolean() && !e->get<bool>())) {
      throw unsupported("echo", "echo is not supported");
    }
    if (const json* s = get(body, "suffix"); s && !(s->is_string() && s->get<std::string>().empty())) {
      throw unsupported("suffix", "suffix (fill-in-the-middle) is not supported");
    }
    if (const json* b = get(body, "best_of"); b && !(b->is_number_integer() && b->get<int64_t>() == 1)) {
      throw unsupported("best_of", "only best_of = 1 is supported");
    }
  }
}

std::string message_content(const json& m, size_t i) {
  const std::string field = "messages[" + std::to_string(i) + "].content";
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) throw wrong_type(field, "a string or an array of content parts", *it);
  std::string text;
  for (const json& part : *it) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      throw invalid(field, "every content part must be an object with a string 'type'", "invalid_type");
    }
    if (part["type"] != "text") {
      throw unsupported(field,
                        field + ": content parts of type '" + part["type"].get<std::string>() + "' are not supported");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      throw invalid(field, "a text content part needs a string 'text'", "invalid_type");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

void parse_messages(const json& body, const RequestLimits& limits, std::vector<ChatMessage>& out) {
  const json* v = get(body, "messages");
  if (!v) throw invalid("messages", "'messages' is required", "missing_field");
  if (!v->is_array()) throw wrong_type("messages", "an array", *v);
  if (v->empty()) throw invalid("messages", "'messages' must not be empty");
  if (static_cast<int64_t>(v->size()) > limits.max_messages) {
    throw invalid("messages", "'messages' holds at most " + std::to_string(limits.max_messages) + " messages");
  }
  int64_t bytes = 0;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw wrong_type(at, "an object", m);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      throw invalid(at + ".role", at + " needs a string 'role'", "invalid_type");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r == "tool" || r == "function") throw unsupported(at + ".role", "tool messages are not supported");
    if (r != "system" && r != "user" && r != "assistant") {
      throw invalid(at + ".role", at + ".role '" + r + "' is not one of system, developer, user, assistant");
    }
    std::string content = message_content(m, i);
    bytes += static_cast<int64_t>(content.size());
    out.push_back({std::move(r), std::move(content)});
  }
  if (bytes > limits.max_prompt_bytes) {
    throw invalid("messages",
                  "the messages hold " + std::to_string(bytes) + " bytes; the limit is " +
                      std::to_string(limits.max_prompt_bytes),
                  "prompt_too_long");
  }
}

std::string parse_prompt(const json& body, const RequestLimits& limits) {
  const json* v = get(body, "prompt");
  if (!v) throw invalid("prompt", "'prompt' is required", "missing_field");
  std::string prompt;
  if (v->is_string()) {
    prompt = v->get<std::string>();
  } else if (v->is_array() && v->size() == 1 && (*v)[0].is_string()) {
    prompt = (*v)[0].get<std::string>();
  } else if (v->is_array()) {
    throw unsupported("prompt", "'prompt' must be one string: batches and token-id prompts are not supported");
  } else {
    throw wrong_type("prompt", "a string", *v);
  }
  if (prompt.empty()) throw invalid("prompt", "'prompt' must not be empty");
  if (static_cast<int64_t>(prompt.size()) > limits.max_prompt_bytes) {
    throw invalid("prompt",
                  "the prompt holds " + std::to_string(prompt.size()) + " bytes; the limit is " +
                      std::to_string(limits.max_prompt_bytes),
                  "prompt_too_long");
  }
  return prompt;
}

}  // namespace

json parse_body(std::string_view body, const RequestLimits& limits) {
  if (body.empty()) throw invalid("", "the request body is empty; a JSON object is expected", "invalid_json");
  if (nesting_depth(body, limits.max_json_depth) > limits.max_json_depth) {
    throw invalid("", "the request body is nested deeper than " + std::to_string(limits.max_json_depth) + " levels",
                  "invalid_json");
  }
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw invalid("", "the request body is not valid JSON", "invalid_json");
  if (!j.is_object())
    throw invalid("", std::string("the request body must be a JSON object, got ") + json_type(j), "invalid_json");
  return j;
}

namespace {

ParsedRequest parse_fields(const json& body, Endpoint endpoint, const RequestLimits& limits,
                           const std::vector<std::string>& models) {
  ParsedRequest r;
  r.model = model_field(body, models);
  refuse_unsupported(body, endpoint);
  parse_logprobs(body, endpoint, r);
  if (get(body, "stream")) r.stream = boolean(body, "stream");
  if (const json* so = get(body, "stream_options")) {
    if (!so->is_object()) throw wrong_type("stream_options", "an object", *so);
    if (get(*so, "include_usage")) r.include_usage = boolean(*so, "include_usage");
  }
  GenerateRequest& g = r.generate;
  if (endpoint == Endpoint::kChatCompletions) {
    parse_messages(body, limits, g.messages);
  } else {
    g.prompt = parse_prompt(body, limits);
  }
  parse_sampling(body, g.sampling);
  g.max_tokens = limits.max_tokens;
  // max_completion_tokens is OpenAI's newer name; it wins when both are given.
  for (const char* f : {"max_tokens", "max_completion_tokens"}) {
    if (get(body, f)) g.max_tokens = integer(body, f, 1, limits.max_tokens);
  }
  parse_stop(body, limits, g.stop);
  schedule_fields(body, limits, g.priority, g.deadline);
  r.keep_alive = keep_alive_field(body);
  return r;
}

}  // namespace

std::string model_field(const json& body, const std::vector<std::string>& models) {
  const json* m = get(body, "model");
  if (!m) return {};
  if (!m->is_string()) throw wrong_type("model", "a string", *m);
  std::string model = m->get<std::string>();
  if (!model.empty() && !models.empty() && std::find(models.begin(), models.end(), model) == models.end()) {
    throw ApiError(404, "invalid_request_error", "model_not_found", "model",
                   "the model '" + model + "' does not exist; GET /v1/models lists the models served");
  }
  return model;
}

void schedule_fields(const json& body, const RequestLimits& limits, Priority& priority,
                     std::optional<std::chrono::milliseconds>& deadline) {
  if (const json* p = get(body, "priority")) {
    if (!p->is_string()) throw wrong_type("priority", "a string", *p);
    const std::optional<Priority> parsed = parse_priority(p->get<std::string>());
    if (!parsed) throw invalid("priority", "'priority' must be \"high\", \"normal\" or \"low\", got " + p->dump());
    priority = *parsed;
  }
  if (get(body, "deadline_ms")) {
    deadline = std::chrono::milliseconds(integer(body, "deadline_ms", 1, limits.max_deadline_ms));
  }
}

std::optional<std::chrono::milliseconds> keep_alive_field(const json& body) {
  const json* v = get(body, "keep_alive");
  if (!v || v->is_null()) return std::nullopt;
  try {
    if (v->is_number()) return keep_alive_from_seconds(v->get<double>(), "keep_alive");
    if (v->is_string()) return parse_keep_alive(v->get<std::string>(), "keep_alive");
  } catch (const Error& e) {
    throw invalid("keep_alive", e.what());
  }
  throw wrong_type("keep_alive", "a duration string (\"5m\", \"30s\", \"-1\") or a number of seconds", *v);
}

std::vector<std::string> input_field(const json& body, const RequestLimits& limits) {
  const json* v = get(body, "input");
  if (!v) throw invalid("input", "'input' is required", "missing_field");
  std::vector<std::string> out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->empty()) throw invalid("input", "'input' must not be an empty array");
    if (static_cast<int64_t>(v->size()) > limits.max_inputs) {
      throw invalid("input", "'input' holds at most " + std::to_string(limits.max_inputs) + " texts, got " +
                                 std::to_string(v->size()));
    }
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        throw wrong_type("input[" + std::to_string(i) + "]", "a string (token-id inputs are not supported)", (*v)[i]);
      }
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    throw wrong_type("input", "a string or an array of strings", *v);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string field = v->is_string() ? "input" : "input[" + std::to_string(i) + "]";
    if (out[i].empty()) throw invalid(field, "'" + field + "' must not be empty");
    if (static_cast<int64_t>(out[i].size()) > limits.max_prompt_bytes) {
      throw invalid(field,
                    "'" + field + "' holds " + std::to_string(out[i].size()) + " bytes; the limit is " +
                        std::to_string(limits.max_prompt_bytes),
                    "prompt_too_long");
    }
  }
  return out;
}

ParsedRequest parse_generate(const json& body, Endpoint endpoint, const RequestLimits& limits,
                             const std::vector<std::string>& models) {
  if (!body.is_object()) throw invalid("", std::string("the request must be a JSON object, got ") + json_type(body));
  try {
    return parse_fields(body, endpoint, limits, models);
  } catch (const json::exception& e) {
    // A type the checks above did not foresee: still the client's fault, still a 400.
    throw invalid("", std::string("malformed request: ") + e.what(), "invalid_type");
  }
}

}  // namespace lightboat::server
