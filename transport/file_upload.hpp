#pragma once
// File-type reports, the I/O part (../shared/spec/file-reports.md "The stages"): one `file_report`
// outbox message is taken through presign -> upload -> reconcile -> finalize, each stage committed
// to the outbox (file_jobs) before the next starts, so a crash resumes at the stage that was not
// committed and an upload that committed is never sent again. The decisions (what an answer
// means, the checks before presign, the policy's expiry) are devices/file_report.hpp's.
//
//  - Before presign: the file must exist and be settled (mtime older than settle_ms), else the
//    message waits (up to wait_s after it was stored, then a dead letter naming the file,
//    FILE-001); its size and SHA-256 are taken; encrypted PDFs, files over max_bytes and types
//    outside allowed_types are refused with a dead letter (FILE-002) and no request at all.
//  - Every request: Idempotency-Key: <message id>.<presign|upload|reconcile|finalize>.
//  - Upload: multipart/form-data, the presign's fields in their order, then the file (`file`) as
//    the last part, streamed from disk; a file that changed since its digest was taken is refused
//    (FILE-003) before the request completes. 5xx / no answer: the same fields again while the
//    policy is valid; a 403 naming an expired policy, or a policy past its expiration: a new
//    presign (FILE-006).
//  - A permanent refusal after the upload committed is an orphan object: a dead letter whose
//    file_jobs row keeps the stored path (`interfaced outbox list --orphans`, FILE-004).
//  - Inline mode (files.mode "inline"): one POST to the file-report path with content_base64;
//    its answer is committed as the stage finalized, like a finalize's.
//  - The backend's stages (presign, reconcile, finalize, inline) answer like any delivery: 401,
//    403, 407 hold delivery for credentials, 404/405/3xx... for the endpoint, a failed TLS
//    verification for TLS (classify(), delivery.hpp): end::hold, never a dead letter; the stage
//    is tried again when the hold ends. The store's 403 on the upload is not the backend's: an
//    expired policy, presigned again.
//  - A spool file (the daemon's own, request.spool) is deleted once its report is finalized,
//    after that commit (outbox::remove_spool_file); a dead or set-aside report keeps it, since
//    `outbox retry` sends it again. An analyser's file is never deleted.
// Log lines end with their code (FILE-00x); the device id is named in each.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "transport/delivery.hpp"  // failure_class
#include "transport/event_log.hpp"
#include "transport/http_client.hpp"
#include "transport/outbox.hpp"

namespace interfaced::transport {

struct file_stage_options {
  std::string presign_path = "/storage/presign";
  std::string reconcile_path = "/storage/reconcile";
  std::string file_report_path = "/interfacing/file-report";
  http_client_options store_client;  // timeouts and TLS settings for the store (no token is sent there)
  event_log log;
  // The device's own log (device id, line): refusals and dead letters are said there too.
  std::function<void(std::string_view, std::string_view)> device_log;
};

struct file_attempt {
  enum class end { delivered, retry, wait, dead, hold };
  end what = end::retry;
  failure_class held = failure_class::retry;  // end::hold: which hold (credentials, endpoint, TLS)
  std::string held_on;                        // end::hold: the path that answered so
  bool backend_answered = false;  // a backend stage got an answer that is not a hold (ends one)
  attempt_outcome outcome;                         // recorded on the message (status, answer or reason)
  std::chrono::milliseconds wait{0};               // end::wait: look again after this long
  std::optional<std::chrono::seconds> retry_after;  // end::retry: the answer's Retry-After
};

// One delivery attempt of a `file_report` message: runs stages until one must wait or failed.
// `token` is the backend's bearer token (never sent to the store).
boost::asio::awaitable<file_attempt> run_file_report(outbox& box, http_client& backend,
                                                     const file_stage_options& options, const stored_message& m,
                                                     const std::string& token);

// Deletes a spool file (outbox::remove_spool_file) after the commit that made it unneeded; a
// failure is logged with FILE-014 (the next start's sweep deletes it).
void remove_spool_file(outbox& box, const event_log& log, const std::string& id, const std::string& file);

}  // namespace interfaced::transport
