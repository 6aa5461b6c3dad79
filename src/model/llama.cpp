// The Llama forward pass over a batch of tokens, written once for every weight format: matmul
// dispatches on the weight dtype. Per block: x += Attn(RMSNorm(x)); x += FFN(RMSNorm(x)).
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "kernels/ops.h"
#include "model/weights.h"

namespace lightboat::model {
namespace {

std::string blk(int il, const char* name) { return "blk." + std::to_string(il) + "." + name; }

int64_t resolve_n_ctx(const Hparams& h, const ModelSettings& s) {
  check(s.n_ctx >= 0 && s.n_ctx <= (int64_t{1} << 24), ErrorKind::kInvalidArgument,
        "context size " + std::to_string(s.n_ctx) + " is out of range");
  check(s.max_batch >= 1, ErrorKind::kInvalidArgument, "max_batch must be at least 1");
  return s.n_ctx > 0 ? s.n_ctx : std::min<int64_t>(h.n_ctx_train, 4096);
}

}  // namespace

LlamaModel::LlamaModel(std::shared_ptr<const gguf::Reader> reader, const ModelSettings& settings)
    : Model(read_hparams(*reader, "llama"), 0), reader_(std::move(reader)) {
  Hparams& h = hparams_;
  const WeightBinder w(*reader_);
  const gguf::TensorInfo* embd = reader_->find_tensor("token_embd.weight");
  check(embd != nullptr, ErrorKind::kNotFound, "tensor 'token_embd.weight' is missing from the model file");
  check(embd->ne.size() == 2, ErrorKind::kFormat, "tensor 'token_embd.weight' must be 2-D");
  h.n_vocab = static_cast<int64_t>(embd->ne[1]);
  n_ctx_ = resolve_n_ctx(h, settings);
  max_batch_ = std::min(settings.max_batch, n_ctx_);

  token_embd_ = w.matrix("token_embd.weight", h.n_embd, h.n_vocab);
  output_norm_ = w.vector("output_norm.weight", h.n_embd);
  output_ = w.optional_matrix("output.weight", h.n_embd, h.n_vocab);
  if (output_.data == nullptr) output_ = token_embd_;  // tied embeddings
  rope_factors_ = w.optional_vector("rope_freqs.weight", h.n_rot / 2);

  layers_.resize(static_cast<size_t>(h.n_layer));
  for (int il = 0; il < h.n_layer; ++il) {
    LlamaLayer& l = layers_[static_cast<size_t>(il)];
    l.attn_norm = w.vector(blk(il, "attn_norm.weight"), h.n_embd);
    l.wq = w.matrix(blk(il, "attn_q.weight"), h.n_embd, h.n_embd_q());
    l.wk = w.matrix(blk(il, "attn_k.weight"), h.n_embd, h.n_embd_kv());
    l.wv = w.matrix(blk(il, "attn_v.weight"), h.n_embd, h.n_embd_kv());
    l.wo = w.matrix(blk(il, "attn_output.weight"), h.n_embd_q(), h.n_embd);
    l.ffn_norm = w.vector(blk(il, "ffn_norm.weight"), h.n_embd);
    l.ffn_gate = w.matrix(blk(il, "ffn_gate.weight"), h.n_embd, h.n_ff);
    l.ffn_up = w.matrix(blk(il, "ffn_up.weight"), h.n_embd, h.n_ff);
    l.ffn_down = w.matrix(blk(il, "ffn_down.weight"), h.n_ff, h.n_embd);
  }

  const auto kv_floats = static_cast<size_t>(n_ctx_ * h.n_embd_kv());
  k_cache_.assign(static_cast<size_t>(h.n_layer), std::vector<float>(kv_floats));
  v_cache_.assign(static_cast<size_t>(h.n_layer), std::vector<float>(kv_floats));

  const auto b = static_cast<size_t>(max_batch_);
  x_.resize(b * h.n_embd);
  xn_.resize(b * h.n_embd);
  q_.resize(b * h.n_embd_q());
  attn_.resize(b * h.n_embd_q());
  gate_.resize(b * h.n_ff);
  up_.resize(b * h.n_ff);
  scores_.resize(static_cast<size_t>(h.n_head * n_ctx_));
  rope_cos_.resize(b * h.n_rot / 2);
  rope_sin_.resize(b * h.n_rot / 2);
  matmul_scratch_.reserve(max_batch_, std::max({h.n_embd, h.n_ff, h.n_embd_q()}));
}

void LlamaModel::forward(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool) {
  const auto n = static_cast<int64_t>(tokens.size());
  check(n > 0, ErrorKind::kInvalidArgument, "forward: no tokens");
  check(n_logits >= 0 && n_logits <= n, ErrorKind::kInvalidArgument, "forward: n_logits exceeds the batch");
  check(n_past_ + n <= n_ctx_, ErrorKind::kInvalidArgument,
        "context is full: " + std::to_string(n_past_) + " + " + std::to_string(n) + " tokens exceed n_ctx " +
            std::to_string(n_ctx_) + " (raise -c)");
  for (int32_t t : tokens) {
    check(t >= 0 && t < hparams_.n_vocab, ErrorKind::kInvalidArgument,
          "token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(hparams_.n_vocab) + ")");
  }
  // Chunks of max_batch_ tokens; logits rows land where the caller expects them.
  for (int64_t start = 0; start < n; start += max_batch_) {
    const int64_t len = std::min(max_batch_, n - start);
    const int64_t first_wanted = n - n_logits;  // index of the first token whose logits are wanted
    const int64_t chunk_logits = std::clamp(start + len - first_wanted, int64_t{0}, len);
    float* out = logits + std::max<int64_t>(0, start + len - chunk_logits - first_wanted) * hparams_.n_vocab;
    forward_chunk(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(len)), chunk_logits, out, pool);
  }
}

