#include "transport/delivery.hpp"

#include <algorithm>
#include <deque>
#include <ctime>
#include <exception>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "transport/file_upload.hpp"
#include "transport/outbox_call.hpp"

namespace interfaced::transport {

namespace asio = boost::asio;

std::map<std::string, std::string, std::less<>> default_paths(const backend_options& cfg) {
  return {
      {"results", cfg.results_path},
      {"rerun_values", cfg.rerun_values_path},
      {"rerun_request", cfg.rerun_request_path},
      {"qc_results", cfg.qc_results_path},
      {"qc_runs", cfg.qc_runs_path},
      {"reflex", cfg.reflex_path},
      {"auto_check", "/sample-rerun/auto-check"},
      {"storage_presign", "/storage/presign"},
      {"storage_reconcile", "/storage/reconcile"},
      {"file_report", "/interfacing/file-report"},
  };
}

delivery_options delivery_options_from(const backend_options& cfg, std::string token, event_log log) {
  delivery_options o;
  o.client = client_options(cfg, std::move(token), log);
  o.paths = default_paths(cfg);
  o.log = std::move(log);
  // A configured token is re-read while credentials are held, so fixing the file resumes delivery.
  if (!cfg.token_file.empty() || !cfg.token_env.empty())
    o.load_token = [cfg] { return load_bearer_token(cfg); };
  return o;
}

namespace {

std::string describe(const stored_message& m) {
  return "outbox message " + m.id + " (" + m.kind + (m.ordering_key.empty() ? "" : ", key " + m.ordering_key) + ")";
}

}  // namespace

failure_class classify_status(unsigned s) noexcept {
  if (s >= 200 && s < 300) return failure_class::delivered;
  switch (s) {
    case 408: case 425: case 429: return failure_class::retry;
    case 401: case 403: case 407: return failure_class::hold_credentials;
    // The URL, the method or the media type is wrong: as wrong for every other message.
    case 404: case 405: case 406: case 410: case 414: case 415: case 421: case 426:
      return failure_class::hold_endpoint;
    default: break;
  }
  if (s >= 300 && s < 400) return failure_class::hold_endpoint;  // the base URL moved: a person updates it
  if (s >= 400 && s < 500) return failure_class::dead_letter;    // 400, 409, 413, 422...: about this message
  return failure_class::retry;                                   // 5xx, and anything unknown
}

failure_class classify(const http_result& r) noexcept {
  if (r.ec) return tls_verification_failed(r.ec) ? failure_class::hold_tls : failure_class::retry;
  return classify_status(r.status);
}

const char* to_string(failure_class c) noexcept {
  switch (c) {
    case failure_class::delivered: return "delivered";
    case failure_class::retry: return "retry";
    case failure_class::hold_credentials: return "hold (credentials)";
    case failure_class::hold_endpoint: return "hold (endpoint)";
    case failure_class::hold_tls: return "hold (TLS)";
    case failure_class::dead_letter: return "dead letter";
  }
  return "retry";
}

std::string_view hold_alarm(failure_class c) noexcept {
  switch (c) {
    case failure_class::hold_credentials: return alarm_code::backend_credentials;
    case failure_class::hold_endpoint: return alarm_code::backend_endpoint;
    case failure_class::hold_tls: return alarm_code::backend_tls;
    default: return {};
  }
}

namespace {

using steady = std::chrono::steady_clock;

std::string seconds_text(steady::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

std::string iso_utc(outbox_time t) {
  const std::time_t tt = outbox_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

struct delivery_service::impl : std::enable_shared_from_this<delivery_service::impl> {
  impl(asio::any_io_executor e, outbox& b, delivery_options o)
      : ex(std::move(e)), box(b), opt(std::move(o)), timer(ex), rng(std::random_device{}()) {
    opt.connections = std::max<std::size_t>(opt.connections, 1);
    // The token goes into each request's header (it may be re-read), not into the clients.
    token = std::move(opt.client.token);
    opt.client.token.clear();
    token_stale = static_cast<bool>(opt.load_token);
    for (std::size_t i = 0; i < opt.connections; ++i) {
      clients.push_back(std::make_unique<http_client>(ex, opt.client));
      free_clients.push_back(clients.back().get());
    }
  }

  // Every message held by one condition that is not the message's fault.
  struct hold_state {
    failure_class why = failure_class::hold_credentials;
    std::string what;        // the answer, for the alarm and the log
    unsigned failures = 0;   // tries since the hold began (sets the backoff)
    steady::time_point until;
    steady::time_point since;
    bool probing = false;    // one message is being tried
  };
  // An outcome the outbox could not record: recorded again later, never re-posted for it.
  struct unrecorded_outcome {
    stored_message m;
    message_state state;
    attempt_outcome o;
    outbox_time next;
  };

  asio::any_io_executor ex;
  outbox& box;
  delivery_options opt;
  asio::steady_timer timer;
  std::mt19937_64 rng;
  std::vector<std::unique_ptr<http_client>> clients;
  std::vector<http_client*> free_clients;
  std::set<std::string> busy_keys;
  bool stopping = false;
  bool wake_pending = false;
  delivery_stats st;
  std::string token;
  bool token_stale = false;
  std::optional<hold_state> hold;
  std::optional<steady::time_point> failing_since;  // no answer below 500 since then
  // Different messages that failed (no answer, 5xx...) since the last answer of another kind:
  // from three on the backend is failing for everyone, and with a key per sample every message
  // would otherwise try on its own schedule. Delivery then sends one message at a time after
  // the hold backoff (a gate), until one gets another answer.
  std::set<std::string> failing_ids;
  unsigned gate_failures = 0;
  steady::time_point gate_until;
  static constexpr std::size_t gate_after = 3;
  std::vector<unrecorded_outcome> unrecorded;
  unsigned outbox_failures = 0;
  unsigned read_failures = 0;  // consecutive failed outbox reads (OUTBOX-003)
  steady::time_point outbox_since;
  steady::time_point outbox_pause_until;
  steady::time_point census_due;
  steady::time_point purge_due;

  void wake() {
    wake_pending = true;
    timer.cancel();
  }

  void raise(std::string_view code, std::string_view subject, std::string text) {
    if (opt.alarms) opt.alarms->raise(code, subject, std::move(text), std::chrono::system_clock::now());
  }
  void clear(std::string_view code, std::string_view subject = {}) {
    if (opt.alarms) opt.alarms->clear(code, subject);
  }
  std::chrono::milliseconds jittered(const backoff_policy& p, unsigned attempt) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    return backoff_delay(p, attempt, unit(rng));
  }

  // The loops below keep their bodies in separate coroutines on purpose: GCC 12 mis-destroys
  // locals of a loop body that spans co_await (seen as a double free).
  asio::awaitable<void> dispatch() {
    auto self = shared_from_this();
    while (!stopping) {
      wake_pending = false;
      const auto wait = co_await dispatch_once();
      if (wake_pending || stopping) continue;
      timer.expires_after(wait);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  static std::chrono::milliseconds until(steady::time_point t) {
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(t - steady::now()));
  }
  [[nodiscard]] std::chrono::milliseconds census_period() const {
    return std::clamp(opt.stuck_after / 4, std::chrono::milliseconds(250), std::chrono::milliseconds(5000));
  }

  // Starts a runner for every due key there is a free connection for; returns how long to sleep.
  asio::awaitable<std::chrono::milliseconds> dispatch_once() {
    if (!unrecorded.empty()) {
      // Paused by an outbox fault: record what could not be recorded, post nothing.
      if (steady::now() < outbox_pause_until) co_return std::min(until(outbox_pause_until), opt.idle_poll);
      co_await record_again();
      if (!unrecorded.empty() || stopping) co_return std::min(until(outbox_pause_until), opt.idle_poll);
    }
    co_await housekeeping();
    if (stopping) co_return opt.idle_poll;
    share_ahead();
    std::size_t limit = free_clients.size();
    if (hold) {
      if (hold->probing) co_return opt.idle_poll;  // its end wakes us
      if (steady::now() < hold->until) co_return std::min({until(hold->until), opt.idle_poll, census_period()});
      limit = std::min<std::size_t>(limit, 1);  // one message tries whether the hold is over
    }
    const bool gated = failing_ids.size() >= gate_after;
    if (gated) {
      if (steady::now() < gate_until) co_return std::min({until(gate_until), opt.idle_poll, census_period()});
      limit = std::min<std::size_t>(limit, 1);
    }
    if (!read_token()) co_return std::min({until(hold->until), opt.idle_poll, census_period()});
    if (limit == 0) co_return opt.idle_poll;  // a finishing runner wakes us
    if ((hold || gated) && st.in_flight > 0) co_return opt.idle_poll;
    std::vector<std::string> busy(busy_keys.begin(), busy_keys.end());
    auto claim = [this, busy = std::move(busy), limit](auto done) mutable {
      box.claim_due(std::move(busy), limit, outbox_now(), std::move(done));
    };
    due_batch batch = co_await outbox_call<due_batch>(std::move(claim));
    if (stopping) co_return opt.idle_poll;
    if (!batch.read_error.empty()) {
      // The outbox cannot be read (a damaged page, an I/O error): an alarm with SQLite's words,
      // one log line per outage, and the hold backoff before looking again.
      if (opt.alarms && opt.alarms->raise(alarm_code::outbox_read, "",
                                          "the outbox cannot be read (" + batch.read_error +
                                              "): nothing is delivered; check the disk, then see README "
                                              "\"Recovering a damaged outbox\"",
                                          std::chrono::system_clock::now()))
        emit(opt.log, "outbox read failed: " + batch.read_error + " [OUTBOX-003]");
      read_failures = std::min<unsigned>(read_failures + 1, 16);
      co_return backoff_delay(opt.hold_backoff, read_failures, 0.5);
    }
    if (read_failures > 0) {
      read_failures = 0;
      if (opt.alarms) opt.alarms->clear(alarm_code::outbox_read);
    }
    for (auto& m : batch.messages) {
      // A key may have become busy while the claim ran (a runner moved on to its next message).
      if (free_clients.empty() || busy_keys.contains(m.ordering_key)) continue;
      if (hold) {
        if (hold->probing) break;
        hold->probing = true;
      }
      busy_keys.insert(m.ordering_key);
      start_runner(std::move(m));
    }
    auto wait = std::min(opt.idle_poll, census_period());
    if (batch.next_due) {
      const auto next = std::chrono::duration_cast<std::chrono::milliseconds>(*batch.next_due - outbox_now());
      wait = std::clamp(next, std::chrono::milliseconds(0), wait);
    }
    co_return wait;
  }

  // The token, when it comes from a file or the environment and must be (re-)read. False: it
  // cannot be read, a credentials hold is on and nothing may be posted.
  bool read_token() {
    if (!opt.load_token || !token_stale) return true;
    try {
      token = opt.load_token();
      token_stale = false;
      return true;
    } catch (const std::exception& e) {
      enter_hold(failure_class::hold_credentials, e.what(), true);
      return false;
    }
  }

  // A hold answer. `counts`: this try decides about the hold (the probe, or the first failure);
  // answers of requests that were already in flight when the hold began do not grow its backoff.
  void enter_hold(failure_class why, std::string what, bool counts) {
    const auto now = steady::now();
    if (why == failure_class::hold_credentials) token_stale = true;  // a fixed token file is read on the next try
    if (hold && hold->why != why) clear(hold_alarm(hold->why));
    if (!hold || hold->why != why) {
      hold = hold_state{why, what, 0, now, now, false};
      emit(opt.log, "delivery held for every message: " + what + "; retried with backoff, no message is dead-lettered for it [" +
                        std::string(hold_alarm(why)) + "]");
    } else if (!counts) {
      return;
    }
    hold->what = std::move(what);
    hold->until = now + jittered(opt.hold_backoff, hold->failures);
    ++hold->failures;
    raise(hold_alarm(why), "",
          hold_text(why) + ": " + hold->what + " (" + std::to_string(hold->failures) + " tries since the hold began; next in " +
              seconds_text(hold->until - now) + ")");
  }

  static std::string hold_text(failure_class why) {
    switch (why) {
      case failure_class::hold_credentials: return "the backend refuses our credentials; delivery held";
      case failure_class::hold_endpoint: return "the backend endpoint is wrong (configuration); delivery held";
      case failure_class::hold_tls: return "the backend's TLS certificate does not verify; delivery held";
      default: return "delivery held";
    }
  }

  void leave_hold() {
    if (!hold) return;
    emit(opt.log, "delivery resumed: the backend answered after " + std::to_string(hold->failures) + " held tries over " +
                      seconds_text(steady::now() - hold->since) + " [" + std::string(hold_alarm(hold->why)) + "]");
    clear(hold_alarm(hold->why));
    hold.reset();
  }

  // Backend reachability (BACKEND-001): any answer below 500 proves it is there.
  void answered(bool reachable) {
    const auto now = steady::now();
    if (reachable) {
      failing_since.reset();
      clear(alarm_code::backend_unreachable);
      return;
    }
    if (!failing_since) failing_since = now;
    if (now - *failing_since >= opt.unreachable_after)
      raise(alarm_code::backend_unreachable, "",
            "the backend has not answered (connection errors, timeouts, 5xx) for " + seconds_text(now - *failing_since));
  }

  // Dead letters present (DELIVERY-002), messages pending too long (DELIVERY-001), delivered
  // rows past keep_delivered: looked at every census_period, not per message.
  asio::awaitable<void> housekeeping() {
    const auto now = steady::now();
    if (now >= purge_due && opt.keep_delivered.count() > 0) {
      purge_due = now + std::chrono::hours(1);
      const auto before = outbox_now() - std::chrono::duration_cast<std::chrono::milliseconds>(opt.keep_delivered);
      auto purge = [this, before](auto done) mutable { box.purge_delivered_before(before, std::move(done)); };
      st.purged += co_await outbox_call<std::size_t>(std::move(purge));
    }
    if (now < census_due || !opt.alarms) co_return;
    census_due = now + census_period();
    const auto cut = outbox_now() - std::chrono::duration_cast<std::chrono::milliseconds>(opt.stuck_after);
    auto count = [this, cut](auto done) mutable { box.census(cut, 10, std::move(done)); };
    const auto c = co_await outbox_call<std::optional<outbox_census>>(std::move(count));
    if (!c) co_return;  // a failed read: the outbox's own alarm says so
    st.dead_letters = c->dead;
    if (c->dead > 0)
      raise(alarm_code::dead_letters, "",
            std::to_string(c->dead) + " dead letter" + (c->dead == 1 ? "" : "s") +
                " wait for a person (`interfaced outbox list --state dead`, then `outbox retry`)");
    else
      clear(alarm_code::dead_letters);
    std::set<std::string> stuck;
    for (const auto& m : c->oldest_stuck) {
      stuck.insert(m.id);
      std::string last = m.last_status != 0 ? "HTTP " + std::to_string(m.last_status)
                         : m.attempts > 0   ? m.last_response.substr(0, 120)
                                            : "not tried yet";
      raise(alarm_code::message_stuck, m.id,
            "message " + m.id + " (" + m.kind + ", key " + m.ordering_key + ") pending since " + iso_utc(m.created_at) +
                ", " + std::to_string(m.attempts) + " attempts, last: " + last +
                (c->stuck > c->oldest_stuck.size() ? "; " + std::to_string(c->stuck) + " messages stuck in all" : "") +
                " (`interfaced outbox set-aside " + m.id + " --by NAME --reason TEXT` parks it)");
    }
    for (const auto& a : opt.alarms->list())
      if (a.code == alarm_code::message_stuck && !stuck.contains(a.subject)) clear(alarm_code::message_stuck, a.subject);
  }

  std::chrono::milliseconds retry_delay(const stored_message& m, const http_result& r) {
    auto d = jittered(opt.backoff, m.attempts);
    if (r.retry_after) {
      const auto ra = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(*r.retry_after, opt.max_retry_after));
      d = std::max(d, ra);
    }
    return d;
  }

  // What one runner (one connection) holds besides the message it is sending. Every key here is
  // in busy_keys, so neither the loop nor another runner claims that key's messages meanwhile:
  //  - ahead: due heads claimed with a mark, sent one after another on this connection;
  //  - unmarked: delivered messages whose mark waits to go to the outbox with the runner's next
  //    claim (issue #17: one worker round trip per claim_ahead messages instead of one per
  //    message). A delivered mark is not durable anyway (outbox.hpp): held here a few requests
  //    longer, it still comes before the key's next claim.
  struct runner {
    struct delivered {
      stored_message m;
      attempt_outcome o;
    };
    std::optional<stored_message> next;  // set by attempt() when the key moves on to it
    std::deque<stored_message> ahead;
    std::vector<delivered> unmarked;
    std::vector<delivered> marking;  // handed to the outbox, completions not back yet
    bool kept_key = false;  // the last message's key stays busy: its mark is in unmarked
  };
  // Due heads a runner claims at once while nothing is wrong (no hold, gate or outbox fault).
  static constexpr std::size_t claim_ahead = 8;
  std::vector<runner*> runners;  // those running (run_key), for share_ahead()

  // An idle connection takes over what a busy one claimed ahead (the key stays busy, now the new
  // runner's): a claim's batch is not a queue that one connection drains while the others wait,
  // e.g. behind a slow request.
  void share_ahead() {
    if (!nothing_in_the_way()) return;
    for (runner* r : runners)
      while (!free_clients.empty() && !r->ahead.empty()) {
        start_runner(std::move(r->ahead.back()));
        r->ahead.pop_back();
      }
  }

  // m (its key already in busy_keys) on a free connection, and what that runner claims after it.
  void start_runner(stored_message m) {
    http_client* c = free_clients.back();
    free_clients.pop_back();
    ++st.in_flight;
    asio::co_spawn(ex, run_key(std::move(m), c), asio::detached);
  }

  // Delivers m, then the messages claimed with the marks (any key's due heads, its own key's
  // next included) while there are; frees the slot.
  asio::awaitable<void> run_key(stored_message m, http_client* client) {
    auto self = shared_from_this();
    std::string key = m.ordering_key;
    std::optional<stored_message> bug;
    runner r;
    runners.push_back(&r);
    try {
      std::optional<stored_message> current = std::move(m);
      while (current && !stopping) {
        bug = *current;
        current = co_await step(std::move(*current), *client, r);
        if (current) key = current->ordering_key;  // step moved the busy mark to it
      }
      bug.reset();
    } catch (const std::exception& e) {
      // A bug, not a backend failure: the message stays pending and is tried again after its
      // backoff (below), never at once.
      emit(opt.log, std::string("delivery: unexpected exception: ") + e.what() + " [DELIVERY-004]");
    }
    // Claimed ahead and not sent: pending as they were, claimed again by whoever is free. Marks
    // whose completion an exception cut off free their keys all the same.
    std::erase(runners, &r);
    for (const auto& a : r.ahead) busy_keys.erase(a.ordering_key);
    r.ahead.clear();
    for (const auto& u : r.marking) busy_keys.erase(u.m.ordering_key);
    r.marking.clear();
    co_await mark_held(r);
    if (bug && !stopping) {
      attempt_outcome o{0, "internal error"};
      co_await mark(*bug, message_state::pending, std::move(o), outbox_now() + jittered(opt.backoff, bug->attempts));
    }
    if (hold) hold->probing = false;
    busy_keys.erase(key);
    free_clients.push_back(client);
    --st.in_flight;
    if (!stopping) wake();
  }

  // The marks a runner still holds, to the outbox; their keys are free again.
  asio::awaitable<void> mark_held(runner& r) {
    if (r.unmarked.empty()) co_return;
    r.marking = std::move(r.unmarked);
    r.unmarked.clear();
    const marked_and_claimed done = co_await hand_marks(r, nullptr, message_state::delivered, {}, std::nullopt);
    settle_marking(r, done.stored);
  }

  // The marks handed to the outbox came back: their keys are free; one the outbox could not
  // record is kept to be recorded again (delivery pauses), as any outcome is.
  void settle_marking(runner& r, const std::vector<char>& stored) {
    std::vector<runner::delivered> done = std::move(r.marking);
    r.marking.clear();
    for (std::size_t i = 0; i < done.size(); ++i) {
      busy_keys.erase(done[i].m.ordering_key);
      if (i < stored.size() && stored[i] == 0)
        record_failed(unrecorded_outcome{std::move(done[i].m), message_state::delivered, std::move(done[i].o), {}});
    }
  }

  // One attempt, then the next message this runner sends (claimed with its mark, or claimed
  // ahead), if any. m's key stays busy while its mark is held or a message of this runner has
  // it; else it is let go here when the runner moves on, or by run_key when it ends.
  asio::awaitable<std::optional<stored_message>> step(stored_message m, http_client& client, runner& r) {
    r.next.reset();
    r.kept_key = false;
    const bool moved = co_await attempt(m, client, r);
    if (!moved || stopping) co_return std::nullopt;  // run_key gives back what is ahead
    if (!r.next && !r.ahead.empty() && nothing_in_the_way()) {
      r.next = std::move(r.ahead.front());
      r.ahead.pop_front();
    }
    if (!r.next) co_return std::nullopt;
    const auto& k = m.ordering_key;
    const bool still_ours = r.kept_key || r.next->ordering_key == k ||
                            std::any_of(r.ahead.begin(), r.ahead.end(), [&](const auto& a) { return a.ordering_key == k; });
    if (!still_ours) busy_keys.erase(k);
    share_ahead();
    co_return std::move(r.next);
  }

  // Nothing decides otherwise what is sent: no hold, no gate, no outcome waiting to be recorded.
  [[nodiscard]] bool nothing_in_the_way() const {
    return !stopping && !hold && failing_ids.size() < gate_after && unrecorded.empty();
  }

  struct marked_and_claimed {
    std::vector<char> stored;  // each mark's: recorded (1) or not (0), in queue order
    due_batch next;
  };
  // One batch of marks (and a claim) handed to the outbox: complete when every completion came
  // back. They all run on this loop (the outbox posts its completions here): a plain count.
  struct marks_state {
    std::size_t left = 0;
    marked_and_claimed r;
    std::function<void(marked_and_claimed)> finish;
    void arrived() {
      if (--left == 0) finish(std::move(r));
    }
    static std::function<void(bool)> marked(const std::shared_ptr<marks_state>& p, std::size_t i) {
      return [p, i](bool ok) {
        p->r.stored[i] = ok ? 1 : 0;
        p->arrived();
      };
    }
  };

  // The marks in r.marking, then `last`'s outcome o (delivered, or dead: s) when given, then with
  // `claim` (the busy keys it skips) the claim of this connection's next messages, handed to the
  // worker together: one wake-up, one batch, one completion hand-off; the claim is queued after
  // the marks so it sees them. At least one mark. Not a coroutine (its by-value parameter is
  // safe from GCC 12's coroutine bug): what it needs is moved into the operation before the
  // caller awaits it.
  asio::awaitable<marked_and_claimed> hand_marks(const runner& r, const stored_message* last, message_state s,
                                                 const attempt_outcome& o,
                                                 std::optional<std::vector<std::string>> claim) {
    std::vector<std::pair<std::string, attempt_outcome>> marks;
    marks.reserve(r.marking.size() + 1);
    for (const auto& u : r.marking) marks.emplace_back(u.m.id, u.o);
    if (last) marks.emplace_back(last->id, o);
    const bool dead_last = last && s == message_state::dead;
    auto all = [this, marks = std::move(marks), dead_last, claim = std::move(claim)](auto done) mutable {
      auto p = std::make_shared<marks_state>();
      p->left = marks.size() + (claim ? 1 : 0);
      p->r.stored.assign(marks.size(), 0);
      p->finish = std::move(done);
      box.together([&] {
        for (std::size_t i = 0; i < marks.size(); ++i) {
          auto& [id, outcome] = marks[i];
          if (dead_last && i + 1 == marks.size()) box.mark_dead(std::move(id), std::move(outcome), marks_state::marked(p, i));
          else box.mark_delivered(std::move(id), std::move(outcome), marks_state::marked(p, i));
        }
        if (claim)
          box.claim_due(std::move(*claim), claim_ahead, outbox_now(), [p](due_batch b) {
            p->r.next = std::move(b);
            p->arrived();
          });
      });
    };
    return outbox_call<marked_and_claimed>(std::move(all));
  }

  // m may move on (delivered or dead-lettered). While steady, a delivered m with messages claimed
  // ahead keeps its mark (runner::unmarked) and the runner sends the next one. Otherwise the held
  // marks, m's and (nothing left ahead) the claim of this connection's next messages go to the
  // outbox together, the claim queued after the marks so it sees them (m's key's next message is
  // its head only then): one round trip for claim_ahead messages instead of three per message
  // (the mark, the key's next, the loop's claim when the runner ended); per-key order is the
  // claim's (heads only, busy keys excluded). No claim while a hold, the gate or an outbox fault
  // decides what is sent: then the loop claims, as before.
  asio::awaitable<bool> moved_on(const stored_message& m, message_state s, attempt_outcome o, runner& r) {
    if (!nothing_in_the_way()) {
      co_await mark_held(r);
      co_return co_await mark(m, s, std::move(o), {});
    }
    if (s == message_state::delivered && !r.ahead.empty()) {
      r.unmarked.push_back({m, std::move(o)});
      r.kept_key = true;
      r.next = std::move(r.ahead.front());
      r.ahead.pop_front();
      co_return true;
    }
    r.marking = std::move(r.unmarked);
    r.unmarked.clear();
    // The claim (nothing left ahead) skips the busy keys but those these marks free.
    std::optional<std::vector<std::string>> claim;
    if (r.ahead.empty()) {
      claim.emplace();
      for (const auto& k : busy_keys) {
        const bool marked_now = k == m.ordering_key || std::any_of(r.marking.begin(), r.marking.end(), [&](const auto& u) {
                                  return u.m.ordering_key == k;
                                });
        if (!marked_now) claim->push_back(k);
      }
    }
    marked_and_claimed done = co_await hand_marks(r, &m, s, o, std::move(claim));
    settle_marking(r, done.stored);
    if (done.stored.back() == 0) {
      // The claimed messages stay pending and are claimed again once the outbox records again.
      unrecorded_outcome u{m, s, std::move(o), {}};
      co_return record_failed(std::move(u));
    }
    // Another runner or the loop may have taken a key while the claim ran: it is theirs (m's
    // key is this runner's until step() lets it go). A read error is the loop's to report
    // (OUTBOX-003) at its next claim.
    for (auto& c : done.next.messages) {
      if (c.ordering_key != m.ordering_key && busy_keys.contains(c.ordering_key)) continue;
      busy_keys.insert(c.ordering_key);
      r.ahead.push_back(std::move(c));
    }
    if (!r.ahead.empty()) {
      r.next = std::move(r.ahead.front());
      r.ahead.pop_front();
    }
    co_return true;
  }

  // A file-type report: its stages (file_upload.hpp) in one attempt; the message row records how
  // the attempt ended, the file_jobs row the stage reached.
  asio::awaitable<bool> attempt_file(const stored_message& m, http_client& client) {
    file_stage_options fo;
    fo.presign_path = opt.paths.count("storage_presign") ? opt.paths.at("storage_presign") : fo.presign_path;
    fo.reconcile_path = opt.paths.count("storage_reconcile") ? opt.paths.at("storage_reconcile") : fo.reconcile_path;
    fo.file_report_path = opt.paths.count("file_report") ? opt.paths.at("file_report") : fo.file_report_path;
    fo.store_client = opt.client;
    fo.store_client.token.clear();
    fo.log = opt.log;
    fo.device_log = opt.device_log;
    ++st.attempts;
    const auto sent = steady::now();
    file_attempt a = co_await run_file_report(box, client, fo, m, token);
    st.request_latency.observe(steady::now() - sent);
    if (stopping) co_return false;
    const bool probe = hold && hold->probing;
    if (hold && a.backend_answered) leave_hold();  // the backend answered otherwise: the held condition is gone
    switch (a.what) {
      case file_attempt::end::delivered: {
        ++st.delivered;
        if (opt.trace) emit(opt.trace, describe(m) + ": file report finalized");
        co_return co_await mark(m, message_state::delivered, std::move(a.outcome), {});
      }
      case file_attempt::end::hold:
        // The backend refused our credentials (or its endpoint / TLS is wrong) on a stage: held
        // like every other message, the stage kept, tried again when the hold's probe decides.
        ++st.held;
        enter_hold(a.held, a.outcome.response + " (on " + a.held_on + ")", probe || !hold);
        co_await mark(m, message_state::pending, std::move(a.outcome),
                      outbox_now() + std::chrono::duration_cast<std::chrono::milliseconds>(hold->until - steady::now()));
        co_return false;
      case file_attempt::end::dead:
        ++st.dead;
        census_due = steady::now();
        co_return co_await mark(m, message_state::dead, std::move(a.outcome), {});
      case file_attempt::end::wait:
        // Waiting for the analyser's file is not a failure: no backoff growth, no gate.
        co_await mark(m, message_state::pending, std::move(a.outcome), outbox_now() + a.wait);
        co_return false;
      case file_attempt::end::retry: {
        ++st.retried;
        http_result r;
        r.retry_after = a.retry_after;
        const auto delay = retry_delay(m, r);
        co_await mark(m, message_state::pending, std::move(a.outcome), outbox_now() + delay);
        co_return false;
      }
    }
    co_return false;
  }

  // Nothing can be sent for `m` (a damaged stored body, an unknown kind): a dead letter a person
  // sees, not a claim that fails again and again and holds up every message after it.
  asio::awaitable<bool> undeliverable(const stored_message& m, std::string why) {
    attempt_outcome o{0, std::move(why)};
    emit(opt.log, describe(m) + ": " + o.response + "; moved to the dead letters [DELIVERY-002]");
    ++st.dead;
    census_due = steady::now();  // DELIVERY-002 without waiting for the next census
    co_return co_await mark(m, message_state::dead, std::move(o), {});
  }

  // One attempt; true when the key may move on (delivered or dead-lettered). r.next: the message
  // this runner sends next (moved_on()), if any.
  asio::awaitable<bool> attempt(const stored_message& m, http_client& client, runner& run) {
    if (!m.body_error.empty()) co_return co_await undeliverable(m, m.body_error);
    if (m.kind == "file_report") co_return co_await attempt_file(m, client);
    auto path = opt.paths.find(m.kind);
    if (path == opt.paths.end())
      co_return co_await undeliverable(m, "no endpoint path configured for message kind '" + m.kind + "'");
    std::vector<http_header> headers{{"Idempotency-Key", m.id}, {"Content-Type", "application/json"}};
    if (!token.empty()) headers.push_back({"Authorization", "Bearer " + token});
    if (m.internal_request || m.kind == "rerun_request") headers.push_back({"x-is-internal-request", "True"});
    ++st.attempts;
    const auto sent = steady::now();
    http_result r = co_await client.request(http_method::post, path->second, m.body, std::move(headers));
    st.request_latency.observe(steady::now() - sent);
    if (stopping) co_return false;  // aborted by stop(): stays pending as it was

    const failure_class cls = classify(r);
    answered(!r.ec && r.status < 500);
    if (cls == failure_class::retry) {
      failing_ids.insert(m.id);
      if (failing_ids.size() >= gate_after) {
        gate_until = steady::now() + jittered(opt.hold_backoff, gate_failures);
        ++gate_failures;
      }
    } else {
      failing_ids.clear();
      gate_failures = 0;
    }
    const bool probe = hold && hold->probing;
    if (hold && hold_alarm(cls).empty()) leave_hold();  // any other answer: the held condition is gone

    if (cls == failure_class::delivered) {
      ++st.delivered;
      if (opt.trace)
        emit(opt.trace, describe(m) + ": delivered to " + path->second + ", HTTP " + std::to_string(r.status) +
                            " after " + std::to_string(m.attempts + 1) + " attempt(s)");
      // A retried dead letter or a stuck message got through: its alarm clears now, not at the next census.
      if (opt.alarms && (opt.alarms->any(alarm_code::dead_letters) || opt.alarms->any(alarm_code::message_stuck)))
        census_due = steady::now();
      attempt_outcome o{static_cast<int>(r.status), std::move(r.body)};
      co_return co_await moved_on(m, message_state::delivered, std::move(o), run);
    }
    const std::string why = r.ec ? (r.timed_out ? "timeout: " : "connection: ") + r.ec.message()
                                 : "HTTP " + std::to_string(r.status);
    if (!hold_alarm(cls).empty()) {
      ++st.held;
      std::string answer = why;
      if (!r.ec && !r.body.empty()) answer += " " + r.body.substr(0, 200);
      enter_hold(cls, answer + " (on " + path->second + ")", probe || !hold);
      attempt_outcome o{static_cast<int>(r.status), r.ec ? why : std::move(r.body)};
      // Due again when the hold ends; the hold's probe decides, not this message's own backoff.
      co_await mark(m, message_state::pending, std::move(o),
                    outbox_now() + std::chrono::duration_cast<std::chrono::milliseconds>(hold->until - steady::now()));
      co_return false;
    }
    if (cls == failure_class::retry) {
      const auto delay = retry_delay(m, r);
      emit(opt.log, describe(m) + ": attempt " + std::to_string(m.attempts + 1) + " failed (" + why + "); retry in " +
                        std::to_string(delay.count()) + " ms [DELIVERY-003]");
      ++st.retried;
      attempt_outcome o{static_cast<int>(r.status), r.ec ? why : std::move(r.body)};
      co_await mark(m, message_state::pending, std::move(o), outbox_now() + delay);
      co_return false;  // the key waits for this message's retry
    }
    emit(opt.log, describe(m) + ": refused by the backend with HTTP " + std::to_string(r.status) +
                      "; moved to the dead letters (`interfaced outbox show " + m.id + "`) [DELIVERY-002]");
    ++st.dead;
    census_due = steady::now();  // DELIVERY-002 without waiting for the next census
    attempt_outcome o{static_cast<int>(r.status), std::move(r.body)};
    co_return co_await moved_on(m, message_state::dead, std::move(o), run);
  }

  asio::awaitable<bool> store(std::string id, message_state s, attempt_outcome outcome, outbox_time next) {
    auto record = [this, id = std::move(id), s, outcome = std::move(outcome), next](auto done) mutable {
      switch (s) {
        case message_state::delivered: box.mark_delivered(std::move(id), std::move(outcome), std::move(done)); break;
        case message_state::dead: box.mark_dead(std::move(id), std::move(outcome), std::move(done)); break;
        case message_state::pending:
        case message_state::set_aside: box.mark_retry(std::move(id), std::move(outcome), next, std::move(done)); break;
      }
    };
    co_return co_await outbox_call<bool>(std::move(record));
  }

  asio::awaitable<bool> mark(const stored_message& m, message_state s, attempt_outcome o, outbox_time next) {
    const bool stored = co_await store(m.id, s, o, next);
    if (stored) co_return true;
    unrecorded_outcome u{m, s, std::move(o), next};
    co_return record_failed(std::move(u));
  }

  // An outbox fault: the outcome is kept here and recorded again later; the message is not
  // posted again for it. Returns false (the key does not move on).
  bool record_failed(unrecorded_outcome u) {
    ++st.unrecorded;
    const std::string what = describe(u.m);
    const message_state s = u.state;
    unrecorded.push_back(std::move(u));
    if (outbox_failures == 0) {
      outbox_since = steady::now();
      emit(opt.log, what + ": the outbox could not record the outcome (" + to_string(s) +
                        "); delivery paused, the recording is retried with backoff and the message is not sent again for it [" +
                        std::string(alarm_code::outbox_write) + "]");
    }
    outbox_pause_until = steady::now() + jittered(opt.hold_backoff, outbox_failures);
    ++outbox_failures;
    raise(alarm_code::outbox_write, "",
          "the outbox cannot record delivery outcomes (read-only file or disk full?); delivery paused, " +
              std::to_string(outbox_failures) + " failed writes over " + seconds_text(steady::now() - outbox_since));
    return false;
  }

  asio::awaitable<void> record_again() {
    while (!unrecorded.empty() && !stopping) {
      auto& u = unrecorded.front();
      const bool stored = co_await store(u.m.id, u.state, u.o, u.next);
      if (!stored) {
        outbox_pause_until = steady::now() + jittered(opt.hold_backoff, outbox_failures);
        ++outbox_failures;
        raise(alarm_code::outbox_write, "",
              "the outbox cannot record delivery outcomes (read-only file or disk full?); delivery paused, " +
                  std::to_string(outbox_failures) + " failed writes over " + seconds_text(steady::now() - outbox_since));
        co_return;
      }
      unrecorded.erase(unrecorded.begin());
    }
    if (!unrecorded.empty()) co_return;
    emit(opt.log, "the outbox records again after " + std::to_string(outbox_failures) + " failed writes over " +
                      seconds_text(steady::now() - outbox_since) + "; delivery resumed [" + std::string(alarm_code::outbox_write) + "]");
    outbox_failures = 0;
    clear(alarm_code::outbox_write);
  }
};

delivery_service::delivery_service(asio::any_io_executor ex, outbox& box, delivery_options options)
    : impl_(std::make_shared<impl>(std::move(ex), box, std::move(options))) {
  std::weak_ptr<impl> weak = impl_;
  box.on_appended([weak] {
    if (auto i = weak.lock()) asio::post(i->ex, [weak] {
        if (auto j = weak.lock()) j->wake();
      });
  });
}

delivery_service::~delivery_service() {
  impl_->box.on_appended({});
  stop();
}

void delivery_service::start() {
  auto i = impl_;
  asio::post(i->ex, [i] {
    i->stopping = false;
    asio::co_spawn(i->ex, i->dispatch(), [i](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        emit(i->opt.log, std::string("delivery loop ended by an exception (a bug): ") + x.what() + " [DELIVERY-004]");
      }
    });
  });
}

void delivery_service::stop() {
  auto i = impl_;
  // Runs on the loop's thread: the state is the loop's.
  asio::post(i->ex, [i] {
    i->stopping = true;
    i->timer.cancel();
    for (auto& c : i->clients) c->close();
  });
}

void delivery_service::wake() {
  auto i = impl_;
  asio::post(i->ex, [i] { i->wake(); });
}

delivery_stats delivery_service::stats() const { return impl_->st; }

}  // namespace interfaced::transport
