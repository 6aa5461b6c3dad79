// `lightboat quantize` against llama-quantize: every quantized fixture that has an F32 source
// (fixtures/arch/README.md, fixtures/README.md) is rebuilt from that source with our quantizer and
// must come out as the same file, byte for byte (same tensors, order, types, data, metadata);
// where it does not, the test reports which tensors or keys differ. Then the mixture rules on
// real model shapes, and the errors.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/quantize.h"
#include "fixtures.h"

namespace lightboat::cli {
namespace {

std::string fixture(const std::string& rel) {
  return (lightboat::testing::fixtures_dir() / rel).string();
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  std::memcpy(out.data(), c.data(), c.size());
  return out;
}

RecipeOptions recipe(const std::string& type, std::vector<std::string> overrides = {}) {
  RecipeOptions o{.file_type = *find_file_type(type)};
  for (const std::string& s : overrides) o.overrides.push_back(parse_type_override(s));
  return o;
}

// Describes how two GGUF files differ (empty when they are the same model): tensor names, order,
// types, shapes and data, then metadata keys and values.
std::string describe_differences(const gguf::Reader& ours, const gguf::Reader& theirs) {
  std::string out;
  const auto& a = ours.tensors();
  const auto& b = theirs.tensors();
  if (a.size() != b.size())
    out += "tensor count " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + "\n";
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].name != b[i].name) {
      out += "tensor #" + std::to_string(i) + ": " + a[i].name + " vs " + b[i].name + "\n";
      continue;
    }
    if (a[i].type_id != b[i].type_id || a[i].ne != b[i].ne) {
      out += a[i].name + ": type " + std::to_string(a[i].type_id) + " vs " + std::to_string(b[i].type_id) + "\n";
    } else if (a[i].n_bytes != b[i].n_bytes || std::memcmp(a[i].data, b[i].data, a[i].n_bytes) != 0) {
      out += a[i].name + ": data differs\n";
    }
  }
  const auto& ma = ours.metadata();
  const auto& mb = theirs.metadata();
  for (size_t i = 0; i < std::max(ma.size(), mb.size()); ++i) {
    const std::string ka = i < ma.size() ? ma[i].key : "(none)";
    const std::string kb = i < mb.size() ? mb[i].key : "(none)";
    if (ka != kb) out += "metadata #" + std::to_string(i) + ": " + ka + " vs " + kb + "\n";
  }
  return out;
}

struct Case {
  std::string source;
  std::string expected;
  std::string type;
  std::vector<std::string> overrides;
};

std::vector<Case> fixture_cases() {
  std::vector<Case> cases;
  for (const char* t : {"Q8_0", "Q4_0", "Q6_K", "Q5_K_M", "Q4_K_M", "F16", "BF16"}) {
    cases.push_back({"arch/tiny-llama-F32.gguf", std::string("arch/tiny-llama-") + t + ".gguf", t, {}});
  }
  for (const char* arch : {"llama3", "qwen2", "qwen3", "phi3", "phi3-longrope", "gemma", "gemma2"}) {
    for (const char* t : {"Q8_0", "Q4_0"}) {
      cases.push_back({std::string("arch/tiny-") + arch + "-F32.gguf",
                       std::string("arch/tiny-") + arch + "-" + t + ".gguf",
                       t,
                       {}});
    }
  }
  // Made with llama-quantize --tensor-type ffn_down=f16 (its 172-wide rows fit no 32-block).
  for (const char* t : {"Q8_0", "Q4_0"}) {
    cases.push_back({"stories260K/stories260K-F32.gguf",
                     std::string("stories260K/stories260K-") + t + ".gguf",
                     t,
                     {"ffn_down=f16"}});
  }
  return cases;
}

