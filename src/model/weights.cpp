#include "model/weights.h"

#include <algorithm>
#include <thread>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"
#include "tensor/interleave.h"

namespace lightboat::model {
namespace {

std::string shape_string(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

tensor::DType supported_dtype(const gguf::TensorInfo& t) {
  auto dtype = tensor::dtype_from_id(t.type_id);
  const auto geometry = gguf::tensor_type_geometry(t.type_id);
  const std::string type_name = geometry ? std::string(geometry->name) : "id " + std::to_string(t.type_id);
  if (!dtype || tensor::dtype_traits(*dtype).name == "Q8_1" || tensor::dtype_traits(*dtype).name == "Q8_K") {
    throw Error(ErrorKind::kUnsupported, "tensor '" + t.name + "' has type " + type_name +
                                             ", which Lightboat does not support (supported: F32, F16, BF16, "
                                             "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)");
  }
  return *dtype;
}

// A matrix interleaved by `fn` (tensor/interleave.h), its groups split between up to kMaxThreads
// threads: interleaving is bound by the kernel's zeroing of fresh pages and by scattered stores,
// and at one thread it made the load of Llama-3.2-1B Q4_0 seven times longer (70 -> 520 ms).
void interleave_in_parallel(const tensor::MatrixView& m, tensor::InterleaveFn fn, std::byte* out) {
  constexpr unsigned kMaxThreads = 4;
  constexpr size_t kMinBytesPerThread = size_t{1} << 20;
  const int64_t groups = m.n_rows / tensor::kInterleavedRows;
  const size_t group_bytes = m.row_bytes * tensor::kInterleavedRows;
  const auto by_size = static_cast<unsigned>(static_cast<size_t>(groups) * group_bytes / kMinBytesPerThread);
  const unsigned threads = std::clamp(std::min(std::thread::hardware_concurrency(), by_size), 1u, kMaxThreads);
  auto part = [&](unsigned i) {
    const int64_t g0 = groups * i / threads, g1 = groups * (i + 1) / threads;
    fn(m.data + static_cast<size_t>(g0) * group_bytes, m.row_bytes, (g1 - g0) * tensor::kInterleavedRows, m.n_cols,
       out + static_cast<size_t>(g0) * group_bytes);
  };
  run_parts(threads, part);
}

}  // namespace

WeightBinder::WeightBinder(const gguf::Reader& reader, bool interleave)
    : reader_(reader), interleave_(interleave && kernels::active_kernels().interleaves()) {}

tensor::MatrixView WeightBinder::optional_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const {
  const gguf::TensorInfo* t = reader_.find_tensor(name);
  if (t == nullptr) return {};
  const bool shape_ok = (t->ne.size() == 2 && t->ne[0] == static_cast<uint64_t>(n_cols) &&
                         t->ne[1] == static_cast<uint64_t>(n_rows)) ||
                        (n_rows == 1 && t->ne.size() == 1 && t->ne[0] == static_cast<uint64_t>(n_cols));
  if (!shape_ok) {
    throw Error(ErrorKind::kFormat, "tensor '" + name + "' has shape " + shape_string(t->ne) + ", expected [" +
                                        std::to_string(n_cols) + ", " + std::to_string(n_rows) + "]");
  }
  tensor::MatrixView m;
  m.type = supported_dtype(*t);
  m.n_cols = n_cols;
  m.n_rows = n_rows;
  m.row_bytes = tensor::row_bytes(m.type, n_cols);
  m.data = t->data;
  return m;
}

tensor::MatrixView WeightBinder::matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const {
  tensor::MatrixView m = optional_matrix(name, n_cols, n_rows);
  if (m.data == nullptr) throw Error(ErrorKind::kNotFound, "tensor '" + name + "' is missing from the model file");
  return m;
}

tensor::MatrixView WeightBinder::interleaved(const std::string& name, tensor::MatrixView m) const {
  if (!interleave_ || m.data == nullptr || m.n_rows % tensor::kInterleavedRows != 0) return m;
  const tensor::MatrixView file = m;
  const tensor::Interleaving layout = tensor::interleaving_of(m.type);
  if (layout.fn == nullptr || !kernels::active_kernels().interleaves(m.type, m.row_bytes)) return m;
  m.type = layout.type;
  const size_t bytes = file.row_bytes * static_cast<size_t>(file.n_rows);
  m.data = reader_.derived(std::string(tensor::dtype_name(m.type)) + ":" + name, bytes, [&](std::byte* out) {
    interleave_in_parallel(file, layout.fn, out);
    // The file's copy is not read again by this model or any other of this Reader (they find these
    // bytes): a mapping gives its pages back, so interleaving costs no memory.
    reader_.file().discard(static_cast<size_t>(file.data - reader_.file().data()), bytes);
  });
  return m;
}

tensor::MatrixView WeightBinder::matmul_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const {
  return interleaved(name, matrix(name, n_cols, n_rows));
}

tensor::MatrixView WeightBinder::optional_matmul_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const {
  return interleaved(name, optional_matrix(name, n_cols, n_rows));
}

std::vector<float> WeightBinder::optional_vector(const std::string& name, int64_t n) const {
  tensor::MatrixView m = optional_matrix(name, n, 1);
  if (m.data == nullptr) return {};
  std::vector<float> out(static_cast<size_t>(n));
  kernels::get_row(m, 0, out.data());
  return out;
}

std::vector<float> WeightBinder::vector(const std::string& name, int64_t n) const {
  if (!has(name)) throw Error(ErrorKind::kNotFound, "tensor '" + name + "' is missing from the model file");
  return optional_vector(name, n);
}

}  // namespace lightboat::model
