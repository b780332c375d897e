// devices/folder_file: the pure decisions of folder devices (file-reports.md "Folder devices"):
// which kind a file is, the sample its name carries, CSV exports to results. Expectations from
// the spec's examples ({sample_id}_{date}.pdf) and RFC 4180, not from the code's output.

#include <catch2/catch.hpp>

#include <set>

#include "devices/folder_file.hpp"
#include "devices/profile.hpp"

using namespace interfaced::devices;

TEST_CASE("folder file name: {sample_id}_{date}.pdf gives the sample id") {
  CHECK(sample_from_filename("{sample_id}_{date}.pdf", "S-1234_20240627.pdf") == std::optional<std::string>("S-1234"));
  CHECK(sample_from_filename("{sample_id}_{date}.pdf", "S-1234_20240627.PDF") == std::optional<std::string>("S-1234"));
  CHECK(sample_from_filename("{sample_id}_{date}.*", "27_2024.png") == std::optional<std::string>("27"));
  CHECK(sample_from_filename("gel-{sample_id}.png", "gel-A.B+1.png") == std::optional<std::string>("A.B+1"));
  CHECK_FALSE(sample_from_filename("{sample_id}_{date}.pdf", "report.pdf"));
  CHECK_FALSE(sample_from_filename("{sample_id}_{date}.pdf", "S-1_2024.png"));
  CHECK_FALSE(sample_from_filename("{date}.pdf", "2024.pdf"));  // no {sample_id}
  CHECK_FALSE(sample_from_filename("", "S-1_2024.pdf"));
}

TEST_CASE("folder file kind: ASTM and HL7 by content and CSV by the mapping and anything else a report") {
  folder_rule rule;
  rule.csv.sample_id = "Sample";
  rule.csv.parameter = "Test";
  rule.csv.value = "Result";
  CHECK(classify_folder_file("x.txt", "H|\\^&|||A\rP|1\rL|1\r", &rule) == folder_file_kind::astm);
  CHECK(classify_folder_file("x.hl7", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.3.1\r", &rule) == folder_file_kind::hl7);
  CHECK(classify_folder_file("x.csv", "Sample,Test,Result\n", &rule) == folder_file_kind::csv);
  CHECK(classify_folder_file("x.CSV", "Sample,Test,Result\n", &rule) == folder_file_kind::csv);
  CHECK(classify_folder_file("x.csv", "Sample,Test,Result\n", nullptr) == folder_file_kind::report);
  CHECK(classify_folder_file("x.png", std::string("\x89PNG\r\n\x1a\n\0\0", 10), &rule) == folder_file_kind::report);
  CHECK(classify_folder_file("x.pdf", "%PDF-1.4\n", &rule) == folder_file_kind::report);
  // Image bytes that happen to hold MLLP's 0x0B or E1381's STX are still an image.
  CHECK(classify_folder_file("x.png", "\x89PNG\x0bMSH|^~\\&|\x1c\r", &rule) == folder_file_kind::report);
  CHECK(classify_folder_file("x.bin", std::string("\x02" "1H|\\^&\0", 8), &rule) == folder_file_kind::report);
}

TEST_CASE("folder CSV and one row per result: quoted fields and a BOM and blank lines") {
  csv_mapping m;
  m.sample_id = "Sample ID";
  m.parameter = "Test";
  m.value = "Result";
  m.unit = "Unit";
  m.observed_at = "Date";
  const std::string text = "\xEF\xBB\xBFSample ID,Test,Result,Unit,Date\r\n"
                           "S-1,HBA1C,6.1,%,20240627\r\n"
                           "\r\n"
                           "\"S,2\",\"CRP \"\"hs\"\"\",\"0,5\",mg/L,20240628\n";
  const auto r = read_csv_results(text, m, "dev");
  REQUIRE(r.error.empty());
  REQUIRE(r.results.size() == 2);
  CHECK(r.results[0].sample_id == "S-1");
  CHECK(r.results[0].code == "HBA1C");
  CHECK(r.results[0].value == "6.1");
  CHECK(r.results[0].unit == "%");
  CHECK(r.results[0].observed_at == "20240627");
  CHECK(r.results[0].device == "dev");
  CHECK(r.results[1].sample_id == "S,2");
  CHECK(r.results[1].code == "CRP \"hs\"");
  CHECK(r.results[1].value == "0,5");
}

TEST_CASE("folder CSV and one column per parameter and semicolon delimiter  an empty cell gives no result") {
  csv_mapping m;
  m.delimiter = ';';
  m.sample_id = "Sample";
  m.columns = {{"HbA1c (%)", "HBA1C"}, {"Glucose", "GLU"}};
  const auto r = read_csv_results("Sample;HbA1c (%);Glucose\nA;6.1;5.4\nB;;7.0\n", m, "dev");
  REQUIRE(r.error.empty());
  REQUIRE(r.results.size() == 3);
  std::multiset<std::string> got;
  for (const auto& x : r.results) got.insert(x.sample_id + "/" + x.code + "=" + x.value);
  CHECK(got == std::multiset<std::string>{"A/HBA1C=6.1", "A/GLU=5.4", "B/GLU=7.0"});
}

TEST_CASE("folder CSV: a header without the mapped columns and or a row without a sample id and is refused whole") {
  csv_mapping m;
  m.sample_id = "Sample ID";
  m.parameter = "Test";
  m.value = "Result";
  CHECK(read_csv_results("Name,Something\nx,y\n", m, "d").error.find("Sample ID") != std::string::npos);
  const auto r = read_csv_results("Sample ID,Test,Result\nS-1,A,1\n,B,2\n", m, "d");
  CHECK(r.error.find("line 3") != std::string::npos);
  CHECK(r.results.empty());
  CHECK_FALSE(read_csv_results("Sample ID,Test,Result\n", m, "d").error.empty());
}

TEST_CASE("folder capture file: ASTM records give results  a file with no results is an error") {
  const auto r = read_capture_results("H|\\^&|||T^1\rP|1\rO|1|S-9||^^^GLU\rR|1|^^^GLU|5.4|mmol/L||N||F\rL|1|N\r",
                                      nullptr, nullptr, "dev");
  INFO(r.error);
  REQUIRE(r.error.empty());
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].sample_id == "S-9");
  CHECK(r.results[0].value == "5.4");
  CHECK_FALSE(read_capture_results("H|\\^&|||T^1\rL|1|N\r", nullptr, nullptr, "dev").error.empty());
  CHECK_FALSE(read_capture_results("hello", nullptr, nullptr, "dev").error.empty());
}

TEST_CASE("folder profile key: parsed and and a pattern without {sample_id} refused with its pointer") {
  const auto p = parse_profile(R"({"id":"x","vendor":"v","models":["m"],"protocol":"astm","why":"the test export layout",
    "folder":{"filename_pattern":"{sample_id}_{date}.pdf","csv":{"sample_id":"S","columns":{"A":"B"}},"why":"the test export layout"}})",
                               "x.json");
  CHECK(p.folder.filename_pattern == "{sample_id}_{date}.pdf");
  CHECK(p.folder.csv.columns.at("A") == "B");
  CHECK(p.folder.report_parameter == "report");
  try {
    (void)parse_profile(R"({"id":"x","vendor":"v","models":["m"],"protocol":"astm","why":"the test export layout","folder":{"filename_pattern":"x.pdf","why":"the test export layout"}})", "x.json");
    FAIL("accepted");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("/folder/filename_pattern") != std::string::npos);
  }
}
