// The forward pass against llama.cpp's outputs on the same files: every stories260K case and
// every file of fixtures/arch — llama (F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0; Llama 3
// frequency factors in tiny-llama3), qwen2, qwen3, phi3, phi3 long-rope, gemma, gemma2. Prompt ids are taken from the reference so
// this checks the model alone; the tokenizer has its own tests and the CLI conformance test
// checks both together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "fixtures.h"
#include "model/model.h"

namespace lightboat::model {
namespace {

using nlohmann::json;

struct Case {
  std::string file;                  // path of the GGUF
  std::string wtype;                 // "F32", "Q4_0" … (sets the tolerance)
  std::vector<int32_t> prompt;
  json positions;                    // [{pos, top:[[id, logit]…]}]
  std::vector<int32_t> greedy;
  std::vector<double> gaps;          // top1 - top2 of the row that chose greedy[i] (may be empty)
  int64_t n_ctx = 0;
};

double rel_tolerance(const std::string& wtype) {
  if (wtype == "F32") return 1e-3;
  if (wtype == "F16") return 3e-3;
  if (wtype == "BF16") return 5e-3;
  return 2e-2;
}

std::string weight_type_of(const std::string& name) {
  for (const char* t : {"BF16", "F16", "F32", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    if (name.find(t) != std::string::npos) return t;
  }
  return "?";
}

std::vector<Case> load_cases() {
  std::vector<Case> cases;
  const auto dir = testing::fixtures_dir();
  {
    std::ifstream in(dir / "stories260K" / "reference.json");
    const json ref = json::parse(in);
    for (const json& c : ref["cases"]) {
      const json& r = c["result"];
      cases.push_back({(dir / "stories260K" / c["model_file"].get<std::string>()).string(),
                       weight_type_of(c["model_file"]), r["prompt_ids"].get<std::vector<int32_t>>(),
                       r["last_positions"], r["greedy"]["ids"].get<std::vector<int32_t>>(), {}, 0});
    }
  }
  {
    std::ifstream in(dir / "arch" / "reference.json");
    const json ref = json::parse(in);
    for (const auto& [file, info] : ref["models"].items()) {
      for (const json& p : info["prompts"]) {
        cases.push_back({(dir / "arch" / file).string(), info["type"].get<std::string>(),
                         p["tokens"].get<std::vector<int32_t>>(), p["last_positions"],
                         p["greedy"].get<std::vector<int32_t>>(), p["greedy_gaps"].get<std::vector<double>>(), 64});
      }
    }
  }
  return cases;
}

int32_t argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);  // first max: lowest id on ties
}

void check_case(const Case& c, ThreadPool& pool) {
  SCOPED_TRACE(c.file + " prompt of " + std::to_string(c.prompt.size()) + " tokens");
  auto model = load_model(gguf::Reader::open(c.file), {.n_ctx = c.n_ctx});
  const int64_t n_vocab = model->hparams().n_vocab;
  const auto n_pos = static_cast<int64_t>(c.positions.size());
  std::vector<float> logits(static_cast<size_t>(n_pos * n_vocab));
  model->forward(c.prompt, n_pos, logits.data(), pool);

  const auto first_pos = static_cast<int64_t>(c.prompt.size()) - n_pos;
  for (int64_t i = 0; i < n_pos; ++i) {
    const json& ref = c.positions[static_cast<size_t>(i)];
    ASSERT_EQ(ref["pos"].get<int64_t>(), first_pos + i);
    const float* row = &logits[static_cast<size_t>(i * n_vocab)];
    const json& top = ref["top"];
    double max_abs = 0;
    for (const json& e : top) max_abs = std::max(max_abs, std::abs(e[1].get<double>()));
    const double tol = rel_tolerance(c.wtype) * std::max(1.0, max_abs);
    const double ref_gap = top[0][1].get<double>() - top[1][1].get<double>();
    if (ref_gap > tol) {
      EXPECT_EQ(argmax(row, n_vocab), top[0][0].get<int32_t>()) << "pos " << first_pos + i;
    }
    for (const json& e : top) {
      EXPECT_NEAR(row[e[0].get<int32_t>()], e[1].get<double>(), tol) << "pos " << first_pos + i << " token " << e[0];
    }
  }

  // Greedy continuation: identical ids, up to a step where the reference itself was a near tie
  // (top-1 minus top-2 below min(0.1, tolerance), the rule of ../shared/check/conformance.py):
  // there, summation-order differences may pick the other token and later steps diverge.
  double scale = 1.0;
  for (const json& p : c.positions) {
    for (const json& e : p["top"]) scale = std::max(scale, std::abs(e[1].get<double>()));
  }
  const double near_tie = std::min(0.1, rel_tolerance(c.wtype) * scale);
  std::vector<float> last(static_cast<size_t>(n_vocab));
  std::copy_n(&logits[static_cast<size_t>((n_pos - 1) * n_vocab)], n_vocab, last.begin());
  for (size_t step = 0; step < c.greedy.size(); ++step) {
    const int32_t got = argmax(last.data(), n_vocab);
    if (got != c.greedy[step] && step < c.gaps.size() && c.gaps[step] < near_tie) break;
    ASSERT_EQ(got, c.greedy[step]) << "greedy step " << step;
    if (step + 1 < c.greedy.size()) {
      const int32_t next[1] = {got};
      model->forward(next, 1, last.data(), pool);
    }
  }
}

// One test per model file (ctest lists them); with no fixtures, one loudly skipped test.
std::vector<std::string> model_files() {
  if (!std::filesystem::is_directory(testing::fixtures_dir())) return {"fixtures_absent"};
  std::vector<std::string> files;
  for (const Case& c : load_cases()) {
    const std::string name = std::filesystem::path(c.file).filename().string();
    if (std::find(files.begin(), files.end(), name) == files.end()) files.push_back(name);
  }
  return files;
}

class ModelReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelReference, MatchesLlamaCpp) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  ThreadPool pool(2);
  int n_cases = 0;
  for (const Case& c : load_cases()) {
    if (std::filesystem::path(c.file).filename() != GetParam()) continue;
    check_case(c, pool);
    ++n_cases;
  }
  EXPECT_GE(n_cases, 2) << "every reference file has at least two prompts";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelReference, ::testing::ValuesIn(model_files()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param.substr(0, param.param.find(".gguf"));
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace lightboat::model
