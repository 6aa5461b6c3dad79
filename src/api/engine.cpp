// The public Engine: a thin facade over runtime::EngineLoop that converts the public request
// vocabulary (include/lightboat/engine.h) into engine jobs and back.
#include "lightboat/engine.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "base/error.h"
#include "runtime/engine.h"

namespace lightboat {
namespace {

runtime::Priority to_runtime(Priority p) {
  switch (p) {
    case Priority::kHigh:
      return runtime::Priority::kHigh;
    case Priority::kNormal:
      return runtime::Priority::kNormal;
    case Priority::kLow:
      return runtime::Priority::kLow;
  }
  return runtime::Priority::kNormal;
}

FinishReason to_public(runtime::JobEnd end) {
  switch (end) {
    case runtime::JobEnd::kStop:
      return FinishReason::kStop;
    case runtime::JobEnd::kLength:
      return FinishReason::kLength;
    case runtime::JobEnd::kCancelled:
      return FinishReason::kCancelled;
    case runtime::JobEnd::kDeadlineExceeded:
      return FinishReason::kDeadlineExceeded;
    case runtime::JobEnd::kError:
      return FinishReason::kError;
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

SubmitResult to_public(const runtime::JobSubmit& s) {
  SubmitResult out;
  out.id = s.id;
  switch (s.status) {
    case runtime::SubmitStatus::kAccepted:
      out.status = SubmitStatus::kAccepted;
      break;
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
  return out;
}

// Several engine jobs that answer one call (the texts of an embedding request, the labels of a
// classification). Its id, drawn apart from the engine's job ids, names them all for cancel()
// and reprioritize().
struct JobGroup {
  std::mutex mutex;
  std::vector<runtime::RequestId> ids;  // the jobs of the current phase
  bool cancelled = false;
  std::optional<Priority> priority;  // set by reprioritize(): applies to later phases too
  size_t phases = 0;                 // phases started (a finished phase that started none ends the group)
};

// Every group id has this bit set; the engine's ids count up from 1 and never reach it.
constexpr RequestId kGroupBit = RequestId{1} << 63;

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
      // The piece goes out in one std::string per request, reused: no allocation per token once it
      // has held the longest piece (the engine calls this std::function itself, not a copy).
      job.on_text = [sink, piece = std::string()](std::string_view text, int32_t token) mutable {
        piece.assign(text);
        sink->on_text(piece, token);
      };
      if (request.top_logprobs >= 0) {
        job.top_logprobs = request.top_logprobs;
        job.on_logprob = [this, sink](const runtime::TokenLogprobs& lp) { sink->on_logprob(logprob_public(lp)); };
      }
      job.on_done = [this, sink](const runtime::JobResult& r) {
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
        for (const runtime::TokenLogprobs& lp : r.logprobs) c.logprobs.push_back(logprob_public(lp));
        sink->on_done(c);
      };
      out = to_public(loop_.submit(std::move(job)));
    } catch (const Error& e) {
      out.status = SubmitStatus::kInvalid;
      out.message = e.what();
    }
    return out;
  }

  bool cancel(RequestId id) override {
    if ((id & kGroupBit) == 0) return loop_.cancel(id);
    const std::shared_ptr<JobGroup> g = group(id);
    if (!g) return false;
    std::lock_guard<std::mutex> lock(g->mutex);
    g->cancelled = true;
    for (runtime::RequestId j : g->ids) loop_.cancel(j);
    return true;
  }

  bool reprioritize(RequestId id, Priority priority) override {
    if ((id & kGroupBit) == 0) return loop_.reprioritize(id, to_runtime(priority));
    const std::shared_ptr<JobGroup> g = group(id);
    if (!g) return false;
    std::lock_guard<std::mutex> lock(g->mutex);
    g->priority = priority;
    for (runtime::RequestId j : g->ids) loop_.reprioritize(j, to_runtime(priority));
    return true;
  }

  std::vector<LabelScore> classify(const ClassifyRequest& request) override {
    return wait_for<ClassifyOutcome>("classify", [&](auto done) { return submit_classify(request, done); }).scores;
  }

  SubmitResult submit_classify(const ClassifyRequest& request, std::function<void(ClassifyOutcome)> done) override {
    std::vector<runtime::Job> jobs;
    try {
      jobs = label_jobs(request);
    } catch (const Error& e) {
      return {.status = SubmitStatus::kInvalid, .message = e.what()};
    }
    // The longest shared start is computed first, alone; the labels then reuse its KV pages
    // through the prefix cache, all scored together in the same steps.
    runtime::Job warm = jobs.front();
    warm.prompt.resize(
        static_cast<size_t>(*std::min_element(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) {
                               return *a.score_from < *b.score_from;
                             })->score_from));
    warm.score_from = static_cast<int32_t>(warm.prompt.size());
    const auto started = std::chrono::steady_clock::now();
    const std::optional<std::chrono::milliseconds> deadline = request.deadline;
    auto labels = std::make_shared<std::vector<std::string>>(request.labels);
    auto label_jobs_left = std::make_shared<std::vector<runtime::Job>>(std::move(jobs));
    const RequestId gid = new_group();
    std::vector<runtime::Job> first;
    first.push_back(std::move(warm));
    auto on_warm = [this, gid, started, deadline, labels, label_jobs_left, done](std::vector<runtime::JobResult> w) {
      ClassifyOutcome out;
      if (!failed(w, out.finish_reason, out.error)) {
        // Phase two from the engine thread (outside its lock): the deadline budget left.
        if (deadline) {
          const auto left = *deadline - std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - started);
          for (runtime::Job& j : *label_jobs_left) j.deadline = std::max(left, std::chrono::milliseconds(1));
        }
        const int64_t warm_tokens = w.front().prompt_tokens;
        const SubmitResult r = start_phase(gid, std::move(*label_jobs_left),
                                           [this, gid, labels, warm_tokens, done](std::vector<runtime::JobResult> res) {
                                             ClassifyOutcome o;
                                             o.prompt_tokens = warm_tokens;
                                             if (!failed(res, o.finish_reason, o.error))
                                               o.scores = softmax(*labels, res);
                                             for (const auto& jr : res) o.prompt_tokens += jr.prompt_tokens;
                                             drop_group(gid);  // before the outcome: its id is done
                                             done(std::move(o));
                                           });
        if (r.status == SubmitStatus::kAccepted) return;
        out.finish_reason = FinishReason::kError;
        out.error = "classify: the engine refused the labels: " + r.message;
      }
      drop_group(gid);  // before the outcome: once the caller has it, cancel(id) must say false
      done(std::move(out));
    };
    SubmitResult r = start_phase(gid, std::move(first), std::move(on_warm));
    if (r.status == SubmitStatus::kAccepted) r.id = gid;
    return r;
  }

