#include "cli/bench_weights.h"

#include <filesystem>
#include <map>
#include <string_view>

#include "base/error.h"
#include "tensor/dtype.h"

namespace lightboat::cli {
namespace {

constexpr std::string_view kTokenEmbd = "token_embd.weight";
constexpr std::string_view kOutput = "output.weight";

// llama.cpp's llama_ftype values (general.file_type) and their names, as llama-quantize writes
// them. Only the mixes a quantizer produces; unknown ids fall back to the dominant tensor type.
std::string_view ftype_name(int64_t id) {
  struct Entry {
    int64_t id;
    std::string_view name;
  };
  static constexpr Entry kNames[] = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"},
  };
  for (const Entry& e : kNames) {
    if (e.id == id) return e.name;
  }
  return {};
}

}  // namespace

uint64_t weight_bytes_per_token(std::span<const gguf::TensorInfo> tensors) {
  bool has_output = false;
  for (const auto& t : tensors) has_output = has_output || t.name == kOutput;
  uint64_t total = 0;  // bytes
  for (const auto& t : tensors) {
    if (t.name == kTokenEmbd && has_output) {
      // Untied: decoding reads one row of the embedding, [n_embd] elements of its type.
      check(t.ne.size() == 2 && t.ne[1] > 0, ErrorKind::kFormat,
            std::string(kTokenEmbd) + " is not a matrix; cannot size one of its rows");
      total += t.n_bytes / t.ne[1];
    } else {
      total += t.n_bytes;
    }
  }
  return total;
}

uint64_t parameter_count(std::span<const gguf::TensorInfo> tensors) {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.n_elements;
  return n;
}

std::string model_type_name(const gguf::Reader& reader) {
  if (const auto id = reader.try_int("general.file_type")) {
    const std::string_view name = ftype_name(*id);
    if (!name.empty()) return std::string(name);
  }
  // Bytes per ggml type over the matrices (1-D norms stay F32 in every quantized file).
  std::map<uint32_t, uint64_t> bytes_by_type;
  for (const auto& t : reader.tensors()) {
    if (t.ne.size() >= 2) bytes_by_type[t.type_id] += t.n_bytes;
  }
  uint32_t best = 0;
  uint64_t best_bytes = 0;
  for (const auto& [type, bytes] : bytes_by_type) {
    if (bytes > best_bytes) best = type, best_bytes = bytes;
  }
  const auto dtype = tensor::dtype_from_id(best);
  if (best_bytes == 0 || !dtype) return "?";
  return std::string(tensor::dtype_name(*dtype));
}

std::string model_label(const gguf::Reader& reader, const std::string& path) {
  if (auto name = reader.try_string("general.name"); name && !name->empty()) return *name;
  std::string stem = std::filesystem::path(path).filename().string();
  if (stem.size() > 5 && stem.ends_with(".gguf")) stem.resize(stem.size() - 5);
  return stem;
}

}  // namespace lightboat::cli
