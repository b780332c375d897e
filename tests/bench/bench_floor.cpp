// The CPU floor of one 2-result ASTM message on this machine: a "daemon" that does nothing but what
// LIS01-A over TCP and "acknowledged means durable" require, with the same system calls as the real
// path, measured on its own threads only (the analysers and the backend are peer threads whose CPU
// is not counted). Whatever interfaced spends above this figure is its own; no implementation with
// this structure (one loop thread, one durable-write worker, one HTTP POST per message) can go under it.
//
// Per message, on one io_context thread (as the daemon), over a loopback TCP connection per analyser:
//   read ENQ -> send ACK; read frame 1 -> send ACK; read frame 2 -> hand the message to the worker,
//   and only when it says durable send the ACK (persist, then acknowledge); read EOT.
// The worker thread appends each batch of whatever is queued to a file with one write() and one
// fdatasync() (group commit) and posts the completions back to the loop in one handler.
// Then one HTTP/1.1 POST of a 640-byte body per message on one keep-alive loopback connection, and
// the read of the backend's short answer.
// No parsing, no SQL, no JSON, no logs, no metrics: the floor is the system calls, the wake-ups and
// the event loop itself.
//
// Reads: by default the loop waits for readability and then reads what is there (no speculative
// read that returns EAGAIN); --speculative uses plain async_read_some (Asio's speculative read first,
// as the daemon does). Neither is free in Asio 1.81: a speculative read after each read returns
// EAGAIN when the peer has not answered yet, and each async_wait re-arms the descriptor with an
// epoll_ctl(EPOLL_CTL_MOD) (epoll_reactor::start_op); only a hand-written edge-triggered loop that
// trusts a short read to mean "drained" avoids both.
// The daemon-side threads are named floor-loop and floor-worker, so `perf stat --per-thread -e
// 'syscalls:sys_enter_*'` counts their system calls apart from the peers'.
//
// --sqlite: the worker is the smallest SQLite outbox instead of a plain file -- one table (seq, a
// unique text id, the 640-byte body, a state), WAL with 1 KiB pages and synchronous=FULL through
// interfaced's batched-WAL VFS, as the daemon's outbox opens it. Per message one INSERT in the
// group transaction, and one UPDATE marking it delivered once the backend answered; the marks
// wake nobody and ride the next group commit. What SQLite alone adds to the floor: the part of
// the daemon's per-message budget a SQLite outbox takes before any of the daemon's own work.
//
// Usage: bench_floor [--conns 32] [--messages 200] [--dir DIR] [--speculative] [--sqlite]
// Prints CPU µs per message and per result (loop and worker threads, user and system) and the
// implied results per CPU-second.

#include <sys/resource.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sqlite3.h>

#include "transport/sqlite_statement.hpp"
#include "transport/sqlite_wal_vfs.hpp"

namespace asio = boost::asio;
namespace sq = interfaced::transport::sqlite;
using tcp = asio::ip::tcp;

