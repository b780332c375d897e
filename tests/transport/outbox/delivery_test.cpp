// Delivery from a real outbox file to the real backend simulator on loopback: order, retries with
// the same Idempotency-Key and bytes, Retry-After, dead letters, a backend that is down, TLS.

#include <algorithm>
#include <cctype>
#include <iterator>
#include <set>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "delivery_rig.hpp"
#include "support/certificates.hpp"
#include "daemon/sim/backend_sim.hpp"
#include "transport/delivery.hpp"
#include "transport/http_client.hpp"
#include "transport/outbox.hpp"

using namespace interfaced::transport;
using interfaced::sim::backend_sim;
using interfaced::sim::backend_sim_options;
using interfaced::sim::sim_fault;
using interfaced::sim::recorded_request;
using interfaced::sim::parse_fault;
using interfaced::test::msg;
using interfaced::test::run_coro;
using interfaced::test::run_until;
using interfaced::test::scratch_dir;
using interfaced::test::rig;
using interfaced::test::log_lines;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Bodies of the recorded requests for one ordering key, in arrival order (2xx answers only).
std::vector<std::string> delivered_bodies(const std::vector<recorded_request>& reqs, std::string_view tag) {
  std::vector<std::string> out;
  for (const auto& r : reqs) {
    if (r.status >= 200 && r.status < 300 && !r.duplicate && r.body.find(tag) != std::string::npos) out.push_back(r.body);
  }
  return out;
}

std::string header(const recorded_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (std::equal(k.begin(), k.end(), name.begin(), name.end(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); })) {
      return v;
    }
  }
  return {};
}

