#pragma once
// Test helpers: read captures from ../shared (skipped with a clear message when absent) and the
// repo's own fixtures; scratch directories; TLS certificates for loopback servers.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>

namespace interfaced::test {

inline std::filesystem::path shared_dir() { return INTERFACED_SHARED_DIR; }
inline std::filesystem::path fixture_dir() { return INTERFACED_FIXTURE_DIR; }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The bytes of ../shared/captures/<rel>, or nullopt (with a Catch2 WARN) when ../shared is absent.
inline std::optional<std::string> capture(const std::string& rel) {
  auto p = shared_dir() / "captures" / rel;
  if (!std::filesystem::exists(p)) {
    WARN("SKIPPED: " << p.string() << " not found (../shared is absent); capture test not run");
    return std::nullopt;
  }
  return read_file(p);
}

// A fresh directory under the system temp dir, removed at the end of the test.
class scratch_dir {
 public:
  scratch_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("interfaced-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A test CA and a server certificate signed by it for 127.0.0.1 / localhost, written into `dir` by
// the openssl command: ca.pem (what a client trusts), server.pem and server.key (what a server
// serves).
inline void write_test_certificates(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  const std::string cmd =
      "cd '" + d + "' && "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
      "-days 2 -subj '/CN=interfaced test CA' -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign && "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr "
      "-subj '/CN=127.0.0.1' && "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
      "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
      "-extfile ext.cnf";
  REQUIRE(std::system(("(" + cmd + ") >'" + d + "/openssl.log' 2>&1").c_str()) == 0);
}

}  // namespace interfaced::test
