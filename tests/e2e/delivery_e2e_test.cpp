// End to end, the real binary over loopback (issue 18 points 1-2, issue 12 point 1): whose fault
// a failed delivery is. A backend that refuses our credentials holds delivery under an alarm and
// makes no dead letter; a backend that keeps refusing one sample holds only that sample's report,
// names it after delivery.stuck_after and lets a person set it aside from the CLI; an outbox that
// cannot record outcomes does not turn into a retry storm. The analyser is played on a raw socket
// (E1381 by hand), the backend is `interfaced backend-sim` with faults switched at run time.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "orders_support.hpp"
#include "sim_control.hpp"

using namespace interfaced::e2e;

namespace {

std::string header() { return "H|\\^&|||SIM-DLV^1.0|||||||P|LIS2-A2|20260101120000\r"; }

// One ASTM message with one patient / order / result per sample.
std::string results_message(const std::vector<std::string>& samples) {
  std::string m = header();
  int p = 0;
  for (const auto& s : samples) {
    ++p;
    m += "P|" + std::to_string(p) + "\rO|1|" + s + "||^^^GLU|R\rR|1|^^^GLU|5." + std::to_string(p) +
         "|mmol/L||N||F||||20260101120000\r";
  }
  return m + "L|1|N\r";
}

// `interfaced backend-sim`, optionally requiring a bearer token, faults switched at run time.
class backend {
 public:
  backend(const fs::path& dir, const std::string& token = {}) : port_(free_port()) {
    std::ofstream(dir / "backend-data.json") << R"({"waiting_list":[],"parameters":[]})";
    std::vector<std::string> argv{interfaced::test::interfaced_binary().string(), "backend-sim", "--listen",
                                  std::to_string(port_), "--data", (dir / "backend-data.json").string()};
    std::vector<std::string> env;
    if (!token.empty()) {
      argv.insert(argv.end(), {"--expect-token-env", "SIM_TOKEN"});
      env.push_back("SIM_TOKEN=" + token);
    }
    proc_ = std::make_unique<child>(argv, dir / "backend.out", dir / "backend.err", env);
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!http_get(port_, "/_sim/requests")) {
      if (!proc_->running()) FAIL("backend-sim exited:\n" << proc_->err());
      if (std::chrono::steady_clock::now() >= until) FAIL("backend-sim did not answer within 10 s");
      std::this_thread::sleep_for(20ms);
    }
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  void fail(const json& fault) { REQUIRE(sim_control(port_, "POST", "/_sim/faults", fault.dump()) == 200); }
  void heal() { REQUIRE(sim_control(port_, "DELETE", "/_sim/faults") == 200); }
  // Every request the daemon made (the simulator's own control routes left out).
  [[nodiscard]] std::vector<json> daemon_requests() const {
    const auto body = http_get(port_, "/_sim/requests");
    REQUIRE(body.has_value());
    std::vector<json> out;
    for (const auto& r : json::parse(*body))
      if (!r.value("path", "").starts_with("/_sim")) out.push_back(r);
    return out;
  }
  [[nodiscard]] std::vector<json> results_posts() const {
    const auto body = http_get(port_, "/_sim/requests");
    REQUIRE(body.has_value());
    std::vector<json> out;
    for (const auto& r : json::parse(*body))
      if (r.value("path", "") == "/interfacing/device-results") out.push_back(r);
    return out;
  }
  // The accepted (2xx, not a duplicate) results POSTs.
  [[nodiscard]] std::vector<json> accepted() const {
    std::vector<json> out;
    for (const auto& r : results_posts())
      if (r.value("status", 0) / 100 == 2 && !r.value("duplicate", false)) out.push_back(r);
    return out;
  }

