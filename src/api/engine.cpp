// The public Engine: a thin facade over runtime::EngineLoop that converts the public request
// vocabulary (include/lightboat/engine.h) into engine jobs and back.
#include "lightboat/engine.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "base/error.h"
#include "runtime/engine.h"

namespace lightboat {
namespace {

runtime::Priority to_runtime(Priority p) {
  switch (p) {
    case Priority::kHigh: return runtime::Priority::kHigh;
    case Priority::kNormal: return runtime::Priority::kNormal;
    case Priority::kLow: return runtime::Priority::kLow;
  }
  return runtime::Priority::kNormal;
}

FinishReason to_public(runtime::JobEnd end) {
  switch (end) {
    case runtime::JobEnd::kStop: return FinishReason::kStop;
    case runtime::JobEnd::kLength: return FinishReason::kLength;
    case runtime::JobEnd::kCancelled: return FinishReason::kCancelled;
    case runtime::JobEnd::kDeadlineExceeded: return FinishReason::kDeadlineExceeded;
    case runtime::JobEnd::kError: return FinishReason::kError;
  }
  return FinishReason::kError;
}

sampling::SamplingParams to_runtime(const SamplingOptions& o) {
  sampling::SamplingParams p;
  p.temperature = o.temperature;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  p.frequency_penalty = o.frequency_penalty;
  p.presence_penalty = o.presence_penalty;
  p.penalty_last_n = o.penalty_last_n;
  p.seed = o.seed.value_or(sampling::kRandomSeed);
  return p;
}

class EngineImpl final : public Engine {
 public:
  explicit EngineImpl(const EngineOptions& o) : loop_(config(o)) {}

  SubmitResult submit(GenerateRequest request, std::shared_ptr<TokenSink> sink) override {
    SubmitResult out;
    runtime::Job job;
    try {
      check(sink != nullptr, ErrorKind::kInvalidArgument, "no sink");
      check(request.prompt.empty() != request.messages.empty(), ErrorKind::kInvalidArgument,
            "give either a prompt or messages");
      check(request.max_tokens != 0, ErrorKind::kInvalidArgument, "max_tokens must not be 0");
      std::string prompt = std::move(request.prompt);
      if (!request.messages.empty()) {
        std::vector<tokenizer::ChatMessage> messages;
        for (auto& m : request.messages) messages.push_back({std::move(m.role), std::move(m.content)});
        prompt = loop_.format_chat(messages).text;
      }
      job.prompt = loop_.tokenize(prompt);
      job.sampling = to_runtime(request.sampling);
      job.max_tokens = request.max_tokens < 0 || request.max_tokens > INT32_MAX
                           ? INT32_MAX
                           : static_cast<int32_t>(request.max_tokens);
      job.stop = std::move(request.stop);
      job.priority = to_runtime(request.priority);
      if (request.deadline) job.deadline = *request.deadline;
      job.on_text = [sink](std::string_view text, int32_t token) { sink->on_text(std::string(text), token); };
      job.on_done = [sink](const runtime::JobResult& r) {
        Completion c;
        c.finish_reason = to_public(r.end);
        c.text = r.text;
        c.prompt_tokens = r.prompt_tokens;
        c.cached_prompt_tokens = r.cached_prompt_tokens;
        c.completion_tokens = r.completion_tokens;
        c.queue_ms = r.queue_ms;
        c.ttft_ms = r.ttft_ms;
        c.total_ms = r.total_ms;
        c.error = r.error;
        c.prompt_token_ids = r.prompt_ids;
        c.token_ids = r.generated;
        sink->on_done(c);
      };
      const runtime::JobSubmit s = loop_.submit(std::move(job));
      out.id = s.id;
      switch (s.status) {
        case runtime::SubmitStatus::kAccepted: out.status = SubmitStatus::kAccepted; break;
        case runtime::SubmitStatus::kOverloaded:
          out.status = SubmitStatus::kOverloaded;
          out.retry_after = std::chrono::duration_cast<std::chrono::milliseconds>(s.retry_after);
          out.message = "the queue of this priority class is full";
          break;
        case runtime::SubmitStatus::kDeadlineUnmeetable:
          out.status = SubmitStatus::kDeadlineUnmeetable;
          out.message = "the deadline cannot be met at the measured prefill and decode rates";
          break;
        case runtime::SubmitStatus::kTooLarge:
          out.status = SubmitStatus::kInvalid;
          out.message = "prompt plus max_tokens needs more KV cache than the whole pool holds";
          break;
      }
    } catch (const Error& e) {
      out.status = SubmitStatus::kInvalid;
      out.message = e.what();
    }
    return out;
  }

