// lightboat eval: action accuracy and answer perplexity of a command model (the built-in
// lightboat-home, docs/default-model.md) on a JSON-lines set of {"prompt": …, "answer": …}.
//
// Per example, with the model's chat template and one user message:
//  * accuracy: the greedy (temperature 0) answer's first line, parsed as JSON, equals the
//    expected answer's first line parsed as JSON (objects compare key by key, any order);
//  * perplexity: the expected answer plus the end-of-turn token, teacher-forced after the prompt;
//    exp(total negative log-likelihood / total answer tokens) over the set.
// Deterministic: greedy decoding, no sampling RNG, the same thread-independent kernels.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/generate.h"
#include "tokenizer/chat_template.h"

namespace lightboat::cli {
namespace {

struct EvalOptions {
  ModelOptions model;
  std::string data;
  int64_t limit = 0;        // 0 = every example
  int64_t max_tokens = 64;  // per greedy answer
  bool json = false;
  bool verbose = false;
};

struct Example {
  std::string prompt;
  std::string answer;
};

std::vector<Example> read_examples(const std::string& path, int64_t limit) {
  std::ifstream in(path);
  check(in.good(), ErrorKind::kNotFound, "cannot read evaluation data '" + path + "'");
  std::vector<Example> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string where = path + ":" + std::to_string(n);
    check(j.is_object() && j.contains("prompt") && j["prompt"].is_string() && j.contains("answer") &&
              j["answer"].is_string(),
          ErrorKind::kFormat, where + ": expected a JSON object with string fields \"prompt\" and \"answer\"");
    out.push_back({j["prompt"].get<std::string>(), j["answer"].get<std::string>()});
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
  }
  check(!out.empty(), ErrorKind::kInvalidArgument, "evaluation data '" + path + "' holds no examples");
  return out;
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// The action of an answer: its first line as JSON (discarded when it does not parse).
nlohmann::json action_of(const std::string& answer) {
  return nlohmann::json::parse(first_line(answer), nullptr, /*allow_exceptions=*/false);
}

// Sum of -log p(answer token) over the answer tokens: `full` is prompt + answer, the answer
// starting at n_prompt. logits must hold [n_answer, n_vocab].
double answer_nll(model::Model& m, const std::vector<int32_t>& full, size_t n_prompt, std::vector<float>& logits,
                  ThreadPool& pool) {
  const int64_t n_vocab = m.hparams().n_vocab;
  const auto n_answer = static_cast<int64_t>(full.size() - n_prompt);
  m.truncate(0);
  m.forward(std::span(full).first(full.size() - 1), n_answer, logits.data(), pool);
  double nll = 0;
  for (int64_t i = 0; i < n_answer; ++i) {
    const float* row = &logits[static_cast<size_t>(i * n_vocab)];
    const float mx = *std::max_element(row, row + n_vocab);
    double z = 0;
    for (int64_t v = 0; v < n_vocab; ++v) z += std::exp(static_cast<double>(row[v] - mx));
    nll += std::log(z) + mx - row[full[n_prompt + static_cast<size_t>(i)]];
  }
  return nll;
}

int eval(EvalOptions& o) {
  const std::vector<Example> examples = read_examples(o.data, o.limit);
  Loaded m = load(o.model, true);
  ThreadPool pool(resolve_threads(o.model.n_threads));
  const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(*m.reader, *m.tokenizer);
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  // The token that closes an assistant turn: ChatML's <|im_end|> when the vocabulary has it.
  const std::optional<int32_t> im_end = tok.find_token("<|im_end|>");
  const int32_t end_of_turn = im_end ? *im_end : tok.eos();
  check(end_of_turn != tokenizer::kNoToken, ErrorKind::kUnsupported, "the model has no end-of-turn token");

  std::vector<float> logits;
  int64_t correct = 0, valid_json = 0, answer_tokens = 0;
  double nll = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& ex = examples[i];
    const tokenizer::ChatMessage msg[] = {{"user", ex.prompt}};
    const std::string prompt_text = chat.apply(msg).text;
    const std::vector<int32_t> prompt = tok.encode(prompt_text, true, true);

    GenerateRequest req;
    req.prompt = prompt;
    req.max_tokens = o.max_tokens;
    req.sampling.temperature = 0.0f;
    req.sampling.seed = 0;
    m.model->truncate(0);
    const GenerateResult r = generate(*m.model, tok, req, pool, [](std::string_view) {});
    const nlohmann::json got = action_of(r.text);
    const nlohmann::json want = action_of(ex.answer);
    check(!want.is_discarded(), ErrorKind::kFormat,
          o.data + ": example " + std::to_string(i + 1) + ": the answer's first line is not JSON");
    valid_json += got.is_discarded() ? 0 : 1;
    const bool ok = !got.is_discarded() && got == want;
    correct += ok ? 1 : 0;
    if (o.verbose && !ok) {
      std::fprintf(stderr, "miss %zu: %s\n  want %s\n  got  %s\n", i + 1, ex.prompt.c_str(),
                   first_line(ex.answer).c_str(), first_line(r.text).c_str());
    }

    // Teacher-forced answer: the tokens after the prompt when prompt + answer + end of turn are
    // encoded together (the prompt's tokens are a prefix of them; checked).
    std::vector<int32_t> full = tok.encode(prompt_text + ex.answer, true, true);
    full.push_back(end_of_turn);
    check(full.size() > prompt.size() && std::equal(prompt.begin(), prompt.end(), full.begin()), ErrorKind::kInternal,
          "example " + std::to_string(i + 1) + ": the prompt's tokens are not a prefix of prompt + answer");
    const size_t n_answer = full.size() - prompt.size();
    logits.resize(n_answer * static_cast<size_t>(m.model->hparams().n_vocab));
    nll += answer_nll(*m.model, full, prompt.size(), logits, pool);
    answer_tokens += static_cast<int64_t>(n_answer);
  }
  const double ms = ms_since(start);
  const auto n = static_cast<int64_t>(examples.size());
  const double accuracy = static_cast<double>(correct) / static_cast<double>(n);
  const double ppl = std::exp(nll / static_cast<double>(answer_tokens));
  if (o.json) {
    nlohmann::json j{{"examples", n},
                     {"correct", correct},
                     {"accuracy", accuracy},
                     {"valid_json", valid_json},
                     {"perplexity", ppl},
                     {"answer_tokens", answer_tokens},
                     {"ms", ms}};
    std::printf("%s\n", dump_json(j).c_str());
  } else {
    std::printf(
        "examples %lld | action accuracy %.2f%% (%lld/%lld, %lld valid JSON) | answer perplexity %.4f "
        "(%lld tokens) | %.0f ms\n",
        static_cast<long long>(n), 100.0 * accuracy, static_cast<long long>(correct), static_cast<long long>(n),
        static_cast<long long>(valid_json), ppl, static_cast<long long>(answer_tokens), ms);
  }
  return 0;
}

}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Action accuracy (greedy, exact JSON) and answer perplexity on {prompt, answer} JSON lines");
  add_model_flags(*cmd, o->model);
  cmd->add_option("--data", o->data, "JSON-lines file of {\"prompt\": …, \"answer\": …}")->required();
  cmd->add_option("--limit", o->limit, "Only the first N examples (0 = all)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("-n,--n-predict", o->max_tokens, "Most tokens of a greedy answer")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd->add_flag("--json", o->json, "One JSON object: examples, correct, accuracy, valid_json, perplexity, …");
  cmd->add_flag("-v,--verbose", o->verbose, "List the misses on stderr");
  return [o] { return eval(*o); };
}

}  // namespace lightboat::cli
