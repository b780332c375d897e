#pragma once
// SHA-256 over OpenSSL's EVP interface, fed in pieces (a file streamed from disk is hashed as it
// is read, never held whole), and the digest of a file on disk. Lower-case hex out.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace interfaced::transport {

class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256& other);  // a copy continues from the same state (a digest taken early)
  sha256& operator=(const sha256&) = delete;
  void update(std::string_view bytes);
  // The digest of everything so far; the object can be fed no more.
  [[nodiscard]] std::string hex();

 private:
  struct ctx;
  std::unique_ptr<ctx> ctx_;
};

struct file_digest {
  std::uint64_t size = 0;
  std::string sha256;
};
// Reads the file once, in 256 KiB pieces; nullopt when it cannot be read.
[[nodiscard]] std::optional<file_digest> digest_file(const std::filesystem::path& file);

}  // namespace interfaced::transport
