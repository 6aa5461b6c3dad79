// Paged KV-cache allocator with a prefix cache. Pure bookkeeping: it hands out page ids and never
// touches the K/V floats, which the model stores per layer as
//
//   page p of layer l: K [page_size, n_embd_kv] and V [page_size, n_embd_kv]
//
// A sequence owns a page table (page ids in order); the token at position i lives in
// page_table[i / page_size], slot i % page_size, and attention reads the pages in place.
//
// Prefix sharing. When a page of a sequence becomes FULL with known tokens (commit), it is
// registered in the prefix cache under a chain key: hash(key of the previous page, the page's
// tokens), so a key stands for the whole prefix up to the end of that page. A later sequence whose
// prompt starts with the same tokens (match_prefix) takes those pages instead of recomputing them.
// A hit is verified, never trusted from the hash: the cached page's tokens must equal the prompt's,
// and its recorded parent must be exactly the page matched just before (page id plus a generation
// counter bumped whenever a page's content identity changes), so by induction the whole prefix is
// verified and a hash collision can only cost a miss, never a wrong page.
//
// Read-only sharing without copy-on-write: only full pages are ever shared, and a sequence writes
// only into its own last, partial page. A sequence whose matched prefix ends on a page boundary
// writes its next token into a fresh page. truncate() keeps this rule (see there).
//
// Page states (every page is in exactly one):
//   free    no content, on the free list;
//   cached  registered in the prefix cache and referenced by no sequence: content kept, evictable,
//           on an LRU list (least recently released first);
//   in use  referenced by >= 1 sequence (ref_count), cached (shareable) or private.
// Allocation takes the free list first, then evicts the least recently used cached page.
// "Available" pages = free + cached: what an allocation can take right now.
//
// Running out of pages is a normal condition, reported as KvStatus::kNoPages with the state left
// unchanged. Misuse (unknown sequence, commit beyond the reserved capacity, bad sizes) throws
// lightboat::Error(kInvalidArgument). Not thread-safe: one engine thread owns it.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace lightboat::runtime {

using PageId = int32_t;   // [0, n_pages)
using TokenId = int32_t;  // vocabulary id; the allocator only compares them
using SeqId = int64_t;    // handle from KvPages::create(); never reused by one KvPages

struct KvPagesConfig {
  int32_t n_pages = 0;     // pages in the pool (>= 1); the caller derives it from a byte budget
  int32_t page_size = 16;  // tokens per page (>= 1)
  // Test hook: prefix-cache keys are hash & hash_mask. 0 makes every page key collide, which the
  // tests use to prove that collisions only cost misses. Leave at all-ones in production.
  uint64_t hash_mask = ~uint64_t{0};
};

enum class KvStatus {
  kOk,
  kNoPages,  // not enough free + evictable pages; nothing was changed
};

struct KvStats {
  int32_t n_pages = 0;
  int32_t page_size = 0;            // tokens
  int32_t free = 0;                 // pages on the free list
  int32_t cached = 0;               // pages in the prefix cache that no sequence references (evictable)
  int32_t in_use = 0;               // pages referenced by >= 1 sequence; free + cached + in_use = n_pages
  int32_t shared = 0;               // of in_use, pages referenced by >= 2 sequences
  int32_t n_sequences = 0;          // live sequences
  int64_t prefix_hit_tokens = 0;    // tokens match_prefix() reused, since construction
  int64_t prefix_query_tokens = 0;  // tokens match_prefix() was asked about, since construction
  int64_t evictions = 0;            // cached pages reclaimed for new content, since construction
};

class KvPages {
 public:
  // Throws Error(kInvalidArgument) when n_pages or page_size < 1. Allocates all per-page state
  // ([n_pages] headers, [n_pages * page_size] cached tokens) here.
  explicit KvPages(const KvPagesConfig& config);

  // A new, empty sequence (no pages, no tokens).
  SeqId create();

  // For an EMPTY sequence: takes the longest run of cached full pages that matches the start of
  // `tokens` (typically the prompt, or prompt + generated tokens when recomputing a preempted
  // sequence) and returns how many tokens are thereby already computed: a multiple of page_size,
  // and always < tokens.size() when tokens is non-empty, so that at least one token is left for
  // the forward pass to produce the logits of the next position. Matched pages gain a reference
  // (and leave the LRU list). Throws when the sequence is not empty.
  int32_t match_prefix(SeqId seq, std::span<const TokenId> tokens);
  // What match_prefix() would return for `tokens`, changing nothing (no references, no stats).
  int32_t peek_prefix(std::span<const TokenId> tokens) const;

  // Makes room for n_tokens more tokens past the committed ones: afterwards
  // capacity(seq) >= n_tokens(seq) + n_tokens. Allocates only the missing pages (0 when the last
  // page has room). kNoPages leaves everything unchanged. n_tokens >= 0.
  KvStatus reserve(SeqId seq, int32_t n_tokens);
  // Pages reserve(seq, n_tokens) would have to allocate (compare with available_pages()).
  int32_t pages_needed(SeqId seq, int32_t n_tokens) const;

