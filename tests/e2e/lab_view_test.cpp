// Issue #16 over the wire: the real daemon fed by `interfaced simulate`, the historical summary
// read through `interfaced stats` and GET /api/stats (the acceptance case: Asia/Kolkata, results
// observed 17:30Z and 18:30Z on Dec 5 and 12:00Z on Dec 6 -> [0, 1, 2, 0] for Dec 4-7), `stats
// rebuild` equal to the live rows, and the pages in a real browser (Debian's chromium, headless:
// the DOM after the scripts ran). Chromium missing: those cases say so and skip.

#include <catch2/catch.hpp>

#include <atomic>
#include <regex>
#include <sstream>
#include <thread>

#include "cdp_support.hpp"
#include "e2e_support.hpp"
#include "rerun/lab_time.hpp"

using namespace interfaced::e2e;

namespace {

// ASTM records (LIS2-A2): one GLU result per sample, R.13 the analyser's local time (no offset:
// the lab's wall clock).
std::string astm_message(const std::string& sample, const std::string& completed, const std::string& value = "5.4") {
  return "H|\\^&|||LV-SIM^1.0|||||LIS||P|LIS2-A2|" + completed + "\rP|1|PAT-1\rO|1|" + sample + "||^^^GLU|R\rR|1|^^^GLU|" +
         value + "|mmol/L|3.9-6.1|N||F||tech1|" + completed + "|" + completed + "\rL|1|N\r";
}

fs::path write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

void play(const fs::path& dir, const std::string& tag, std::uint16_t port, const fs::path& file) {
  auto sim = simulate(dir, tag, {"--connect", "127.0.0.1:" + std::to_string(port)}, file);
  const auto st = sim->wait_for(30000ms);
  INFO(tag << "\n" << sim->out() << sim->err());
  REQUIRE(st == std::optional<int>(0));
}

struct cli_result {
  int status;
  std::string out, err;
};

cli_result cli(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), interfaced::test::interfaced_binary().string());
  child c(args, dir / "cli.out", dir / "cli.err");
  const auto st = c.wait_for(20000ms);
  REQUIRE(st.has_value());
  return {*st, c.out(), c.err()};
}

// Waits until /api/stats answers `want` for the query (the outbox commits asynchronously).
json stats_until(std::uint16_t port, const std::string& query, const std::function<bool(const json&)>& want) {
  json last;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    if (auto body = http_get(port, "/api/stats?" + query)) {
      last = json::parse(*body);
      if (want(last)) return last;
    }
    std::this_thread::sleep_for(50ms);
  }
  return last;
}

const std::vector<long long> acceptance = {0, 1, 2, 0};

// The lab's wall clock now, as an ASTM time.
std::string astm_now(const char* zone) {
  const auto z = interfaced::rerun::lab_zone::find(zone);
  REQUIRE(z);
  return interfaced::rerun::format_message_time(z->wall_time(std::chrono::system_clock::now()));
}

std::optional<fs::path> chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(p)) return fs::path(p);
  return std::nullopt;
}

