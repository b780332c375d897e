// Issue #19 over the wire: the real daemon, `interfaced simulate` playing the identity fixtures
// (tests/fixtures/identity, written from the vendors' manuals) and the EUROIMMUN capture from
// ../shared; what the outbox holds for the backend is checked.
#include <catch2/catch.hpp>

#include <set>

#include "e2e_support.hpp"
#include "support/files.hpp"

using namespace interfaced::e2e;

namespace {

fs::path fixture(const std::string& name) { return interfaced::test::fixture_dir() / "identity" / name; }

json device_with_profile(const std::string& id, const std::string& protocol, std::uint16_t port,
                         const std::string& profile) {
  json d = tcp_server_device(id, protocol, port);
  if (!profile.empty()) d["profile"] = profile;
  return d;
}

std::vector<json> values_of(const std::vector<json>& bodies, const std::string& device) {
  std::vector<json> out;
  for (const auto& b : bodies) {
    if (!b.is_object() || b.value("device_id", "") != device) continue;
    for (const char* key : {"results", "values"})
      if (b.contains(key))
        for (const auto& v : b[key]) out.push_back(v);
  }
  return out;
}

}  // namespace

TEST_CASE("identity over the wire: no sample id, R.3 analytes, result types, text-only HL7 tests", "[identity]") {
  scratch_dir dir;
  struct dev {
    std::string id, protocol, profile;
    fs::path file;
    std::uint16_t port = 0;
  };
  std::vector<dev> devs = {
      {"pan", "astm", "hologic-panther", fixture("hologic-panther-aptima-hpv.astm")},
      {"arc", "astm", "abbott-architect", fixture("abbott-architect-result-types.astm")},
      {"abl", "hl7", "radiometer-abl", fixture("radiometer-abl-bloodgas-text-only.hl7")},
      {"bs", "hl7", "mindray-cl", fixture("mindray-bs-chemistry-obx4-name.hl7")},
  };
  // The EUROIMMUN capture lives in ../shared; without it that part is skipped (capture() warns).
  const bool shared = interfaced::test::capture("astm/euroimmun-analyzer1-sarscov2-multipatient-records.astm").has_value();
  if (shared)
    devs.push_back({"eur", "astm", "",
                    interfaced::test::shared_dir() / "captures/astm/euroimmun-analyzer1-sarscov2-multipatient-records.astm"});
  json devices = json::array();
  for (auto& d : devs) {
    d.port = free_port();
    devices.push_back(device_with_profile(d.id, d.protocol, d.port, d.profile));
  }
  daemon_proc daemon(dir.path());
  daemon.start(devices);
  for (auto& d : devs) {
    auto sim = simulate(dir.path(), d.id, {"--connect", "127.0.0.1:" + std::to_string(d.port)}, d.file);
    const auto st = sim->wait_for(std::chrono::milliseconds(90000));
    INFO(d.id << "\n" << sim->out() << sim->err());
    REQUIRE(st.has_value());
    REQUIRE(*st == 0);
  }
  const auto [status, took] = daemon.stop();
  CHECK(status == 0);
  const auto bodies = daemon.outbox();

  const auto pan = values_of(bodies, "pan");
  REQUIRE(pan.size() == 7);
  std::set<std::string> params;
  for (const auto& v : pan) {
    params.insert(v.at("parameter").get<std::string>());
    CHECK(v.at("status") == "F");
    CHECK(v.at("rerun_number") == 0);
  }
  CHECK(params.size() == 7);
  CHECK(params.count("HPV_SCO") == 1);  // the profile's code map over HPV^AnalyteSCO

  const auto arc = values_of(bodies, "arc");
  REQUIRE(arc.size() == 3);
  CHECK(arc[0].at("companions").at("raw_signal") == "51234");
  CHECK(arc[1].at("companions").at("interpretation") == "Normal");
  CHECK(arc[0].at("rerun_number") == 0);
  CHECK(arc[1].at("rerun_number") == 0);
  CHECK(arc[2].at("rerun_number") == -1);

  const auto abl = values_of(bodies, "abl");
  REQUIRE(abl.size() == 3);
  CHECK(abl[0].at("parameter") == "pH");

  const auto bs = values_of(bodies, "bs");
  REQUIRE(bs.size() == 2);
  CHECK(bs[0].at("parameter") == "Glucose (GOD-POD Method)");

  if (!shared) return;
  const auto eur = values_of(bodies, "eur");
  REQUIRE(eur.size() == 20);
  for (const auto& v : eur) {
    CHECK(v.value("sample_id_missing", false));
    CHECK(v.at("rerun_number") == 0);
  }
  const std::string log = daemon.device_log("eur");
  CHECK_THAT(log, Catch::Contains("no sample id in records"));
  CHECK_THAT(log, Catch::Contains("euroimmun-analyzer1"));
  CHECK_THAT(log, Catch::Contains("20 without a sample id"));
}
