// daemon/sim/sigv4: AWS Signature V4 for presigned POST policies. Expected values: the signing key
// of AWS's published example ("Examples of how to derive a signing key for Signature Version 4":
// secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam), and a policy
// signature computed independently with Python's hmac module.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "daemon/sim/sigv4.hpp"
#include "devices/file_report.hpp"

using namespace interfaced::sim;

TEST_CASE("sigv4: signing key of AWS's published example") {
  CHECK(to_hex(signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")) ==
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("sigv4: policy signature equals an independent HMAC chain") {
  CHECK(policy_signature("secret", "20261206", "us-east-1", "eyJhIjoxfQ==") ==
        "e254900d1d28eec68be447c5325192bd3a8bf8b8993a2d64ea6a5c630eb01489");
}

TEST_CASE("sigv4: POST policy fields, in order, with the conditions S3 checks") {
  post_policy_request r;
  r.bucket = "reports";
  r.key = "reports/m1/a.png";
  r.access_key = "AKID";
  r.secret = "secret";
  r.now = std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + std::chrono::hours{15};
  r.ttl = std::chrono::seconds(600);
  const auto f = post_policy_fields(r);
  REQUIRE(f.size() == 6);
  CHECK(f[0] == std::pair<std::string, std::string>{"key", "reports/m1/a.png"});
  CHECK(f[1].second == "AWS4-HMAC-SHA256");
  CHECK(f[2].second == "AKID/20261206/us-east-1/s3/aws4_request");
  CHECK(f[3].second == "20261206T150000Z");
  CHECK(f[4].first == "policy");
  CHECK(f[5].first == "x-amz-signature");
  CHECK(f[5].second == policy_signature("secret", "20261206", "us-east-1", f[4].second));
  const auto doc = nlohmann::json::parse(*interfaced::devices::base64_decode(f[4].second));
  CHECK(doc["expiration"] == "2026-12-06T15:10:00.000Z");
  CHECK(doc["conditions"][0]["bucket"] == "reports");
  CHECK(doc["conditions"][1]["key"] == "reports/m1/a.png");
}
