// lightboat quantize IN.gguf OUT.gguf TYPE: llama-quantize's file types and per-tensor mixtures,
// bit-compatible with it (see quantize.h). OUT appears only when complete (written to OUT.tmp,
// then renamed); progress and warnings go to stderr, nothing to stdout.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/quantize.h"

namespace lightboat::cli {
namespace {

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string type;
  int n_threads = 0;
  bool pure = false;
  bool allow_requantize = false;  // accepted for llama-quantize compatibility; always allowed
  std::vector<std::string> tensor_types;
  std::string output_tensor_type;
  std::string token_embedding_type;
};

DType parse_type_option(const std::string& flag, const std::string& value) {
  const std::optional<DType> t = find_tensor_type(value);
  check(t.has_value(), ErrorKind::kInvalidArgument, flag + " '" + value + "': unknown tensor type");
  return *t;
}

int quantize(const QuantizeOptions& o) {
  const std::optional<FileType> ft = find_file_type(o.type);
  check(ft.has_value(), ErrorKind::kInvalidArgument,
        "unsupported quantization type '" + o.type + "'; expected one of " + file_type_names());
  RecipeOptions recipe{.file_type = *ft, .pure = o.pure};
  for (const std::string& s : o.tensor_types) recipe.overrides.push_back(parse_type_override(s));
  if (!o.output_tensor_type.empty())
    recipe.output_type = parse_type_option("--output-tensor-type", o.output_tensor_type);
  if (!o.token_embedding_type.empty()) {
    recipe.token_embd_type = parse_type_option("--token-embedding-type", o.token_embedding_type);
  }
  std::error_code ec;
  check(!std::filesystem::equivalent(o.input, o.output, ec), ErrorKind::kInvalidArgument,
        "the output '" + o.output + "' is the input file; choose another path");

  const auto start = std::chrono::steady_clock::now();
  const int n_threads = resolve_threads(o.n_threads);
  ThreadPool pool(n_threads);
  QuantizedModel q = quantize_model(gguf::Reader::open(o.input), recipe, pool, [](std::string_view line) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
  });
  const double quantize_ms = ms_since(start);
  q.writer.write_file(o.output);
  const QuantizeReport& r = q.report;
  std::fprintf(stderr,
               "quantize: %s -> %s (%s, general.file_type %u): %lld tensors, %lld converted, %lld fallback(s); "
               "%.2f MiB -> %.2f MiB; quantized in %.2f s, written in %.2f s, %d thread(s)\n",
               o.input.c_str(), o.output.c_str(), std::string(ft->name).c_str(), ft->id,
               static_cast<long long>(r.n_tensors), static_cast<long long>(r.n_converted),
               static_cast<long long>(r.n_fallback), static_cast<double>(r.bytes_in) / (1 << 20),
               static_cast<double>(r.bytes_out) / (1 << 20), quantize_ms / 1000, (ms_since(start) - quantize_ms) / 1000,
               n_threads);
  return 0;
}

}  // namespace

Runner add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* cmd =
      app.add_subcommand("quantize", "Write a GGUF model with its weights in another type (as llama-quantize)");
  cmd->add_option("input", o->input, "Input GGUF (F32/F16/BF16; other types are dequantized first)")->required();
  cmd->add_option("output", o->output, "Output GGUF (written to OUTPUT.tmp, then renamed)")->required();
  cmd->add_option("type", o->type, "Target: " + file_type_names())->required();
  cmd->add_option("-t,--threads", o->n_threads, "Threads (default: all hardware threads)");
  cmd->add_option("--tensor-type", o->tensor_types,
                  "PATTERN=TYPE: tensors whose name contains PATTERN (a regex) get TYPE (repeatable)");
  cmd->add_option("--output-tensor-type", o->output_tensor_type, "Type of output.weight");
  cmd->add_option("--token-embedding-type", o->token_embedding_type, "Type of token_embd.weight");
  cmd->add_flag("--pure", o->pure, "Every quantizable tensor gets TYPE's base type (no per-tensor mixture)");
  cmd->add_flag("--allow-requantize", o->allow_requantize,
                "Accepted for llama-quantize compatibility: quantized inputs are always dequantized, with a warning");
  return [o] { return quantize(*o); };
}

}  // namespace lightboat::cli
