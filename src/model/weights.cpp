#include "model/weights.h"

#include "base/error.h"
#include "kernels/matmul.h"
#include "tensor/dtype.h"

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

}  // namespace

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
