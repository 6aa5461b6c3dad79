// The bytes of a whole file, read-only: either mapped (mmap, shared, zero copy) or read into
// 2 MiB-aligned memory with transparent huge pages where Linux grants them (--no-mmap; large
// files by several threads). Move-only; unmaps or frees on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace lightboat {

enum class LoadMode { kMmap, kRead };

class FileBytes {
 public:
  // Throws Error(kNotFound / kIo) naming the path.
  static FileBytes open(const std::string& path, LoadMode mode = LoadMode::kMmap);
  // Wraps bytes already in memory (tests, in-memory GGUF round trips). Copies them.
  static FileBytes from_memory(std::span<const std::byte> bytes);

  FileBytes() = default;
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }  // bytes
  LoadMode mode() const { return mode_; }
  const std::string& path() const { return path_; }

 private:
  void release();

  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  LoadMode mode_ = LoadMode::kRead;
  void* mapping_ = nullptr;       // mmap base when mode_ == kMmap
  std::byte* owned_ = nullptr;    // aligned heap block when mode_ == kRead
  std::string path_;
};

}  // namespace lightboat
