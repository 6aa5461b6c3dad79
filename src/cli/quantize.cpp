#include "cli/quantize.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "base/error.h"
#include "kernels/reference/reference.h"

namespace lightboat::cli {
namespace {

// ggml's GGML_QNT_VERSION, written as general.quantization_version.
constexpr uint32_t kQuantizationVersion = 2;

// Keys llama-quantize drops (it writes one file) or sets itself.
constexpr std::string_view kDroppedKeys[] = {"split.no", "split.count", "split.tensors.count",
                                             "general.quantization_version", "general.file_type"};

int64_t optional_int(const gguf::Reader& r, const std::string& key) {
  return static_cast<int64_t>(r.try_uint(key).value_or(0));
}

// Converts one tensor: rows of `t` (any readable type) to rows of `to`. [n_rows, row_bytes(to)].
std::vector<std::byte> convert_tensor(const gguf::TensorInfo& t, DType from, DType to, ThreadPool& pool) {
  const int64_t n_per_row = static_cast<int64_t>(t.ne[0]);
  const int64_t n_rows = static_cast<int64_t>(t.n_elements) / n_per_row;
  const size_t in_row = tensor::row_bytes(from, n_per_row);  // bytes
  const size_t out_row = tensor::row_bytes(to, n_per_row);   // bytes
  std::vector<std::byte> out(out_row * static_cast<size_t>(n_rows));
  pool.parallel_for(n_rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(n_per_row));  // one row as fp32
    for (int64_t r = begin; r < end; ++r) {
      kernels::reference::dequantize_row(from, t.data + static_cast<size_t>(r) * in_row, row.data(), n_per_row);
      // llama-quantize validates its output and rejects what NaN or infinity produce; say where.
      // (The message is built only on failure: this loop runs once per weight.)
      for (int64_t i = 0; i < n_per_row; ++i) {
        if (!std::isfinite(row[static_cast<size_t>(i)])) {
          throw Error(ErrorKind::kFormat, "tensor '" + t.name + "' holds a non-finite value (row " +
                                              std::to_string(r) + ", column " + std::to_string(i) + ")");
        }
      }
      kernels::reference::quantize_row(to, row.data(), out.data() + static_cast<size_t>(r) * out_row, n_per_row);
    }
  });
  return out;
}

}  // namespace

ModelFacts model_facts(const gguf::Reader& reader) {
  ModelFacts m;
  m.arch = reader.get_string("general.architecture");
  const std::string p = m.arch + ".";
  m.n_layer = static_cast<int64_t>(reader.get_uint(p + "block_count"));
  m.n_head = optional_int(reader, p + "attention.head_count");
  m.n_head_kv =
      reader.find(p + "attention.head_count_kv") ? optional_int(reader, p + "attention.head_count_kv") : m.n_head;
  m.n_expert = optional_int(reader, p + "expert_count");
  return m;
}

QuantizedModel quantize_model(std::shared_ptr<const gguf::Reader> input, const RecipeOptions& options, ThreadPool& pool,
                              const QuantizeLog& log) {
  QuantizedModel q;
  q.input = std::move(input);
  const gguf::Reader& in = *q.input;
  const ModelFacts facts = model_facts(in);

  // Tensors in llama.cpp's order, which the output keeps.
  std::vector<const gguf::TensorInfo*> order;
  for (const gguf::TensorInfo& t : in.tensors()) order.push_back(&t);
  std::sort(order.begin(), order.end(),
            [](const gguf::TensorInfo* a, const gguf::TensorInfo* b) { return llama_tensor_order(a->name, b->name); });
  std::vector<TensorDesc> descs;
  descs.reserve(order.size());
  for (const gguf::TensorInfo* t : order) descs.push_back({t->name, t->ne, t->type_id});
  const std::vector<TensorChoice> choices = choose_tensor_types(facts, descs, options);

  for (const gguf::MetadataEntry& e : in.metadata()) {
    if (std::find(std::begin(kDroppedKeys), std::end(kDroppedKeys), e.key) == std::end(kDroppedKeys)) {
      q.writer.set(e.key, e.value);
    }
  }
  q.writer.set_uint32("general.quantization_version", kQuantizationVersion);
  q.writer.set_uint32("general.file_type", options.file_type.id);

  // Every tensor that changes type must be readable; find out before any work is done.
  for (size_t i = 0; i < order.size(); ++i) {
    const gguf::TensorInfo& t = *order[i];
    if (choices[i].type_id == t.type_id) continue;
    const std::optional<DType> from = tensor::dtype_from_id(t.type_id);
    const std::optional<gguf::TensorTypeGeometry> g = gguf::tensor_type_geometry(t.type_id);
    check(from.has_value(), ErrorKind::kUnsupported,
          "tensor '" + t.name + "' is of type " + (g ? std::string(g->name) : std::to_string(t.type_id)) +
              ", which lightboat cannot convert");
    if (tensor::dtype_traits(*from).is_quantized && !q.report.requantized) {
      q.report.requantized = true;
      if (log) {
        log("warning: requantizing: tensors such as '" + t.name + "' are " + std::string(tensor::dtype_name(*from)) +
            " and are dequantized first; quality is lower than quantizing from F32/F16/BF16");
      }
    }
  }

  // One warning per kind of fallback (a real model has one per layer and role).
  if (log) {
    std::map<std::string, std::pair<int64_t, std::string>> fallbacks;  // note -> (count, first tensor)
    for (size_t i = 0; i < order.size(); ++i) {
      if (!choices[i].fallback) continue;
      auto& [count, first] = fallbacks[choices[i].note];
      if (count++ == 0) first = order[i]->name;
    }
    for (const auto& [note, seen] : fallbacks) {
      log("warning: " + std::to_string(seen.first) + " tensor(s) fall back, " + note + " (" + seen.second +
          (seen.first > 1 ? " …)" : ")"));
    }
  }

  q.buffers.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const gguf::TensorInfo& t = *order[i];
    const TensorChoice& c = choices[i];
    q.report.bytes_in += t.n_bytes;
    if (c.fallback) ++q.report.n_fallback;
    if (c.type_id == t.type_id) {
      q.writer.add_tensor_borrowed(t.name, t.ne, t.type_id, {t.data, t.n_bytes});
      q.report.bytes_out += t.n_bytes;
      continue;
    }
    q.buffers.push_back(convert_tensor(t, *tensor::dtype_from_id(t.type_id), static_cast<DType>(c.type_id), pool));
    const std::vector<std::byte>& bytes = q.buffers.back();
    q.writer.add_tensor_borrowed(t.name, t.ne, c.type_id, bytes);
    q.report.bytes_out += bytes.size();
    ++q.report.n_converted;
  }
  q.report.n_tensors = static_cast<int64_t>(order.size());
  return q;
}

}  // namespace lightboat::cli
