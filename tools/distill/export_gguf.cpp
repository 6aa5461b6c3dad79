// distill_export: turns export.py's dump (PREFIX.json: hyper-parameters, SentencePiece vocabulary,
// chat template, tensor directory; PREFIX.bin: fp32 tensors back to back) into an F32 llama GGUF
// written by gguf::Writer, with the metadata llama.cpp's convert_hf_to_gguf.py writes for a
// SentencePiece Llama. Quantize the result with `lightboat quantize`.
//
//   distill_export --in /tmp/lbd/student -o student-F32.gguf
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "gguf/writer.h"

namespace lightboat::distill {
namespace {

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), ErrorKind::kNotFound, "cannot read '" + path + "'");
  std::vector<char> chars{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

uint32_t u32(const nlohmann::json& j, const char* key) {
  check(j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() > 0, ErrorKind::kFormat,
        std::string("dump: hparams.") + key + " must be a positive integer");
  return j[key].get<uint32_t>();
}

void write_metadata(const nlohmann::json& d, gguf::Writer& w) {
  const nlohmann::json& h = d.at("hparams");
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "model");
  w.set_string("general.name", d.at("name").get<std::string>());
  w.set_uint32("llama.block_count", u32(h, "n_layer"));
  w.set_uint32("llama.context_length", u32(h, "n_ctx"));
  w.set_uint32("llama.embedding_length", u32(h, "n_embd"));
  w.set_uint32("llama.feed_forward_length", u32(h, "n_ff"));
  w.set_uint32("llama.attention.head_count", u32(h, "n_head"));
  w.set_uint32("llama.attention.head_count_kv", u32(h, "n_head_kv"));
  w.set_float32("llama.rope.freq_base", h.at("rope_base").get<float>());
  w.set_float32("llama.attention.layer_norm_rms_epsilon", h.at("rms_eps").get<float>());
  w.set_uint32("llama.vocab_size", u32(h, "n_vocab"));
  w.set_uint32("llama.rope.dimension_count", u32(h, "n_embd") / u32(h, "n_head"));
  w.set_uint32("general.file_type", 0);  // all F32

  const auto tokens = d.at("tokens").get<std::vector<std::string>>();
  const auto scores = d.at("scores").get<std::vector<float>>();
  const auto types = d.at("types").get<std::vector<int32_t>>();
  check(tokens.size() == scores.size() && tokens.size() == types.size() && tokens.size() == u32(h, "n_vocab"),
        ErrorKind::kFormat, "dump: tokens, scores, types and hparams.n_vocab disagree in length");
  std::vector<gguf::Value> score_values, type_values;
  for (float s : scores) score_values.push_back(gguf::make_float(gguf::ValueType::kFloat32, s));
  for (int32_t t : types) type_values.push_back(gguf::make_int(gguf::ValueType::kInt32, t));
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.scores", gguf::make_array(gguf::ValueType::kFloat32, std::move(score_values)));
  w.set("tokenizer.ggml.token_type", gguf::make_array(gguf::ValueType::kInt32, std::move(type_values)));
  w.set_uint32("tokenizer.ggml.bos_token_id", d.at("bos").get<uint32_t>());
  // EOS is <|im_end|>: the chat template ends every turn with it, so generation stops there.
  w.set_uint32("tokenizer.ggml.eos_token_id", d.at("eos").get<uint32_t>());
  w.set_uint32("tokenizer.ggml.unknown_token_id", d.at("unk").get<uint32_t>());
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
  w.set_string("tokenizer.chat_template", d.at("chat_template").get<std::string>());
}

int run(const std::string& in, const std::string& out) {
  std::ifstream js(in + ".json");
  check(js.good(), ErrorKind::kNotFound, "cannot read '" + in + ".json'");
  const nlohmann::json d = nlohmann::json::parse(js);
  const std::vector<std::byte> blob = read_bytes(in + ".bin");  // fp32 tensors
  gguf::Writer w;
  write_metadata(d, w);
  for (const nlohmann::json& t : d.at("tensors")) {
    const auto name = t.at("name").get<std::string>();
    const auto ne = t.at("ne").get<std::vector<uint64_t>>();
    const auto offset = t.at("offset").get<uint64_t>();
    uint64_t n = 1;
    for (uint64_t x : ne) n *= x;
    check(offset <= blob.size() && n * sizeof(float) <= blob.size() - offset, ErrorKind::kFormat,
          "dump: tensor '" + name + "' runs past the end of " + in + ".bin");
    w.add_tensor(name, ne, 0 /* F32 */, std::span(blob).subspan(offset, n * sizeof(float)));
  }
  w.write_file(out);
  std::fprintf(stderr, "distill_export: %s: %zu tensors\n", out.c_str(), w.n_tensors());
  return 0;
}

}  // namespace
}  // namespace lightboat::distill

int main(int argc, char** argv) {
  std::string in, out;
  CLI::App app{"distill_export: write export.py's dump as an F32 llama GGUF", "distill_export"};
  app.add_option("--in", in, "Dump prefix (PREFIX.json + PREFIX.bin)")->required();
  app.add_option("-o,--output", out, "Output GGUF")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return lightboat::distill::run(in, out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distill_export: error: %s\n", e.what());
    return 1;
  }
}
