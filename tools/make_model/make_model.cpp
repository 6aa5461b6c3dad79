// make_model: writes a random-weight GGUF model with the exact layout, shapes and metadata of a
// real one (llama architecture), for benchmarks and tests that need real sizes but no download.
//
//   make_model --preset llama-3.2-1b --type F16 -o llama-3.2-1b-F16.gguf
//   make_model --preset smollm2-135m --n-layer 2 --n-embd 64 --n-head 4 --n-head-kv 2
//              --n-ff 128 --n-vocab 512 -o tiny.gguf
//
// Weights: every matrix N(0, σ) with σ = 1/sqrt(fan_in) for the matrices that read the residual
// stream (attn_q/k/v, ffn_gate/up) so their outputs have unit RMS, twice that for the ones that
// write back into it (attn_output, ffn_down) so each layer, not the token's embedding, dominates
// the stream, and 2.3/sqrt(n_embd) for token_embd (and output), which puts the logits' RMS near
// 2.3 as in the shared fixtures. Norm weights N(1, 0.1). The values depend only on --seed and the
// tensor name (one generator per row), not on the thread count. Norms and rope factors are F32;
// matrices are in --type (F32, F16 or BF16; quantize with `lightboat quantize`).
//
// Tokenizer: a synthetic SentencePiece vocabulary of the model's size (model_spec.h), not the real
// one; it loads and tokenizes in Lightboat and in llama.cpp.
#include <CLI/CLI.hpp>

#include <strings.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numbers>

#include "base/error.h"
#include "base/thread_pool.h"
#include "gguf/writer.h"
#include "kernels/reference/reference.h"
#include "model_spec.h"
#include "tensor/dtype.h"

namespace lightboat::make_model {
namespace {

using tensor::DType;

struct Options {
  std::string preset = "smollm2-135m";
  std::string output;
  std::string type = "F16";
  uint64_t seed = 42;
  int n_threads = 0;
  // Shape overrides (0 / empty = the preset's).
  int64_t n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0, n_ctx = 0;
  double rope_theta = 0;
  double rope_original_context = 0;
  bool untied = false;
  bool no_rope_factors = false;
  std::string name;
};

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t name_hash(const std::string& s) {  // FNV-1a
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h;
}

// n values of mean + sigma·N(0, 1) (Box–Muller on 24-bit uniforms; tails stop near 5.8σ).
void fill_normal(uint64_t state, float mean, float sigma, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t bits = splitmix64(state);
    const float u1 = static_cast<float>((bits >> 40) + 1) * 0x1p-24f;  // (0, 1]
    const float u2 = static_cast<float>((bits >> 8) & 0xFFFFFF) * 0x1p-24f;
    const float r = std::sqrt(-2.0f * std::log(u1));
    const float a = 2.0f * std::numbers::pi_v<float> * u2;
    out[i] = mean + sigma * r * std::cos(a);
    if (i + 1 < n) out[i + 1] = mean + sigma * r * std::sin(a);
  }
}

class ModelWriter {
 public:
  ModelWriter(uint64_t seed, DType matrix_type, ThreadPool& pool) : seed_(seed), type_(matrix_type), pool_(pool) {}

  // A tensor of shape ne (ne[0] = row length) filled with mean + sigma·N(0, 1), stored as `type`.
  void random(const std::string& name, std::vector<uint64_t> ne, float mean, float sigma, DType type) {
    const int64_t row = static_cast<int64_t>(ne[0]);
    const int64_t n_rows = ne.size() > 1 ? static_cast<int64_t>(ne[1]) : 1;
    const size_t row_bytes = tensor::row_bytes(type, row);  // bytes
    std::vector<std::byte>& data = buffers_.emplace_back(row_bytes * static_cast<size_t>(n_rows));
    const uint64_t tensor_seed = name_hash(name) ^ (seed_ * 0xD1342543DE82EF95ull);
    pool_.parallel_for(n_rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> values(static_cast<size_t>(row));
      for (int64_t r = begin; r < end; ++r) {
        uint64_t state = tensor_seed + static_cast<uint64_t>(r) * 0x9E3779B97F4A7C15ull;
        fill_normal(splitmix64(state), mean, sigma, values.data(), row);
        kernels::reference::quantize_row(type, values.data(), data.data() + static_cast<size_t>(r) * row_bytes, row);
      }
    });
    writer_.add_tensor_borrowed(name, std::move(ne), static_cast<uint32_t>(type), data);
  }
  void matrix(const std::string& name, uint64_t n_in, uint64_t n_out, float sigma) {
    random(name, {n_in, n_out}, 0.0f, sigma, type_);
  }
  void norm(const std::string& name, uint64_t n) { random(name, {n}, 1.0f, 0.1f, DType::kF32); }
  void f32(const std::string& name, const std::vector<float>& values) {
    std::vector<std::byte>& data = buffers_.emplace_back(values.size() * sizeof(float));
    std::memcpy(data.data(), values.data(), data.size());
    writer_.add_tensor_borrowed(name, {values.size()}, static_cast<uint32_t>(DType::kF32), data);
  }
  gguf::Writer& gguf() { return writer_; }

