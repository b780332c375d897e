// The five pages of the lab's view share one head, nav and help panel (web/frame.html), each with
// its own <main> and its own nav link marked current.

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "daemon/lab_view.hpp"

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("lab view pages: one shared head and nav, the page's own main, its link current") {
  interfaced::daemon::lab_view view("/nonexistent/outbox.sqlite", {}, [] { return interfaced::rerun::lab_zone(); });
  const std::vector<std::pair<std::string, std::string>> pages = {
      {"/", "<h1>Analysers</h1>"}, {"/messages", "id=\"messages\""}, {"/qc", "id=\"charts\""},
      {"/stats", "<h1>Historical summary</h1>"}, {"/help", "id=\"help-results\""}};
  for (const auto& [path, own] : pages) {
    INFO(path);
    interfaced::transport::http_request_view req;
    req.method = "GET";
    req.target = path + "?sample=S-1";
    const auto r = view.handle(req, {});
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    const std::string& html = r->body;
    CHECK(html.starts_with("<!doctype html>"));
    CHECK(count(html, "<head>") == 1);
    CHECK(count(html, "<main>") == 1);
    CHECK(html.find(own) != std::string::npos);
    CHECK(count(html, "aria-current=\"page\"") == 1);
    CHECK(html.find("<a href=\"" + path + "\" aria-current=\"page\">") != std::string::npos);
    CHECK(count(html, "id=\"help-items\"") == 1);
    CHECK(html.find("{{") == std::string::npos);  // every marker filled
    CHECK(html.find("<script src=\"/assets/app.js\">") != std::string::npos);
  }
}
