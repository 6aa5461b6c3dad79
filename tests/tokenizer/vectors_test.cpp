// llama.cpp's tokenizer test vectors: every string of X.gguf.inp must encode (no BOS/EOS, special
// tokens not parsed) to exactly the ids on the matching line of X.gguf.out.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fixtures.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::tokenizer {
namespace {

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Strings separated (and terminated) by "\n__ggml_vocab_test__\n".
std::vector<std::string> read_inputs(const std::filesystem::path& path) {
  const std::string all = read_all(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t hit; (hit = all.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    out.push_back(all.substr(pos, hit - pos));
  }
  EXPECT_EQ(pos, all.size()) << path << " does not end with the separator";
  return out;
}

std::vector<std::vector<int32_t>> read_outputs(const std::filesystem::path& path) {
  std::istringstream lines(read_all(path));
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<int32_t>& row = out.emplace_back();
    for (int32_t id; ids >> id;) row.push_back(id);
  }
  return out;
}

// C-style escaping so a failing string is readable whatever bytes it holds.
std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return out;
}

class VocabVectors : public ::testing::TestWithParam<const char*> {};

TEST_P(VocabVectors, EncodeMatchesLlamaCpp) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const auto dir = testing::fixtures_dir() / "tokenizer";
  const std::string base = std::string("ggml-vocab-") + GetParam() + ".gguf";

  const auto reader = gguf::Reader::open((dir / base).string());
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::from_gguf(*reader);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  %s: n_vocab %d, tokenizer built in %.1f ms\n", GetParam(), tok.n_vocab(), load_ms);

  const auto inputs = read_inputs(dir / (base + ".inp"));
  const auto expected = read_outputs(dir / (base + ".out"));
  ASSERT_EQ(inputs.size(), expected.size()) << base << ": .inp and .out disagree on the number of strings";
  ASSERT_GT(inputs.size(), 0u);

  int mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> got = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got != expected[i]) {
      ++mismatches;
      ADD_FAILURE() << base << " string #" << i << " \"" << escaped(inputs[i]) << "\"\n  expected: ["
                    << join(expected[i]) << "]\n  got:      [" << join(got) << "]";
    }
  }
  EXPECT_EQ(mismatches, 0) << base << ": " << mismatches << " of " << inputs.size() << " strings differ";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VocabVectors,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon",
                                           "mpt", "refact", "starcoder", "llama-bpe"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace lightboat::tokenizer