std::uint16_t unused_port() {
  asio::io_context ioc;
  asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("delivery keeps per-report order and sends the contract's headers") {
  rig r(3);
  r.start_sim();
  std::vector<new_message> batch;
  for (int i = 0; i < 6; ++i) {
    batch.push_back(msg("results", "REP-A", R"({"report":"REP-A","n":)" + std::to_string(i) + "}"));
    batch.push_back(msg("rerun_values", "REP-B", R"({"report":"REP-B","n":)" + std::to_string(i) + "}"));
  }
  batch.push_back(msg("rerun_request", "REP-C", R"({"report":"REP-C","n":0})"));
  auto ids = r.append(std::move(batch));
  r.start_delivery();
  REQUIRE(r.wait_delivered(ids));

  const auto reqs = r.sim->requests();
  REQUIRE(reqs.size() == ids.size());
  for (const char* rep : {"REP-A", "REP-B"}) {
    auto bodies = delivered_bodies(reqs, rep);
    REQUIRE(bodies.size() == 6);
    for (std::size_t i = 0; i < bodies.size(); ++i) {
      CHECK(bodies[i] == std::string(R"({"report":")") + rep + R"(","n":)" + std::to_string(i) + "}");
    }
  }
  std::set<std::string> keys;
  for (const auto& q : reqs) {
    keys.insert(q.idempotency_key);
    CHECK(header(q, "Content-Type") == "application/json");
    if (q.body.find("REP-A") != std::string::npos) CHECK(q.path == "/interfacing/device-results");
    if (q.body.find("REP-B") != std::string::npos) CHECK(q.path == "/sample-rerun/values");
    if (q.body.find("REP-C") != std::string::npos) {
      CHECK(q.path == "/sample-rerun/request");
      CHECK(q.internal);
    } else {
      CHECK_FALSE(q.internal);
    }
  }
  CHECK(keys == std::set<std::string>(ids.begin(), ids.end()));
  CHECK(r.delivery->stats().delivered == ids.size());
  CHECK(r.box->stats().undelivered == 0);
}

// A connection that delivered a message takes the next due message of any key (its own key's
// next included) in the same outbox round trip as its mark, while the loop hands out the others:
// still one message per key at a time, in append order, each posted once.
TEST_CASE("many keys on two connections while appends keep coming: each key in order and every message posted once") {
  rig r(2);
  r.start_sim();
  r.start_delivery();
  std::vector<std::string> ids;
  for (int round = 0; round < 5; ++round) {
    std::vector<new_message> batch;
    for (int k = 0; k < 12; ++k)
      for (int n = 0; n < 3; ++n) {
        const std::string key = "KEY-" + std::to_string(k) + "-";
        batch.push_back(msg("results", key, R"({"report":")" + key + R"(","n":)" + std::to_string(round * 3 + n) + "}"));
      }
    auto got = r.append(std::move(batch));
    ids.insert(ids.end(), got.begin(), got.end());
  }
  REQUIRE(r.wait_delivered(ids, 30s));

  const auto reqs = r.sim->requests();
  CHECK(reqs.size() == ids.size());  // none posted twice
  std::set<std::string> keys;
  for (const auto& q : reqs) keys.insert(q.idempotency_key);
  CHECK(keys == std::set<std::string>(ids.begin(), ids.end()));
  for (int k = 0; k < 12; ++k) {
    const std::string key = "KEY-" + std::to_string(k) + "-";
    const auto bodies = delivered_bodies(reqs, "\"" + key + "\"");
    REQUIRE(bodies.size() == 15);
    for (std::size_t i = 0; i < bodies.size(); ++i)
      CHECK(bodies[i] == R"({"report":")" + key + R"(","n":)" + std::to_string(i) + "}");
  }
  CHECK(r.delivery->stats().delivered == ids.size());
  CHECK(r.box->stats().undelivered == 0);
}

// A connection that delivered a message claims up to eight due messages with its mark (one outbox
// round trip for all of them). What it claimed ahead is no queue of its own: a slow request must
// not keep them from a connection that is idle meanwhile.
TEST_CASE("a slow request does not hold up the messages its connection claimed ahead: an idle connection sends them") {
  rig r(2);
  r.opts.client.request_timeout = 10s;  // slow, not failed
  sim_fault slow;
  slow.body_contains = "SLOW";
  slow.delay = 3000ms;
  slow.count = 1;
  backend_sim_options so;
  so.faults = {slow};
  r.start_sim(so);
  std::vector<new_message> batch;
  for (int i = 0; i < 10; ++i) {
    const std::string key = "REP-" + std::to_string(i);
    batch.push_back(msg("results", key, R"({"report":")" + key + (i == 2 ? R"(","SLOW":"1"})" : R"("})")));
  }
  const auto ids = r.append(std::move(batch));
  r.start_delivery();
  std::vector<std::string> fast = ids;
  fast.erase(fast.begin() + 2);
  // The two connections take REP-0 and REP-1; whichever finishes first claims the other eight,
  // the slow one first. The seven behind it go out on the other connection while it waits.
  REQUIRE(r.wait_delivered(fast, 2500ms));
  CHECK_FALSE(r.all_delivered({ids[2]}));
  REQUIRE(r.wait_delivered({ids[2]}));
  const auto reqs = r.sim->requests();
  CHECK(reqs.size() == ids.size());  // none posted twice
  CHECK(r.box->stats().undelivered == 0);
}

TEST_CASE("5xx then success: retried with the same Idempotency-Key and the same bytes") {
  rig r;
  sim_fault f;
  f.path = "/interfacing/device-results";
  f.status = 503;
  f.count = 2;
  backend_sim_options so;
  so.faults.push_back(f);
  r.start_sim(so);
  const std::string body = "{\"results\":[{\"value\":\"7,41\",\"unit\":\"g/dL\"}],\"note\":\"Grüße\"}";
  auto ids = r.append({msg("results", "REP-1", body)});
  r.start_delivery();
  REQUIRE(r.wait_delivered(ids));

  auto reqs = r.sim->requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].status == 503);
  CHECK(reqs[1].status == 503);
  CHECK(reqs[2].status == 200);
  for (const auto& q : reqs) {
    CHECK(q.idempotency_key == ids[0]);
    CHECK(q.body == body);
  }
  auto m = r.show(ids[0]);
  REQUIRE(m);
  CHECK(m->attempts == 3);
  CHECK(m->last_status == 200);
  CHECK(r.delivery->stats().retried == 2);
  CHECK(r.log.contains("HTTP 503"));
}

