// The dtype table and the half / bfloat16 conversions.
//
// The conversions must agree bit for bit with ggml's (ggml-impl.h), because block scales are stored
// as fp16 and a scale that rounds differently changes every value of a block:
//   * fp32 -> fp16 rounds to nearest, ties to even, with correct fp16 subnormals; values at or
//     above 65520 (half an ulp past the largest half, 65504) become infinity; every NaN becomes
//     the quiet NaN 0x7E00 with the input's sign (what ggml's portable conversion produces).
//   * fp16 -> fp32 is exact; a NaN keeps its payload and is made quiet.
//   * fp32 -> bf16 rounds to nearest, ties to even, keeps subnormals, and makes NaNs quiet by
//     setting bit 6 of the result (ggml's rule); bf16 -> fp32 is a 16-bit shift.
#include "tensor/dtype.h"

#include <bit>
#include <string>

#include "base/error.h"
#include "tensor/blocks.h"

namespace lightboat::tensor {
namespace {

struct Entry {
  DType type;
  DTypeTraits traits;
};

// One row per supported ggml type; block sizes follow the structs of blocks.h.
constexpr Entry kTable[] = {
    {DType::kF32, {"F32", 1, sizeof(float), false}},
    {DType::kF16, {"F16", 1, sizeof(uint16_t), false}},
    {DType::kBF16, {"BF16", 1, sizeof(uint16_t), false}},
    {DType::kF16x16, {"F16x16", 1, sizeof(uint16_t), false}},
    {DType::kQ4_0, {"Q4_0", kQK4_0, sizeof(BlockQ4_0), true}},
    {DType::kQ4_0x16, {"Q4_0x16", kQK4_0, sizeof(BlockQ4_0), true}},
    {DType::kQ4_1, {"Q4_1", kQK4_1, sizeof(BlockQ4_1), true}},
    {DType::kQ5_0, {"Q5_0", kQK5_0, sizeof(BlockQ5_0), true}},
    {DType::kQ5_1, {"Q5_1", kQK5_1, sizeof(BlockQ5_1), true}},
    {DType::kQ8_0, {"Q8_0", kQK8_0, sizeof(BlockQ8_0), true}},
    {DType::kQ8_0x16, {"Q8_0x16", kQK8_0, sizeof(BlockQ8_0), true}},
    {DType::kQ8_1, {"Q8_1", kQK8_1, sizeof(BlockQ8_1), true}},
    {DType::kQ4_K, {"Q4_K", kQK_K, sizeof(BlockQ4_K), true}},
    {DType::kQ4_Kx16, {"Q4_Kx16", kQK_K, sizeof(BlockQ4_K), true}},
    {DType::kQ5_K, {"Q5_K", kQK_K, sizeof(BlockQ5_K), true}},
    {DType::kQ6_K, {"Q6_K", kQK_K, sizeof(BlockQ6_K), true}},
    {DType::kQ8_K, {"Q8_K", kQK_K, sizeof(BlockQ8_K), true}},
};

const Entry* find_entry(uint32_t id) {
  for (const Entry& e : kTable) {
    if (static_cast<uint32_t>(e.type) == id) return &e;
  }
  return nullptr;
}

}  // namespace

const DTypeTraits& dtype_traits(DType type) {
  const Entry* e = find_entry(static_cast<uint32_t>(type));
  // A DType outside the table can only come from casting an unchecked id; dtype_from_id is the
  // checked way in.
  check(e != nullptr, ErrorKind::kUnsupported,
        [&] { return "tensor type id " + std::to_string(static_cast<uint32_t>(type)) + " is not supported"; });
  return e->traits;
}

std::optional<DType> dtype_from_id(uint32_t id) {
  const Entry* e = find_entry(id);
  if (e == nullptr || e->type == DType::kQ4_0x16 || e->type == DType::kQ8_0x16 || e->type == DType::kF16x16 ||
      e->type == DType::kQ4_Kx16) {
    return std::nullopt;  // internal
  }
  return e->type;
}

std::string_view dtype_name(DType type) { return dtype_traits(type).name; }

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;   // biased by 15
  const uint32_t mant = h & 0x3ffu;          // 10 bits
  if (exp == 0x1f) {
    // Infinity, or NaN: payload moved to the top of the fp32 mantissa, quiet bit set.
    const uint32_t quiet = mant != 0 ? 0x00400000u : 0u;
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13) | quiet);
  }
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in fp32 (mant < 2^10, scaling by a power of two).
    const float magnitude = static_cast<float>(mant) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  // Normal: rebias the exponent from 15 to 127 and widen the mantissa from 10 to 23 bits.
  return std::bit_cast<float>(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;  // magnitude bits
  if (a > 0x7f800000u) return sign | 0x7e00u;     // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;    // >= 65520 (or inf): rounds to infinity
  if (a >= 0x38800000u) {
    // The result is a normal half (>= 2^-14). Rebias the exponent (127 -> 15) in place, then drop
    // 13 mantissa bits rounding to nearest even; a carry out of the mantissa correctly bumps the
    // exponent (at most to 0x7bff + 1 ulp = 0x7c00 is excluded by the check above).
    const uint32_t r = a - ((127u - 15u) << 23);
    return sign | static_cast<uint16_t>((r + 0x0fffu + ((r >> 13) & 1u)) >> 13);
  }
  // The result is a half subnormal or zero: q = round_even(|f| * 2^24), 0 <= q <= 1024 (1024 is
  // the smallest normal, 0x0400, which the encoding gets right for free).
  const uint32_t e = a >> 23;  // biased fp32 exponent, <= 112 here
  if (e < 102) return sign;    // |f| < 2^-25: rounds to zero (a tie needs exactly 2^-25)
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;  // 24-bit significand, |f| = m * 2^(e-150)
  const uint32_t shift = 126 - e;                  // |f| * 2^24 = m >> shift, 14 <= shift <= 24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
  return sign | static_cast<uint16_t>(q);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: keep the top payload, force quiet
  }
  // Round to nearest even on the 16 dropped bits; overflow carries into infinity as it should.
  const uint32_t bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + bias) >> 16);
}

}  // namespace lightboat::tensor
