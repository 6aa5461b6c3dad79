// KvPages: allocation, prefix sharing, reference counts, LRU eviction, capacity failures, hash
// collisions, truncation, and a randomized engine simulation that writes "K/V" (the token ids)
// into a page store and checks every sequence reads back exactly its own tokens.
#include "runtime/kv_pages.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "base/error.h"

namespace lightboat::runtime {
namespace {

using Toks = std::vector<TokenId>;

std::vector<TokenId> iota_tokens(int n, TokenId first) {
  std::vector<TokenId> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

// create + match + reserve + commit: a sequence whose whole prompt is computed.
SeqId prefill(KvPages& kv, const std::vector<TokenId>& prompt) {
  const SeqId s = kv.create();
  const int32_t hit = kv.match_prefix(s, prompt);
  EXPECT_EQ(kv.reserve(s, static_cast<int32_t>(prompt.size()) - hit), KvStatus::kOk);
  kv.commit(s, std::span<const TokenId>(prompt).subspan(static_cast<size_t>(hit)));
  return s;
}

TEST(KvPages, AllocatesPagesInOrderAndCountsTokens) {
  KvPages kv({.n_pages = 8, .page_size = 4});
  const SeqId s = kv.create();
  EXPECT_EQ(kv.pages_needed(s, 10), 3);
  ASSERT_EQ(kv.reserve(s, 10), KvStatus::kOk);
  EXPECT_EQ(std::vector<PageId>(kv.page_table(s).begin(), kv.page_table(s).end()), (std::vector<PageId>{0, 1, 2}));
  EXPECT_EQ(kv.capacity(s), 12);
  kv.commit(s, iota_tokens(10, 100));
  EXPECT_EQ(kv.n_tokens(s), 10);
  EXPECT_EQ(kv.pages_needed(s, 2), 0);  // slots 10, 11 of page 2
  EXPECT_EQ(kv.pages_needed(s, 3), 1);
  EXPECT_TRUE(kv.is_cached(0));
  EXPECT_TRUE(kv.is_cached(1));
  EXPECT_FALSE(kv.is_cached(2));  // partial: never shared
  const KvStats st = kv.stats();
  EXPECT_EQ(st.in_use, 3);
  EXPECT_EQ(st.free, 5);
  EXPECT_EQ(st.cached, 0);
  kv.check_invariants();
}

TEST(KvPages, SharesFullPagesOfACommonPrefix) {
  KvPages kv({.n_pages = 16, .page_size = 4});
  std::vector<TokenId> a = iota_tokens(10, 1);  // pages [1..4] [5..8] [9 10 . .]
  const SeqId sa = prefill(kv, a);
  std::vector<TokenId> b = iota_tokens(8, 1);
  b.push_back(77);  // same first two pages, then different
  b.push_back(78);
  const SeqId sb = kv.create();
  EXPECT_EQ(kv.peek_prefix(b), 8);
  EXPECT_EQ(kv.match_prefix(sb, b), 8);
  EXPECT_EQ(kv.page_table(sb)[0], kv.page_table(sa)[0]);
  EXPECT_EQ(kv.page_table(sb)[1], kv.page_table(sa)[1]);
  EXPECT_EQ(kv.ref_count(kv.page_table(sa)[0]), 2);
  EXPECT_EQ(kv.ref_count(kv.page_table(sa)[2]), 1);
  // The shared pages are full and read-only: the next token goes to a fresh page.
  EXPECT_EQ(kv.capacity(sb), 8);
  EXPECT_EQ(kv.pages_needed(sb, 1), 1);
  ASSERT_EQ(kv.reserve(sb, 2), KvStatus::kOk);
  EXPECT_NE(kv.page_table(sb)[2], kv.page_table(sa)[2]);
  kv.commit(sb, std::span<const TokenId>(b).subspan(8));
  KvStats st = kv.stats();
  EXPECT_EQ(st.shared, 2);
  EXPECT_EQ(st.in_use, 4);
  EXPECT_EQ(st.prefix_hit_tokens, 8);
  kv.check_invariants();

  kv.release(sa);
  EXPECT_EQ(kv.ref_count(kv.page_table(sb)[0]), 1);
  kv.release(sb);
  st = kv.stats();
  EXPECT_EQ(st.in_use, 0);
  EXPECT_EQ(st.cached, 2);  // [1..4] and [5..8]; the partial pages went back to the free list
  EXPECT_EQ(st.free, 14);
  EXPECT_EQ(st.n_sequences, 0);
  kv.check_invariants();

  // A third sequence finds the prefix in the cache after both ended.
  const SeqId sc = kv.create();
  EXPECT_EQ(kv.match_prefix(sc, a), 8);
  EXPECT_EQ(kv.stats().cached, 0);
  kv.release(sc);
  kv.check_invariants();
}

TEST(KvPages, MatchAlwaysLeavesOneTokenToCompute) {
  KvPages kv({.n_pages = 8, .page_size = 4});
  const std::vector<TokenId> p = iota_tokens(8, 1);
  kv.release(prefill(kv, p));
  EXPECT_EQ(kv.peek_prefix(p), 4);  // not 8: the last token must run to give logits
  EXPECT_EQ(kv.peek_prefix(iota_tokens(9, 1)), 8);
  EXPECT_EQ(kv.peek_prefix(Toks{}), 0);
  const SeqId s = kv.create();
  EXPECT_EQ(kv.match_prefix(s, Toks{}), 0);
  kv.release(s);
}

TEST(KvPages, EvictsLeastRecentlyReleasedCachedPagesLeafFirst) {
  KvPages kv({.n_pages = 6, .page_size = 2});
  const SeqId x = prefill(kv, Toks{1, 2, 3, 4, 5});  // pages 0 [1 2], 1 [3 4], 2 [5]
  const SeqId y = prefill(kv, Toks{7, 8, 9});        // pages 3 [7 8], 4 [9]
  kv.release(x);                                     // LRU: 1, 0   (leaf first); free: 2
  kv.release(y);                                     // LRU: 1, 0, 3; free: 2, 4
  EXPECT_EQ(kv.stats().cached, 3);
  EXPECT_EQ(kv.available_pages(), 6);

  const SeqId z = kv.create();
  ASSERT_EQ(kv.reserve(z, 6), KvStatus::kOk);  // free pages first (5, 4, 2), no eviction
  EXPECT_EQ(kv.stats().evictions, 0);
  EXPECT_EQ(kv.peek_prefix(Toks{1, 2, 3, 4, 5}), 4);
  ASSERT_EQ(kv.reserve(z, 8), KvStatus::kOk);  // one more page: evicts page 1 ([3 4], x's leaf)
  EXPECT_EQ(kv.stats().evictions, 1);
  EXPECT_EQ(kv.page_table(z).back(), 1);
  EXPECT_EQ(kv.peek_prefix(Toks{1, 2, 3, 4, 5}), 2);  // [1 2] survives
  EXPECT_EQ(kv.peek_prefix(Toks{7, 8, 9}), 2);
  ASSERT_EQ(kv.reserve(z, 10), KvStatus::kOk);  // next: page 0 ([1 2]), released before y's
  EXPECT_EQ(kv.peek_prefix(Toks{1, 2, 3, 4, 5}), 0);
  EXPECT_EQ(kv.peek_prefix(Toks{7, 8, 9}), 2);
  ASSERT_EQ(kv.reserve(z, 12), KvStatus::kOk);
  EXPECT_EQ(kv.peek_prefix(Toks{7, 8, 9}), 0);
  EXPECT_EQ(kv.stats().evictions, 3);
  EXPECT_EQ(kv.available_pages(), 0);
  kv.release(z);
  EXPECT_EQ(kv.stats().free, 6);
  kv.check_invariants();
}

TEST(KvPages, MatchingRefreshesRecency) {
  KvPages kv({.n_pages = 3, .page_size = 2});
  kv.release(prefill(kv, Toks{1, 2, 0}));  // LRU: [1 2]
  kv.release(prefill(kv, Toks{3, 4, 0}));  // LRU: [1 2], [3 4]
  const SeqId s = kv.create();
  EXPECT_EQ(kv.match_prefix(s, Toks{1, 2, 9}), 2);
  kv.release(s);  // [1 2] is now the most recent: [3 4] goes first
  const SeqId t = kv.create();
  ASSERT_EQ(kv.reserve(t, 4), KvStatus::kOk);  // free page + one eviction
  EXPECT_EQ(kv.peek_prefix(Toks{1, 2, 9}), 2);
  EXPECT_EQ(kv.peek_prefix(Toks{3, 4, 9}), 0);
  kv.release(t);
  kv.check_invariants();
}

TEST(KvPages, CapacityFailureLeavesStateUnchanged) {
  KvPages kv({.n_pages = 4, .page_size = 4});
  const SeqId a = prefill(kv, iota_tokens(9, 1));  // 3 pages
  const SeqId b = kv.create();
  const KvStats before = kv.stats();
  EXPECT_EQ(kv.reserve(b, 5), KvStatus::kNoPages);  // needs 2, 1 available
  EXPECT_EQ(kv.reserve(a, 8), KvStatus::kNoPages);  // a has 3 free slots, needs 2 more pages
  const KvStats after = kv.stats();
  EXPECT_EQ(after.free, before.free);
  EXPECT_EQ(after.in_use, before.in_use);
  EXPECT_EQ(kv.capacity(a), 12);
  EXPECT_EQ(kv.capacity(b), 0);
  EXPECT_EQ(kv.reserve(a, 7), KvStatus::kOk);  // exactly one more page
  EXPECT_EQ(kv.available_pages(), 0);
  EXPECT_EQ(kv.reserve(b, 1), KvStatus::kNoPages);
  EXPECT_EQ(kv.reserve(b, 0), KvStatus::kOk);
  kv.check_invariants();
  kv.release(a);
  kv.release(b);
  EXPECT_EQ(kv.available_pages(), 4);
  kv.check_invariants();
}

TEST(KvPages, HashCollisionsCostMissesNeverWrongPages) {
  // hash_mask 0: every page of every prefix has key 0, so the index holds one entry at a time.
  KvPages kv({.n_pages = 8, .page_size = 2, .hash_mask = 0});
  const SeqId a = prefill(kv, Toks{1, 1, 1, 1, 1});
  EXPECT_TRUE(kv.is_cached(kv.page_table(a)[0]));
  EXPECT_FALSE(kv.is_cached(kv.page_table(a)[1]));  // key taken by page 0: stays private
  // Same key, same tokens [1 1], but the second page's parent is page 0, not "none": a miss.
  // Without the parent check page 0 would be matched twice.
  EXPECT_EQ(kv.peek_prefix(Toks{1, 1, 1, 1, 1}), 2);
  // Same key, different tokens: a miss.
  EXPECT_EQ(kv.peek_prefix(Toks{2, 2, 1}), 0);
  const SeqId b = prefill(kv, Toks{2, 2, 5});
  EXPECT_FALSE(kv.is_cached(kv.page_table(b)[0]));
  kv.release(a);
  kv.release(b);
  EXPECT_EQ(kv.stats().cached, 1);
  kv.check_invariants();
}

TEST(KvPages, TruncateKeepsPrivatePagesAndDropsSharedOnes) {
  KvPages kv({.n_pages = 16, .page_size = 4});
  const std::vector<TokenId> p = iota_tokens(10, 1);
  const SeqId a = prefill(kv, p);
  const PageId a1 = kv.page_table(a)[1];
  // Private: cut inside page 1 (cached, only a's): it leaves the cache and stays a's.
  EXPECT_EQ(kv.truncate(a, 6), 6);
  EXPECT_EQ(kv.page_table(a).size(), 2u);
  EXPECT_EQ(kv.page_table(a)[1], a1);
  EXPECT_FALSE(kv.is_cached(a1));
  EXPECT_EQ(kv.peek_prefix(p), 4);
  kv.commit(a, std::vector<TokenId>{60, 70});  // rewrites slots 2, 3 of page 1 and fills it
  EXPECT_TRUE(kv.is_cached(a1));
  EXPECT_EQ(kv.peek_prefix(Toks{1, 2, 3, 4, 5, 6, 60, 70, 0}), 8);
  EXPECT_EQ(kv.peek_prefix(p), 4);
  kv.check_invariants();

  // Shared: b shares both full pages of a; cutting b inside page 1 drops it back to 4 tokens.
  const SeqId b = kv.create();
  EXPECT_EQ(kv.match_prefix(b, Toks{1, 2, 3, 4, 5, 6, 60, 70, 0}), 8);
  EXPECT_EQ(kv.truncate(b, 6), 4);
  EXPECT_EQ(kv.page_table(b).size(), 1u);
  EXPECT_EQ(kv.ref_count(a1), 1);
  EXPECT_TRUE(kv.is_cached(a1));
  EXPECT_EQ(kv.truncate(b, 4), 4);  // on a boundary a shared page can stay: nobody writes it
  EXPECT_EQ(kv.truncate(b, 0), 0);
  EXPECT_TRUE(kv.page_table(b).empty());
  EXPECT_THROW(kv.truncate(a, 9), Error);
  EXPECT_THROW(kv.truncate(a, -1), Error);
  kv.release(a);
  kv.release(b);
  const KvStats st = kv.stats();
  EXPECT_EQ(st.in_use, 0);
  EXPECT_EQ(st.free + st.cached, 16);
  kv.check_invariants();
}

TEST(KvPages, RejectsMisuse) {
  EXPECT_THROW(KvPages({.n_pages = 0, .page_size = 4}), Error);
  EXPECT_THROW(KvPages({.n_pages = 4, .page_size = 0}), Error);
  KvPages kv({.n_pages = 4, .page_size = 4});
  EXPECT_THROW(kv.reserve(42, 1), Error);
  EXPECT_THROW(kv.release(42), Error);
  EXPECT_THROW(kv.ref_count(4), Error);
  const SeqId s = kv.create();
  EXPECT_THROW(kv.commit(s, std::vector<TokenId>{1}), Error);  // nothing reserved
  EXPECT_THROW(kv.reserve(s, -1), Error);
  ASSERT_EQ(kv.reserve(s, 1), KvStatus::kOk);
  kv.commit(s, std::vector<TokenId>{1});
  EXPECT_THROW(kv.match_prefix(s, std::vector<TokenId>{1, 2}), Error);  // not empty
  kv.release(s);
  EXPECT_THROW(kv.release(s), Error);
  kv.check_invariants();
}

// An engine in miniature: sequences draw prompts from a few shared prefixes, grow, get
// truncated and released at random. The "K/V" of a token is the token id itself, written into
// store[page][slot] at commit; every sequence must always read back its own tokens through its
// page table, and no write may ever land in a page that is shared or cached.
TEST(KvPages, RandomizedEngineSimulationNeverCorruptsOrLeaks) {
  constexpr int32_t kPages = 48;
  constexpr int32_t kPageSize = 4;
  KvPages kv({.n_pages = kPages, .page_size = kPageSize});
  std::vector<TokenId> store(static_cast<size_t>(kPages * kPageSize), -1);
  std::mt19937 rng(1234);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::vector<TokenId>> prefixes = {iota_tokens(11, 100), iota_tokens(6, 200), iota_tokens(17, 300)};

  auto write = [&](SeqId s, std::span<const TokenId> toks) {
    // Room first, then the "forward pass" writes, then commit (the engine's order).
    const int32_t start = kv.n_tokens(s);
    for (size_t i = 0; i < toks.size(); ++i) {
      const int32_t pos = start + static_cast<int32_t>(i);
      const PageId page = kv.page_table(s)[static_cast<size_t>(pos / kPageSize)];
      ASSERT_EQ(kv.ref_count(page), 1) << "write into a shared page";
      ASSERT_FALSE(kv.is_cached(page)) << "write into a cached page";
      store[static_cast<size_t>(page * kPageSize + pos % kPageSize)] = toks[i];
    }
    kv.commit(s, toks);
  };
  auto verify = [&](SeqId s) {
    const auto toks = kv.tokens(s);
    for (size_t pos = 0; pos < toks.size(); ++pos) {
      const PageId page = kv.page_table(s)[pos / kPageSize];
      ASSERT_EQ(store[static_cast<size_t>(page) * kPageSize + pos % kPageSize], toks[pos]) << "position " << pos;
    }
  };

  std::vector<SeqId> live;
  int64_t hits = 0;
  for (int step = 0; step < 3000; ++step) {
    const int op = uniform(0, 9);
    if (op <= 2 && live.size() < 12) {  // start a sequence: a shared prefix + a private tail
      std::vector<TokenId> prompt = prefixes[static_cast<size_t>(uniform(0, 2))];
      const int tail = uniform(0, 6);
      for (int i = 0; i < tail; ++i) prompt.push_back(uniform(0, 3));  // tiny alphabet: tails repeat too
      const SeqId s = kv.create();
      const int32_t hit = kv.match_prefix(s, prompt);
      hits += hit;
      const int32_t rest = static_cast<int32_t>(prompt.size()) - hit;
      if (kv.reserve(s, rest) != KvStatus::kOk) {
        kv.release(s);
        continue;
      }
      write(s, std::span<const TokenId>(prompt).subspan(static_cast<size_t>(hit)));
      live.push_back(s);
    } else if (op <= 6 && !live.empty()) {  // decode a few tokens
      const SeqId s = live[static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1))];
      const int n = uniform(1, 5);
      if (kv.reserve(s, n) != KvStatus::kOk) continue;
      std::vector<TokenId> toks;
      for (int i = 0; i < n; ++i) toks.push_back(uniform(0, 3));
      write(s, toks);
    } else if (op == 7 && !live.empty()) {  // regenerate from an earlier point
      const SeqId s = live[static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1))];
      const int32_t kept = kv.truncate(s, uniform(0, kv.n_tokens(s)));
      ASSERT_EQ(kv.n_tokens(s), kept);
    } else if (!live.empty()) {  // finish or cancel
      const size_t i = static_cast<size_t>(uniform(0, static_cast<int>(live.size()) - 1));
      kv.release(live[i]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (SeqId s : live) verify(s);
    if (step % 50 == 0) kv.check_invariants();
  }
  EXPECT_GT(hits, 0);
  for (SeqId s : live) kv.release(s);
  const KvStats st = kv.stats();
  EXPECT_EQ(st.in_use, 0);
  EXPECT_EQ(st.n_sequences, 0);
  EXPECT_EQ(st.free + st.cached, kPages);
  EXPECT_GT(st.evictions, 0);
  kv.check_invariants();
}

}  // namespace
}  // namespace lightboat::runtime
