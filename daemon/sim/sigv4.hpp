#pragma once
// AWS Signature Version 4 for browser-based POST uploads (S3 "Authenticating Requests in
// Browser-Based Uploads Using POST"): the policy document, its base64 form and signature, and the
// form fields a client posts before the file. Pure but for OpenSSL's HMAC-SHA256; `now` is given.
// Used by backend-sim for `--s3` (a real S3-compatible store checks the signature) and `--store`
// (the simulator checks its own policies the same way).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace interfaced::sim {

struct post_policy_request {
  std::string bucket;
  std::string key;         // the object's key (an exact-match condition)
  std::string access_key;  // the credential's id
  std::string secret;
  std::string region = "us-east-1";
  std::chrono::system_clock::time_point now;
  std::chrono::seconds ttl{900};   // expiration = now + ttl
  std::uint64_t max_bytes = 0;     // >0: content-length-range 0..max_bytes
  std::string content_type;        // not empty: a Content-Type field with an exact condition
};

// The fields in the order they must be posted (key first, policy and signature last).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> post_policy_fields(const post_policy_request& r);

// HMAC-SHA256 (raw bytes) and the SigV4 signing key for (secret, yyyymmdd, region, service).
[[nodiscard]] std::string hmac_sha256(std::string_view key, std::string_view data);
[[nodiscard]] std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                                      std::string_view service);
[[nodiscard]] std::string to_hex(std::string_view bytes);
// hex(HMAC(signing_key, base64_policy)): what x-amz-signature must be.
[[nodiscard]] std::string policy_signature(std::string_view secret, std::string_view date, std::string_view region,
                                           std::string_view base64_policy);

}  // namespace interfaced::sim
