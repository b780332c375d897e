#include "daemon/sim/sigv4.hpp"

#include <ctime>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "devices/file_report.hpp"

namespace interfaced::sim {

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &n);
  return std::string(reinterpret_cast<const char*>(out), n);
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  const std::string k_date = hmac_sha256("AWS4" + std::string(secret), date);
  const std::string k_region = hmac_sha256(k_date, region);
  const std::string k_service = hmac_sha256(k_region, service);
  return hmac_sha256(k_service, "aws4_request");
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

std::string policy_signature(std::string_view secret, std::string_view date, std::string_view region,
                             std::string_view base64_policy) {
  return to_hex(hmac_sha256(signing_key(secret, date, region, "s3"), base64_policy));
}

namespace {
std::string utc(std::chrono::system_clock::time_point t, const char* fmt) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}
}  // namespace

std::vector<std::pair<std::string, std::string>> post_policy_fields(const post_policy_request& r) {
  const std::string date = utc(r.now, "%Y%m%d");
  const std::string amz_date = utc(r.now, "%Y%m%dT%H%M%SZ");
  const std::string credential = r.access_key + "/" + date + "/" + r.region + "/s3/aws4_request";
  nlohmann::ordered_json conditions = nlohmann::ordered_json::array();
  conditions.push_back({{"bucket", r.bucket}});
  conditions.push_back({{"key", r.key}});
  if (!r.content_type.empty()) conditions.push_back({{"Content-Type", r.content_type}});
  conditions.push_back({{"x-amz-algorithm", "AWS4-HMAC-SHA256"}});
  conditions.push_back({{"x-amz-credential", credential}});
  conditions.push_back({{"x-amz-date", amz_date}});
  if (r.max_bytes > 0) conditions.push_back(nlohmann::ordered_json::array({"content-length-range", 0, r.max_bytes}));
  const nlohmann::ordered_json policy = {{"expiration", utc(r.now + r.ttl, "%Y-%m-%dT%H:%M:%S.000Z")},
                                         {"conditions", conditions}};
  const std::string b64 = devices::base64_encode(policy.dump());
  std::vector<std::pair<std::string, std::string>> f{{"key", r.key}};
  if (!r.content_type.empty()) f.emplace_back("Content-Type", r.content_type);
  f.emplace_back("x-amz-algorithm", "AWS4-HMAC-SHA256");
  f.emplace_back("x-amz-credential", credential);
  f.emplace_back("x-amz-date", amz_date);
  f.emplace_back("policy", b64);
  f.emplace_back("x-amz-signature", policy_signature(r.secret, date, r.region, b64));
  return f;
}

}  // namespace interfaced::sim
