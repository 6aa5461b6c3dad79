#include "model/model.h"

#include <algorithm>
#include <utility>

#include "base/error.h"
#include "model/architectures.h"

namespace lightboat::model {
namespace {

using Loader = std::unique_ptr<Model> (*)(std::shared_ptr<const gguf::Reader>, const ModelSettings&);

struct Architecture {
  const char* name;  // general.architecture
  Loader load;
};

constexpr Architecture kArchitectures[] = {
    {"llama", &load_llama}, {"qwen2", &load_qwen2},   {"qwen3", &load_qwen3},
    {"phi3", &load_phi3},   {"gemma", &load_gemma},   {"gemma2", &load_gemma2},
};

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const Architecture& a : kArchitectures) names.emplace_back(a.name);
  return names;
}

Model::Model(Hparams hparams, const ModelSettings& settings) : hparams_(std::move(hparams)) {
  check(settings.n_ctx >= 0 && settings.n_ctx <= (int64_t{1} << 24), ErrorKind::kInvalidArgument,
        [&] { return "context size " + std::to_string(settings.n_ctx) + " is out of range (0 .. 2^24)"; });
  check(settings.max_batch >= 1 && settings.max_batch <= (int64_t{1} << 16), ErrorKind::kInvalidArgument,
        [&] { return "batch size " + std::to_string(settings.max_batch) + " is out of range (1 .. 65536)"; });
  check(settings.kv_page_size >= 1 && settings.kv_page_size <= 4096, ErrorKind::kInvalidArgument,
        [&] { return "KV page size " + std::to_string(settings.kv_page_size) + " is out of range (1 .. 4096)"; });
  check(settings.kv_pages >= 0 && settings.kv_pages <= (int64_t{1} << 24), ErrorKind::kInvalidArgument,
        [&] { return "KV page count " + std::to_string(settings.kv_pages) + " is out of range"; });
  check(settings.kv_type == tensor::DType::kF16 || settings.kv_type == tensor::DType::kF32, ErrorKind::kInvalidArgument,
        [&] {
          return "KV cache type " + std::string(tensor::dtype_name(settings.kv_type)) +
                 " is not supported (f16 or f32)";
        });
  kv_type_ = settings.kv_type;
  n_ctx_ = settings.n_ctx > 0 ? settings.n_ctx : std::min<int64_t>(hparams_.n_ctx_train, 4096);
  max_batch_ = std::min(settings.max_batch, n_ctx_);
  kv_page_size_ = settings.kv_page_size;
  const int64_t own = (n_ctx_ + kv_page_size_ - 1) / kv_page_size_;  // pages of one full sequence
  kv_pages_ = settings.kv_pages > 0 ? settings.kv_pages : own;
  own_pages_.resize(static_cast<size_t>(std::min(own, kv_pages_)));
  for (size_t i = 0; i < own_pages_.size(); ++i) own_pages_[i] = static_cast<int32_t>(i);
  positions_.resize(static_cast<size_t>(max_batch_));
  seq_.assign(static_cast<size_t>(max_batch_), 0);
  rows_.resize(static_cast<size_t>(max_batch_));
}

void Model::forward(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool) {
  const auto n = static_cast<int64_t>(tokens.size());
  check(n > 0, ErrorKind::kInvalidArgument, "forward: no tokens");
  check(n_logits >= 0 && n_logits <= n, ErrorKind::kInvalidArgument, "forward: n_logits exceeds the batch");
  const int64_t capacity = std::min(n_ctx_, static_cast<int64_t>(own_pages_.size()) * kv_page_size_);
  check(n_past_ + n <= capacity, ErrorKind::kInvalidArgument, [&] {
    return "context is full: " + std::to_string(n_past_) + " + " + std::to_string(n) + " tokens exceed n_ctx " +
           std::to_string(capacity) + " (raise -c)";
  });
  const std::span<const int32_t> table(own_pages_);
  const int64_t first_wanted = n - n_logits;  // index of the first token whose logits are wanted
  for (int64_t start = 0; start < n; start += max_batch_) {
    const int64_t len = std::min(max_batch_, n - start);
    int64_t n_rows = 0;
    for (int64_t i = 0; i < len; ++i) {
      positions_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past_ + i);
      if (start + i >= first_wanted) rows_[static_cast<size_t>(n_rows++)] = static_cast<int32_t>(i);
    }
    const Batch batch{.tokens = tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)),
                      .positions = std::span(positions_).first(static_cast<size_t>(len)),
                      .seq = std::span(seq_).first(static_cast<size_t>(len)),
                      .page_tables = std::span(&table, 1),
                      .logit_rows = std::span(rows_).first(static_cast<size_t>(n_rows))};
    float* out = logits + std::max<int64_t>(0, start - first_wanted) * hparams_.n_vocab;
    forward_batch(batch, out, pool);
    n_past_ += len;
  }
}

void Model::truncate(int64_t pos) {
  check(pos >= 0 && pos <= n_past_, ErrorKind::kInvalidArgument, [&] {
    return "cannot truncate the KV cache to " + std::to_string(pos) + " of " + std::to_string(n_past_) + " tokens";
  });
  n_past_ = pos;
}

std::unique_ptr<Model> load_model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const std::string arch = reader->get_string("general.architecture");
  for (const Architecture& a : kArchitectures) {
    if (arch != a.name) continue;
    const gguf::Reader& file = *reader;
    std::unique_ptr<Model> model = a.load(std::move(reader), settings);
    // With the weights bound, the move onto huge pages (LoadMode::kMmapHuge) may start: it skips
    // what binding discarded (Q4_0 matrices made Q4_0x16). Once per file; later models find it on.
    file.file().start_huge_page_move();
    return model;
  }
  std::string list;
  for (const Architecture& a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a.name);
  throw Error(ErrorKind::kUnsupported, "architecture '" + arch + "' is not supported (supported: " + list + ")");
}

}  // namespace lightboat::model
