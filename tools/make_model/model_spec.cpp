#include "model_spec.h"

#include <cmath>
#include <numbers>
#include <unordered_set>

#include "base/error.h"

namespace lightboat::make_model {

std::optional<ModelSpec> preset(std::string_view name) {
  if (name == "smollm2-135m") {
    // HuggingFaceTB/SmolLM2-135M config.json: no head_dim key, so no key_length in the GGUF.
    return ModelSpec{.name = "SmolLM2 135M (random weights)",
                     .n_layer = 30,
                     .n_embd = 576,
                     .n_head = 9,
                     .n_head_kv = 3,
                     .n_ff = 1536,
                     .n_vocab = 49152,
                     .n_ctx_train = 8192,
                     .rope_theta = 100000.0,
                     .rms_eps = 1e-5f,
                     .tied = true};
  }
  if (name == "llama-3.2-1b") {
    // meta-llama/Llama-3.2-1B config.json: head_dim 64, rope_scaling llama3 (factor 32, low 1,
    // high 4, original 8192).
    return ModelSpec{.name = "Llama 3.2 1B (random weights)",
                     .n_layer = 16,
                     .n_embd = 2048,
                     .n_head = 32,
                     .n_head_kv = 8,
                     .n_ff = 8192,
                     .n_vocab = 128256,
                     .n_ctx_train = 131072,
                     .rope_theta = 500000.0,
                     .rms_eps = 1e-5f,
                     .tied = true,
                     .head_dim_keys = true,
                     .llama3_rope = Llama3Rope{}};
  }
  return std::nullopt;
}

std::string preset_names() {
  return "smollm2-135m, llama-3.2-1b";
}

void validate(const ModelSpec& s) {
  auto need = [](bool ok, const std::string& what) { check(ok, ErrorKind::kInvalidArgument, what); };
  need(s.n_layer >= 1 && s.n_layer <= 512, "n_layer " + std::to_string(s.n_layer) + " is out of range");
  need(s.n_head >= 1 && s.n_embd >= 1 && s.n_embd % s.n_head == 0,
       "n_embd " + std::to_string(s.n_embd) + " is not a multiple of n_head " + std::to_string(s.n_head));
  need(s.head_dim() % 2 == 0, "head_dim " + std::to_string(s.head_dim()) + " must be even (rope rotates pairs)");
  need(s.n_head_kv >= 1 && s.n_head % s.n_head_kv == 0,
       "n_head " + std::to_string(s.n_head) + " is not a multiple of n_head_kv " + std::to_string(s.n_head_kv));
  need(s.n_ff >= 1, "n_ff must be positive");
  need(s.n_vocab >= 260 && s.n_vocab <= (int64_t{1} << 24),
       "n_vocab " + std::to_string(s.n_vocab) + " must be 260 or more (259 fixed tokens) and below 2^24");
  need(s.n_ctx_train >= 1, "n_ctx must be positive");
  need(s.rope_theta > 0, "rope theta must be positive");
}

std::vector<float> llama3_rope_factors(const Llama3Rope& rope, double theta, int64_t head_dim) {
  // Wavelengths (tokens) shorter than original_context/high_freq_factor keep their frequency;
  // longer than original_context/low_freq_factor are slowed by `factor`; in between, the factor
  // moves from 1 to `factor` linearly in original_context/wavelength.
  const double long_wavelength = rope.original_context / rope.low_freq_factor;
  const double short_wavelength = rope.original_context / rope.high_freq_factor;
  std::vector<float> out(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    const double wavelength = 2 * std::numbers::pi / freq;
    double f;
    if (wavelength < short_wavelength) {
      f = 1.0;
    } else if (wavelength > long_wavelength) {
      f = rope.factor;
    } else {
      const double t =
          (rope.original_context / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
      f = 1.0 / ((1.0 - t) / rope.factor + t);
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

Vocab synthetic_spm_vocab(int64_t n_vocab) {
  constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space
  Vocab v;
  std::unordered_set<std::string> seen;
  auto add = [&](std::string piece, int32_t type) {
    if (static_cast<int64_t>(v.tokens.size()) >= n_vocab || !seen.insert(piece).second) return;
    v.scores.push_back(type == kNormal ? -static_cast<float>(v.tokens.size()) : 0.0f);
    v.tokens.push_back(std::move(piece));
    v.types.push_back(type);
  };
  add("<unk>", kUnknown);
  add("<s>", kControl);
  add("</s>", kControl);
  for (int b = 0; b < 256; ++b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    add(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">", kByte);
  }
  add(space, kNormal);
  for (char c = 0x21; c < 0x7F; ++c) add(std::string(1, c), kNormal);
  // Letter strings of length 1, 2, 3 … ("a", "▁a", "b", …, "aa", "▁aa", …) until the vocabulary
  // is full; 26^4 strings of length 4 alone exceed any real vocabulary.
  for (int len = 1; static_cast<int64_t>(v.tokens.size()) < n_vocab; ++len) {
    std::string s(static_cast<size_t>(len), 'a');
    while (static_cast<int64_t>(v.tokens.size()) < n_vocab) {
      add(space + s, kNormal);
      add(s, kNormal);
      int pos = len - 1;  // odometer increment over 'a'..'z'
      while (pos >= 0 && s[static_cast<size_t>(pos)] == 'z') s[static_cast<size_t>(pos--)] = 'a';
      if (pos < 0) break;
      ++s[static_cast<size_t>(pos)];
    }
  }
  return v;
}

}  // namespace lightboat::make_model