 private:
  std::uint16_t port_;
  std::unique_ptr<child> proc_;
};

// The daemon with one ASTM analyser on TCP, delivering to `backend_port`.
class delivering_daemon {
 public:
  delivering_daemon(const fs::path& dir, std::uint16_t backend_port, const json& extra = json::object())
      : dir_(dir), health_(free_port()), analyser_(free_port()) {
    cfg_ = daemon_config(dir_, json::array({tcp_server_device("ana1", "astm", analyser_)}), health_);
    // A loopback backend simulator: plain HTTP, said so explicitly (a token over http:// is refused otherwise).
    cfg_["backend"] = {{"base_url", "http://127.0.0.1:" + std::to_string(backend_port)},
                       {"waiting_list_poll_s", 3600},
                       {"allow_insecure_http", true}};
    cfg_.merge_patch(extra);
  }
  void start(const std::vector<std::string>& env = {}) { proc_ = run_daemon(dir_, cfg_, health_, "daemon", env); }
  [[nodiscard]] std::uint16_t analyser_port() const { return analyser_; }
  [[nodiscard]] json health() const {
    const auto body = http_get(health_, "/health");
    REQUIRE(body.has_value());
    return json::parse(*body);
  }
  // The alarm_details entries of `code` now.
  [[nodiscard]] std::vector<json> alarms(const std::string& code) const {
    std::vector<json> out;
    const json h = health();  // named: a range-for over a temporary's member would dangle
    for (const auto& a : h["alarm_details"])
      if (a.value("code", "") == code) out.push_back(a);
    return out;
  }
  template <class Pred>
  bool wait(Pred pred, ms limit = 20000ms) const {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= until) return false;
      std::this_thread::sleep_for(100ms);
    }
    return true;
  }
  // `interfaced outbox ARGS... -c CONFIG`: exit status and stdout.
  std::pair<int, std::string> outbox(std::vector<std::string> args) const {
    std::vector<std::string> argv{interfaced::test::interfaced_binary().string(), "outbox", "-c",
                                  (dir_ / "interfaced.json").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    child c(argv, dir_ / "cli.out", dir_ / "cli.err");
    const auto st = c.wait_for(10000ms);
    REQUIRE(st.has_value());
    INFO(c.err());
    return {*st, c.out()};
  }
  [[nodiscard]] std::string log() const { return proc_->err() + proc_->out(); }
  void stop() {
    proc_->signal(SIGTERM);
    REQUIRE(proc_->wait_for(10000ms).has_value());
  }

 private:
  fs::path dir_;
  std::uint16_t health_;
  std::uint16_t analyser_;
  json cfg_;
  std::unique_ptr<child> proc_;
};

}  // namespace

TEST_CASE("e2e: credentials refused or unreadable hold delivery under BACKEND-002, no dead letter, fixed, all delivered") {
  scratch_dir dir;
  backend be(dir.path(), "good-token");
  const fs::path token = dir.path() / "backend.token";  // configured, missing at first
  delivering_daemon d(dir.path(), be.port(), {{"backend", {{"token_file", token.string()}}}});
  d.start();
  astm_analyser ana(d.analyser_port());
  REQUIRE(ana.ok());
  REQUIRE(ana.send_message(results_message({"S-401-A", "S-401-B"})));

  // An unreadable token: the alarm, and not one post (never an unauthenticated one).
  REQUIRE(d.wait([&] { return !d.alarms("BACKEND-002").empty(); }));
  std::this_thread::sleep_for(1500ms);
  CHECK(be.results_posts().empty());
  // Nor a waiting-list GET: polling pauses too while the token it was told to use is unreadable.
  CHECK(be.daemon_requests().empty());
  CHECK(d.log().find("waiting-list polling paused") != std::string::npos);
  CHECK(d.log().find("cannot read the backend token file") != std::string::npos);

  // A token the backend refuses: 401, still held, still no dead letter.
  { std::ofstream(token) << "wrong-token\n"; }
  REQUIRE(d.wait([&] {
    for (const auto& r : be.results_posts())
      if (r.value("status", 0) == 401) return true;
    return false;
  }));
  CHECK(!d.alarms("BACKEND-002").empty());
  auto [st, dead] = d.outbox({"list", "--state", "dead", "--json"});
  CHECK(st == 0);
  CHECK(json::parse(dead).empty());
  CHECK(d.alarms("DELIVERY-002").empty());

  // The right token in the file: delivery resumes by itself, both samples, the alarm cleared.
  { std::ofstream(token) << "good-token\n"; }
  REQUIRE(d.wait([&] { return be.accepted().size() >= 2; }, 40000ms));
  REQUIRE(d.wait([&] { return d.alarms("BACKEND-002").empty(); }));
  std::vector<std::string> samples;
  for (const auto& r : be.accepted()) {
    const json body = json::parse(r.value("body", "{}"));
    for (const auto& v : body["results"]) samples.push_back(v.value("sample_id", ""));
  }
  std::sort(samples.begin(), samples.end());
  CHECK(samples == std::vector<std::string>{"S-401-A", "S-401-B"});
  CHECK(d.log().find("alarm cleared") != std::string::npos);
  d.stop();
}

