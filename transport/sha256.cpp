#include "transport/sha256.hpp"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include <openssl/evp.h>

namespace interfaced::transport {

struct sha256::ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~ctx() { EVP_MD_CTX_free(md); }
};

sha256::sha256() : ctx_(std::make_unique<ctx>()) {
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("sha256: OpenSSL could not start a digest");
}

sha256::sha256(const sha256& other) : ctx_(std::make_unique<ctx>()) {
  if (ctx_->md == nullptr || EVP_MD_CTX_copy_ex(ctx_->md, other.ctx_->md) != 1)
    throw std::runtime_error("sha256: OpenSSL could not copy a digest");
}

sha256::~sha256() = default;

void sha256::update(std::string_view bytes) { EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size()); }

std::string sha256::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &n);
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += digits[out[i] >> 4];
    s += digits[out[i] & 15];
  }
  return s;
}

std::optional<file_digest> digest_file(const std::filesystem::path& file) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return std::nullopt;
  std::vector<char> buf(256 * 1024);
  sha256 h;
  file_digest d;
  for (;;) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) {
      h.update(std::string_view(buf.data(), n));
      d.size += n;
    }
    if (n < buf.size()) {
      if (std::ferror(f.get())) return std::nullopt;
      break;
    }
  }
  d.sha256 = h.hex();
  return d;
}

}  // namespace interfaced::transport
