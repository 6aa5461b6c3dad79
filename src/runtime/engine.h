// The engine loop of one model instance: owns the model, its tokenizer and chat template, the
// KV page pool and the scheduler, and runs them on one thread. Other threads submit jobs,
// cancel them and read statistics through a mutex; the mutex is never held during a forward
// pass, and sinks are called outside it.
//
// One step: plan (scheduler) → one forward pass over every planned item (model) → commit the
// K/V written, sample where the plan says so, stream text, finish what stopped.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/file_bytes.h"
#include "base/thread_pool.h"
#include "model/model.h"
#include "runtime/clock.h"
#include "runtime/kv_pages.h"
#include "runtime/kv_port.h"
#include "runtime/scheduler.h"
#include "sampling/logprobs.h"
#include "sampling/params.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::runtime {

struct EngineConfig {
  std::string model_path;
  LoadMode load_mode = LoadMode::kMmap;
  int threads = 0;             // 0 = hardware threads
  int64_t n_ctx = 0;           // per sequence; 0 = the model's, capped at 4096
  int64_t kv_cache_bytes = 0;  // 0 = room for kv_sequences sequences of n_ctx
  int64_t kv_sequences = 4;
  int64_t kv_page_size = 16;  // tokens
  bool kv_f16 = false;        // KV cache elements fp16 instead of fp32
  SchedulerConfig scheduler;
};

enum class JobEnd { kStop, kLength, kCancelled, kDeadlineExceeded, kError };
const char* job_end_name(JobEnd end);

// A generated token's log-probability and its most likely alternatives, from the step's raw
// logits (log-softmax before penalties, filters and temperature, as OpenAI reports them).
struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0;                        // natural log
  std::vector<sampling::TokenLogprob> top;  // Job::top_logprobs entries, most likely first
};

struct JobResult {
  JobEnd end = JobEnd::kStop;
  std::string text;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // reused from the prefix cache at (first) admission
  int64_t completion_tokens = 0;
  double queue_ms = 0, ttft_ms = 0, total_ms = 0;
  std::string error;
  std::vector<int32_t> prompt_ids;      // the job's prompt
  std::vector<int32_t> generated;       // sampled ids, an EOG token that ended it included
  double score_logprob = 0;             // scoring jobs: sum of log p(token) over the scored tokens
  std::vector<float> embedding;         // embedding jobs: [n_embd] mean of the prompt's final hidden states
  std::vector<TokenLogprobs> logprobs;  // with Job::top_logprobs: one per generated non-EOG token
};

struct Job {
  std::vector<int32_t> prompt;  // token ids (see EngineLoop::tokenize)
  sampling::SamplingParams sampling;
  int32_t max_tokens = 256;  // >= 1; clamped to what the context holds
  std::vector<std::string> stop;
  Priority priority = Priority::kNormal;
  std::optional<Duration> deadline;  // from submission
  // A scoring job (label likelihood) instead of generation: the prompt is evaluated, and the
  // log-probabilities of prompt tokens [score_from, size) given what precedes them are summed
  // into JobResult::score_logprob; nothing is sampled. score_from >= 1; == size scores nothing.
  std::optional<int32_t> score_from;
  // An embedding job: the prompt is evaluated (no prefix-cache reuse: every position is
  // computed) and the mean of its tokens' final hidden states (after the output norm) is
  // JobResult::embedding; nothing is sampled. Exclusive with score_from.
  bool embed = false;
  // Generation: report each token's logprob and this many alternatives (0 .. 20); none when absent.
  std::optional<int32_t> top_logprobs;
  std::function<void(std::string_view text, int32_t token)> on_text;  // engine thread
  // With top_logprobs: each generated non-EOG token, before the on_text that carries its text.
  std::function<void(const TokenLogprobs&)> on_logprob;
  std::function<void(const JobResult&)> on_done;  // engine thread, once, last
};

struct JobSubmit {
  SubmitStatus status = SubmitStatus::kAccepted;
  RequestId id = 0;
  Duration retry_after{};
};

struct EngineCounters {
  SchedulerStats scheduler;
  KvStats kv;
  int64_t completed = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t steps = 0;
  // Rows of n_vocab logits the step buffers hold (sampling rows + one scoring chunk): bounded by
  // max_running + kScoreChunkRows whatever the prompts scored.
  int64_t logits_buffer_rows = 0;
};