  // Records that the K/V of `tokens` have been written at positions [n_tokens, n_tokens + size)
  // (call after the forward pass). Every page this fills is registered in the prefix cache, unless
  // its key is already taken (the same prefix computed twice at once, or a collision: that page
  // then simply stays private) or its previous page is not cached. Throws when the tokens exceed
  // the reserved capacity.
  void commit(SeqId seq, std::span<const TokenId> tokens);

  // Cuts the sequence to at most n_tokens committed tokens (preemption with partial recompute,
  // regeneration, chat edits) and frees the pages past them (they stay cached if registered).
  // Returns the length actually kept: n_tokens, or less when position n_tokens falls inside a
  // full page that other sequences share: that page is read-only, so it is dropped too and the
  // sequence is cut back to the page boundary (the caller recomputes the difference). A cached
  // page that only this sequence references is taken out of the cache and kept, to be rewritten.
  // Throws when n_tokens is negative or larger than n_tokens(seq).
  int32_t truncate(SeqId seq, int32_t n_tokens);

  // Ends the sequence: each page loses a reference; at zero, cached pages go to the LRU list
  // (deepest page first, so a prefix outlives its extensions) and the others to the free list.
  void release(SeqId seq);

  // --- queries ---------------------------------------------------------------------------
  // The page table: page_table(seq)[i / page_size] holds position i. Valid until the next call
  // that changes this sequence (reserve, truncate, release).
  std::span<const PageId> page_table(SeqId seq) const;
  std::span<const TokenId> tokens(SeqId seq) const;  // the committed tokens
  int32_t n_tokens(SeqId seq) const;                 // committed tokens (K/V written)
  int32_t capacity(SeqId seq) const;                 // pages held * page_size
  // Pages only this sequence references: what release() would return to free + cached.
  int32_t exclusive_pages(SeqId seq) const;
  int32_t available_pages() const { return static_cast<int32_t>(free_.size()) + n_lru_; }
  int32_t ref_count(PageId page) const;
  bool is_cached(PageId page) const;  // registered in the prefix cache (in use or not)
  int32_t page_size() const { return page_size_; }
  int32_t n_pages() const { return n_pages_; }
  KvStats stats() const;

  // Recounts everything from scratch (reference counts from the page tables, list membership,
  // index entries) and throws Error(kInternal) naming the first inconsistency. For tests.
  void check_invariants() const;

 private:
  struct Page {
    int32_t ref = 0;      // sequences whose page table holds this page
    uint32_t gen = 0;     // bumped whenever the content identity changes (reuse, uncache)
    bool cached = false;  // registered in index_ under key
    uint64_t key = 0;     // chain key (valid when cached)
    PageId parent = -1;   // the page before it in the prefix it was registered with (-1: first)
    uint32_t parent_gen = 0;
    PageId lru_prev = -1;  // LRU links (valid when cached and ref == 0)
    PageId lru_next = -1;
  };
  struct Seq {
    std::vector<PageId> pages;
    std::vector<TokenId> tokens;  // committed
    std::vector<uint64_t> keys;   // chain key of each full page, [tokens.size() / page_size]
  };

  Seq& seq_at(SeqId seq);
  const Seq& seq_at(SeqId seq) const;
  uint64_t chain_key(uint64_t prev_key, std::span<const TokenId> page_tokens) const;
  // The cached page continuing `parent` (-1: the first page) with these tokens, or -1.
  PageId lookup(uint64_t key, PageId parent, std::span<const TokenId> page_tokens) const;
  PageId allocate();  // precondition: available_pages() > 0; returns a page with ref 1
  void unref(PageId page);
  void uncache(PageId page);  // removes from index_ (and from the LRU list when there)
  void lru_push_back(PageId page);
  void lru_remove(PageId page);
  void register_full_page(Seq& s, size_t index);

  int32_t n_pages_;
  int32_t page_size_;
  uint64_t hash_mask_;
  std::vector<Page> pages_;           // [n_pages]
  std::vector<TokenId> page_tokens_;  // [n_pages, page_size]: tokens of cached pages
  std::vector<PageId> free_;          // stack; capacity n_pages
  PageId lru_head_ = -1;              // least recently released: evicted first
  PageId lru_tail_ = -1;
  int32_t n_lru_ = 0;
  std::unordered_map<uint64_t, PageId> index_;  // chain key -> cached page
  std::unordered_map<SeqId, Seq> seqs_;
  SeqId next_seq_ = 1;
  int64_t prefix_hit_tokens_ = 0;
  int64_t prefix_query_tokens_ = 0;
  int64_t evictions_ = 0;
};

}  // namespace lightboat::runtime