void LlamaModel::forward_chunk(std::span<const int32_t> tokens, int64_t n_logits, float* logits, ThreadPool& pool) {
  const Hparams& h = hparams_;
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t half_rot = h.n_rot / 2;
  const float* factors = rope_factors_.empty() ? nullptr : rope_factors_.data();

  for (int64_t t = 0; t < n; ++t) {
    kernels::get_row(token_embd_, tokens[static_cast<size_t>(t)], &x_[t * h.n_embd]);
    kernels::rope_angles(n_past_ + t, static_cast<int>(h.n_rot), h.rope_base, h.rope_freq_scale, factors,
                         &rope_cos_[t * half_rot], &rope_sin_[t * half_rot]);
  }

  for (int il = 0; il < h.n_layer; ++il) {
    const LlamaLayer& l = layers_[static_cast<size_t>(il)];
    float* k_new = k_cache_[static_cast<size_t>(il)].data() + n_past_ * h.n_embd_kv();  // [n, n_embd_kv]
    float* v_new = v_cache_[static_cast<size_t>(il)].data() + n_past_ * h.n_embd_kv();  // [n, n_embd_kv]

    // Attention block. K and V are written straight into the cache rows of their positions.
    for (int64_t t = 0; t < n; ++t) {
      kernels::rms_norm(&x_[t * h.n_embd], l.attn_norm.data(), h.n_embd, h.rms_eps, &xn_[t * h.n_embd]);
    }
    kernels::matmul(l.wq, xn_.data(), h.n_embd, n, q_.data(), h.n_embd_q(), matmul_scratch_, pool);
    kernels::matmul(l.wk, xn_.data(), h.n_embd, n, k_new, h.n_embd_kv(), matmul_scratch_, pool);
    kernels::matmul(l.wv, xn_.data(), h.n_embd, n, v_new, h.n_embd_kv(), matmul_scratch_, pool);
    for (int64_t t = 0; t < n; ++t) {
      const float* c = &rope_cos_[t * half_rot];
      const float* s = &rope_sin_[t * half_rot];
      kernels::rope_apply(&q_[t * h.n_embd_q()], static_cast<int>(h.n_head), static_cast<int>(h.head_dim),
                          static_cast<int>(h.n_rot), c, s, kernels::RopeMode::kNorm);
      kernels::rope_apply(k_new + t * h.n_embd_kv(), static_cast<int>(h.n_head_kv), static_cast<int>(h.head_dim),
                          static_cast<int>(h.n_rot), c, s, kernels::RopeMode::kNorm);
    }
    attention(il, n, pool);
    kernels::matmul(l.wo, attn_.data(), h.n_embd_q(), n, xn_.data(), h.n_embd, matmul_scratch_, pool);
    kernels::add(x_.data(), xn_.data(), n * h.n_embd);

    // Feed-forward block: down(silu(gate(x)) * up(x)).
    for (int64_t t = 0; t < n; ++t) {
      kernels::rms_norm(&x_[t * h.n_embd], l.ffn_norm.data(), h.n_embd, h.rms_eps, &xn_[t * h.n_embd]);
    }
    kernels::matmul(l.ffn_gate, xn_.data(), h.n_embd, n, gate_.data(), h.n_ff, matmul_scratch_, pool);
    kernels::matmul(l.ffn_up, xn_.data(), h.n_embd, n, up_.data(), h.n_ff, matmul_scratch_, pool);
    kernels::swiglu(gate_.data(), up_.data(), n * h.n_ff);
    kernels::matmul(l.ffn_down, gate_.data(), h.n_ff, n, xn_.data(), h.n_embd, matmul_scratch_, pool);
    kernels::add(x_.data(), xn_.data(), n * h.n_embd);
  }
  n_past_ += n;

  // Output head over the last n_logits tokens only.
  const int64_t first = n - n_logits;
  for (int64_t t = first; t < n; ++t) {
    kernels::rms_norm(&x_[t * h.n_embd], output_norm_.data(), h.n_embd, h.rms_eps, &xn_[t * h.n_embd]);
  }
  if (n_logits > 0) {
    kernels::matmul(output_, &xn_[first * h.n_embd], h.n_embd, n_logits, logits, h.n_vocab, matmul_scratch_, pool);
  }
}

