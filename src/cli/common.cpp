#include "cli/common.h"

#include "base/error.h"
#include "base/thread_pool.h"
#include "cli/model_path.h"

namespace lightboat::cli {

void resolve_model(ModelOptions& opts) {
  const ResolvedModel r = resolve_model_path(opts.path);
  opts.path = r.path;
  opts.builtin = r.builtin;
}

Loaded load(const ModelOptions& given, bool with_model) {
  ModelOptions opts = given;
  resolve_model(opts);
  const auto start = std::chrono::steady_clock::now();
  Loaded out;
  // Weights onto huge pages only when they will be computed with (a tokenizer reads a few KiB).
  out.reader = gguf::Reader::open(opts.path, load_mode(!opts.no_mmap, !opts.no_huge_pages && with_model));
  out.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(*out.reader));
  if (with_model) {
    out.model = model::load_model(
        out.reader,
        {.n_ctx = opts.n_ctx, .max_batch = opts.max_batch, .kv_type = opts.kv_type, .interleave = !opts.no_interleave});
  }
  out.load_ms = ms_since(start);
  return out;
}

int resolve_threads(int requested) {
  check(requested >= 0 && requested <= 1024, ErrorKind::kInvalidArgument,
        "-t " + std::to_string(requested) + " is out of range");
  return requested > 0 ? requested : ThreadPool::hardware_threads();
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lightboat::cli
