// Crash-safe file primitives of the store: atomic replacement of small files, directory fsync,
// and advisory locks (flock) that other lightboat processes honour.
//
// Atomic write = write a uniquely named temp file in the same directory, fsync it, rename(2) it
// over the target, fsync the directory. A crash at any point leaves either the old or the new
// file under the target name (never a torn one); at worst a stray ".tmp-*" file, which readers
// ignore and Store::cleanup() removes.
#pragma once

#include <string>
#include <string_view>

namespace lightboat::store {

// Replaces `path` with `content` atomically (above). Throws Error(kIo) naming the path.
void atomic_write_file(const std::string& path, std::string_view content);

// fsync(2) of a directory, so that a rename or unlink inside it is durable.
void fsync_dir(const std::string& dir);

// fsync(2) of a file by path.
void fsync_file(const std::string& path);

// mkdir -p; Throws Error(kIo) naming the path.
void make_dirs(const std::string& dir);

// The whole content of a small file. Throws Error(kNotFound/kIo) naming the path.
std::string read_small_file(const std::string& path);

// An exclusive flock(2) on a lock file (created when missing), held until destruction. flock is
// released by the kernel when the process dies (kill -9 included), so a lock never goes stale.
class FileLock {
 public:
  // Blocks until the lock is held. Throws Error(kIo) naming the path.
  explicit FileLock(const std::string& path);
  // Does not block: held() says whether it was acquired.
  FileLock(const std::string& path, bool try_only);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  bool held() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace lightboat::store
