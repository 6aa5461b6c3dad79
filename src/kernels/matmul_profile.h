// Time per matrix shape inside the forward pass (`lightboat bench --profile`): where a decode
// step's time goes, and how close each weight matrix comes to the memory bandwidth. Off by default;
// then a matmul pays one relaxed atomic load. On, each matmul call (activation conversion and the
// row pass, i.e. everything kernels::matmul does) is timed on the calling thread and added to its
// shape's line under a mutex: a diagnostic mode, not for serving.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace lightboat::kernels {

// One shape of matmul call: the weight types of its matrices (a shared-input call has up to four,
// e.g. Q, K and V), their rows together, the columns, the tokens, and the bytes of the matrices.
struct MatmulShape {
  std::array<tensor::DType, 4> types{};
  size_t n_types = 0;
  int64_t rows = 0, cols = 0, tokens = 0;
  uint64_t weight_bytes = 0;
  auto operator<=>(const MatmulShape&) const = default;
  std::string type_label() const;  // "Q4_0", "Q4_K+Q6_K" (distinct types in order)
};

struct MatmulShapeStats {
  MatmulShape shape;
  int64_t calls = 0;
  double seconds = 0;
  double weight_gbps() const {
    return seconds > 0 ? static_cast<double>(shape.weight_bytes) * static_cast<double>(calls) / seconds / 1e9 : 0;
  }
};

// Records (on) or not (off); what was recorded stays until matmul_profile_reset().
void matmul_profile_enable(bool on);
bool matmul_profile_enabled();
void matmul_profile_reset();
// Adds one call (used by kernels::matmul while recording).
void matmul_profile_record(const MatmulShape& shape, double seconds);
// The lines recorded since enabling, largest total time first.
std::vector<MatmulShapeStats> matmul_profile_lines();

}  // namespace lightboat::kernels