TEST_CASE("Retry-After (seconds) is honoured over a shorter backoff") {
  rig r;
  sim_fault f;
  f.status = 429;
  f.retry_after = "1";
  f.count = 1;
  backend_sim_options so;
  so.faults.push_back(f);
  r.start_sim(so);
  auto ids = r.append({msg("results", "REP-1", "{\"x\":1}")});
  const auto t0 = std::chrono::steady_clock::now();
  r.start_delivery();
  REQUIRE(r.wait_delivered(ids));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 1s);    // the backoff alone would have retried after ~20 ms
  CHECK(took < 1900ms);
  CHECK(r.sim->requests().size() == 2);
}

TEST_CASE("a 4xx poison message goes to the dead letters, the rest keeps flowing, retry re-queues it") {
  rig r;
  sim_fault f;
  f.body_contains = "POISON";
  f.status = 422;
  f.body = R"({"error":"unknown parameter POISON"})";
  backend_sim_options so;
  so.faults.push_back(f);
  r.start_sim(so);
  auto ids = r.append({msg("results", "REP-A", R"({"n":"A1"})"), msg("results", "REP-A", R"({"n":"A2 POISON"})"),
                       msg("results", "REP-A", R"({"n":"A3"})"), msg("results", "REP-B", R"({"n":"B1"})")});
  r.start_delivery();
  REQUIRE(r.wait_delivered({ids[0], ids[2], ids[3]}));

  auto dead = r.show(ids[1]);
  REQUIRE(dead);
  CHECK(dead->state == message_state::dead);
  CHECK(dead->last_status == 422);
  CHECK(dead->last_response == R"({"error":"unknown parameter POISON"})");
  CHECK(r.log.contains(ids[1]));
  CHECK(r.log.contains("dead letters"));
  auto listed = outbox_admin(r.dir / "outbox.sqlite").list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == ids[1]);
  CHECK(r.delivery->stats().dead == 1);
  // Order within REP-A: A1, (A2 refused), A3.
  auto a = delivered_bodies(r.sim->requests(), "A");
  CHECK(a == std::vector<std::string>{R"({"n":"A1"})", R"({"n":"A3"})"});

  // A person fixes the backend and re-queues the message.
  r.sim->clear_faults();
  CHECK(outbox_admin(r.dir / "outbox.sqlite").retry(ids[1]) == 1);
  r.delivery->wake();
  const bool redelivered = r.wait_delivered({ids[1]});
  for (const auto& l : r.log.lines) UNSCOPED_INFO(l);
  REQUIRE(redelivered);
  auto reqs = r.sim->requests();
  CHECK(std::count_if(reqs.begin(), reqs.end(), [&](const recorded_request& q) { return q.idempotency_key == ids[1]; }) == 2);
}

namespace {

// Long enough to be stored deflated (schema 13): a damage lands in a packed form.
std::string long_results_body() {
  std::string body = R"({"n":"A1","results":[)";
  for (int i = 0; i < 20; ++i) body += std::string(i ? "," : "") + R"({"parameter":"GLU","value":"5.)" + std::to_string(i) + R"("})";
  return body + "]}";
}

// The stored body of message `id` no longer matches what its deflate stream holds, as a flipped
// bit on the disk would leave it: NUL, size 7 as a varint (the stored size took two bytes), then
// the stream unchanged.
void damage_stored_body(const std::filesystem::path& file, const std::string& id) {
  interfaced::test::exec_sql(file, "UPDATE message_bodies SET body = x'0007' || substr(body, 4)"
                                   " WHERE seq = (SELECT seq FROM messages WHERE id = '" + id + "')");
}

}  // namespace

TEST_CASE("a stored body that no longer inflates goes to the dead letters with its reason and its key moves on") {
  rig r;
  r.start_sim();
  auto ids = r.append({msg("results", "REP-A", long_results_body()), msg("results", "REP-A", R"({"n":"A2"})"),
                       msg("results", "REP-B", R"({"n":"B1"})")});
  damage_stored_body(r.dir / "outbox.sqlite", ids[0]);
  // A restarted daemon: only the file holds the bodies (the process that appended them sends
  // them from memory, next test).
  r.reopen();
  auto before = r.show(ids[0]);
  REQUIRE(before);
  CHECK(before->body.empty());
  CHECK(before->body_error.find("damaged") != std::string::npos);
  r.start_delivery();
  REQUIRE(r.wait_delivered({ids[1], ids[2]}));
  auto dead = r.show(ids[0]);
  REQUIRE(dead);
  CHECK(dead->state == message_state::dead);
  CHECK(dead->last_status == 0);
  CHECK(dead->last_response.find("damaged") != std::string::npos);
  CHECK(r.log.contains(ids[0]));
  CHECK(r.log.contains("[DELIVERY-002]"));
  CHECK(r.delivery->stats().dead == 1);
  // Nothing was posted for it: the backend never saw its Idempotency-Key.
  auto reqs = r.sim->requests();
  CHECK(std::none_of(reqs.begin(), reqs.end(), [&](const recorded_request& q) { return q.idempotency_key == ids[0]; }));
}