// chromium --headless --dump-dom: the DOM once the page's scripts ran (virtual time lets the
// fetches and timers finish).
std::string dump_dom(const fs::path& dir, const std::string& url, const std::vector<std::string>& flags = {}) {
  static int n = 0;
  const std::string tag = "chromium-" + std::to_string(++n);
  std::vector<std::string> args = {chromium()->string(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                                   "--user-data-dir=" + (dir / (tag + "-profile")).string(), "--virtual-time-budget=8000"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"--dump-dom", url});
  child c(args, dir / (tag + ".out"), dir / (tag + ".err"));
  const auto st = c.wait_for(60000ms);
  INFO(url << "\n" << c.err());
  REQUIRE(st == std::optional<int>(0));
  return c.out();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// The lab the browser tests load their pages from: chem and hema (ASTM, named as given) and the
// `idle` devices, the lab zone Asia/Kolkata, samples QC-* on any device controls of one GLU series
// (qc.md: qc.controls); today's one result (7.25, sample `today_sample`) on hema (chem's fixed
// dates may be today too, whenever the test runs) and one result per `chem_times` on chem
// (samples S-K1, S-K2, ...).
struct browser_lab {
  scratch_dir dir;
  std::uint16_t chem = free_port(), hema = free_port(), health = free_port();
  std::unique_ptr<child> daemon;
  std::string base = "http://127.0.0.1:" + std::to_string(health);

  browser_lab(const std::string& chem_name, const std::string& hema_name, const std::string& today_sample,
              const std::vector<std::string>& chem_times, const json& idle = json::array()) {
    json devices = json::array({tcp_server_device(chem_name, "astm", chem), tcp_server_device(hema_name, "astm", hema)});
    for (const auto& d : idle) devices.push_back(d);
    json cfg = daemon_config(dir.path(), devices, health);
    cfg["lab"] = {{"timezone", "Asia/Kolkata"}};
    cfg["qc"] = {{"limits", json::array({json{{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}}})},
                 {"controls", json::array({json{{"sample_id", "QC-*"}, {"material", "Ctrl"}, {"lot", "L1"}, {"level", "1"}}})}};
    daemon = run_daemon(dir.path(), cfg, health);
    send("now", hema, astm_message(today_sample, astm_now("Asia/Kolkata"), "7.25"));
    for (std::size_t i = 0; i < chem_times.size(); ++i)
      send(std::string(1, static_cast<char>('a' + i)), chem, astm_message("S-K" + std::to_string(i + 1), chem_times[i]));
  }
  // Two controls on hema: z +0.5 (accept), then z +4.0 (1-3s, reject).
  void send_controls() {
    send("qc1", hema, astm_message("QC-1", "20261206090000", "5.1"));
    send("qc2", hema, astm_message("QC-2", "20261206100000", "5.8"));
  }
  void send(const std::string& tag, std::uint16_t port, const std::string& text) {
    play(dir.path(), tag, port, write(dir.path() / (tag + ".astm"), text));
  }
};

}  // namespace

TEST_CASE("lab view: stats per lab-local day over the wire, Asia/Kolkata, CLI and /api/stats agree", "[lab]") {
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", port)}), health);
  cfg["lab"] = {{"timezone", "Asia/Kolkata"}};
  auto daemon = run_daemon(dir.path(), cfg, health);
  // 17:30Z Dec 5 = 23:00 IST Dec 5; 18:30Z = 00:00 IST Dec 6; 12:00Z Dec 6 = 17:30 IST Dec 6.
  play(dir.path(), "a", port, write(dir.path() / "a.astm", astm_message("S-K1", "20261205230000")));
  play(dir.path(), "b", port, write(dir.path() / "b.astm", astm_message("S-K2", "20261206000000")));
  play(dir.path(), "c", port, write(dir.path() / "c.astm", astm_message("S-K3", "20261206173000")));

  const std::string q = "from=2026-12-04&to=2026-12-07&event=device_result";
  const json j = stats_until(health, q, [](const json& s) {
    return s.contains("rows") && s["rows"].size() == 1 && s["rows"][0]["values"].get<std::vector<long long>>() == acceptance;
  });
  INFO(j.dump());
  CHECK(j["from"] == "2026-12-04");
  CHECK(j["to"] == "2026-12-07");
  CHECK(j["granularity"] == "day");
  CHECK(j["timezone"] == "Asia/Kolkata");
  CHECK(j["buckets"] == json::array({"2026-12-04", "2026-12-05", "2026-12-06", "2026-12-07"}));
  REQUIRE(j["rows"].size() == 1);
  CHECK(j["rows"][0]["event_type"] == "device_result");
  CHECK(j["rows"][0]["dimension_a"] == "chem");
  CHECK(j["rows"][0]["dimension_b"] == "GLU");
  CHECK(j["rows"][0]["values"].get<std::vector<long long>>() == acceptance);
  // Samples: each sample's first result of its day.
  const json samples = json::parse(*http_get(health, "/api/stats?from=2026-12-04&to=2026-12-07&event=device_sample&by=device"));
  REQUIRE(samples["rows"].size() == 1);
  CHECK(samples["rows"][0]["dimension_b"].is_null());
  CHECK(samples["rows"][0]["values"].get<std::vector<long long>>() == acceptance);
  // Weeks start on Monday (2026-11-30 and 2026-12-07).
  const json weeks = json::parse(*http_get(health, "/api/stats?from=2026-12-04&to=2026-12-07&event=device_result&granularity=week"));
  CHECK(weeks["buckets"] == json::array({"2026-11-30", "2026-12-07"}));
  CHECK(weeks["rows"][0]["values"] == json::array({3, 0}));
  CHECK_FALSE(http_get(health, "/api/stats?granularity=year").has_value());  // 400

  // The CLI reads the same file with the same names and prints the same JSON.
  const std::string c = (dir.path() / "interfaced.json").string();
  const auto r = cli(dir.path(), {"stats", "-c", c, "--from", "2026-12-04", "--to", "2026-12-07", "--event",
                                  "device_result", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(json::parse(r.out) == j);
  const auto csv = cli(dir.path(), {"stats", "-c", c, "--from", "2026-12-04", "--to", "2026-12-07", "--event",
                                    "device_result", "--format", "csv"});
  CHECK(csv.out == "event_type,dimension_a,dimension_b,2026-12-04,2026-12-05,2026-12-06,2026-12-07\r\n"
                   "device_result,chem,GLU,0,1,2,0\r\n");
  const auto all = cli(dir.path(), {"stats", "-c", c, "--from", "2026-12-04", "--to", "2026-12-07", "--format", "json"});
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms) == std::optional<int>(0));
  // rebuild gives exactly the live rows.
  const auto rb = cli(dir.path(), {"stats", "-c", c, "rebuild"});
  INFO(rb.out << rb.err);
  REQUIRE(rb.status == 0);
  CHECK(cli(dir.path(), {"stats", "-c", c, "--from", "2026-12-04", "--to", "2026-12-07", "--format", "json"}).out == all.out);
  // prune --before 2027 drops 2026.
  REQUIRE(cli(dir.path(), {"stats", "-c", c, "prune", "--before", "2027"}).status == 0);
  const auto pruned = json::parse(cli(dir.path(), {"stats", "-c", c, "--from", "2026-12-04", "--to", "2026-12-07", "--format", "json"}).out);
  CHECK(pruned["rows"].empty());
  CHECK(cli(dir.path(), {"stats", "-c", c, "--granularity", "year"}).status != 0);
}

