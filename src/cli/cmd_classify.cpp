// lightboat classify: label-likelihood classification through the public engine API. Each text
// is scored against every label (the label as the continuation of the prompt template); the
// texts are classified concurrently, so their steps are batched together by the engine.
#include <cstdio>
#include <future>
#include <memory>
#include <sstream>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "lightboat/engine.h"

namespace lightboat::cli {
namespace {

struct ClassifyOptions {
  ModelOptions model;
  std::string labels;  // comma-separated
  std::string prompt_template;
  std::vector<std::string> texts;
  bool json = false;
};

std::vector<std::string> split_labels(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string label;
  while (std::getline(in, label, ',')) {
    check(!label.empty(), ErrorKind::kInvalidArgument, "--labels: an empty label in '" + list + "'");
    out.push_back(label);
  }
  check(!out.empty(), ErrorKind::kInvalidArgument, "--labels: give at least one label");
  return out;
}

int classify(ClassifyOptions& o) {
  const std::vector<std::string> labels = split_labels(o.labels);
  resolve_model(o.model);
  auto engine = Engine::open({.model_path = o.model.path,
                              .use_mmap = !o.model.no_mmap,
                              .huge_pages = !o.model.no_huge_pages,
                              .threads = o.model.n_threads,
                              .n_ctx = o.model.n_ctx});
  std::vector<std::future<std::vector<LabelScore>>> results;
  for (const std::string& text : o.texts) {
    results.push_back(std::async(std::launch::async, [&engine, &labels, &o, text] {
      return engine->classify({.text = text, .labels = labels, .prompt_template = o.prompt_template});
    }));
  }
  nlohmann::json all = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const std::vector<LabelScore> scores = results[i].get();
    nlohmann::json entry{{"text", o.texts[i]}, {"scores", nlohmann::json::array()}};
    const LabelScore* best = &scores.front();
    for (const LabelScore& s : scores) {
      entry["scores"].push_back({{"label", s.label}, {"logprob", s.logprob}, {"probability", s.probability}});
      if (s.probability > best->probability) best = &s;
    }
    entry["label"] = best->label;
    if (!o.json) {
      std::printf("%s\t%s", best->label.c_str(), o.texts[i].c_str());
      for (const LabelScore& s : scores) std::printf("\t%s=%.4f", s.label.c_str(), s.probability);
      std::printf("\n");
    }
    all.push_back(std::move(entry));
  }
  if (o.json) std::printf("%s\n", dump_json(nlohmann::json{{"results", all}}).c_str());
  return 0;
}

}  // namespace

Runner add_classify_command(CLI::App& app) {
  auto o = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = app.add_subcommand("classify", "Score labels as continuations of each text (label likelihood)");
  add_model_flags(*cmd, o->model);
  cmd->add_option("--labels", o->labels, "Comma-separated labels")->required();
  cmd->add_option("--template", o->prompt_template, "Prompt around the text; {text} marks where (default \"{text}\\nLabel: \")");
  cmd->add_option("texts", o->texts, "Texts to classify")->required();
  cmd->add_flag("--json", o->json, "Print {\"results\":[{text,label,scores:[{label,logprob,probability}]}]}");
  return [o] { return classify(*o); };
}

}  // namespace lightboat::cli