void LlamaModel::attention(int il, int64_t n_tokens, ThreadPool& pool) {
  const Hparams& h = hparams_;
  const float* k_cache = k_cache_[static_cast<size_t>(il)].data();  // [n_ctx, n_embd_kv]
  const float* v_cache = v_cache_[static_cast<size_t>(il)].data();  // [n_ctx, n_embd_kv]
  const int64_t group = h.n_head / h.n_head_kv;  // query heads sharing one KV head
  const float scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));

  pool.parallel_for(h.n_head, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t head = h0; head < h1; ++head) {
      const int64_t kv_off = (head / group) * h.head_dim;
      float* scores = &scores_[head * n_ctx_];  // [n_ctx]
      for (int64_t t = 0; t < n_tokens; ++t) {
        const int64_t n_visible = n_past_ + t + 1;  // causal: positions 0 .. pos
        const float* q = &q_[t * h.n_embd_q() + head * h.head_dim];
        for (int64_t j = 0; j < n_visible; ++j) {
          const float* k = k_cache + j * h.n_embd_kv() + kv_off;
          float dot = 0.0f;
          for (int64_t d = 0; d < h.head_dim; ++d) dot += q[d] * k[d];
          scores[j] = dot * scale;
        }
        kernels::softmax(scores, n_visible);
        float* out = &attn_[t * h.n_embd_q() + head * h.head_dim];
        std::fill(out, out + h.head_dim, 0.0f);
        for (int64_t j = 0; j < n_visible; ++j) {
          const float* v = v_cache + j * h.n_embd_kv() + kv_off;
          const float p = scores[j];
          for (int64_t d = 0; d < h.head_dim; ++d) out[d] += p * v[d];
        }
      }
    }
  });
}

}  // namespace lightboat::model