class EngineLoop {
 public:
  // Loads the model and starts the loop thread. Throws lightboat::Error naming the problem.
  explicit EngineLoop(const EngineConfig& config);
  ~EngineLoop();  // cancels what is left (sinks see kCancelled) and joins the thread
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Scoring positions whose logits are computed at once after a step (the rest wait for the
  // next chunk): bounds the scoring logits buffer to [kScoreChunkRows, n_vocab].
  static constexpr int32_t kScoreChunkRows = 8;

  // Text to ids (BOS as the model says, special tokens parsed). Thread-safe.
  std::vector<int32_t> tokenize(std::string_view text) const;
  // The text of one token (raw bytes: a byte-fallback token may be part of a UTF-8 sequence).
  std::string token_piece(int32_t token) const;
  // A conversation to a prompt with the model's chat template; warning set when it fell back.
  tokenizer::ChatPrompt format_chat(std::span<const tokenizer::ChatMessage> messages) const;

  // Thread-safe. Throws Error(kInvalidArgument) for a malformed job (empty prompt, prompt that
  // fills the context, bad sampling parameters).
  JobSubmit submit(Job job);
  bool cancel(RequestId id);
  // Moves a queued or running request to another priority class (Scheduler::reprioritize).
  bool reprioritize(RequestId id, Priority priority);
  EngineCounters counters() const;

  const model::Model& model() const { return *model_; }
  const std::string& model_name() const { return model_name_; }
  // The ggml type holding most of the matrices' bytes ("Q8_0", "Q4_K" ...), for metrics labels.
  const std::string& quantization() const { return quantization_; }
  int64_t weight_bytes() const { return weight_bytes_; }  // all tensors of the file, bytes

 private:
  struct Live;
  struct Event;

  void run();
  void step(std::unique_lock<std::mutex>& lock);
  void finish(Live& live, JobEnd end, std::vector<Event>& events, const std::string& error = {});
  // Samples the logit rows of rows_ into sampled_, in parallel over the pool (each row's
  // sampler belongs to its request). Runs unlocked, like consume_hidden.
  void sample_rows();
  // Takes the token sampled for `live` (logits: its row, for logprobs): text, stop, end.
  void sample_row(Live& live, const float* logits, int32_t token, std::vector<Event>& events);
  // After the forward pass: scores of the scoring rows (output head over their hidden states,
  // kScoreChunkRows at a time) and the embedding jobs' sums. Runs unlocked; only the engine
  // thread touches these Live fields.
  void consume_hidden();
  // Calls the sinks of `events` with the mutex released.
  void dispatch(std::unique_lock<std::mutex>& lock, std::vector<Event>& events);

  EngineConfig config_;
  std::string model_name_;
  std::string quantization_;
  int64_t weight_bytes_ = 0;
  std::shared_ptr<const gguf::Reader> reader_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<tokenizer::ChatTemplate> chat_;
  ThreadPool pool_;
  SteadyClock clock_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  bool stop_ = false;
  std::unique_ptr<KvPages> kv_;
  std::unique_ptr<KvPagesPort> port_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unordered_map<RequestId, std::shared_ptr<Live>> live_;
  RequestId next_id_ = 1;
  EngineCounters counters_;

  // Step buffers, reused (no allocation in the steady state once they reached their size).
  std::vector<int32_t> tokens_, positions_, seq_, rows_;
  std::vector<std::vector<int32_t>> tables_;
  std::vector<std::span<const int32_t>> table_spans_;
  std::vector<Live*> row_owner_;  // per logit row: its request
  std::vector<int32_t> sampled_;  // per logit row: the token sampled from it
  std::vector<float> logits_;     // [rows, n_vocab] of the sampled rows: one per running sequence
  // Hidden rows: scoring positions (target >= 0: the token scored, index: its position) and
  // embedding rows (target -1), in batch order.
  std::vector<int32_t> hidden_rows_;
  std::vector<Live*> hidden_owner_;
  std::vector<int32_t> hidden_target_;
  std::vector<int32_t> hidden_index_;
  std::vector<float> hidden_;        // [max_step_tokens, n_embd] final hidden states of hidden_rows_
  std::vector<float> score_logits_;  // [kScoreChunkRows, n_vocab]
  // Engine thread only, like the step buffers above: the plan's items with their requests, and
  // the step's sink calls (dispatch calls them with the mutex released, then empties it).
  std::vector<std::pair<Live*, PlanItem>> items_;
  std::vector<Event> events_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace lightboat::runtime