TEST(QuantizeFixtures, ByteIdenticalToLlamaQuantize) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  int n_checked = 0;
  for (const Case& c : fixture_cases()) {
    SCOPED_TRACE(c.expected);
    QuantizedModel q = quantize_model(gguf::Reader::open(fixture(c.source)), recipe(c.type, c.overrides), pool);
    const std::vector<std::byte> ours = q.writer.to_bytes();
    const std::vector<std::byte> theirs = read_file(fixture(c.expected));
    if (ours != theirs) {
      const auto a = gguf::Reader::parse(FileBytes::from_memory(ours));
      const auto b = gguf::Reader::open(fixture(c.expected));
      ADD_FAILURE() << "not byte-identical to " << c.expected << " (" << ours.size() << " vs " << theirs.size()
                    << " bytes):\n"
                    << describe_differences(*a, *b);
    }
    ++n_checked;
  }
  EXPECT_EQ(n_checked, 23);
}

// Threads split rows; the bytes must not depend on how many. (qwen2: K-quant fallbacks, biases.)
TEST(QuantizeFixtures, SameBytesForAnyThreadCount) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool one(1), three(3);
  const auto src = gguf::Reader::open(fixture("arch/tiny-qwen2-F32.gguf"));
  EXPECT_EQ(quantize_model(src, recipe("Q4_K_M"), one).writer.to_bytes(),
            quantize_model(src, recipe("Q4_K_M"), three).writer.to_bytes());
}

TEST(QuantizeFixtures, RequantizesWithAWarning) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  std::vector<std::string> log;
  QuantizedModel q = quantize_model(gguf::Reader::open(fixture("arch/tiny-llama-Q8_0.gguf")), recipe("Q4_0"), pool,
                                    [&](std::string_view s) { log.emplace_back(s); });
  EXPECT_TRUE(q.report.requantized);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log[0].find("requantizing"), std::string::npos) << log[0];
  const auto out = gguf::Reader::parse(FileBytes::from_memory(q.writer.to_bytes()));
  EXPECT_EQ(out->find_tensor("blk.0.attn_q.weight")->type_id, static_cast<uint32_t>(DType::kQ4_0));
  EXPECT_EQ(out->find_tensor("output.weight")->type_id, static_cast<uint32_t>(DType::kQ6_K));
  EXPECT_EQ(out->get_uint("general.file_type"), 2u);
}

TEST(QuantizeFixtures, NoFallbackForQ8_0On172Columns) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(1);
  try {
    quantize_model(gguf::Reader::open(fixture("stories260K/stories260K-F32.gguf")), recipe("Q8_0"), pool);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("ffn_down"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--tensor-type"), std::string::npos) << e.what();
  }
}

// ---- The mixture rules on real model shapes (no data) ----

// A llama-layout model description: tensors in llama order.
std::vector<TensorDesc> llama_tensors(int n_layer, uint64_t n_embd, uint64_t n_kv, uint64_t n_ff, uint64_t n_vocab,
                                      bool tied) {
  std::vector<TensorDesc> t;
  auto add = [&](std::string name, std::vector<uint64_t> ne) { t.push_back({std::move(name), std::move(ne), 0}); };
  if (!tied) add("output.weight", {n_embd, n_vocab});
  add("output_norm.weight", {n_embd});
  add("rope_freqs.weight", {32});
  add("token_embd.weight", {n_embd, n_vocab});
  for (int il = 0; il < n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    add(p + "attn_k.weight", {n_embd, n_kv});
    add(p + "attn_norm.weight", {n_embd});
    add(p + "attn_output.weight", {n_embd, n_embd});
    add(p + "attn_q.weight", {n_embd, n_embd});
    add(p + "attn_v.weight", {n_embd, n_kv});
    add(p + "ffn_down.weight", {n_ff, n_embd});
    add(p + "ffn_gate.weight", {n_embd, n_ff});
    add(p + "ffn_norm.weight", {n_embd});
    add(p + "ffn_up.weight", {n_embd, n_ff});
  }
  return t;
}

std::string type_of(const std::vector<TensorDesc>& t, const std::vector<TensorChoice>& c, const std::string& name) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].name == name) return std::string(tensor::dtype_name(static_cast<DType>(c[i].type_id)));
  }
  return "(absent)";
}

