// Framing + records throughput over the ASTM capture corpus (../shared/captures/astm):
// bytes -> frame_decoder -> link -> E1394 records -> normalised results, as the daemon runs them.
// Usage: bench_astm [seconds=5] [captures dir]

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "devices/astm_ingest.hpp"
#include "devices/capture_input.hpp"
#include "support/files.hpp"

using namespace interfaced;

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::stod(argv[1]) : 5.0;
  const std::filesystem::path dir =
      argc > 2 ? std::filesystem::path(argv[2]) : interfaced::test::shared_dir() / "captures" / "astm";
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
  } while (elapsed < seconds);

  std::printf("corpus: %zu ASTM captures, %zu bytes (%s)\n", corpus.size(), corpus_bytes, dir.c_str());
  std::printf("passes: %zu in %.2f s\n", passes, elapsed);
  std::printf("framing+records+normalise: %.1f MB/s, %.0f results/s\n", static_cast<double>(bytes) / elapsed / 1e6,
              static_cast<double>(results) / elapsed);
  return 0;
}
