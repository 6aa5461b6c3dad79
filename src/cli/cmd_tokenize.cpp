// lightboat tokenize: text to token ids, {"tokens":[…]} with --json. Special tokens written in
// the text are parsed as such; BOS/EOS are added as the model's metadata says unless --no-bos.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace lightboat::cli {
namespace {

struct TokenizeOptions {
  ModelOptions model;
  std::string text;
  std::string file;
  bool no_bos = false;
  bool json = false;
};

int tokenize(const TokenizeOptions& o) {
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    check(in.good(), ErrorKind::kNotFound, "cannot read text file '" + o.file + "'");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Loaded m = load(o.model, false);
  const std::vector<int32_t> ids = m.tokenizer->encode(text, /*add_special=*/!o.no_bos, /*parse_special=*/true);
  if (o.json) {
    std::printf("%s\n", dump_json(nlohmann::json{{"tokens", ids}}).c_str());
    return 0;
  }
  for (int32_t id : ids) {
    const std::string piece = m.tokenizer->token_to_piece(id);
    std::printf("%6d -> '%s'\n", id, piece.c_str());
  }
  return 0;
}

}  // namespace

Runner add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", o->model.path, "GGUF model or vocabulary file");
  auto* text = cmd->add_option("text", o->text, "Text to tokenize");
  cmd->add_option("-f,--file", o->file, "Read the text verbatim from a file")->excludes(text);
  cmd->add_flag("--no-bos", o->no_bos, "Add neither BOS nor EOS");
  cmd->add_flag("--json", o->json, "Print {\"tokens\":[…]}");
  return [o] { return tokenize(*o); };
}

}  // namespace lightboat::cli
