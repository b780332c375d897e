// Whose fault a failed delivery is (transport/delivery.hpp, the table): the classification itself,
// then each class against the real backend simulator on loopback and a real outbox file —
// credentials, endpoint and TLS problems hold every message under an alarm and never make dead
// letters; a message the backend keeps refusing holds only its own report, is named after
// stuck_after and can be set aside; an outbox that cannot record outcomes pauses delivery without
// posting the message again.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "delivery_rig.hpp"
#include "support/certificates.hpp"
#include "support/processes.hpp"
#include "transport/http_client.hpp"

using namespace interfaced::transport;
using interfaced::sim::backend_sim_options;
using interfaced::sim::recorded_request;
using interfaced::sim::sim_fault;
using interfaced::test::msg;
using interfaced::test::rig;
using interfaced::test::run_for;
using interfaced::test::run_until;
using interfaced::test::scratch_dir;
using namespace std::chrono_literals;

namespace {

std::size_t posts_with_key(const std::vector<recorded_request>& reqs, const std::string& id) {
  return static_cast<std::size_t>(
      std::count_if(reqs.begin(), reqs.end(), [&](const recorded_request& q) { return q.idempotency_key == id; }));
}

std::size_t dead_count(const rig& r) {
  list_filter f;
  f.state = message_state::dead;
  return outbox_admin(r.dir / "outbox.sqlite").list(f).size();
}

sim_fault failing_with(unsigned status, std::string body_contains = {}) {
  sim_fault f;
  f.status = status;
  f.body_contains = std::move(body_contains);
  return f;
}

}  // namespace

TEST_CASE("whose fault: the classification table of delivery.hpp") {
  for (unsigned s : {200u, 201u, 202u, 204u}) CHECK(classify_status(s) == failure_class::delivered);
  // The backend's trouble for now: this message again after its backoff (backend-api.md).
  for (unsigned s : {408u, 425u, 429u, 500u, 502u, 503u, 504u}) CHECK(classify_status(s) == failure_class::retry);
  // Credentials: every message would get the same answer.
  for (unsigned s : {401u, 403u, 407u}) CHECK(classify_status(s) == failure_class::hold_credentials);
  // The URL, method or media type: configuration, the same for every message.
  for (unsigned s : {301u, 302u, 307u, 308u, 404u, 405u, 406u, 410u, 414u, 415u, 421u, 426u})
    CHECK(classify_status(s) == failure_class::hold_endpoint);
  // About this message: a dead letter, the rest keeps flowing.
  for (unsigned s : {400u, 409u, 411u, 412u, 413u, 416u, 417u, 422u, 424u, 428u, 431u, 451u, 499u})
    CHECK(classify_status(s) == failure_class::dead_letter);
  CHECK(hold_alarm(failure_class::hold_credentials) == alarm_code::backend_credentials);
  CHECK(hold_alarm(failure_class::hold_endpoint) == alarm_code::backend_endpoint);
  CHECK(hold_alarm(failure_class::hold_tls) == alarm_code::backend_tls);
  CHECK(hold_alarm(failure_class::dead_letter).empty());
  CHECK(hold_alarm(failure_class::retry).empty());

  http_result no_answer;
  no_answer.ec = boost::asio::error::connection_refused;
  CHECK(classify(no_answer) == failure_class::retry);
  CHECK_FALSE(tls_verification_failed(no_answer.ec));
  http_result answered;
  answered.status = 422;
  CHECK(classify(answered) == failure_class::dead_letter);
}

