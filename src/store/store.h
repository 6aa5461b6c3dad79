// The local model store: a directory ($LIGHTBOAT_HOME, default ~/.local/share/lightboat) of
//
//   blobs/sha256-<hex>              content-addressed GGUF files, never modified once admitted
//   manifests/<name>/<tag>.json     name:tag -> blob digest + facts (store/manifest.h)
//   partial/<key>.part, <key>.meta  downloads in progress (store/pull.h), never read as models
//   lock                            flock(2) held while blobs or manifests are admitted/removed
//
// Consistency: a blob appears in blobs/ only by rename(2) of a complete, verified file; a
// manifest is replaced only by an atomic write (store/fs.h) after its blob is durable. So at
// every instant each manifest names a complete blob; a crash can leave at most an unreferenced
// blob or a stray temp file, which cleanup() removes. Reads take no lock (renames are atomic);
// every change is made under the store lock, so concurrent lightboat processes serialise.
//
// For the server (hot update, issue 8 items 5-6): resolve() gives the blob path and digest a tag
// names now; snapshot() + diff() detect tags re-pointed by any process (poll them), and
// on_change() listeners hear the changes this Store object makes itself, at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/manifest.h"
#include "store/names.h"

namespace lightboat::store {

// What a blob's GGUF header says (it is fully validated by gguf::Reader to get it).
struct GgufFacts {
  std::string architecture;  // general.architecture, "" when absent
  std::string quantization;  // the ggml type holding most bytes of the ≥2-D tensors
};
// Throws what gguf::Reader::open throws (kFormat naming the field for a bad or truncated file).
GgufFacts inspect_gguf(const std::string& path);

struct Resolved {
  std::string path;   // the blob file to open
  Manifest manifest;  // digest, size, architecture ...
};

// A tag whose blob changed between two snapshots; a digest is "" where the tag did not exist.
struct TagChange {
  ModelRef ref;
  std::string before, after;  // "sha256:<hex>" or ""
};

using Snapshot = std::map<std::string, std::string>;  // "name:tag" -> "sha256:<hex>"

// Downloads by every process using this store, kept in <root>/pull-stats.json (for metrics).
struct PullStats {
  int64_t pulls = 0;     // pulls that admitted or linked a blob
  int64_t failures = 0;  // pulls that ended with an error
  int64_t bytes = 0;     // bytes received over the network, by successful and failed pulls
};

struct RemoveResult {
  std::string digest;         // the digest the removed tag named
  bool blob_removed = false;  // false when another tag still names it
};

class Store {
 public:
  // Does not touch the disk: directories are made on the first change.
  explicit Store(std::string root);
  // $LIGHTBOAT_HOME when set and non-empty, else $XDG_DATA_HOME/lightboat, else
  // $HOME/.local/share/lightboat. Throws kNotFound when none of them is set.
  static std::string default_root();

  const std::string& root() const { return root_; }
  std::string blob_path(const std::string& hex) const;  // blobs/sha256-<hex>
  std::string manifest_path(const ModelRef& ref) const;
  std::string partial_dir() const;
  std::string lock_path() const;
  bool has_blob(const std::string& hex) const;

  // The manifest of `ref`, nullopt when the tag does not exist. Throws kFormat for a corrupt one.
  std::optional<Manifest> find(const ModelRef& ref) const;
  // As find(), and the blob must exist; throws kNotFound naming the model and how to get it.
  Resolved resolve(const ModelRef& ref) const;
  // Every tag, sorted by name:tag. A manifest that cannot be parsed is skipped.
  std::vector<Manifest> list() const;

  // Moves `file` (complete, SHA-256 `hex` already verified by the caller, on the same file
  // system) into blobs/ — or deletes it when that blob is already there — and points `ref` at
  // it with a new manifest (facts from inspect_gguf). Returns the manifest written.
  Manifest admit(const std::string& file, const std::string& hex, const ModelRef& ref, const std::string& source);
  // Points `ref` at a blob already in the store (a pull of content already there).
  Manifest link(const ModelRef& ref, const std::string& hex, const std::string& source);
  // dst now names src's blob (replacing what dst named; that blob is removed if orphaned).
  Manifest tag(const ModelRef& src, const ModelRef& dst);
  // Removes the tag; its blob goes when no other tag names it. kNotFound when the tag is absent.
  RemoveResult remove(const ModelRef& ref);
  // Removes stray temp files and blobs no tag names (left by a crash between the two renames).
  // Returns the number of files removed. Partial downloads are kept (they resume).
  int cleanup();

  // Adds one pull's outcome to pull-stats.json, under the store lock. Never throws: statistics
  // must not fail a pull (an unreadable file starts again from zero).
  void record_pull(uint64_t bytes, bool ok) noexcept;
  PullStats pull_stats() const;  // zeros when nothing was recorded yet

  Snapshot snapshot() const;
  static std::vector<TagChange> diff(const Snapshot& before, const Snapshot& after);
  // Called (on the changing thread, after the change is durable) for every tag this object
  // re-points, creates or removes.
  void on_change(std::function<void(const TagChange&)> listener);

 private:
  void ensure_dirs() const;
  void write_manifest_locked(const Manifest& m);
  // Writes m as ref's manifest, removes the blob ref named before if orphaned; returns the change.
  TagChange repoint_locked(const Manifest& m);
  // Unlinks the blob when no manifest names it; the store lock must be held.
  bool remove_blob_if_orphan_locked(const std::string& hex);
  void notify(const TagChange& change);

  std::string root_;
  std::mutex listeners_mu_;
  std::vector<std::function<void(const TagChange&)>> listeners_;
};

}  // namespace lightboat::store