TEST(QuantizeRecipe, Q4_K_M_Llama1BShape) {
  const auto t = llama_tensors(16, 2048, 512, 8192, 128256, /*tied=*/true);
  const auto c =
      choose_tensor_types({.arch = "llama", .n_layer = 16, .n_head = 32, .n_head_kv = 8}, t, recipe("Q4_K_M"));
  EXPECT_EQ(type_of(t, c, "token_embd.weight"), "Q6_K");  // tied: the output's rule
  EXPECT_EQ(type_of(t, c, "output_norm.weight"), "F32");
  EXPECT_EQ(type_of(t, c, "rope_freqs.weight"), "F32");
  // use_more_bits(i, 16): i < 2, i >= 14, or (i - 2) % 3 == 2.
  for (int il = 0; il < 16; ++il) {
    const bool more = il < 2 || il >= 14 || (il - 2) % 3 == 2;
    const std::string p = "blk." + std::to_string(il) + ".";
    EXPECT_EQ(type_of(t, c, p + "attn_v.weight"), more ? "Q6_K" : "Q4_K") << il;
    EXPECT_EQ(type_of(t, c, p + "ffn_down.weight"), more ? "Q6_K" : "Q4_K") << il;
    EXPECT_EQ(type_of(t, c, p + "attn_q.weight"), "Q4_K") << il;
    EXPECT_EQ(type_of(t, c, p + "attn_norm.weight"), "F32") << il;
  }
}

TEST(QuantizeRecipe, SmolLM2ShapeFallsBackOn576Columns) {
  const auto t = llama_tensors(30, 576, 192, 1536, 49152, /*tied=*/true);
  const ModelFacts m{.arch = "llama", .n_layer = 30, .n_head = 9, .n_head_kv = 3};
  auto c = choose_tensor_types(m, t, recipe("Q4_K_M"));
  EXPECT_EQ(type_of(t, c, "token_embd.weight"), "Q8_0");    // 576 % 256 != 0: output rule says Q8_0
  EXPECT_EQ(type_of(t, c, "blk.5.attn_q.weight"), "Q5_0");  // Q4_K -> Q5_0
  EXPECT_EQ(type_of(t, c, "blk.0.attn_v.weight"), "Q8_0");  // Q6_K -> Q8_0
  EXPECT_EQ(type_of(t, c, "blk.4.attn_v.weight"), "Q5_0");
  EXPECT_EQ(type_of(t, c, "blk.0.ffn_down.weight"), "Q6_K");  // 1536 columns fit
  EXPECT_EQ(type_of(t, c, "blk.4.ffn_down.weight"), "Q4_K");
  c = choose_tensor_types(m, t, recipe("Q5_K_M"));
  EXPECT_EQ(type_of(t, c, "blk.5.attn_q.weight"), "Q5_1");  // Q5_K -> Q5_1
  c = choose_tensor_types(m, t, recipe("Q4_0"));
  EXPECT_EQ(type_of(t, c, "token_embd.weight"), "Q8_0");  // Q6_K -> Q8_0
  EXPECT_EQ(type_of(t, c, "blk.5.ffn_down.weight"), "Q4_0");
  c = choose_tensor_types(m, t, recipe("Q8_0"));
  EXPECT_EQ(type_of(t, c, "token_embd.weight"), "Q8_0");
}

