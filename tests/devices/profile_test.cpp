// Device profiles: every bundled profile loads; detection from H.5; precise errors for bad files.

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "devices/profile.hpp"
#include "parsers/astm/records.hpp"
#include "parsers/astm/normalise.hpp"
#include "parsers/hl7/normalise.hpp"
#include "support/files.hpp"
#include "support/scratch_dir.hpp"

using namespace interfaced;

namespace {

std::string error_of(const std::string& json_text) {
  try {
    (void)devices::parse_profile(json_text, "p.json");
  } catch (const devices::profile_error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("profiles: every bundled profile loads, names a vendor and justifies its settings") {
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  REQUIRE(cat.all().size() >= 10);  // issue: at least 10 analyser models
  for (const auto& p : cat.all()) {
    INFO(p.id);
    CHECK(!p.vendor.empty());
    CHECK(!p.models.empty());
    CHECK(p.file.filename().string() == p.id + ".json");
  }
}

TEST_CASE("profiles: detection from the H record's sender field") {
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  struct probe {
    const char* sender;  // H.5 as it stands in the capture, components joined by '^'
    const char* id;
  };
  for (const auto& [sender, id] : std::initializer_list<probe>{
           {"    XN-550^00-24^22723^^^^BD634545", "sysmex-xn"},
           {"XP-100^00-13^^^^A7869^BS649542", "sysmex-xp"},
           {"SENAITE^Roche^c111^4.2.2.1730^1^13147", "roche-cobas-c111"},
           {"c311^1", "roche-cobas-c311"},
           {"ALCZC12033KD^Roche^AMPLILINK^3.3.7.1201", "roche-amplilink"},
           {"Afinion 2 Analyzer^^AF20052397", "abbott-afinion2"},
           {"DCA VANTAGE^04.04.00.00^S067337", "siemens-dca-vantage"},
           {".806149 Happy Hospital^GeneXpert^4.8", "cepheid-genexpert"},
           {"ABX", "horiba-pentra-xlr"},
           {"H500^906YOXH02459^2.2.0.5", "horiba-yumizen-h500"},
           {"H550^909YAXH02732^1.2.1.4", "horiba-yumizen-h550"},
           {"3600796", "ortho-vitros-3600"},
           {"OCD^VISION^5.10.0.46252^J number", "ortho-vision"},
           {"DxH", "beckman-dxh"},
           {"Bio-Rad", "biorad-ih1000"},
           {"Echo", "immucor-galileo-echo"},
           {"Phadia.Prime^1.2.0.12371^4.0", "thermo-phadia-prime"}}) {
    INFO(sender);
    const auto* p = cat.detect(sender);
    REQUIRE(p != nullptr);
    CHECK(p->id == id);
  }
  CHECK(cat.detect("") == nullptr);
  CHECK(cat.detect("LIS") == nullptr);
}

TEST_CASE("profiles: errors name the file, the JSON pointer and what was expected") {
  CHECK(error_of("{") == "p.json: /: not valid JSON");
  CHECK(error_of(R"({"id":"x","vendor":"v"})") == "p.json: /models: missing; expected an array of model names");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"colour":1})") == "p.json: /colour: unknown key");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"sample_id":{"from":[{"record":"Z","field":3}],"why":"because a manual says so"}})") ==
        "p.json: /sample_id/from/0/record: expected one of \"H\", \"P\", \"O\", \"R\"");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"code":{"strip_suffixes":["/"]}})") ==
        "p.json: /code/why: missing; expected a sentence naming the capture or manual section");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"encoding":{"name":"ebcdic","why":"the manual says so"}})") ==
        "p.json: /encoding/name: expected \"latin1\", \"utf-8\" or \"windows-1252\"");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":[3]})") == "p.json: /models/0: expected a string, found number");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"result_fields":{"flags":0,"why":"shifted fields in the capture"}})") ==
        "p.json: /result_fields/flags: expected a field number from 2 to 64");
  // Comments are allowed: lab IT annotate their own profiles.
  CHECK(error_of("// a comment\n{\"id\":\"x\",\"vendor\":\"v\",\"models\":[\"m\"]}").empty());
}

TEST_CASE("profiles: a profile's field positions change what the normaliser reads") {
  const auto p = devices::parse_profile(
      R"({"id":"x","vendor":"v","models":["m"],
          "result_fields":{"range":7,"flags":8,"why":"one extra field after the unit in this analyser"},
          "value_flag_component":{"component":2,"why":"flag carried in the value's second component"}})",
      "x.json");
  const std::string text = "H|\\^&\rP|1\rO|1|S1||^^^HGB\rR|1|^^^HGB|146^H|g/L||109 to 143|A\rL|1|N\r";
  const auto m = astm::parse_message(text);
  const auto batch = astm::normalise(m, p.astm, "dev");
  REQUIRE(batch.results.size() == 1);
  const auto& r = batch.results[0];
  CHECK(r.value == "146");
  CHECK(r.reference_range == "109 to 143");
  CHECK(r.flags == std::vector<std::string>{"H", "A"});
}

