// The Llama forward pass, written once for every weight format (matmul dispatches on dtype) and
// for every member of the family (the weights bound and the configuration say what differs).
#include "model/llama.h"

#include <cmath>

#include "model/architectures.h"

namespace lightboat::model {

LlamaModel::LlamaModel(std::shared_ptr<const gguf::Reader> reader, const std::string& arch,
                       const ModelSettings& settings, const LlamaOptions& options)
    : Transformer(std::move(reader), arch, settings, options.tied_only), options_(options) {
  layers_.resize(static_cast<size_t>(hparams_.n_layer));
  for (int il = 0; il < hparams_.n_layer; ++il) {
    Layer& l = layers_[static_cast<size_t>(il)];
    l.attn_norm = weights_.vector("blk." + std::to_string(il) + ".attn_norm.weight", hparams_.n_embd);
    l.attn = bind_attention(il);
    l.ffn_norm = weights_.vector("blk." + std::to_string(il) + ".ffn_norm.weight", hparams_.n_embd);
    l.ffn = bind_ffn(il);
  }
}

void LlamaModel::forward_step(const Batch& batch, float* logits) {
  const auto n = static_cast<int64_t>(batch.tokens.size());
  const int64_t width = n * hparams_.n_embd;
  embed(batch, options_.scale_embeddings ? std::sqrt(static_cast<float>(hparams_.n_embd)) : 1.0f);
  for (size_t il = 0; il < layers_.size(); ++il) {
    const Layer& l = layers_[il];
    norm(x_.data(), l.attn_norm, xn_.data(), n);
    attention(static_cast<int>(il), l.attn, batch, xn_.data(), tmp_.data());
    kernels::add(x_.data(), tmp_.data(), width);

    norm(x_.data(), l.ffn_norm, xn_.data(), n);
    ffn(l.ffn, xn_.data(), tmp_.data(), n, options_.activation);
    kernels::add(x_.data(), tmp_.data(), width);
  }
  output(batch, logits);
}

std::unique_ptr<Model> load_llama(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  const WeightBinder w(*reader);
  auto model = std::make_unique<LlamaModel>(reader, "llama", settings);
  // Llama 3.1/3.2 carry their "llama3" rope scaling as per-frequency divisors in rope_freqs.
  model->configure_attention({.rope_mode = kernels::RopeMode::kNorm,
                              .rope_factors = w.optional_vector("rope_freqs.weight", model->hparams().n_rot / 2)});
  return model;
}

}  // namespace lightboat::model