  std::vector<std::vector<float>> embed(const EmbedRequest& request) override {
    return wait_for<EmbedOutcome>("embed", [&](auto done) { return submit_embed(request, done); }).embeddings;
  }

  SubmitResult submit_embed(const EmbedRequest& request, std::function<void(EmbedOutcome)> done) override {
    std::vector<runtime::Job> jobs;
    try {
      check(!request.texts.empty() && request.texts.size() <= 256, ErrorKind::kInvalidArgument,
            "embed: give 1 to 256 texts");
      for (const std::string& text : request.texts) {
        check(!text.empty(), ErrorKind::kInvalidArgument, "embed: a text is empty");
        runtime::Job job;
        job.prompt = loop_.tokenize(text);
        job.embed = true;
        job.priority = to_runtime(request.priority);
        if (request.deadline) job.deadline = *request.deadline;
        jobs.push_back(std::move(job));
      }
    } catch (const Error& e) {
      return {.status = SubmitStatus::kInvalid, .message = e.what()};
    }
    const RequestId gid = new_group();
    SubmitResult r = start_phase(gid, std::move(jobs), [this, gid, done](std::vector<runtime::JobResult> res) {
      EmbedOutcome out;
      if (!failed(res, out.finish_reason, out.error)) {
        for (runtime::JobResult& jr : res) {
          double norm = 0;
          for (float v : jr.embedding) norm += static_cast<double>(v) * v;
          const double scale = norm > 0 ? 1.0 / std::sqrt(norm) : 0.0;
          for (float& v : jr.embedding) v = static_cast<float>(v * scale);
          out.embeddings.push_back(std::move(jr.embedding));
          out.prompt_tokens.push_back(jr.prompt_tokens);
        }
      }
      drop_group(gid);  // before the outcome: once the caller has it, cancel(id) must say false
      done(std::move(out));
    });
    if (r.status == SubmitStatus::kAccepted) r.id = gid;
    return r;
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
  TokenLogprob logprob_public(const runtime::TokenLogprobs& lp) const {
    TokenLogprob out{.token = loop_.token_piece(lp.token), .id = lp.token, .logprob = lp.logprob, .top = {}};
    for (const sampling::TokenLogprob& t : lp.top) {
      out.top.push_back({.token = loop_.token_piece(t.token), .id = t.token, .logprob = t.logprob});
    }
    return out;
  }

  // One scoring job per label: the prompt's tokens, then the label's. Where the tokenizer merges
  // across the boundary, scoring starts at the first token that differs.
  std::vector<runtime::Job> label_jobs(const ClassifyRequest& request) const {
    check(!request.labels.empty() && request.labels.size() <= 256, ErrorKind::kInvalidArgument,
          "classify: give 1 to 256 labels");
    std::string prompt = request.prompt_template.empty() ? "{text}\nLabel: " : request.prompt_template;
    const size_t at = prompt.find("{text}");
    check(at != std::string::npos, ErrorKind::kInvalidArgument, "classify: the template has no {text}");
    prompt.replace(at, 6, request.text);
    const std::vector<int32_t> prompt_ids = loop_.tokenize(prompt);
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
      if (request.deadline) job.deadline = *request.deadline;
      job.sampling.temperature = 0.0f;
      jobs.push_back(std::move(job));
    }
    return jobs;
  }