  bool cancel(RequestId id) override { return loop_.cancel(id); }
  bool reprioritize(RequestId id, Priority priority) override { return loop_.reprioritize(id, to_runtime(priority)); }

  std::vector<LabelScore> classify(const ClassifyRequest& request) override {
    check(!request.labels.empty() && request.labels.size() <= 256, ErrorKind::kInvalidArgument,
          "classify: give 1 to 256 labels");
    std::string prompt = request.prompt_template.empty() ? "{text}\nLabel: " : request.prompt_template;
    const size_t at = prompt.find("{text}");
    check(at != std::string::npos, ErrorKind::kInvalidArgument, "classify: the template has no {text}");
    prompt.replace(at, 6, request.text);
    const std::vector<int32_t> prompt_ids = loop_.tokenize(prompt);

    // One scoring job per label: the prompt's tokens, then the label's. Where the tokenizer
    // merges across the boundary, scoring starts at the first token that differs.
    std::vector<runtime::Job> jobs;
    for (const std::string& label : request.labels) {
      check(!label.empty(), ErrorKind::kInvalidArgument, "classify: a label is empty");
      runtime::Job job;
      job.prompt = loop_.tokenize(prompt + label);
      size_t common = 0;
      while (common < prompt_ids.size() && common < job.prompt.size() && prompt_ids[common] == job.prompt[common]) {
        ++common;
      }
      check(common < job.prompt.size() && common >= 1, ErrorKind::kInvalidArgument,
            "classify: label '" + label + "' adds no token to the prompt");
      job.score_from = static_cast<int32_t>(common);
      job.priority = to_runtime(request.priority);
      job.sampling.temperature = 0.0f;
      jobs.push_back(std::move(job));
    }
    // The longest shared start is computed once, first; the labels then reuse its KV pages.
    runtime::Job warm = jobs.front();
    warm.prompt.resize(static_cast<size_t>(*std::min_element(
        jobs.begin(), jobs.end(), [](const auto& a, const auto& b) { return *a.score_from < *b.score_from; })->score_from));
    warm.score_from = static_cast<int32_t>(warm.prompt.size());
    run_jobs({std::move(warm)});
    const std::vector<runtime::JobResult> results = run_jobs(std::move(jobs));

    std::vector<LabelScore> scores;
    double max = -1e300;
    for (size_t i = 0; i < results.size(); ++i) {
      scores.push_back({.label = request.labels[i], .logprob = results[i].score_logprob});
      max = std::max(max, results[i].score_logprob);
    }
    double sum = 0;
    for (const LabelScore& s : scores) sum += std::exp(s.logprob - max);
    for (LabelScore& s : scores) s.probability = std::exp(s.logprob - max) / sum;
    return scores;
  }

  EngineStats stats() const override {
    const runtime::EngineCounters c = loop_.counters();
    EngineStats s;
    for (int i = 0; i < runtime::kNumPriorities; ++i) {
      s.requests_queued += c.scheduler.queued[static_cast<size_t>(i)];
      s.requests_running += c.scheduler.running[static_cast<size_t>(i)];
    }
    s.requests_completed = c.completed;
    s.requests_refused = c.scheduler.refused_overloaded + c.scheduler.refused_deadline + c.scheduler.refused_too_large;
    s.kv_pages_total = c.kv.n_pages;
    s.kv_pages_free = c.kv.free + c.kv.cached;
    s.prefix_cache_hit_tokens = c.kv.prefix_hit_tokens;
    s.prompt_tokens = c.prompt_tokens;
    s.generated_tokens = c.generated_tokens;
    s.prefill_tokens_per_s = c.scheduler.prefill_tokens_per_s;
    s.decode_tokens_per_s = c.scheduler.decode_interval_s > 0 ? 1.0 / c.scheduler.decode_interval_s : 0.0;
    s.steps = c.steps;
    s.weight_bytes = loop_.weight_bytes();
    const auto& m = loop_.model();
    s.kv_cache_bytes = m.kv_pages() * m.kv_page_size() * m.kv_bytes_per_token();
    return s;
  }

