#include "cli/generate.h"

#include <chrono>

#include "base/error.h"
#include "sampling/sampler.h"
#include "sampling/stop.h"

namespace lightboat::cli {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

GenerateResult generate(model::Model& model, const tokenizer::Tokenizer& tok, const GenerateRequest& req,
                        ThreadPool& pool, const std::function<void(std::string_view)>& on_text) {
  check(!req.prompt.empty(), ErrorKind::kInvalidArgument, "the prompt is empty (no tokens to evaluate)");
  req.sampling.validate();
  const int64_t n_vocab = model.hparams().n_vocab;
  std::vector<float> logits(static_cast<size_t>(n_vocab));  // [n_vocab] of the latest position

  GenerateResult r;
  r.n_prompt = static_cast<int64_t>(req.prompt.size());
  const auto t0 = std::chrono::steady_clock::now();
  model.forward(req.prompt, 1, logits.data(), pool);
  const auto t1 = std::chrono::steady_clock::now();
  r.prompt_ms = ms_between(t0, t1);

  sampling::Sampler sampler(req.sampling, static_cast<int32_t>(n_vocab));
  // Penalties see the whole context, as llama.cpp's do.
  for (int32_t id : req.history) sampler.accept(id);
  for (int32_t id : req.prompt) sampler.accept(id);
  sampling::StopMatcher stop(req.stop);
  r.finish_reason = "length";

  auto emit = [&](std::string_view text) {
    if (text.empty()) return;
    r.text.append(text);
    on_text(text);
  };

  while (req.max_tokens < 0 || r.n_gen < req.max_tokens) {
    const int32_t id = sampler.sample(logits);
    sampler.accept(id);
    r.tokens.push_back(id);
    ++r.n_gen;
    if (tok.is_eog(id)) {
      r.finish_reason = "stop";
      break;
    }
    const sampling::StopMatcher::Step step = stop.feed(tok.token_to_piece(id));
    emit(step.emit);
    if (step.stopped) {
      r.finish_reason = "stop";
      break;
    }
    if (req.max_tokens >= 0 && r.n_gen >= req.max_tokens) break;
    if (model.n_past() >= model.n_ctx()) break;  // context full: "length"
    const int32_t next[1] = {id};
    model.forward(next, 1, logits.data(), pool);
  }
  emit(stop.flush());
  r.gen_ms = ms_between(t1, std::chrono::steady_clock::now());
  return r;
}

}  // namespace lightboat::cli
