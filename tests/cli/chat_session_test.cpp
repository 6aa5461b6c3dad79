// run --chat's session: which cached tokens a new prompt reuses, and that a conversation with
// the KV cache kept between turns answers exactly as a fresh evaluation of the whole
// conversation does (stories260K, greedy).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cli/chat.h"
#include "fixtures.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace lightboat::cli {
namespace {

TEST(ReusablePrefix, CommonPrefixButNeverTheWholePrompt) {
  using V = std::vector<int32_t>;
  EXPECT_EQ(reusable_prefix(V{}, V{1, 2, 3}), 0u);
  EXPECT_EQ(reusable_prefix(V{1, 2}, V{1, 2, 3, 4}), 2u);        // the usual case: the prompt extends the cache
  EXPECT_EQ(reusable_prefix(V{1, 2, 9, 9}, V{1, 2, 3, 4}), 2u);  // diverges: keep up to the divergence
  EXPECT_EQ(reusable_prefix(V{1, 2, 3}, V{1, 2, 3}), 2u);        // identical: re-evaluate the last token
  EXPECT_EQ(reusable_prefix(V{1, 2, 3, 4, 5}, V{1, 2, 3}), 2u);  // the cache holds more than the prompt
  EXPECT_EQ(reusable_prefix(V{7}, V{1}), 0u);
  EXPECT_EQ(reusable_prefix(V{1}, V{}), 0u);
}

struct Stories {
  std::shared_ptr<const gguf::Reader> reader;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<model::Model> model;
};

Stories load_stories() {
  Stories s;
  s.reader = gguf::Reader::open((testing::fixtures_dir() / "stories260K" / "stories260K-F32.gguf").string());
  s.tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_gguf(*s.reader));
  // Beyond its 128-token training context: ChatML markup costs many tokens in a 512-token vocabulary.
  s.model = model::load_model(s.reader, {.n_ctx = 512});
  return s;
}

TEST(ChatSession, KeepsTheCacheAndAnswersAsAFreshEvaluation) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Stories s = load_stories();
  const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(*s.reader, *s.tok);
  ThreadPool pool(2);
  GenerateRequest params;
  params.max_tokens = 12;
  params.sampling.temperature = 0;
  params.sampling.seed = 1;
  // Penalties must see the earlier turns held in the cache, as they see the fresh full prompt.
  params.sampling.repeat_penalty = 1.3f;
  params.sampling.penalty_last_n = 256;

  ChatSession session(*s.model, *s.tok, chat, "Tell a story.");
  const std::vector<std::string> users = {"Once upon a time", "The cat sat", "Lily went home"};
  for (size_t i = 0; i < users.size(); ++i) {
    const std::vector<tokenizer::ChatMessage> before = session.messages();
    const ChatTurn turn = session.reply(users[i], params, pool, [](std::string_view) {});
    EXPECT_NE(turn.warning.find("ChatML"), std::string::npos);  // stories260K has no template
    EXPECT_FALSE(turn.result.tokens.empty());
    // Only the new turn was evaluated: everything cached before it was reused.
    if (i > 0) {
      EXPECT_GT(turn.n_reused, 0) << "turn " << i;
    }
    EXPECT_EQ(static_cast<int64_t>(session.cached_tokens().size()), s.model->n_past());

    // The same conversation rendered and evaluated from scratch gives the same answer.
    std::vector<tokenizer::ChatMessage> conv = before;
    conv.push_back({"user", users[i]});
    GenerateRequest fresh = params;
    fresh.prompt = s.tok->encode(chat.apply(conv).text, true, true);
    fresh.sampling.seed = params.sampling.seed + i;
    EXPECT_EQ(static_cast<int64_t>(fresh.prompt.size()), turn.n_prompt);
    auto other = model::load_model(s.reader, {.n_ctx = 512});
    const GenerateResult expect = generate(*other, *s.tok, fresh, pool, [](std::string_view) {});
    EXPECT_EQ(turn.result.tokens, expect.tokens) << "turn " << i;
    EXPECT_EQ(turn.result.text, expect.text) << "turn " << i;
  }
  ASSERT_EQ(session.messages().size(), 7u);  // system + 3 × (user, assistant)
  EXPECT_EQ(session.messages()[0].role, "system");
  EXPECT_EQ(session.messages()[6].role, "assistant");
}

TEST(ChatSession, TruncatesToTheCommonPrefixWhenTheRenderingDiverges) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Stories s = load_stories();
  // A template whose header changes with the turn count: turn 2's prompt diverges from turn 1's
  // early, so the cache must be cut back to the common prefix, not reused wholesale.
  const tokenizer::ChatTemplate chat({.source = "{{ messages | length }}{% for m in messages %}{{ m.content }}."
                                                "{% endfor %}"});
  ThreadPool pool(1);
  GenerateRequest params;
  params.max_tokens = 4;
  params.sampling.temperature = 0;
  ChatSession session(*s.model, *s.tok, chat, "");
  const ChatTurn t1 = session.reply("Once upon a time", params, pool, [](std::string_view) {});
  EXPECT_EQ(t1.n_reused, 0);
  const size_t cached_after_t1 = session.cached_tokens().size();
  const ChatTurn t2 = session.reply("The cat", params, pool, [](std::string_view) {});
  EXPECT_LE(t2.n_reused, 3);  // BOS and the space before "1" at most: "1Once…" became "3Once…"
  EXPECT_LT(static_cast<size_t>(t2.n_reused), cached_after_t1);
  EXPECT_EQ(static_cast<int64_t>(session.cached_tokens().size()), s.model->n_past());
}

TEST(ChatSession, ContextOverflowIsAClearErrorAndKeepsTheSessionUsable) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  Stories s = load_stories();
  const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(*s.reader, *s.tok);
  ThreadPool pool(1);
  GenerateRequest params;
  params.max_tokens = 4;
  params.sampling.temperature = 0;
  ChatSession session(*s.model, *s.tok, chat, "");
  EXPECT_THROW(session.reply(std::string(2000, 'a'), params, pool, [](std::string_view) {}), Error);
  EXPECT_TRUE(session.messages().empty());
  EXPECT_NO_THROW(session.reply("Hi", params, pool, [](std::string_view) {}));
}

}  // namespace
}  // namespace lightboat::cli
