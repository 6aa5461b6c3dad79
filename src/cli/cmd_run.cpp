// lightboat run: generate text from a prompt, streaming it to stdout (or one JSON object with
// --json); load time and prompt/generation speed go to stderr. With --chat: a multi-turn
// conversation, one user message per line of stdin (see cli/chat.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>

#include "base/error.h"
#include "cli/chat.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/generate.h"
#include "lightboat/engine.h"
#include "tokenizer/chat_template.h"

namespace lightboat::cli {
namespace {

struct RunOptions {
  ModelOptions model;
  std::string prompt;
  std::string prompt_file;
  int64_t n_predict = 128;
  sampling::SamplingParams sampling;
  std::vector<std::string> stop;
  bool json = false;
  bool chat = false;
  bool templated = false;   // --template: -p is one user message through the chat template
  bool temp_given = false;  // --temp was passed (else the built-in model decodes greedily)
  std::string system;       // --system: the chat's system message
};

// --template (implied for the built-in model, which is a chat model): the prompt becomes one user
// message (after the --system message, if any) formatted by the model's chat template.
std::string apply_template(const RunOptions& o, const std::string& prompt) {
  const std::shared_ptr<const gguf::Reader> reader = gguf::Reader::open(o.model.path);
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(*reader);
  const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(*reader, tok);
  std::vector<tokenizer::ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", prompt});
  const tokenizer::ChatPrompt p = chat.apply(messages);
  if (!p.warning.empty()) std::fprintf(stderr, "lightboat: warning: %s\n", p.warning.c_str());
  return p.text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), ErrorKind::kNotFound, "cannot read prompt file '" + path + "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// --chat: the prompt (if any) is the first user message, then one message per line of stdin
// until EOF. Answers stream to stdout, each ended by a newline; turn statistics go to stderr.
int run_chat(RunOptions& o) {
  Loaded m = load(o.model, true);
  ThreadPool pool(resolve_threads(o.model.n_threads));
  const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(*m.reader, *m.tokenizer);
  ChatSession session(*m.model, *m.tokenizer, chat, o.system);
  std::fprintf(stderr, "load: %.1f ms | chat template: %s\n", m.load_ms,
               std::string(chat.renders() ? tokenizer::chat_family_name(chat.family()) : "built-in").c_str());

  GenerateRequest params;
  params.max_tokens = o.n_predict;
  params.sampling = o.sampling;
  params.stop = o.stop;
  const bool interactive = isatty(STDIN_FILENO) != 0;
  std::string warned;
  auto one_turn = [&](const std::string& user) {
    const ChatTurn t = session.reply(user, params, pool, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::printf("\n");
    std::fflush(stdout);
    if (!t.warning.empty() && t.warning != warned) {
      std::fprintf(stderr, "lightboat: warning: %s\n", t.warning.c_str());
      warned = t.warning;
    }
    const GenerateResult& r = t.result;
    const int64_t evaluated = t.n_prompt - t.n_reused;
    std::fprintf(stderr,
                 "turn %zu: prompt %lld tokens (%lld cached, %lld evaluated in %.1f ms) | answer: %lld tokens, "
                 "%.1f ms, %.1f tok/s, %s\n",
                 session.messages().size() / 2, static_cast<long long>(t.n_prompt), static_cast<long long>(t.n_reused),
                 static_cast<long long>(evaluated), r.prompt_ms, static_cast<long long>(r.n_gen), r.gen_ms,
                 r.gen_ms > 0 ? 1000.0 * static_cast<double>(r.n_gen) / r.gen_ms : 0.0, r.finish_reason.c_str());
  };

  const std::string first = o.prompt_file.empty() ? o.prompt : read_file(o.prompt_file);
  if (!first.empty()) one_turn(first);
  std::string line;
  for (;;) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line: nothing to answer
    one_turn(line);
  }
  return 0;
}

// A sink that streams text to stdout (unless --json) and hands the completion to run().
class StdoutSink final : public TokenSink {
 public:
  explicit StdoutSink(bool quiet) : quiet_(quiet) {}
  void on_text(const std::string& text, int32_t) override {
    if (quiet_) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  void on_done(const Completion& c) override { done_.set_value(c); }
  Completion wait() { return done_.get_future().get(); }

 private:
  bool quiet_;
  std::promise<Completion> done_;
};

SamplingOptions to_options(const sampling::SamplingParams& p) {
  SamplingOptions o{.temperature = p.temperature,
                    .top_k = p.top_k,
                    .top_p = p.top_p,
                    .min_p = p.min_p,
                    .repeat_penalty = p.repeat_penalty,
                    .frequency_penalty = p.frequency_penalty,
                    .presence_penalty = p.presence_penalty,
                    .penalty_last_n = p.penalty_last_n};
  if (p.seed != sampling::kRandomSeed) o.seed = p.seed;
  return o;
}

// One prompt through the public engine API, as every other client runs it (one sequence).
int run(RunOptions& o) {
  if (o.chat) return run_chat(o);
  resolve_model(o.model);
  o.sampling.validate();
  std::string prompt = o.prompt_file.empty() ? o.prompt : read_file(o.prompt_file);
  check(o.system.empty() || o.templated || o.model.builtin, ErrorKind::kInvalidArgument,
        "--system needs --chat or --template");
  if (o.templated || o.model.builtin) prompt = apply_template(o, prompt);
  // The built-in model answers commands: one right answer, so greedy unless asked otherwise.
  if (o.model.builtin && !o.temp_given) o.sampling.temperature = 0.0f;
  const int threads = resolve_threads(o.model.n_threads);
  const auto start = std::chrono::steady_clock::now();
  auto engine = Engine::open({.model_path = o.model.path,
                              .use_mmap = !o.model.no_mmap,
                              .huge_pages = !o.model.no_huge_pages,
                              .threads = threads,
                              .n_ctx = o.model.n_ctx,
                              .kv_sequences = 1,
                              .kv_f16 = o.model.kv_type == tensor::DType::kF16,
                              .step_tokens = std::max<int64_t>(o.model.max_batch, 2),
                              .max_running = 1});
  const double load_ms = ms_since(start);

  auto sink = std::make_shared<StdoutSink>(o.json);
  const SubmitResult s = engine->submit(
      {.prompt = prompt, .sampling = to_options(o.sampling), .max_tokens = o.n_predict, .stop = o.stop}, sink);
  check(s.status == SubmitStatus::kAccepted, ErrorKind::kInvalidArgument, s.message);
  const Completion c = sink->wait();
  check(c.finish_reason != FinishReason::kError, ErrorKind::kInternal, c.error);

  // The prompt runs from admission to the first token; generation from there to the end, in
  // which the first token's forward pass is not needed: the rate counts the tokens decoded.
  const double prompt_ms = c.ttft_ms - c.queue_ms;
  const double gen_ms = c.total_ms - c.ttft_ms;
  const auto n_prompt = static_cast<int64_t>(c.prompt_token_ids.size());
  const int64_t n_gen = c.completion_tokens;
  const double pp_tps = prompt_ms > 0 ? 1000.0 * static_cast<double>(n_prompt) / prompt_ms : 0;
  const double tg_tps = gen_ms > 0 && n_gen > 1 ? 1000.0 * static_cast<double>(n_gen - 1) / gen_ms : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_tokens"] = c.prompt_token_ids;
    j["tokens"] = c.token_ids;
    j["text"] = c.text;
    j["finish_reason"] = finish_reason_name(c.finish_reason);
    j["timings"] = {
        {"load_ms", load_ms}, {"prompt_ms", prompt_ms}, {"prompt_n", n_prompt},       {"prompt_tokens_per_s", pp_tps},
        {"gen_ms", gen_ms},   {"gen_n", n_gen},         {"gen_tokens_per_s", tg_tps}, {"threads", threads}};
    std::printf("%s\n", dump_json(j).c_str());
  } else {
    std::printf("\n");
    std::fflush(stdout);
  }
  std::fprintf(stderr,
               "load: %.1f ms | prompt: %lld tokens, %.1f ms, %.1f tok/s | generation: %lld tokens, %.1f ms, "
               "%.1f tok/s | %d threads\n",
               load_ms, static_cast<long long>(n_prompt), prompt_ms, pp_tps, static_cast<long long>(n_gen), gen_ms,
               tg_tps, threads);
  return 0;
}

}  // namespace

void add_model_flags(CLI::App& cmd, ModelOptions& m) {
  cmd.add_option("-m,--model", m.path, "GGUF model file");
  cmd.add_option("-c,--ctx-size", m.n_ctx, "Context size in tokens (0 = the model's, at most 4096)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  cmd.add_option("-t,--threads", m.n_threads, "Compute threads (0 = all cores)")->check(CLI::Range(0, 1024));
  cmd.add_option("-b,--batch-size", m.max_batch, "Tokens per forward chunk")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  cmd.add_flag("--no-mmap", m.no_mmap, "Read the file into memory instead of mapping it");
  cmd.add_flag("--no-huge-pages", m.no_huge_pages,
               "Keep the mapped file's own pages (shared with other processes) instead of moving the weights onto "
               "huge pages");
}

Runner add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  o->sampling.seed = sampling::kRandomSeed;
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt");
  add_model_flags(*cmd, o->model);
  cmd->add_option("--kv-type", o->model.kv_type, "KV cache element type: f32 or f16 (half the memory)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, tensor::DType>{{"f32", tensor::DType::kF32}, {"f16", tensor::DType::kF16}}))
      ->capture_default_str();
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
  cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate (-1 = until end of text or full context)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 24));
  CLI::Option* temp = cmd->add_option("--temp", o->sampling.temperature,
                                      "Temperature (0 = greedy; default 0.8, 0 for the built-in model)");
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0 = off)");
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1 = off)");
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0 = off)");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1 = off)");
  cmd->add_option("--repeat-last-n", o->sampling.penalty_last_n, "Tokens the penalties look back at");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Frequency penalty (0 = off)");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Presence penalty (0 = off)");
  cmd->add_option("-s,--seed", o->sampling.seed, "Random seed (default: random)");
  cmd->add_option("--stop", o->stop, "Stop string (repeatable)");
  auto* json = cmd->add_flag("--json", o->json, "Print one JSON object with tokens, text and timings");
  auto* chat = cmd->add_flag("--chat", o->chat,
                             "Chat: format with the model's chat template, one user message per stdin line "
                             "(-p is the first), keeping the KV cache between turns")
                   ->excludes(json);
  cmd->add_flag("--template", o->templated,
                "Format -p as one user message with the model's chat template (always so for the built-in "
                "default model)")
      ->excludes(chat);
  cmd->add_option("--system", o->system, "System message of the chat (with --chat or --template)");
  return [o, temp] {
    o->temp_given = temp->count() > 0;
    return run(*o);
  };
}

}  // namespace lightboat::cli