 private:
  uint64_t seed_;
  DType type_;
  ThreadPool& pool_;
  std::vector<std::vector<std::byte>> buffers_;  // one per tensor; the writer borrows them
  gguf::Writer writer_;
};

void write_metadata(const ModelSpec& s, uint32_t file_type, gguf::Writer& w) {
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "model");
  w.set_string("general.name", s.name);
  w.set_uint32("llama.block_count", static_cast<uint32_t>(s.n_layer));
  w.set_uint32("llama.context_length", static_cast<uint32_t>(s.n_ctx_train));
  w.set_uint32("llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  w.set_uint32("llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  w.set_uint32("llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  w.set_uint32("llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  w.set_float32("llama.rope.freq_base", static_cast<float>(s.rope_theta));
  w.set_float32("llama.attention.layer_norm_rms_epsilon", s.rms_eps);
  if (s.head_dim_keys) {
    w.set_uint32("llama.attention.key_length", static_cast<uint32_t>(s.head_dim()));
    w.set_uint32("llama.attention.value_length", static_cast<uint32_t>(s.head_dim()));
  }
  w.set_uint32("llama.vocab_size", static_cast<uint32_t>(s.n_vocab));
  w.set_uint32("llama.rope.dimension_count", static_cast<uint32_t>(s.head_dim()));
  w.set_uint32("general.file_type", file_type);
  w.set_uint32("general.quantization_version", 2);

  const Vocab v = synthetic_spm_vocab(s.n_vocab);
  std::vector<gguf::Value> scores, types;
  for (float x : v.scores) scores.push_back(gguf::make_float(gguf::ValueType::kFloat32, x));
  for (int32_t t : v.types) types.push_back(gguf::make_int(gguf::ValueType::kInt32, t));
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set("tokenizer.ggml.scores", gguf::make_array(gguf::ValueType::kFloat32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::kInt32, std::move(types)));
  w.set_uint32("tokenizer.ggml.bos_token_id", 1);
  w.set_uint32("tokenizer.ggml.eos_token_id", 2);
  w.set_uint32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

// Tensors in the order convert_hf_to_gguf.py writes a Llama checkpoint's.
void write_tensors(const ModelSpec& s, ModelWriter& m) {
  const auto embd = static_cast<uint64_t>(s.n_embd);
  const auto kv = static_cast<uint64_t>(s.n_head_kv * s.head_dim());
  const auto ff = static_cast<uint64_t>(s.n_ff);
  const float read = 1.0f / std::sqrt(static_cast<float>(embd));
  const float embed = 2.3f / std::sqrt(static_cast<float>(embd));
  if (s.llama3_rope) m.f32("rope_freqs.weight", llama3_rope_factors(*s.llama3_rope, s.rope_theta, s.head_dim()));
  m.matrix("token_embd.weight", embd, static_cast<uint64_t>(s.n_vocab), embed);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    m.norm(p + "attn_norm.weight", embd);
    m.matrix(p + "attn_q.weight", embd, embd, read);
    m.matrix(p + "attn_k.weight", embd, kv, read);
    m.matrix(p + "attn_v.weight", embd, kv, read);
    m.matrix(p + "attn_output.weight", embd, embd, 2.0f / std::sqrt(static_cast<float>(embd)));
    m.norm(p + "ffn_norm.weight", embd);
    m.matrix(p + "ffn_gate.weight", embd, ff, read);
    m.matrix(p + "ffn_up.weight", embd, ff, read);
    m.matrix(p + "ffn_down.weight", ff, embd, 2.0f / std::sqrt(static_cast<float>(ff)));
  }
  m.norm("output_norm.weight", embd);
  if (!s.tied) m.matrix("output.weight", embd, static_cast<uint64_t>(s.n_vocab), embed);
}

ModelSpec resolve_spec(const Options& o) {
  std::optional<ModelSpec> p = preset(o.preset);
  check(p.has_value(), ErrorKind::kInvalidArgument,
        "unknown preset '" + o.preset + "'; expected one of " + preset_names());
  ModelSpec s = *p;
  auto take = [](int64_t v, int64_t& field) {
    if (v != 0) field = v;
  };
  take(o.n_layer, s.n_layer);
  take(o.n_embd, s.n_embd);
  take(o.n_head, s.n_head);
  take(o.n_head_kv, s.n_head_kv);
  take(o.n_ff, s.n_ff);
  take(o.n_vocab, s.n_vocab);
  take(o.n_ctx, s.n_ctx_train);
  if (o.rope_theta != 0) s.rope_theta = o.rope_theta;
  if (o.untied) s.tied = false;
  if (o.no_rope_factors) s.llama3_rope.reset();
  if (o.rope_original_context != 0) {
    if (!s.llama3_rope) s.llama3_rope = Llama3Rope{};
    s.llama3_rope->original_context = o.rope_original_context;
  }
  if (!o.name.empty()) s.name = o.name;
  validate(s);
  return s;
}

int run(const Options& o) {
  const auto start = std::chrono::steady_clock::now();
  const ModelSpec spec = resolve_spec(o);
  // The matrix type and its general.file_type (llama_ftype).
  struct Target {
    std::string_view name;
    DType type;
    uint32_t file_type;
  };
  static constexpr Target kTargets[] = {{"F32", DType::kF32, 0}, {"F16", DType::kF16, 1}, {"BF16", DType::kBF16, 32}};
  const Target* target = nullptr;
  for (const Target& k : kTargets) {
    if (strcasecmp(std::string(k.name).c_str(), o.type.c_str()) == 0) target = &k;
  }
  check(target != nullptr, ErrorKind::kInvalidArgument,
        "--type '" + o.type + "': expected F32, F16 or BF16 (quantize with `lightboat quantize`)");
  const DType type = target->type;
  const uint32_t file_type = target->file_type;
  check(!o.output.empty(), ErrorKind::kInvalidArgument, "no output file: pass -o FILE.gguf");
  ThreadPool pool(o.n_threads > 0 ? o.n_threads : ThreadPool::hardware_threads());
  ModelWriter m(o.seed, type, pool);
  write_metadata(spec, file_type, m.gguf());
  write_tensors(spec, m);
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.gguf().write_file(o.output);
  const double all_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "make_model: %s: %s, %lld layers, n_embd %lld, %lld/%lld heads, n_ff %lld, vocab %lld, %s: "
               "%.1f MiB; generated in %.2f s, written in %.2f s\n",
               o.output.c_str(), spec.name.c_str(), static_cast<long long>(spec.n_layer),
               static_cast<long long>(spec.n_embd), static_cast<long long>(spec.n_head),
               static_cast<long long>(spec.n_head_kv), static_cast<long long>(spec.n_ff),
               static_cast<long long>(spec.n_vocab), std::string(tensor::dtype_name(type)).c_str(),
               static_cast<double>(std::filesystem::file_size(o.output)) / (1 << 20), gen_s, all_s - gen_s);
  return 0;
}

}  // namespace
}  // namespace lightboat::make_model