namespace {

constexpr char enq = 0x05, ack = 0x06, eot = 0x04, stx = 0x02, etx = 0x03, etb = 0x17;
constexpr int results_per_message = 2;
constexpr std::size_t body_bytes = 640;

struct options {
  int conns = 32;
  int messages = 200;
  std::string dir = "/tmp";
  bool speculative = false;
  bool sqlite = false;
};

// One E1381 frame: STX FN text ETX|ETB C1 C2 CR LF.
std::string frame(int number, std::string_view text, bool last) {
  std::string f;
  f += stx;
  f += static_cast<char>('0' + number % 8);
  f += text;
  f += last ? etx : etb;
  unsigned sum = 0;
  for (std::size_t i = 1; i < f.size(); ++i) sum += static_cast<unsigned char>(f[i]);
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02X", sum & 0xFFu);
  f += hex;
  f += "\r\n";
  return f;
}

// The message nothing_lost.py sends (2 results), split over two frames as the simulator does.
std::pair<std::string, std::string> message_frames(int conn, int i) {
  char sid[32];
  std::snprintf(sid, sizeof sid, "S%02d-%06d", conn, i);
  std::string a = "H|\\^&|||BENCH^1.0^SNtp00|||||LIS||P|LIS2-A2|20261123080000\rP|1||PAT-" + std::string(sid) +
                  "\rO|1|" + sid + "||^^^GLU\\^^^NA|R|20261123075500|||||N||||SERUM||||||||||F\r";
  std::string b = "R|1|^^^GLU|5.4|mmol/L|||N||F||tech1|20261123075600|20261123080100|BENCH\r"
                  "R|2|^^^NA|140.1|mmol/L|||N||F||tech1|20261123075600|20261123080100|BENCH\rL|1|N\r";
  return {frame(1, a, false), frame(2, b, true)};
}

long gettid_now() { return static_cast<long>(::syscall(SYS_gettid)); }

double thread_cpu(pthread_t t) {
  clockid_t cid;
  if (pthread_getcpuclockid(t, &cid) != 0) return 0;
  timespec ts{};
  clock_gettime(cid, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// utime, stime (seconds, clock-tick resolution) of one thread of this process.
std::pair<double, double> task_times(long tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream rest(s.substr(s.rfind(')') + 2));
  std::string field;
  double ut = 0, st = 0;
  for (int k = 3; rest >> field; ++k) {
    if (k == 14) ut = std::stod(field);
    if (k == 15) {
      st = std::stod(field);
      break;
    }
  }
  const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {ut / tck, st / tck};
}

// ---- the daemon side ----------------------------------------------------------------------------

struct session;

// A parked coroutine's completion handler (Asio 1.81's any_completion_handler wraps itself on
// assignment, so a small holder of our own).
class parked {
 public:
  template <class Handler>
  void park(Handler h) {
    p_ = std::make_unique<holder<Handler>>(std::move(h));
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  void resume() {
    auto p = std::move(p_);
    (*p)();
  }

 private:
  struct base {
    virtual ~base() = default;
    virtual void operator()() = 0;
  };
  template <class Handler>
  struct holder final : base {
    explicit holder(Handler hh) : h(std::move(hh)) {}
    void operator()() override { std::move(h)(); }
    Handler h;
  };
  std::unique_ptr<base> p_;
};

// The durable-write worker: one write() + one fdatasync() per batch of whatever is queued, the
// completions posted back to the loop in one handler.
class worker {
 public:
  worker(asio::io_context& loop, const std::string& path, bool use_sqlite) : loop_(loop) {
    if (!use_sqlite) {
      fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
      if (fd_ < 0) std::perror("open"), std::exit(1);
      return;
    }
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        sq::batched_wal_vfs()) != SQLITE_OK)
      std::fprintf(stderr, "sqlite open %s failed\n", path.c_str()), std::exit(1);
    // The statements throw std::runtime_error on an error: the benchmark stops with its message.
    sq::exec(db_,
             "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=32000;"
             " PRAGMA synchronous=FULL;"
             " CREATE TABLE m (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body BLOB NOT NULL,"
             " state INTEGER NOT NULL DEFAULT 0)",
             "bench_floor");
    insert_ = std::make_unique<sq::statement>(db_, "INSERT INTO m (id, body) VALUES (?1, ?2)", "bench_floor");
    mark_ = std::make_unique<sq::statement>(db_, "UPDATE m SET state = 1 WHERE id = ?1", "bench_floor");
  }
  ~worker() {
    if (db_ != nullptr) {
      insert_.reset();  // statements before the connection
      mark_.reset();
      sqlite3_close(db_);
    } else {
      ::close(fd_);
    }
  }

  void put(std::string id, std::string bytes, session* s) {
    {
      std::lock_guard lk(m_);
      queue_.push_back({std::move(id), std::move(bytes), s});
    }
    cv_.notify_one();  // glibc: no system call when nobody waits
  }
  // --sqlite: mark message `id` delivered, in the next group commit.
  void mark(std::string id) {
    std::lock_guard lk(m_);
    queue_.push_back({std::move(id), {}, nullptr});  // wakes nobody
  }
  bool uses_sqlite() const noexcept { return db_ != nullptr; }

  void stop() {
    {
      std::lock_guard lk(m_);
      stop_ = true;
    }
    cv_.notify_one();
  }

  void run();
  long tid = 0;
  std::uint64_t batches = 0;

 private:
  struct job {
    std::string id;
    std::string bytes;
    session* s;  // null: a delivered mark
  };
  void commit_sqlite(const std::vector<job>& batch);
  asio::io_context& loop_;
  int fd_ = -1;
  sqlite3* db_ = nullptr;
  std::unique_ptr<sq::statement> insert_;
  std::unique_ptr<sq::statement> mark_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<job> queue_;
  bool stop_ = false;
};

// The HTTP side: one keep-alive connection, one POST in flight at a time.
class http_out {
 public:
  http_out(asio::io_context& loop, tcp::endpoint backend, bool speculative, worker& w)
      : sock_(loop), speculative_(speculative), worker_(w) {
    sock_.connect(backend);
    sock_.non_blocking(true);
  }
  void put(std::string id, std::string body) {
    pending_.emplace_back(std::move(id), std::move(body));
    if (wake_) wake_.resume();
  }
  asio::awaitable<void> run(std::uint64_t total, std::atomic<bool>& done);

 private:
  auto wait_pending() {
    return asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [this](auto h) { wake_.park(std::move(h)); }, asio::use_awaitable);
  }
  tcp::socket sock_;
  std::deque<std::pair<std::string, std::string>> pending_;  // id, body
  parked wake_;
  bool speculative_;
  worker& worker_;
};

struct session {
  tcp::socket sock;
  parked durable;
  explicit session(tcp::socket s) : sock(std::move(s)) {}
};

void worker::run() {
  tid = gettid_now();
  pthread_setname_np(pthread_self(), "floor-worker");
  std::vector<job> batch;
  std::string all;
  for (;;) {
    {
      std::unique_lock lk(m_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      batch.swap(queue_);
    }
    if (db_ != nullptr) {
      commit_sqlite(batch);
    } else {
      all.clear();
      for (const auto& j : batch) all += j.bytes;
      if (::write(fd_, all.data(), all.size()) != static_cast<ssize_t>(all.size())) std::perror("write"), std::exit(1);
      if (::fdatasync(fd_) != 0) std::perror("fdatasync"), std::exit(1);
    }
    ++batches;
    std::vector<session*> done;
    done.reserve(batch.size());
    for (const auto& j : batch)
      if (j.s != nullptr) done.push_back(j.s);
    batch.clear();
    if (done.empty()) continue;
    asio::post(loop_, [done = std::move(done)] {
      for (session* s : done) s->durable.resume();
    });
  }
}

// One transaction: each message inserted, each mark applied; COMMIT syncs the WAL (synchronous=FULL).
void worker::commit_sqlite(const std::vector<job>& batch) {
  sq::exec(db_, "BEGIN", "bench_floor");
  for (const auto& j : batch) {
    if (j.s == nullptr) mark_->reset().bind(1, j.id).run();
    else insert_->reset().bind(1, j.id).bind_blob(2, j.bytes).run();
  }
  sq::exec(db_, "COMMIT", "bench_floor");
}

// Reads what is there. Wait-then-read: after a read that drained the socket (returned less than
// the buffer), wait for readability first and read then, so no read returns EAGAIN. Safe with
// Asio's edge-triggered epoll because the read is done here, in the handler, and the next wait is
// registered before the loop polls again: data that arrives after the read raises a new edge.
// Speculative: Asio's async_read_some (a read first, EAGAIN when the peer has not answered yet).
struct reader {
  tcp::socket& s;
  bool speculative;
  bool maybe_more = true;  // the last read filled the buffer, or nothing was read yet

  asio::awaitable<std::size_t> read_some(char* buf, std::size_t cap, boost::system::error_code& ec) {
    if (speculative) {
      auto [e, n] = co_await s.async_read_some(asio::buffer(buf, cap), asio::as_tuple(asio::use_awaitable));
      ec = e;
      co_return n;
    }
    for (;;) {
      if (!maybe_more) {
        auto [e] = co_await s.async_wait(tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
        if (e) {
          ec = e;
          co_return 0;
        }
      }
      const std::size_t n = s.read_some(asio::buffer(buf, cap), ec);
      if (ec == asio::error::would_block) {
        maybe_more = false;
        continue;
      }
      maybe_more = n == cap;
      co_return n;
    }
  }
};

asio::awaitable<void> http_out::run(std::uint64_t total, std::atomic<bool>& done) {
  std::string req;
  char buf[4096];
  reader in{sock_, speculative_};
  for (std::uint64_t sent = 0; sent < total; ++sent) {
    if (pending_.empty()) co_await wait_pending();
    auto [id, body] = std::move(pending_.front());
    pending_.pop_front();
    req.assign("POST /results HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Idempotency-Key: ");
    req.append(id);
    req.append("\r\nContent-Length: ");
    req.append(std::to_string(body.size()));
    req.append("\r\n\r\n");
    req.append(body);
    boost::system::error_code ec;
    asio::write(sock_, asio::buffer(req), ec);  // fits the socket buffer: one send
    if (ec) std::fprintf(stderr, "http write: %s\n", ec.message().c_str()), std::exit(1);
    // The answer: headers with Content-Length and a short body.
    std::string got;
    for (;;) {
      const std::size_t n = co_await in.read_some(buf, sizeof buf, ec);
      if (ec) std::fprintf(stderr, "http read: %s\n", ec.message().c_str()), std::exit(1);
      got.append(buf, n);
      const auto end = got.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      const auto cl = got.find("Content-Length: ");
      const std::size_t len = cl == std::string::npos ? 0 : std::strtoul(got.c_str() + cl + 16, nullptr, 10);
      if (got.size() >= end + 4 + len) break;
    }
    if (worker_.uses_sqlite()) worker_.mark(std::move(id));
  }
  done = true;
  co_return;
}

asio::awaitable<void> serve(std::shared_ptr<session> s, worker& w, http_out& http, bool speculative) {
  char buf[4096];
  std::string held;  // an incomplete frame
  std::string message;
  const char ack_byte = ack;
  reader in{s->sock, speculative};
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = co_await in.read_some(buf, sizeof buf, ec);
    if (ec) co_return;  // the analyser closed
    held.append(buf, n);
    std::size_t at = 0;
    while (at < held.size()) {
      const char c = held[at];
      if (c == enq) {
        ++at;
        s->sock.write_some(asio::buffer(&ack_byte, 1), ec);
      } else if (c == eot) {
        ++at;
      } else if (c == stx) {
        const auto lf = held.find('\n', at);
        if (lf == std::string::npos) break;
        const std::string_view f(held.data() + at, lf + 1 - at);
        at = lf + 1;
        const bool last = f.find(etx) != std::string_view::npos;
        message.append(f.substr(2, f.size() - 7));
        if (last) {
          // Persist, then acknowledge. The id: unique, 36 characters, as the daemon's UUIDs.
          static std::uint64_t made = 0;
          char id[40];
          std::snprintf(id, sizeof id, "00000000-0000-7000-8000-%012llx", static_cast<unsigned long long>(++made));
          // The body the backend gets (and a SQLite outbox stores): 640 bytes, as the daemon's.
          std::string body = message;
          body.resize(body_bytes, ' ');
          co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
              [&](auto h) {
                s->durable.park(std::move(h));
                w.put(id, w.uses_sqlite() ? body : message, s.get());
              },
              asio::use_awaitable);
          s->sock.write_some(asio::buffer(&ack_byte, 1), ec);
          http.put(id, std::move(body));
          message.clear();
        } else {
          s->sock.write_some(asio::buffer(&ack_byte, 1), ec);
        }
      } else {
        ++at;  // not part of the protocol: skipped
      }
    }
    held.erase(0, at);
  }
}

// A coroutine function, not a capturing lambda: the frame must not refer to a destroyed closure.
asio::awaitable<void> accept_all(tcp::acceptor& acc, int conns, worker& w, http_out& http, bool speculative) {
  for (int i = 0; i < conns; ++i) {
    tcp::socket s = co_await acc.async_accept(asio::use_awaitable);
    s.non_blocking(true);
    asio::co_spawn(acc.get_executor(), serve(std::make_shared<session>(std::move(s)), w, http, speculative),
                   asio::detached);
  }
}

// ---- the peers (not measured) ---------------------------------------------------------------------

void analyser(tcp::endpoint daemon, int conn, int messages, std::latch& go) {
  asio::io_context ctx;
  tcp::socket s(ctx);
  s.connect(daemon);
  s.set_option(tcp::no_delay(true));
  go.arrive_and_wait();
  char c;
  auto expect_ack = [&] {
    asio::read(s, asio::buffer(&c, 1));
    if (c != ack) std::fprintf(stderr, "analyser %d: not ACK\n", conn), std::exit(1);
  };
  for (int i = 0; i < messages; ++i) {
    auto [f1, f2] = message_frames(conn, i);
    asio::write(s, asio::buffer(&enq, 1));
    expect_ack();
    asio::write(s, asio::buffer(f1));
    expect_ack();
    asio::write(s, asio::buffer(f2));
    expect_ack();
    asio::write(s, asio::buffer(&eot, 1));
  }
}

void backend(tcp::acceptor& acc, std::uint64_t total) {
  tcp::socket s = acc.accept();
  s.set_option(tcp::no_delay(true));
  std::string got;
  char buf[16384];
  const std::string_view answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n"
                                  "{\"accepted\":2,\"dup\":0}";
  for (std::uint64_t answered = 0; answered < total;) {
    const std::size_t n = s.read_some(asio::buffer(buf));
    got.append(buf, n);
    for (;;) {
      const auto end = got.find("\r\n\r\n");
      if (end == std::string::npos) break;
      const auto cl = got.find("Content-Length: ");
      const std::size_t len = std::strtoul(got.c_str() + cl + 16, nullptr, 10);
      if (got.size() < end + 4 + len) break;
      got.erase(0, end + 4 + len);
      asio::write(s, asio::buffer(answer));
      ++answered;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--conns" && i + 1 < argc) o.conns = std::atoi(argv[++i]);
    else if (a == "--messages" && i + 1 < argc) o.messages = std::atoi(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) o.dir = argv[++i];
    else if (a == "--speculative") o.speculative = true;
    else if (a == "--sqlite") o.sqlite = true;
    else {
      std::fprintf(stderr, "usage: bench_floor [--conns N] [--messages N] [--dir DIR] [--speculative] [--sqlite]\n");
      return 2;
    }
  }
  const std::uint64_t total = static_cast<std::uint64_t>(o.conns) * static_cast<std::uint64_t>(o.messages);
  const std::string path = o.dir + "/bench_floor." + std::to_string(::getpid()) + ".dat";

  // The backend (a peer).
  asio::io_context peer_ctx;
  tcp::acceptor backend_acc(peer_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::thread backend_thread([&] { backend(backend_acc, total); });

  // The daemon: one loop, one worker.
  asio::io_context loop(1);
  auto guard = asio::make_work_guard(loop);
  worker w(loop, path, o.sqlite);
  http_out http(loop, backend_acc.local_endpoint(), o.speculative, w);
  tcp::acceptor acc(loop, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::atomic<bool> delivered{false};
  std::atomic<long> loop_tid{0};
  asio::co_spawn(loop, http.run(total, delivered), asio::detached);
  asio::co_spawn(loop, accept_all(acc, o.conns, w, http, o.speculative), asio::detached);
  std::thread loop_thread([&] {
    loop_tid = gettid_now();
    pthread_setname_np(pthread_self(), "floor-loop");
    loop.run();
  });
  std::thread worker_thread([&] { w.run(); });

  // The analysers (peers): all connect, then start together.
  std::latch go(o.conns + 1);
  std::vector<std::thread> analysers;
  for (int i = 0; i < o.conns; ++i)
    analysers.emplace_back(analyser, acc.local_endpoint(), i, o.messages, std::ref(go));
  while (loop_tid == 0 || w.tid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The accepts done, and time for `perf stat -p` to attach before the measured part.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const double l0 = thread_cpu(loop_thread.native_handle()), w0 = thread_cpu(worker_thread.native_handle());
  const auto [lu0, ls0] = task_times(loop_tid);
  const auto [wu0, ws0] = task_times(w.tid);
  const auto t0 = std::chrono::steady_clock::now();
  go.arrive_and_wait();
  for (auto& t : analysers) t.join();
  while (!delivered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double l1 = thread_cpu(loop_thread.native_handle()), w1 = thread_cpu(worker_thread.native_handle());
  const auto [lu1, ls1] = task_times(loop_tid);
  const auto [wu1, ws1] = task_times(w.tid);

  w.stop();
  worker_thread.join();
  guard.reset();
  loop.stop();
  loop_thread.join();
  backend_thread.join();
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");

  const double loop_cpu = l1 - l0, worker_cpu = w1 - w0, cpu = loop_cpu + worker_cpu;
  const double per_msg = cpu / static_cast<double>(total) * 1e6;
  std::printf("bench_floor: %d connections x %d messages x %d results, %s reads, %s %s\n", o.conns, o.messages,
              results_per_message, o.speculative ? "speculative (async_read_some)" : "wait-then-read",
              o.sqlite ? "SQLite outbox (insert + delivered mark) in" : "file", o.dir.c_str());
  std::printf("  wall %.2f s, %llu group commits (%.1f messages per fdatasync)\n", wall,
              static_cast<unsigned long long>(w.batches), static_cast<double>(total) / static_cast<double>(w.batches));
  std::printf("  loop thread   %.3f s CPU (user %.2f sys %.2f) = %.1f us per message\n", loop_cpu, lu1 - lu0, ls1 - ls0,
              loop_cpu / static_cast<double>(total) * 1e6);
  std::printf("  worker thread %.3f s CPU (user %.2f sys %.2f) = %.1f us per message\n", worker_cpu, wu1 - wu0,
              ws1 - ws0, worker_cpu / static_cast<double>(total) * 1e6);
  std::printf("  daemon side %.1f us CPU per message, %.1f us per result = %.0f results per daemon CPU-second\n",
              per_msg, per_msg / results_per_message, 1e6 / (per_msg / results_per_message));
  return 0;
}
