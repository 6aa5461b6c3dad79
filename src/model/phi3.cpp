// Phi-3 / Phi-3.5 / Phi-4-mini: the Llama block with a fused QKV projection (attn_qkv rows
// [Q | K | V]) and a fused gate+up (ffn_up rows [gate | up]), both bound by Transformer, and
// NEOX RoPE — partial for Phi-4-mini (rope.dimension_count < head_dim). Long-context variants
// carry "long-rope": per-frequency divisors rope_factors_short / rope_factors_long, chosen by
// the allocated context (short while n_ctx <= rope.scaling.original_context_length, as
// llama.cpp does), and rope.scaling.attn_factor scaling cos and sin.
#include "base/error.h"
#include "model/architectures.h"
#include "model/llama.h"

namespace lightboat::model {

std::unique_ptr<Model> load_phi3(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const WeightBinder w(*reader);
  auto model = std::make_unique<LlamaModel>(reader, "phi3", settings);
  const Hparams& h = model->hparams();

  AttentionConfig config{.rope_mode = kernels::RopeMode::kNeox};
  if (w.has("rope_factors_long.weight") || w.has("rope_factors_short.weight")) {
    const auto original = reader->try_uint("phi3.rope.scaling.original_context_length");
    const int64_t n_ctx_orig = original ? static_cast<int64_t>(*original) : h.n_ctx_train;
    const char* which = model->n_ctx() > n_ctx_orig ? "rope_factors_long.weight" : "rope_factors_short.weight";
    config.rope_factors = w.vector(which, h.n_rot / 2);
  }
  config.rope_attn_factor = static_cast<float>(reader->try_float("phi3.rope.scaling.attn_factor").value_or(1.0));
  check(config.rope_attn_factor > 0.0f, ErrorKind::kFormat, "metadata 'phi3.rope.scaling.attn_factor' must be > 0");
  model->configure_attention(std::move(config));
  return model;
}

}  // namespace lightboat::model