TEST_CASE("e2e: a 500 for one sample holds only its report, DELIVERY-001 names it, the CLI sets it aside") {
  scratch_dir dir;
  backend be(dir.path());
  be.fail({{"status", 500}, {"body_contains", "S-BAD"}});
  delivering_daemon d(dir.path(), be.port(), {{"delivery", {{"stuck_after", "2s"}}}});
  d.start();
  astm_analyser ana(d.analyser_port());
  REQUIRE(ana.ok());
  // One analyser message with three samples; the middle one the backend refuses.
  REQUIRE(ana.send_message(results_message({"S-OK-1", "S-BAD", "S-OK-2"})));
  REQUIRE(ana.send_message(results_message({"S-OK-3"})));  // the analyser's next message is not held either

  REQUIRE(d.wait([&] { return be.accepted().size() >= 3; }));
  std::vector<std::string> delivered;
  for (const auto& r : be.accepted()) {
    const json body = json::parse(r.value("body", "{}"));
    for (const auto& v : body["results"]) delivered.push_back(v.value("sample_id", ""));
  }
  std::sort(delivered.begin(), delivered.end());
  CHECK(delivered == std::vector<std::string>{"S-OK-1", "S-OK-2", "S-OK-3"});

  auto [st, listed] = d.outbox({"list", "--sample", "S-BAD", "--json"});
  REQUIRE(st == 0);
  const json rows = json::parse(listed);
  REQUIRE(rows.size() == 1);
  const std::string id = rows[0]["id"];
  CHECK(rows[0]["state"] == "pending");

  // Named after stuck_after (2 s here).
  REQUIRE(d.wait([&] {
    for (const auto& a : d.alarms("DELIVERY-001"))
      if (a.value("subject", "") == id) return true;
    return false;
  }));

  auto [st2, said] = d.outbox({"set-aside", id, "--by", "e2e tester", "--reason", "the backend rejects S-BAD"});
  CHECK(st2 == 0);
  CHECK(said.find("set aside") != std::string::npos);
  REQUIRE(d.wait([&] { return d.alarms("DELIVERY-001").empty(); }));
  auto [st3, aside] = d.outbox({"list", "--state", "set-aside", "--json"});
  CHECK(st3 == 0);
  const json parked = json::parse(aside);
  REQUIRE(parked.size() == 1);
  CHECK(parked[0]["id"] == id);
  auto [st4, shown] = d.outbox({"show", id});
  CHECK(st4 == 0);
  CHECK(shown.find("set aside") != std::string::npos);
  CHECK(shown.find("e2e tester") != std::string::npos);
  CHECK(shown.find("the backend rejects S-BAD") != std::string::npos);
  auto [st5, shown_json] = d.outbox({"show", id, "--json"});
  CHECK(st5 == 0);
  CHECK(json::parse(shown_json)["set_aside"]["by"] == "e2e tester");

  // Retried by a person once the backend takes it. With no daemon running, `retry` says so
  // instead of promising a pick-up; the daemon sends it when it runs again.
  d.stop();
  be.heal();
  auto [st6, retried] = d.outbox({"retry", id});
  CHECK(st6 == 0);
  CHECK(retried.find("1 message(s) queued again") != std::string::npos);
  CHECK(retried.find("picks them up") == std::string::npos);
  CHECK(retried.find("no daemon runs on this outbox") != std::string::npos);
  d.start();
  REQUIRE(d.wait([&] { return be.accepted().size() >= 4; }));
  d.stop();
}