  static std::vector<LabelScore> softmax(const std::vector<std::string>& labels,
                                         const std::vector<runtime::JobResult>& results) {
    std::vector<LabelScore> scores;
    double max = -1e300;
    for (size_t i = 0; i < results.size(); ++i) {
      scores.push_back({.label = labels[i], .logprob = results[i].score_logprob});
      max = std::max(max, results[i].score_logprob);
    }
    double sum = 0;
    for (const LabelScore& s : scores) sum += std::exp(s.logprob - max);
    for (LabelScore& s : scores) s.probability = std::exp(s.logprob - max) / sum;
    return scores;
  }

  // True (and the reason) when a job of the phase did not complete.
  static bool failed(const std::vector<runtime::JobResult>& results, FinishReason& reason, std::string& error) {
    for (const runtime::JobResult& r : results) {
      if (r.end == runtime::JobEnd::kStop) continue;
      reason = to_public(r.end);
      error = r.error;
      return true;
    }
    return false;
  }

  RequestId new_group() {
    std::lock_guard<std::mutex> lock(groups_mutex_);
    const RequestId id = kGroupBit | next_group_++;
    groups_.emplace(id, std::make_shared<JobGroup>());
    return id;
  }

  std::shared_ptr<JobGroup> group(RequestId id) {
    std::lock_guard<std::mutex> lock(groups_mutex_);
    const auto it = groups_.find(id);
    return it == groups_.end() ? nullptr : it->second;
  }

  void drop_group(RequestId id) {
    std::lock_guard<std::mutex> lock(groups_mutex_);
    groups_.erase(id);
  }