TEST_CASE("401: every message held under BACKEND-002, none dead, one try at a time, delivered once accepted") {
  rig r;
  backend_sim_options so;
  so.faults.push_back(failing_with(401));
  r.start_sim(so);
  auto ids = r.append({msg("results", "R-1", R"({"n":1})"), msg("results", "R-2", R"({"n":2})"),
                       msg("results", "R-3", R"({"n":3})"), msg("results", "R-1", R"({"n":4})")});
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_credentials); }));
  run_for(r.ioc, 1500ms);
  CHECK(dead_count(r) == 0);
  CHECK(r.delivery->stats().dead == 0);
  // Held: the first answers (two connections) and then one probe per hold backoff (100, 200, 400,
  // 400... ms): far fewer than four messages retried on their own.
  const auto tried = r.sim->requests().size();
  INFO(tried << " requests while held");
  CHECK(tried <= 10);
  CHECK(r.log.contains("delivery held for every message"));
  CHECK(r.log.contains("[BACKEND-002]"));
  const auto list = r.alarms.list();
  REQUIRE(std::any_of(list.begin(), list.end(), [](const alarm_entry& a) { return a.code == "BACKEND-002"; }));

  r.sim->clear_faults();
  REQUIRE(r.wait_delivered(ids));
  CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::backend_credentials); }));
  CHECK(r.log.contains("delivery resumed"));
  // Order per report kept through the hold.
  std::vector<std::string> r1;
  for (const auto& q : r.sim->requests())
    if (q.status == 200 && (q.body == R"({"n":1})" || q.body == R"({"n":4})")) r1.push_back(q.body);
  CHECK(r1 == std::vector<std::string>{R"({"n":1})", R"({"n":4})"});
}

TEST_CASE("404 / 405: the endpoint configuration holds delivery under BACKEND-003, never dead letters") {
  for (unsigned status : {404u, 405u}) {
    rig r;
    backend_sim_options so;
    so.faults.push_back(failing_with(status));
    r.start_sim(so);
    auto ids = r.append({msg("results", "R-1", R"({"n":1})"), msg("rerun_values", "R-2", R"({"n":2})")});
    r.start_delivery();
    REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_endpoint); }));
    run_for(r.ioc, 300ms);
    CHECK(dead_count(r) == 0);
    CHECK_FALSE(r.alarms.active(alarm_code::dead_letters));
    r.sim->clear_faults();
    REQUIRE(r.wait_delivered(ids));
    CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::backend_endpoint); }));
  }
}

TEST_CASE("a token file that cannot be read: BACKEND-002 and nothing posted, fixing the file resumes delivery") {
  rig r;
  const auto token_file = r.dir / "token";
  backend_options bc;
  bc.token_file = token_file.string();
  r.opts.load_token = [bc] { return load_bearer_token(bc); };
  backend_sim_options so;
  so.expect_token = "first-token";  // anything else (no header at all too) is a 401
  r.start_sim(so);
  auto ids = r.append({msg("results", "R-1", R"({"n":1})")});
  r.start_delivery();

  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_credentials); }));
  run_for(r.ioc, 500ms);
  CHECK(r.sim->requests().empty());  // never an unauthenticated post
  CHECK(r.log.contains("cannot read the backend token file"));

  { std::ofstream(token_file) << "first-token\n"; }
  REQUIRE(r.wait_delivered(ids));
  CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::backend_credentials); }));

  SECTION("a rotated token: 401 holds until the file carries the token the backend accepts") {
    r.sim.reset();
    so.expect_token = "second-token";
    r.start_sim(so);
    auto more = r.append({msg("results", "R-2", R"({"n":2})")});
    REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_credentials); }));
    CHECK(dead_count(r) == 0);
    { std::ofstream(token_file) << "second-token\n"; }
    REQUIRE(r.wait_delivered(more));
    CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::backend_credentials); }));
  }
}

TEST_CASE("TLS verification failure: BACKEND-004, delivery held, no dead letter") {
  scratch_dir certs;
  interfaced::test::write_test_certificates(certs.path());
  rig r;
  backend_sim_options so;
  so.tls_cert = certs / "server.pem";
  so.tls_key = certs / "server.key";
  r.start_sim(so);
  r.opts.client.base_url = "https://127.0.0.1:" + std::to_string(r.sim_port);  // the test CA not trusted
  auto ids = r.append({msg("results", "R-1", R"({"n":1})")});
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_tls); }));
  run_for(r.ioc, 300ms);
  CHECK(dead_count(r) == 0);
  CHECK(r.show(ids[0])->state == message_state::pending);
  CHECK(r.log.contains("[BACKEND-004]"));
}