TEST_CASE("profiles: Mindray's ACK variation is data, and builds the manual's ACK byte for byte") {
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  const auto* mindray = cat.find("mindray-cl");
  REQUIRE(mindray != nullptr);
  // The patient ORU^R01's MSH from the Mindray CL host interface manual (captures/hl7/
  // mindray-cl1000i-oru-r01-patient-manual.txt), and the ACK the manual gives for it
  // (mindray-cl1000i-ack-r01-aa-manual.txt), <CR> as 0x0D.
  const std::string oru = "MSH|^~\\&|||||20120508094822||ORU^R01|1|P|2.3.1||||0||ASCII|||\r"
                          "PID|1|1001|||Mike||19851001095133|M\r";
  const std::string manual_ack = "MSH|^~\\&|||||20120508094823||ACK^R01|1|P|2.3.1||||0||ASCII|||\r"
                                 "MSA|AA|1|Message accepted|||0|\r";
  hl7::ack_request req;
  req.code = hl7::ack_code::aa;
  req.control_id = "1";
  req.timestamp = "20120508094823";
  CHECK(hl7::build_ack(oru, req, mindray->ack) == manual_ack);
}

TEST_CASE("profiles: the Mindray BS-series profile acknowledges as the Mindray manuals say, and is not detected") {
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  const auto* bs = cat.find("mindray-bs");
  REQUIRE(bs != nullptr);
  CHECK(bs->protocol == "hl7");
  // MSH-3 'Mindray' is the CL series' too: the BS profile is configured, never guessed.
  CHECK(cat.detect("Mindray", "hl7") != bs);
  const std::string oru = "MSH|^~\\&|Mindray|BS-480|||20261123101500||ORU^R01|41|P|2.3.1||||0||ASCII|||\r"
                          "OBR|1|BC-0412|12\r";
  hl7::ack_request req;
  req.code = hl7::ack_code::aa;
  req.control_id = "41";
  req.timestamp = "20261123101501";
  const std::string ack = hl7::build_ack(oru, req, bs->ack);
  CHECK(ack.find("|ACK^R01|41|P|2.3.1||||0||ASCII|||\r") != std::string::npos);  // MSH-16 echoed
  CHECK(ack.find("\rMSA|AA|41|Message accepted|||0|\r") != std::string::npos);
}

TEST_CASE("profiles: order download is off unless a profile says so, with a why") {
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  const auto* galileo = cat.find("immucor-galileo-echo");
  REQUIRE(galileo != nullptr);
  CHECK(galileo->order_download);
  CHECK(galileo->order_codes.empty());
  const auto* xn = cat.find("sysmex-xn");
  REQUIRE(xn != nullptr);
  CHECK_FALSE(xn->order_download);

  const auto p = devices::parse_profile(
      R"({"id":"x","vendor":"v","models":["m"],
          "orders":{"download":true,"codes":{"HGB":"8","PLT":"12"},"why":"host interface manual 4.2: worklist download"}})",
      "x.json");
  CHECK(p.order_download);
  CHECK(p.order_codes.at("HGB") == "8");
  CHECK(p.order_codes.at("PLT") == "12");

  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"orders":{"download":true}})") ==
        "p.json: /orders/why: missing; expected a sentence naming the capture or manual section");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"orders":{"download":"yes","why":"manual 4.2 says so"}})") ==
        "p.json: /orders/download: expected true or false, found string");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"orders":{"dowload":true,"why":"manual 4.2 says so"}})") ==
        "p.json: /orders/dowload: unknown key; expected \"download\", \"codes\" or \"why\"");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"orders":{"codes":{"HGB":8},"why":"manual 4.2 says so"}})") ==
        "p.json: /orders/codes/HGB: expected a test code (string), found number");
  CHECK(error_of(R"({"id":"x","vendor":"v","models":["m"],"orders":true})") ==
        "p.json: /orders: expected an object {download, codes, why}, found boolean");
}

