#include "runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"

namespace lightboat::runtime {
namespace {

double ms(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

const char* job_end_name(JobEnd end) {
  switch (end) {
    case JobEnd::kStop:
      return "stop";
    case JobEnd::kLength:
      return "length";
    case JobEnd::kCancelled:
      return "cancelled";
    case JobEnd::kDeadlineExceeded:
      return "deadline_exceeded";
    case JobEnd::kError:
      return "error";
  }
  return "?";
}

// A request between submission and its on_done. Shared with the events that call its sinks, so
// that it outlives its entry in live_ until they have run.
struct EngineLoop::Live : std::enable_shared_from_this<Live> {
  RequestId id = 0;
  Job job;
  std::vector<int32_t> known;  // prompt ++ generated tokens
  sampling::Sampler sampler;
  sampling::StopMatcher stop;
  std::string text;
  TimePoint submitted;
  std::optional<TimePoint> admitted, first_token;
  int64_t cached_prompt_tokens = 0;
  int64_t generated = 0;
  std::vector<double> score_at;         // scoring jobs: log p(known[i]) at index i (recompute overwrites)
  std::vector<double> embed_sum;        // embedding jobs: [n_embd] sum of the hidden rows seen
  std::vector<TokenLogprobs> logprobs;  // with job.top_logprobs

  Live(RequestId rid, Job j, int32_t n_vocab, int64_t n_embd, TimePoint now)
      : id(rid), job(std::move(j)), sampler(job.sampling, n_vocab), stop(job.stop), submitted(now) {
    known = job.prompt;
    if (job.score_from) score_at.assign(job.prompt.size(), 0.0);
    if (job.embed) embed_sum.assign(static_cast<size_t>(n_embd), 0.0);
    for (int32_t t : job.prompt) sampler.accept(t);  // penalties see the prompt, as llama.cpp's do
  }
};

// A sink call, made after the mutex is released: to live->job's on_done (done), on_logprob
// (logprob set) or on_text, whose piece is live->text[text_at, text_at + text_len) (the text
// only grows). Holding the request rather than copies of its std::functions and of the piece
// keeps a token's event free of heap allocations.
struct EngineLoop::Event {
  std::shared_ptr<const Live> live;
  std::optional<TokenLogprobs> logprob;
  size_t text_at = 0, text_len = 0;
  int32_t token = 0;
  JobResult result;
  bool done = false;
};

EngineLoop::EngineLoop(const EngineConfig& config)
    : config_(config), pool_(config.threads > 0 ? config.threads : ThreadPool::hardware_threads()) {
  reader_ = gguf::Reader::open(config.model_path, config.load_mode);
  model_name_ = reader_->try_string("general.name").value_or(config.model_path);
  {
    // Bytes per tensor type over the matrices (1-D norms stay F32 in every quantized file).
    std::unordered_map<uint32_t, uint64_t> by_type;
    for (const auto& t : reader_->tensors()) {
      weight_bytes_ += static_cast<int64_t>(t.n_bytes);
      if (t.ne.size() >= 2) by_type[t.type_id] += t.n_bytes;
    }
    const auto best = std::max_element(by_type.begin(), by_type.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    const auto geometry = best == by_type.end() ? std::nullopt : gguf::tensor_type_geometry(best->first);
    quantization_ = geometry ? std::string(geometry->name) : "unknown";
  }
  tokenizer_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(*reader_));
  chat_ = std::make_unique<tokenizer::ChatTemplate>(tokenizer::ChatTemplate::from_gguf(*reader_, *tokenizer_));

  const SchedulerConfig& sc = config.scheduler;
  // Size the KV pool from the byte budget, using the hyper-parameters (no second load).
  model::ModelSettings ms{.n_ctx = config.n_ctx,
                          .max_batch = std::max<int64_t>(sc.max_step_tokens, sc.max_running),
                          .kv_page_size = config.kv_page_size,
                          .kv_pages = 0,
                          .kv_type = config.kv_f16 ? tensor::DType::kF16 : tensor::DType::kF32};
  {
    const model::Hparams h = model::read_hparams(*reader_, reader_->get_string("general.architecture"));
    const int64_t n_ctx = config.n_ctx > 0 ? config.n_ctx : std::min<int64_t>(h.n_ctx_train, 4096);
    const int64_t bytes_per_page = config.kv_page_size * model::kv_bytes_per_token(h, ms.kv_type);
    const int64_t pages_per_seq = (n_ctx + config.kv_page_size - 1) / config.kv_page_size;
    ms.kv_pages = config.kv_cache_bytes > 0 ? config.kv_cache_bytes / bytes_per_page
                                            : std::max<int64_t>(1, config.kv_sequences) * pages_per_seq;
    check(ms.kv_pages >= pages_per_seq / 4 + 1 && ms.kv_pages <= (int64_t{1} << 24), ErrorKind::kInvalidArgument, [&] {
      return "KV cache budget of " + std::to_string(config.kv_cache_bytes) + " bytes gives " +
             std::to_string(ms.kv_pages) + " pages of " + std::to_string(bytes_per_page) + " bytes: too few";
    });
  }
  model_ = model::load_model(reader_, ms);

  kv_ = std::make_unique<KvPages>(KvPagesConfig{.n_pages = static_cast<int32_t>(model_->kv_pages()),
                                                .page_size = static_cast<int32_t>(model_->kv_page_size())});
  // The port is called only inside scheduler calls, which run under mutex_.
  port_ = std::make_unique<KvPagesPort>(
      *kv_, [this](RequestId id) -> std::span<const TokenId> { return live_.at(id)->known; },
      [this](RequestId id) -> int32_t {
        // A scoring job computes every position it scores: reuse the cache only before them.
        // An embedding job needs every position's hidden state: no reuse.
        const Live& live = *live_.at(id);
        if (live.job.embed) return 0;
        return live.job.score_from ? *live.job.score_from - 1 : static_cast<int32_t>(live.known.size());
      });
  // The model caps its batch at the context size (a 128-token model takes 128 tokens a step):
  // the plan must never hold more tokens than one forward pass accepts.
  SchedulerConfig step_sc = sc;
  step_sc.max_step_tokens = static_cast<int32_t>(std::min<int64_t>(sc.max_step_tokens, model_->max_batch()));
  check(step_sc.max_running < step_sc.max_step_tokens, ErrorKind::kInvalidArgument, [&] {
    return "max_running (" + std::to_string(sc.max_running) + ") must be below the tokens of one step, which the " +
           std::to_string(model_->n_ctx()) + "-token context caps at " + std::to_string(model_->max_batch());
  });
  scheduler_ = std::make_unique<Scheduler>(step_sc, clock_, *port_);
  const auto n_vocab = static_cast<size_t>(model_->hparams().n_vocab);
  const auto n_embd = static_cast<size_t>(model_->hparams().n_embd);
  logits_.resize(static_cast<size_t>(step_sc.max_running) * n_vocab);
  score_logits_.resize(static_cast<size_t>(kScoreChunkRows) * n_vocab);
  hidden_.resize(static_cast<size_t>(step_sc.max_step_tokens) * n_embd);
  hidden_rows_.reserve(static_cast<size_t>(step_sc.max_step_tokens));
  hidden_owner_.reserve(static_cast<size_t>(step_sc.max_step_tokens));
  hidden_target_.reserve(static_cast<size_t>(step_sc.max_step_tokens));
  hidden_index_.reserve(static_cast<size_t>(step_sc.max_step_tokens));
  sampled_.reserve(static_cast<size_t>(step_sc.max_running));
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto& [id, live] : live_) finish(*live, JobEnd::kCancelled, events);
  live_.clear();
  dispatch(lock, events);
}

std::vector<int32_t> EngineLoop::tokenize(std::string_view text) const {
  return tokenizer_->encode(text, /*add_special=*/true, /*parse_special=*/true);
}

std::string EngineLoop::token_piece(int32_t token) const {
  return std::string(tokenizer_->token_to_piece(token));
}

tokenizer::ChatPrompt EngineLoop::format_chat(std::span<const tokenizer::ChatMessage> messages) const {
  return chat_->apply(messages);
}

JobSubmit EngineLoop::submit(Job job) {
  check(!job.prompt.empty(), ErrorKind::kInvalidArgument, "the prompt is empty");
  const auto n_prompt = static_cast<int64_t>(job.prompt.size());
  check(n_prompt < model_->n_ctx(), ErrorKind::kInvalidArgument, [&] {
    return "the prompt has " + std::to_string(n_prompt) + " tokens; the context holds " +
           std::to_string(model_->n_ctx());
  });
  for (int32_t t : job.prompt) {
    check(t >= 0 && t < model_->hparams().n_vocab, ErrorKind::kInvalidArgument,
          [&] { return "token id " + std::to_string(t) + " is outside the vocabulary"; });
  }
  check(job.max_tokens >= 1, ErrorKind::kInvalidArgument, "max_tokens must be at least 1");
  check(!(job.score_from && job.embed), ErrorKind::kInvalidArgument, "a job either scores or embeds");
  if (job.score_from) {
    check(*job.score_from >= 1 && *job.score_from <= n_prompt, ErrorKind::kInvalidArgument,
          "score_from is outside the prompt");
  }
  if (job.score_from || job.embed) {
    job.max_tokens = 1;  // the scheduler's view: one step past the prompt, which is never sampled
  }
  if (job.top_logprobs) {
    check(*job.top_logprobs >= 0 && *job.top_logprobs <= 20 && *job.top_logprobs <= model_->hparams().n_vocab,
          ErrorKind::kInvalidArgument, "top_logprobs must be in [0, 20]");
  }
  job.sampling.validate();
  job.max_tokens = static_cast<int32_t>(std::min<int64_t>(job.max_tokens, model_->n_ctx() - n_prompt));

  std::lock_guard<std::mutex> lock(mutex_);
  const RequestId id = next_id_++;
  const TimePoint now = clock_.now();
  RequestInfo info{.id = id,
                   .priority = job.priority,
                   .deadline = job.deadline ? std::optional<TimePoint>(now + *job.deadline) : std::nullopt,
                   .prompt_len = static_cast<int32_t>(n_prompt),
                   .max_new_tokens = job.max_tokens};
  auto live = std::make_shared<Live>(id, std::move(job), static_cast<int32_t>(model_->hparams().n_vocab),
                                     model_->hparams().n_embd, now);
  live_.emplace(id, std::move(live));
  const SubmitResult r = scheduler_->submit(info);
  if (r.status != SubmitStatus::kAccepted) {
    live_.erase(id);
    return {.status = r.status, .id = 0, .retry_after = r.retry_after};
  }
  wake_.notify_one();
  return {.status = SubmitStatus::kAccepted, .id = id};
}

bool EngineLoop::cancel(RequestId id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool found = scheduler_->cancel(id);
  if (found) wake_.notify_one();
  return found;
}

bool EngineLoop::reprioritize(RequestId id, Priority priority) {
  std::lock_guard<std::mutex> lock(mutex_);
  return scheduler_->reprioritize(id, priority);  // takes effect at the next plan()
}

EngineCounters EngineLoop::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EngineCounters c = counters_;
  c.scheduler = scheduler_->stats();
  c.kv = kv_->stats();
  const auto n_vocab = static_cast<size_t>(model_->hparams().n_vocab);
  c.logits_buffer_rows = static_cast<int64_t>((logits_.size() + score_logits_.size()) / n_vocab);
  return c;
}

void EngineLoop::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    if (scheduler_->n_live() == 0) {
      wake_.wait(lock, [&] { return stop_ || scheduler_->n_live() > 0; });
      continue;
    }
    step(lock);
  }
}

