// Order download planning (rerun/order_download.hpp): what goes to an analyser that takes
// host-initiated orders after each waiting-list refresh. Time and history are inputs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "rerun/order_download.hpp"
#include "rerun/result_store.hpp"

using namespace interfaced::rerun;
using namespace std::chrono_literals;

namespace {

const timestamp t0{std::chrono::sys_days{std::chrono::year{2026} / 1 / 1}};

pending_download first_run(std::vector<std::string> params) {
  pending_download p;
  p.sample_id = "S-1";
  p.lab_report_id = "R-1";
  p.parameters = params;
  p.codes = params;  // identity code map
  return p;
}

pending_download rerun(int n, std::vector<std::string> params) {
  pending_download p = first_run(std::move(params));
  p.is_rerun = true;
  p.rerun_number = n;
  return p;
}

void result(memory_result_store& h, const std::string& parameter, timestamp at) {
  h.record("S-1", parameter, {"1.0", 1.0, "20260101120000", at});
}

}  // namespace

TEST_CASE("order download: a new order is sent once, not at every refresh") {
  download_state st;
  memory_result_store h;
  auto c = plan_downloads(st, {first_run({"GLU", "NA"})}, h, t0);
  REQUIRE(c.size() == 1);
  CHECK(c[0].action == download_action::new_order);
  CHECK(c[0].sample_id == "S-1");
  CHECK(c[0].codes == std::vector<std::string>{"GLU", "NA"});
  CHECK_FALSE(c[0].is_rerun);
  CHECK(plan_downloads(st, {first_run({"GLU", "NA"})}, h, t0 + 60s).empty());
  // GLU done: NA still pending; nothing new to say.
  result(h, "GLU", t0 + 90s);
  CHECK(plan_downloads(st, {first_run({"NA"})}, h, t0 + 120s).empty());
}

TEST_CASE("order download: a test added to the report is sent as an addition, alone") {
  download_state st;
  memory_result_store h;
  (void)plan_downloads(st, {first_run({"GLU"})}, h, t0);
  const auto c = plan_downloads(st, {first_run({"GLU", "K"})}, h, t0 + 60s);
  REQUIRE(c.size() == 1);
  CHECK(c[0].action == download_action::add_tests);
  CHECK(c[0].codes == std::vector<std::string>{"K"});
}

TEST_CASE("order download: a rerun is a new round, its tests added to the known specimen") {
  download_state st;
  memory_result_store h;
  (void)plan_downloads(st, {first_run({"HGB", "PLT", "WBC"})}, h, t0);
  for (const char* p : {"HGB", "PLT", "WBC"}) result(h, p, t0 + 60s);
  const auto c = plan_downloads(st, {rerun(1, {"HGB", "PLT"})}, h, t0 + 120s);
  REQUIRE(c.size() == 1);  // the first run's tests were done: nothing to cancel
  CHECK(c[0].action == download_action::add_tests);
  CHECK(c[0].is_rerun);
  CHECK(c[0].rerun_number == 1);
  CHECK(c[0].codes == std::vector<std::string>{"HGB", "PLT"});
  CHECK(plan_downloads(st, {rerun(1, {"HGB", "PLT"})}, h, t0 + 180s).empty());
  // Rerun 2 of the same tests: sent again.
  const auto again = plan_downloads(st, {rerun(2, {"HGB"})}, h, t0 + 240s);
  REQUIRE(again.size() == 2);
  CHECK(again[0].action == download_action::cancel);  // PLT of rerun 1 never came
  CHECK(again[0].rerun_number == 1);
  CHECK(again[0].codes == std::vector<std::string>{"PLT"});
  CHECK(again[1].action == download_action::add_tests);
  CHECK(again[1].rerun_number == 2);
}

TEST_CASE("order download: a fulfilled rerun goes away without a cancel") {
  download_state st;
  memory_result_store h;
  result(h, "HGB", t0 - 3600s);  // the first result, before the rerun was sent
  (void)plan_downloads(st, {rerun(1, {"HGB", "PLT"})}, h, t0);
  result(h, "HGB", t0 + 30s);
  result(h, "PLT", t0 + 40s);
  // Received: the report left the waiting list.
  CHECK(plan_downloads(st, {}, h, t0 + 60s).empty());
  CHECK(st.empty());
  // An analyser that asks again is sent nothing stale either.
  CHECK(plan_downloads(st, {}, h, t0 + 120s).empty());
}

TEST_CASE("order download: a cancelled rerun is cancelled on the analyser (O.12 C)") {
  download_state st;
  memory_result_store h;
  result(h, "HGB", t0 - 3600s);  // an old result does not count as doing the rerun
  (void)plan_downloads(st, {rerun(1, {"HGB", "PLT"})}, h, t0);
  result(h, "PLT", t0 + 30s);
  const auto c = plan_downloads(st, {}, h, t0 + 60s);  // cancelled in the backend: no longer listed
  REQUIRE(c.size() == 1);
  CHECK(c[0].action == download_action::cancel);
  CHECK(c[0].codes == std::vector<std::string>{"HGB"});  // PLT was done meanwhile
  CHECK(c[0].rerun_number == 1);
  CHECK(st.empty());
  CHECK(plan_downloads(st, {}, h, t0 + 120s).empty());
}

TEST_CASE("order download: a refused order is not sent again until it changes") {
  download_state st;
  memory_result_store h;
  (void)plan_downloads(st, {first_run({"GLU"})}, h, t0);
  mark_refused(st, "S-1", 0);
  CHECK(plan_downloads(st, {first_run({"GLU"})}, h, t0 + 60s).empty());
  // Refused, then withdrawn: no cancel for what the analyser never took.
  auto withdrawn = st;
  CHECK(plan_downloads(withdrawn, {}, h, t0 + 60s).empty());
  // Changed: sent afresh, the whole order.
  const auto c = plan_downloads(st, {first_run({"GLU", "K"})}, h, t0 + 120s);
  REQUIRE(c.size() == 1);
  CHECK(c[0].action == download_action::new_order);
  CHECK(c[0].codes == std::vector<std::string>{"GLU", "K"});
  // A refusal of an older round does not touch the new one.
  (void)plan_downloads(st, {rerun(1, {"GLU"})}, h, t0 + 180s);
  mark_refused(st, "S-1", 0);
  CHECK_FALSE(st.at("S-1").refused);
}

TEST_CASE("order download: the analyser's codes travel with the machine names") {
  download_state st;
  memory_result_store h;
  pending_download p = first_run({"HGB", "PLT"});
  p.codes = {"8", "12"};
  auto c = plan_downloads(st, {p}, h, t0);
  REQUIRE(c.size() == 1);
  CHECK(c[0].codes == std::vector<std::string>{"8", "12"});
  CHECK(c[0].parameters == std::vector<std::string>{"HGB", "PLT"});
  forget_download(st, "S-1");  // could not be queued: planned again
  CHECK(plan_downloads(st, {p}, h, t0 + 60s).size() == 1);
}