int main(int argc, char** argv) {
  using lightboat::make_model::Options;
  Options o;
  CLI::App app{"make_model: write a random-weight GGUF with a real model's layout (llama architecture)", "make_model"};
  app.add_option("--preset", o.preset, "Layout: " + lightboat::make_model::preset_names())->capture_default_str();
  app.add_option("-o,--output", o.output, "Output GGUF")->required();
  app.add_option("--type", o.type, "Matrix type: F32, F16 or BF16")->capture_default_str();
  app.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  app.add_option("-t,--threads", o.n_threads, "Threads (default: all hardware threads)");
  app.add_option("--n-layer", o.n_layer, "Override: layers");
  app.add_option("--n-embd", o.n_embd, "Override: embedding width");
  app.add_option("--n-head", o.n_head, "Override: query heads");
  app.add_option("--n-head-kv", o.n_head_kv, "Override: key/value heads");
  app.add_option("--n-ff", o.n_ff, "Override: feed-forward width");
  app.add_option("--n-vocab", o.n_vocab, "Override: vocabulary size (>= 260)");
  app.add_option("--n-ctx", o.n_ctx, "Override: training context (llama.context_length)");
  app.add_option("--rope-theta", o.rope_theta, "Override: rope base frequency");
  app.add_option("--rope-original-context", o.rope_original_context,
                 "Llama 3 rope factors with this original context (adds rope_freqs.weight)");
  app.add_flag("--no-rope-factors", o.no_rope_factors, "Omit rope_freqs.weight");
  app.add_flag("--untied", o.untied, "Write a separate output.weight");
  app.add_option("--name", o.name, "general.name");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return lightboat::make_model::run(o);
  } catch (const lightboat::Error& e) {
    std::fprintf(stderr, "make_model: error: %s\n", e.what());
    return e.kind() == lightboat::ErrorKind::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_model: error: %s\n", e.what());
    return 1;
  }
}
