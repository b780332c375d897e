// Parse-to-results throughput over the HL7 capture corpus (../shared/captures/hl7): each analyser
// message (OUL^R22, ORU^R01, QBP^Q11) -> message view -> normalised results, as the daemon runs it.
// Usage: bench_hl7 [seconds=5] [--dir DIR] [--dump FILE] [--passes N]
//   --passes: exactly N passes (each loop) instead of a time, for callgrind / instruction counts;
//   --dir: any folder of .hl7 / .txt captures (default ../shared/captures/hl7), e.g.
//          tests/bench/corpus/hl7-obx-dense;
//   --dump: the same messages, 0x1C-separated, for the peers (tests/bench/hl7_peers.sh runs
//          bench_hl7_peer.py (python3-hl7) and node/bench_hl7_medplum.js (@medplum/core) on them).

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "devices/capture_input.hpp"
#include "parsers/hl7/mllp.hpp"
#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"

using namespace interfaced;

int main(int argc, char** argv) {
  double seconds = 5.0;
  std::string dump;
  std::size_t max_passes = 0;
  std::filesystem::path dir = interfaced::test::shared_dir() / "captures" / "hl7";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump = argv[++i];
    else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
    else if (std::strcmp(argv[i], "--passes") == 0 && i + 1 < argc) max_passes = std::stoul(argv[++i]);
    else seconds = std::stod(argv[i]);
  }
  std::vector<std::string> messages;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext != ".hl7" && ext != ".txt") continue;
    const std::string bytes = interfaced::test::file_text(e.path());
    const auto cap = devices::decode_capture(bytes);
    std::vector<std::string> found;
    if (cap.kind == devices::capture_kind::hl7_mllp) {
      hl7::mllp_decoder dec;
      std::string_view rest = cap.bytes;
      while (!rest.empty()) {
        const auto r = dec.put(rest);
        rest.remove_prefix(r.consumed);
        if (r.event.kind == hl7::mllp_event_kind::message) found.emplace_back(r.event.message);
        if (r.event.kind == hl7::mllp_event_kind::none && r.consumed == 0) break;
      }
    } else if (cap.kind == devices::capture_kind::hl7_segments) {
      found.push_back(cap.bytes);
    }
    for (auto& m : found) {
      // Analyser messages only: what the daemon parses to results (host replies are not).
      if (m.find("|OUL^R22") != std::string::npos || m.find("|ORU^R01") != std::string::npos ||
          m.find("|QBP^Q11") != std::string::npos)
        messages.push_back(std::move(m));
    }
  }
  if (messages.empty()) {
    std::fprintf(stderr, "no analyser messages (OUL^R22, ORU^R01, QBP^Q11) in %s\n", dir.c_str());
    return 1;
  }
  std::size_t corpus_bytes = 0;
  for (const auto& m : messages) corpus_bytes += m.size();
  if (!dump.empty()) {
    std::ofstream out(dump, std::ios::binary);
    for (const auto& m : messages) out << m << '\x1c';
  }
  const hl7::hl7_options options;
  std::size_t passes = 0, results = 0, bytes = 0, count = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (const auto& m : messages) {
      const hl7::hl7_batch b = hl7::normalise(m, options, "bench");
      results += b.results.size() + b.queries.size();
      bytes += m.size();
      ++count;
    }
    ++passes;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (max_passes ? passes < max_passes : elapsed < seconds);
  std::size_t corpus_results = 0;
  for (const auto& m : messages) corpus_results += hl7::normalise(m, options, "bench").results.size();
  std::string cmd;
  for (int i = 0; i < argc; ++i) (cmd += i ? " " : "") += argv[i];
  std::printf("command: %s\n", cmd.c_str());
  std::printf("corpus: %zu analyser messages, %zu bytes, %zu results (%s)\n", messages.size(), corpus_bytes,
              corpus_results, dir.c_str());
  std::printf("interfaced parse+normalise: %.0f messages/s, %.1f MB/s, %.0f results/s (%zu passes in %.2f s)\n",
              static_cast<double>(count) / elapsed, static_cast<double>(bytes) / elapsed / 1e6,
              static_cast<double>(results) / elapsed, passes, elapsed);
  // The view alone, the peers' work: parse + decode OBX-3/5/6 of every OBX, nothing owned.
  std::size_t view_bytes = 0, view_obx = 0, sink = 0;
  const auto view_start = std::chrono::steady_clock::now();
  double view_elapsed = 0;
  std::size_t view_passes = 0;
  hl7::message parsed;
  do {
    ++view_passes;
    for (const auto& m : messages) {
      if (hl7::parse_message(m, parsed)) continue;
      for (const auto& seg : parsed.segments()) {
        if (!seg.is("OBX")) continue;
        sink += seg.field(3).decode().size() + seg.field(5).decode().size() + seg.field(6).decode().size();
        ++view_obx;
      }
      view_bytes += m.size();
    }
    view_elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - view_start).count();
  } while (max_passes ? view_passes < max_passes : view_elapsed < seconds);
  std::printf("interfaced view only (parse + decode OBX-3/5/6): %.1f MB/s, %.0f OBX/s (sink %zu)\n",
              static_cast<double>(view_bytes) / view_elapsed / 1e6, static_cast<double>(view_obx) / view_elapsed,
              sink % 10);
  return 0;
}