TEST_CASE("lab view: every page in headless chromium shows what a person would see", "[lab][browser]") {
  if (!chromium()) {
    WARN("SKIPPED: chromium is not installed (apt-get install chromium; .ci/deps installs it)");
    return;
  }
  browser_lab lab("chem", "hema", "S-1001", {"20261205230000", "20261206000000", "20261206173000"},
                  json::array({tcp_server_device("immuno", "hl7", free_port())}));
  stats_until(lab.health, "from=2026-12-04&to=2026-12-07&event=device_result", [](const json& s) {
    return s.contains("rows") && s["rows"].size() == 1 && s["rows"][0]["values"].get<std::vector<long long>>() == acceptance;
  });
  lab.send_controls();
  const std::string& base = lab.base;

  {  // the dashboard: both devices, their link state, today's result
    const auto dom = dump_dom(lab.dir.path(), base + "/");
    INFO(dom);
    CHECK(dom.find("data-loaded=\"1\"") != std::string::npos);
    CHECK(dom.find("id=\"device-chem\"") != std::string::npos);
    CHECK(dom.find("id=\"device-immuno\"") != std::string::npos);
    CHECK(std::regex_search(dom, std::regex(R"(id="device-hema"[\s\S]*?class="num results-today">1<)")));
    CHECK(dom.find("listening") != std::string::npos);
    CHECK(dom.find("Asia/Kolkata") != std::string::npos);
    CHECK(dom.find("id=\"help-items\"><li") != std::string::npos);  // the page's help panel
  }
  {  // the message browser: a sample's values
    const auto dom = dump_dom(lab.dir.path(), base + "/messages?sample=S-1001");
    INFO(dom);
    CHECK(count(dom, "class=\"card message\"") == 1);
    CHECK(dom.find("S-1001") != std::string::npos);
    CHECK(dom.find("class=\"num value\">7.25<") != std::string::npos);
    CHECK(dom.find("class=\"parameter\">GLU<") != std::string::npos);
    CHECK(dom.find("Raw form") != std::string::npos);
  }
  {  // stats: the zero-filled grid
    const auto dom = dump_dom(lab.dir.path(), base + "/stats?from=2026-12-04&to=2026-12-07&event=device_result&device=chem");
    INFO(dom);
    CHECK(count(dom, "class=\"num bucket\"") == 4);
    CHECK(std::regex_search(dom, std::regex(R"(<td class="num cell">0</td><td class="num cell">1</td><td class="num cell">2</td><td class="num cell">0</td>)")));
    CHECK(count(dom, "class=\"bar\"") == 4);
  }
  {  // help search
    const auto dom = dump_dom(lab.dir.path(), base + "/help?q=checksum");
    INFO(dom);
    CHECK(dom.find("ASTM-012") != std::string::npos);
    CHECK(dom.find("Checksum mismatch in an ASTM frame") != std::string::npos);
  }
  {  // QC: the two controls sent to hema, one chart, the 1-3s reject labelled
    const auto dom = dump_dom(lab.dir.path(), base + "/qc");
    INFO(dom);
    CHECK(count(dom, "<svg class=\"chart lj\"") == 1);
    CHECK(dom.find("data-points=\"2\"") != std::string::npos);
    CHECK(count(dom, "class=\"pt pt-accept\"") == 1);
    CHECK(count(dom, "class=\"pt pt-reject\"") == 1);
    CHECK(std::regex_search(dom, std::regex(R"(class="rule-label"[^>]*>[^<]*\b1-3s\b[^<]*<)")));
  }
}

