#pragma once
// The analyser simulator's player (internal to daemon/sim): establishes the link (connect, listen,
// pty) and plays the script over it, ASTM (player_astm.cpp) or HL7 (player_hl7.cpp), with the faults
// asked for. Its stream templates are instantiated for the two streams it uses (tcp::socket,
// posix::stream_descriptor) in the file that defines them.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "daemon/exit_codes.hpp"
#include "daemon/sim/analyser_sim.hpp"
#include "parsers/astm/frame_decoder.hpp"
#include "parsers/astm/link.hpp"

namespace interfaced::sim::detail {

using sim_clock = std::chrono::steady_clock;

std::string plural(std::size_t n, const char* what);

class player {
 public:
  player(boost::asio::io_context& io, const sim_script& script, const sim_options& opt, std::ostream& out,
         std::ostream& err)
      : io_(io), script_(script), opt_(opt), out_(out), err_(err),
        total_(script.messages.size() * static_cast<std::size_t>(std::max(opt.repeat, 1))) {}

  boost::asio::awaitable<void> run();

  [[nodiscard]] bool finished() const noexcept { return finished_; }
  [[nodiscard]] int status() const noexcept { return status_; }
  // Messages the daemon accepted (AA / CA; ASTM: end frame ACKed) and refused (AE / AR / CE / CR,
  // a reply without MSA; ASTM: given up), by reason: "AE 1463, AR 2".
  [[nodiscard]] std::size_t acknowledged() const noexcept { return acked_; }
  [[nodiscard]] std::size_t refused() const noexcept;
  [[nodiscard]] std::string refusals() const;
  // ASTM replies that were not ACK over the run (NAK, or anything LIS1-A 6.5.1.2 counts as one).
  [[nodiscard]] std::size_t naks() const noexcept { return naks_; }
  [[nodiscard]] std::size_t total() const noexcept { return total_; }
  [[nodiscard]] const std::string& symlink() const noexcept { return symlink_; }

 private:
  enum class outcome { done, lost, failed };

  const std::string& message(std::size_t i) const { return script_.messages[i % script_.messages.size()]; }
  std::string label(std::size_t i) const { return "message " + std::to_string(i + 1) + "/" + std::to_string(total_); }
  int final_status() const;
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds d);

  // links (player.cpp)
  boost::asio::awaitable<int> run_connect();
  boost::asio::awaitable<int> run_listen();
  boost::asio::awaitable<int> run_pty();
  std::optional<int> after_connection(outcome o, int connection);
  template <class Stream>
  boost::asio::awaitable<bool> write(Stream& s, std::string_view bytes);
  template <class Stream>
  void finish_stream(Stream& s);
  template <class Stream>
  boost::asio::awaitable<outcome> play(Stream& s);

  // ASTM (player_astm.cpp)
  struct astm_session {
    astm::link link;
    astm::frame_decoder decoder;
    std::optional<astm::timer_id> timer;
    sim_clock::time_point timer_at = sim_clock::time_point::max();
    std::string last_frame;      // bytes of the frame awaiting a reply
    int last_frame_index = 0;    // its number over the run (first transmissions)
    bool last_reply_ack = true;  // the previous frame was ACKed: the next frame sent is new
    bool holding_ack = false;    // the duplicate of last_frame was sent; its reply is awaited
    std::size_t frames = 0;
    std::size_t naks = 0;
    int failures = 0;
    explicit astm_session(astm::link_options o) : link(std::move(o)) {}
  };
  astm::link_options astm_options() const;
  template <class Stream>
  boost::asio::awaitable<bool> perform(Stream& s, astm_session& ss, astm::link_actions acts, outcome& o);
  template <class Stream>
  boost::asio::awaitable<outcome> play_astm(Stream& s);

  // HL7 (player_hl7.cpp)
  template <class Stream>
  boost::asio::awaitable<outcome> play_hl7(Stream& s);

  boost::asio::io_context& io_;
  const sim_script& script_;
  const sim_options& opt_;
  std::ostream& out_;
  std::ostream& err_;
  std::size_t total_;
  std::size_t next_ = 0;  // the next message to play; all before it are acknowledged
  int frame_count_ = 0;
  std::uint64_t written_ = 0;
  bool dropped_ = false;
  bool duplicated_ = false;
  bool any_failed_ = false;
  std::size_t acked_ = 0;
  std::size_t naks_ = 0;
  std::vector<std::pair<std::string, std::size_t>> refused_;  // reason, count; in order first seen
  void count_refused(const std::string& reason);
  bool finished_ = false;
  int status_ = exit_bad_input;
  std::string symlink_;
};

}  // namespace interfaced::sim::detail
