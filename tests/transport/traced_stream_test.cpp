// The wire-trace wrapper shows exactly the bytes a read or write moved: a single buffer in place
// (only the n bytes transferred, not the whole buffer), a buffer sequence gathered; nothing when the
// tap is off.
#include <catch2/catch.hpp>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

#include "transport/traced_stream.hpp"

using namespace interfaced::transport;
namespace asio = boost::asio;

namespace {

// Completes every operation at once with at most `limit` bytes: a partial read or write.
struct fake_stream {
  using executor_type = asio::io_context::executor_type;
  asio::io_context* io;
  std::string incoming;
  std::size_t limit = 1000;
  executor_type get_executor() noexcept { return io->get_executor(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    const std::size_t n = asio::buffer_copy(b, asio::buffer(incoming), limit);
    std::move(h)(boost::system::error_code{}, n);
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    std::move(h)(boost::system::error_code{}, std::min(limit, asio::buffer_size(b)));
  }
};

struct seen {
  std::vector<std::pair<bool, std::string>> lines;
};

}  // namespace

TEST_CASE("traced stream: the tap sees the bytes transferred of one buffer and of a buffer sequence", "[transport][trace]") {
  asio::io_context io;
  auto tap = std::make_shared<trace_tap>();
  auto log = std::make_shared<seen>();
  tap->write = [log](bool rx, std::string_view bytes) { log->lines.emplace_back(rx, std::string(bytes)); };
  tap->enabled = true;
  traced_stream<fake_stream> s(fake_stream{&io, "\x05" "ABCDEF", 4}, tap);

  std::size_t got = 0;
  std::array<char, 16> buf{};
  s.async_read_some(asio::buffer(buf), [&](boost::system::error_code, std::size_t n) { got = n; });
  CHECK(got == 4);
  const std::string out = "\x06hello";
  s.async_write_some(asio::buffer(out), [&](boost::system::error_code, std::size_t n) { got = n; });
  CHECK(got == 4);
  const std::string a = "XY", b = "Z12";
  const std::array<asio::const_buffer, 2> seq{asio::buffer(a), asio::buffer(b)};
  s.async_write_some(seq, [&](boost::system::error_code, std::size_t n) { got = n; });
  CHECK(got == 4);

  REQUIRE(log->lines.size() == 3);
  CHECK(log->lines[0] == std::pair<bool, std::string>(true, "\x05" "ABC"));
  CHECK(log->lines[1] == std::pair<bool, std::string>(false, "\x06hel"));
  CHECK(log->lines[2] == std::pair<bool, std::string>(false, "XYZ1"));

  tap->enabled = false;
  s.async_write_some(asio::buffer(out), [&](boost::system::error_code, std::size_t) {});
  CHECK(log->lines.size() == 3);
}
