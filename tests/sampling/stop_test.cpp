// StopMatcher over streamed pieces: split stops, false alarms, several stops, UTF-8.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "sampling/stop.h"

namespace lightboat::sampling {
namespace {

// Feeds the pieces, then flushes if no stop: returns everything emitted, step by step.
struct Run {
  std::vector<std::string> emitted;  // one entry per feed, plus one for the flush
  bool stopped = false;
  int stop_index = -1;
  std::string all() const {
    std::string out;
    for (const auto& e : emitted) out += e;
    return out;
  }
};

Run run(StopMatcher& m, const std::vector<std::string>& pieces) {
  Run r;
  for (const auto& piece : pieces) {
    const auto step = m.feed(piece);
    r.emitted.emplace_back(step.emit);
    r.stopped = step.stopped;
    r.stop_index = step.stop_index;
  }
  if (!r.stopped) r.emitted.emplace_back(m.flush());
  return r;
}

TEST(StopMatcher, StopSplitAcrossPieces) {
  StopMatcher m({"</s>"});
  const auto r = run(m, {"Hello <", "/", "s>", "ignored"});
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"Hello ", "", "", ""}));
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.stop_index, 0);
  EXPECT_TRUE(m.flush().empty());
}

TEST(StopMatcher, StopInsideOnePieceDropsWhatFollows) {
  StopMatcher m({"</s>"});
  const auto r = run(m, {"foo</s>bar"});
  EXPECT_EQ(r.all(), "foo");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, PartialMatchThatIsNotAStopIsReleased) {
  StopMatcher m({"</s>"});
  const auto r = run(m, {"a <", "/", "b", " c</"});
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"a ", "", "</b", " c", "</"}));
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.all(), "a </b c</");  // the flush gave back the held "</"
}

TEST(StopMatcher, SeveralStopStrings) {
  StopMatcher m({"###", "\nUser:"});
  const auto r = run(m, {"Answer: 4.\nUs", "er: next"});
  EXPECT_EQ(r.all(), "Answer: 4.");
  EXPECT_EQ(r.stop_index, 1);
}

TEST(StopMatcher, TheStopThatEndsFirstWinsWhateverTheSplit) {
  // "bc" ends before "abcd" does, so a byte-at-a-time reader sees it first; so must every split.
  const std::string text = "xabcdy";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    StopMatcher m({"abcd", "bc"});
    const auto r = run(m, {text.substr(0, cut), text.substr(cut)});
    EXPECT_EQ(r.all(), "xa") << "cut " << cut;
    EXPECT_EQ(r.stop_index, 1) << "cut " << cut;
  }
}

TEST(StopMatcher, ByteAtATimeEqualsWholeText) {
  const std::string text = "one <<end two <en <end> three";
  StopMatcher whole({"<end>", "xyz"});
  const auto expected = run(whole, {text}).all();
  EXPECT_EQ(expected, "one <<end two <en ");
  StopMatcher bytes({"<end>", "xyz"});
  std::vector<std::string> pieces;
  for (char c : text) pieces.emplace_back(1, c);
  EXPECT_EQ(run(bytes, pieces).all(), expected);
}

TEST(StopMatcher, HoldsBackIncompleteUtf8) {
  StopMatcher m({});
  // "é" = C3 A9 split between pieces; "€" = E2 82 AC split over three.
  const auto r = run(m, {"h\xC3", "\xA9llo \xE2", "\x82", "\xAC!"});
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"h", "\xC3\xA9llo ", "", "\xE2\x82\xAC!", ""}));
  // A flush releases a dangling lead byte rather than losing it.
  StopMatcher n({});
  EXPECT_EQ(run(n, {"a\xF0\x9F"}).emitted, (std::vector<std::string>{"a", "\xF0\x9F"}));
}

TEST(StopMatcher, Utf8StopString) {
  StopMatcher m({"世界"});
  const auto r = run(m, {"你好世", "界!"});
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"你好", ""}));
  EXPECT_TRUE(r.stopped);
  m.reset();  // same stops, new generation
  EXPECT_EQ(run(m, {"世", "纪"}).all(), "世纪");
}

TEST(StopMatcher, RejectsEmptyStopString) {
  try {
    StopMatcher m({"ok", ""});
    FAIL() << "an empty stop string was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("#1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lightboat::sampling
