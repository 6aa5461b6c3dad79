// interleaving_of: the interleaved type and writer of each file type that has one.
#include "tensor/interleave.h"

#include <gtest/gtest.h>

namespace lightboat::tensor {
namespace {

TEST(Interleaving, NamesEachFileTypesLayoutAndWriter) {
  EXPECT_EQ(interleaving_of(DType::kQ4_0).type, DType::kQ4_0x16);
  EXPECT_EQ(interleaving_of(DType::kQ4_0).fn, &interleave_q4_0);
  EXPECT_EQ(interleaving_of(DType::kQ8_0).type, DType::kQ8_0x16);
  EXPECT_EQ(interleaving_of(DType::kQ8_0).fn, &interleave_q8_0);
  EXPECT_EQ(interleaving_of(DType::kQ4_K).type, DType::kQ4_Kx16);
  EXPECT_EQ(interleaving_of(DType::kQ4_K).fn, &interleave_q4_k);
  EXPECT_EQ(interleaving_of(DType::kF16).type, DType::kF16x16);
  EXPECT_EQ(interleaving_of(DType::kF16).fn, &interleave_f16);
  for (DType t : {DType::kF32, DType::kQ6_K, DType::kQ5_0, DType::kQ4_0x16}) {
    EXPECT_EQ(interleaving_of(t).type, t);
    EXPECT_EQ(interleaving_of(t).fn, nullptr);
  }
}

}  // namespace
}  // namespace lightboat::tensor