TEST_CASE("the process that appended a message sends the bytes it appended though the stored copy was damaged since") {
  rig r;
  r.start_sim();
  const auto body = long_results_body();
  auto ids = r.append({msg("results", "REP-A", body), msg("results", "REP-B", R"({"n":"B1"})")});
  damage_stored_body(r.dir / "outbox.sqlite", ids[0]);
  REQUIRE(r.show(ids[0])->body_error.find("damaged") != std::string::npos);
  r.start_delivery();
  REQUIRE(r.wait_delivered({ids[0], ids[1]}));
  auto reqs = r.sim->requests();
  const auto sent = std::find_if(reqs.begin(), reqs.end(), [&](const recorded_request& q) { return q.idempotency_key == ids[0]; });
  REQUIRE(sent != reqs.end());
  CHECK(sent->body == body);
  CHECK(r.delivery->stats().dead == 0);
}

TEST_CASE("backend down, then up: everything is delivered, in order") {
  rig r(2);
  r.sim_port = unused_port();
  std::vector<new_message> batch;
  for (int i = 0; i < 5; ++i) {
    batch.push_back(msg("results", "REP-A", R"({"A":)" + std::to_string(i) + "}"));
    batch.push_back(msg("results", "REP-B", R"({"B":)" + std::to_string(i) + "}"));
  }
  auto ids = r.append(std::move(batch));
  r.start_delivery();
  interfaced::test::run_for(r.ioc, 400ms);
  CHECK(r.delivery->stats().delivered == 0);
  CHECK(r.delivery->stats().retried >= 2);  // both keys tried and scheduled a retry
  CHECK(r.box->stats().undelivered == ids.size());
  CHECK(r.log.contains("connection"));

  r.start_sim();  // the backend comes up on the configured port
  REQUIRE(r.wait_delivered(ids));
  auto reqs = r.sim->requests();
  CHECK(reqs.size() == ids.size());
  for (const char* k : {"\"A\"", "\"B\""}) {
    auto bodies = delivered_bodies(reqs, k);
    REQUIRE(bodies.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) CHECK(bodies[i] == "{" + std::string(k) + ":" + std::to_string(i) + "}");
  }
}

TEST_CASE("dropped connections and timeouts are retried, appends are not held up by a slow backend") {
  rig r(1);
  r.opts.client.request_timeout = 300ms;
  sim_fault drop;
  drop.drop = true;
  drop.count = 1;
  sim_fault slow;
  slow.delay = 1000ms;  // longer than the request timeout
  slow.count = 1;
  backend_sim_options so;
  so.faults = {drop, slow};
  r.start_sim(so);
  auto first = r.append({msg("results", "REP-1", "{\"n\":1}")});
  r.start_delivery();
  // While the first message is stuck with the backend, appends still complete at disk speed.
  run_until(r.ioc, [&] { return r.sim->requests().size() >= 2; }, 5s);
  const auto t0 = std::chrono::steady_clock::now();
  auto more = r.append({msg("results", "REP-2", "{\"n\":2}")});
  CHECK(std::chrono::steady_clock::now() - t0 < 250ms);
  REQUIRE(r.wait_delivered({first[0], more[0]}));
  CHECK(r.log.contains("timeout"));
  auto m = r.show(first[0]);
  REQUIRE(m);
  CHECK(m->attempts >= 3);
}