  // Submits one phase's jobs as group `gid`; `all_done` gets their results (in order) on the
  // engine thread once every one ended. A refusal cancels the jobs already submitted, drops the
  // group and is returned; all_done is then never called. The group is dropped after all_done
  // unless all_done started another phase.
  SubmitResult start_phase(RequestId gid, std::vector<runtime::Job> jobs,
                           std::function<void(std::vector<runtime::JobResult>)> all_done) {
    struct Phase {
      std::mutex mutex;
      std::vector<runtime::JobResult> results;
      size_t left = 0;
      bool refused = false;
    };
    const std::shared_ptr<JobGroup> g = group(gid);
    auto phase = std::make_shared<Phase>();
    phase->results.resize(jobs.size());
    phase->left = jobs.size();
    auto finish = std::make_shared<std::function<void(std::vector<runtime::JobResult>)>>(std::move(all_done));
    std::unique_lock<std::mutex> glock(g->mutex);
    g->ids.clear();
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (g->priority) jobs[i].priority = to_runtime(*g->priority);
      jobs[i].on_done = [this, gid, phase, finish, i](const runtime::JobResult& r) {
        std::vector<runtime::JobResult> results;
        {
          std::lock_guard<std::mutex> lock(phase->mutex);
          phase->results[i] = r;
          if (--phase->left > 0 || phase->refused) return;
          results = std::move(phase->results);
        }
        const size_t phases_before = group_phases(gid);
        (*finish)(std::move(results));
        if (group_phases(gid) == phases_before) drop_group(gid);
      };
      runtime::JobSubmit s;
      try {
        s = loop_.submit(std::move(jobs[i]));
      } catch (const Error& e) {
        refuse(*g, *phase);
        glock.unlock();
        drop_group(gid);
        return {.status = SubmitStatus::kInvalid, .message = e.what()};
      }
      if (s.status != runtime::SubmitStatus::kAccepted) {
        refuse(*g, *phase);
        glock.unlock();
        drop_group(gid);
        return to_public(s);
      }
      g->ids.push_back(s.id);
      if (g->cancelled) loop_.cancel(s.id);
    }
    ++g->phases;
    return {.status = SubmitStatus::kAccepted};
  }

  template <typename Phase>
  void refuse(JobGroup& g, Phase& phase) {
    {
      std::lock_guard<std::mutex> lock(phase.mutex);
      phase.refused = true;
    }
    for (runtime::RequestId j : g.ids) loop_.cancel(j);
  }

  size_t group_phases(RequestId gid) {
    const std::shared_ptr<JobGroup> g = group(gid);
    if (!g) return 0;
    std::lock_guard<std::mutex> lock(g->mutex);
    return g->phases;
  }

  // The blocking form of an asynchronous call: throws for a refusal or an unfinished outcome.
  template <typename Outcome, typename Submit>
  static Outcome wait_for(const char* what, Submit submit) {
    struct Shared {
      std::mutex mutex;
      std::condition_variable cv;
      std::optional<Outcome> outcome;
    };
    auto shared = std::make_shared<Shared>();
    const SubmitResult r = submit([shared](Outcome o) {
      std::lock_guard<std::mutex> lock(shared->mutex);
      shared->outcome = std::move(o);
      shared->cv.notify_all();
    });
    if (r.status != SubmitStatus::kAccepted) {
      throw Error(ErrorKind::kInvalidArgument, std::string(what) + ": refused: " + r.message);
    }
    std::unique_lock<std::mutex> lock(shared->mutex);
    shared->cv.wait(lock, [&] { return shared->outcome.has_value(); });
    check(shared->outcome->finish_reason == FinishReason::kStop, ErrorKind::kInternal,
          std::string(what) + ": ended with " + finish_reason_name(shared->outcome->finish_reason) + " " +
              shared->outcome->error);
    return std::move(*shared->outcome);
  }

  static runtime::EngineConfig config(const EngineOptions& o) {
    check(o.max_running >= 1 && o.step_tokens > o.max_running, ErrorKind::kInvalidArgument,
          "step_tokens must exceed max_running (>= 1)");
    check(o.max_queue >= 1 && o.max_queue <= (1 << 20), ErrorKind::kInvalidArgument, "max_queue is out of range");
    runtime::EngineConfig c{.model_path = o.model_path,
                            .load_mode = load_mode(o.use_mmap, o.huge_pages),
                            .threads = o.threads,
                            .n_ctx = o.n_ctx,
                            .kv_cache_bytes = o.kv_cache_bytes,
                            .kv_sequences = o.kv_sequences,
                            .kv_page_size = o.kv_page_size,
                            .kv_f16 = o.kv_f16};
    c.scheduler.class_weights = {o.weight_high, o.weight_normal, o.weight_low};
    c.scheduler.max_step_tokens = static_cast<int32_t>(o.step_tokens);
    c.scheduler.max_running = static_cast<int32_t>(o.max_running);
    const auto q = static_cast<int32_t>(o.max_queue);
    c.scheduler.max_queued = {q, q, q};
    return c;
  }

  std::mutex groups_mutex_;
  std::unordered_map<RequestId, std::shared_ptr<JobGroup>> groups_;
  RequestId next_group_ = 1;
  runtime::EngineLoop loop_;  // last: destroyed first, its sinks may still reach the groups
};

}  // namespace

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kLow:
      return "low";
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
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadlineExceeded:
      return "deadline_exceeded";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

std::unique_ptr<Engine> Engine::open(const EngineOptions& options) {
  return std::make_unique<EngineImpl>(options);
}

}  // namespace lightboat