TEST_CASE("e2e: an outbox that cannot record outcomes: no retry storm, OUTBOX-002, recovery by itself") {
  scratch_dir dir;
  backend be(dir.path());
  be.fail({{"status", 503}});
  const fs::path fault = dir.path() / "outbox-readonly";
  delivering_daemon d(dir.path(), be.port());
  d.start({"INTERFACED_TEST_OUTBOX_WRITE_FAULT=" + fault.string()});
  astm_analyser ana(d.analyser_port());
  REQUIRE(ana.ok());
  REQUIRE(ana.send_message(results_message({"S-RO-1"})));
  REQUIRE(d.wait([&] { return !be.results_posts().empty(); }));
  const std::string key = be.results_posts().front().value("idempotency_key", "");

  // The outbox turns read-only, then the backend takes the message: its 200 cannot be recorded.
  { std::ofstream(fault) << "read-only\n"; }
  be.heal();
  REQUIRE(d.wait([&] { return !d.alarms("OUTBOX-002").empty(); }, 30000ms));
  const auto at_fault = be.results_posts().size();
  std::this_thread::sleep_for(10s);
  const auto posts = be.results_posts().size() - at_fault;
  INFO(posts << " POSTs in 10 s while the outbox could not record");
  CHECK(posts <= 1);  // the outcome is recorded again, the message is not posted again
  const std::string log = d.log();
  CHECK(occurrences(log, "could not record the outcome") == 1);  // said once, then counted

  std::filesystem::remove(fault);
  REQUIRE(d.wait([&] { return d.alarms("OUTBOX-002").empty(); }, 90000ms));
  // Delivered, recorded: the CLI is another connection, and a delivered mark is committed with
  // the next durable commit or within 100 ms of the alarm clearing (outbox.hpp).
  int st = -1;
  CHECK(d.wait([&] {
    auto [status, listed] = d.outbox({"list", "--json"});
    st = status;
    return status == 0 && json::parse(listed).empty();
  }, 5000ms));
  CHECK(st == 0);
  CHECK(d.log().find("the outbox records again") != std::string::npos);
  std::size_t with_key = 0;
  for (const auto& r : be.results_posts())
    if (r.value("idempotency_key", "") == key && r.value("status", 0) == 200) ++with_key;
  CHECK(with_key == 1);
  d.stop();
}

TEST_CASE("e2e: the analyser sends a dead letter's result again: recorded against the dead letter, not dropped") {
  scratch_dir dir;
  backend be(dir.path());
  be.fail({{"status", 422}, {"body_contains", "S-DEAD"}, {"body", R"({"error":"unknown sample S-DEAD"})"}});
  delivering_daemon d(dir.path(), be.port());
  d.start();
  astm_analyser ana(d.analyser_port());
  REQUIRE(ana.ok());
  const std::string message = results_message({"S-DEAD"});
  REQUIRE(ana.send_message(message));
  std::string id;
  REQUIRE(d.wait([&] {
    auto [st, out] = d.outbox({"list", "--state", "dead", "--json"});
    const json rows = json::parse(out);
    if (rows.empty()) return false;
    id = rows[0]["id"];
    return true;
  }));
  REQUIRE(d.wait([&] { return !d.alarms("DELIVERY-002").empty(); }));
  CHECK(d.health()["outbox"]["dead"] == 1);
  {
    // `status` no longer counts a dead letter as waiting for delivery.
    child status({interfaced::test::interfaced_binary().string(), "status", "-c", (dir.path() / "interfaced.json").string()},
                 dir.path() / "status.out", dir.path() / "status.err");
    REQUIRE(status.wait_for(10000ms) == 0);
    INFO(status.out() << status.err());
    CHECK(status.out().find("outbox: 0 waiting, 1 dead") != std::string::npos);
  }

  REQUIRE(ana.send_message(message));  // the very same result again
  REQUIRE(wait_text([&] { return file_text(dir.path() / "logs" / "ana1.log"); }, "[DELIVERY-005]"));
  auto [st, listed] = d.outbox({"list", "--json"});
  CHECK(st == 0);
  const json rows = json::parse(listed);
  REQUIRE(rows.size() == 1);  // no second message: the copy belongs to the dead letter
  CHECK(rows[0]["id"] == id);
  CHECK(rows[0]["resends"] == 1);
  auto [st2, shown] = d.outbox({"show", id});
  CHECK(st2 == 0);
  CHECK(shown.find("sent again by the analyser 1 time(s)") != std::string::npos);
  CHECK(shown.find("S-DEAD") != std::string::npos);
  CHECK(shown.find("unknown sample S-DEAD") != std::string::npos);
  // A daemon holds this outbox: retry says it picks the message up (it goes dead again here).
  auto [st3, retried] = d.outbox({"retry", id});
  CHECK(st3 == 0);
  CHECK(retried.find("the running daemon (pid ") != std::string::npos);
  CHECK(retried.find("picks them up within seconds") != std::string::npos);
  d.stop();
}