TEST_CASE("backend unreachable longer than unreachable_after: BACKEND-001, cleared when it answers") {
  rig r;
  r.opts.unreachable_after = 300ms;
  r.sim_port = interfaced::test::free_port();  // nothing listens there yet
  r.opts.client.base_url = "http://127.0.0.1:" + std::to_string(r.sim_port);
  auto ids = r.append({msg("results", "R-1", R"({"n":1})")});
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::backend_unreachable); }));
  r.start_sim();  // the backend comes up on the port delivery tries
  REQUIRE(r.wait_delivered(ids));
  CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::backend_unreachable); }));
}

TEST_CASE("a 500 for one report holds that report only, DELIVERY-001 names it, set aside it blocks nothing") {
  rig r;
  r.opts.stuck_after = 300ms;
  backend_sim_options so;
  so.faults.push_back(failing_with(500, "S-BAD"));
  r.start_sim(so);
  auto ids = r.append({msg("results", "R-BAD", R"({"sample_id":"S-BAD"})"), msg("results", "R-BAD", R"({"n":"next"})"),
                       msg("results", "R-1", R"({"n":1})"), msg("results", "R-2", R"({"n":2})")});
  const std::string& bad = ids[0];
  r.start_delivery();
  REQUIRE(r.wait_delivered({ids[2], ids[3]}));
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::message_stuck, bad); }));
  CHECK(r.show(ids[1])->state == message_state::pending);  // its report waits behind it
  CHECK_FALSE(r.alarms.active(alarm_code::message_stuck, ids[2]));
  const auto alarms = r.alarms.list();
  const auto stuck = std::find_if(alarms.begin(), alarms.end(), [&](const alarm_entry& a) { return a.subject == bad; });
  REQUIRE(stuck != alarms.end());
  CHECK(stuck->text.find("HTTP 500") != std::string::npos);

  outbox_admin admin(r.dir / "outbox.sqlite");
  REQUIRE(admin.set_aside(bad, "J. Tech", "backend rejects S-BAD, ticket 42") == 1);
  r.delivery->wake();
  REQUIRE(r.wait_delivered({ids[1]}));  // its report moves on
  REQUIRE(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::message_stuck, bad); }));
  const auto parked = admin.show(bad);
  REQUIRE(parked);
  CHECK(parked->state == message_state::set_aside);
  CHECK(parked->set_aside_by == "J. Tech");
  CHECK(parked->set_aside_reason == "backend rejects S-BAD, ticket 42");
  CHECK(parked->set_aside_at.has_value());
  const auto posted = posts_with_key(r.sim->requests(), bad);
  run_for(r.ioc, 500ms);
  CHECK(posts_with_key(r.sim->requests(), bad) == posted);  // set aside: not tried any more

  r.sim->clear_faults();
  CHECK(admin.retry(bad) == 1);
  r.delivery->wake();
  REQUIRE(r.wait_delivered({bad}));
  CHECK(admin.show(bad)->set_aside_by == "J. Tech");  // the audit stays
}

TEST_CASE("dead letters present: DELIVERY-002 until they are retried") {
  rig r;
  backend_sim_options so;
  so.faults.push_back(failing_with(422, "POISON"));
  r.start_sim(so);
  auto ids = r.append({msg("results", "R-1", R"({"n":"POISON"})")});
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::dead_letters); }));
  CHECK(r.show(ids[0])->state == message_state::dead);
  r.sim->clear_faults();
  CHECK(outbox_admin(r.dir / "outbox.sqlite").retry(ids[0]) == 1);
  r.delivery->wake();
  REQUIRE(r.wait_delivered(ids));
  REQUIRE(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::dead_letters); }));
}

