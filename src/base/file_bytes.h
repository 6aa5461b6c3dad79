// The bytes of a whole file, read-only: either mapped (mmap, shared, zero copy; or moved onto huge
// pages, LoadMode below) or read into
// 2 MiB-aligned memory with transparent huge pages where Linux grants them (--no-mmap; large
// files by several threads). Move-only; unmaps or frees on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace lightboat {

// kMmap: the file mapped (shared with the page cache and other processes; nothing copied).
// kMmapHuge: mapped too, then (Linux, transparent huge pages enabled) each whole 2 MiB piece of
// the mapping replaced in place by a private huge-page copy of the same bytes, by a background
// thread (so loading is not slowed) that start_huge_page_move() starts: RSS is unchanged, but the
// pages are no longer shared with other processes. Elsewhere it is kMmap.
// kRead: read into memory (huge pages where granted).
enum class LoadMode { kMmap, kMmapHuge, kRead };

// The mode of the options every front end offers: --no-mmap (mapped = false) reads; a mapping
// moves onto huge pages unless --no-huge-pages.
inline LoadMode load_mode(bool mapped, bool huge_pages) {
  return !mapped ? LoadMode::kRead : huge_pages ? LoadMode::kMmapHuge : LoadMode::kMmap;
}

// Memory for bytes made from a file's (gguf::Reader::derived): n rounded up to kHugePageBytes,
// that aligned, and marked for transparent huge pages where Linux has them. Free with std::free.
// Throws Error(kIo) when out of memory.
inline constexpr size_t kHugePageBytes = size_t{2} << 20;
std::byte* alloc_huge_pages(size_t n);

class FileBytes {
 public:
  // Throws Error(kNotFound / kIo) naming the path.
  static FileBytes open(const std::string& path, LoadMode mode = LoadMode::kMmap);
  // Wraps bytes already in memory (tests, in-memory GGUF round trips). Copies them.
  static FileBytes from_memory(std::span<const std::byte> bytes);

  FileBytes();
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }  // bytes
  LoadMode mode() const { return mode_; }
  // kMmapHuge: starts the background move onto huge pages (once; nothing otherwise). A model starts
  // it when its weights are bound, so that the move skips what it discarded.
  void start_huge_page_move() const;
  // kMmapHuge: starts the move if need be and blocks until it has finished (at once otherwise).
  // Returns the whole 2 MiB pieces now on anonymous huge-page copies.
  size_t wait_for_huge_pages() const;
  // The caller will not read [offset, offset + n) again (its bytes live elsewhere now, as a derived
  // layout): mapped files give its whole pages back to the OS (a later read still sees the file's
  // bytes, faulted in again), and the huge-page move skips or undoes pieces mostly discarded. Read
  // mode (and from_memory) keeps the bytes. Safe beside readers of other bytes.
  void discard(size_t offset, size_t n) const;
  const std::string& path() const { return path_; }

 private:
  void release();

  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  LoadMode mode_ = LoadMode::kRead;
  struct HugePageMove;            // the background thread of kMmapHuge and its progress
  void* mapping_ = nullptr;       // mmap base when mode_ is kMmap or kMmapHuge
  std::unique_ptr<HugePageMove> move_;
  std::byte* owned_ = nullptr;    // aligned heap block when mode_ == kRead
  std::string path_;
};

}  // namespace lightboat