void EngineLoop::finish(Live& live, JobEnd end, std::vector<Event>& events, const std::string& error) {
  const TimePoint now = clock_.now();
  JobResult r;
  r.end = end;
  if (end != JobEnd::kError) {
    const std::string_view tail = live.stop.flush();
    if (!tail.empty()) {
      events.push_back({.live = live.shared_from_this(),
                        .text_at = live.text.size(),
                        .text_len = tail.size(),
                        .token = live.known.back()});
      live.text.append(tail);
    }
  }
  r.text = live.text;
  r.prompt_tokens = static_cast<int64_t>(live.job.prompt.size());
  r.cached_prompt_tokens = live.cached_prompt_tokens;
  r.completion_tokens = live.generated;
  r.queue_ms = live.admitted ? ms(*live.admitted - live.submitted) : ms(now - live.submitted);
  r.ttft_ms = live.first_token ? ms(*live.first_token - live.submitted) : 0;
  r.total_ms = ms(now - live.submitted);
  r.error = error;
  for (double v : live.score_at) r.score_logprob += v;
  if (live.job.embed && end == JobEnd::kStop) {
    const double n = static_cast<double>(live.job.prompt.size());
    r.embedding.reserve(live.embed_sum.size());
    for (double v : live.embed_sum) r.embedding.push_back(static_cast<float>(v / n));
  }
  r.logprobs = std::move(live.logprobs);
  r.prompt_ids = live.job.prompt;
  r.generated.assign(live.known.begin() + static_cast<std::ptrdiff_t>(live.job.prompt.size()), live.known.end());
  ++counters_.completed;
  counters_.generated_tokens += live.generated;
  events.push_back({.live = live.shared_from_this(), .result = std::move(r), .done = true});
}

