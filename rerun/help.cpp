#include "rerun/help.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace interfaced::rerun {

bool is_log_code(std::string_view s) noexcept {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos || dash == 0 || s.size() != dash + 4) return false;
  if (s[0] < 'A' || s[0] > 'Z') return false;
  for (std::size_t i = 1; i < dash; ++i)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9'))) return false;
  for (std::size_t i = dash + 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool read_strings(const nlohmann::json& j, const char* key, std::vector<std::string>& out, const std::string& at,
                  std::vector<std::string>& errors) {
  if (!j.contains(key)) return true;
  const auto& v = j.at(key);
  if (!v.is_array()) {
    errors.push_back(at + "/" + key + ": expected an array of strings");
    return false;
  }
  for (const auto& s : v) {
    if (!s.is_string()) {
      errors.push_back(at + "/" + key + ": expected an array of strings");
      return false;
    }
    out.push_back(s.get<std::string>());
  }
  return true;
}

}  // namespace

help_file parse_help_items(std::string_view json_text) {
  help_file f;
  const auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    f.errors.push_back("/: not a JSON object");
    return f;
  }
  if (j.value("version", 0) != 1) f.errors.push_back("/version: expected 1");
  if (!j.contains("items") || !j["items"].is_array()) {
    f.errors.push_back("/items: expected an array");
    return f;
  }
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < j["items"].size(); ++i) {
    const auto& v = j["items"][i];
    const std::string at = "/items/" + std::to_string(i);
    if (!v.is_object()) {
      f.errors.push_back(at + ": expected an object");
      continue;
    }
    help_item it;
    bool ok = true;
    auto text = [&](const char* key, std::string& out, bool required) {
      if (!v.contains(key) || v[key].is_null()) {
        if (required) {
          f.errors.push_back(at + "/" + key + ": missing");
          ok = false;
        }
        return;
      }
      if (!v[key].is_string()) {
        f.errors.push_back(at + "/" + key + ": expected a string");
        ok = false;
        return;
      }
      out = v[key].get<std::string>();
    };
    text("id", it.id, true);
    text("code", it.code, false);
    text("title", it.title, true);
    text("description", it.description, true);
    if (!it.code.empty() && !is_log_code(it.code)) {
      f.errors.push_back(at + "/code: \"" + it.code + "\" is not a code like ASTM-012");
      ok = false;
    }
    ok = read_strings(v, "causes", it.causes, at, f.errors) && ok;
    ok = read_strings(v, "actions", it.actions, at, f.errors) && ok;
    ok = read_strings(v, "pages", it.pages, at, f.errors) && ok;
    ok = read_strings(v, "tags", it.tags, at, f.errors) && ok;
    if (v.contains("order")) {
      if (!v["order"].is_number_integer()) {
        f.errors.push_back(at + "/order: expected an integer");
        ok = false;
      } else {
        it.order = v["order"].get<int>();
      }
    }
    if (v.contains("video_url") && !v["video_url"].is_null()) {
      if (!v["video_url"].is_string()) {
        f.errors.push_back(at + "/video_url: expected a string or null");
        ok = false;
      } else {
        it.video_url = v["video_url"].get<std::string>();
      }
    }
    if (std::find(seen.begin(), seen.end(), it.id) != seen.end()) {
      f.errors.push_back(at + "/id: duplicate id \"" + it.id + "\"");
      ok = false;
    }
    if (!ok) continue;
    seen.push_back(it.id);
    f.items.push_back(std::move(it));
  }
  return f;
}

nlohmann::json to_json(const std::vector<help_item>& items) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& it : items) {
    nlohmann::json j = {{"id", it.id},           {"title", it.title}, {"description", it.description},
                        {"causes", it.causes},   {"actions", it.actions}, {"pages", it.pages},
                        {"tags", it.tags},       {"order", it.order}};
    if (!it.code.empty()) j["code"] = it.code;
    j["video_url"] = it.video_url ? nlohmann::json(*it.video_url) : nlohmann::json(nullptr);
    arr.push_back(std::move(j));
  }
  return {{"version", 1}, {"items", arr}};
}

std::vector<help_item> merge_help(std::vector<help_item> shipped, const std::vector<help_item>& site) {
  for (const auto& s : site) {
    auto it = std::find_if(shipped.begin(), shipped.end(), [&](const help_item& h) { return h.id == s.id; });
    if (it != shipped.end()) *it = s;
    else shipped.push_back(s);
  }
  std::stable_sort(shipped.begin(), shipped.end(), [](const help_item& a, const help_item& b) {
    return a.order != b.order ? a.order < b.order : a.id < b.id;
  });
  return shipped;
}

std::vector<const help_item*> search_help(const std::vector<help_item>& items, std::string_view words,
                                          std::string_view page) {
  std::vector<std::string> terms;
  {
    std::string w;
    for (char c : std::string(words) + " ") {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!w.empty()) terms.push_back(lower(w));
        w.clear();
      } else {
        w += c;
      }
    }
  }
  std::vector<std::pair<int, const help_item*>> hits;
  for (const auto& it : items) {
    if (!page.empty() && std::find(it.pages.begin(), it.pages.end(), page) == it.pages.end()) continue;
    const std::string head = lower(it.title + " " + it.code + " " + it.id);
    std::string tags;
    for (const auto& t : it.tags) tags += lower(t) + " ";
    const std::string body = lower(it.description);
    int score = 0;
    bool all = true;
    for (const auto& t : terms) {
      if (head.find(t) != std::string::npos || tags.find(t) != std::string::npos) score += 2;
      else if (body.find(t) != std::string::npos) score += 1;
      else all = false;
    }
    if (all) hits.emplace_back(score, &it);
  }
  std::stable_sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second->order < b.second->order;
  });
  std::vector<const help_item*> out;
  for (const auto& h : hits) out.push_back(h.second);
  return out;
}

const help_item* find_code(const std::vector<help_item>& items, std::string_view code) {
  const std::string want = lower(code);
  for (const auto& it : items)
    if (!it.code.empty() && lower(it.code) == want) return &it;
  return nullptr;
}

namespace {
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::vector<std::string> nearest_codes(const std::vector<help_item>& items, std::string_view code, std::size_t n) {
  const std::string want = lower(code);
  std::vector<std::pair<std::size_t, std::string>> all;
  for (const auto& it : items)
    if (!it.code.empty()) all.emplace_back(distance(want, lower(it.code)), it.code);
  std::stable_sort(all.begin(), all.end());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < all.size() && i < n; ++i) out.push_back(all[i].second);
  return out;
}

std::string format_explain(const help_item& it) {
  std::string out = (it.code.empty() ? it.id : it.code) + ": " + it.title + "\n\n" + it.description + "\n";
  if (!it.causes.empty()) {
    out += "\nLikely causes:\n";
    for (const auto& c : it.causes) out += "  - " + c + "\n";
  }
  if (!it.actions.empty()) {
    out += "\nWhat to do:\n";
    for (const auto& a : it.actions) out += "  - " + a + "\n";
  }
  if (it.video_url) out += "\nVideo: " + *it.video_url + "\n";
  return out;
}

}  // namespace interfaced::rerun
