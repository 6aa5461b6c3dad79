// Lightboat's public engine API: open a model instance, submit generation requests from any
// thread, receive their tokens as they are produced, cancel or re-prioritise them, and read
// statistics. This header is all a server, a CLI or an embedding application needs; it exposes
// no model, kernel or tokenizer types.
//
// Threading: an Engine runs one engine loop thread per instance. Every method is thread-safe and
// never runs model code on the caller's thread (embed() and classify() block the caller until
// their result is ready; submit_embed() and submit_classify() do not). Sinks are called on
// the engine loop thread, so they must be quick (append to a buffer, write to a socket queue)
// and must not call back into the Engine synchronously except cancel().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lightboat {

// Scheduling class: high (real-time, e.g. a voice command), normal (chat), low (batch jobs).
enum class Priority { kHigh, kNormal, kLow };

const char* priority_name(Priority p);
// "high" | "normal" | "low"; nullopt for anything else.
std::optional<Priority> parse_priority(const std::string& text);

// How an instance is opened: process-level choices, resolved once.
struct EngineOptions {
  std::string model_path;      // GGUF file
  bool use_mmap = true;        // false: read the file into memory
  bool huge_pages = true;      // mapped files: move the weights onto huge pages (LoadMode::kMmapHuge)
  int threads = 0;             // compute threads; 0 = one per hardware thread
  int64_t n_ctx = 0;           // max tokens per sequence; 0 = the model's, capped at 4096
  int64_t kv_cache_bytes = 0;  // KV pool size in bytes; 0 = room for kv_sequences full sequences
  int64_t kv_sequences = 4;    // with kv_cache_bytes == 0: full-length sequences the pool holds
  int64_t kv_page_size = 16;   // tokens per KV page
  // KV cache elements: false = fp32 (the default: llama.cpp's reference outputs are made with
  // it), true = fp16, half the memory and the attention's bandwidth, logits within about 1%.
  bool kv_f16 = false;
  int64_t step_tokens = 256;   // token budget of one engine step (decode + prefill chunk)
  int64_t max_running = 16;    // sequences decoded together (continuous batching)
  int64_t max_queue = 256;     // queued requests per class before submit() answers kOverloaded
  // Admission weights of the high, normal and low classes (weighted round-robin).
  int weight_high = 8, weight_normal = 4, weight_low = 1;
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct SamplingOptions {
  float temperature = 0.8f;  // 0 = greedy
  int32_t top_k = 40;        // 0 = off
  float top_p = 0.95f;       // 1 = off
  float min_p = 0.05f;       // 0 = off
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;
  std::optional<uint64_t> seed;  // absent = random
};

struct GenerateRequest {
  std::string prompt;                 // raw text (BOS added as the model says; special tokens parsed)
  std::vector<ChatMessage> messages;  // or a conversation, formatted with the model's chat template
  SamplingOptions sampling;
  int64_t max_tokens = 256;       // generated tokens at most; < 0 = until EOG or the context is full
  std::vector<std::string> stop;  // stop strings (not included in the output)
  Priority priority = Priority::kNormal;
  std::optional<std::chrono::milliseconds> deadline;  // time budget from submission
  // -1: no logprobs. 0 .. 20: each generated token's log-probability and this many most likely
  // alternatives, from the model's raw distribution (before penalties, filters, temperature).
  int32_t top_logprobs = -1;
};

struct TokenAlternative {
  std::string token;  // the token's text as raw bytes (may be part of a UTF-8 sequence)
  int32_t id = 0;
  double logprob = 0;  // natural log
};

struct TokenLogprob {
  std::string token;  // raw bytes, as TokenAlternative::token
  int32_t id = 0;
  double logprob = 0;
  std::vector<TokenAlternative> top;  // GenerateRequest::top_logprobs entries, most likely first
};

enum class FinishReason {
  kStop,              // end-of-generation token or a stop string
  kLength,            // max_tokens reached or the context is full
  kCancelled,         // cancel() was called
  kDeadlineExceeded,  // the deadline passed mid-generation
  kError,             // the engine failed (message in Completion::error)
};

const char* finish_reason_name(FinishReason r);

struct Completion {
  FinishReason finish_reason = FinishReason::kStop;
  std::string text;  // the whole generated text
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens reused from the prefix cache
  int64_t completion_tokens = 0;
  double queue_ms = 0;                    // submission to admission
  double ttft_ms = 0;                     // submission to first token
  double total_ms = 0;                    // submission to completion
  std::string error;                      // set when finish_reason == kError
  std::vector<int32_t> prompt_token_ids;  // the prompt as evaluated (BOS included)
  std::vector<int32_t> token_ids;         // generated ids, an end-of-generation token included
  std::vector<TokenLogprob> logprobs;     // with top_logprobs >= 0: one per generated non-EOG token
};

// Receives one request's output on the engine thread.
class TokenSink {
 public:
  virtual ~TokenSink() = default;
  // A piece of generated text, valid UTF-8, clear of stop strings; token is the id that ended it.
  virtual void on_text(const std::string& text, int32_t token) = 0;
  // With top_logprobs >= 0: each generated token (EOG excluded), before the on_text that carries
  // its text (a stop string may hold text back, so one on_text can follow several of these).
  virtual void on_logprob(const TokenLogprob&) {}
  // Exactly once, last.
  virtual void on_done(const Completion& completion) = 0;
};

using RequestId = uint64_t;

enum class SubmitStatus {
  kAccepted,
  kOverloaded,          // queue full: retry after retry_after
  kDeadlineUnmeetable,  // the deadline cannot be met at the measured rates
  kInvalid,             // bad request (message says why)
};

struct SubmitResult {
  SubmitStatus status = SubmitStatus::kAccepted;
  RequestId id = 0;                          // valid when accepted
  std::chrono::milliseconds retry_after{0};  // with kOverloaded
  std::string message;                       // with every refusal
};

struct ClassifyRequest {
  std::string text;
  std::vector<std::string> labels;  // 1 .. 256 non-empty labels
  // The prompt around the text; "{text}" is replaced by it. Each label is scored as the
  // continuation of this prompt. Empty: "{text}\nLabel: ".
  std::string prompt_template;
  Priority priority = Priority::kNormal;
  std::optional<std::chrono::milliseconds> deadline;  // time budget from submission
};

struct LabelScore {
  std::string label;
  double logprob = 0;      // sum of the label tokens' log-probabilities after the prompt
  double probability = 0;  // softmax of logprob over the labels
};

// How a classification ended: finish_reason kStop with scores (in the labels' order), or the
// reason it did not (cancelled, deadline exceeded, error with a message).
struct ClassifyOutcome {
  FinishReason finish_reason = FinishReason::kStop;
  std::string error;
  std::vector<LabelScore> scores;
  int64_t prompt_tokens = 0;  // tokens evaluated: the prompt once, then each label's job
};

struct EmbedRequest {
  std::vector<std::string> texts;  // 1 .. 256 non-empty texts, each embedded on its own
  Priority priority = Priority::kNormal;
  std::optional<std::chrono::milliseconds> deadline;  // time budget from submission
};

// Per text: the mean over its tokens (BOS included) of the final hidden states (after the output
// norm), L2-normalised, [n_embd] fp32.
struct EmbedOutcome {
  FinishReason finish_reason = FinishReason::kStop;
  std::string error;
  std::vector<std::vector<float>> embeddings;
  std::vector<int64_t> prompt_tokens;  // per text
};

struct EngineStats {
  int64_t requests_queued = 0;
  int64_t requests_running = 0;
  int64_t requests_completed = 0;
  int64_t requests_refused = 0;
  int64_t kv_pages_total = 0;
  int64_t kv_pages_free = 0;  // free or holding only reusable cached prefixes
  int64_t prefix_cache_hit_tokens = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_tokens_per_s = 0;  // moving averages measured by the engine
  double decode_tokens_per_s = 0;
  int64_t steps = 0;
  int64_t weight_bytes = 0;    // the model file's tensors (mapped or read into memory)
  int64_t kv_cache_bytes = 0;  // the KV page pool, allocated at open
};

class Engine {
 public:
  // Loads the model and starts the engine loop. Throws lightboat::Error naming the problem.
  static std::unique_ptr<Engine> open(const EngineOptions& options);
  virtual ~Engine() = default;