void EngineLoop::sample_rows() {
  const auto n_vocab = static_cast<size_t>(model_->hparams().n_vocab);
  sampled_.resize(rows_.size());
  auto sample = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const auto i = static_cast<size_t>(r);
      sampled_[i] = row_owner_[i]->sampler.sample(std::span(&logits_[i * n_vocab], n_vocab));
    }
  };
  // Each row reads the whole vocabulary (greedy: 49152 logits for SmolLM2, 128256 for Llama 3),
  // and a step of 8 streams has 8 rows: on the calling thread alone that was 2% of the step.
  if (rows_.size() > 1) {
    pool_.parallel_for(static_cast<int64_t>(rows_.size()), 1, sample);
  } else {
    sample(0, static_cast<int64_t>(rows_.size()));
  }
}

void EngineLoop::sample_row(Live& live, const float* logits, int32_t token, std::vector<Event>& events) {
  const int64_t n_vocab = model_->hparams().n_vocab;
  if (live.job.top_logprobs && !tokenizer_->is_eog(token)) {
    // The sampler read the row without changing it: these are the raw logits.
    TokenLogprobs lp{.token = token};
    lp.top.resize(static_cast<size_t>(*live.job.top_logprobs));
    lp.logprob = sampling::log_softmax_top(std::span(logits, static_cast<size_t>(n_vocab)), token, lp.top);
    live.logprobs.push_back(lp);
    if (live.job.on_logprob) events.push_back({.live = live.shared_from_this(), .logprob = std::move(lp)});
  }
  live.sampler.accept(token);
  live.known.push_back(token);
  ++live.generated;
  if (!live.first_token) live.first_token = clock_.now();

  std::optional<JobEnd> end;
  if (tokenizer_->is_eog(token)) {
    end = JobEnd::kStop;
  } else {
    const sampling::StopMatcher::Step s = live.stop.feed(tokenizer_->token_to_piece(token));
    if (!s.emit.empty()) {
      events.push_back(
          {.live = live.shared_from_this(), .text_at = live.text.size(), .text_len = s.emit.size(), .token = token});
      live.text.append(s.emit);
    }
    if (s.stopped) end = JobEnd::kStop;
  }
  if (!end && live.generated >= live.job.max_tokens) end = JobEnd::kLength;
  if (end) {
    scheduler_->finish(live.id);
    finish(live, *end, events);
    live_.erase(live.id);  // `live` must not be used after this line (only its events hold it)
  }
}

