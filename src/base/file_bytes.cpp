#include "base/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "base/error.h"

namespace lightboat {
namespace {

constexpr size_t kAlignment = 64;  // bytes: a cache line, and enough for any SIMD load

std::byte* alloc_aligned(size_t n) {
  size_t rounded = (n + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (p == nullptr) throw Error(ErrorKind::kIo, "out of memory allocating " + std::to_string(n) + " bytes");
  return static_cast<std::byte*>(p);
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

FileBytes FileBytes::open(const std::string& path, LoadMode mode) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    int err = errno;
    throw Error(err == ENOENT ? ErrorKind::kNotFound : ErrorKind::kIo,
                "cannot open '" + path + "': " + std::strerror(err));
  }
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) throw Error(ErrorKind::kIo, "cannot stat '" + path + "': " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::kIo, "'" + path + "' is not a regular file");

  FileBytes out;
  out.path_ = path;
  out.size_ = static_cast<size_t>(st.st_size);
  out.mode_ = mode;
  if (out.size_ == 0) {
    // mmap of zero bytes fails; an empty file is still a valid (if useless) byte span.
    out.mode_ = LoadMode::kRead;
    return out;
  }
  if (mode == LoadMode::kMmap) {
    void* p = ::mmap(nullptr, out.size_, PROT_READ, MAP_SHARED, f.fd, 0);
    if (p == MAP_FAILED) throw Error(ErrorKind::kIo, "cannot mmap '" + path + "': " + std::strerror(errno));
    out.mapping_ = p;
    out.data_ = static_cast<const std::byte*>(p);
    return out;
  }
  out.owned_ = alloc_aligned(out.size_);
  out.data_ = out.owned_;
  size_t done = 0;
  while (done < out.size_) {
    ssize_t got = ::read(f.fd, out.owned_ + done, out.size_ - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw Error(ErrorKind::kIo, "cannot read '" + path + "' at byte " + std::to_string(done) + ": " +
                                      (got == 0 ? std::string("file shrank while reading") : std::strerror(errno)));
    }
    done += static_cast<size_t>(got);
  }
  return out;
}

FileBytes FileBytes::from_memory(std::span<const std::byte> bytes) {
  FileBytes out;
  out.size_ = bytes.size();
  out.mode_ = LoadMode::kRead;
  out.path_ = "<memory>";
  if (!bytes.empty()) {
    out.owned_ = alloc_aligned(bytes.size());
    std::memcpy(out.owned_, bytes.data(), bytes.size());
    out.data_ = out.owned_;
  }
  return out;
}

FileBytes::FileBytes(FileBytes&& other) noexcept { *this = std::move(other); }

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mode_ = other.mode_;
    mapping_ = std::exchange(other.mapping_, nullptr);
    owned_ = std::exchange(other.owned_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileBytes::~FileBytes() { release(); }

void FileBytes::release() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  std::free(owned_);
  mapping_ = nullptr;
  owned_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace lightboat
