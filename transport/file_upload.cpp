#include "transport/file_upload.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include "devices/file_report.hpp"
#include "transport/outbox_call.hpp"
#include "transport/sha256.hpp"

namespace interfaced::transport {

namespace asio = boost::asio;
using devices::file_stage;
using devices::stage_decision;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_range(const std::string& file, std::uint64_t from, std::size_t n) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

// "http://h:p/bucket?x" -> {"http://h:p", "/bucket?x"}
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme = url.find("://");
  const auto slash = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

// The multipart form of stage 2: every field in the order the presign gave them, then the file.
streamed_body form_for(const file_job& job, const devices::file_report_request& req, const std::string& file) {
  const std::string boundary = "interfaced-" + job.sha256.substr(0, 24) + "-" + std::to_string(job.presigns);
  streamed_body b;
  b.content_type = "multipart/form-data; boundary=" + boundary;
  const auto fields = nlohmann::ordered_json::parse(job.fields, nullptr, false);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      b.head += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n";
      b.head += v.is_string() ? v.get<std::string>() : v.dump();
      b.head += "\r\n";
    }
  }
  std::string name = req.filename;
  for (auto& c : name)
    if (c == '"' || c == '\r' || c == '\n') c = '_';
  b.head += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name +
            "\"\r\nContent-Type: " + req.content_type + "\r\n\r\n";
  b.tail = "\r\n--" + boundary + "--\r\n";
  b.file = file;
  b.size = job.size;
  b.sha256 = job.sha256;
  return b;
}

std::string short_answer(const http_result& r) {
  if (r.ec) return (r.timed_out ? "timeout: " : "connection: ") + r.ec.message();
  return "HTTP " + std::to_string(r.status) + (r.body.empty() ? "" : " " + r.body.substr(0, 300));
}

}  // namespace

void remove_spool_file(outbox& box, const event_log& log, const std::string& id, const std::string& file) {
  box.remove_spool_file(file, [log, file, id](bool ok) {
    if (!ok)
      emit(log, "file report " + id + ": done, but its spool file " + file +
                    " could not be deleted; it is deleted at the next start [FILE-014]");
  });
}

namespace {

// The run of one attempt; its members outlive every co_await (owned by the coroutine frame of
// run_file_report through a shared_ptr).
struct stage_runner {
  outbox& box;
  http_client& backend;
  const file_stage_options& opt;
  const stored_message& m;
  const std::string& token;
  devices::file_report_request req;
  file_job job;
  file_attempt result;
  bool done = false;

  std::string who() const {
    return "device " + req.device_id + ": file report " + m.id + " (" + req.file + ", sample " + req.sample_id +
           ", " + req.parameter + ")";
  }

  void finish(file_attempt::end what, int status, std::string answer) {
    result.what = what;
    result.outcome = {status, std::move(answer)};
    done = true;
  }
  void dead(const char* code, int status, std::string why) {
    const std::string line = who() + ": " + why + "; moved to the dead letters (`interfaced outbox show " + m.id +
                             "`) [" + std::string(code) + "]";
    emit(opt.log, line);
    if (opt.device_log) opt.device_log(req.device_id, line);
    finish(file_attempt::end::dead, status, std::move(why));
  }
  // A backend answer that holds all delivery (credentials, endpoint, TLS): the stage stays where
  // it is and delivery holds (its alarm, its log line, its probe), as for any other message.
  bool held(const http_result& r, const std::string& path) {
    const failure_class c = classify(r);
    if (hold_alarm(c).empty()) {
      result.backend_answered = result.backend_answered || !r.ec;
      return false;
    }
    result.held = c;
    result.held_on = path;
    finish(file_attempt::end::hold, static_cast<int>(r.status), short_answer(r));
    return true;
  }
  // The report is finalized (committed): a spool file the daemon made is not needed any more.
  void discard_spool_file() {
    if (req.spool) remove_spool_file(box, opt.log, m.id, req.file);
  }
  void retry(const http_result& r, const char* stage) {
    emit(opt.log, who() + ": " + stage + " failed (" + short_answer(r) + "); retried with backoff [FILE-007]");
    result.retry_after = r.retry_after;
    finish(file_attempt::end::retry, static_cast<int>(r.status), short_answer(r));
  }

  // <message id>.<stage>; a presign (and the upload with its fields) after an expired policy is a
  // new request, not a retry of the first: ".presign-2", ".upload-2", ... or the backend's
  // de-duplication would answer the expired fields again.
  std::string key(const char* stage) const {
    std::string k = m.id + "." + stage;
    const unsigned round = std::string_view(stage) == "presign" ? job.presigns + 1 : job.presigns;
    if ((std::string_view(stage) == "presign" || std::string_view(stage) == "upload") && round > 1)
      k += "-" + std::to_string(round);
    return k;
  }

