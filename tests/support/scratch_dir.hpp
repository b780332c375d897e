#pragma once
// A fresh directory under the system temp dir for one test (outbox files, configurations,
// children's logs), removed with everything in it when the object dies -- unless
// INTERFACED_TEST_KEEP is set in the environment, to look at what a failed test left.

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace interfaced::test {

class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "interfaced-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::filesystem::filesystem_error("mkdtemp", tmpl,
                                              std::error_code(errno, std::generic_category()));
    }
    path_ = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (std::getenv("INTERFACED_TEST_KEEP") == nullptr) std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace interfaced::test
