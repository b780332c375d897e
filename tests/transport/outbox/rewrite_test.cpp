// The outbox's guarded body rewrite (qc.md "Results still in the outbox are re-tagged before
// delivery"): a body may change only while no delivery attempt has started for it, because every
// attempt sends the stored body byte for byte under the same Idempotency-Key.

#include <optional>
#include <string>
#include <vector>

#include "outbox_support.hpp"
#include "transport/outbox.hpp"

using namespace interfaced::transport;
using interfaced::test::config_at;
using interfaced::test::msg;
using interfaced::test::scratch_dir;

namespace {

const std::string old_body = R"({"results":[{"sample_id":"S-1","qc_status":"rejected"}]})";
const std::string new_body = R"({"results":[{"sample_id":"S-1","qc_status":"accepted"}]})";

std::optional<std::string> to_new(const std::string& body) {
  if (body != old_body) return std::nullopt;
  return new_body;
}

std::vector<std::string> append_all(boost::asio::io_context& ioc, outbox& box, std::vector<new_message> v) {
  std::optional<append_result> r;
  box.append(std::move(v), [&](append_result a) { r = std::move(a); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
  REQUIRE(r->durable);
  return r->ids;
}

// One append with body rewrites, waited for; durable or not is the caller's to check.
append_result append_rewriting(boost::asio::io_context& ioc, outbox& box, std::vector<new_message> v,
                               std::vector<body_rewrite> rw) {
  std::optional<append_result> r;
  box.append(std::move(v), {}, std::move(rw), [&](append_result a) { r = std::move(a); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return r.has_value(); }));
  return std::move(*r);
}

// What delivery would be handed next, every key but busy_keys.
due_batch claim(boost::asio::io_context& ioc, outbox& box, std::vector<std::string> busy_keys) {
  std::optional<due_batch> due;
  box.claim_due(std::move(busy_keys), 10, outbox_now(), [&](due_batch b) { due = std::move(b); });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return due.has_value(); }));
  return std::move(*due);
}

bool rewrite(boost::asio::io_context& ioc, outbox& box, const std::string& id) {
  std::optional<bool> applied;
  box.rewrite_pending(id, to_new, [&](bool a) { applied = a; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return applied.has_value(); }));
  return *applied;
}

std::string body_of(const std::filesystem::path& file, const std::string& id) {
  outbox_admin admin(file);
  const auto m = admin.show(id);
  REQUIRE(m.has_value());
  return m->body;
}

}  // namespace

TEST_CASE("rewrite_pending: applies to a pending never-attempted message and refuses attempted or in-flight or delivered ones") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  const auto ids = append_all(ioc, box, {msg("results", "a", old_body), msg("results", "b", old_body),
                                         msg("results", "c", old_body), msg("results", "d", old_body)});
  REQUIRE(ids.size() == 4);

  SECTION("pending and never attempted: rewritten, durable, and what delivery is handed next") {
    CHECK(rewrite(ioc, box, ids[0]));
    CHECK(body_of(file, ids[0]) == new_body);
    const auto due = claim(ioc, box, {"b", "c", "d"});
    REQUIRE(due.messages.size() == 1);
    CHECK(due.messages[0].body == new_body);
  }
  SECTION("attempted once (a 503, pending again): refused, the body stays byte-identical") {
    std::optional<bool> marked;
    box.mark_retry(ids[1], attempt_outcome{503, ""}, outbox_now(), [&](bool ok) { marked = ok; });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
    CHECK_FALSE(rewrite(ioc, box, ids[1]));
    CHECK(body_of(file, ids[1]) == old_body);
  }
  SECTION("in flight (claimed by delivery, no outcome yet, attempts still 0): refused") {
    const auto due = claim(ioc, box, {"a", "b", "d"});
    REQUIRE(due.messages.size() == 1);
    REQUIRE(due.messages[0].id == ids[2]);
    CHECK(due.messages[0].attempts == 0);
    CHECK_FALSE(rewrite(ioc, box, ids[2]));
    CHECK(body_of(file, ids[2]) == old_body);
  }
  SECTION("delivered: refused") {
    std::optional<bool> marked;
    box.mark_delivered(ids[3], attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
    REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
    CHECK_FALSE(rewrite(ioc, box, ids[3]));
    CHECK(body_of(file, ids[3]) == old_body);
  }
  SECTION("an unknown message: refused") { CHECK_FALSE(rewrite(ioc, box, "no-such-id")); }
}

