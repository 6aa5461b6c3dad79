// The ggml type table against llama.cpp's block geometry (ggml-common.h static_asserts).
#include <gtest/gtest.h>

#include "gguf/types.h"

namespace lightboat::gguf {
namespace {

struct Expected {
  uint32_t id;
  const char* name;
  uint32_t block_elems;
  uint32_t block_bytes;
};

TEST(GgufTypes, GeometryMatchesGgml) {
  const Expected kAll[] = {
      {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
      {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 36},
      {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
      {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
      {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},  {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
      {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
      {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
      {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
      {40, "NVFP4", 64, 36},   {41, "Q1_0", 128, 18},    {42, "Q2_0", 64, 18},
  };
  for (const Expected& e : kAll) {
    auto g = tensor_type_geometry(e.id);
    ASSERT_TRUE(g.has_value()) << e.id;
    EXPECT_EQ(g->name, e.name) << e.id;
    EXPECT_EQ(g->block_elems, e.block_elems) << e.name;
    EXPECT_EQ(g->block_bytes, e.block_bytes) << e.name;
  }
}

TEST(GgufTypes, RemovedAndUnknownIdsHaveNoGeometry) {
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 43u, 1000u, 0xFFFFFFFFu}) {
    EXPECT_FALSE(tensor_type_geometry(id).has_value()) << id;
  }
}

TEST(GgufTypes, ValueTypeNamesAndSizes) {
  EXPECT_EQ(value_type_name(ValueType::kUint8), "uint8");
  EXPECT_EQ(value_type_name(ValueType::kFloat64), "float64");
  EXPECT_EQ(value_type_name(ValueType::kArray), "array");
  EXPECT_EQ(value_type_name(static_cast<ValueType>(99)), "unknown");
  EXPECT_TRUE(is_value_type(12));
  EXPECT_FALSE(is_value_type(13));
  EXPECT_EQ(value_type_size(ValueType::kBool), 1u);
  EXPECT_EQ(value_type_size(ValueType::kInt16), 2u);
  EXPECT_EQ(value_type_size(ValueType::kFloat32), 4u);
  EXPECT_EQ(value_type_size(ValueType::kUint64), 8u);
  EXPECT_EQ(value_type_size(ValueType::kString), 0u);
}

}  // namespace
}  // namespace lightboat::gguf
