#include "transport/delivery.hpp"

#include <algorithm>
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

namespace interfaced::transport {

namespace asio = boost::asio;

std::map<std::string, std::string, std::less<>> default_paths(const backend_options& cfg) {
  return {
      {"results", cfg.results_path},
      {"rerun_values", cfg.rerun_values_path},
      {"rerun_request", cfg.rerun_request_path},
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
  return o;
}

namespace {

// Runs one outbox operation and resumes the coroutine on its own executor with the result (the
// outbox completes on its worker thread, or through its poster).
template <class T, class Start>
asio::awaitable<T> outbox_call_coro(Start start) {
  auto ex = co_await asio::this_coro::executor;
  // A named initiation, holding `start` through a pointer: GCC 12 double-destroys captures of a
  // coroutine parameter in a lambda handed straight to async_initiate inside co_await.
  auto initiation = [ex, s = std::make_shared<Start>(std::move(start))](auto handler) mutable {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    (*s)([ex, h](T v) mutable { asio::post(ex, [h, v = std::move(v)]() mutable { (*h)(std::move(v)); }); });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(std::move(initiation),
                                                                                 asio::use_awaitable);
}

// Not a coroutine on purpose: GCC 12 destroys a prvalue argument of a coroutine's by-value
// parameter twice (a lambda, an aggregate); here `start` is a named object, moved in.
template <class T, class Start>
asio::awaitable<T> outbox_call(Start start) {
  return outbox_call_coro<T>(std::move(start));
}

std::string describe(const stored_message& m) {
  return "outbox message " + m.id + " (" + m.kind + (m.ordering_key.empty() ? "" : ", key " + m.ordering_key) + ")";
}

}  // namespace

struct delivery_service::impl : std::enable_shared_from_this<delivery_service::impl> {
  impl(asio::any_io_executor e, outbox& b, delivery_options o)
      : ex(std::move(e)), box(b), opt(std::move(o)), timer(ex), rng(std::random_device{}()) {
    opt.connections = std::max<std::size_t>(opt.connections, 1);
    for (std::size_t i = 0; i < opt.connections; ++i) {
      clients.push_back(std::make_unique<http_client>(ex, opt.client));
      free_clients.push_back(clients.back().get());
    }
  }

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

  void wake() {
    wake_pending = true;
    timer.cancel();
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

  // Starts a runner for every due key there is a free connection for; returns how long to sleep.
  asio::awaitable<std::chrono::milliseconds> dispatch_once() {
    if (free_clients.empty()) co_return opt.idle_poll;  // a finishing runner wakes us
    std::vector<std::string> busy(busy_keys.begin(), busy_keys.end());
    const auto limit = free_clients.size();
    auto claim = [this, busy = std::move(busy), limit](auto done) mutable {
      box.claim_due(std::move(busy), limit, outbox_now(), std::move(done));
    };
    due_batch batch = co_await outbox_call<due_batch>(std::move(claim));
    if (stopping) co_return opt.idle_poll;
    for (auto& m : batch.messages) {
      // A key may have become busy while the claim ran (a runner moved on to its next message).
      if (free_clients.empty() || busy_keys.contains(m.ordering_key)) continue;
      http_client* c = free_clients.back();
      free_clients.pop_back();
      busy_keys.insert(m.ordering_key);
      ++st.in_flight;
      asio::co_spawn(ex, run_key(std::move(m), c), asio::detached);
    }
    auto wait = opt.idle_poll;
    if (batch.next_due) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*batch.next_due - outbox_now());
      wait = std::clamp(until, std::chrono::milliseconds(0), wait);
    }
    co_return wait;
  }

  std::chrono::milliseconds retry_delay(const stored_message& m, const http_result& r) {
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto d = backoff_delay(opt.backoff, m.attempts, unit(rng));
    if (r.retry_after) {
      const auto ra = std::chrono::duration_cast<std::chrono::milliseconds>(std::min(*r.retry_after, opt.max_retry_after));
      d = std::max(d, ra);
    }
    return d;
  }

  // Delivers m, then the following messages of its key while they are due; frees the slot.
  asio::awaitable<void> run_key(stored_message m, http_client* client) {
    auto self = shared_from_this();
    const std::string key = m.ordering_key;
    try {
      std::optional<stored_message> current = std::move(m);
      while (current && !stopping) current = co_await step(std::move(*current), *client);
    } catch (const std::exception& e) {
      // A bug, not a backend failure: the message stays pending and is tried again.
      emit(opt.log, std::string("delivery: unexpected exception: ") + e.what());
    }
    busy_keys.erase(key);
    free_clients.push_back(client);
    --st.in_flight;
    if (!stopping) wake();
  }

  // One attempt, then the key's next message when the key may move on and it is due.
  asio::awaitable<std::optional<stored_message>> step(stored_message m, http_client& client) {
    const bool moved_on = co_await attempt(m, client);
    if (!moved_on || stopping) co_return std::nullopt;
    std::string key = m.ordering_key;
    auto next = [this, key = std::move(key)](auto done) mutable {
      box.next_in_key(key, outbox_now(), std::move(done));
    };
    co_return co_await outbox_call<std::optional<stored_message>>(std::move(next));
  }

  // One attempt; true when the key may move on (delivered or dead-lettered).
  asio::awaitable<bool> attempt(const stored_message& m, http_client& client) {
    auto path = opt.paths.find(m.kind);
    if (path == opt.paths.end()) {
      attempt_outcome o{0, "no endpoint path configured for message kind '" + m.kind + "'"};
      emit(opt.log, describe(m) + ": " + o.response + "; moved to the dead letters");
      ++st.dead;
      co_return co_await mark(m, message_state::dead, std::move(o), {});
    }
    std::vector<http_header> headers{{"Idempotency-Key", m.id}, {"Content-Type", "application/json"}};
    if (m.internal_request || m.kind == "rerun_request") headers.push_back({"x-is-internal-request", "True"});
    ++st.attempts;
    const auto sent = std::chrono::steady_clock::now();
    http_result r = co_await client.request(http_method::post, path->second, m.body, std::move(headers));
    st.request_latency.observe(std::chrono::steady_clock::now() - sent);
    if (stopping) co_return false;  // aborted by stop(): stays pending as it was

    if (r.ok()) {
      ++st.delivered;
      if (opt.trace)
        emit(opt.trace, describe(m) + ": delivered to " + path->second + ", HTTP " + std::to_string(r.status) +
                            " after " + std::to_string(m.attempts + 1) + " attempt(s)");
      attempt_outcome o{static_cast<int>(r.status), std::move(r.body)};
      co_return co_await mark(m, message_state::delivered, std::move(o), {});
    }
    if (r.ec || retryable_status(r.status)) {
      const auto delay = retry_delay(m, r);
      std::string why = r.ec ? (r.timed_out ? "timeout: " : "connection: ") + r.ec.message()
                             : "HTTP " + std::to_string(r.status);
      emit(opt.log, describe(m) + ": attempt " + std::to_string(m.attempts + 1) + " failed (" + why +
                        "); retry in " + std::to_string(delay.count()) + " ms");
      ++st.retried;
      attempt_outcome o{static_cast<int>(r.status), r.ec ? why : std::move(r.body)};
      co_await mark(m, message_state::pending, std::move(o), outbox_now() + delay);
      co_return false;  // the key waits for this message's retry
    }
    emit(opt.log, describe(m) + ": refused by the backend with HTTP " + std::to_string(r.status) +
                      "; moved to the dead letters (`interfaced outbox show " + m.id + "`)");
    ++st.dead;
    attempt_outcome o{static_cast<int>(r.status), std::move(r.body)};
    co_return co_await mark(m, message_state::dead, std::move(o), {});
  }

  asio::awaitable<bool> mark(const stored_message& m, message_state s, attempt_outcome o, outbox_time next) {
    attempt_outcome outcome = std::move(o);
    std::string id = m.id;
    auto record = [this, id = std::move(id), s, outcome = std::move(outcome), next](auto done) mutable {
      switch (s) {
        case message_state::delivered: box.mark_delivered(std::move(id), std::move(outcome), std::move(done)); break;
        case message_state::dead: box.mark_dead(std::move(id), std::move(outcome), std::move(done)); break;
        case message_state::pending: box.mark_retry(std::move(id), std::move(outcome), next, std::move(done)); break;
      }
    };
    const bool stored = co_await outbox_call<bool>(std::move(record));
    if (!stored) emit(opt.log, describe(m) + ": could not record the outcome in the outbox; it will be sent again");
    co_return stored;
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
        emit(i->opt.log, std::string("delivery loop ended by an exception (a bug): ") + x.what());
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