namespace {

// The daemon's pages and one page of the test's own (`/__layout.html`) on one origin, so that
// page can read the DOM of the daemon's pages in its frames (a browser blocks that across
// origins). One connection at a time: each request forwarded as HTTP/1.0, the answer relayed whole.
class same_origin_proxy {
 public:
  same_origin_proxy(std::uint16_t upstream, std::string page) : upstream_(upstream), page_(std::move(page)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~same_origin_proxy() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  same_origin_proxy(const same_origin_proxy&) = delete;
  same_origin_proxy& operator=(const same_origin_proxy&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      const auto until = std::chrono::steady_clock::now() + 5s;
      while (req.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 100) <= 0) continue;
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      const auto sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
      std::string reply;
      if (sp1 != std::string::npos && sp2 != std::string::npos) {
        const std::string target = req.substr(sp1 + 1, sp2 - sp1 - 1);
        if (target == "/__layout.html") {
          reply = "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: " +
                  std::to_string(page_.size()) + "\r\n\r\n" + page_;
        } else {
          tcp_conn up(upstream_);
          if (up.ok() && up.send("GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) reply = up.read_all(5000ms);
        }
      }
      for (std::string_view rest = reply; !rest.empty();) {
        const ssize_t n = ::send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
      }
      ::close(c);
    }
  }

  std::uint16_t upstream_, port_ = 0;
  std::string page_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("lab view: every page fits a phone (390x844) and a laptop (1280x800), its content on screen", "[lab][browser]") {
  if (!chromium()) {
    WARN("SKIPPED: chromium is not installed (apt-get install chromium; .ci/deps installs it)");
    return;
  }
  // Long device names and a long sample id: what pushes a narrow screen sideways.
  browser_lab lab("chemistry-analyser-7", "hematology-analyser-2", "S-1001-2026-12-06-WARD-B", {"20261205230000"});
  lab.send_controls();
  stats_until(lab.health, "from=2026-12-04&to=2026-12-07&event=device_result&device=chemistry-analyser-7", [](const json& s) {
    return s.contains("rows") && s["rows"].size() == 1;
  });
  // Each page with the selector of what a person came for (a device's row, a message, a chart,
  // the grid, a help hit).
  const std::vector<std::pair<std::string, std::string>> pages = {
      {"/", "#device-chemistry-analyser-7"},
      {"/messages?sample=S-1001-2026-12-06-WARD-B", ".card.message"},
      {"/qc", "svg.chart.lj"},
      {"/stats?from=2026-06-01&to=2026-12-07&device=chemistry-analyser-7", "#grid td.cell"},
      {"/help?q=checksum", "#help-results li"}};
  const std::vector<std::pair<int, int>> sizes = {{390, 844}, {1280, 800}};
  // Every page at every size in one browser run: an iframe is a viewport of its size (the media
  // queries see its width), read through the DOM once its scripts set data-loaded
  // (served on the pages' own origin, same_origin_proxy).
  std::string frames, list;
  for (const auto& [path, selector] : pages)
    for (const auto& [w, h] : sizes) {
      frames += "<iframe width=\"" + std::to_string(w) + "\" height=\"" + std::to_string(h) + "\" src=\"" + path + "\"></iframe>";
      list += json::array({path, selector, w}).dump() + ",";
    }
  std::ostringstream layout;
  layout << "<!doctype html><html><body style=\"margin:0\"><pre id=\"results\"></pre>" << frames << "<script>\n"
      << "const want = [" << list << "];\n"
      << R"(function measure() {
  const frames = [...document.querySelectorAll('iframe')];
  const out = frames.map((f, i) => {
    const d = f.contentDocument, w = f.contentWindow;
    const r = {page: i, loaded: !!(d && d.body && d.body.dataset.loaded === '1')};
    if (!r.loaded) return r;
    r.width = w.innerWidth;
    r.scroll_width = d.documentElement.scrollWidth;
    const e = d.querySelector(want[i][1]);
    const box = e ? e.getBoundingClientRect() : null;
    // Present, drawn, and starting on screen (a wide table scrolls inside its card, not the page).
    r.content = !!box && box.width > 0 && box.height > 0 && box.left >= 0 && box.left < w.innerWidth;
    const main = d.querySelector('main').getBoundingClientRect();
    r.main_right = main.right;
    return r;
  });
  document.getElementById('results').textContent = JSON.stringify(out);
  if (out.some(r => !r.loaded)) setTimeout(measure, 200);
}
window.addEventListener('load', () => setTimeout(measure, 200));
</script></body></html>)";
  same_origin_proxy proxy(lab.health, layout.str());
  const auto dom = dump_dom(lab.dir.path(), "http://127.0.0.1:" + std::to_string(proxy.port()) + "/__layout.html", {"--virtual-time-budget=15000"});
  std::smatch m;
  REQUIRE(std::regex_search(dom, m, std::regex(R"(<pre id="results">([^<]*)</pre>)")));
  const json results = json::parse(m[1].str());
  REQUIRE(results.size() == pages.size() * sizes.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const auto& [path, selector] = pages[i / sizes.size()];
    INFO(path << " at " << sizes[i % sizes.size()].first << " px: " << r.dump());
    REQUIRE(r["loaded"] == true);
    CHECK(r["width"] == sizes[i % sizes.size()].first);
    CHECK(r["scroll_width"].get<int>() <= r["width"].get<int>());  // no sideways scrolling
    CHECK(r["main_right"].get<double>() <= r["width"].get<double>());
    CHECK(r["content"] == true);
  }
}

TEST_CASE("lab view: the Levey-Jennings chart draws every point of the /api/qc/series shape", "[lab][browser]") {
  if (!chromium()) {
    WARN("SKIPPED: chromium is not installed");
    return;
  }
  scratch_dir dir;
  // The page's own script (the file the daemon embeds) with /api/qc/series answered from a fixture
  // in the shape the QC work serves.
  const fs::path app = fs::path(INTERFACED_FIXTURE_DIR).parent_path().parent_path() / "daemon/assets/web/app.js";
  const json series = {{"series", json::array({json{
      {"device", "chem"}, {"parameter", "GLU"}, {"material", "Ctrl"}, {"lot", "L1"}, {"level", 1}, {"mean", 5.0}, {"sd", 0.2},
      {"points", json::array({
          json{{"result_id", "r1"}, {"observed_at", "2026-12-01T08:00:00+05:30"}, {"value", 5.1}, {"z", 0.5}, {"outcome", "accept"}, {"rules", json::array()}, {"resolution", nullptr}},
          json{{"result_id", "r2"}, {"observed_at", "2026-12-02T08:00:00+05:30"}, {"value", 4.9}, {"z", -0.5}, {"outcome", "accept"}, {"rules", json::array()}, {"resolution", nullptr}},
          json{{"result_id", "r3"}, {"observed_at", "2026-12-03T08:00:00+05:30"}, {"value", 5.7}, {"z", 3.5}, {"outcome", "reject"}, {"rules", json::array({"1-3s"})}, {"resolution", nullptr}},
          json{{"result_id", "r4"}, {"observed_at", "2026-12-04T08:00:00+05:30"}, {"value", 5.45}, {"z", 2.25}, {"outcome", "warning"}, {"rules", json::array({"1-2s"})}, {"resolution", nullptr}},
          json{{"result_id", "r5"}, {"observed_at", "2026-12-05T08:00:00+05:30"}, {"value", 4.2}, {"z", -4.0}, {"outcome", "reject"}, {"rules", json::array({"1-3s"})},
               {"resolution", {{"id", 1}, {"code", "RERUN_OK"}, {"by", "tech1"}, {"reason", "re-run in range"}}}}})}}})}};
  std::ofstream(dir / "qc.html") << "<!doctype html><html><body data-page=\"qc\"><form id=\"filters\"><input name=\"device\"></form>"
                                    "<div id=\"charts\"></div><ul id=\"help-items\"></ul><script>"
                                    "window.fetch = async (u) => ({ok: !String(u).startsWith('/api/help'), status: 200, json: async () => ("
                                 << series.dump() << ")});</script><script src=\"file://" << app.string() << "\"></script></body></html>";
  const auto dom = dump_dom(dir.path(), "file://" + (dir / "qc.html").string());
  INFO(dom);
  CHECK(count(dom, "<svg class=\"chart lj\"") == 1);
  CHECK(dom.find("data-points=\"5\"") != std::string::npos);
  CHECK(count(dom, "<circle") == 5);
  CHECK(count(dom, "class=\"pt pt-reject\"") == 1);  // r5 is resolved: drawn hollow
  CHECK(count(dom, "class=\"pt pt-resolved\"") == 1);
  CHECK(count(dom, "class=\"sd-line\"") == 6);
  CHECK(count(dom, "class=\"mean-line\"") == 1);
  const std::regex label(R"(class="rule-label"[^>]*>1-3s<)");
  CHECK(std::distance(std::sregex_iterator(dom.begin(), dom.end(), label), std::sregex_iterator()) == 2);
  CHECK(dom.find("RERUN_OK") != std::string::npos);
}

namespace {

// A request over plain HTTP/1.0; the status line and the body.
std::pair<std::string, std::string> http(std::uint16_t port, const std::string& method, const std::string& target,
                                         const std::vector<std::string>& headers, const std::string& body) {
  tcp_conn c(port);
  REQUIRE(c.ok());
  std::string req = method + " " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  REQUIRE(c.send(req + "\r\n" + body));
  std::string reply;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    const std::string more = c.read_some(until);
    if (more.empty()) break;
    reply += more;
  }
  const auto eol = reply.find("\r\n"), head_end = reply.find("\r\n\r\n");
  return {reply.substr(0, eol), head_end == std::string::npos ? std::string() : reply.substr(head_end + 4)};
}

}  // namespace