TEST_CASE("rewrite_pending: a message stored before this process opened the outbox is refused") {
  // A process that died after sending a body but before marking its attempt leaves attempts at 0:
  // only the messages this process stored are provably unsent.
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  std::string earlier;
  {
    boost::asio::io_context ioc;
    outbox box(config_at(file), interfaced::test::poster_for(ioc));
    earlier = append_all(ioc, box, {msg("results", "a", old_body)}).at(0);
  }
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  const auto later = append_all(ioc, box, {msg("results", "b", old_body)}).at(0);
  CHECK_FALSE(rewrite(ioc, box, earlier));
  CHECK(body_of(file, earlier) == old_body);
  CHECK(rewrite(ioc, box, later));
  CHECK(body_of(file, later) == new_body);
}

TEST_CASE("a required rewrite that is refused fails its whole batch: nothing of it is stored") {
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  const auto ids = append_all(ioc, box, {msg("results", "a", old_body), msg("results", "b", old_body)});
  std::optional<bool> marked;
  box.mark_retry(ids[1], attempt_outcome{0, "connection refused"}, outbox_now(), [&](bool ok) { marked = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));

  std::vector<body_rewrite> rw;
  rw.push_back({ids[0], to_new, true, {}});  // would apply
  rw.push_back({ids[1], to_new, true, {}});  // attempted: refused
  auto r = append_rewriting(ioc, box, {msg("qc_runs", "device:chem", "{}")}, std::move(rw));
  CHECK_FALSE(r.durable);
  CHECK(r.error.find(ids[1]) != std::string::npos);
  REQUIRE(r.rewritten.size() == 2);
  CHECK_FALSE(r.rewritten[0]);
  CHECK(body_of(file, ids[0]) == old_body);
  outbox_admin admin(file);
  CHECK_FALSE(admin.show(r.ids.at(0)).has_value());

  // Not required: the refused one is reported, the rest commits.
  rw.clear();
  rw.push_back({ids[0], to_new, false, {}});
  rw.push_back({ids[1], to_new, false, {}});
  r = append_rewriting(ioc, box, {}, std::move(rw));
  CHECK(r.durable);
  CHECK(r.rewritten == std::vector<bool>{true, false});
  CHECK(body_of(file, ids[0]) == new_body);
  CHECK(body_of(file, ids[1]) == old_body);
}

TEST_CASE("a rewrite refused in the transaction stores its otherwise messages instead, an applied one does not") {
  // qc.md: the re-tag of a post delivery claimed meanwhile becomes a qc_status correction post,
  // decided where the guard is, inside the one transaction: never a lost status, never both.
  scratch_dir dir;
  const auto file = dir / "outbox.sqlite";
  boost::asio::io_context ioc;
  outbox box(config_at(file), interfaced::test::poster_for(ioc));
  const auto ids = append_all(ioc, box, {msg("results", "device:chem", old_body), msg("results", "device:lyte", old_body)});
  const auto due = claim(ioc, box, {"device:lyte"});
  REQUIRE(due.messages.size() == 1);
  REQUIRE(due.messages[0].id == ids[0]);  // in flight, attempts still 0

  std::vector<body_rewrite> rw;
  rw.push_back({ids[0], to_new, false, {msg("qc_runs", "device:chem", R"({"correction":"S-1 chem"})")}});
  rw.push_back({ids[1], to_new, false, {msg("qc_runs", "device:lyte", R"({"correction":"S-1 lyte"})")}});
  auto r = append_rewriting(ioc, box, {msg("qc_runs", "device:chem", R"({"run":"10:00"})")}, std::move(rw));
  REQUIRE(r.durable);
  CHECK(r.rewritten == std::vector<bool>{false, true});
  REQUIRE(r.otherwise_ids.size() == 1);
  CHECK(body_of(file, ids[0]) == old_body);  // sent as it was claimed
  CHECK(body_of(file, ids[1]) == new_body);
  CHECK(body_of(file, r.otherwise_ids[0]) == R"({"correction":"S-1 chem"})");
  // Stored: 2 results + the run's post + one correction; the spared correction is not counted.
  CHECK(box.stats().undelivered == 4);
  outbox_admin admin(file);
  std::size_t lyte_corrections = 0;
  for (const auto& m : admin.list()) lyte_corrections += admin.show(m.id)->body.find("S-1 lyte") != std::string::npos;
  CHECK(lyte_corrections == 0);

  // The correction follows what it corrects in its key: after the results post and the run's post.
  std::optional<bool> marked;
  box.mark_delivered(ids[0], attempt_outcome{200, "{}"}, [&](bool ok) { marked = ok; });
  REQUIRE(interfaced::test::run_until(ioc, [&] { return marked.has_value(); }));
  const auto head = claim(ioc, box, {"device:lyte"});  // device:chem's head only
  REQUIRE(head.messages.size() == 1);
  CHECK(head.messages[0].id == r.ids.at(0));
}
