// lightboat: run small language models from GGUF files. Thin sub-commands over the library;
// every failure is one clear line on stderr and a non-zero exit code (see cli/common.h).
#include <cstdio>
#include <exception>
#include <new>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"

namespace {

int exit_code(lightboat::ErrorKind kind) {
  using lightboat::ErrorKind;
  switch (kind) {
    case ErrorKind::kInvalidArgument: return lightboat::cli::kExitUsage;
    case ErrorKind::kNotFound: return lightboat::cli::kExitNotFound;
    case ErrorKind::kFormat:
    case ErrorKind::kUnsupported: return lightboat::cli::kExitBadFile;
    case ErrorKind::kIo:
    case ErrorKind::kInternal: return lightboat::cli::kExitFailure;
  }
  return lightboat::cli::kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lightboat: fast, small-memory inference of small language models (GGUF)", "lightboat"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every sub-command");
  std::vector<std::pair<CLI::App*, lightboat::cli::Runner>> commands;
  auto add = [&](lightboat::cli::Runner (*adder)(CLI::App&)) {
    lightboat::cli::Runner r = adder(app);
    commands.emplace_back(app.get_subcommands({}).back(), std::move(r));
  };
  add(&lightboat::cli::add_run_command);
  add(&lightboat::cli::add_tokenize_command);
  add(&lightboat::cli::add_logits_command);
  add(&lightboat::cli::add_info_command);
  add(&lightboat::cli::add_quantize_command);
  add(&lightboat::cli::add_bench_command);
  add(&lightboat::cli::add_classify_command);
  add(&lightboat::cli::add_eval_command);
  add(&lightboat::cli::add_serve_command);
  add(&lightboat::cli::add_pull_command);
  add(&lightboat::cli::add_models_command);
  add(&lightboat::cli::add_show_command);
  add(&lightboat::cli::add_rm_command);
  add(&lightboat::cli::add_tag_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lightboat: error: %s (see lightboat --help)\n", e.what());
    return lightboat::cli::kExitUsage;
  }
  try {
    for (auto& [sub, runner] : commands) {
      if (sub->parsed()) return runner();
    }
    return lightboat::cli::kExitUsage;
  } catch (const lightboat::Error& e) {
    std::fprintf(stderr, "lightboat: error: %s\n", e.what());
    return exit_code(e.kind());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lightboat: error: out of memory\n");
    return lightboat::cli::kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lightboat: error: %s\n", e.what());
    return lightboat::cli::kExitFailure;
  }
}
