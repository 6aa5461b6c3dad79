// Binding GGUF tensors to typed views, checking name, shape and dtype at load so that the
// forward pass can trust every view. Views point into the reader's bytes (mmap: zero copy).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "tensor/view.h"

namespace lightboat::model {

class WeightBinder {
 public:
  // interleave: bind matmul_matrix()'s Q4_0, Q8_0, Q4_K and F16 matrices interleaved where the active kernel
  // table reads those layouts faster (KernelTable::interleaves(type, row bytes); ModelSettings::interleave).
  explicit WeightBinder(const gguf::Reader& reader, bool interleave = false);

  // A matrix of n_rows rows of n_cols elements (ggml ne = [n_cols, n_rows]). Throws naming the
  // tensor when it is missing, has another shape, or has a dtype Lightboat does not run.
  tensor::MatrixView matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const;
  // As matrix(), or an empty view (data == nullptr) when the tensor is absent.
  tensor::MatrixView optional_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const;
  // As matrix() / optional_matrix(), for a matrix the model multiplies by: a Q4_0, Q8_0 or F16 one
  // whose rows come in whole groups of 16 is bound as Q4_0x16 / Q8_0x16 / F16x16 when the binder
  // interleaves, and a Q4_K one with short rows as Q4_Kx16 (kernels::get_row still reads its rows: a tied embedding
  // table). Its bytes are made once per Reader (Reader::derived), and the file's copy is given back
  // (FileBytes::discard).
  tensor::MatrixView matmul_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const;
  tensor::MatrixView optional_matmul_matrix(const std::string& name, int64_t n_cols, int64_t n_rows) const;
  // A vector of n elements converted to fp32 (norm weights, biases, rope factors: small).
  std::vector<float> vector(const std::string& name, int64_t n) const;
  std::vector<float> optional_vector(const std::string& name, int64_t n) const;  // empty if absent

  bool has(const std::string& name) const { return reader_.find_tensor(name) != nullptr; }

 private:
  tensor::MatrixView interleaved(const std::string& name, tensor::MatrixView m) const;

  const gguf::Reader& reader_;
  bool interleave_ = false;
};

}  // namespace lightboat::model
