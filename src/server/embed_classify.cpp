#include "server/embed_classify.h"

#include <algorithm>

#include "server/api_error.h"

namespace lightboat::server {
namespace {

using nlohmann::json;

const json* get(const json& body, const char* field) {
  auto it = body.find(field);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

std::string base64_encode(const void* data, size_t size) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t a = p[i], b = i + 1 < size ? p[i + 1] : 0, c = i + 2 < size ? p[i + 2] : 0;
    const uint32_t n = (a << 16) | (b << 8) | c;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[n & 63] : '=';
  }
  return out;
}

EmbeddingsBody parse_embeddings(const json& body, const RequestLimits& limits, const std::vector<std::string>& models) {
  EmbeddingsBody out;
  try {
    out.model = model_field(body, models);
    out.request.texts = input_field(body, limits);
    if (const json* f = get(body, "encoding_format")) {
      if (!f->is_string() || (*f != "float" && *f != "base64")) {
        throw invalid("encoding_format", "'encoding_format' must be \"float\" or \"base64\", got " + f->dump());
      }
      out.base64 = *f == "base64";
    }
    if (get(body, "dimensions")) {
      throw unsupported("dimensions", "'dimensions' is not supported: the embeddings have the model's width");
    }
    schedule_fields(body, limits, out.request.priority, out.request.deadline);
    out.keep_alive = keep_alive_field(body);
  } catch (const json::exception& e) {
    throw invalid("", std::string("malformed request: ") + e.what(), "invalid_type");
  }
  return out;
}

json embeddings_json(const std::string& model, const EmbedOutcome& outcome, bool base64) {
  json data = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < outcome.embeddings.size(); ++i) {
    const std::vector<float>& v = outcome.embeddings[i];
    // The fp32 values as little-endian bytes (every host we build for is little-endian).
    json e = base64 ? json(base64_encode(v.data(), v.size() * sizeof(float))) : json(v);
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(e)}});
  }
  for (int64_t t : outcome.prompt_tokens) tokens += t;
  return {{"object", "list"},
          {"data", std::move(data)},
          {"model", model},
          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

ClassifyBody parse_classify(const json& body, const RequestLimits& limits, const std::vector<std::string>& models) {
  ClassifyBody out;
  try {
    out.model = model_field(body, models);
    const std::vector<std::string> inputs = input_field(body, limits);
    const json* labels = get(body, "labels");
    if (!labels) throw invalid("labels", "'labels' is required", "missing_field");
    if (!labels->is_array()) throw invalid("labels", "'labels' must be an array of strings", "invalid_type");
    if (labels->empty()) throw invalid("labels", "'labels' must not be empty");
    if (static_cast<int64_t>(labels->size()) > limits.max_labels) {
      throw invalid("labels", "'labels' holds at most " + std::to_string(limits.max_labels) + " labels, got " +
                                  std::to_string(labels->size()));
    }
    ClassifyRequest base;
    for (size_t i = 0; i < labels->size(); ++i) {
      const json& l = (*labels)[i];
      const std::string field = "labels[" + std::to_string(i) + "]";
      if (!l.is_string()) throw invalid(field, "'" + field + "' must be a string", "invalid_type");
      const std::string label = l.get<std::string>();
      if (label.empty()) throw invalid(field, "'" + field + "' must not be empty");
      if (label.size() > 256) throw invalid(field, "'" + field + "' is longer than 256 bytes");
      if (std::find(base.labels.begin(), base.labels.end(), label) != base.labels.end()) {
        throw invalid(field, "'" + field + "' repeats the label '" + label + "'");
      }
      base.labels.push_back(label);
    }
    if (const json* t = get(body, "template")) {
      if (!t->is_string()) throw invalid("template", "'template' must be a string", "invalid_type");
      base.prompt_template = t->get<std::string>();
      if (base.prompt_template.find("{text}") == std::string::npos) {
        throw invalid("template", "'template' must contain {text}, where the input goes");
      }
      if (static_cast<int64_t>(base.prompt_template.size()) > limits.max_prompt_bytes) {
        throw invalid("template", "'template' is longer than " + std::to_string(limits.max_prompt_bytes) + " bytes",
                      "prompt_too_long");
      }
    }
    schedule_fields(body, limits, base.priority, base.deadline);
    out.keep_alive = keep_alive_field(body);
    for (const std::string& text : inputs) {
      ClassifyRequest r = base;
      r.text = text;
      out.requests.push_back(std::move(r));
    }
  } catch (const json::exception& e) {
    throw invalid("", std::string("malformed request: ") + e.what(), "invalid_type");
  }
  return out;
}

json classify_json(const std::string& model, const std::vector<ClassifyOutcome>& outcomes) {
  json data = json::array();
  int64_t tokens = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const ClassifyOutcome& o = outcomes[i];
    json scores = json::array();
    const LabelScore* best = nullptr;
    for (const LabelScore& s : o.scores) {
      scores.push_back({{"label", s.label}, {"logprob", s.logprob}, {"probability", s.probability}});
      if (!best || s.logprob > best->logprob) best = &s;
    }
    data.push_back({{"object", "classification"},
                    {"index", i},
                    {"label", best ? json(best->label) : json(nullptr)},
                    {"scores", std::move(scores)}});
    tokens += o.prompt_tokens;
  }
  return {{"object", "list"},
          {"model", model},
          {"data", std::move(data)},
          {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

}  // namespace lightboat::server