TEST_CASE("an outbox that cannot record outcomes: OUTBOX-002, delivery paused, the message not posted again") {
  rig r;
  r.start_sim();
  auto ids = r.append({msg("results", "R-1", R"({"n":1})"), msg("results", "R-2", R"({"n":2})")});
  { std::ofstream(r.fault_file) << "read-only\n"; }
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::outbox_write); }));
  run_for(r.ioc, 2000ms);
  // Each message was posted once: its 200 could not be recorded, and the recording is what is
  // retried (with backoff), not the POST.
  const auto reqs = r.sim->requests();
  CHECK(posts_with_key(reqs, ids[0]) == 1);
  CHECK(posts_with_key(reqs, ids[1]) == 1);
  const auto said = std::count_if(r.log.lines.begin(), r.log.lines.end(),
                                  [](const std::string& l) { return l.find("[OUTBOX-002]") != std::string::npos; });
  CHECK(said == 1);  // said once, then counted in the alarm's text
  CHECK(r.delivery->stats().unrecorded >= 2);

  std::filesystem::remove(r.fault_file);
  REQUIRE(r.wait_delivered(ids));
  // The last outcome is committed on the outbox's thread before delivery hears of it: the alarm
  // clears a moment after the row reads delivered.
  CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::outbox_write); }));
  CHECK(r.log.contains("the outbox records again"));
  const auto after = r.sim->requests();
  CHECK(posts_with_key(after, ids[0]) == 1);
  CHECK(posts_with_key(after, ids[1]) == 1);
}

TEST_CASE("an outbox that cannot be read: OUTBOX-003 with the SQLite error, said once, cleared when it reads again") {
  rig r;
  r.start_sim();
  auto ids = r.append({msg("results", "U-1", R"({"n":1})")});
  { std::ofstream(r.fault_file) << "unreadable\n"; }
  r.start_delivery();
  REQUIRE(run_until(r.ioc, [&] { return r.alarms.active(alarm_code::outbox_read); }));
  const auto alarm = r.alarms.list();
  REQUIRE_FALSE(alarm.empty());
  CHECK(alarm[0].text.find("malformed") != std::string::npos);  // SQLite's words, not "empty"
  run_for(r.ioc, 1500ms);
  CHECK(r.sim->requests().empty());  // nothing was taken for an empty outbox, nothing posted blindly
  const auto said = std::count_if(r.log.lines.begin(), r.log.lines.end(),
                                  [](const std::string& l) { return l.find("[OUTBOX-003]") != std::string::npos; });
  CHECK(said == 1);
  std::filesystem::remove(r.fault_file);
  REQUIRE(r.wait_delivered(ids));
  CHECK(run_until(r.ioc, [&] { return !r.alarms.active(alarm_code::outbox_read); }));
}

TEST_CASE("a backend failing for everyone (5xx) is tried one message at a time, not once per sample's key") {
  rig r;
  backend_sim_options so;
  so.faults.push_back(failing_with(503));
  r.start_sim(so);
  std::vector<interfaced::transport::new_message> batch;
  for (int i = 0; i < 40; ++i) batch.push_back(msg("results", "sample:S-" + std::to_string(i), R"({"n":)" + std::to_string(i) + "}"));
  auto ids = r.append(std::move(batch));
  r.start_delivery();
  run_for(r.ioc, 1500ms);
  // Three different messages failing close the gate; then one try per hold backoff (100, 200,
  // 400, 400 ms): a handful, where 40 keys with their own backoff (20 ms doubling) would be 100+.
  const auto tried = r.sim->requests().size();
  INFO(tried << " requests in 1.5 s");
  CHECK(tried <= 12);
  r.sim->clear_faults();
  REQUIRE(r.wait_delivered(ids));
}
