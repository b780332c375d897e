// Every ASTM capture in ../shared/captures/astm through `interfaced replay`: exit status, and the
// sample ids, codes, values, units and flags each file holds. Expectations were written by reading
// the capture against LIS02-A2 (and the profile's documented quirks), not from program output.

#include <catch2/catch.hpp>

#include "replay_support.hpp"

using interfaced::test::replay_capture;
using json = nlohmann::json;

namespace {

json find(const std::vector<json>& results, const std::string& sample, const std::string& code) {
  return interfaced::test::find_result(results, sample, code);
}

void check(const json& r, const std::string& value, const std::string& unit,
           const std::vector<std::string>& flags) {
  interfaced::test::check_result(r, "astm", value, unit, flags);
}

}  // namespace

TEST_CASE("replay: Abbott Afinion 2 HbA1c (single frame, no LF after checksum)") {
  auto run = replay_capture("astm/abbott-afinion2-hba1c-result.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  const json r = find(res, "3643", "HbA1c");
  check(r, "5.9", "%", {});
  CHECK(r.at("status") == "F");
  CHECK(r.at("observed_at") == "2024-12-06T14:06:15+01:00");
  CHECK(r.at("numeric") == Approx(5.9));
  CHECK(r.at("device") == "abbott-afinion2");
  CHECK(r.at("qc") == false);
  CHECK(r.at("is_rerun") == false);
  CHECK(r.at("rerun_number") == 0);
}

TEST_CASE("replay: Bio-Rad IH-1000 blood grouping, records-only LF") {
  auto run = replay_capture("astm/biorad-ih1000-ihcom-bloodgroup-records.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 4);
  check(find(res, "1122206642", "AntiA"), "40", "C", {});
  check(find(res, "1122206642", "AntiB"), "0", "C", {});
  check(find(res, "1122206642", "AntiD"), "0", "C", {});
  check(find(res, "1122206642", "Result"), "A^NEG^NEG^ccee^K-^NEG", "C", {});
  CHECK(find(res, "1122206642", "AntiA").at("name") ==
        "Bloodgroup: A,B,D Confirmation for Patients (DiaClon) (5005)");
}

TEST_CASE("replay: Cepheid GeneXpert with | @ ^ and backslash as delimiters") {
  auto run = replay_capture("astm/cepheid-genexpert-mtbrif-result-custom-delimiters.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  CHECK(res.size() == 84);  // R|1 .. R|84
  check(find(res, "PR25A137", "MTB-RIF/Xpert/MTB"), "NOT DETECTED", "", {});
  check(find(res, "PR25A137", "MTB-RIF/Xpert/rpoB1/Ct"), "0.0", "", {});
  check(find(res, "PR25A137", "MTB-RIF/RIF/SPC/Ct"), "24.7", "", {});
  check(find(res, "PR25A137", "MTB-RIF/RIF/IS1081-IS6110"), "FAIL", "", {});
  CHECK(find(res, "PR25A137", "MTB-RIF/Xpert/MTB").at("observed_at") == "2025-05-14T13:21:03+02:00");
}

TEST_CASE("replay: Erba XL-1000 with a backtick repeat delimiter") {
  for (auto [file, sample, code, value] :
       {std::tuple{"astm/erba-xl1000-result-backtick-repeat.astm", "1044041", "DBILL", "0.3"},
        std::tuple{"astm/erba-xl1000-result-glucose.astm", "1043972", "GLCC", "504"}}) {
    auto run = replay_capture(file, "erba-xl1000");
    if (!run) return;
    REQUIRE(run->status == 0);
    auto res = run->of_type("result");
    REQUIRE(res.size() == 1);
    check(find(res, sample, code), value, "mg/dl", {"A"});
  }
}

TEST_CASE("replay: EUROIMMUN Analyzer I, many patients, comma decimals") {
  auto run = replay_capture("astm/euroimmun-analyzer1-sarscov2-multipatient-records.astm",
                            "euroimmun-analyzer1");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 20);
  check(find(res, "TEST-27-079-5-1", "SARSCOV2IGA"), ">8", "Ratio", {});
  const json r = find(res, "TEST-27-077-5-1", "SARSCOV2IGA");
  check(r, "7,41", "Ratio", {});
  CHECK(r.at("numeric") == Approx(7.41));
  CHECK_FALSE(find(res, "TEST-27-079-5-1", "SARSCOV2IGA").contains("numeric"));
}

TEST_CASE("replay: Horiba Pentra XLR, 28 frames wrapping 7->0, one record per frame") {
  auto run = replay_capture("astm/horiba-pentra_xlr-cbc-result-multiframe.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 21);
  check(find(res, "S1234", "WBC"), "8.5", "1", {});
  check(find(res, "S1234", "MON#"), "0.15", "1", {"L"});
  const json bas = find(res, "S1234", "BAS#");
  check(bas, "-----", "1", {"HH"});
  CHECK(bas.at("status") == "X");
  CHECK_FALSE(bas.contains("numeric"));
}

TEST_CASE("replay: Horiba Yumizen H500 wire capture, fields split across ETB frames") {
  auto run = replay_capture("astm/horiba-yumizen_h500-result-flags-histograms.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 27);
  check(find(res, "2021679", "PCT"), "0.13", "%", {"L"});
  check(find(res, "2021679", "RDW-CV"), "28.8", "%", {"HH"});
  check(find(res, "2021679", "RBC"), "1.74", "10E6/uL", {"LL"});
  CHECK(find(res, "2021679", "RBC").at("reference_range") == "3.80 - 6.00");
  CHECK(find(res, "2021679", "RBC").at("qc") == false);
}

TEST_CASE("replay: Horiba Yumizen H550 QC with the doubled-backslash header") {
  auto run = replay_capture("astm/horiba-yumizen_h550-qc-result-records.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  CHECK(run->err.find("warning") != std::string::npos);  // the leniency is visible
  auto res = run->of_type("result");
  REQUIRE(res.size() == 20);
  const json mcv = find(res, "PX449L", "MCV");
  check(mcv, "78.4", "um3", {"N"});
  CHECK(mcv.at("reference_range") == "73.5-83.5");
  for (const auto& r : res) CHECK(r.at("qc") == true);
  check(find(res, "PX449L", "PLT"), "67", "10E3/uL", {"N"});
}

TEST_CASE("replay: Immucor Galileo/Echo results with componented reaction grades") {
  auto run = replay_capture("astm/immucor-galileo-echo-result-records.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 14);
  check(find(res, "0651439A", "Anti-B"), "3+^3+^45", "", {});
  check(find(res, "0651439A", "Rh Ctrl"), "0^0^0", "", {});
  check(find(res, "0651439A", "ABOD Full Interp"), "B Pos", "", {});
  check(find(res, "0651439A", "Screen 1"), "4+^4+^100", "", {});
}

TEST_CASE("replay: Immucor order download is an order, not a result") {
  auto run = replay_capture("astm/immucor-galileo-echo-order-download-records.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  CHECK(run->of_type("result").empty());
  auto orders = run->of_type("order");
  REQUIRE(orders.size() == 1);
  CHECK(orders[0].at("sample_id") == "0651439A");
  CHECK(orders[0].at("patient_id") == "1171984");
  REQUIRE(orders[0].at("tests").size() == 1);
  CHECK(orders[0].at("tests")[0].at("code") == "Crossmatch");
  CHECK(orders[0].at("priority") == "R");
}

TEST_CASE("replay: Ortho VISION uploads in three encodings") {
  for (const char* f : {"astm/ortho-vision-upload-utf8.astm", "astm/ortho-vision-upload-windows1252.astm",
                        "astm/ortho-vision-upload-iso8859-1.astm"}) {
    auto run = replay_capture(f);
    if (!run) return;
    REQUIRE(run->status == 0);
    auto res = run->of_type("result");
    REQUIRE(res.size() == 2);
    check(find(res, "SID999", "ABO"), "A", "", {});
    check(find(res, "SID999", "Rh"), "NEG", "", {});
  }
}

TEST_CASE("replay: VITROS 3600 host query and its cancel") {
  auto q = replay_capture("astm/ortho-vitros3600-hostquery.astm");
  if (!q) return;
  REQUIRE(q->status == 0);
  auto queries = q->of_type("query");
  REQUIRE(queries.size() == 1);
  CHECK(queries[0].at("sample_ids") == json::array({"1068687"}));
  CHECK(queries[0].at("tests") == json::array({"ALL"}));
  CHECK(queries[0].at("status_code") == "O");
  CHECK(queries[0].at("cancel") == false);

  auto c = replay_capture("astm/ortho-vitros3600-hostquery-cancel.astm");
  REQUIRE(c->status == 0);
  auto cancels = c->of_type("query");
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].at("sample_ids") == json::array({"1068687"}));
  CHECK(cancels[0].at("status_code") == "A");
  CHECK(cancels[0].at("cancel") == true);
}

TEST_CASE("replay: VITROS 3600 results, componented flags, censored values, replicates") {
  auto small = replay_capture("astm/ortho-vitros3600-result-small.astm");
  if (!small) return;
  REQUIRE(small->status == 0);
  auto res = small->of_type("result");
  REQUIRE(res.size() == 3);
  const json r = find(res, "44444411", "1.0000+950+1.0");
  check(r, "51", "", {"0", "NQ"});
  CHECK(r.at("status") == "V");

  auto tsh = replay_capture("astm/ortho-vitros3600-result-tsh-lt-values.astm");
  REQUIRE(tsh->status == 0);
  auto t = tsh->of_type("result");
  REQUIRE(t.size() == 4);
  check(find(t, "1068616", "1.0000+001+1.0"), "8.25", "mIU/L", {"1", "0", "0", "0"});
  check(find(t, "1068616", "1.0000+950+1.0"), "<15", "", {"5"});
  check(find(t, "1068616", "1.0000+951+1.0"), "<2", "", {"5"});

  auto m = replay_capture("astm/ortho-vitros3600-result-with-M-records.astm");
  REQUIRE(m->status == 0);
  auto reps = m->of_type("result");
  REQUIRE(reps.size() == 8);
  // Five replicates of one test: the first is a first result, the others new observations of the
  // same (sample, parameter) -- instrument-triggered reruns (rerun.md, "0 / - / - / yes").
  std::vector<json> same;
  for (const auto& x : reps)
    if (x.at("code") == "1.0000+002+1.0") same.push_back(x);
  REQUIRE(same.size() == 5);
  check(same[0], "33.86", "nmol/L", {"0", "FRMN", "0", "NR", "0", "NR", "0", "NR"});
  CHECK(same[0].at("rerun_number") == 0);
  CHECK(same[1].at("value") == "33.46");
  CHECK(same[1].at("is_rerun") == true);
  CHECK(same[1].at("rerun_number") == -1);
  check(find(reps, "1111111", "1.0000+950+1.0"), "No Result", "", {"0", "NR"});
}

TEST_CASE("replay: Roche cobas c111, every record its own ETB frame, LF-only trailers") {
  auto run = replay_capture("astm/roche-cobas_c111-qc-result-etb-per-record.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  check(find(res, "T20 10134GA D28", "413"), "40.13", "g/L", {"N"});
}

TEST_CASE("replay: Roche cobas c311, repeated test ids, padded fields, '/' stripped") {
  auto run = replay_capture("astm/roche-cobas_c311-result-single-frame.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 7);
  check(find(res, "CL-PL-24-0370", "685"), "22.4", "U/l", {"A"});
  check(find(res, "CL-PL-24-0370", "712"), "4.1", "umol/l", {"L"});
  check(find(res, "CL-PL-24-0370", "690"), "34", "umol/l", {"A"});
}

TEST_CASE("replay: Siemens DCA Vantage ACR") {
  auto run = replay_capture("astm/siemens-dca_vantage-acr-result.astm");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 3);
  check(find(res, "BU24R554", "Alb"), "63.7", "mg/L", {});
  check(find(res, "BU24R554", "Crt"), "230.8", "mg/dL", {});
  check(find(res, "BU24R554", "Ratio"), "27.6", "mg/g", {});
}

TEST_CASE("replay: Sysmex XN-550 and XP-100, padded sample numbers and values") {
  auto xn = replay_capture("astm/sysmex-xn550-cbc-result.astm");
  if (!xn) return;
  REQUIRE(xn->status == 0);
  auto a = xn->of_type("result");
  REQUIRE(a.size() == 41);
  check(find(a, "27", "WBC"), "8.13", "10*3/uL", {"N"});
  check(find(a, "27", "HCT"), "22.7", "%", {"L"});

  auto xp = replay_capture("astm/sysmex-xp100-cbc-result.astm");
  REQUIRE(xp->status == 0);
  auto b = xp->of_type("result");
  REQUIRE(b.size() == 20);
  check(find(b, "113", "WBC"), "5.5", "10*3/uL", {"N"});
  check(find(b, "113", "MCHC"), "41.7", "g/dL", {"H"});
  CHECK(find(b, "113", "WBC").at("numeric") == Approx(5.5));
}

TEST_CASE("replay: Beckman DxH scenario, | backslash ! ~ delimiters, queries, orders, shifted R fields") {
  auto run = replay_capture("astm/beckman-dxh-query-order-result-scenario.txt");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto queries = run->of_type("query");
  REQUIRE(queries.size() == 3);
  CHECK(queries[0].at("sample_ids") == json::array({"000004287888"}));
  auto orders = run->of_type("order");
  REQUIRE(orders.size() == 3);
  CHECK(orders[0].at("tests")[0].at("code") == "CD");
  auto res = run->of_type("result");
  REQUIRE(res.size() == 84);
  const json hgb = find(res, "000004287888", "HGB");
  check(hgb, "146", "g/L", {"H", "A"});
  CHECK(hgb.at("reference_range") == "109 to 143");
  CHECK(hgb.at("status") == "F");
  check(find(res, "000004287934", "PLT"), "178", "10^9/L", {"L", "A"});
  check(find(res, "000004287888", "WBC"), "7.4", "10^9/L", {});
}

TEST_CASE("replay: Roche TaqMan via AMPLILINK, backslash-xNN-escaped text") {
  auto run = replay_capture("astm/roche-cobas_taqman_amplilink-result-escaped.txt");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 1);
  const json r = find(res, "BP19-24277", "HI2CAP96");
  check(r, "61", "cp/mL", {"N"});
  CHECK(r.at("reference_range") == "20-10000000");
  CHECK(r.at("status") == "V");
}

TEST_CASE("replay: Thermo Phadia Prime annotated records") {
  auto run = replay_capture("astm/thermo-phadia_prime-ige-results-annotated.txt");
  if (!run) return;
  REQUIRE(run->status == 0);
  auto res = run->of_type("result");
  REQUIRE(res.size() == 3);
  check(find(res, "B7650020", "t2"), "9.34", "kUA/l", {});
  check(find(res, "B7650020", "t3"), "Examine", "kUA/l", {});
  check(find(res, "B7650020", "a-IgE"), "199", "kU/l", {});
}

TEST_CASE("replay: the two non-ASTM vendor files are rejected, naming the format problem") {
  for (const char* f : {"astm/biomerieux-mini_vidas-result-nonastm.astm",
                        "astm/arkray-spotchem_el_se1520-result-nonastm.astm"}) {
    auto run = replay_capture(f);
    if (!run) return;
    INFO(f << "\n" << run->err);
    CHECK(run->status == 1);
    CHECK(run->lines.empty());
    CHECK(run->err.find("not an ASTM E1381 capture") != std::string::npos);
  }
}

TEST_CASE("replay: Yumizen H500 QC stored by senaite with rewritten frame numbers") {
  // SOURCES.md note 1: senaite re-joined the ETB chunks and forced FN=1, so the file's frame
  // numbers run 1 2 3 4 5 1 1 1 4 5 ... Checked strictly, LIS1-A 6.5.1.1 rejects those frames and
  // says so; with --ignore-frame-numbers every frame is taken in file order.
  auto strict = replay_capture("astm/horiba-yumizen_h500-qc-histograms-multiframe.astm");
  if (!strict) return;
  CHECK(strict->status == 1);
  CHECK(strict->err.find("unexpected frame number 1, expected 6") != std::string::npos);

  auto run = interfaced::test::replay(
      {interfaced::test::capture_path("astm/horiba-yumizen_h500-qc-histograms-multiframe.astm")}, {}, true);
  INFO(run.err);
  REQUIRE(run.status == 0);
  auto res = run.of_type("result");
  REQUIRE(res.size() == 21);  // R|1 .. R|21
  const json mcv = find(res, "PX440N", "MCV");
  check(mcv, "90.6", "um3", {"N"});
  CHECK(mcv.at("reference_range") == "84.0 - 94.0");
  CHECK(mcv.at("qc") == true);  // H.12 processing id Q, and O.16 CTRL (profile)
  check(find(res, "PX440N", "PLT"), "308", "10E3/uL", {"N"});
}