TEST_CASE("backend simulator: a 2xx fault is a slow success that stores the request, not a fake 200") {
  rig r(1);
  r.opts.client.request_timeout = 300ms;
  sim_fault slow_ok;
  slow_ok.status = 200;
  slow_ok.delay = 600ms;  // the client gives up first, the backend still takes it
  slow_ok.count = 1;
  backend_sim_options so;
  so.faults = {slow_ok};
  r.start_sim(so);
  auto ids = r.append({msg("results", "REP-1", "{\"n\":1}")});
  r.start_delivery();
  REQUIRE(r.wait_delivered(ids));
  const auto reqs = r.sim->requests();
  REQUIRE(reqs.size() == 2);
  CHECK_FALSE(reqs[0].fault);  // answered by the endpoint proper, after the delay
  CHECK(reqs[0].status == 200);
  // The retry under the same Idempotency-Key is recognised: the first one was stored.
  CHECK(reqs[1].idempotency_key == reqs[0].idempotency_key);
  CHECK(reqs[1].duplicate);
}

TEST_CASE("GET helpers return the simulator's waiting list and parameters, the token is sent, not recorded") {
  rig r;
  const auto data = r.dir / "backend.json";
  {
    std::ofstream(data) << R"({"waiting_list":{"CHEM-1":[{"sample_id":"S-1","lab_report_id":"R-1","rerunNumber":0}]},
                              "parameters":[{"machine_name":"GLU","auto_rerun_allowed":true}]})";
  }
  const auto token_file = r.dir / "token";
  { std::ofstream(token_file) << "s3cret-token\n"; }
  interfaced::transport::backend_options bc;
  bc.token_file = token_file.string();
  const auto token = load_bearer_token(bc);
  CHECK(token == "s3cret-token");

  backend_sim_options so;
  so.data_file = data;
  so.expect_token = token;
  r.start_sim(so);
  bc.base_url = "http://127.0.0.1:" + std::to_string(r.sim_port);
  http_client client(r.ioc.get_executor(), client_options(bc, token));

  auto wl = run_coro(r.ioc, fetch_waiting_list(client, bc, "CHEM-1"));
  REQUIRE_FALSE(wl.ec);
  CHECK(wl.status == 200);
  CHECK(wl.body == R"([{"lab_report_id":"R-1","rerunNumber":0,"sample_id":"S-1"}])");
  auto other = run_coro(r.ioc, fetch_waiting_list(client, bc, "HEMA 2"));
  CHECK(other.body == "[]");
  auto params = run_coro(r.ioc, fetch_parameters(client, bc, "CHEM-1"));
  CHECK(params.body == R"([{"auto_rerun_allowed":true,"machine_name":"GLU"}])");

  // The file changes: the next GET sees it (control endpoint forces it, mtime granularity aside).
  { std::ofstream(data) << R"([{"sample_id":"S-2"}])"; }
  auto reload = run_coro(r.ioc, client.request(http_method::post, "/_sim/reload", "{}"));
  CHECK(reload.status == 200);
  wl = run_coro(r.ioc, fetch_waiting_list(client, bc, "CHEM-1"));
  CHECK(wl.body == R"([{"sample_id":"S-2"}])");

  auto reqs = r.sim->requests();
  REQUIRE(reqs.size() == 4);
  CHECK(reqs[1].target == "/interfacing/waiting-list?device=HEMA%202");
  CHECK(header(reqs[0], "Authorization") == "Bearer ***");
  std::ifstream rec(r.dir / "requests.jsonl");
  std::string recorded((std::istreambuf_iterator<char>(rec)), std::istreambuf_iterator<char>());
  CHECK(recorded.find("s3cret") == std::string::npos);
  CHECK(recorded.find("\"path\":\"/interfacing/parameters\"") != std::string::npos);

  // A wrong token is refused.
  http_client wrong(r.ioc.get_executor(), client_options(bc, "nope"));
  CHECK(run_coro(r.ioc, fetch_parameters(wrong, bc, "CHEM-1")).status == 401);
}