  // Queues a request; its sink receives the text, then on_done. Refusals are statuses (normal
  // under load); a malformed request is kInvalid with a message. The sink must outlive the
  // request (until on_done).
  virtual SubmitResult submit(GenerateRequest request, std::shared_ptr<TokenSink> sink) = 0;
  // True when the request was still queued or running; it ends with kCancelled at the next step.
  virtual bool cancel(RequestId id) = 0;
  // Moves a request to another priority class; true when it was still queued or running. A
  // queued request joins the new class in its original arrival order; a running one keeps its
  // place in the batch and is ranked by the new class when pages are short (preemption).
  virtual bool reprioritize(RequestId id, Priority priority) = 0;
  // Label likelihood: scores each label as the continuation of the prompt. The prompt is
  // computed once (its KV pages are then shared through the prefix cache) and the labels are
  // scored together in the same engine steps, alongside other requests. Blocks the caller until
  // done; throws lightboat::Error for bad input or a refusal.
  virtual std::vector<LabelScore> classify(const ClassifyRequest& request) = 0;
  // The same without blocking: `done` is called once, on the engine thread, when accepted. The id
  // names the whole classification for cancel() and reprioritize(). Refusals as submit().
  virtual SubmitResult submit_classify(const ClassifyRequest& request, std::function<void(ClassifyOutcome)> done) = 0;
  // Embeddings of several texts, scored together in the same engine steps (prefill only, nothing
  // sampled). Blocks; throws lightboat::Error for bad input, a refusal or a failure.
  virtual std::vector<std::vector<float>> embed(const EmbedRequest& request) = 0;
  // The same without blocking, as submit_classify().
  virtual SubmitResult submit_embed(const EmbedRequest& request, std::function<void(EmbedOutcome)> done) = 0;
  virtual EngineStats stats() const = 0;

  // Model facts for clients (name for /v1/models, context size).
  virtual std::string model_name() const = 0;
  virtual int64_t n_ctx() const = 0;
  // The ggml type holding most of the weights ("Q8_0", "Q4_K", "F16" ...).
  virtual std::string quantization() const = 0;
};

}  // namespace lightboat
