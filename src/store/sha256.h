// SHA-256 (FIPS 180-4) over OpenSSL's libcrypto EVP interface: it uses the CPU's SHA extensions
// where present (several GB/s), which matters when a multi-GiB blob is verified before admission,
// and libcrypto is already in the process through libcurl's TLS.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace lightboat::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> bytes);
  void update(std::string_view bytes);
  // The digest as 64 lowercase hex digits. The object is reset and can hash again.
  std::string hex_final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The SHA-256 of a whole file, read in 1 MiB chunks. Throws Error(kNotFound/kIo) naming the path.
std::string sha256_file(const std::string& path);

// True when `hex` is 64 hex digits (either case).
bool is_sha256_hex(std::string_view hex);

}  // namespace lightboat::store
