#include "base/file_bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"

namespace lightboat {
namespace {

constexpr size_t kAlignment = 64;  // bytes: a cache line, and enough for any SIMD load

std::byte* alloc_aligned(size_t n) {
  size_t rounded = (n + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (p == nullptr) throw Error(ErrorKind::kIo, "out of memory allocating " + std::to_string(n) + " bytes");
  return static_cast<std::byte*>(p);
}

// --no-mmap's buffer: 2 MiB aligned and marked for transparent huge pages (Linux; elsewhere, or
// where the kernel declines, ordinary pages). A decode step streams every weight once: with 4 KiB
// pages its 16-row walks cross a page every few lines, each crossing a TLB miss and a stop for
// the hardware prefetchers (figures: docs/performance.md, "Huge pages for the weights").
constexpr size_t kHugePage = kHugePageBytes;

// The first 2 MiB boundary at or after p.
std::byte* huge_page_up(std::byte* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  return p + (((u + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1)) - u);
}

}  // namespace

std::byte* alloc_huge_pages(size_t n) {
  const size_t rounded = (n + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) throw Error(ErrorKind::kIo, "out of memory allocating " + std::to_string(n) + " bytes");
#if defined(MADV_HUGEPAGE)
  ::madvise(p, rounded, MADV_HUGEPAGE);  // a hint: failure only costs speed
#endif
  return static_cast<std::byte*>(p);
}

namespace {

// Reads [begin, end) of the file into out + begin. Returns an empty string or the error.
std::string read_range(int fd, std::byte* out, size_t begin, size_t end) {
  size_t done = begin;
  while (done < end) {
    const ssize_t got = ::pread(fd, out + done, end - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return "at byte " + std::to_string(done) + ": " + (got == 0 ? std::string("file shrank while reading") : std::strerror(errno));
    }
    done += static_cast<size_t>(got);
  }
  return {};
}

// The kernel zeroes each fresh page on its first touch, which on VMs costs more than the copy
// (Llama-3.2-1B Q4_0, one reader: 56% of a load in clear_page, 10% in the copy). Files over
// kParallelBytes are read by up to kMaxReaders threads, each its own whole huge pages.
constexpr size_t kParallelBytes = size_t{64} << 20;
constexpr unsigned kMaxReaders = 4;

void read_all(int fd, std::byte* out, size_t size, const std::string& path) {
  const unsigned readers =
      size < kParallelBytes ? 1 : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxReaders);
  const size_t pages = (size + kHugePage - 1) / kHugePage;
  std::vector<std::string> errors(readers);
  auto part = [&](unsigned r) {
    const size_t begin = std::min(size, pages * r / readers * kHugePage);
    const size_t end = std::min(size, pages * (r + 1) / readers * kHugePage);
    errors[r] = read_range(fd, out, begin, end);
  };
  run_parts(readers, part);
  for (const auto& e : errors) {
    if (!e.empty()) throw Error(ErrorKind::kIo, "cannot read '" + path + "' " + e);
  }
}

bool huge_pages_enabled() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool enabled = [] {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string line;
    std::getline(f, line);
    return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
  }();
  return enabled;
#else
  return false;
#endif
}

// MemAvailable of /proc/meminfo in bytes (0 where unreadable). The move turns reclaimable page
// cache into private memory, so it is done only for files under half of it: a model that barely
// fits keeps the plain mapping, which the kernel can page out and back in.
size_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// Maps the file read-only at a 2 MiB-aligned address (so whole huge pages can replace its pieces),
// or returns MAP_FAILED (the caller then maps it anywhere).
void* map_aligned(int fd, size_t size) {
#if defined(__linux__) && defined(MREMAP_FIXED)
  if (!huge_pages_enabled() || size < kHugePage || size > available_memory() / 2) return MAP_FAILED;
  const size_t span = size + kHugePage;
  void* r = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return MAP_FAILED;
  auto* reserved = static_cast<std::byte*>(r);
  std::byte* base = huge_page_up(reserved);
  if (::mmap(base, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    ::munmap(reserved, span);
    return MAP_FAILED;
  }
  // Give back the reservation around it (the mapping's own last page rounds up to 4 KiB).
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::byte* end = base + (size + page - 1) / page * page;
  if (base > reserved) ::munmap(reserved, static_cast<size_t>(base - reserved));
  if (reserved + span > end) ::munmap(end, static_cast<size_t>(reserved + span - end));
  return base;
#else
  (void)fd, (void)size;
  return MAP_FAILED;
#endif
}

// Replaces the 2 MiB at `piece` (inside the mapping) by a huge-page copy of the same bytes: the
// copy is made in a fresh anonymous block, made read-only and moved over the piece by mremap (see
// HugePageMove for readers meanwhile). False if the kernel refused a step (the piece then stays
// file-backed).
bool move_piece(std::byte* piece, int fd, off_t offset) {
#if defined(__linux__) && defined(MREMAP_FIXED)
  void* r = ::mmap(nullptr, 2 * kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return false;
  auto* reserved = static_cast<std::byte*>(r);
  std::byte* slot = huge_page_up(reserved);
  if (slot > reserved) ::munmap(reserved, static_cast<size_t>(slot - reserved));
  if (reserved + 2 * kHugePage > slot + kHugePage) {
    ::munmap(slot + kHugePage, static_cast<size_t>(reserved + 2 * kHugePage - (slot + kHugePage)));
  }
  ::madvise(slot, kHugePage, MADV_HUGEPAGE);
  std::memcpy(slot, piece, kHugePage);
  if (::mprotect(slot, kHugePage, PROT_READ) != 0) {
    ::munmap(slot, kHugePage);
    return false;
  }
  if (::mremap(slot, kHugePage, kHugePage, MREMAP_MAYMOVE | MREMAP_FIXED, piece) == MAP_FAILED) {
    // mremap may have unmapped the piece before failing (ENOMEM): map the file's bytes there again.
    ::munmap(slot, kHugePage);
    ::mmap(piece, kHugePage, PROT_READ, MAP_SHARED | MAP_FIXED, fd, offset);
    return false;
  }
  return true;
#else
  (void)piece, (void)fd, (void)offset;
  return false;
#endif
}

}  // namespace

// Moves every whole 2 MiB piece of the mapping onto huge pages, in order, on one background
// thread (decoding has the cores; the move is a copy bound by page zeroing and memory), started by
// the first start() or wait() (a model starts it once its weights are bound, after discard()).
// A reader of a piece being moved sees the same bytes throughout: mremap swaps the page-table
// entries under the mm's lock, a fault meanwhile waits for it, and old and new pages hold the same
// bytes (tested with concurrent readers, file_bytes_test). A refused piece ends the move; the tail
// under 2 MiB stays file-backed. The destructor stops and joins the thread before the mapping goes.
//
// Discarded ranges (FileBytes::discard): a piece at least half discarded is not moved (its other
// bytes stay file-backed), or, moved already, is mapped from the file again; the discarded pages
// outside moved pieces are dropped from the process (MADV_DONTNEED: a later read faults them in
// from the file again). One lock orders a piece's move against discards.
constexpr size_t kMaxPieces = 32768;

struct FileBytes::HugePageMove {
  std::mutex mu;  // done, started
  std::condition_variable cv;
  bool started = false;
  bool done = false;
  std::atomic<bool> stop{false};
  std::thread thread;

  std::mutex piece_mu;                               // held while a piece moves or a discard changes the mapping
  std::vector<std::pair<size_t, size_t>> discarded;  // [begin, end) byte ranges
  std::vector<char> piece_moved;

  std::byte* base;
  size_t size;
  size_t pieces;
  int fd = -1;  // a duplicate, to map a piece again (a failed move, a discard)

  HugePageMove(std::byte* b, size_t n, int file_fd) : base(b), size(n), fd(::fcntl(file_fd, F_DUPFD_CLOEXEC, 0)) {
    // Each moved piece is a mapping of its own: at most kMaxPieces (64 GiB), far below Linux's
    // default limit of 65530 mappings per process.
    pieces = fd < 0 ? 0 : std::min(size / kHugePage, kMaxPieces);
    piece_moved.assign(pieces, 0);
  }
  ~HugePageMove() {
    stop = true;
    if (thread.joinable()) thread.join();
    if (fd >= 0) ::close(fd);
  }
  void start() {
    {
      std::lock_guard<std::mutex> g(mu);
      if (started) return;
      started = true;
    }
    try {
      thread = std::thread([this] {
        for (size_t i = 0; i < pieces && !stop.load(std::memory_order_relaxed); ++i) {
          std::lock_guard<std::mutex> g(piece_mu);
          if (mostly_discarded(i)) continue;
          if (!move_piece(base + i * kHugePage, fd, static_cast<off_t>(i * kHugePage))) break;
          piece_moved[i] = 1;
        }
        finish();
      });
    } catch (const std::system_error&) {
      finish();  // no thread: the plain mapping stays
    }
  }
  // Whether discarded ranges (which may overlap) cover at least half of piece i (call with piece_mu
  // held).
  bool mostly_discarded(size_t i) const {
    const size_t p0 = i * kHugePage, p1 = p0 + kHugePage;
    std::vector<std::pair<size_t, size_t>> in;
    for (const auto& [b, e] : discarded) {
      if (b < p1 && e > p0) in.emplace_back(std::max(b, p0), std::min(e, p1));
    }
    std::sort(in.begin(), in.end());
    size_t covered = 0, reach = p0;
    for (const auto& [b, e] : in) {
      if (e > reach) covered += e - std::max(b, reach), reach = e;
    }
    return 2 * covered >= kHugePage;
  }
  void discard(size_t begin, size_t end, size_t page) {
    std::lock_guard<std::mutex> g(piece_mu);
    discarded.emplace_back(begin, end);
    const size_t first = begin / kHugePage, last = std::min(pieces, (end + kHugePage - 1) / kHugePage);
    for (size_t i = first; i < last; ++i) {
      if (piece_moved[i] && mostly_discarded(i) &&
          ::mmap(base + i * kHugePage, kHugePage, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
                 static_cast<off_t>(i * kHugePage)) != MAP_FAILED) {
        piece_moved[i] = 0;  // back on the file's pages: its huge-page copy is freed
      }
    }
    // Drop the discarded whole pages that are not in moved pieces.
    const size_t first_page = (begin + page - 1) / page * page, last_page = end / page * page;
    for (size_t p = first_page; p < last_page;) {
      const size_t i = p / kHugePage;
      const size_t stop_at = std::min(last_page, (i + 1) * kHugePage);
      if (i >= pieces || !piece_moved[i]) ::madvise(base + p, stop_at - p, MADV_DONTNEED);
      p = stop_at;
    }
  }
  void finish() {
    std::lock_guard<std::mutex> g(mu);
    done = true;
    cv.notify_all();
  }
  // The pieces on huge-page copies now (a discard may have mapped some from the file again).
  size_t wait() {
    start();
    {
      std::unique_lock<std::mutex> g(mu);
      cv.wait(g, [this] { return done; });
    }
    std::lock_guard<std::mutex> g(piece_mu);
    return static_cast<size_t>(std::count(piece_moved.begin(), piece_moved.end(), 1));
  }
};

size_t FileBytes::wait_for_huge_pages() const { return move_ ? move_->wait() : 0; }

void FileBytes::start_huge_page_move() const {
  if (move_) move_->start();
}

void FileBytes::discard(size_t offset, size_t n) const {
  if (offset >= size_ || n == 0 || mapping_ == nullptr) return;  // read mode: the bytes stay
  const size_t end = offset + std::min(n, size_ - offset);
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (move_) {
    move_->discard(offset, end, page);
    return;
  }
  const size_t first = (offset + page - 1) / page * page, last = end / page * page;
  if (first < last) ::madvise(static_cast<std::byte*>(mapping_) + first, last - first, MADV_DONTNEED);
}

namespace {

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
  if (mode == LoadMode::kMmap || mode == LoadMode::kMmapHuge) {
    void* p = mode == LoadMode::kMmapHuge ? map_aligned(f.fd, out.size_) : MAP_FAILED;
    const bool aligned = p != MAP_FAILED;
    if (!aligned) p = ::mmap(nullptr, out.size_, PROT_READ, MAP_SHARED, f.fd, 0);
    if (p == MAP_FAILED) throw Error(ErrorKind::kIo, "cannot mmap '" + path + "': " + std::strerror(errno));
    out.mapping_ = p;
    out.data_ = static_cast<const std::byte*>(p);
    if (aligned) out.move_ = std::make_unique<HugePageMove>(static_cast<std::byte*>(p), out.size_, f.fd);
    return out;
  }
  out.owned_ = alloc_huge_pages(out.size_);
  out.data_ = out.owned_;
  read_all(f.fd, out.owned_, out.size_, path);
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

FileBytes::FileBytes() = default;

FileBytes::FileBytes(FileBytes&& other) noexcept { *this = std::move(other); }

FileBytes& FileBytes::operator=(FileBytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mode_ = other.mode_;
    mapping_ = std::exchange(other.mapping_, nullptr);
    move_ = std::move(other.move_);
    owned_ = std::exchange(other.owned_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileBytes::~FileBytes() { release(); }

void FileBytes::release() {
  move_.reset();  // stops and joins the mover before its pieces are unmapped
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
  std::free(owned_);
  mapping_ = nullptr;
  owned_ = nullptr;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace lightboat
