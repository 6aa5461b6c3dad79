// The lightboat sub-commands. Each registers its flags on the CLI11 app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lightboat::cli {

// A registered sub-command: run() executes it after parsing and returns the exit code.
using Runner = std::function<int()>;

Runner add_run_command(CLI::App& app);
Runner add_tokenize_command(CLI::App& app);
Runner add_logits_command(CLI::App& app);
Runner add_info_command(CLI::App& app);
Runner add_quantize_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_classify_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);
Runner add_pull_command(CLI::App& app);
Runner add_models_command(CLI::App& app);
Runner add_show_command(CLI::App& app);
Runner add_rm_command(CLI::App& app);
Runner add_tag_command(CLI::App& app);

}  // namespace lightboat::cli
