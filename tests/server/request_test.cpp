// Request parsing and validation, response shapes, auth and address checks: no network, no model.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/embed_classify.h"
#include "server/openai_format.h"
#include "server/request.h"
#include "server/server.h"

namespace lightboat::server {
namespace {

using nlohmann::json;

const std::vector<std::string> kModels = {"tiny"};

ParsedRequest chat(const std::string& body, const RequestLimits& limits = {}) {
  return parse_generate(parse_body(body, limits), Endpoint::kChatCompletions, limits, kModels);
}

// The ApiError a chat body raises (status, param, code); fails the test when none is thrown.
ApiError chat_error(const std::string& body, const RequestLimits& limits = {}) {
  try {
    chat(body, limits);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError(0, "", "", "", "");
}

TEST(ServerRequest, ChatFieldsMapOntoTheEngineRequest) {
  const ParsedRequest r = chat(R"({"model":"tiny","messages":[{"role":"developer","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
      "temperature":0.5,"top_p":0.9,"top_k":20,"min_p":0.1,"seed":42,"max_tokens":33,"stop":["\n","END"],
      "presence_penalty":0.5,"frequency_penalty":-0.5,"stream":true,"stream_options":{"include_usage":true},
      "priority":"high","deadline_ms":1500,"user":"ignored","n":1,"logprobs":false})");
  const GenerateRequest& g = r.generate;
  ASSERT_EQ(g.messages.size(), 2u);
  EXPECT_EQ(g.messages[0].role, "system");
  EXPECT_EQ(g.messages[1].content, "Hi there");
  EXPECT_TRUE(g.prompt.empty());
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(g.sampling.top_p, 0.9f);
  EXPECT_EQ(g.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(g.sampling.min_p, 0.1f);
  EXPECT_EQ(g.sampling.seed, 42u);
  EXPECT_FLOAT_EQ(g.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(g.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(g.max_tokens, 33);
  EXPECT_EQ(g.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(g.priority, Priority::kHigh);
  EXPECT_EQ(g.deadline, std::chrono::milliseconds(1500));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.model, "tiny");
}

TEST(ServerRequest, DefaultsAndCompletionPrompts) {
  RequestLimits limits;
  limits.max_tokens = 100;
  const ParsedRequest r = chat(R"({"messages":[{"role":"user","content":"x"}],"seed":null,"stop":"END"})", limits);
  EXPECT_EQ(r.generate.max_tokens, 100) << "absent max_tokens = the server's limit";
  EXPECT_FALSE(r.generate.sampling.seed.has_value());
  EXPECT_EQ(r.generate.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.generate.priority, Priority::kNormal);
  EXPECT_FALSE(r.stream);
  const ParsedRequest c =
      parse_generate(parse_body(R"({"prompt":["Once"],"max_completion_tokens":3,"max_tokens":9})", limits),
                     Endpoint::kCompletions, limits, kModels);
  EXPECT_EQ(c.generate.prompt, "Once");
  EXPECT_EQ(c.generate.max_tokens, 3) << "max_completion_tokens wins";
  EXPECT_EQ(chat(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":5.0})").generate.max_tokens, 5);
}

TEST(ServerRequest, BadBodiesAreRejectedNamingTheField) {
  struct Case {
    std::string body;
    int status;
    std::string param;
    std::string code;
  };
  const std::string m = R"("messages":[{"role":"user","content":"x"}])";
  const std::vector<Case> cases = {
      {"", 400, "", "invalid_json"},
      {"{", 400, "", "invalid_json"},
      {"[1,2]", 400, "", "invalid_json"},
      {"\"text\"", 400, "", "invalid_json"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", 400, "", "invalid_json"},
      {std::string(100, '[') + std::string(100, ']'), 400, "", "invalid_json"},
      {"{}", 400, "messages", "missing_field"},
      {R"({"messages":[]})", 400, "messages", "invalid_value"},
      {R"({"messages":"hi"})", 400, "messages", "invalid_type"},
      {R"({"messages":[{"content":"x"}]})", 400, "messages[0].role", "invalid_type"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", 400, "messages[0].role", "invalid_value"},
      {R"({"messages":[{"role":"tool","content":"x"}]})", 400, "messages[0].role", "unsupported"},
      {R"({"messages":[{"role":"user","content":7}]})", 400, "messages[0].content", "invalid_type"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", 400, "messages[0].content", "unsupported"},
      {"{" + m + R"(,"model":"gpt-4"})", 404, "model", "model_not_found"},
      {"{" + m + R"(,"model":5})", 400, "model", "invalid_type"},
      {"{" + m + R"(,"temperature":"hot"})", 400, "temperature", "invalid_type"},
      {"{" + m + R"(,"temperature":3})", 400, "temperature", "invalid_value"},
      {"{" + m + R"(,"top_p":0})", 400, "top_p", "invalid_value"},
      {"{" + m + R"(,"top_k":-1})", 400, "top_k", "invalid_value"},
      {"{" + m + R"(,"top_k":1.5})", 400, "top_k", "invalid_type"},
      {"{" + m + R"(,"min_p":2})", 400, "min_p", "invalid_value"},
      {"{" + m + R"(,"presence_penalty":9})", 400, "presence_penalty", "invalid_value"},
      {"{" + m + R"(,"frequency_penalty":true})", 400, "frequency_penalty", "invalid_type"},
      {"{" + m + R"(,"seed":"abc"})", 400, "seed", "invalid_type"},
      {"{" + m + R"(,"max_tokens":0})", 400, "max_tokens", "invalid_value"},
      {"{" + m + R"(,"max_tokens":100000})", 400, "max_tokens", "invalid_value"},
      {"{" + m + R"(,"max_tokens":18446744073709551615})", 400, "max_tokens", "invalid_value"},
      {"{" + m + R"(,"stop":5})", 400, "stop", "invalid_type"},
      {"{" + m + R"(,"stop":[""]})", 400, "stop", "invalid_value"},
      {"{" + m + R"(,"stop":["a",1]})", 400, "stop", "invalid_type"},
      {"{" + m + R"(,"stream":"yes"})", 400, "stream", "invalid_type"},
      {"{" + m + R"(,"stream_options":[]})", 400, "stream_options", "invalid_type"},
      {"{" + m + R"(,"priority":"urgent"})", 400, "priority", "invalid_value"},
      {"{" + m + R"(,"priority":1})", 400, "priority", "invalid_type"},
      {"{" + m + R"(,"deadline_ms":0})", 400, "deadline_ms", "invalid_value"},
      {"{" + m + R"(,"deadline_ms":"soon"})", 400, "deadline_ms", "invalid_type"},
      {"{" + m + R"(,"n":2})", 400, "n", "unsupported"},
      {"{" + m + R"(,"logprobs":1})", 400, "logprobs", "invalid_type"},
      {"{" + m + R"(,"top_logprobs":3})", 400, "top_logprobs", "invalid_value"},
      {"{" + m + R"(,"logprobs":true,"top_logprobs":21})", 400, "top_logprobs", "invalid_value"},
      {"{" + m + R"(,"logprobs":true,"top_logprobs":-1})", 400, "top_logprobs", "invalid_value"},
      {"{" + m + R"(,"tools":[{"type":"function"}]})", 400, "tools", "unsupported"},
      {"{" + m + R"(,"response_format":{"type":"json_object"}})", 400, "response_format", "unsupported"},
      {"{" + m + R"(,"response_format":{"type":5}})", 400, "response_format", "unsupported"},
  };
  for (const Case& c : cases) {
    const ApiError e = chat_error(c.body);
    EXPECT_EQ(e.status(), c.status) << c.body << ": " << e.what();
    EXPECT_EQ(e.param(), c.param) << c.body << ": " << e.what();
    EXPECT_EQ(e.code(), c.code) << c.body << ": " << e.what();
    if (!c.param.empty()) {
      EXPECT_NE(std::string(e.what()).find(c.param.substr(0, c.param.find('['))), std::string::npos)
          << "the message names the field: " << e.what();
    }
    const json j = e.to_json();
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_TRUE(j["error"]["code"].is_string());
  }
}

TEST(ServerRequest, PromptLimitsAndCompletionOnlyFields) {
  RequestLimits limits;
  limits.max_prompt_bytes = 10;
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"01234567890"}]})", limits).code(), "prompt_too_long");
  auto completion_error = [&](const std::string& body) {
    try {
      parse_generate(parse_body(body, limits), Endpoint::kCompletions, limits, kModels);
    } catch (const ApiError& e) {
      return e.param() + "/" + e.code();
    }
    return std::string("no error");
  };
  EXPECT_EQ(completion_error(R"({"prompt":"01234567890"})"), "prompt/prompt_too_long");
  EXPECT_EQ(completion_error(R"({"prompt":""})"), "prompt/invalid_value");
  EXPECT_EQ(completion_error(R"({"prompt":[1,2,3]})"), "prompt/unsupported");
  EXPECT_EQ(completion_error(R"({"prompt":["a","b"]})"), "prompt/unsupported");
  EXPECT_EQ(completion_error(R"({"prompt":"a","echo":true})"), "echo/unsupported");
  EXPECT_EQ(completion_error(R"({"prompt":"a","logprobs":21})"), "logprobs/invalid_value");
  EXPECT_EQ(completion_error(R"({"prompt":"a","logprobs":2})"), "no error");
  EXPECT_EQ(completion_error(R"({"prompt":"a","suffix":"z"})"), "suffix/unsupported");
  EXPECT_EQ(completion_error(R"({"prompt":"a","logprobs":0,"echo":false})"), "no error");
}

TEST(ServerFormat, ChatAndCompletionShapes) {
  const ResponseMeta chat_meta = make_meta(Endpoint::kChatCompletions, "tiny");
  EXPECT_EQ(chat_meta.id.rfind("chatcmpl-", 0), 0u);
  Completion c;
  c.text = "Hello";
  c.finish_reason = FinishReason::kLength;
  c.prompt_tokens = 4;
  c.completion_tokens = 2;
  const json full = completion_json(chat_meta, c);
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(full["usage"]["total_tokens"], 6);
  const json first = chunk_json(chat_meta, "He", true, nullptr);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "He");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  c.finish_reason = FinishReason::kStop;
  const json last = chunk_json(chat_meta, "", false, &c);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  EXPECT_EQ(last["usage"]["completion_tokens"], 2);
  EXPECT_TRUE(usage_chunk_json(chat_meta, c)["choices"].empty());
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");

  const ResponseMeta text_meta = make_meta(Endpoint::kCompletions, "tiny");
  EXPECT_EQ(text_meta.id.rfind("cmpl-", 0), 0u);
  EXPECT_EQ(completion_json(text_meta, c)["choices"][0]["text"], "Hello");
  EXPECT_EQ(chunk_json(text_meta, "lo", false, nullptr)["choices"][0]["text"], "lo");
  EXPECT_EQ(models_json({"tiny"}, 7)["data"][0]["id"], "tiny");
  // Output text that is not valid UTF-8 is replaced, never thrown on.
  EXPECT_NO_THROW(dump(json{{"t", std::string("\xff")}}));
}

TEST(ServerRequest, LogprobsFields) {
  EXPECT_EQ(chat(R"({"messages":[{"role":"user","content":"x"}]})").generate.top_logprobs, -1);
  EXPECT_EQ(chat(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true})").generate.top_logprobs, 0);
  const ParsedRequest r = chat(R"({"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":20})");
  EXPECT_EQ(r.generate.top_logprobs, 20);
  EXPECT_TRUE(r.logprobs);
  const RequestLimits limits;
  EXPECT_EQ(
      parse_generate(parse_body(R"({"prompt":"a","logprobs":3})", limits), Endpoint::kCompletions, limits, kModels)
          .generate.top_logprobs,
      3);
}

TEST(ServerFormat, LogprobsShapes) {
  const std::vector<TokenLogprob> entries = {
      {.token = "He",
       .id = 5,
       .logprob = -0.5,
       .top = {{.token = "He", .id = 5, .logprob = -0.5}, {.token = "\xe2", .id = 9, .logprob = -2.0}}},
      {.token = "llo", .id = 7, .logprob = -0.25, .top = {{.token = "llo", .id = 7, .logprob = -0.25}}}};
  const json chat_lp = logprobs_json(Endpoint::kChatCompletions, entries);
  ASSERT_EQ(chat_lp["content"].size(), 2u);
  EXPECT_EQ(chat_lp["content"][0]["token"], "He");
  EXPECT_EQ(chat_lp["content"][0]["bytes"], json({72, 101}));
  EXPECT_EQ(chat_lp["content"][0]["top_logprobs"][1]["bytes"], json({0xe2}));
  EXPECT_EQ(chat_lp["content"][0]["top_logprobs"][1]["token"], "\xef\xbf\xbd");  // U+FFFD
  EXPECT_DOUBLE_EQ(chat_lp["content"][1]["logprob"].get<double>(), -0.25);
  const json text_lp = logprobs_json(Endpoint::kCompletions, entries, 10);
  EXPECT_EQ(text_lp["tokens"], json({"He", "llo"}));
  EXPECT_EQ(text_lp["text_offset"], json({10, 12}));
  EXPECT_DOUBLE_EQ(text_lp["top_logprobs"][0]["He"].get<double>(), -0.5);

  ResponseMeta meta = make_meta(Endpoint::kChatCompletions, "tiny");
  meta.logprobs = true;
  Completion c;
  c.text = "Hello";
  c.logprobs = entries;
  EXPECT_EQ(completion_json(meta, c)["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(chunk_json(meta, "He", true, nullptr, &c.logprobs)["choices"][0]["logprobs"]["content"].size(), 2u);
  meta.logprobs = false;
  EXPECT_TRUE(completion_json(meta, c)["choices"][0]["logprobs"].is_null());
}

// "param/code" of the error a body raises for `parse`, or "no error".
template <typename Parse>
std::string error_of(Parse parse, const std::string& body) {
  try {
    parse(parse_body(body, RequestLimits{}));
  } catch (const ApiError& e) {
    return e.param() + "/" + e.code();
  }
  return "no error";
}

TEST(ServerRequest, EmbeddingsAndClassifyBodies) {
  const RequestLimits limits;
  const EmbeddingsBody e = parse_embeddings(
      parse_body(R"({"model":"tiny","input":["a","b"],"encoding_format":"base64","priority":"low"})", limits), limits,
      kModels);
  EXPECT_EQ(e.request.texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(e.base64);
  EXPECT_EQ(e.request.priority, Priority::kLow);
  EXPECT_EQ(parse_embeddings(parse_body(R"({"input":"one"})", limits), limits, kModels).request.texts.size(), 1u);
  auto emb = [&](const json& j) { return parse_embeddings(j, limits, kModels); };
  EXPECT_EQ(error_of(emb, R"({})"), "input/missing_field");
  EXPECT_EQ(error_of(emb, R"({"input":[]})"), "input/invalid_value");
  EXPECT_EQ(error_of(emb, R"({"input":["a",""]})"), "input[1]/invalid_value");
  EXPECT_EQ(error_of(emb, R"({"input":["a",3]})"), "input[1]/invalid_type");
  EXPECT_EQ(error_of(emb, R"({"input":"a","encoding_format":"hex"})"), "encoding_format/invalid_value");
  EXPECT_EQ(error_of(emb, R"({"input":"a","model":"other"})"), "model/model_not_found");
  EXPECT_EQ(error_of(emb, R"({"input":"a","dimensions":8})"), "dimensions/unsupported");
  EXPECT_EQ(error_of(emb, "{\"input\":\"" + std::string(70000, 'x') + "\"}"), "input/prompt_too_long");
  std::string many = R"({"input":[)";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"t\"";
  EXPECT_EQ(error_of(emb, many + "]}"), "input/invalid_value");

  const ClassifyBody c = parse_classify(
      parse_body(R"({"input":["x","y"],"labels":["pos","neg"],"template":"T: {text} ->","deadline_ms":500})", limits),
      limits, kModels);
  ASSERT_EQ(c.requests.size(), 2u);
  EXPECT_EQ(c.requests[1].text, "y");
  EXPECT_EQ(c.requests[0].labels, (std::vector<std::string>{"pos", "neg"}));
  EXPECT_EQ(c.requests[0].prompt_template, "T: {text} ->");
  EXPECT_EQ(c.requests[0].deadline, std::chrono::milliseconds(500));
  auto cls = [&](const json& j) { return parse_classify(j, limits, kModels); };
  EXPECT_EQ(error_of(cls, R"({"input":"x"})"), "labels/missing_field");
  EXPECT_EQ(error_of(cls, R"({"input":"x","labels":[]})"), "labels/invalid_value");
  EXPECT_EQ(error_of(cls, R"({"input":"x","labels":["a",""]})"), "labels[1]/invalid_value");
  EXPECT_EQ(error_of(cls, R"({"input":"x","labels":["a","a"]})"), "labels[1]/invalid_value");
  EXPECT_EQ(error_of(cls, R"({"input":"x","labels":"a"})"), "labels/invalid_type");
  EXPECT_EQ(error_of(cls, R"({"input":"x","labels":["a"],"template":"no slot"})"), "template/invalid_value");
  EXPECT_EQ(error_of(cls, R"({"labels":["a"]})"), "input/missing_field");
  std::string labels = R"({"input":"x","labels":[)";
  for (int i = 0; i < 65; ++i) labels += std::string(i ? "," : "") + "\"l" + std::to_string(i) + "\"";
  EXPECT_EQ(error_of(cls, labels + "]}"), "labels/invalid_value");
}

TEST(ServerFormat, EmbeddingsAndClassifyShapes) {
  EmbedOutcome o;
  o.embeddings = {{0.6f, 0.8f}, {1.0f, 0.0f}};
  o.prompt_tokens = {3, 4};
  const json e = embeddings_json("tiny", o, false);
  EXPECT_EQ(e["object"], "list");
  EXPECT_EQ(e["data"][1]["object"], "embedding");
  EXPECT_EQ(e["data"][1]["index"], 1);
  EXPECT_FLOAT_EQ(e["data"][0]["embedding"][1].get<float>(), 0.8f);
  EXPECT_EQ(e["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(e["usage"]["total_tokens"], 7);
  // 1.0f = 00 00 80 3f little-endian; 0.0f = 00 00 00 00.
  EXPECT_EQ(embeddings_json("tiny", o, true)["data"][1]["embedding"], "AACAPwAAAAA=");
  EXPECT_EQ(base64_encode("ab", 2), "YWI=");

  ClassifyOutcome c;
  c.scores = {{.label = "pos", .logprob = -3.0, .probability = 0.1},
              {.label = "neg", .logprob = -1.0, .probability = 0.9}};
  c.prompt_tokens = 9;
  const json j = classify_json("tiny", {c});
  EXPECT_EQ(j["data"][0]["label"], "neg");
  EXPECT_EQ(j["data"][0]["scores"][0]["label"], "pos");
  EXPECT_DOUBLE_EQ(j["data"][0]["scores"][1]["probability"].get<double>(), 0.9);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 9);
}

TEST(ServerSecurity, BearerKeysAndLoopbackAddresses) {
  const std::vector<std::string> keys = {"k1", "secret-2"};
  EXPECT_TRUE(authorized("Bearer k1", keys));
  EXPECT_TRUE(authorized("bearer secret-2", keys));
  EXPECT_FALSE(authorized("Bearer k2", keys));
  EXPECT_FALSE(authorized("Bearer ", keys));
  EXPECT_FALSE(authorized("Basic k1", keys));
  EXPECT_FALSE(authorized("k1", keys));
  EXPECT_FALSE(authorized("", keys));
  EXPECT_TRUE(is_loopback("127.0.0.1"));
  EXPECT_TRUE(is_loopback("127.1.2.3"));
  EXPECT_TRUE(is_loopback("::1"));
  EXPECT_TRUE(is_loopback("[::1]"));
  EXPECT_TRUE(is_loopback("localhost"));
  EXPECT_FALSE(is_loopback("0.0.0.0"));
  EXPECT_FALSE(is_loopback("192.168.1.2"));
  EXPECT_FALSE(is_loopback("example.com"));
}

}  // namespace
}  // namespace lightboat::server
