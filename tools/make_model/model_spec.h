// Shapes, metadata and synthetic vocabularies of the random-weight models make_model writes:
// exact copies of real models' layouts (SmolLM2-135M, Llama-3.2-1B) so that speed and memory
// measured on them are those of the real files, without downloading any weights.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lightboat::make_model {

// Llama 3's rope frequency scaling (the "llama3" rope_type of HF configs): long wavelengths are
// stretched by `factor`, short ones kept, a smooth ramp in between.
struct Llama3Rope {
  double factor = 32.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_context = 8192.0;  // tokens
};

// A llama-architecture model layout (what convert_hf_to_gguf.py writes for it).
struct ModelSpec {
  std::string name;  // general.name
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;  // llama.context_length, tokens
  double rope_theta = 10000.0;
  float rms_eps = 1e-5f;
  bool tied = true;                       // no output.weight: the output matrix is token_embd
  bool head_dim_keys = false;             // write attention.key_length / value_length (HF configs with head_dim)
  std::optional<Llama3Rope> llama3_rope;  // rope_freqs.weight with Llama 3 factors

  int64_t head_dim() const { return n_embd / n_head; }
};

// "smollm2-135m" and "llama-3.2-1b"; nullopt for other names.
std::optional<ModelSpec> preset(std::string_view name);
std::string preset_names();

// Throws Error(kInvalidArgument) naming the field when the shape is impossible (heads that do
// not divide n_embd, an odd head_dim, a vocabulary too small for the 259 fixed tokens …).
void validate(const ModelSpec& spec);

// The head_dim/2 frequency factors of rope_freqs.weight: llama.cpp divides each rotary
// frequency theta^(-2i/head_dim) by factor i.
std::vector<float> llama3_rope_factors(const Llama3Rope& rope, double theta, int64_t head_dim);

// A synthetic SentencePiece ("llama") vocabulary of n_vocab pieces: <unk> 0, <s> 1, </s> 2, byte
// tokens <0x00>..<0xFF> at 3..258, then "▁" (the SPM space), printable ASCII, and letter strings
// with and without a leading "▁" in order of length. Scores decrease with the id, so shorter
// (earlier) pieces merge first.
struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
};
Vocab synthetic_spm_vocab(int64_t n_vocab);

}  // namespace lightboat::make_model