TEST(QuantizeRecipe, PureOverridesAndFloatTypes) {
  const auto t = llama_tensors(4, 256, 128, 512, 512, /*tied=*/false);
  const ModelFacts m{.arch = "llama", .n_layer = 4, .n_head = 8, .n_head_kv = 4};
  RecipeOptions pure = recipe("Q4_K_M");
  pure.pure = true;
  auto c = choose_tensor_types(m, t, pure);
  EXPECT_EQ(type_of(t, c, "output.weight"), "Q4_K");
  EXPECT_EQ(type_of(t, c, "blk.0.attn_v.weight"), "Q4_K");
  c = choose_tensor_types(m, t, recipe("Q4_0", {"attn_v=q8_0", "ffn_.*=Q5_1"}));
  EXPECT_EQ(type_of(t, c, "blk.1.attn_v.weight"), "Q8_0");
  EXPECT_EQ(type_of(t, c, "blk.1.ffn_up.weight"), "Q5_1");
  EXPECT_EQ(type_of(t, c, "blk.1.ffn_norm.weight"), "F32");  // not quantizable: overrides do not apply
  c = choose_tensor_types(m, t, recipe("BF16"));
  EXPECT_EQ(type_of(t, c, "output.weight"), "BF16");
  EXPECT_EQ(type_of(t, c, "token_embd.weight"), "BF16");
  EXPECT_EQ(type_of(t, c, "blk.3.ffn_norm.weight"), "F32");
}

TEST(QuantizeRecipe, NamesOrderAndErrors) {
  EXPECT_EQ(find_file_type("q4_k")->name, "Q4_K_M");
  EXPECT_EQ(find_file_type("Q5_K")->id, 17u);
  EXPECT_EQ(find_file_type("bf16")->id, 32u);
  EXPECT_FALSE(find_file_type("Q2_K").has_value());
  EXPECT_FALSE(find_tensor_type("Q8_K").has_value());
  EXPECT_THROW(parse_type_override("ffn_down"), Error);
  EXPECT_THROW(parse_type_override("ffn_down=q9_9"), Error);
  EXPECT_THROW(parse_type_override("(=f16"), Error);
  EXPECT_TRUE(llama_tensor_order("token_embd.weight", "blk.0.attn_k.weight"));
  EXPECT_TRUE(llama_tensor_order("blk.2.ffn_up.weight", "blk.10.attn_k.weight"));
  EXPECT_TRUE(llama_tensor_order("blk.2.attn_v.weight", "blk.2.ffn_down.weight"));
  EXPECT_FALSE(tensor_is_quantizable({"blk.0.attn_q.weight", {256, 1}, 0}));  // trailing 1s do not count
  EXPECT_FALSE(tensor_is_quantizable({"blk.0.ffn_gate_inp.weight", {256, 8}, 0}));
  EXPECT_FALSE(tensor_is_quantizable({"blk.0.attn_q.bias", {256, 4}, 0}));
  EXPECT_TRUE(tensor_is_quantizable({"blk.0.ffn_gate_exps.weight", {256, 512, 8}, 0}));
}

TEST(QuantizeRecipe, MoEAndSeventyB) {
  // 8 experts: attn_v and attn_k Q8_0, attn_output Q5_K in Q4_K_M.
  auto t = llama_tensors(2, 256, 256, 512, 512, false);
  auto c = choose_tensor_types({.arch = "llama", .n_layer = 2, .n_head = 8, .n_head_kv = 8, .n_expert = 8}, t,
                               recipe("Q4_K_M"));
  EXPECT_EQ(type_of(t, c, "blk.0.attn_v.weight"), "Q8_0");
  EXPECT_EQ(type_of(t, c, "blk.0.attn_k.weight"), "Q8_0");
  EXPECT_EQ(type_of(t, c, "blk.0.attn_output.weight"), "Q5_K");
  // Llama 70B (80 layers, GQA): attn_v that would be Q4_K becomes Q5_K.
  t = llama_tensors(80, 256, 128, 512, 512, false);
  c = choose_tensor_types({.arch = "llama", .n_layer = 80, .n_head = 64, .n_head_kv = 8}, t, recipe("Q4_K_M"));
  EXPECT_EQ(type_of(t, c, "blk.11.attn_v.weight"), "Q5_K");
  EXPECT_EQ(type_of(t, c, "blk.12.attn_v.weight"), "Q6_K");  // (12 - 10) % 3 == 2
}

}  // namespace
}  // namespace lightboat::cli
