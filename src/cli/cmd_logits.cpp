// lightboat logits: evaluate a prompt and print the top-K raw logits at its last L positions,
// {"tokens":[…],"positions":[{"pos":i,"top":[[id,logit],…]},…]}.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace lightboat::cli {
namespace {

struct LogitsOptions {
  ModelOptions model;
  std::string prompt;
  int top = 10;
  int64_t last = 4;
  bool json = false;
};

int logits(const LogitsOptions& o) {
  Loaded m = load(o.model, true);
  ThreadPool pool(resolve_threads(o.model.n_threads));
  const std::vector<int32_t> ids = m.tokenizer->encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  check(!ids.empty(), ErrorKind::kInvalidArgument, "the prompt has no tokens");
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t last = std::min<int64_t>(o.last, n);
  const int64_t n_vocab = m.model->hparams().n_vocab;
  std::vector<float> out(static_cast<size_t>(last * n_vocab));  // [last, n_vocab]
  m.model->forward(ids, last, out.data(), pool);

  const int top = static_cast<int>(std::min<int64_t>(o.top, n_vocab));
  std::vector<int32_t> order(static_cast<size_t>(n_vocab));
  nlohmann::json positions = nlohmann::json::array();
  for (int64_t i = 0; i < last; ++i) {
    const float* row = &out[static_cast<size_t>(i * n_vocab)];
    std::iota(order.begin(), order.end(), 0);
    // Descending logit, ties to the lower id (as the reference's argmax).
    std::partial_sort(order.begin(), order.begin() + top, order.end(), [&](int32_t a, int32_t b) {
      return row[a] != row[b] ? row[a] > row[b] : a < b;
    });
    nlohmann::json entries = nlohmann::json::array();
    for (int k = 0; k < top; ++k) entries.push_back({order[static_cast<size_t>(k)], row[order[static_cast<size_t>(k)]]});
    positions.push_back({{"pos", n - last + i}, {"top", entries}});
  }
  nlohmann::json j{{"tokens", ids}, {"positions", positions}};
  if (o.json) {
    std::printf("%s\n", dump_json(j).c_str());
  } else {
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

}  // namespace

Runner add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "Print the largest raw logits at the last prompt positions");
  add_model_flags(*cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("--top", o->top, "Logits per position")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--last", o->last, "Positions, counted from the end of the prompt")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_flag("--json", o->json, "Compact JSON on one line");
  return [o] { return logits(*o); };
}

}  // namespace lightboat::cli
