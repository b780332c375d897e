// devices/file_report: the pure decisions of file-type reports (file-reports.md), expectations
// from the spec and the Sysmex XN capture's values, not from the code's output.

#include <catch2/catch.hpp>

#include "devices/file_report.hpp"
#include "devices/profile.hpp"

using namespace interfaced::devices;

TEST_CASE("file_reference_path: Sysmex XN PNG value maps under files.root") {
  file_reference_rule r{{"PNG\\"}, '\\'};
  // R.38 of sysmex-xn550-cbc-result.astm once &R& is decoded.
  CHECK(file_reference_path(r, "PNG\\20240628\\2024_06_27_13_54_27_WDF.PNG") ==
        std::optional<std::string>("PNG/20240628/2024_06_27_13_54_27_WDF.PNG"));
  CHECK_FALSE(file_reference_path(r, "8.13"));
  CHECK_FALSE(file_reference_path(r, "BMP\\x.bmp"));
}

TEST_CASE("file_reference_path: a value that would leave the root is not followed") {
  file_reference_rule r{{"PNG\\"}, '\\'};
  CHECK_FALSE(file_reference_path(r, "PNG\\..\\..\\etc\\passwd"));
  CHECK_FALSE(file_reference_path(r, "PNG\\a/b.png"));
  CHECK_FALSE(file_reference_path(r, "PNG\\\\x.png"));
  CHECK_FALSE(file_reference_path(r, "PNG\\"));
  CHECK_FALSE(file_reference_path(r, "PNG\\.\\x.png"));
}

TEST_CASE("content_type_for: by extension, case-insensitive") {
  CHECK(content_type_for("A_WDF.PNG") == "image/png");
  CHECK(content_type_for("run.pdf") == "application/pdf");
  CHECK(content_type_for("h.svg") == "image/svg+xml");
  CHECK(content_type_for("noext") == "application/octet-stream");
}

TEST_CASE("pdf_is_encrypted: a trailer naming /Encrypt") {
  const std::string head = "%PDF-1.7\n";
  CHECK(pdf_is_encrypted(head, "trailer\n<< /Size 9 /Root 1 0 R /Encrypt 8 0 R /ID [<a><b>] >>\nstartxref\n99\n%%EOF\n"));
  CHECK(pdf_is_encrypted(head, "<</Type/XRef/Encrypt 5 0 R/Size 9>>stream"));
  CHECK_FALSE(pdf_is_encrypted(head, "trailer\n<< /Size 9 /Root 1 0 R >>\nstartxref\n99\n%%EOF\n"));
  // Not a PDF at all: never "encrypted".
  CHECK_FALSE(pdf_is_encrypted("\x89PNG", "/Encrypt 8 0 R"));
}

TEST_CASE("check_before_presign: encrypted, then size, then type") {
  const std::vector<std::string> images{"image/*", "application/pdf"};
  CHECK(check_before_presign(10, 100, "application/pdf", images, true) == file_refusal::encrypted_pdf);
  CHECK(check_before_presign(101, 100, "image/png", images, false) == file_refusal::too_large);
  CHECK(check_before_presign(100, 100, "image/png", images, false) == file_refusal::none);
  CHECK(check_before_presign(10, 100, "text/csv", images, false) == file_refusal::type_not_allowed);
  CHECK(check_before_presign(10, 100, "text/csv", {}, false) == file_refusal::none);
  CHECK(std::string(to_string(file_refusal::too_large)) == "files.max_bytes");
}

TEST_CASE("decide: the stage table of file-reports.md") {
  CHECK(decide(file_stage::prepared, 200, "") == stage_decision::advance);
  CHECK(decide(file_stage::prepared, 503, "") == stage_decision::retry);
  CHECK(decide(file_stage::prepared, 0, "") == stage_decision::retry);
  CHECK(decide(file_stage::prepared, 400, "") == stage_decision::dead);
  CHECK(decide(file_stage::presigned, 204, "") == stage_decision::advance);
  CHECK(decide(file_stage::presigned, 403,
               "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy: Policy expired.</Message></Error>") ==
        stage_decision::represign);
  CHECK(decide(file_stage::presigned, 403, "<Error><Code>SignatureDoesNotMatch</Code></Error>") == stage_decision::dead);
  CHECK(decide(file_stage::presigned, 500, "") == stage_decision::retry);
  CHECK(decide(file_stage::reconciled, 502, "") == stage_decision::retry);
  CHECK(decide(file_stage::reconciled, 422, "") == stage_decision::dead);
  // Only an upload goes back to presign: a 403 "expired" on finalize is not a policy.
  CHECK(decide(file_stage::reconciled, 403, "token expired") == stage_decision::dead);
}

TEST_CASE("policy_expiry_ms: the S3 POST policy's expiration") {
  // {"expiration":"2030-01-01T00:00:00.000Z","conditions":[]}
  const std::string policy = base64_encode(R"({"expiration":"2030-01-01T00:00:00.000Z","conditions":[]})");
  const auto at = policy_expiry_ms(R"({"key":"k","policy":")" + policy + R"("})");
  REQUIRE(at);
  CHECK(*at == 1893456000000LL);  // 2030-01-01T00:00:00Z
  CHECK_FALSE(policy_expiry_ms(R"({"key":"k"})"));
  CHECK_FALSE(policy_expiry_ms("not json"));
}

TEST_CASE("base64: RFC 4648 test vectors") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_decode("Zm9vYmFy") == std::optional<std::string>("foobar"));
  CHECK(base64_decode("Zm9v\nYg==") == std::optional<std::string>("foob"));
  CHECK_FALSE(base64_decode("Zm9v*"));
}

TEST_CASE("file_report_body: round trip") {
  file_report_request r;
  r.device_id = "xn";
  r.sample_id = "27";
  r.parameter = "SCAT_WDF";
  r.file = "/srv/xn/PNG/20240628/a.png";
  r.filename = "a.png";
  r.content_type = "image/png";
  r.allowed_types = {"image/*"};
  r.wait_s = 30;
  const auto back = parse_file_report_body(file_report_body(r));
  REQUIRE(back);
  CHECK(back->file == r.file);
  CHECK(back->parameter == "SCAT_WDF");
  CHECK(back->allowed_types == r.allowed_types);
  CHECK(back->wait_s == 30);
  CHECK_FALSE(parse_file_report_body(R"({"sample_id":"1"})"));
}

TEST_CASE("profile: file_references is read and checked") {
  const auto p = parse_profile(R"({"id":"x","vendor":"v","models":["m"],
      "file_references":{"prefixes":["PNG\\"],"separator":"\\","why":"R.38 of the XN capture"}})", "x.json");
  CHECK(p.file_references.prefixes == std::vector<std::string>{"PNG\\"});
  CHECK(p.file_references.separator == '\\');
  CHECK_THROWS_WITH(parse_profile(R"({"id":"x","vendor":"v","models":["m"],
      "file_references":{"prefixes":["PNG\\"],"why":"R.38 of the XN capture","sep":"/"}})", "x.json"),
                    Catch::Contains("/file_references/sep"));
  CHECK_THROWS_WITH(parse_profile(R"({"id":"x","vendor":"v","models":["m"],
      "file_references":{"prefixes":["PNG\\"]}})", "x.json"),
                    Catch::Contains("/file_references"));
}
