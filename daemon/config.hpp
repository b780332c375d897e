#pragma once
// The daemon's configuration: one JSON file (comments allowed), default
// /etc/interfaced/interfaced.json. Loading validates everything and lists every problem with its
// JSON pointer and what is expected; `check-config` prints them, `run` refuses to start on any
// (exit 78, EX_CONFIG), SIGHUP applies a new file only when it is valid.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "devices/profile.hpp"
#include "parsers/text_codec.hpp"
#include "rerun/qc.hpp"
#include "transport/backend_options.hpp"
#include "transport/outbox_options.hpp"

namespace interfaced::daemon {

inline constexpr const char* default_config_path = "/etc/interfaced/interfaced.json";

struct config_problem {
  std::string pointer;  // JSON pointer, "" for the document
  std::string message;  // what is wrong and what is expected
};

struct serial_link {
  std::string device;        // /dev/ttyUSB0
  unsigned baud = 9600;      // 1200 .. 115200
  unsigned data_bits = 8;    // 7 | 8
  std::string parity = "none";  // none | even | odd
  unsigned stop_bits = 1;    // 1 | 2
  std::string flow_control = "none";  // none | rts-cts | xon-xoff
  bool dtr = true;
  bool rts = true;
  friend bool operator==(const serial_link&, const serial_link&) = default;
};

struct keepalive {
  bool enabled = true;
  unsigned idle_s = 60;
  unsigned interval_s = 10;
  unsigned count = 5;
  friend bool operator==(const keepalive&, const keepalive&) = default;
};

struct tcp_server_link {
  std::string bind = "0.0.0.0";
  std::uint16_t port = 0;
  std::vector<std::string> allow;  // peer addresses; empty: any
  keepalive ka;
  friend bool operator==(const tcp_server_link&, const tcp_server_link&) = default;
};

struct tcp_client_link {
  std::string host;
  std::uint16_t port = 0;
  std::chrono::milliseconds reconnect_initial{1000};
  std::chrono::milliseconds reconnect_max{60000};
  keepalive ka;
  friend bool operator==(const tcp_client_link&, const tcp_client_link&) = default;
};

// A folder device's link (protocol "files", link type "folder"; file-reports.md "Folder devices"):
// the export folder the analyser writes files into, watched with inotify and scanned every
// scan_s (network shares, where inotify sees nothing).
struct folder_link {
  std::string path;               // absolute
  std::string pattern = "*";      // glob over file names ("*.pdf")
  std::string done = "done";      // taken files go here (relative to path, or absolute)
  std::string failed = "failed";  // files that cannot be read go here, with <name>.error.txt
  unsigned scan_s = 10;           // periodic scan (0: inotify only, plus the scan at start)
  std::int64_t settle_ms = 2000;  // a file found by a scan is complete when unchanged this long
  friend bool operator==(const folder_link&, const folder_link&) = default;
};

// A device's "files" (file-reports.md): where the files its results name lie, and how they are
// sent. Without a root, file references stay plain values (no file-type report).
struct device_files {
  std::string root;                     // file references resolve under it
  std::int64_t settle_ms = 2000;        // complete when unchanged this long
  std::int64_t wait_s = 600;            // then a dead letter naming the file that never came
  std::uint64_t max_bytes = 64ull << 20;  // larger files are refused before presign
  std::vector<std::string> allowed_types;  // content types ("image/*" allowed); empty: any
  std::string mode = "presigned";       // presigned | inline
  friend bool operator==(const device_files&, const device_files&) = default;
};

struct device_config {
  std::string id;
  std::string protocol = "astm";  // astm | hl7 | files (a folder device)
  std::string profile;            // profile id; empty: detect from the H record (ASTM)
  std::optional<text_encoding> encoding;  // overrides the profile's
  std::string link_type;          // serial | tcp-server | tcp-client | folder
  serial_link serial;
  tcp_server_link server;
  tcp_client_link client;
  folder_link folder;
  bool trace = false;             // wire trace on at start
  std::size_t frame_text_size = 0;  // 0: the profile's
  std::optional<bool> order_download;  // "orders": {"download": ...}; empty: the profile's (off without one)
  // No message for longer than this raises DEVICE-001 (cleared by the next message); empty: never.
  std::optional<std::chrono::seconds> silent_after;
  // tcp-server: sessions at once (a reconnect from the same address replaces its session
  // whatever the limit). Default by protocol: ASTM 1 (a serial line carried over TCP), HL7 4.
  std::size_t max_sessions = 0;
  // HL7: no byte for this long inside a message closes the connection (0: never).
  unsigned idle_timeout_s = 30;
  // Unfinished bytes all this device's sessions may hold together; over it a session is closed.
  std::size_t max_buffered_bytes = 8u << 20;
  device_files files;
  friend bool operator==(const device_config&, const device_config&) = default;
};

// "backend": transport's options (where, credentials, timeouts, endpoint paths) and the polling
// period, which only the daemon uses.
struct backend_config : transport::backend_options {
  bool allow_insecure_http = false;  // a bearer token over http:// (a lab's closed network, tests)
  std::chrono::seconds waiting_list_poll{60};
};

// "outbox": transport's options (file, capacity) and the result history's age, which the daemon
// applies.
struct outbox_config : transport::outbox_options {
  // Days the result history behind seen(S,P) is kept (in the outbox file; rerun.md: a result
  // older than that counts as a first result again).
  unsigned history_days = 30;
  // Delivered messages are deleted this many days after delivery (0: kept until `outbox purge`).
  unsigned keep_delivered_days = 30;
};

// "delivery": when a condition becomes an alarm (transport/delivery.hpp).
struct delivery_config {
  std::chrono::seconds stuck_after{15 * 60};        // a message pending this long: DELIVERY-001
  std::chrono::seconds unreachable_after{5 * 60};   // no answer from the backend this long: BACKEND-001
};

struct logging_config {
  std::filesystem::path dir = "/var/log/interfaced";
  std::string level = "info";
  std::size_t device_file_size = 10 * 1024 * 1024;
  std::size_t device_file_count = 5;
};

// "links": limits over every device's links together.
struct links_config {
  std::size_t max_buffered_bytes = 64u << 20;  // unfinished bytes of every session together
};

struct health_config {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 9750;  // 0: off
  // Routes that change something (POST /trace, the dashboard's actions) need
  // "Authorization: Bearer <this file's token>"; without the file they are refused.
  std::string admin_token_file;
};

// "lab": facts about the lab itself.
struct lab_config {
  // IANA zone name ("Europe/Berlin"); empty: the machine's zone. Times analysers send without an
  // offset are read in it, and every time the daemon writes carries its offset (rerun/lab_time.hpp).
  std::string timezone;
};

// "help": the site's own help items (REQ-HELP-003), merged over the shipped ones by id.
struct help_config {
  std::filesystem::path items_file = "/etc/interfaced/help-items.json";  // missing: the shipped items only
};

struct config {
  std::vector<device_config> devices;
  lab_config lab;
  help_config help;
  backend_config backend;
  outbox_config outbox;
  delivery_config delivery;
  logging_config logging;
  health_config health;
  links_config links;
  // "qc" (qc.md, docs/configuration.md): limits, controls, rule sets; absent: control results are
  // still posted to qc-results (outcome no_limits unless the backend or the analyser gives limits)
  // and patient results carry no qc_status.
  rerun::qc::qc_config qc;
  std::filesystem::path profile_dir;  // empty: built-in
  std::filesystem::path rules_file;   // empty: none
  std::filesystem::path control_socket = "/run/interfaced/control.sock";
};

struct config_result {
  config cfg;
  std::vector<config_problem> problems;
  // Not a reason to refuse the file: the service starts and raises an alarm (a serial device
  // missing now may be plugged in later). `check-config --strict` counts them as problems.
  std::vector<config_problem> warnings;
  [[nodiscard]] bool ok() const noexcept { return problems.empty(); }
};

// Parses and validates. `catalog` is used to check profile ids (nullptr: the built-in folder, or
// the one the file names). check_devices: also check serial devices are readable and writable
// (a warning when not: see config_result::warnings).
[[nodiscard]] config_result parse_config(std::string_view text, bool check_devices = true);
// A device id names its log file, its trace file and its metrics: letters, digits, '.', '_', '-',
// not starting with '.', at most 64 characters (no path, no quoting problem anywhere).
[[nodiscard]] bool valid_device_id(std::string_view id) noexcept;
// An IPv4 or IPv6 address in text form ("127.0.0.1", "::1"); names are not addresses.
[[nodiscard]] bool valid_ip_address(const std::string& text) noexcept;
[[nodiscard]] bool is_loopback_address(const std::string& text) noexcept;
// health.admin_token_file's token (trimmed); throws std::runtime_error naming the file (never the
// token) when it cannot be read or is empty.
[[nodiscard]] std::string load_admin_token(const health_config& h);

[[nodiscard]] config_result load_config(const std::filesystem::path& path, bool check_devices = true);

// Thrown at start-up with every problem, formatted one per line.
class config_error : public std::runtime_error {
 public:
  config_error(const std::filesystem::path& file, const std::vector<config_problem>& problems);
  std::vector<config_problem> problems;
};

[[nodiscard]] std::string format_problem(const std::filesystem::path& file, const config_problem& p);

}  // namespace interfaced::daemon