void EngineLoop::step(std::unique_lock<std::mutex>& lock) {
  std::vector<Event>& events = events_;  // empty: dispatch clears it
  const StepPlan& plan = scheduler_->plan();

  for (const Ended& e : plan.ended) {
    auto it = live_.find(e.id);
    if (it == live_.end()) continue;
    const JobEnd end = e.reason == EndReason::kCancelled          ? JobEnd::kCancelled
                       : e.reason == EndReason::kDeadlineExceeded ? JobEnd::kDeadlineExceeded
                                                                  : JobEnd::kLength;
    finish(*it->second, end, events);
    live_.erase(it);
  }
  for (RequestId id : plan.admitted) {
    Live& live = *live_.at(id);
    if (!live.admitted) {
      live.admitted = clock_.now();
      live.cached_prompt_tokens = kv_->n_tokens(port_->seq(id));
      counters_.prompt_tokens += static_cast<int64_t>(live.job.prompt.size());
    }
  }

  // Lay the plan out as one batch. Page tables are copied: the forward pass runs unlocked.
  tokens_.clear();
  positions_.clear();
  seq_.clear();
  rows_.clear();
  row_owner_.clear();
  hidden_rows_.clear();
  hidden_owner_.clear();
  hidden_target_.clear();
  hidden_index_.clear();
  tables_.resize(std::max(tables_.size(), plan.items.size()));
  table_spans_.clear();
  std::vector<std::pair<Live*, PlanItem>>& items = items_;
  items.clear();
  for (size_t i = 0; i < plan.items.size(); ++i) {
    const PlanItem& item = plan.items[i];
    Live* live = live_.at(item.id).get();
    items.emplace_back(live, item);
    for (int32_t j = 0; j < item.n_tokens; ++j) {
      tokens_.push_back(live->known[static_cast<size_t>(item.pos + j)]);
      positions_.push_back(item.pos + j);
      seq_.push_back(static_cast<int32_t>(i));
    }
    const std::span<const PageId> table = kv_->page_table(port_->seq(item.id));
    tables_[i].assign(table.begin(), table.end());
    table_spans_.emplace_back(tables_[i]);
    if (live->job.score_from) {
      // Row at position p scores known[p + 1], for p + 1 in [score_from, prompt end).
      const auto n_known = static_cast<int32_t>(live->known.size());
      const auto first_row = tokens_.size() - static_cast<size_t>(item.n_tokens);
      for (int32_t j = 0; j < item.n_tokens; ++j) {
        const int32_t p = item.pos + j;
        if (p + 1 >= *live->job.score_from && p + 1 < n_known) {
          hidden_rows_.push_back(static_cast<int32_t>(first_row + static_cast<size_t>(j)));
          hidden_owner_.push_back(live);
          hidden_target_.push_back(live->known[static_cast<size_t>(p + 1)]);
          hidden_index_.push_back(p + 1);
        }
      }
    } else if (live->job.embed) {
      // Position 0 again (first admission, or recomputed after preemption): start the sum over.
      if (item.pos == 0) std::fill(live->embed_sum.begin(), live->embed_sum.end(), 0.0);
      const auto first_row = tokens_.size() - static_cast<size_t>(item.n_tokens);
      for (int32_t j = 0; j < item.n_tokens; ++j) {
        hidden_rows_.push_back(static_cast<int32_t>(first_row + static_cast<size_t>(j)));
        hidden_owner_.push_back(live);
        hidden_target_.push_back(-1);
        hidden_index_.push_back(item.pos + j);
      }
    } else if (item.samples) {
      rows_.push_back(static_cast<int32_t>(tokens_.size() - 1));
      row_owner_.push_back(live);
    }
  }
  // One sampled row per running sequence: the buffer sized at open holds them (grown only if a
  // plan ever held more sequences than max_running, which the scheduler does not do).
  const size_t need = rows_.size() * static_cast<size_t>(model_->hparams().n_vocab);
  if (logits_.size() < need) logits_.resize(need);
  const size_t need_hidden = hidden_rows_.size() * static_cast<size_t>(model_->hparams().n_embd);
  if (hidden_.size() < need_hidden) hidden_.resize(need_hidden);
  const int32_t n_prefill = plan.n_prefill_tokens, n_decode = plan.n_decode_tokens;
  if (items.empty()) {
    // Nothing runnable (e.g. waiting for pages): let time pass for deadlines and cancels.
    wake_.wait_for(lock, std::chrono::milliseconds(5));
    dispatch(lock, events);
    return;
  }

  const TimePoint start = clock_.now();
  std::string error;
  lock.unlock();
  try {
    model_->forward_batch({.tokens = tokens_,
                           .positions = positions_,
                           .seq = seq_,
                           .page_tables = table_spans_,
                           .logit_rows = rows_,
                           .hidden_rows = hidden_rows_,
                           .hidden = hidden_.data()},
                          logits_.data(), pool_);
    consume_hidden();
    sample_rows();
  } catch (const std::exception& e) {
    error = e.what();
  }
  lock.lock();

  const int64_t n_vocab = model_->hparams().n_vocab;
  size_t row = 0;
  for (auto& [live, item] : items) {
    if (!error.empty()) {
      scheduler_->finish(item.id);
      finish(*live, JobEnd::kError, events, error);
      live_.erase(item.id);
      continue;
    }
    kv_->commit(port_->seq(item.id),
                std::span(live->known).subspan(static_cast<size_t>(item.pos), static_cast<size_t>(item.n_tokens)));
    if (live->job.score_from || live->job.embed) {
      if (item.samples) {  // the prompt is done: so is the score or the embedding
        scheduler_->finish(item.id);
        finish(*live, JobEnd::kStop, events);
        live_.erase(item.id);
      }
    } else if (item.samples) {
      sample_row(*live, &logits_[row * static_cast<size_t>(n_vocab)], sampled_[row], events);
      ++row;
    }
  }
  scheduler_->observe_step(
      {.n_prefill_tokens = n_prefill, .n_decode_tokens = n_decode, .elapsed = clock_.now() - start});
  ++counters_.steps;
  items.clear();  // (its requests may be gone)
  dispatch(lock, events);
}

