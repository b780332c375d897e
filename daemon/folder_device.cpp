#include "daemon/folder_device.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "daemon/clock.hpp"
#include "devices/file_report.hpp"
#include "devices/folder_file.hpp"
#include "transport/folder_watch.hpp"
#include "transport/sha256.hpp"

namespace interfaced::daemon {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// Larger files are not read for results (no ASTM/HL7/CSV export is this big): they are reports,
// hashed while streamed.
constexpr std::uint64_t max_parsed_bytes = 64ull << 20;

fs::path sub_folder(const fs::path& dir, const std::string& name) {
  const fs::path p(name);
  return p.is_absolute() ? p : dir / p;
}

struct folder_context {
  asio::io_context& io;
  device_runtime* dev;
  const devices::profile_catalog& catalog;
  ingest_hand_off& sink;
  fs::path dir;
  fs::path done_dir;
  fs::path failed_dir;
};

void fail_file(const folder_context& c, const fs::path& file, const std::string& code, const std::string& why) {
  const std::string name = file.filename().string();
  fs::path target = c.failed_dir / name;
  std::error_code ec;
  if (fs::exists(target, ec)) target = c.failed_dir / (name + "." + std::to_string(std::time(nullptr)));
  if (auto mec = transport::move_file_durably(file, target)) {
    c.dev->log->error("file {}: {}; it cannot be moved to {}: {} [FOLDER-005]", name, why, c.failed_dir.string(), mec.message());
    return;
  }
  const std::string text = "interfaced " + now_iso_ms() + " device " + c.dev->cfg.id + "\n" + name + ": " + why + " [" + code + "]\n";
  if (auto wec = transport::write_text_file(fs::path(target.string() + ".error.txt"), text))
    c.dev->log->error("file {}: cannot write its .error.txt: {} [FOLDER-005]", name, wec.message());
  c.dev->log->warn("file {}: {}; moved to {} [{}]", name, why, target.string(), code);
}

void take_file(const std::shared_ptr<folder_context>& c, const fs::path& file, const std::function<void()>& finished) {
  device_runtime* dev = c->dev;
  const std::string name = file.filename().string();
  bool too_big = false;
  std::string error;
  std::optional<std::string> bytes = transport::read_small_file(file, max_parsed_bytes, too_big, error);
  std::string sha;
  if (bytes) {
    transport::sha256 h;
    h.update(*bytes);
    sha = h.hex();
  } else if (too_big) {
    if (auto d = transport::digest_file(file)) sha = d->sha256;
    else error = "cannot read it";
  }
  if (sha.empty()) {
    fail_file(*c, file, "FOLDER-003", "cannot read the file: " + error);
    finished();
    return;
  }
  const std::string key = "folder:" + dev->cfg.id + ":" + sha;
  if (auto taken = c->sink.document(key)) {
    // Committed before a crash (or the same bytes dropped again): moved, never sent twice.
    const auto j = nlohmann::json::parse(*taken, nullptr, false);
    fs::path target = j.is_object() && j.contains("done") ? fs::path(j.value("done", "")) : c->done_dir / name;
    std::error_code ec;
    if (fs::exists(target, ec)) target = c->done_dir / (name + "." + sha.substr(0, 12) + ".again");
    if (auto mec = transport::move_file_durably(file, target))
      dev->log->error("file {}: cannot move it to {}: {} [FOLDER-005]", name, target.string(), mec.message());
    else
      dev->log->info("file {}: already taken (SHA-256 {} is in the outbox); moved to {} without sending it again", name,
                     sha, target.string());
    finished();
    return;
  }
  // Where it will lie once taken: decided before the commit, so a file-type report names its
  // final path and a restart after the commit moves it to the same place.
  fs::path target = c->done_dir / name;
  std::error_code ec;
  if (fs::exists(target, ec)) {
    const fs::path p(name);
    target = c->done_dir / (p.stem().string() + "." + sha.substr(0, 12) + p.extension().string());
  }
  const devices::device_profile* profile = dev->profile;
  const devices::folder_rule* rule = profile ? &profile->folder : nullptr;
  const auto kind = bytes ? devices::classify_folder_file(name, *bytes, rule) : devices::folder_file_kind::report;

  transport::delivery d;
  d.device = dev->cfg.id;
  d.profile = profile;
  if (kind == devices::folder_file_kind::report) {
    const auto sample = rule ? devices::sample_from_filename(rule->filename_pattern, name) : std::nullopt;
    if (!sample) {
      fail_file(*c, file, "FOLDER-004",
                rule && !rule->filename_pattern.empty()
                    ? "not an ASTM, HL7 or CSV file, and its name does not match the profile's filename_pattern \"" +
                          rule->filename_pattern + "\" (no sample id)"
                    : "not an ASTM, HL7 or CSV file, and the device's profile has no folder/filename_pattern to take a sample id from");
      finished();
      return;
    }
    devices::file_report_request fr;
    fr.device_id = dev->cfg.id;
    fr.sample_id = *sample;
    if (const auto* e = c->sink.entry_of(dev->cfg.id, *sample)) fr.lab_report_id = e->lab_report_id;
    fr.parameter = rule->report_parameter;
    fr.file = fs::absolute(target).lexically_normal().string();
    fr.filename = name;
    fr.content_type = devices::content_type_for(name);
    const auto& f = dev->cfg.files;
    fr.mode = f.mode;
    fr.max_bytes = f.max_bytes;
    fr.allowed_types = f.allowed_types;
    fr.settle_ms = f.settle_ms;
    fr.wait_s = f.wait_s;
    d.file_reports.emplace_back("file:" + *sample + ":" + fr.parameter, devices::file_report_body(fr));
    dev->log->info("file {}: file-type report for sample {} {} ({})", name, *sample, fr.parameter, fr.content_type);
  } else {
    auto read = kind == devices::folder_file_kind::csv
                    ? devices::read_csv_results(*bytes, rule->csv, dev->cfg.id)
                    : devices::read_capture_results(*bytes, &c->catalog, profile, dev->cfg.id);
    for (const auto& w : read.warnings) dev->log->info("file {}: note: {}", name, w);
    if (!read.error.empty()) {
      fail_file(*c, file, "FOLDER-003", read.error);
      finished();
      return;
    }
    d.protocol = kind == devices::folder_file_kind::hl7 ? protocol::hl7 : protocol::astm;
    if (read.profile) d.profile = read.profile;
    d.results = std::move(read.results);
    d.raw = kind == devices::folder_file_kind::csv ? std::string() : *bytes;
    dev->log->info("file {}: {} file, {} result{}", name, devices::to_string(kind), d.results.size(),
                   d.results.size() == 1 ? "" : "s");
  }
  nlohmann::json doc = {{"file", name}, {"done", target.string()}, {"taken_at", now_iso_ms()}, {"kind", devices::to_string(kind)}};
  d.documents.emplace_back(key, doc.dump());
  c->sink.hand_off(std::move(d), [c, file, target, name, finished](bool durable) {
    if (!durable) {
      // Left where it is: the next scan takes it again (nothing was committed).
      c->dev->log->error("file {}: what it gave could not be stored in the outbox; left in place and taken again by the next scan [FOLDER-006]", name);
      finished();
      return;
    }
    // Tests only: dies in the window between the commit and the move (the SIGKILL e2e test).
    if (const char* k = std::getenv("INTERFACED_TEST_FOLDER_KILL_AFTER_COMMIT"); k != nullptr && *k != '\0')
      (void)std::raise(SIGKILL);
    if (auto mec = transport::move_file_durably(file, target))
      c->dev->log->error("file {}: stored, but cannot be moved to {}: {}; it is moved at the next scan [FOLDER-005]", name,
                         target.string(), mec.message());
    else
      c->dev->log->info("file {}: stored; moved to {}", name, target.string());
    finished();
  });
}

}  // namespace