TEST_CASE("faults can be set at run time through the control endpoint and from the CLI form") {
  rig r;
  r.start_sim();
  interfaced::transport::backend_options bc;
  bc.base_url = "http://127.0.0.1:" + std::to_string(r.sim_port);
  http_client client(r.ioc.get_executor(), client_options(bc, ""));
  auto set = run_coro(r.ioc, client.request(http_method::post, "/_sim/faults",
                                            R"({"path":"/sample-rerun/values","status":500,"count":1})"));
  CHECK(set.status == 200);
  auto a = run_coro(r.ioc, client.request(http_method::post, "/sample-rerun/values", "{}"));
  CHECK(a.status == 500);
  auto b = run_coro(r.ioc, client.request(http_method::post, "/sample-rerun/values", "{}"));
  CHECK(b.status == 200);

  std::string error;
  auto f = parse_fault("status=503,count=3,path=/interfacing/device-results,retry-after=2,delay=50", &error);
  REQUIRE(f);
  CHECK(f->status == 503);
  CHECK(f->count == 3);
  CHECK(f->path == "/interfacing/device-results");
  CHECK(f->retry_after == "2");
  CHECK(f->delay == 50ms);
  CHECK(parse_fault("drop,body-contains=XYZ")->drop);
  CHECK_FALSE(parse_fault("status=abc", &error));
  CHECK_FALSE(error.empty());
  CHECK_FALSE(parse_fault("colour=red"));

  CHECK(parse_retry_after("120") == std::chrono::seconds(120));
  // The HTTP-date form is a point in time: the delay runs from the response's arrival (now).
  using namespace std::chrono;
  const auto now = sys_days{year{2015} / October / day{21}} + hours{7} + minutes{27};
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == seconds(60));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == seconds(0));  // past: retry now
  CHECK_FALSE(parse_retry_after("Wed, 32 Oct 2015 07:28:00 GMT", now));
  CHECK_FALSE(parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now));  // obsolete RFC 850 form
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK(url_encode("a b/é") == "a%20b%2F%C3%A9");
}

TEST_CASE("TLS: the server certificate is verified, the CA file makes it pass, verify_tls=false warns") {
  scratch_dir certs;
  interfaced::test::write_test_certificates(certs.path());

  rig r;
  backend_sim_options so;
  so.tls_cert = certs / "server.pem";
  so.tls_key = certs / "server.key";
  r.start_sim(so);

  interfaced::transport::backend_options bc;
  bc.base_url = "https://127.0.0.1:" + std::to_string(r.sim_port);
  bc.connect_timeout = 2000ms;

  {
    http_client untrusted(r.ioc.get_executor(), client_options(bc, ""));
    auto res = run_coro(r.ioc, untrusted.request(http_method::post, "/interfacing/device-results", "{}"));
    CHECK(res.ec);
    INFO(res.ec.message());
    CHECK(res.ec.message().find("certificate verify failed") != std::string::npos);
    CHECK(r.sim->requests().empty());
  }
  {
    auto with_ca = bc;
    with_ca.ca_file = (certs / "ca.pem").string();
    http_client trusted(r.ioc.get_executor(), client_options(with_ca, ""));
    auto res = run_coro(r.ioc, trusted.request(http_method::post, "/interfacing/device-results", "{}"));
    REQUIRE_FALSE(res.ec);
    CHECK(res.status == 200);
    // Kept alive: a second request on the same TLS connection.
    res = run_coro(r.ioc, trusted.request(http_method::post, "/interfacing/device-results", "{}"));
    CHECK(res.status == 200);
  }
  {
    auto insecure = bc;
    insecure.verify_tls = false;
    log_lines warnings;
    http_client c(r.ioc.get_executor(), client_options(insecure, "", warnings.sink()));
    CHECK(warnings.contains("verification is OFF"));
    auto res = run_coro(r.ioc, c.request(http_method::post, "/interfacing/device-results", "{}"));
    CHECK(res.status == 200);
  }
  CHECK_THROWS_AS(http_client(r.ioc.get_executor(), client_options([&] {
                                auto b = bc;
                                b.ca_file = (certs / "missing.pem").string();
                                return b;
                              }(), "")),
                  std::invalid_argument);

  // The delivery loop over TLS, with the CA.
  r.opts.client = client_options(bc, "");
  r.opts.client.ca_file = (certs / "ca.pem").string();
  r.opts.client.connect_timeout = 2000ms;
  auto ids = r.append({msg("results", "REP-T", "{\"tls\":true}")});
  r.start_delivery();
  REQUIRE(r.wait_delivered(ids));
}
