#include "model/hparams.h"

#include "base/error.h"

namespace lightboat::model {
namespace {

int64_t positive(const gguf::Reader& r, const std::string& key, int64_t max) {
  uint64_t v = r.get_uint(key);
  if (v == 0 || v > static_cast<uint64_t>(max)) {
    throw Error(ErrorKind::kFormat, "metadata '" + key + "' = " + std::to_string(v) + " is out of range (1.." +
                                        std::to_string(max) + ")");
  }
  return static_cast<int64_t>(v);
}

int64_t optional_positive(const gguf::Reader& r, const std::string& key, int64_t fallback, int64_t max) {
  return r.find(key) != nullptr ? positive(r, key, max) : fallback;
}

}  // namespace

Hparams read_hparams(const gguf::Reader& r, const std::string& arch) {
  constexpr int64_t kMaxDim = int64_t{1} << 20;  // bounds absurd metadata before any allocation
  const std::string p = arch + ".";
  Hparams h;
  h.arch = arch;
  h.n_ctx_train = positive(r, p + "context_length", int64_t{1} << 24);
  h.n_embd = positive(r, p + "embedding_length", kMaxDim);
  h.n_layer = positive(r, p + "block_count", 4096);
  h.n_ff = positive(r, p + "feed_forward_length", kMaxDim);
  h.n_head = positive(r, p + "attention.head_count", 4096);
  h.n_head_kv = optional_positive(r, p + "attention.head_count_kv", h.n_head, 4096);
  check(h.n_head % h.n_head_kv == 0, ErrorKind::kFormat, [&] {
    return "metadata: attention.head_count (" + std::to_string(h.n_head) + ") is not a multiple of head_count_kv (" +
           std::to_string(h.n_head_kv) + ")";
  });
  check(h.n_embd % h.n_head == 0 || r.find(p + "attention.key_length") != nullptr, ErrorKind::kFormat,
        "metadata: embedding_length is not a multiple of attention.head_count and key_length is absent");
  h.head_dim = optional_positive(r, p + "attention.key_length", h.n_embd / h.n_head, kMaxDim);
  const int64_t value_dim = optional_positive(r, p + "attention.value_length", h.head_dim, kMaxDim);
  check(value_dim == h.head_dim, ErrorKind::kUnsupported,
        "metadata: attention.value_length differs from key_length; not supported");
  h.n_rot = optional_positive(r, p + "rope.dimension_count", h.head_dim, h.head_dim);
  check(h.n_rot % 2 == 0, ErrorKind::kFormat, [&] { return "metadata '" + p + "rope.dimension_count' must be even"; });
  h.rms_eps = static_cast<float>(r.try_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  check(h.rms_eps > 0.0f && h.rms_eps < 1.0f, ErrorKind::kFormat,
        [&] { return "metadata '" + p + "attention.layer_norm_rms_epsilon' is out of range"; });
  h.rope_base = static_cast<float>(r.try_float(p + "rope.freq_base").value_or(10000.0));
  check(h.rope_base > 1.0f, ErrorKind::kFormat, [&] { return "metadata '" + p + "rope.freq_base' must be > 1"; });

  const std::string scaling = r.try_string(p + "rope.scaling.type").value_or("none");
  if (scaling == "linear") {
    const double factor = r.try_float(p + "rope.scaling.factor").value_or(1.0);
    check(factor > 0.0, ErrorKind::kFormat, [&] { return "metadata '" + p + "rope.scaling.factor' must be > 0"; });
    h.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none" && scaling != "llama3") {
    // "llama3" is carried by rope_freqs.weight, which the model binds; yarn/longrope come later.
    throw Error(ErrorKind::kUnsupported, "metadata '" + p + "rope.scaling.type' = '" + scaling + "' is not supported");
  }
  return h;
}

}  // namespace lightboat::model
