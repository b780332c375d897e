// devices/encapsulated_data: HL7 OBX-2 ED (OBX-5 source^type^subtype^encoding^data, HL7 v2.5
// 2.A.24) becomes the file it is. Messages written here from the standard; the PDF bytes are a
// hand-written minimal document.

#include <catch2/catch.hpp>

#include "devices/encapsulated_data.hpp"
#include "devices/file_report.hpp"

using namespace interfaced;
using namespace interfaced::devices;

namespace {

const std::string pdf = "%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

std::string message(const std::string& obx5, const std::string& type = "ED") {
  return "MSH|^~\\&|LAB|X|LIS|Y|20260101120000||ORU^R01|MSG1|P|2.5\r"
         "PID|1||P-1\r"
         "OBR|1||S-77|CBC\r"
         "OBX|1|NM|GLU^Glucose||5.4|mmol/L|||||F\r"
         "OBX|2|" + type + "|RPT^Report||" + obx5 + "||||||F\r";
}

}  // namespace

TEST_CASE("encapsulated_files: a base64 PDF becomes the file and a result naming it") {
  const auto files = encapsulated_files(message("LAB^AP^PDF^Base64^" + base64_encode(pdf)), {}, "dev");
  REQUIRE(files.size() == 1);
  const auto& f = files[0];
  CHECK(f.error.empty());
  CHECK(f.bytes == pdf);
  CHECK(f.content_type == "application/pdf");
  CHECK(f.filename == "S-77_RPT.pdf");
  CHECK(f.r.sample_id == "S-77");
  CHECK(f.r.code == "RPT");
  CHECK(f.r.value == "S-77_RPT.pdf");  // the reference, not the base64
  CHECK(f.r.where.record_index == 5);
}

TEST_CASE("encapsulated_files: PNG and JPEG by subtype, checked by magic bytes") {
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "IHDR....";
  const std::string jpg = "\xFF\xD8\xFF\xE0" "JFIF";
  CHECK(encapsulated_files(message("^IM^PNG^Base64^" + base64_encode(png)), {}, "d")[0].content_type == "image/png");
  CHECK(encapsulated_files(message("^IM^JPEG^Base64^" + base64_encode(jpg)), {}, "d")[0].filename == "S-77_RPT.jpg");
  // The subtype says PDF, the bytes are a PNG: refused, not guessed.
  const auto lie = encapsulated_files(message("^AP^PDF^Base64^" + base64_encode(png)), {}, "d");
  REQUIRE(lie.size() == 1);
  CHECK_FALSE(lie[0].error.empty());
  CHECK(lie[0].bytes.empty());
  CHECK(lie[0].r.value.empty());
  // An unknown subtype: by magic alone.
  CHECK(encapsulated_files(message("^AP^OCTET-STREAM^Base64^" + base64_encode(pdf)), {}, "d")[0].content_type ==
        "application/pdf");
}

TEST_CASE("encapsulated_files: not base64, another encoding, over the limit, not ED") {
  CHECK_FALSE(encapsulated_files(message("^AP^PDF^Base64^%%%%"), {}, "d")[0].error.empty());
  CHECK(encapsulated_files(message("^AP^PDF^Hex^255044462D"), {}, "d")[0].error.find("Base64") != std::string::npos);
  encapsulated_limits small;
  small.max_encoded = 16;
  CHECK(encapsulated_files(message("^AP^PDF^Base64^" + base64_encode(pdf)), {}, "d", small)[0].error.find("limit") !=
        std::string::npos);
  CHECK(encapsulated_files(message("text", "ST"), {}, "d").empty());
}
