// Framing + records throughput over the ASTM capture corpus (../shared/captures/astm):
// bytes -> frame_decoder -> link -> E1394 records -> normalised results, as the daemon runs them.
// Usage: bench_astm [seconds=5] [captures dir] [--passes N]
//   --passes: exactly N passes over the corpus instead of a time (for callgrind / instruction
//             counts, which do not depend on the other load of the machine)

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "support/files.hpp"

using namespace interfaced;

int main(int argc, char** argv) {
  double seconds = 5.0;
  std::size_t max_passes = 0;
  std::filesystem::path dir = interfaced::test::shared_dir() / "captures" / "astm";
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--passes" && i + 1 < argc) max_passes = std::stoul(argv[++i]);
    else if (positional++ == 0) seconds = std::stod(argv[i]);
    else dir = argv[i];
  }
  std::vector<devices::capture_input> corpus;
  std::size_t corpus_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string bytes = interfaced::test::file_text(e.path());
    const auto ext = e.path().extension();
    if (ext != ".astm" && ext != ".txt") continue;
    auto cap = devices::decode_capture(bytes);
    if (cap.kind != devices::capture_kind::astm_frames && cap.kind != devices::capture_kind::astm_records) continue;
    corpus_bytes += cap.bytes.size();
    corpus.push_back(std::move(cap));
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "no ASTM captures in %s\n", dir.c_str());
    return 1;
  }
  const devices::profile_catalog catalog = devices::profile_catalog::load_dir(devices::profile_catalog::default_dir());
  astm::link_options lo;
  lo.accept_frames_without_enq = true;

  std::size_t passes = 0, results = 0, bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    for (const auto& cap : corpus) {
      devices::astm_ingest ingest(&catalog, nullptr, "bench", lo);
      if (cap.kind == devices::capture_kind::astm_frames) (void)ingest.feed(cap.bytes);
      else ingest.feed_records(cap.bytes);
      ingest.finish();
      for (const auto& m : ingest.take_messages()) results += m.batch.results.size();
      bytes += cap.bytes.size();
    }
    ++passes;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (max_passes ? passes < max_passes : elapsed < seconds);

  std::string cmd;
  for (int i = 0; i < argc; ++i) (cmd += i ? " " : "") += argv[i];
  std::printf("command: %s\n", cmd.c_str());
  std::printf("corpus: %zu ASTM captures, %zu bytes (%s)\n", corpus.size(), corpus_bytes, dir.c_str());
  std::printf("passes: %zu in %.2f s\n", passes, elapsed);
  std::printf("framing+records+normalise: %.1f MB/s, %.0f results/s (%zu results per pass)\n",
              static_cast<double>(bytes) / elapsed / 1e6, static_cast<double>(results) / elapsed, results / passes);
  return 0;
}
