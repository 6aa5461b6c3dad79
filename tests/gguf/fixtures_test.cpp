// Real files made by llama.cpp and gguf-py parse, with the metadata and tensors they are known to
// hold; mmap and read modes agree; the writer reproduces llama.cpp's files byte for byte.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "fixtures.h"
#include "sample.h"

namespace lightboat::gguf {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& rel) { return ::lightboat::testing::fixtures_dir() / rel; }

void expect_same_reader(const Reader& a, const Reader& b) {
  EXPECT_EQ(a.version(), b.version());
  EXPECT_EQ(a.alignment(), b.alignment());
  EXPECT_EQ(a.data_offset(), b.data_offset());
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    EXPECT_EQ(a.metadata()[i].key, b.metadata()[i].key);
    EXPECT_TRUE(testing::same_value(a.metadata()[i].value, b.metadata()[i].value)) << a.metadata()[i].key;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const TensorInfo& x = a.tensors()[i];
    const TensorInfo& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.ne, y.ne);
    EXPECT_EQ(x.type_id, y.type_id);
    EXPECT_EQ(x.offset, y.offset);
    ASSERT_EQ(x.n_bytes, y.n_bytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.n_bytes), 0) << x.name;
  }
}

// Opens `path` both ways, checks that they agree and returns the mmap reader.
std::shared_ptr<const Reader> open_both(const fs::path& path) {
  auto mapped = Reader::open(path.string(), LoadMode::kMmap);
  auto read = Reader::open(path.string(), LoadMode::kRead);
  EXPECT_EQ(mapped->file().mode(), LoadMode::kMmap);
  EXPECT_EQ(read->file().mode(), LoadMode::kRead);
  expect_same_reader(*mapped, *read);
  return mapped;
}

// llama.cpp packs tensors back to back, each padded to the alignment, in directory order.
void expect_packed(const Reader& r) {
  uint64_t next = 0;
  for (const TensorInfo& t : r.tensors()) {
    EXPECT_EQ(t.offset, next) << t.name;
    next = t.offset + (t.n_bytes + r.alignment() - 1) / r.alignment() * r.alignment();
  }
}

