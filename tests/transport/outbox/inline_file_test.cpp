// Inline file reports (files.mode "inline", file_upload.hpp) of the daemon's own spool files,
// delivered from a real outbox file to the real backend simulator: the spool file is deleted only
// after the commit that records the report finalized, which is fsynced; the delivered mark is not
// (outbox.cpp, op::durable), so a power cut may lose it, and the report must then settle without
// its file instead of waiting for it and dead-lettering (a false FILE-001).

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "delivery_rig.hpp"
#include "devices/file_report.hpp"
#include "transport/outbox.hpp"

using namespace interfaced::transport;
using namespace interfaced::test;  // rig, msg, run_for, run_until
using interfaced::sim::backend_sim_options;
using interfaced::sim::sim_fault;
namespace fs = std::filesystem;

namespace {

// An inline file report of a spool file with `bytes`; wait_s 0: a missing file is a dead letter
// at once, so a report that came back without its file shows as FILE-001 in the first attempt.
new_message inline_report(const fs::path& file, const std::string& bytes) {
  interfaced::devices::file_report_request q;
  q.device_id = "dev";
  q.sample_id = "S-1";
  q.lab_report_id = "LR-1";
  q.parameter = "RBC";
  q.file = file.string();
  q.filename = file.filename().string();
  q.content_type = "image/svg+xml";
  q.mode = "inline";
  q.settle_ms = 0;
  q.wait_s = 0;
  q.spool = true;
  new_message m = msg("file_report", "file:S-1:RBC", interfaced::devices::file_report_body(q));
  m.file = spool_file{file, bytes};
  return m;
}

std::size_t posts_to(const rig& r, const std::string& path) {
  std::size_t n = 0;
  for (const auto& q : r.sim->requests()) if (q.path == path) ++n;
  return n;
}

}  // namespace

TEST_CASE("inline file report: the spool file outlives the POST until the finalized commit, and a lost delivered mark settles without a request, no FILE-001") {
  rig r;
  sim_fault slow;  // a slow success: the request is recorded before its answer goes out
  slow.path = "/interfacing/file-report";
  slow.status = 200;
  slow.delay = 300ms;
  slow.count = 1;
  backend_sim_options so;
  so.faults.push_back(slow);
  r.start_sim(so);
  const fs::path file = r.box->spool_dir() / "dev" / "b-1" / "0" / "S-1_RBC.svg";
  const auto ids = r.append({inline_report(file, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>")});
  r.start_delivery();

  // The backend has the report; every commit from now on waits before its COMMIT.
  REQUIRE(run_until(r.ioc, [&] { return posts_to(r, "/interfacing/file-report") == 1; }));
  std::ofstream(r.fault_file) << "pause";
  run_for(r.ioc, 600ms);
  CHECK(fs::exists(file));
  CHECK_FALSE(outbox_admin(r.dir / "outbox.sqlite").file_job_of(ids[0]));  // its commit waits
  fs::remove(r.fault_file);

  REQUIRE(r.wait_delivered(ids));
  CHECK(run_until(r.ioc, [&] { return !fs::exists(file); }));
  const auto job = outbox_admin(r.dir / "outbox.sqlite").file_job_of(ids[0]);
  REQUIRE(job);
  CHECK(job->stage == "finalized");

  // What a start after a power cut may find: the fsynced finalized row, the file gone, and the
  // message pending again (its delivered mark was not fsynced).
  bool marked = false;
  r.box->mark_retry(ids[0], {0, "a power cut lost the delivered mark"}, outbox_now(), [&](bool ok) { marked = ok; });
  REQUIRE(run_until(r.ioc, [&] { return marked; }));
  REQUIRE(r.wait_delivered(ids));
  CHECK_FALSE(r.log.contains("FILE-001"));
  CHECK(posts_to(r, "/interfacing/file-report") == 1);  // settled from the row: no second POST
}