void start_folder_device(asio::io_context& io, device_runtime* dev, const devices::profile_catalog& catalog,
                         ingest_hand_off& sink, transport::event_log log) {
  const auto& f = dev->cfg.folder;
  auto c = std::make_shared<folder_context>(folder_context{io, dev, catalog, sink, fs::path(f.path),
                                                           sub_folder(f.path, f.done), sub_folder(f.path, f.failed)});
  std::error_code ec;
  fs::create_directories(c->done_dir, ec);
  fs::create_directories(c->failed_dir, ec);
  transport::folder_watch_options o;
  o.dir = f.path;
  o.pattern = f.pattern;
  o.settle = std::chrono::milliseconds(f.settle_ms);
  o.scan = std::chrono::seconds(f.scan_s);
  dev->open_links = 1;
  dev->log->info("watching folder {} for {} (inotify, and a scan every {} s); taken files go to {}, failed ones to {}",
                 f.path, f.pattern, f.scan_s, c->done_dir.string(), c->failed_dir.string());
  transport::folder_file_handler handler = [c](fs::path file, std::function<void()> finished) {
    if (c->dev->stopped) {
      finished();
      return;
    }
    // The outbox full: the file waits (never dropped) until it accepts again.
    if (!c->sink.accepting()) {
      auto t = std::make_shared<asio::steady_timer>(c->io, std::chrono::seconds(1));
      auto retry = std::make_shared<std::function<void()>>();
      *retry = [c, file, finished, t, retry] {
        t->expires_after(std::chrono::seconds(1));
        t->async_wait([c, file, finished, t, retry](const boost::system::error_code&) {
          if (c->dev->stopped || c->sink.accepting()) {
            *retry = nullptr;  // ends the self-reference; this handler holds its own copy
            if (c->dev->stopped) finished();
            else take_file(c, file, finished);
          } else {
            (*retry)();
          }
        });
      };
      (*retry)();
      return;
    }
    take_file(c, file, finished);
  };
  asio::co_spawn(io, transport::watch_folder(std::move(o), std::move(handler), std::move(log)),
                 asio::bind_cancellation_slot(dev->cancel.slot(), asio::detached));
}

}  // namespace interfaced::daemon