// Issue #14 point 1: MSH-11 `Q` (processing id: QC, hl7-facts.md §9 for the Mindray BC family) is
// control material under every HL7 profile, not only under the one a user happens to pick: a
// profile's qc_when adds to the default rule, it does not replace it. The message is the hand-written
// BC-5380-style QC fixture (tests/fixtures/qc/README.md: written from the manuals, not a capture).
TEST_CASE("profiles: every HL7 profile treats an MSH-11 Q message as control results") {
  std::ifstream in(std::string(INTERFACED_FIXTURE_DIR) + "/qc/mindray-bc5380-qc-three-levels.hl7", std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  REQUIRE(!text.empty());
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  std::size_t hl7_profiles = 0;
  for (const auto& p : cat.all()) {
    if (p.protocol != "hl7") continue;
    ++hl7_profiles;
    INFO(p.id);
    const auto b = hl7::normalise(text, p.hl7, "bc");
    REQUIRE(!b.results.empty());
    for (const auto& r : b.results) CHECK(r.qc);
  }
  CHECK(hl7_profiles >= 2);  // mindray-cl, mindray-bs at least
}

// Issue #14 point 1: the mindray-bc profile's qc_series gives each OBR group of a BC-5380 QC
// message its own level (the group's position: inferred from the layout, the profile's why says
// so) and the QC file as material; without the profile the three levels are one series.
TEST_CASE("profiles: mindray-bc reads a BC-5380 QC message's level from the OBR group's position") {
  std::ifstream in(std::string(INTERFACED_FIXTURE_DIR) + "/qc/mindray-bc5380-qc-three-levels.hl7", std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  REQUIRE(!s.str().empty());
  const auto cat = devices::profile_catalog::load_dir(INTERFACED_PROFILE_DIR);
  const auto* p = cat.find("mindray-bc");
  REQUIRE(p != nullptr);
  CHECK(p->protocol == "hl7");
  const auto b = hl7::normalise(s.str(), p->hl7, "bc");
  REQUIRE(b.results.size() == 12);
  for (std::size_t i = 0; i < b.results.size(); ++i) {
    const auto& r = b.results[i];
    INFO(i << " " << r.code);
    CHECK(r.qc);
    CHECK(r.sample_id == "6");
    CHECK(r.qc_level == std::to_string(i / 4 + 1));  // four OBX per OBR group
    CHECK(r.qc_material == "X-R QC 6");
    CHECK(r.qc_lot.empty());  // no field carries it: qc.controls does
  }
  // The default options know no series: every level would be one chart.
  for (const auto& r : hl7::normalise(s.str(), hl7::hl7_options{}, "bc").results) {
    CHECK(r.qc_level.empty());
    CHECK(r.qc_material.empty());
  }
}

TEST_CASE("profiles: a bad hl7 qc_series mapping names the file, the JSON pointer and what was expected") {
  const std::string head = R"({"id":"x","vendor":"v","models":["m"],"protocol":"hl7","hl7":{"why":"manual 4.2 says so","qc_series":)";
  const auto with = [&](const std::string& series) { return error_of(head + series + "}}"); };
  const std::string why = R"("why":"the BC layout, inferred")";
  CHECK(with(R"({"level":{"position_of":"OBR"}})") ==
        "p.json: /hl7/qc_series/why: missing; expected a sentence naming the capture or manual section");
  CHECK(with(R"({"levle":{"position_of":"OBR"},)" + why + "}") ==
        "p.json: /hl7/qc_series/levle: unknown key; expected material, lot, level or why");
  CHECK(with(R"({"level":{"position_of":"OB"},)" + why + "}") ==
        "p.json: /hl7/qc_series/level/position_of: expected a three-letter segment name");
  CHECK(with(R"({"level":{"position_of":"OBR","field":1},)" + why + "}") ==
        "p.json: /hl7/qc_series/level: expected a field reference {segment, field, component, subcomponent} or "
        "{\"position_of\": segment}, not both");
  CHECK(with(R"({"material":[{"segment":"OBR","field":4,"component":2},{"segment":"OBR","feild":3}],)" + why + "}") ==
        "p.json: /hl7/qc_series/material/1/feild: unknown key; expected a field reference {segment, field, component, "
        "subcomponent} or {\"position_of\": segment}");
  CHECK(with(R"({"material":{"segment":"OBR","field":4,"component":"2"},)" + why + "}") ==
        "p.json: /hl7/qc_series/material/component: expected a number, found string");
  CHECK(with(R"({"lot":{"segment":"OBR","field":140},)" + why + "}") ==
        "p.json: /hl7/qc_series/lot/field: expected a field number from 1 to 99");
  CHECK(with(R"({"lot":[],)" + why + "}") == "p.json: /hl7/qc_series/lot: expected at least one place");
  CHECK(with(R"({"lot":"OBR-14",)" + why + "}") ==
        "p.json: /hl7/qc_series/lot: expected a field reference {segment, field, component, subcomponent} or "
        "{\"position_of\": segment}, found string");
  CHECK(with("[]") == "p.json: /hl7/qc_series: expected an object {material, lot, level, why}, found array");
}

TEST_CASE("profiles: a bad qc_series in a profile folder names the profile file") {
  interfaced::test::scratch_dir dir;
  std::ofstream(dir.path() / "bc-local.json")
      << R"({"id":"bc-local","vendor":"v","models":["m"],"protocol":"hl7",)"
      << R"("hl7":{"why":"manual 4.2 says so","qc_series":{"level":{"position_of":"OBR","segment":"OBR"},"why":"the BC layout"}}})";
  try {
    (void)devices::profile_catalog::load_dir(dir.path());
    FAIL("a bad qc_series loaded");
  } catch (const devices::profile_error& e) {
    const std::string what = e.what();
    CHECK(what.find((dir.path() / "bc-local.json").string() + ": /hl7/qc_series/level: ") == 0);
  }
}