void EngineLoop::consume_hidden() {
  const int64_t n_vocab = model_->hparams().n_vocab;
  const auto n_embd = static_cast<size_t>(model_->hparams().n_embd);
  const size_t n = hidden_rows_.size();
  for (size_t i = 0; i < n;) {
    if (hidden_target_[i] < 0) {  // an embedding row: add it to its job's sum
      const float* h = &hidden_[i * n_embd];
      std::vector<double>& sum = hidden_owner_[i]->embed_sum;
      for (size_t k = 0; k < n_embd; ++k) sum[k] += static_cast<double>(h[k]);
      ++i;
      continue;
    }
    // A run of scoring rows, at most kScoreChunkRows: the head over their hidden states, then
    // log p(target) = logit - logsumexp.
    size_t end = i;
    while (end < n && end - i < static_cast<size_t>(kScoreChunkRows) && hidden_target_[end] >= 0) ++end;
    model_->logits_from_hidden(&hidden_[i * n_embd], static_cast<int64_t>(end - i), score_logits_.data(), pool_);
    for (size_t r = i; r < end; ++r) {
      const float* row = &score_logits_[(r - i) * static_cast<size_t>(n_vocab)];
      const float max = *std::max_element(row, row + n_vocab);
      double sum = 0;
      for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v] - max));
      hidden_owner_[r]->score_at[static_cast<size_t>(hidden_index_[r])] =
          static_cast<double>(row[hidden_target_[r]] - max) - std::log(sum);
    }
    i = end;
  }
}

void EngineLoop::dispatch(std::unique_lock<std::mutex>& lock, std::vector<Event>& events) {
  if (events.empty()) return;
  lock.unlock();
  for (Event& e : events) {
    const Job& job = e.live->job;
    if (e.done) {
      if (job.on_done) job.on_done(e.result);
    } else if (e.logprob) {
      if (job.on_logprob) job.on_logprob(*e.logprob);
    } else if (job.on_text) {
      job.on_text(std::string_view(e.live->text).substr(e.text_at, e.text_len), e.token);
    }
  }
  events.clear();  // (may end requests' lifetimes: only this thread holds them now)
  lock.lock();
}

}  // namespace lightboat::runtime