TEST(GgufFixtures, Stories260K) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  struct Case {
    const char* file;
    uint32_t embd_type;
    uint32_t output_type;
  };
  for (Case c : {Case{"stories260K-F32.gguf", 0, 0}, Case{"stories260K-Q8_0.gguf", 8, 8},
                 Case{"stories260K-Q4_0.gguf", 2, 8}}) {
    SCOPED_TRACE(c.file);
    auto r = open_both(fixture(std::string("stories260K/") + c.file));
    EXPECT_EQ(r->version(), 3u);
    EXPECT_EQ(r->get_string("general.architecture"), "llama");
    EXPECT_EQ(r->get_uint("llama.block_count"), 5u);
    EXPECT_EQ(r->get_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(r->get_uint("llama.feed_forward_length"), 172u);
    EXPECT_EQ(r->get_uint("llama.attention.head_count"), 8u);
    EXPECT_EQ(r->get_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_NEAR(r->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
    EXPECT_EQ(r->get_string("tokenizer.ggml.model"), "llama");
    const Array& tokens = r->get_array("tokenizer.ggml.tokens");
    EXPECT_EQ(tokens.elem_type, ValueType::kString);
    ASSERT_EQ(tokens.items.size(), 512u);
    EXPECT_EQ(tokens.items[1].as_string("token 1"), "<s>");
    EXPECT_EQ(r->get_array("tokenizer.ggml.scores").items.size(), 512u);
    EXPECT_EQ(r->get_uint("tokenizer.ggml.bos_token_id"), 1u);
    EXPECT_EQ(r->get_uint("tokenizer.ggml.eos_token_id"), 2u);
    EXPECT_EQ(r->alignment(), 32u);

    EXPECT_EQ(r->tensors().size(), 48u);  // 5 layers × 9 + token_embd, output_norm, output
    const TensorInfo* embd = r->find_tensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->ne, (std::vector<uint64_t>{64, 512}));
    EXPECT_EQ(embd->type_id, c.embd_type);
    ASSERT_NE(r->find_tensor("output.weight"), nullptr);
    EXPECT_EQ(r->find_tensor("output.weight")->type_id, c.output_type);
    const TensorInfo* down = r->find_tensor("blk.4.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->ne, (std::vector<uint64_t>{172, 64}));
    EXPECT_EQ(down->type_id, c.embd_type == 0 ? 0u : 1u);  // F16 in the quantized files
    EXPECT_EQ(r->find_tensor("blk.0.attn_norm.weight")->type_id, 0u);
    expect_packed(*r);
  }
}

TEST(GgufFixtures, ArchFiles) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  // {file prefix, architecture, block_count}, from arch/README.md.
  const std::map<std::string, std::pair<std::string, uint64_t>> kArch = {
      {"tiny-llama3-", {"llama", 2}}, {"tiny-llama-", {"llama", 2}},   {"tiny-qwen2-", {"qwen2", 2}},
      {"tiny-qwen3-", {"qwen3", 2}},  {"tiny-phi3-", {"phi3", 2}},     {"tiny-phi3-longrope-", {"phi3", 2}},
      {"tiny-gemma-", {"gemma", 2}},  {"tiny-gemma2-", {"gemma2", 4}},
  };
  // A tensor type each quantized variant must contain.
  const std::map<std::string, uint32_t> kType = {{"F32", 0},  {"F16", 1},      {"BF16", 30},     {"Q8_0", 8},
                                                 {"Q4_0", 2}, {"Q4_K_M", 12}, {"Q5_K_M", 13}, {"Q6_K", 14}};
  size_t n_files = 0;
  for (const auto& entry : fs::directory_iterator(fixture("arch"))) {
    if (entry.path().extension() != ".gguf") continue;
    std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    ++n_files;
    auto r = open_both(entry.path());
    // The longest matching prefix names the model; the rest is the type.
    std::string prefix;
    for (const auto& [p, info] : kArch) {
      if (name.rfind(p, 0) == 0 && p.size() > prefix.size()) prefix = p;
    }
    ASSERT_FALSE(prefix.empty());
    const auto& [arch, blocks] = kArch.at(prefix);
    EXPECT_EQ(r->get_string("general.architecture"), arch);
    EXPECT_EQ(r->get_uint(arch + ".block_count"), blocks);
    EXPECT_EQ(r->get_array("tokenizer.ggml.tokens").items.size(), 512u);
    std::string type = name.substr(prefix.size());
    ASSERT_TRUE(kType.count(type)) << type;
    bool has_type = false;
    for (const TensorInfo& t : r->tensors()) has_type |= t.type_id == kType.at(type);
    EXPECT_TRUE(has_type) << "no tensor of type " << type;
    EXPECT_NE(r->find_tensor("token_embd.weight"), nullptr);
    EXPECT_NE(r->find_tensor("blk." + std::to_string(blocks - 1) + ".attn_norm.weight"), nullptr);
    expect_packed(*r);
  }
  EXPECT_EQ(n_files, 29u);
}

TEST(GgufFixtures, TokenizerVocabs) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const std::map<std::string, std::pair<std::string, size_t>> kVocab = {
      {"llama-spm", {"llama", 32000}},      {"phi-3", {"llama", 32064}},          {"baichuan", {"llama", 64000}},
      {"gpt-2", {"gpt2", 50257}},           {"deepseek-llm", {"gpt2", 102400}},   {"deepseek-coder", {"gpt2", 32256}},
      {"falcon", {"gpt2", 65024}},          {"mpt", {"gpt2", 50432}},             {"refact", {"gpt2", 49216}},
      {"starcoder", {"gpt2", 49152}},       {"gpt-neox", {"gpt2", 50432}},        {"bert-bge", {"bert", 30522}},
      {"llama-bpe", {"gpt2", 128256}},
  };
  for (const auto& [short_name, expected] : kVocab) {
    fs::path path = fixture("tokenizer/ggml-vocab-" + short_name + ".gguf");
    SCOPED_TRACE(path.string());
    if (!fs::exists(path)) {
      ADD_FAILURE() << "missing";
      continue;
    }
    auto r = Reader::open(path.string(), LoadMode::kMmap);
    EXPECT_TRUE(r->tensors().empty());
    EXPECT_EQ(r->get_string("tokenizer.ggml.model"), expected.first);
    EXPECT_EQ(r->get_array("tokenizer.ggml.tokens").items.size(), expected.second);
  }
  // One vocab also through read mode, to compare the two on metadata-heavy files.
  open_both(fixture("tokenizer/ggml-vocab-bert-bge.gguf"));
}

// Copying a llama.cpp-written file through Writer gives back the identical bytes: same
// metadata encoding, same tensor layout and padding.
TEST(GgufFixtures, WriterReproducesLlamaCppFiles) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  for (const char* rel : {"stories260K/stories260K-Q8_0.gguf", "arch/tiny-qwen2-F32.gguf"}) {
    SCOPED_TRACE(rel);
    auto r = Reader::open(fixture(rel).string());
    Writer w;
    for (const MetadataEntry& e : r->metadata()) w.set(e.key, e.value);
    for (const TensorInfo& t : r->tensors()) w.add_tensor_borrowed(t.name, t.ne, t.type_id, {t.data, t.n_bytes});
    std::vector<std::byte> out = w.to_bytes();
    ASSERT_EQ(out.size(), r->file().size());
    EXPECT_EQ(std::memcmp(out.data(), r->file().data(), out.size()), 0);
  }
}

}  // namespace
}  // namespace lightboat::gguf
