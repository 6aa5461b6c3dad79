// Gemma 2: Gemma's block with a norm after attention and after the FFN (before each residual
// add), soft-capping of attention logits and of the final logits, and sliding-window attention
// on every other layer (even layers; window from attention.sliding_window).
#include <cmath>

#include "base/error.h"
#include "model/architectures.h"
#include "model/transformer.h"

namespace lightboat::model {
namespace {

class Gemma2Model final : public Transformer {
 public:
  Gemma2Model(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings)
      : Transformer(std::move(reader), "gemma2", settings, /*tied_only=*/true) {
    final_softcap_ = static_cast<float>(reader_->try_float("gemma2.final_logit_softcapping").value_or(30.0));
    const auto attn_softcap = static_cast<float>(reader_->try_float("gemma2.attn_logit_softcapping").value_or(50.0));
    window_ = static_cast<int64_t>(reader_->try_uint("gemma2.attention.sliding_window").value_or(4096));
    check(final_softcap_ > 0.0f && attn_softcap > 0.0f && window_ > 0, ErrorKind::kFormat,
          "metadata: gemma2 soft-capping values and attention.sliding_window must be positive");
    configure_attention({.rope_mode = kernels::RopeMode::kNeox, .softcap = attn_softcap});
    output_softcap_ = final_softcap_;

    layers_.resize(static_cast<size_t>(hparams_.n_layer));
    for (int il = 0; il < hparams_.n_layer; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      Layer& l = layers_[static_cast<size_t>(il)];
      l.attn_norm = weights_.vector(b + "attn_norm.weight", hparams_.n_embd);
      l.attn = bind_attention(il);
      l.post_attn_norm = weights_.vector(b + "post_attention_norm.weight", hparams_.n_embd);
      l.ffn_norm = weights_.vector(b + "ffn_norm.weight", hparams_.n_embd);
      l.ffn = bind_ffn(il);
      l.post_ffn_norm = weights_.vector(b + "post_ffw_norm.weight", hparams_.n_embd);
    }
  }

 private:
  struct Layer {
    std::vector<float> attn_norm, post_attn_norm;  // [n_embd]
    AttentionWeights attn;
    std::vector<float> ffn_norm, post_ffn_norm;    // [n_embd]
    FfnWeights ffn;
  };

  void forward_step(const Batch& batch, float* logits) override {
    const auto n = static_cast<int64_t>(batch.tokens.size());
    const int64_t width = n * hparams_.n_embd;
    embed(batch, std::sqrt(static_cast<float>(hparams_.n_embd)));
    for (size_t il = 0; il < layers_.size(); ++il) {
      const Layer& l = layers_[il];
      const int64_t window = il % 2 == 0 ? window_ : 0;  // even layers attend locally

      norm(x_.data(), l.attn_norm, xn_.data(), n);
      attention(static_cast<int>(il), l.attn, batch, xn_.data(), tmp_.data(), window);
      norm(tmp_.data(), l.post_attn_norm, tmp_.data(), n);
      kernels::add(x_.data(), tmp_.data(), width);

      norm(x_.data(), l.ffn_norm, xn_.data(), n);
      ffn(l.ffn, xn_.data(), tmp_.data(), n, FfnActivation::kGelu);
      norm(tmp_.data(), l.post_ffn_norm, tmp_.data(), n);
      kernels::add(x_.data(), tmp_.data(), width);
    }
    output(batch, logits);
  }

  std::vector<Layer> layers_;
  float final_softcap_;
  int64_t window_;  // tokens a sliding-window layer looks back, the query included
};

}  // namespace

std::unique_ptr<Model> load_gemma2(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings) {
  return std::make_unique<Gemma2Model>(std::move(reader), settings);
}

}  // namespace lightboat::model