TEST_CASE("lab view: the message browser is read-only without an admin token, and its actions need token and CSRF", "[lab]") {
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", port)}), health);
  with_admin_token(cfg, dir.path(), "s3cret");
  auto daemon = run_daemon(dir.path(), cfg, health);
  play(dir.path(), "a", port, write(dir.path() / "a.astm", astm_message("S-1001", "20261206100000")));
  json list;
  const auto until = std::chrono::steady_clock::now() + 10s;
  do {
    list = json::parse(*http_get(health, "/api/messages?sample=S-1001"));
  } while (list["messages"].empty() && std::chrono::steady_clock::now() < until && (std::this_thread::sleep_for(50ms), true));
  REQUIRE(list["messages"].size() == 1);
  CHECK(list["admin"] == true);
  const std::string id = list["messages"][0]["id"], csrf = list["csrf"];
  CHECK(list["messages"][0]["state"] == "pending");  // no backend configured
  CHECK(list["messages"][0]["body"]["results"][0]["value"] == "5.4");
  const std::string body = json{{"id", id}, {"by", "Dr. Rao"}, {"reason", "wrong patient"}}.dump();
  // Without the token: 401 (the health endpoint's rule for every POST).
  CHECK(http(health, "POST", "/api/messages/set-aside", {"X-CSRF-Token: " + csrf}, body).first.find(" 401 ") != std::string::npos);
  // With the token but without the page's CSRF token: 403.
  CHECK(http(health, "POST", "/api/messages/set-aside", {"Authorization: Bearer s3cret"}, body).first.find(" 403 ") != std::string::npos);
  const auto ok = http(health, "POST", "/api/messages/set-aside", {"Authorization: Bearer s3cret", "X-CSRF-Token: " + csrf}, body);
  INFO(ok.second);
  CHECK(ok.first.find(" 200 ") != std::string::npos);
  const json after = json::parse(*http_get(health, "/api/messages?sample=S-1001"));
  CHECK(after["messages"][0]["state"] == "set-aside");
  CHECK(after["messages"][0]["set_aside_by"] == "Dr. Rao");
  const auto retried = http(health, "POST", "/api/messages/retry", {"Authorization: Bearer s3cret", "X-CSRF-Token: " + csrf},
                            json{{"id", id}, {"by", "Dr. Rao"}}.dump());
  CHECK(retried.first.find(" 200 ") != std::string::npos);
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms).has_value());
  const auto log = daemon->err() + daemon->out();
  CHECK(log.find("dashboard: message " + id + " set aside by Dr. Rao: wrong patient") != std::string::npos);
  CHECK(log.find("dashboard: message " + id + " queued again by Dr. Rao") != std::string::npos);
}

