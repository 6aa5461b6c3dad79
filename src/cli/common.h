// Shared pieces of the lightboat sub-commands: model loading with timing, JSON output.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/file_bytes.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::cli {

// Exit codes: 0 ok, 1 runtime failure, 2 bad usage/argument, 3 not found, 4 bad or unsupported file.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitBadFile = 4;

struct ModelOptions {
  std::string path;      // -m
  int64_t n_ctx = 0;     // -c; 0 = the model's training context, capped at 4096
  int n_threads = 0;     // -t; 0 = all hardware threads
  bool no_mmap = false;  // --no-mmap
  bool no_huge_pages = false;  // --no-huge-pages
  int64_t max_batch = 512;
  tensor::DType kv_type = tensor::DType::kF32;  // --kv-type (bench): KV cache elements
  bool no_interleave = false;                   // --no-interleave (bench): every matrix in the file's layout
  bool builtin = false;  // set by resolve_model(): -m was absent and the built-in default model is used
};

struct Loaded {
  std::shared_ptr<const gguf::Reader> reader;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::unique_ptr<model::Model> model;  // null when only the tokenizer was asked for
  double load_ms = 0;
};

// Opens the GGUF named by opts.path (through resolve_model: empty = the built-in default model)
// and builds its tokenizer, and the model when with_model.
Loaded load(const ModelOptions& opts, bool with_model);

// Replaces opts.path by the file it names (cli/model_path.h): the built-in default model when -m
// is absent (sets opts.builtin). Throws kNotFound naming the places looked in.
void resolve_model(ModelOptions& opts);

int resolve_threads(int requested);

double ms_since(std::chrono::steady_clock::time_point start);

// Serialises JSON for stdout; invalid UTF-8 in strings is replaced, never thrown on.
std::string dump_json(const nlohmann::json& j);

}  // namespace lightboat::cli

namespace lightboat::store {
struct Manifest;
}
namespace lightboat::cli {
// A store tag as `models --json` and `show --json` print it: the manifest's fields and the blob's
// path (cmd_models.cpp).
nlohmann::json manifest_json(const store::Manifest& m, const std::string& blob_path);

}  // namespace lightboat::cli

namespace CLI {
class App;
}
namespace lightboat::cli {
// Registers -m, -c, -t, -b, --no-mmap, --no-huge-pages on a sub-command.
void add_model_flags(CLI::App& cmd, ModelOptions& m);
}  // namespace lightboat::cli