  std::vector<http_header> headers(const char* stage) const {
    std::vector<http_header> h{{"Idempotency-Key", key(stage)}, {"Content-Type", "application/json"}};
    if (!token.empty()) h.push_back({"Authorization", "Bearer " + token});
    return h;
  }

  asio::awaitable<bool> save() {
    auto put = [this, j = job](auto cb) mutable { box.save_file_job(std::move(j), std::move(cb)); };
    const bool ok = co_await outbox_call<bool>(std::move(put));
    if (!ok) finish(file_attempt::end::retry, 0, "the outbox could not record the stage " + job.stage);
    co_return ok;
  }

  // Before stage 1: there, settled, digested, allowed. Ends the attempt unless it goes on.
  asio::awaitable<void> prepare() {
    struct stat st {};
    const auto created = std::chrono::duration_cast<std::chrono::milliseconds>(m.created_at.time_since_epoch()).count();
    const bool waited_out = now_ms() > created + req.wait_s * 1000;
    if (::stat(req.file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      if (waited_out) {
        dead("FILE-001", 0, "the file " + req.file + " never came (waited " + std::to_string(req.wait_s) + " s)");
      } else {
        result.wait = std::chrono::milliseconds(std::max<std::int64_t>(req.settle_ms, 200));
        finish(file_attempt::end::wait, 0, "waiting for " + req.file);
      }
      co_return;
    }
    const std::int64_t mtime_ms = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    const std::int64_t age = now_ms() - mtime_ms;
    if (age < req.settle_ms) {
      if (waited_out) {
        dead("FILE-001", 0, "the file " + req.file + " was still being written after " + std::to_string(req.wait_s) + " s");
      } else {
        result.wait = std::chrono::milliseconds(req.settle_ms - age + 50);
        finish(file_attempt::end::wait, 0, "waiting for " + req.file + " to settle");
      }
      co_return;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const bool encrypted = req.content_type == "application/pdf" &&
                           devices::pdf_is_encrypted(read_range(req.file, 0, 1024),
                                                     read_range(req.file, size > 65536 ? size - 65536 : 0, 65536));
    const auto refusal = devices::check_before_presign(size, req.max_bytes, req.content_type, req.allowed_types, encrypted);
    if (refusal != devices::file_refusal::none) {
      std::string why = std::string("refused before presign by the rule ") + devices::to_string(refusal) + ": " + req.file;
      if (refusal == devices::file_refusal::too_large)
        why += " has " + std::to_string(size) + " bytes, over " + std::to_string(req.max_bytes);
      if (refusal == devices::file_refusal::type_not_allowed) why += " is " + req.content_type;
      if (refusal == devices::file_refusal::encrypted_pdf) why += " is an encrypted PDF (its trailer names /Encrypt)";
      dead("FILE-002", 0, why);
      co_return;
    }
    const auto d = digest_file(req.file);
    if (!d) {
      dead("FILE-008", 0, "the file " + req.file + " cannot be read");
      co_return;
    }
    job.message_id = m.id;
    job.size = d->size;
    job.sha256 = d->sha256;
    job.stage = devices::to_string(file_stage::prepared);
    if (req.mode == "inline") co_return;  // one POST: only its end is recorded (inline_post)
    co_await save();
  }

  asio::awaitable<void> inline_post() {
    std::ifstream in(req.file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() != job.size || sha256_of(bytes) != job.sha256) {
      dead("FILE-003", 0, "the file " + req.file + " changed while it was read (inline)");
      co_return;
    }
    nlohmann::ordered_json body = {{"lab_report_id", req.lab_report_id}, {"sample_id", req.sample_id},
                                   {"parameter", req.parameter},         {"filename", req.filename},
                                   {"content_type", req.content_type},   {"size", job.size},
                                   {"sha256", job.sha256},               {"content_base64", devices::base64_encode(bytes)}};
    http_result r = co_await backend.request(http_method::post, opt.file_report_path, body.dump(), headers("finalize"));
    if (held(r, opt.file_report_path)) co_return;
    switch (devices::decide(file_stage::reconciled, r.ec ? 0 : r.status, r.body)) {
      case stage_decision::advance:
        // Recorded as finalized (committed with an fsync) before the spool file goes, as after a
        // finalize: the delivered mark is not fsynced, and a power cut that lost it with the file
        // already gone would bring the report back without its file (a false FILE-001). The row
        // makes the next attempt settle it without a request (step(), finalized).
        job.stage = devices::to_string(file_stage::finalized);
        if (!co_await save()) co_return;
        finish(file_attempt::end::delivered, static_cast<int>(r.status), r.body);
        discard_spool_file();
        break;
      case stage_decision::retry: retry(r, "inline file report"); break;
      default: dead("FILE-005", static_cast<int>(r.status), "inline file report refused: " + short_answer(r)); break;
    }
  }

  static std::string sha256_of(const std::string& bytes) {
    sha256 h;
    h.update(bytes);
    return h.hex();
  }

  asio::awaitable<void> presign() {
    nlohmann::ordered_json body = {{"file_category", "FileTypeReport"}, {"filename", req.filename},
                                   {"content_type", req.content_type},   {"size", job.size},
                                   {"sha256", job.sha256}};
    http_result r = co_await backend.request(http_method::post, opt.presign_path, body.dump(), headers("presign"));
    if (held(r, opt.presign_path)) co_return;
    const auto d = devices::decide(file_stage::prepared, r.ec ? 0 : r.status, r.body);
    if (d == stage_decision::retry) {
      retry(r, "presign");
      co_return;
    }
    if (d != stage_decision::advance) {
      dead("FILE-005", static_cast<int>(r.status), "presign refused: " + short_answer(r));
      co_return;
    }
    const auto a = nlohmann::ordered_json::parse(r.body, nullptr, false);
    if (!a.is_object() || !a.contains("url") || !a["url"].is_string() || !a.contains("fields") ||
        !a["fields"].is_object())
      {
      dead("FILE-005", static_cast<int>(r.status), "presign answer without url and fields: " + r.body.substr(0, 300));
      co_return;
    }
    job.url = a["url"].get<std::string>();
    job.fields = a["fields"].dump();
    job.path = a.contains("path") && a["path"].is_string() ? a["path"].get<std::string>()
               : a["fields"].contains("key") && a["fields"]["key"].is_string() ? a["fields"]["key"].get<std::string>()
                                                                               : std::string();
    ++job.presigns;
    job.stage = devices::to_string(file_stage::presigned);
    co_await save();
  }

  static std::unique_ptr<http_client> make_store_client(const asio::any_io_executor& ex, const http_client_options& o) {
    try {
      return std::make_unique<http_client>(ex, o);
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  asio::awaitable<void> upload() {
    // Fields past their policy's expiration are never sent: a new presign instead.
    if (const auto exp = devices::policy_expiry_ms(job.fields); exp && now_ms() >= *exp - 2000) {
      emit(opt.log, who() + ": the upload policy expired before the upload; presigning again [FILE-006]");
      job.stage = devices::to_string(file_stage::prepared);
      co_await save();
      co_return;
    }
    auto [origin, target] = split_url(job.url);
    http_client_options o = opt.store_client;
    o.base_url = origin;
    o.token.clear();  // the backend's token never goes to the store
    auto ex = co_await asio::this_coro::executor;
    std::unique_ptr<http_client> store = make_store_client(ex, o);
    if (!store) {
      dead("FILE-005", 0, "the presigned url cannot be used: " + job.url);
      co_return;
    }
    streamed_body b = form_for(job, req, req.file);
    ++job.uploads;
    std::vector<http_header> h;
    h.push_back(http_header{"Idempotency-Key", key("upload")});
    http_result r = co_await store->upload(target, std::move(b), std::move(h));
    if (r.source_changed)
      {
      dead("FILE-003", 0, "the file " + req.file + " changed during the upload (its size or SHA-256 is no longer the one presigned); upload refused");
      co_return;
    }
    switch (devices::decide(file_stage::presigned, r.ec ? 0 : r.status, r.body)) {
      case stage_decision::advance:
        job.stage = devices::to_string(file_stage::uploaded);
        co_await save();
        co_return;
      case stage_decision::retry: {
      retry(r, "upload");
      co_return;
    }
      case stage_decision::represign:
        emit(opt.log, who() + ": the store refused the upload with an expired policy (" + short_answer(r) +
                          "); presigning again [FILE-006]");
        job.stage = devices::to_string(file_stage::prepared);
        co_await save();
        co_return;
      case stage_decision::dead: {
      dead("FILE-005", static_cast<int>(r.status), "the store refused the upload: " + short_answer(r));
      co_return;
    }
    }
  }

  asio::awaitable<void> reconcile() {
    nlohmann::ordered_json body = {{"path", job.path}, {"size", job.size}, {"sha256", job.sha256}};
    http_result r = co_await backend.request(http_method::post, opt.reconcile_path, body.dump(), headers("reconcile"));
    if (held(r, opt.reconcile_path)) co_return;
    const auto d = devices::decide(file_stage::uploaded, r.ec ? 0 : r.status, r.body);
    if (d == stage_decision::retry) {
      retry(r, "reconcile");
      co_return;
    }
    if (d != stage_decision::advance)
      {
      dead("FILE-004", static_cast<int>(r.status),
                     "reconcile refused for good (" + short_answer(r) + "); orphan object " + job.path +
                         " stays in the store (`interfaced outbox list --orphans`)");
      co_return;
    }
    job.stage = devices::to_string(file_stage::reconciled);
    co_await save();
  }

  asio::awaitable<void> finalize() {
    nlohmann::ordered_json body = {{"lab_report_id", req.lab_report_id}, {"sample_id", req.sample_id},
                                   {"parameter", req.parameter},         {"path", job.path},
                                   {"filename", req.filename},           {"content_type", req.content_type},
                                   {"size", job.size},                   {"sha256", job.sha256}};
    http_result r = co_await backend.request(http_method::post, opt.file_report_path, body.dump(), headers("finalize"));
    if (held(r, opt.file_report_path)) co_return;
    const auto d = devices::decide(file_stage::reconciled, r.ec ? 0 : r.status, r.body);
    if (d == stage_decision::retry) {
      retry(r, "finalize");
      co_return;
    }
    if (d != stage_decision::advance)
      {
      dead("FILE-004", static_cast<int>(r.status),
                     "finalize refused for good (" + short_answer(r) + "); orphan object " + job.path +
                         " stays in the store (`interfaced outbox list --orphans`)");
      co_return;
    }
    // The backend's canonical path replaces the temporary one in our records.
    const auto a = nlohmann::json::parse(r.body, nullptr, false);
    if (a.is_object() && a.contains("path") && a["path"].is_string()) job.path = a["path"].get<std::string>();
    job.stage = devices::to_string(file_stage::finalized);
    if (!co_await save()) co_return;
    finish(file_attempt::end::delivered, static_cast<int>(r.status), r.body);
    discard_spool_file();
  }

  // One stage, chosen by the committed one.
  asio::awaitable<void> step() {
    const auto stage = devices::file_stage_from(job.stage).value_or(file_stage::prepared);
    switch (stage) {
      case file_stage::prepared: co_await presign(); break;
      case file_stage::presigned: co_await upload(); break;
      case file_stage::uploaded: co_await reconcile(); break;
      case file_stage::reconciled: co_await finalize(); break;
      case file_stage::finalized:  // a crash after the commit: the message and the file are still to settle
        finish(file_attempt::end::delivered, 200, "finalized before");
        discard_spool_file();
        break;
    }
  }

  asio::awaitable<void> run() {
    auto load = [this](auto cb) mutable {
      box.load_file_job(m.id, [cb = std::move(cb)](std::optional<file_job> j, bool ok) mutable {
        cb(std::make_pair(std::move(j), ok));
      });
    };
    auto [row, ok] = co_await outbox_call<std::pair<std::optional<file_job>, bool>>(std::move(load));
    if (!ok) {
      finish(file_attempt::end::retry, 0, "the outbox could not read the file job");
      co_return;
    }
    if (row) {
      job = std::move(*row);
    } else {
      co_await prepare();
      if (done) co_return;
      if (req.mode == "inline") {
        co_await inline_post();
        co_return;
      }
    }
    // Stages until one ends the attempt; at most a few turns (a re-presign adds two), bounded so
    // a store that keeps answering "expired" cannot spin.
    int turns = 0;
    while (!done && turns < 12) {
      ++turns;
      co_await step();
    }
    if (!done) finish(file_attempt::end::retry, 0, "the upload policy keeps expiring; retried later");
  }
};

asio::awaitable<file_attempt> run_file_report_coro(outbox& box, http_client& backend, const file_stage_options& options,
                                                   const stored_message& m, const std::string& token) {
  auto req = devices::parse_file_report_body(m.body);
  if (!req) {
    file_attempt a;
    a.what = file_attempt::end::dead;
    a.outcome = {0, "not a file report body"};
    emit(options.log, "file report " + m.id + ": its body is not a file report; moved to the dead letters [FILE-009]");
    co_return a;
  }
  auto r = std::make_shared<stage_runner>(stage_runner{box, backend, options, m, token, std::move(*req), {}, {}, false});
  co_await r->run();
  co_return r->result;
}

}  // namespace

asio::awaitable<file_attempt> run_file_report(outbox& box, http_client& backend, const file_stage_options& options,
                                              const stored_message& m, const std::string& token) {
  return run_file_report_coro(box, backend, options, m, token);
}

}  // namespace interfaced::transport