namespace {

// One GLU control (sample QC-L1, matched by qc.controls) or patient result, R.13 local time.
std::string glu_result(const std::string& sample, const std::string& completed, const std::string& value) {
  return astm_message(sample, completed, value);
}

json qc_config_with_codes() {
  return {{"controls", json::array({{{"sample_id", "QC-L1*"}, {"material", "Lyphochek"}, {"lot", "L1"}, {"level", "1"}}})},
          {"limits", json::array({{{"parameter", "GLU"}, {"level", "1"}, {"mean", 5.0}, {"sd", 0.2}}})},
          {"resolution_codes", json::array({{{"code", "BAD_VIAL"}, {"excludes_from_westgard", true}},
                                            {{"code", "SKIP"}, {"skip", true}}})}};
}

}  // namespace

TEST_CASE("lab view: a rejected control is resolved from the /qc page with the admin token (confirmed and audited)",
          "[lab][browser][qc]") {
  if (!chromium()) {
    WARN("SKIPPED: chromium is not installed");
    return;
  }
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", port)}), health);
  with_admin_token(cfg, dir.path(), "s3cret");
  cfg["qc"] = qc_config_with_codes();
  auto daemon = run_daemon(dir.path(), cfg, health);
  play(dir.path(), "c1", port, write(dir.path() / "c1.astm", glu_result("QC-L1", "20261206080000", "5.0")));  // accept
  play(dir.path(), "c2", port, write(dir.path() / "c2.astm", glu_result("QC-L1", "20261206100000", "5.9")));  // 1-3s reject
  json pts = glu_points(health, false, [](const json& p) { return p.size() == 2; });
  INFO(pts.dump(1));
  REQUIRE(pts.size() == 2);
  REQUIRE(pts[1]["outcome"] == "reject");
  const std::string rejected = pts[1]["result_id"];

  // The route layer: the bearer token without the page's CSRF token is refused (403), nothing changes.
  const std::string body = json{{"result_id", rejected}, {"code", "BAD_VIAL"}, {"by", "mallory"}, {"reason", "x"}}.dump();
  const auto no_csrf = http(health, "POST", "/api/qc/resolve", {"Authorization: Bearer s3cret"}, body);
  INFO(no_csrf.second);
  CHECK(no_csrf.first.find(" 403 ") != std::string::npos);
  // A page cannot pass for the CLI: the CLI's header with a browser's Origin is refused too.
  CHECK(http(health, "POST", "/api/qc/resolve",
             {"Authorization: Bearer s3cret", "X-Interfaced-Client: cli", "Origin: http://evil.example"}, body)
            .first.find(" 403 ") != std::string::npos);
  CHECK(glu_points(health, false, [](const json& p) { return p.size() == 2; })[1]["resolution"].is_null());

  {
    cdp_page page(*chromium(), dir.path(), "http://127.0.0.1:" + std::to_string(health) + "/qc");
    REQUIRE(page.wait_for("document.body.dataset.loaded === '1' && document.querySelector('button.qc-resolve')"));
    // Only the rejected control offers Resolve (the accepted one has nothing to resolve).
    CHECK(page.eval("document.querySelectorAll('button.qc-resolve').length") == 1);
    CHECK(page.eval("document.querySelector('button.qc-resolve').dataset.resultId") == rejected);
    // A person: enters the token and their name, picks the code, gives a reason, confirms.
    page.eval(R"(
      window.asked = [];
      window.prompt = (q, d) => { asked.push(q); return q.startsWith('Resolution code') ? 'BAD_VIAL' : 'vial left open'; };
      window.confirm = q => { asked.push(q); return true; };
      window.alert = q => { asked.push('alert: ' + q); };
      document.getElementById('admin-token').value = 's3cret';
      document.getElementById('admin-by').value = 'Dr. Rao';
      document.querySelector('button.qc-resolve').click();
      true)");
    REQUIRE(page.wait_for("document.getElementById('qc-message').textContent !== ''"));
    const json asked = page.eval("asked");
    INFO(asked.dump(1) << "\n" << page.eval("document.getElementById('qc-message').textContent").dump());
    REQUIRE(asked.size() == 3);
    CHECK(asked[2].get<std::string>().starts_with("Resolve the control of"));  // the confirmation
    CHECK(page.eval("document.getElementById('qc-message').textContent").get<std::string>().find("BAD_VIAL resolved by Dr. Rao") !=
          std::string::npos);
    // The chart redrawn: the excluded control is hidden, nothing left to resolve.
    REQUIRE(page.wait_for("document.querySelector('svg.chart.lj') && document.querySelector('svg.chart.lj').dataset.points === '1'"));
    CHECK(page.eval("document.querySelectorAll('button.qc-resolve').length") == 0);
    // show_resolved_controls: drawn hollow with its code, and it can be undone from here.
    page.eval("document.querySelector('input[name=show_resolved_controls]').checked = true; "
              "document.getElementById('filters').requestSubmit(); true");
    REQUIRE(page.wait_for("document.querySelector('svg.chart.lj').dataset.points === '2'"));
    CHECK(page.eval("document.querySelectorAll('circle.pt-resolved').length") == 1);
    CHECK(page.eval("document.querySelectorAll('button.qc-undo').length") == 1);
  }
  pts = glu_points(health, true, [](const json& p) { return p.size() == 2; });
  REQUIRE(pts.size() == 2);
  CHECK(pts[1]["resolution"]["code"] == "BAD_VIAL");
  CHECK(pts[1]["resolution"]["by"] == "Dr. Rao");
  CHECK(pts[1]["resolution"]["reason"] == "vial left open");
  const json history = json::parse(*http_get(health, "/api/qc/history"));
  REQUIRE(history["entries"].size() == 1);
  CHECK(history["entries"][0]["by"] == "Dr. Rao");
  daemon->signal(SIGTERM);
  REQUIRE(daemon->wait_for(10000ms).has_value());
  const auto log = daemon->err() + daemon->out();
  CHECK(log.find("dashboard: /api/qc/resolve " + rejected + " by Dr. Rao: HTTP 200") != std::string::npos);
}