  std::string model_name() const override { return loop_.model_name(); }
  int64_t n_ctx() const override { return loop_.model().n_ctx(); }
  std::string quantization() const override { return loop_.quantization(); }

 private:
  // Submits the jobs, waits for all, and throws if any was refused or did not complete.
  std::vector<runtime::JobResult> run_jobs(std::vector<runtime::Job> jobs) {
    struct Shared {
      std::mutex mutex;
      std::condition_variable cv;
      std::vector<std::optional<runtime::JobResult>> results;
      size_t done = 0;
    };
    auto shared = std::make_shared<Shared>();
    shared->results.resize(jobs.size());
    std::vector<runtime::RequestId> ids;
    for (size_t i = 0; i < jobs.size(); ++i) {
      jobs[i].on_done = [shared, i](const runtime::JobResult& r) {
        std::lock_guard<std::mutex> lock(shared->mutex);
        shared->results[i] = r;
        ++shared->done;
        shared->cv.notify_all();
      };
      const runtime::JobSubmit s = loop_.submit(std::move(jobs[i]));
      if (s.status != runtime::SubmitStatus::kAccepted) {
        for (runtime::RequestId id : ids) loop_.cancel(id);
        std::unique_lock<std::mutex> lock(shared->mutex);
        shared->cv.wait(lock, [&] { return shared->done == ids.size(); });
        throw Error(ErrorKind::kInvalidArgument,
                    std::string("classify: the engine refused a label (") + runtime::submit_status_name(s.status) + ")");
      }
      ids.push_back(s.id);
    }
    std::unique_lock<std::mutex> lock(shared->mutex);
    shared->cv.wait(lock, [&] { return shared->done == ids.size(); });
    std::vector<runtime::JobResult> out;
    for (auto& r : shared->results) {
      check(r->end == runtime::JobEnd::kStop, ErrorKind::kInternal,
            std::string("classify: a label ended with ") + runtime::job_end_name(r->end) + " " + r->error);
      out.push_back(std::move(*r));
    }
    return out;
  }

  static runtime::EngineConfig config(const EngineOptions& o) {
    check(o.max_running >= 1 && o.step_tokens > o.max_running, ErrorKind::kInvalidArgument,
          "step_tokens must exceed max_running (>= 1)");
    check(o.max_queue >= 1 && o.max_queue <= (1 << 20), ErrorKind::kInvalidArgument, "max_queue is out of range");
    runtime::EngineConfig c{.model_path = o.model_path,
                            .load_mode = o.use_mmap ? LoadMode::kMmap : LoadMode::kRead,
                            .threads = o.threads,
                            .n_ctx = o.n_ctx,
                            .kv_cache_bytes = o.kv_cache_bytes,
                            .kv_sequences = o.kv_sequences,
                            .kv_page_size = o.kv_page_size};
    c.scheduler.class_weights = {o.weight_high, o.weight_normal, o.weight_low};
    c.scheduler.max_step_tokens = static_cast<int32_t>(o.step_tokens);
    c.scheduler.max_running = static_cast<int32_t>(o.max_running);
    const auto q = static_cast<int32_t>(o.max_queue);
    c.scheduler.max_queued = {q, q, q};
    return c;
  }

  runtime::EngineLoop loop_;
};

}  // namespace

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kHigh: return "high";
    case Priority::kNormal: return "normal";
    case Priority::kLow: return "low";
  }
  return "normal";
}

std::optional<Priority> parse_priority(const std::string& text) {
  if (text == "high") return Priority::kHigh;
  if (text == "normal") return Priority::kNormal;
  if (text == "low") return Priority::kLow;
  return std::nullopt;
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadlineExceeded: return "deadline_exceeded";
    case FinishReason::kError: return "error";
  }
  return "error";
}

std::unique_ptr<Engine> Engine::open(const EngineOptions& options) { return std::make_unique<EngineImpl>(options); }

}  // namespace lightboat