TEST_CASE("lab view: without an admin token the /qc page is read-only and the QC API refuses changes", "[lab][browser][qc]") {
  if (!chromium()) {
    WARN("SKIPPED: chromium is not installed");
    return;
  }
  scratch_dir dir;
  const std::uint16_t port = free_port(), health = free_port();
  json cfg = daemon_config(dir.path(), json::array({tcp_server_device("chem", "astm", port)}), health);
  cfg["qc"] = qc_config_with_codes();
  auto daemon = run_daemon(dir.path(), cfg, health);
  play(dir.path(), "c1", port, write(dir.path() / "c1.astm", glu_result("QC-L1", "20261206100000", "5.9")));  // 1-3s reject
  const json pts = glu_points(health, false, [](const json& p) { return p.size() == 1; });
  REQUIRE(pts.size() == 1);
  REQUIRE(pts[0]["outcome"] == "reject");
  const json series = json::parse(*http_get(health, "/api/qc/series"));
  CHECK(series["admin"] == false);
  CHECK_FALSE(series.contains("csrf"));
  const auto dom = dump_dom(dir.path(), "http://127.0.0.1:" + std::to_string(health) + "/qc");
  INFO(dom);
  CHECK(count(dom, "<svg class=\"chart lj\"") == 1);
  CHECK(count(dom, "class=\"pt pt-reject\"") == 1);
  CHECK(dom.find("qc-resolve") == std::string::npos);
  CHECK(dom.find("admin-token") == std::string::npos);
  CHECK(dom.find("Read-only: resolve a control with") != std::string::npos);
  const std::string body =
      json{{"result_id", pts[0]["result_id"]}, {"code", "BAD_VIAL"}, {"by", "x"}, {"reason", "y"}}.dump();
  // No admin token configured: every change is refused, whatever the request carries.
  CHECK(http(health, "POST", "/api/qc/resolve", {"X-CSRF-Token: anything"}, body).first.find(" 401 ") != std::string::npos);
  CHECK(http(health, "POST", "/api/qc/resolve", {"X-Interfaced-Client: cli"}, body).first.find(" 401 ") != std::string::npos);
  CHECK(glu_points(health, false, [](const json& p) { return p.size() == 1; })[0]["resolution"].is_null());
}
